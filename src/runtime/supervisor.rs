//! kiln's side of a running container: one `poll(2)` loop that reads the
//! init's messages, relays terminal I/O, forwards signals, kills the
//! container when the caller's [`KillSwitch`] fires and notices the exit
//! through a pidfd.
//!
//! kiln's own standard streams are never handed to the container: it gets
//! pipes (or its own pty with `-t`) and this loop copies. A descriptor in
//! the container's fd table can be reopened through `/proc/self/fd/N`
//! with a new open mode, so a handed-over `>> ci.log` would let it read
//! what the caller logged earlier and truncate it, and a handed-over
//! terminal would let it push input into the user's shell (TIOCSTI).
//! Only descriptors a caller made for the container (a build's log pipes)
//! go over directly.

use super::channel::{Channel, InitMessage};
use super::kill_switch::KillSwitch;
use super::pty::{self, RawMode};
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

/// Why supervising failed.
#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    /// Setting up signal forwarding failed.
    #[error("failed to set up signal forwarding")]
    Signals(#[source] nix::Error),
    /// poll/read/write on the relays failed.
    #[error("failed to relay the container's input/output")]
    Io(#[source] std::io::Error),
    /// Waiting for the init failed.
    #[error("failed to wait for the container")]
    Wait(#[source] nix::Error),
    /// A channel failure.
    #[error(transparent)]
    Channel(#[from] super::channel::ChannelError),
    /// Terminal handling failed.
    #[error(transparent)]
    Pty(#[from] pty::PtyError),
}

/// The signals `kiln run` passes on to the container (docker's sig-proxy
/// forwards all but SIGCHLD, SIGPIPE and SIGURG; faults stay ours).
pub fn forwarded_signals() -> SigSet {
    let mut set = SigSet::empty();
    for sig in [
        Signal::SIGHUP,
        Signal::SIGINT,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGALRM,
        Signal::SIGTERM,
        Signal::SIGCONT,
        Signal::SIGTSTP,
        Signal::SIGTTIN,
        Signal::SIGTTOU,
        Signal::SIGVTALRM,
        Signal::SIGPROF,
        Signal::SIGWINCH,
        Signal::SIGIO,
        Signal::SIGPWR,
        Signal::SIGXCPU,
        Signal::SIGXFSZ,
    ] {
        set.add(sig);
    }
    set
}

/// Signals blocked in this thread and read from a signalfd while a
/// container runs; the old mask comes back on drop.
pub struct SignalProxy {
    fd: SignalFd,
    old: SigSet,
}

impl SignalProxy {
    /// Blocks [`forwarded_signals`]. Call before spawning so that a signal
    /// arriving in between is queued, not lost or fatal to kiln.
    pub fn block() -> Result<SignalProxy, SupervisorError> {
        let set = forwarded_signals();
        let old = SigSet::thread_get_mask().map_err(SupervisorError::Signals)?;
        set.thread_block().map_err(SupervisorError::Signals)?;
        let fd = SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
            .map_err(SupervisorError::Signals)?;
        Ok(SignalProxy { fd, old })
    }
}

impl Drop for SignalProxy {
    fn drop(&mut self) {
        // Swallow what is still queued: unblocking a pending SIGINT would
        // kill kiln after the container has already been handled.
        while let Ok(Some(_)) = self.fd.read_signal() {}
        let _ = self.old.thread_set_mask();
    }
}

/// Which way a relay copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    /// kiln's stdin into the container; irrelevant once it has exited.
    Input,
    /// The container's output to kiln's; drained after the exit.
    Output,
}

/// Copies bytes from `src` to `dst` without blocking the loop on `src`.
struct Relay {
    src: OwnedFd,
    /// Dropped when an input ends, which is what gives the container EOF.
    dst: Option<OwnedFd>,
    direction: Direction,
    pending: Vec<u8>,
    done: bool,
}

impl Relay {
    /// Reads once from `src` and writes it all to `dst`; false at the end.
    fn pump(&mut self) -> std::io::Result<bool> {
        let mut buf = [0u8; 64 * 1024];
        let n = match rustix::io::read(&self.src, &mut buf) {
            // EIO: every slave fd of the pty is closed.
            Ok(0) | Err(rustix::io::Errno::IO) => return Ok(false),
            Ok(n) => n,
            Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INTR) => return Ok(true),
            Err(e) => return Err(e.into()),
        };
        let Some(dst) = &self.dst else {
            return Ok(false);
        };
        self.pending.extend_from_slice(&buf[..n]);
        while !self.pending.is_empty() {
            match rustix::io::write(dst, &self.pending) {
                Ok(w) => {
                    self.pending.drain(..w);
                }
                Err(rustix::io::Errno::INTR) => {}
                Err(rustix::io::Errno::AGAIN) => {
                    // dst is our non-blocking end into the container: wait
                    // for room rather than spin.
                    let mut fds = [PollFd::new(dst.as_fd(), PollFlags::POLLOUT)];
                    let _ = nix::poll::poll(&mut fds, PollTimeout::NONE);
                }
                // The reader is gone (the container closed its stdin).
                Err(rustix::io::Errno::PIPE) => {
                    self.pending.clear();
                    return Ok(false);
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(true)
    }
}

/// What kiln relays for one container.
#[derive(Default)]
pub struct Relays {
    list: Vec<Relay>,
    /// The user's terminal, kept raw while a pty is relayed.
    raw: Option<RawMode>,
    /// Window size changes: read from the first fd, applied to the master.
    resize: Option<(OwnedFd, OwnedFd)>,
}

impl Relays {
    /// Relays `src` (a fd of ours) into the container through `dst`
    /// (our end of its stdin); `dst` is closed when `src` ends.
    pub fn input(&mut self, src: OwnedFd, dst: OwnedFd) -> std::io::Result<()> {
        rustix::io::ioctl_fionbio(&dst, true)?;
        self.push(src, dst, Direction::Input);
        Ok(())
    }

    /// Relays the container's output `src` (our pipe/pty end) to our `dst`.
    pub fn output(&mut self, src: OwnedFd, dst: OwnedFd) -> std::io::Result<()> {
        rustix::io::ioctl_fionbio(&src, true)?;
        self.push(src, dst, Direction::Output);
        Ok(())
    }

    fn push(&mut self, src: OwnedFd, dst: OwnedFd, direction: Direction) {
        self.list.push(Relay {
            src,
            dst: Some(dst),
            direction,
            pending: Vec::new(),
            done: false,
        });
    }

    fn attach_console(
        &mut self,
        master: OwnedFd,
        console: &ConsoleIo,
    ) -> Result<(), SupervisorError> {
        let dup = |fd: &OwnedFd| fd.try_clone().map_err(SupervisorError::Io);
        if let Some(stdin) = &console.stdin {
            if pty::is_terminal(stdin) {
                self.raw = Some(RawMode::enable(stdin)?);
            }
            self.input(dup(stdin)?, dup(&master)?)
                .map_err(SupervisorError::Io)?;
        }
        if pty::is_terminal(&console.stdout) {
            if let Some((rows, cols)) = pty::size(&console.stdout) {
                let _ = pty::set_size(&master, rows, cols);
            }
            self.resize = Some((dup(&console.stdout)?, dup(&master)?));
        }
        self.output(master, dup(&console.stdout)?)
            .map_err(SupervisorError::Io)?;
        Ok(())
    }
}

/// kiln's ends for a `-t` container: the master is relayed between these.
pub struct ConsoleIo {
    /// Input for the terminal (`-i`), or none.
    pub stdin: Option<OwnedFd>,
    /// Where the terminal's output goes.
    pub stdout: OwnedFd,
}

/// How a container's init ended (its wait status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Exited with this code.
    Exited(i32),
    /// Killed by this signal.
    Signaled(i32),
}

/// The result of supervising.
#[derive(Debug)]
pub struct Outcome {
    /// How the init ended.
    pub ended: Ended,
    /// The error the init reported instead of running the command.
    pub error: Option<(String, i32)>,
    /// Whether the init got as far as executing the command.
    pub executed: bool,
    /// Whether the [`Watch::kill`] switch fired and kiln sent SIGKILL.
    pub killed: bool,
}

/// Everything the loop watches.
pub struct Watch<'a> {
    /// The init's pid (kiln's namespace).
    pub pid: i32,
    /// Its pidfd: readable once it has exited.
    pub pidfd: &'a OwnedFd,
    /// The socket to the init.
    pub channel: Channel,
    /// The relays set up before the start.
    pub relays: Relays,
    /// Where a pty master goes, for `-t`.
    pub console: Option<ConsoleIo>,
    /// Signals to forward, if kiln forwards them.
    pub signals: Option<&'a SignalProxy>,
    /// Fired by the caller to have the container killed.
    pub kill: Option<&'a KillSwitch>,
    /// Called once with the init's pid when it has executed the command
    /// (a detached container's monitor records it as running then).
    pub on_exec: Option<Box<dyn FnMut(i32) + 'a>>,
}

/// Runs the loop until the init has exited and all output is relayed,
/// then reaps it.
pub fn supervise(mut w: Watch<'_>) -> Result<Outcome, SupervisorError> {
    let mut channel = Some(w.channel);
    let mut error = None;
    let mut executed = false;
    let mut exited = false;
    let mut killed = false;
    loop {
        // Inputs stop mattering at the exit; outputs are drained to EOF.
        let live: Vec<usize> = (0..w.relays.list.len())
            .filter(|&i| {
                let r = &w.relays.list[i];
                !r.done && (!exited || r.direction == Direction::Output)
            })
            .collect();
        if exited && channel.is_none() && live.is_empty() {
            break;
        }
        let mut fds: Vec<PollFd> = Vec::new();
        let ch_idx = channel.as_ref().map(|c| slot(&mut fds, c.as_fd()));
        let pid_idx = (!exited).then(|| slot(&mut fds, w.pidfd.as_fd()));
        let sig_idx = w.signals.map(|s| slot(&mut fds, s.fd.as_fd()));
        let kill_idx = w
            .kill
            .filter(|_| !exited && !killed)
            .map(|k| slot(&mut fds, k.as_fd()));
        let relay_idx: Vec<(usize, usize)> = live
            .iter()
            .map(|&i| (i, slot(&mut fds, w.relays.list[i].src.as_fd())))
            .collect();
        // After the exit, bound the wait for anything else holding a pipe.
        let timeout = if exited {
            PollTimeout::from(2000u16)
        } else {
            PollTimeout::NONE
        };
        match nix::poll::poll(&mut fds, timeout) {
            Ok(0) => break,
            Ok(_) => {}
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(SupervisorError::Io(e.into())),
        }
        let ready = |i: usize| fds[i].any().unwrap_or(false);
        let ch_ready = ch_idx.is_some_and(ready);
        let pid_ready = pid_idx.is_some_and(ready);
        let sig_ready = sig_idx.is_some_and(ready);
        let kill_ready = kill_idx.is_some_and(ready);
        let relay_ready: Vec<usize> = relay_idx
            .iter()
            .filter(|(_, k)| ready(*k))
            .map(|(i, _)| *i)
            .collect();
        drop(fds);

        if ch_ready {
            match channel
                .as_ref()
                .map(|c| c.recv::<InitMessage>())
                .transpose()?
            {
                Some(Some((InitMessage::Console, master))) => {
                    if let (Some(master), Some(console)) = (master, &w.console) {
                        w.relays.attach_console(master, console)?;
                    }
                }
                Some(Some((InitMessage::Executing, _))) => {
                    executed = true;
                    if let Some(mut hook) = w.on_exec.take() {
                        hook(w.pid);
                    }
                }
                Some(Some((InitMessage::Error { message, exit_code }, _))) => {
                    error = Some((message, exit_code))
                }
                Some(None) | None => channel = None,
            }
        }
        if let (true, Some(proxy)) = (sig_ready, w.signals) {
            while let Ok(Some(info)) = proxy.fd.read_signal() {
                forward(w.pidfd, info.ssi_signo as i32, &w.relays);
            }
        }
        if kill_ready {
            // SIGKILL to the init ends the whole pid namespace; its exit
            // then arrives through the pidfd like any other.
            tracing::debug!("killing container init {} on request", w.pid);
            send_signal(w.pidfd, libc::SIGKILL);
            killed = true;
        }
        for i in relay_ready {
            let relay = &mut w.relays.list[i];
            if !relay.pump().map_err(SupervisorError::Io)? {
                relay.done = true;
                relay.dst = None;
            }
        }
        exited |= pid_ready;
    }
    // Restore the user's terminal before anything is printed.
    w.relays.raw = None;
    let status = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(w.pid), None)
        .map_err(SupervisorError::Wait)?;
    let ended = match status {
        nix::sys::wait::WaitStatus::Exited(_, code) => Ended::Exited(code),
        nix::sys::wait::WaitStatus::Signaled(_, sig, _) => Ended::Signaled(sig as i32),
        _ => Ended::Exited(super::init::EXIT_SETUP_FAILED),
    };
    Ok(Outcome {
        ended,
        error,
        executed,
        killed,
    })
}

/// Adds `fd` to the poll set; returns its index.
fn slot<'a>(fds: &mut Vec<PollFd<'a>>, fd: BorrowedFd<'a>) -> usize {
    fds.push(PollFd::new(fd, PollFlags::POLLIN));
    fds.len() - 1
}

/// Passes a signal on: SIGWINCH becomes a pty resize when kiln owns the
/// terminal, anything else goes to the container's PID 1 through its
/// pidfd (immune to pid reuse).
fn forward(pidfd: &OwnedFd, signo: i32, relays: &Relays) {
    if signo == libc::SIGWINCH {
        if let Some((from, master)) = &relays.resize {
            if let Some((rows, cols)) = pty::size(from) {
                let _ = pty::set_size(master, rows, cols);
            }
            return;
        }
    }
    send_signal(pidfd, signo);
}

/// Sends `signo` to the process behind `pidfd` (immune to pid reuse);
/// a process already gone is not an error here.
fn send_signal(pidfd: &OwnedFd, signo: i32) {
    // Every forwarded signal is a named one (`forwarded_signals`).
    if let Some(sig) = rustix::process::Signal::from_named_raw(signo) {
        let _ = rustix::process::pidfd_send_signal(pidfd, sig);
    }
}
