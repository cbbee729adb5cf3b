//! `--init`: kiln as a minimal PID 1 (what tini is for docker).
//!
//! A process that is PID 1 of its namespace has two jobs most programs do
//! not do: reaping orphaned zombies, and handling signals (the kernel drops
//! signals to PID 1 that it has no handler for, so `docker stop` would wait
//! out its timeout). With `--init` kiln's init stays PID 1, forks the
//! command, forwards every signal it gets to it, reaps everything, and
//! exits with the command's status (128+n for a signal, like tini).

use super::channel::Channel;
use super::exec::Command;
use crate::error_chain::Chain;
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{ForkResult, Pid};

/// Why the reaper could not run the command.
#[derive(Debug, thiserror::Error)]
pub enum ReaperError {
    /// Setting up signal handling failed.
    #[error("failed to set up signal forwarding in the init")]
    Signals(#[source] nix::Error),
    /// fork(2) failed.
    #[error("failed to fork the container process")]
    Fork(#[source] nix::Error),
}

/// Signals forwarded to the command: every catchable one except those that
/// only make sense for the reaper itself or report its own faults.
fn forwarded() -> SigSet {
    let mut set = SigSet::all();
    for sig in [
        Signal::SIGKILL,
        Signal::SIGSTOP,
        Signal::SIGSEGV,
        Signal::SIGBUS,
        Signal::SIGFPE,
        Signal::SIGILL,
        Signal::SIGTRAP,
        Signal::SIGABRT,
        Signal::SIGSYS,
    ] {
        set.remove(sig);
    }
    set
}

/// Forks `command` as a child in its own process group and supervises it.
/// Only the child keeps kiln's `channel` (it reports an exec failure with
/// `report` and exits with what that returns; success closes it), so
/// nothing in PID 1 stays connected to kiln. Returns the status kiln should
/// see; a failure before the fork gives the channel back for reporting.
pub fn run(
    command: &Command,
    terminal: bool,
    channel: Channel,
    report: impl FnOnce(&Channel, super::exec::ExecError) -> i32,
) -> Result<i32, (Channel, ReaperError)> {
    let mask = forwarded();
    if let Err(e) = mask.thread_block() {
        return Err((channel, ReaperError::Signals(e)));
    }
    let sfd = match SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC) {
        Ok(sfd) => sfd,
        Err(e) => return Err((channel, ReaperError::Signals(e))),
    };
    // SAFETY: the init is single-threaded, so the child may do anything.
    let child = match unsafe { nix::unistd::fork() } {
        Err(e) => return Err((channel, ReaperError::Fork(e))),
        Ok(ForkResult::Child) => {
            let _ = nix::unistd::setpgid(Pid::from_raw(0), Pid::from_raw(0));
            if terminal {
                // Take the terminal's foreground so ^C reaches the command.
                // SIGTTOU is still blocked, so this cannot stop us.
                let _ = nix::unistd::tcsetpgrp(std::io::stdin(), nix::unistd::getpid());
            }
            drop(sfd);
            super::init::reset_signals();
            let err = command.exec();
            std::process::exit(report(&channel, err));
        }
        Ok(ForkResult::Parent { child }) => child,
    };
    drop(channel);
    loop {
        let info = match sfd.read_signal() {
            Ok(Some(info)) => info,
            Ok(None) | Err(nix::Error::EINTR) => continue,
            Err(e) => {
                tracing::error!("init: reading signals failed: {e}", e = Chain(&e));
                return Ok(super::init::EXIT_SETUP_FAILED);
            }
        };
        let signo = info.ssi_signo as i32;
        if signo != libc::SIGCHLD {
            if let Ok(sig) = Signal::try_from(signo) {
                let _ = nix::sys::signal::kill(child, sig);
            }
            continue;
        }
        // One SIGCHLD may stand for many exits: reap until none is left.
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) if pid == child => return Ok(code),
                Ok(WaitStatus::Signaled(pid, sig, _)) if pid == child => {
                    return Ok(128 + sig as i32)
                }
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => continue,
            }
        }
    }
}
