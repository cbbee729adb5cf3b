//! A way for the caller of [`super::run`] to end a container early (a
//! build whose other step failed, a user's Ctrl-C) without polling.
//!
//! The switch is an eventfd: firing it makes the fd readable, which wakes
//! the supervisor's `poll(2)` at once; the supervisor then sends SIGKILL
//! to the container's init through its pidfd. The init is PID 1 of the
//! container's pid namespace, so its death makes the kernel kill every
//! other process in it (pid_namespaces(7)); the container's cgroup is
//! therefore empty once the init has been reaped.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;

/// Why a kill switch could not be made.
#[derive(Debug, thiserror::Error)]
#[error("failed to create the container's kill switch (eventfd)")]
pub struct KillSwitchError(#[source] std::io::Error);

/// Fires once to SIGKILL a running container; clones share the switch.
/// Firing before the container starts kills it as soon as it is spawned;
/// firing after it ended does nothing.
#[derive(Debug, Clone)]
pub struct KillSwitch {
    fd: Arc<OwnedFd>,
}

impl KillSwitch {
    /// A switch not yet fired.
    pub fn new() -> Result<KillSwitch, KillSwitchError> {
        let fd = rustix::event::eventfd(
            0,
            rustix::event::EventfdFlags::CLOEXEC | rustix::event::EventfdFlags::NONBLOCK,
        )
        .map_err(|e| KillSwitchError(e.into()))?;
        Ok(KillSwitch { fd: Arc::new(fd) })
    }

    /// Asks for the kill; idempotent, never blocks, allocates nothing.
    pub fn fire(&self) {
        // The counter only grows; EAGAIN (it is at its maximum) means it
        // is readable already, which is all that matters.
        let _ = rustix::io::write(&*self.fd, &1u64.to_ne_bytes());
    }

    /// Whether [`KillSwitch::fire`] was called (the counter is left as is).
    pub fn is_fired(&self) -> bool {
        let mut fds = [nix::poll::PollFd::new(
            self.fd.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        matches!(nix::poll::poll(&mut fds, nix::poll::PollTimeout::ZERO), Ok(n) if n > 0)
    }
}

impl AsFd for KillSwitch {
    /// The eventfd, readable once fired (for the supervisor's poll set).
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fires_once_for_all_clones_and_stays_fired() {
        let switch = KillSwitch::new().unwrap();
        let other = switch.clone();
        assert!(!switch.is_fired());
        other.fire();
        other.fire();
        assert!(switch.is_fired());
        assert!(switch.is_fired(), "checking must not reset it");
    }
}
