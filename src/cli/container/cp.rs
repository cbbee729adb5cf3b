//! `kiln cp`, docker's argument forms (docker/cli
//! `cli/command/container/cp.go`, `splitCpArg`): `CONTAINER:PATH` names
//! a path in a container unless the argument is an absolute local path
//! (a `:` in `/tmp/a:b` is a file name).

use super::report;
use crate::cache::Store;
use crate::cli::CliError;
use crate::container::copy::{self, Direction};
use crate::error_chain::Chain;
use clap::Args;
use std::path::{Path, PathBuf};

/// Flags of `kiln cp`.
#[derive(Debug, Args)]
pub struct CpArgs {
    /// `CONTAINER:SRC_PATH` or a local path.
    pub src: String,
    /// `CONTAINER:DEST_PATH` or a local path.
    pub dest: String,
}

/// `CONTAINER:PATH` → `(container, path)`; `None` for a local path.
fn split(arg: &str) -> Option<(&str, &str)> {
    if arg.starts_with('/') || arg.starts_with('.') {
        return None;
    }
    arg.split_once(':')
}

/// `kiln cp`.
pub fn cp(a: CpArgs, root: &Path) -> Result<i32, CliError> {
    let (key, direction) = match (split(&a.src), split(&a.dest)) {
        (Some((c, src)), None) => (
            c,
            Direction::FromContainer {
                src: src.to_string(),
                dest: PathBuf::from(&a.dest),
            },
        ),
        (None, Some((c, dest))) => (
            c,
            Direction::IntoContainer {
                src: PathBuf::from(&a.src),
                dest: dest.to_string(),
            },
        ),
        (Some(_), Some(_)) => {
            return Ok(super::super::usage_error(
                "copying between containers is not supported",
            ))
        }
        (None, None) => {
            return Ok(super::super::usage_error(
                "must specify at least one container source",
            ))
        }
    };
    if a.src == "-" || a.dest == "-" {
        return Ok(super::super::usage_error(
            "cp with a tar stream on stdin or stdout (-) is not supported",
        ));
    }
    let store = Store::open(root).map_err(|e| CliError(format!("Error: {}", Chain(&e))))?;
    match copy::copy(&store, key, &direction) {
        Ok(()) => Ok(0),
        Err(e) => Ok(report(Chain(&e))),
    }
}
