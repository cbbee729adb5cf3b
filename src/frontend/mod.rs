//! Frontends: turn a build definition into a solver graph.
//!
//! Only the Dockerfile frontend exists ([`dockerfile`]); like BuildKit's
//! `frontend/dockerfile/dockerfile2llb`, it is the one place that knows both
//! the Dockerfile AST and the ops of the solver. Nothing below it (solver,
//! exec, runtime, cache) ever sees a Dockerfile instruction.

pub mod dockerfile;
