//! The monitor of a detached container: kiln re-executed as
//! `kiln container-monitor ROOT ID` (podman's conmon, in-process).
//!
//! `kiln run -d` and `kiln start` [`spawn`] it in a session of its own
//! (`setsid`, stdio on `/dev/null`, its own messages in the state dir's
//! `monitor.log`) and return once it reports on fd 3 that the command
//! runs, or why it could not start. The monitor then:
//! - runs the container through the same [`runtime::run_observed`] as a
//!   foreground `kiln run`, its stdout/stderr on pipes copied into the
//!   json-file log ([`super::log`]);
//! - records in the store that it runs (init pid and start time, its own
//!   pid and start time, the boot ID), then how it ended (exit code, the
//!   reason, OOM) — the init is its child, so it alone can reap it;
//! - applies `--restart` (moby `restartmanager`: 100 ms backoff doubling
//!   per restart, reset after a run of 10 s or more; a stop the user asked
//!   for never restarts);
//! - removes a `--rm` container at the end.
//!
//! The container's init dies with the monitor (`PR_SET_PDEATHSIG`): a
//! killed monitor leaves an exited container that the next kiln command
//! reconciles ([`super::state::reconcile`]). Unlike dockerd, nothing
//! restarts `always` containers after a reboot (podman needs its
//! `podman-restart` unit for that too).

use super::image::LeasedImage;
use super::log::LogWriter;
use super::state::{self, CreateConfig, Status};
use super::stdin::StdinRelay;
use crate::cache::scratch::ProcessId;
use crate::cache::Store;
use crate::error_chain::Chain;
use crate::network;
use crate::runtime::{self, Input, Output, RuntimeError, Stdio};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The first argument that makes kiln a monitor (dispatched before clap).
pub const MONITOR_ARG: &str = "container-monitor";

/// The descriptor on which a monitor reports its first start.
const READY_FD: i32 = 3;

/// Why a detached start failed.
#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    /// The monitor could not be started.
    #[error("failed to start the container's monitor")]
    Spawn(#[source] std::io::Error),
    /// The container could not be started; `exit_code` is docker's
    /// (125 setup, 126 cannot invoke, 127 not found).
    #[error("{message}")]
    Start {
        /// The runtime's message with its causes.
        message: String,
        /// What the CLI exits with.
        exit_code: i32,
    },
    /// The monitor ended without a word (see its `monitor.log`).
    #[error("the container's monitor exited before the container started (see {0})")]
    Died(PathBuf),
}

impl MonitorError {
    /// What the CLI exits with.
    pub fn exit_code(&self) -> i32 {
        match self {
            MonitorError::Start { exit_code, .. } => *exit_code,
            _ => 125,
        }
    }
}

/// Starts the monitor of container `id` and waits until the container
/// runs (or failed to start).
pub fn spawn(root: &Path, id: &str) -> Result<(), MonitorError> {
    use std::os::unix::process::CommandExt;
    let root = std::path::absolute(root).map_err(MonitorError::Spawn)?;
    let dir = state::state_dir(&root, id);
    std::fs::create_dir_all(&dir).map_err(MonitorError::Spawn)?;
    let log_path = dir.join("monitor.log");
    let log = std::fs::File::options()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(MonitorError::Spawn)?;
    let (mut ready_r, ready_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map(|(r, w)| (std::fs::File::from(r), w))
        .map_err(|e| MonitorError::Spawn(e.into()))?;
    let exe = std::env::current_exe().map_err(MonitorError::Spawn)?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg(MONITOR_ARG)
        .arg(&root)
        .arg(id)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(log)
        // Hold no directory of the caller's (a mount point to unmount).
        .current_dir("/");
    let w = ready_w.as_raw_fd();
    // SAFETY: only async-signal-safe calls (setsid, dup2, fcntl) between
    // fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            // Its own session: no terminal's signals reach it, and it
            // outlives the CLI.
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            let r = if w == READY_FD {
                libc::fcntl(w, libc::F_SETFD, 0)
            } else {
                libc::dup2(w, READY_FD)
            };
            if r < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(MonitorError::Spawn)?;
    drop(ready_w);
    let mut report = String::new();
    let _ = ready_r.read_to_string(&mut report);
    // A monitor that already ended (a failed start) is reaped here; a
    // running one is left to init when the CLI exits.
    let _ = child.try_wait();
    parse_report(&report).map_err(|e| match e {
        Some(e) => e,
        None => MonitorError::Died(log_path),
    })
}

/// `ok`, or `err CODE\nMESSAGE`; `Err(None)` for nothing at all.
fn parse_report(report: &str) -> Result<(), Option<MonitorError>> {
    if report == "ok" {
        return Ok(());
    }
    let Some(rest) = report.strip_prefix("err ") else {
        return Err(None);
    };
    let (code, message) = rest.split_once('\n').unwrap_or((rest, ""));
    Err(Some(MonitorError::Start {
        message: message.to_string(),
        exit_code: code.trim().parse().unwrap_or(125),
    }))
}

/// fd 3, where the spawning CLI waits for the first start's outcome.
struct Ready(Option<std::fs::File>);

impl Ready {
    fn take() -> Ready {
        // SAFETY: F_GETFD only asks whether fd 3 is open.
        if unsafe { libc::fcntl(READY_FD, libc::F_GETFD) } < 0 {
            return Ready(None);
        }
        // SAFETY: fd 3 is open and nothing else in this process owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(READY_FD) };
        Ready(Some(fd.into()))
    }

    fn send(&mut self, msg: &str) {
        if let Some(mut f) = self.0.take() {
            let _ = f.write_all(msg.as_bytes());
        }
    }
}

/// The monitor's `main`: `kiln container-monitor ROOT ID`.
pub fn main() -> i32 {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(2).collect();
    let mut ready = Ready::take();
    let [root, id] = args.as_slice() else {
        eprintln!("usage: kiln {MONITOR_ARG} ROOT ID");
        return 2;
    };
    let id = id.to_string_lossy().into_owned();
    match monitor(Path::new(root), &id, &mut ready) {
        Ok(()) => 0,
        Err(e) => {
            let message = Chain(&e).to_string();
            eprintln!("kiln {MONITOR_ARG} {id}: {message}");
            ready.send(&format!("err 125\n{message}"));
            1
        }
    }
}

/// Why the monitor itself failed (not the container).
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error(transparent)]
    State(#[from] state::StateError),
    #[error(transparent)]
    Store(#[from] crate::cache::StoreError),
    #[error("the container's image {0} is not in the store any more")]
    Image(String, #[source] crate::cache::StoreError),
    #[error("failed to set up the container's log")]
    Log(#[source] std::io::Error),
    #[error("failed to set up the container's stdin")]
    Stdin(#[source] std::io::Error),
}

/// How one run ended, as the row records it.
struct Ending {
    code: i32,
    reason: String,
    error: String,
    oom: bool,
    /// The command never ran (the init reported an error).
    failed_start: bool,
}

fn ending(result: &Result<runtime::ExitStatus, RuntimeError>) -> Ending {
    match result {
        Ok(status) => Ending {
            code: status.docker_code(),
            reason: match (status.oom_killed, status.signal) {
                (true, _) => "OOM killed".into(),
                (false, Some(sig)) => format!("killed by signal {sig}"),
                (false, None) => "exited".into(),
            },
            error: String::new(),
            oom: status.oom_killed,
            failed_start: false,
        },
        Err(e) => Ending {
            code: e.exit_code(),
            reason: "failed to start".into(),
            error: Chain(e).to_string(),
            oom: false,
            failed_start: true,
        },
    }
}

/// Records how a foreground `kiln run` (its own monitor) ended.
pub fn record_end(
    store: &Store,
    id: &str,
    result: &Result<runtime::ExitStatus, RuntimeError>,
) -> Result<(), crate::cache::StoreError> {
    let end = ending(result);
    store.update_container(id, |c| {
        c.state = Status::Exited.as_str().into();
        c.exit_code = end.code;
        c.reason = end.reason;
        c.error = end.error;
        c.oom_killed = end.oom;
        c.finished = state::now();
        c.pid = None;
        c.monitor = None;
        true
    })?;
    Ok(())
}

/// Records that a foreground `kiln run` (its own monitor) runs `pid`.
pub fn record_running(store: &Store, id: &str, pid: i32) -> Result<(), crate::cache::StoreError> {
    let init = ProcessId::of(pid as u32).map(|p| (p.pid, p.start));
    store.update_container(id, |c| {
        c.state = Status::Running.as_str().into();
        c.pid = init;
        c.started = state::now();
        true
    })?;
    Ok(())
}

fn monitor(root: &Path, id: &str, ready: &mut Ready) -> Result<(), Failure> {
    let store = Store::open(root)?;
    let me = ProcessId::current();
    let boot = state::boot_id();
    let mut backoff = Duration::from_millis(100);
    let mut first = true;
    // `-i`: one FIFO and relay for the monitor's life, so that the
    // container's stdin outlives each attaching client (see `stdin`).
    let relay = {
        let config = CreateConfig::of(&state::find(&store, id)?)?;
        match config.open_stdin {
            true => Some(
                StdinRelay::start(&super::stdin::fifo_path(root, id), config.stdin_once)
                    .map_err(Failure::Stdin)?,
            ),
            false => None,
        }
    };
    loop {
        let row = state::find(&store, id)?;
        let config = CreateConfig::of(&row)?;
        let mut spec = config.spec.clone();
        spec.resources = config.resources.clone();
        // The image's layers are leased by this process for this run.
        let _leased = match &row.image_id {
            Some(image_id) => {
                let held = store
                    .image_by_id(&image_id.parse().map_err(crate::cache::StoreError::from)?)
                    .and_then(|image| {
                        LeasedImage::lease(&store, image, &format!("container {}", &id[..12]))
                    })
                    .map_err(|e| Failure::Image(row.image.clone(), e))?;
                spec.rootfs.lowers = held.lowers()?;
                Some(held)
            }
            None => None,
        };
        store.update_container(id, |c| {
            c.monitor = Some((me.pid, me.start));
            c.boot_id = boot.clone();
            true
        })?;
        let log = LogWriter::open(&state::log_path(root, id)).map_err(Failure::Log)?;
        let pipe = || {
            rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
                .map_err(|e| Failure::Log(e.into()))
        };
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        let copiers = [log.copy(out_r, "stdout"), log.copy(err_r, "stderr")];
        let stdin = match &relay {
            Some(relay) => Input::Fd(relay.next_run().map_err(Failure::Stdin)?),
            None => Input::Null,
        };
        let stdio = Stdio {
            stdin,
            stdout: Output::Fd(out_w),
            stderr: Output::Fd(err_w),
            forward_signals: false,
        };
        let started_at = Instant::now();
        let mut on_exec = |pid: i32| {
            if let Err(e) = record_running(&store, id, pid) {
                eprintln!("recording container {id} as running: {e}");
            }
            ready.send("ok");
        };
        // A bridge endpoint was reserved by `run -d`/`create` and handed
        // over; it is plumbed into each new namespace before the command
        // runs, and unplumbed when the run ends (the address stays).
        let layout = crate::cache::StoreLayout::new(root);
        let result = if network::is_reserved(&layout, id).map_err(state::StateError::from)? {
            let result = runtime::run_observed_with_network(
                &spec,
                stdio,
                &mut |pid| {
                    network::unplumb(&layout, id)?;
                    network::plumb(&layout, id, pid)?;
                    // Names on its user networks, before its command runs.
                    if let Err(e) = super::hosts::refresh(&layout, id) {
                        tracing::warn!("container {id}: {}", Chain(&e));
                    }
                    Ok(())
                },
                &mut on_exec,
            );
            if let Err(e) = network::unplumb(&layout, id) {
                tracing::warn!("container {id}: {}", crate::error_chain::Chain(&e));
            }
            result
        } else {
            runtime::run_observed(&spec, stdio, &mut on_exec)
        };
        if let Some(relay) = &relay {
            relay.end_run();
        }
        for c in copiers {
            let _ = c.join();
        }
        let end = ending(&result);
        let keep_created = end.failed_start && first;
        if started_at.elapsed() >= Duration::from_secs(10) {
            backoff = Duration::from_millis(100);
        }
        // The exit and the decision to restart are one write, so that a
        // `kiln wait` never sees "exited" between two runs.
        let row = store
            .update_container(id, |c| {
                let restart = !keep_created
                    && config
                        .restart
                        .should_restart(end.code, c.restart_count, c.stop_requested);
                c.state = if keep_created {
                    Status::Created
                } else if restart {
                    c.restart_count += 1;
                    Status::Restarting
                } else {
                    Status::Exited
                }
                .as_str()
                .into();
                c.exit_code = end.code;
                c.reason = end.reason.clone();
                c.error = end.error.clone();
                c.oom_killed = end.oom;
                c.finished = state::now();
                c.pid = None;
                true
            })?
            .ok_or_else(|| state::StateError::NoSuchContainer(id.to_string()))?;
        if keep_created {
            ready.send(&format!("err {}\n{}", end.code, end.error));
            break;
        }
        first = false;
        if Status::parse(&row.state) != Status::Restarting {
            break;
        }
        // The backoff grows to a minute: a stop asked for meanwhile is
        // seen within a poll, not after it.
        let wake = Instant::now() + backoff;
        backoff = (backoff * 2).min(Duration::from_secs(60));
        while Instant::now() < wake && !state::find(&store, id)?.stop_requested {
            std::thread::sleep(
                Duration::from_millis(50).min(wake.saturating_duration_since(Instant::now())),
            );
        }
        if state::find(&store, id)?.stop_requested {
            store.update_container(id, |c| {
                c.state = Status::Exited.as_str().into();
                true
            })?;
            break;
        }
    }
    let row = store
        .update_container(id, |c| {
            c.monitor = None;
            true
        })?
        .ok_or_else(|| state::StateError::NoSuchContainer(id.to_string()))?;
    if CreateConfig::of(&row)?.auto_remove {
        // `kiln wait`/`attach` read the exit code from the row: it goes
        // once they have (bounded: a stuck waiter does not keep it).
        super::waiters::remove_after_waiters(root, id, Duration::from_secs(30), || {
            state::remove(&store, &row)
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_parse_into_outcomes() {
        assert!(parse_report("ok").is_ok());
        match parse_report("err 127\nexec: \"nosuch\": not found") {
            Err(Some(MonitorError::Start { message, exit_code })) => {
                assert_eq!(
                    (exit_code, message.as_str()),
                    (127, "exec: \"nosuch\": not found")
                )
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(parse_report(""), Err(None)));
    }
}
