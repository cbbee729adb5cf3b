//! `kiln attach CONTAINER`: follow a running container's output (the
//! monitor's json-file log, from its end now) until it stops, then exit
//! with its status, as docker/cli `cli/command/container/attach.go` does.
//!
//! Chosen semantics: `--sig-proxy=false` always. Ctrl-C ends only this
//! command and the container keeps running (its init is in the monitor's
//! session, not this terminal's). Differs from docker: stdin is not
//! forwarded (the monitor keeps a `-i` container's stdin open but has no
//! pipe another process can write to yet).

use super::report;
use crate::cache::Store;
use crate::cli::CliError;
use crate::container::state::{self, Status};
use crate::error_chain::Chain;
use clap::Args;
use std::path::Path;

/// Flags of `kiln attach`.
#[derive(Debug, Args)]
pub struct AttachArgs {
    /// Do not attach stdin (kiln never does yet; accepted for docker's
    /// scripts).
    #[arg(long)]
    pub no_stdin: bool,
    /// The container.
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

/// `kiln attach`.
pub fn run(a: AttachArgs, root: &Path) -> Result<i32, CliError> {
    let store = Store::open(root).map_err(|e| CliError(format!("Error: {}", Chain(&e))))?;
    if let Err(e) = state::reconcile(&store) {
        return Ok(report(Chain(&e).to_string()));
    }
    let row = match state::find(&store, &a.container) {
        Ok(row) => row,
        Err(e) => return Ok(report(e)),
    };
    // docker/cli attach.go: "You cannot attach to a stopped container,
    // start it first" (status 1).
    if !Status::parse(&row.state).is_live() {
        return Ok(report(
            "You cannot attach to a stopped container, start it first",
        ));
    }
    // The log is opened before its end is taken and kept open while
    // following, so what is written from then on is never missed.
    let path = state::log_path(root, &row.id);
    let log = std::fs::File::open(&path)
        .map_err(|e| CliError(format!("Error: {}: {e}", path.display())))?;
    let offset = log
        .metadata()
        .map_err(|e| CliError(format!("Error: {}: {e}", path.display())))?
        .len();
    let code = super::logs::follow_run(&store, &row.id, offset);
    drop(log);
    code
}
