//! kiln: a daemonless container image builder and runner.
//!
//! Data flows one way: [`parser`] turns Dockerfile text into an AST,
//! the solver lowers it to a graph of ops and schedules them, `exec` performs
//! each op inside the bundled `runtime`, and `image` writes and reads the
//! results in OCI formats. See `ARCHITECTURE.md` for the map and invariants.

pub mod build;
pub mod cache;
pub mod cli;
pub mod container;
pub mod context;
pub mod describe;
pub mod exec;
pub mod frontend;
pub mod fs;
pub mod image;
pub mod parser;
pub mod runtime;
pub mod shell;
pub mod solver;
pub mod source;
pub mod transfer;
pub mod units;
