//! kiln: a daemonless container image builder and runner.
//!
//! Data flows one way: [`parser`] turns Dockerfile text into an AST,
//! [`frontend`] lowers it to a graph of ops, [`solver`] schedules them,
//! [`exec`] performs each op (RUN inside the bundled [`runtime`]) with the
//! store ([`cache`]), and [`build`] writes the result as an image in the
//! formats of [`image`]; [`transfer`] moves images between the store and
//! registries or archives. `ARCHITECTURE.md` has the map, the layering
//! (which module may import which, checked by `tests/layering.rs`) and the
//! invariants.

pub mod attest;
pub mod build;
pub mod cache;
pub mod cli;
pub mod container;
pub mod context;
pub mod csv;
pub mod describe;
pub mod error_chain;
pub mod exec;
pub mod frontend;
pub mod fs;
pub mod image;
pub mod network;
pub mod parser;
pub mod runtime;
pub mod shell;
pub mod solver;
pub mod source;
pub mod transfer;
pub mod units;
pub mod volume;
