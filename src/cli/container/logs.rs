//! `kiln logs [-f] [--tail N] [-t] CONTAINER`: the json-file log,
//! stdout entries to stdout and stderr entries to stderr (docker's).

use super::report;
use crate::cache::Store;
use crate::cli::CliError;
use crate::container::log::{self, Entry};
use crate::container::state::{self, alive, Status};
use crate::error_chain::Chain;
use clap::Args;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

/// Flags of `kiln logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Follow the log until the container stops.
    #[arg(short, long)]
    pub follow: bool,
    /// Show this many lines from the end (`all` for every line).
    #[arg(short = 'n', long, default_value = "all", value_name = "N")]
    pub tail: String,
    /// Prefix each line with its time (RFC 3339, nanoseconds).
    #[arg(short, long)]
    pub timestamps: bool,
    /// The container.
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

fn print(entries: &[Entry], timestamps: bool) {
    let mut out = std::io::stdout().lock();
    let mut err = std::io::stderr().lock();
    for e in entries {
        let w: &mut dyn Write = if e.stream == "stderr" {
            &mut err
        } else {
            &mut out
        };
        let _ = if timestamps {
            write!(w, "{} {}", e.time, e.log)
        } else {
            w.write_all(e.log.as_bytes())
        };
    }
    let _ = out.flush();
}

/// `kiln logs`.
pub fn run(a: LogsArgs, root: &Path) -> Result<i32, CliError> {
    // docker/cli passes --tail through; the daemon reads a bad value as
    // "all" (moby `daemon/logs.go`); kiln names the mistake instead.
    let tail: Option<usize> = match a.tail.as_str() {
        "all" | "" => None,
        n => match n.parse::<i64>() {
            Ok(n) if n < 0 => None,
            Ok(n) => Some(n as usize),
            Err(_) => {
                return Ok(crate::cli::usage_error(&format!(
                    "invalid value {n:?} for --tail: expected a number of lines or \"all\""
                )))
            }
        },
    };
    let store = Store::open(root).map_err(|e| CliError(format!("Error: {}", Chain(&e))))?;
    if let Err(e) = state::reconcile(&store) {
        return Ok(report(Chain(&e).to_string()));
    }
    let row = match state::find(&store, &a.container) {
        Ok(row) => row,
        Err(e) => return Ok(report(e)),
    };
    let path = state::log_path(root, &row.id);
    let io_err = |e: std::io::Error| CliError(format!("Error: {}: {e}", path.display()));
    // Kept open while following: the end of a `--rm` container's log is
    // still read after its removal deleted the file.
    let mut file = match std::fs::File::open(&path) {
        Ok(f) => Some(f),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io_err(e)),
    };
    let (mut entries, mut offset) = match &mut file {
        Some(f) => log::read_open(f, 0).map_err(io_err)?,
        None => (Vec::new(), 0),
    };
    if let Some(n) = tail {
        let skip = entries.len().saturating_sub(n);
        entries.drain(..skip);
    }
    print(&entries, a.timestamps);
    if !a.follow {
        return Ok(0);
    }
    loop {
        let live = store
            .find_container(&row.id)
            .ok()
            .flatten()
            .is_some_and(|r| Status::parse(&r.state).is_live() && alive(r.monitor).is_some());
        if file.is_none() {
            file = std::fs::File::open(&path).ok();
        }
        if let Some(f) = &mut file {
            let (more, next) = log::read_open(f, offset).map_err(io_err)?;
            offset = next;
            print(&more, a.timestamps);
        }
        if !live {
            return Ok(0);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `start -a`: prints what the log gets from `offset` on until the
/// container stops; returns its exit status.
pub fn follow_run(store: &Store, id: &str, mut offset: u64) -> Result<i32, CliError> {
    let path = state::log_path(store.root(), id);
    let mut file = None;
    loop {
        let row = store.find_container(id).ok().flatten();
        let live = row
            .as_ref()
            .is_some_and(|r| Status::parse(&r.state).is_live() && alive(r.monitor).is_some());
        if file.is_none() {
            file = std::fs::File::open(&path).ok();
        }
        if let Some(f) = &mut file {
            let (more, next) = log::read_open(f, offset)
                .map_err(|e| CliError(format!("Error: {}: {e}", path.display())))?;
            offset = next;
            print(&more, false);
        }
        if !live {
            return Ok(row.map(|r| r.exit_code).unwrap_or(0));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Where the log of container `id` ends now (what `start -a` skips).
pub fn log_end(root: &Path, id: &str) -> u64 {
    std::fs::metadata(state::log_path(root, id))
        .map(|m| m.len())
        .unwrap_or(0)
}
