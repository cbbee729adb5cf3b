//! `kiln attach CONTAINER`: follow a running container's output (the
//! monitor's json-file log, from its end now) until it stops, then exit
//! with its status, as docker/cli `cli/command/container/attach.go` does;
//! the caller's stdin goes to a `-i` container's stdin (through the FIFO
//! its monitor relays, [`crate::container::stdin`]).
//!
//! Chosen semantics: `--sig-proxy=false` always. Ctrl-C ends only this
//! command and the container keeps running (its init is in the monitor's
//! session, not this terminal's). When our stdin ends, the container's
//! stdin closes only if it was created with `StdinOnce` (`create -i`);
//! either way the output is followed until the container ends (docker's
//! CLI waits for the exit status too). Differs from docker: the detach
//! keys are honoured without a TTY (docker only sees them with `-t`,
//! which kiln's detached containers do not have).

use super::detach_keys::{self, EscapeScanner};
use super::report;
use crate::cache::Store;
use crate::cli::CliError;
use crate::container::state::{self, CreateConfig, Status};
use crate::container::stdin;
use crate::error_chain::Chain;
use clap::Args;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Flags of `kiln attach`.
#[derive(Debug, Args)]
pub struct AttachArgs {
    /// Do not attach STDIN.
    #[arg(long)]
    pub no_stdin: bool,
    /// Override the key sequence for detaching a container (default
    /// `ctrl-p,ctrl-q`).
    #[arg(long, value_name = "KEYS")]
    pub detach_keys: Option<String>,
    /// The container.
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

/// Parses `--detach-keys` for `attach` and `start`, naming the flag.
pub fn detach_keys_flag(keys: Option<&str>) -> Result<Vec<u8>, i32> {
    detach_keys::parse(keys.unwrap_or("")).map_err(|e| {
        crate::cli::usage_error(&format!(
            "invalid --detach-keys {:?}: {e}; expected comma-separated keys such as \
             ctrl-p,ctrl-q",
            keys.unwrap_or("")
        ))
    })
}

/// `kiln attach`.
pub fn run(a: AttachArgs, root: &Path) -> Result<i32, CliError> {
    let keys = match detach_keys_flag(a.detach_keys.as_deref()) {
        Ok(keys) => keys,
        Err(code) => return Ok(code),
    };
    let store = Store::open(root).map_err(|e| CliError(format!("Error: {}", Chain(&e))))?;
    if let Err(e) = state::reconcile(&store) {
        return Ok(report(Chain(&e).to_string()));
    }
    let row = match state::find(&store, &a.container) {
        Ok(row) => row,
        Err(e) => return Ok(report(e)),
    };
    // docker/cli attach.go `inspectContainerAndCheckState` (status 1).
    match Status::parse(&row.state) {
        Status::Running => {}
        Status::Paused => {
            return Ok(report(
                "You cannot attach to a paused container, unpause it first",
            ))
        }
        Status::Restarting => {
            return Ok(report(
                "You cannot attach to a restarting container, wait until it is running",
            ))
        }
        _ => {
            return Ok(report(
                "You cannot attach to a stopped container, start it first",
            ))
        }
    }
    // docker/cli attach.go: stdin only for a container with OpenStdin.
    let open_stdin = CreateConfig::of(&row).is_ok_and(|c| c.open_stdin);
    // The log is opened before its end is taken and kept open while
    // following, so what is written from then on is never missed.
    let path = state::log_path(root, &row.id);
    let log = std::fs::File::open(&path)
        .map_err(|e| CliError(format!("Error: {}: {e}", path.display())))?;
    let offset = log
        .metadata()
        .map_err(|e| CliError(format!("Error: {}: {e}", path.display())))?
        .len();
    let detached = if !a.no_stdin && open_stdin {
        match forward_stdin(root, &row.id, keys) {
            Ok(flag) => flag,
            Err(e) => return Ok(report(e)),
        }
    } else {
        Arc::default()
    };
    let followed = super::logs::follow_run_until(&store, &row.id, offset, &detached);
    drop(log);
    Ok(exit_or_detach(followed?))
}

/// The status of a followed run, or docker's on a detach: the CLI
/// returns moby/term's `EscapeError` ("read escape sequence", status 1;
/// docker/cli `hijack.go` `beginInputStream`).
pub fn exit_or_detach(followed: Option<i32>) -> i32 {
    match followed {
        Some(code) => code,
        None => {
            eprintln!("read escape sequence");
            1
        }
    }
}

/// Copies our stdin into the container's stdin FIFO on a thread of its
/// own until our stdin ends or the detach keys are read; the flag it
/// returns is set on a detach.
pub fn forward_stdin(root: &Path, id: &str, keys: Vec<u8>) -> Result<Arc<AtomicBool>, String> {
    let fifo = stdin::fifo_path(root, id);
    let mut writer = stdin::open_writer(&fifo, Duration::from_secs(5))
        .map_err(|e| format!("attaching to the stdin of container {id}: {e}"))?;
    let detached = Arc::new(AtomicBool::new(false));
    let flag = detached.clone();
    std::thread::spawn(move || {
        let mut scanner = EscapeScanner::new(keys);
        let mut input = std::io::stdin().lock();
        let mut buf = [0u8; 8192];
        let mut out = Vec::new();
        loop {
            let n = match input.read(&mut buf) {
                Ok(0) => {
                    // Our EOF: the FIFO closes with `writer`.
                    let _ = writer.write_all(scanner.held());
                    return;
                }
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => return,
            };
            out.clear();
            let detach = scanner.feed(&buf[..n], &mut out);
            // EPIPE: the monitor is gone; the follower sees the end.
            if writer.write_all(&out).is_err() {
                return;
            }
            if detach {
                flag.store(true, Ordering::SeqCst);
                return;
            }
        }
    });
    Ok(detached)
}
