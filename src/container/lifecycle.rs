//! What the lifecycle commands do to a container recorded in the store:
//! start, stop, kill, wait, remove, rename. Each is a library call the
//! CLI wraps; each reconciles first ([`state::reconcile`]) so a container
//! whose monitor died is seen as exited.
//!
//! Signals go to the container's init by pid *and* start time (a pidfd
//! taken after checking the start time), never to a reused pid.

use super::freezer::{self, FreezerError};
use super::monitor;
use super::state::{self, alive, CreateConfig, StateError, Status};
use crate::cache::{ContainerRow, Store};
use crate::error_chain::Chain;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

/// Why a lifecycle command failed.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    /// Store, lookup or conflict.
    #[error(transparent)]
    State(#[from] StateError),
    /// The start failed.
    #[error(transparent)]
    Start(#[from] monitor::MonitorError),
    /// The cgroup freezer failed.
    #[error(transparent)]
    Freezer(#[from] FreezerError),
    /// A signal could not be sent.
    #[error("failed to signal container {id}")]
    Signal {
        /// The container.
        id: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

impl From<crate::cache::StoreError> for LifecycleError {
    fn from(e: crate::cache::StoreError) -> Self {
        LifecycleError::State(e.into())
    }
}

/// How often a waiter looks at the store again, at most: it starts at
/// [`FIRST_POLL`] and doubles, so a monitor that records the exit within
/// a few milliseconds (the usual `rm -f`) is seen within a few
/// milliseconds, and a long wait costs one store read per 25 ms.
const POLL: Duration = Duration::from_millis(25);
const FIRST_POLL: Duration = Duration::from_millis(1);

/// Sleeps `pause`, then doubles it up to [`POLL`].
fn back_off(pause: &mut Duration) {
    std::thread::sleep(*pause);
    *pause = (*pause * 2).min(POLL);
}

/// Starts a created or exited container in the background (docker
/// `start`); a running one is left alone.
pub fn start(store: &Store, key: &str) -> Result<ContainerRow, LifecycleError> {
    state::reconcile(store)?;
    let row = state::find(store, key)?;
    let status = Status::parse(&row.state);
    if status.is_live() {
        return Ok(row);
    }
    if status == Status::Dead {
        return Err(
            StateError::Conflict(format!("cannot start a dead container {}", row.id)).into(),
        );
    }
    store.update_container(&row.id, |c| {
        c.stop_requested = false;
        true
    })?;
    monitor::spawn(store.root(), &row.id)?;
    Ok(state::find(store, &row.id)?)
}

/// Opens a pidfd for the container's init if it is still that process.
fn init_pidfd(row: &ContainerRow) -> Option<OwnedFd> {
    let init = alive(row.pid)?;
    // SAFETY: pidfd_open(2) with a pid and no flags.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, init.pid as libc::c_int, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: a fresh descriptor the kernel just gave us.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    // The pid could have been reused between the check and the open.
    alive(row.pid).map(|_| fd)
}

fn send(pidfd: &OwnedFd, signal: i32) -> std::io::Result<()> {
    // SAFETY: pidfd_send_signal(2) on a pidfd we own, no siginfo.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0u32,
        )
    };
    if r < 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::ESRCH) {
            return Err(e);
        }
    }
    Ok(())
}

/// Whether the process behind `pidfd` ended within `timeout`.
fn exited_within(pidfd: &OwnedFd, timeout: Duration) -> bool {
    let mut fds = [nix::poll::PollFd::new(
        pidfd.as_fd(),
        nix::poll::PollFlags::POLLIN,
    )];
    let ms = timeout.as_millis().min(u16::MAX as u128) as u16;
    matches!(nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(ms)), Ok(n) if n > 0)
}

/// Thaws a paused container after a signal was queued for it: frozen
/// tasks act on no signal, not even SIGKILL, on a cgroup v1 freezer
/// (docker's `stop` of a paused container unpauses it the same way).
fn thaw_if_paused(row: &ContainerRow) {
    if Status::parse(&row.state) != Status::Paused {
        return;
    }
    if let Some(init) = alive(row.pid) {
        if let Err(e) = freezer::set_frozen(init.pid, false) {
            tracing::warn!(
                "thawing container {}: {}",
                row.id,
                crate::error_chain::Chain(&e)
            );
        }
    }
}

/// docker `pause`: freezes every process of a running container.
pub fn pause(store: &Store, key: &str) -> Result<(), LifecycleError> {
    state::reconcile(store)?;
    let row = state::find(store, key)?;
    // moby `daemon/pause.go`'s wording.
    match Status::parse(&row.state) {
        Status::Running => {}
        Status::Paused => {
            return Err(
                StateError::Conflict(format!("Container {} is already paused", row.id)).into(),
            )
        }
        Status::Restarting => {
            return Err(StateError::Conflict(format!(
                "Container {} is restarting, wait until the container is running",
                row.id
            ))
            .into())
        }
        _ => {
            return Err(StateError::Conflict(format!("Container {} is not running", row.id)).into())
        }
    }
    let Some(init) = alive(row.pid) else {
        return Err(StateError::Conflict(format!("Container {} is not running", row.id)).into());
    };
    freezer::set_frozen(init.pid, true)?;
    store.update_container(&row.id, |c| {
        let running = Status::parse(&c.state) == Status::Running;
        if running {
            c.state = Status::Paused.as_str().into();
        }
        running
    })?;
    Ok(())
}

/// docker `unpause`.
pub fn unpause(store: &Store, key: &str) -> Result<(), LifecycleError> {
    state::reconcile(store)?;
    let row = state::find(store, key)?;
    if Status::parse(&row.state) != Status::Paused {
        return Err(StateError::Conflict(format!("Container {} is not paused", row.id)).into());
    }
    if let Some(init) = alive(row.pid) {
        freezer::set_frozen(init.pid, false)?;
    }
    store.update_container(&row.id, |c| {
        let paused = Status::parse(&c.state) == Status::Paused;
        if paused {
            c.state = Status::Running.as_str().into();
        }
        paused
    })?;
    Ok(())
}

/// Marks that the user ended the container (no restart follows: moby
/// `daemon/kill.go` `killWithSignal` calls `ExitOnNext`).
fn request_stop(store: &Store, id: &str) -> Result<(), LifecycleError> {
    store.update_container(id, |c| {
        c.stop_requested = true;
        true
    })?;
    Ok(())
}

/// Waits until no monitor runs the container (its exit is recorded).
fn wait_unmonitored(store: &Store, id: &str, timeout: Duration) -> Result<(), LifecycleError> {
    let deadline = Instant::now() + timeout;
    let mut pause = FIRST_POLL;
    loop {
        let Some(row) = store.find_container(id)? else {
            return Ok(());
        };
        if !Status::parse(&row.state).is_live() || alive(row.monitor).is_none() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(StateError::Conflict(format!(
                "container {id} did not stop within {}s",
                timeout.as_secs()
            ))
            .into());
        }
        back_off(&mut pause);
    }
}

/// docker `stop`: `signal`, else the image's StopSignal (SIGTERM by
/// default), SIGKILL
/// after `timeout`, then waits for the monitor to record the exit. A
/// container that is not running is left as it is.
pub fn stop(
    store: &Store,
    key: &str,
    timeout: Duration,
    signal: Option<i32>,
) -> Result<ContainerRow, LifecycleError> {
    state::reconcile(store)?;
    let row = state::find(store, key)?;
    if !Status::parse(&row.state).is_live() {
        return Ok(row);
    }
    request_stop(store, &row.id)?;
    if let Some(pidfd) = init_pidfd(&row) {
        let signal = match signal {
            Some(s) => s,
            None => CreateConfig::of(&row)?.stop_signal,
        };
        send(&pidfd, signal).map_err(|source| LifecycleError::Signal {
            id: row.id.clone(),
            source,
        })?;
        thaw_if_paused(&row);
        if !exited_within(&pidfd, timeout) {
            tracing::info!(
                "container {} did not exit within {}s of signal {signal}: killing it",
                row.id,
                timeout.as_secs()
            );
            send(&pidfd, libc::SIGKILL).map_err(|source| LifecycleError::Signal {
                id: row.id.clone(),
                source,
            })?;
        }
    }
    wait_unmonitored(store, &row.id, Duration::from_secs(30))?;
    Ok(state::find(store, &row.id)?)
}

/// docker `kill -s SIGNAL`: an error unless the container is running
/// (moby's "container … is not running").
pub fn kill(store: &Store, key: &str, signal: i32) -> Result<ContainerRow, LifecycleError> {
    state::reconcile(store)?;
    let row = state::find(store, key)?;
    let status = Status::parse(&row.state);
    if !status.is_live() {
        return Err(StateError::Conflict(format!(
            "cannot kill container: {key}: container {} is not running",
            row.id
        ))
        .into());
    }
    request_stop(store, &row.id)?;
    if let Some(pidfd) = init_pidfd(&row) {
        send(&pidfd, signal).map_err(|source| LifecycleError::Signal {
            id: row.id.clone(),
            source,
        })?;
        thaw_if_paused(&row);
        if signal == libc::SIGKILL {
            // docker's `Kill` waits for the end of a SIGKILL'd container.
            exited_within(&pidfd, Duration::from_secs(10));
            wait_unmonitored(store, &row.id, Duration::from_secs(10))?;
        }
    }
    Ok(row)
}

/// docker `wait`: blocks until the container is not running and returns
/// its exit code.
pub fn wait(store: &Store, key: &str) -> Result<i32, LifecycleError> {
    state::reconcile(store)?;
    let id = state::find(store, key)?.id;
    // A `--rm` container's monitor keeps the row until we read it.
    let _waiter = super::waiters::Waiter::register(store.root(), &id);
    let mut pause = FIRST_POLL;
    loop {
        let Some(row) = store.find_container(&id)? else {
            // Removed before we registered (or by `rm -f`): its code went
            // with the row.
            return Ok(0);
        };
        let status = Status::parse(&row.state);
        if !status.is_live() {
            return Ok(row.exit_code);
        }
        if alive(row.monitor).is_none() {
            state::reconcile(store)?;
            continue;
        }
        back_off(&mut pause);
    }
}

/// docker `rm [-f] [-v]`: removes a container that does not run; `force`
/// kills a running one first; `volumes` removes its anonymous volumes too
/// (docker's `rm -v`; named ones always stay).
pub fn remove(store: &Store, key: &str, force: bool, volumes: bool) -> Result<(), LifecycleError> {
    state::reconcile(store)?;
    let row = state::find(store, key)?;
    if Status::parse(&row.state).is_live() {
        if !force {
            // docker's wording (daemon/delete.go `cleanupContainer`).
            return Err(StateError::Conflict(format!(
                "cannot remove container \"{key}\": container is running: stop the container \
                 before removing or force remove"
            ))
            .into());
        }
        request_stop(store, &row.id)?;
        if let Some(pidfd) = init_pidfd(&row) {
            let _ = send(&pidfd, libc::SIGKILL);
            thaw_if_paused(&row);
            exited_within(&pidfd, Duration::from_secs(10));
        }
        wait_unmonitored(store, &row.id, Duration::from_secs(10))?;
        // An auto-removed container may already be gone.
        let Some(row) = store.find_container(&row.id)? else {
            return Ok(());
        };
        return remove_stopped(store, &row, volumes);
    }
    remove_stopped(store, &row, volumes)
}

/// Removes a container that no longer runs, with its anonymous volumes
/// when asked (before its state dir, which records them, goes).
fn remove_stopped(store: &Store, row: &ContainerRow, volumes: bool) -> Result<(), LifecycleError> {
    if volumes {
        let dir = state::state_dir(store.root(), &row.id);
        if let Err(e) = crate::volume::VolumeStore::new(store.root()).detach(&dir, true) {
            tracing::warn!(
                "removing the volumes of container {}: {}",
                row.id,
                Chain(&e)
            );
        }
    }
    Ok(state::remove(store, row)?)
}

/// docker `rename`.
pub fn rename(store: &Store, key: &str, new_name: &str) -> Result<(), LifecycleError> {
    state::reconcile(store)?;
    let row = state::find(store, key)?;
    let valid = new_name.len() >= 2
        && new_name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && new_name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if !valid {
        // docker's wording (daemon/names.go `validContainerNamePattern`).
        return Err(StateError::Conflict(format!(
            "Invalid container name ({new_name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        ))
        .into());
    }
    if row.name == new_name {
        return Err(StateError::Conflict(
            "Renaming a container with the same name as its current name".into(),
        )
        .into());
    }
    // The `--name` link of a foreground run is the name's lock there:
    // take the new one first, drop the old one after the row changed.
    let names = store.layout().container_names();
    let new_link = names.join(new_name);
    let _ = std::fs::create_dir_all(&names);
    if let Err(e) = std::os::unix::fs::symlink(&row.id, &new_link) {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            let owner = std::fs::read_link(&new_link).unwrap_or_default();
            return Err(StateError::Conflict(format!(
                "Conflict. The container name \"/{new_name}\" is already in use by container \"{}\". \
                 You have to remove (or rename) that container to be able to reuse that name.",
                owner.display()
            ))
            .into());
        }
    }
    if let Err(e) = store.update_container(&row.id, |c| {
        c.name = new_name.to_string();
        true
    }) {
        let _ = std::fs::remove_file(&new_link);
        return Err(e.into());
    }
    let old = names.join(&row.name);
    if std::fs::read_link(&old).is_ok_and(|t| t.as_os_str() == row.id.as_str()) {
        let _ = std::fs::remove_file(old);
    }
    Ok(())
}

/// docker `container prune`: removes every container that is not
/// running; returns their IDs.
pub fn prune(store: &Store) -> Result<Vec<String>, LifecycleError> {
    prune_where(store, |_| true)
}

/// [`prune`] of only the containers `allowed` lets through (a prune's
/// `--filter`).
pub fn prune_where(
    store: &Store,
    allowed: impl Fn(&ContainerRow) -> bool,
) -> Result<Vec<String>, LifecycleError> {
    state::reconcile(store)?;
    let mut removed = Vec::new();
    for row in store.list_containers()? {
        if matches!(
            Status::parse(&row.state),
            Status::Created | Status::Exited | Status::Dead
        ) && allowed(&row)
        {
            state::remove(store, &row)?;
            removed.push(row.id);
        }
    }
    Ok(removed)
}

/// docker's name of signal `n` (`SIGUSR1`), or its number.
pub fn signal_name(n: i32) -> String {
    const NAMES: &[&str] = &[
        "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2",
        "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG",
        "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "PWR", "SYS",
    ];
    NAMES
        .iter()
        .find(|name| parse_signal(name) == Some(n))
        .map(|name| format!("SIG{name}"))
        .unwrap_or_else(|| n.to_string())
}

/// A signal by docker's names: `KILL`, `SIGKILL`, `9`.
pub fn parse_signal(s: &str) -> Option<i32> {
    if let Ok(n) = s.parse::<i32>() {
        return (1..=64).contains(&n).then_some(n);
    }
    let name = s.to_ascii_uppercase();
    let name = name.strip_prefix("SIG").unwrap_or(&name);
    let n = match name {
        "HUP" => libc::SIGHUP,
        "INT" => libc::SIGINT,
        "QUIT" => libc::SIGQUIT,
        "ILL" => libc::SIGILL,
        "TRAP" => libc::SIGTRAP,
        "ABRT" | "IOT" => libc::SIGABRT,
        "BUS" => libc::SIGBUS,
        "FPE" => libc::SIGFPE,
        "KILL" => libc::SIGKILL,
        "USR1" => libc::SIGUSR1,
        "SEGV" => libc::SIGSEGV,
        "USR2" => libc::SIGUSR2,
        "PIPE" => libc::SIGPIPE,
        "ALRM" => libc::SIGALRM,
        "TERM" => libc::SIGTERM,
        "STKFLT" => libc::SIGSTKFLT,
        "CHLD" | "CLD" => libc::SIGCHLD,
        "CONT" => libc::SIGCONT,
        "STOP" => libc::SIGSTOP,
        "TSTP" => libc::SIGTSTP,
        "TTIN" => libc::SIGTTIN,
        "TTOU" => libc::SIGTTOU,
        "URG" => libc::SIGURG,
        "XCPU" => libc::SIGXCPU,
        "XFSZ" => libc::SIGXFSZ,
        "VTALRM" => libc::SIGVTALRM,
        "PROF" => libc::SIGPROF,
        "WINCH" => libc::SIGWINCH,
        "IO" | "POLL" => libc::SIGIO,
        "PWR" => libc::SIGPWR,
        "SYS" => libc::SIGSYS,
        _ => return None,
    };
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_by_name_number_and_prefix() {
        assert_eq!(parse_signal("KILL"), Some(9));
        assert_eq!(parse_signal("sigterm"), Some(15));
        assert_eq!(parse_signal("SIGUSR1"), Some(libc::SIGUSR1));
        assert_eq!(parse_signal("9"), Some(9));
        assert_eq!(parse_signal("0"), None);
        assert_eq!(parse_signal("NOPE"), None);
        assert_eq!(signal_name(10), "SIGUSR1");
        assert_eq!(signal_name(15), "SIGTERM");
        assert_eq!(signal_name(40), "40");
    }
}
