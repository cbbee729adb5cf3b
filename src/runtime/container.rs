//! Running one container from kiln's side: prepare the state dir, start
//! the init, hand it the spec, supervise, report the exit.

use super::cgroups::{Cgroup, CgroupError, Resources};
use super::channel;
use super::kill_switch::KillSwitch;
use super::namespaces;
use super::pty;
use super::sealed_exe;
use super::slirp;
use super::spawn;
use super::spec::{ContainerSpec, Network};
use super::supervisor::{self, ConsoleIo, Ended, Relays, SignalProxy, Watch};
use super::RuntimeError;
use crate::error_chain::Chain;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

/// Where the container's stdin comes from.
#[derive(Debug)]
pub enum Input {
    /// `/dev/null` (docker without `-i`).
    Null,
    /// kiln's own stdin.
    Inherit,
    /// A descriptor the caller owns (a pipe, a file).
    Fd(OwnedFd),
}

/// Where the container's stdout or stderr goes.
#[derive(Debug)]
pub enum Output {
    /// kiln's own stdout/stderr.
    Inherit,
    /// A descriptor the caller owns (a build's log pipe).
    Fd(OwnedFd),
}

/// The container's standard streams and signal policy.
#[derive(Debug)]
pub struct Stdio {
    /// Standard input.
    pub stdin: Input,
    /// Standard output (also the terminal's output with `-t`).
    pub stdout: Output,
    /// Standard error (unused with `-t`: the terminal merges it).
    pub stderr: Output,
    /// Forward signals kiln receives to the container (`kiln run`); a
    /// build leaves its own signal handling alone.
    pub forward_signals: bool,
}

impl Stdio {
    /// kiln's own streams, stdin kept only when `keep_stdin` (`-i`),
    /// signals forwarded: what `kiln run` uses.
    pub fn inherit(keep_stdin: bool) -> Stdio {
        Stdio {
            stdin: if keep_stdin {
                Input::Inherit
            } else {
                Input::Null
            },
            stdout: Output::Inherit,
            stderr: Output::Inherit,
            forward_signals: true,
        }
    }
}

/// How the container's process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitStatus {
    /// Exit code, when it exited.
    pub code: Option<i32>,
    /// Signal number, when a signal killed it.
    pub signal: Option<i32>,
    /// The kernel's OOM killer killed a process of the container (docker
    /// inspect's `OOMKilled`).
    pub oom_killed: bool,
}

impl ExitStatus {
    /// The status docker reports: the code, or 128 + the signal.
    pub fn docker_code(&self) -> i32 {
        self.code.unwrap_or_else(|| 128 + self.signal.unwrap_or(0))
    }
}

/// Runs `spec` to completion with `stdio` and returns how its process
/// ended. The state dir (`spec.rootfs.state_dir`) is created if needed (by
/// the init, see [`state::prepare`]) and left in place (its `upper/` holds the writes); nothing stays mounted on
/// the host at any time, and the caller deletes the dir when done.
///
/// Blocks the calling thread until the container has exited: the init has
/// `PR_SET_PDEATHSIG(SIGKILL)` tied to this thread, so a container never
/// outlives the call (nor a killed kiln). With
/// [`Stdio::forward_signals`] the thread's signal mask is changed for the
/// duration (the forwarded signals are read from a signalfd).
pub fn run(spec: &ContainerSpec, stdio: Stdio) -> Result<ExitStatus, RuntimeError> {
    start(spec, stdio, None, None, None)
}

/// [`run`], calling `on_exec` with the init's pid (kiln's pid namespace)
/// once it has executed the command: a detached container's monitor
/// records it as running then, so `kiln stop` knows whom to signal.
pub fn run_observed(
    spec: &ContainerSpec,
    stdio: Stdio,
    on_exec: &mut dyn FnMut(i32),
) -> Result<ExitStatus, RuntimeError> {
    start(spec, stdio, None, Some(on_exec), None)
}

/// Plumbs a container's network namespace from the host side: called with
/// the init's pid (kiln's pid namespace) once its namespaces exist and
/// before anything of the user's runs (a bridge's veth, say). The runtime
/// knows nothing of what it does.
pub type NetworkSetup<'a> =
    &'a mut dyn FnMut(i32) -> Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// [`run`] with `setup` called on the container's own network namespace
/// (`spec.network` must be [`Network::None`]: a fresh namespace with
/// loopback up); if it fails the container is killed before its command
/// runs and the error is [`RuntimeError::Network`].
pub fn run_with_network(
    spec: &ContainerSpec,
    stdio: Stdio,
    setup: NetworkSetup<'_>,
) -> Result<ExitStatus, RuntimeError> {
    start(spec, stdio, None, None, Some(setup))
}

/// [`run_observed`] and [`run_with_network`] at once: a detached or
/// recorded container on a bridge.
pub fn run_observed_with_network(
    spec: &ContainerSpec,
    stdio: Stdio,
    setup: NetworkSetup<'_>,
    on_exec: &mut dyn FnMut(i32),
) -> Result<ExitStatus, RuntimeError> {
    start(spec, stdio, None, Some(on_exec), Some(setup))
}

/// [`run`], and firing `kill` (from any thread) ends the container early
/// with SIGKILL to its init, which takes every process of its pid
/// namespace; the call then returns [`RuntimeError::Killed`] once the
/// container is gone and its cgroup removed, exactly as after an exit.
/// A switch fired before the call starts nothing.
pub fn run_killable(
    spec: &ContainerSpec,
    stdio: Stdio,
    kill: &KillSwitch,
) -> Result<ExitStatus, RuntimeError> {
    if kill.is_fired() {
        return Err(RuntimeError::Killed);
    }
    start(spec, stdio, Some(kill), None, None)
}

/// Starts the container and supervises it to its end: the init is
/// spawned in its namespaces, handed the spec, put in its cgroup and
/// network, then released (the sync byte) to run the command.
fn start(
    spec: &ContainerSpec,
    stdio: Stdio,
    kill: Option<&KillSwitch>,
    on_exec: Option<&mut dyn FnMut(i32)>,
    network_setup: Option<NetworkSetup<'_>>,
) -> Result<ExitStatus, RuntimeError> {
    // kiln writes to pipes whose reader may already be gone (the init's sync
    // pipe when its setup failed, the container's stdin after it exited):
    // that must be EPIPE, not kiln killed by SIGPIPE, which the CLI sets to
    // its default for `kiln images | head`. The init resets every
    // disposition before exec, so the container still starts with SIG_DFL.
    // SAFETY: installing SIG_IGN has no preconditions.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    let exe = sealed_exe::sealed_exe()?;
    // Resource limits are checked before anything starts; the cgroup itself
    // is made while the init already works (see below).
    spec.resources.validate()?;
    let streams = Streams::new(stdio, spec.process.terminal)?;
    let (channel, init_end) = channel::pair()?;
    let (sync_r, sync_w) = pipe()?;
    let signals = if streams.forward_signals {
        Some(SignalProxy::block()?)
    } else {
        None
    };
    let child = spawn::spawn_init(
        exe.fd(),
        namespaces::clone_flags(spec),
        streams.child_fds(),
        init_end.as_fd(),
        sync_r.as_fd(),
    )?;
    drop((init_end, sync_r));
    let Streams {
        child_side,
        relays,
        console,
        ..
    } = streams;
    // Our copies of the container's ends must go, or its EOFs never come.
    drop(child_side);
    // The spec goes first so the init prepares the state dir and the rootfs
    // while kiln makes the cgroup and moves it in (a cgroup migration waits
    // for an RCU grace period, often the longest step of a start); the init
    // waits for the sync byte before it makes its cgroup namespace, forks or
    // executes anything of the user's.
    let sent = channel.send(spec, None);
    let cgroup = join_cgroup(spec, &child)?;
    // The init's network namespace exists now; slirp must have it
    // configured before anything of the user's runs.
    let slirp = match spec.network {
        Network::Slirp => match slirp::start(child.pid) {
            Ok(s) => Some(s),
            // The init failed its own setup (a refused mount, say) and
            // exited before slirp could join its namespace: its error, which
            // the supervisor reads next, is the one to report.
            Err(e) if exits_within(&child.pidfd, 2000) => {
                tracing::debug!(
                    "slirp4netns: {e} (the init had already exited)",
                    e = Chain(&e)
                );
                None
            }
            Err(e) => {
                kill_and_reap(&child);
                if let Some(cg) = cgroup {
                    let _ = cg.remove();
                }
                return Err(e.into());
            }
        },
        Network::Host | Network::None | Network::Join(_) => None,
    };
    if let Some(setup) = network_setup {
        match setup(child.pid) {
            Ok(()) => {}
            // As with slirp above: an init that failed its own setup
            // (a refused mount) is gone, or going, before its namespace
            // could be plumbed (the kernel drops the namespace before the
            // pidfd reports the exit); its error, read next, is the one
            // to report. A healthy init waits for the sync byte and never
            // exits by itself, so the wait costs only a real failure.
            Err(e) if exits_within(&child.pidfd, 2000) => {
                tracing::debug!("network setup: {e} (the init had already exited)");
            }
            Err(e) => {
                kill_and_reap(&child);
                if let Some(cg) = cgroup {
                    let _ = cg.remove();
                }
                return Err(RuntimeError::Network(e));
            }
        }
    }
    // A failed write means the init is gone; its exit tells the rest.
    let _ = rustix::io::write(&sync_w, b"j");
    drop(sync_w);
    let outcome = supervisor::supervise(Watch {
        pid: child.pid,
        pidfd: &child.pidfd,
        channel,
        relays,
        console,
        signals: signals.as_ref(),
        kill,
        on_exec: on_exec.map(|f| Box::new(f) as Box<dyn FnMut(i32) + '_>),
    })?;
    drop(slirp);
    conclude(outcome, cgroup, sent)
}

/// Makes the container's cgroup and moves the init into it; if either
/// fails, the init is killed and reaped: nothing of the user's may run
/// outside its limits.
fn join_cgroup(
    spec: &ContainerSpec,
    child: &spawn::InitChild,
) -> Result<Option<Cgroup>, RuntimeError> {
    let joined = create_cgroup(spec).and_then(|cg| {
        if let Some(cg) = &cg {
            cg.add_process(child.pid)?;
        }
        Ok(cg)
    });
    if joined.is_err() {
        kill_and_reap(child);
    }
    joined
}

/// What a run comes to once its init has been reaped: the cgroup removed
/// (after asking whether the OOM killer struck), then in this order kiln's
/// own kill, the init's setup error, a spec that never reached the init,
/// or the exit status, an error if the command never executed.
pub(super) fn conclude(
    outcome: supervisor::Outcome,
    cgroup: Option<Cgroup>,
    sent: Result<(), channel::ChannelError>,
) -> Result<ExitStatus, RuntimeError> {
    let oom_killed = cgroup.as_ref().is_some_and(|cg| cg.oom_killed());
    if let Some(cg) = cgroup {
        // Every process of the container is gone (its PID 1 has been
        // reaped, which kills the namespace), so the cgroup is empty.
        if let Err(e) = cg.remove() {
            tracing::warn!("{e}", e = Chain(&e));
        }
    }
    if outcome.killed {
        return Err(RuntimeError::Killed);
    }
    if let Some((message, exit_code)) = outcome.error {
        return Err(RuntimeError::Start { message, exit_code });
    }
    sent?;
    let status = match outcome.ended {
        Ended::Exited(code) => ExitStatus {
            code: Some(code),
            signal: None,
            oom_killed,
        },
        Ended::Signaled(sig) => ExitStatus {
            code: None,
            signal: Some(sig),
            oom_killed,
        },
    };
    if !outcome.executed {
        return Err(RuntimeError::InitDied(status.docker_code()));
    }
    Ok(status)
}

/// The container's cgroup, named after its id. A host without cgroups
/// can still run containers that ask for no limits; opening every device
/// (`--privileged`, `RUN --security=insecure`) is none either: without a
/// device cgroup nothing restricts devices.
fn create_cgroup(spec: &ContainerSpec) -> Result<Option<Cgroup>, RuntimeError> {
    let unlimited = Resources {
        all_devices: false,
        ..spec.resources.clone()
    } == Resources::default();
    match Cgroup::create(&spec.id, &spec.resources) {
        Ok(cg) => Ok(Some(cg)),
        Err(CgroupError::NoCgroups) if unlimited => {
            tracing::warn!("no cgroups on this host: running without one");
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// Whether the process of `pidfd` has exited or exits within `ms`
/// milliseconds.
fn exits_within(pidfd: &OwnedFd, ms: u16) -> bool {
    let mut fds = [nix::poll::PollFd::new(
        pidfd.as_fd(),
        nix::poll::PollFlags::POLLIN,
    )];
    matches!(nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(ms)), Ok(n) if n > 0)
}

/// Ends an init that must not start (SIGKILL through its pidfd) and reaps it.
fn kill_and_reap(child: &spawn::InitChild) {
    let _ = rustix::process::pidfd_send_signal(&child.pidfd, rustix::process::Signal::KILL);
    let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(child.pid), None);
}

/// The container's stdin as the caller gave it.
struct Stdin {
    fd: OwnedFd,
    /// Relayed through a pipe: kiln's own stdin, or any terminal.
    own: bool,
}

/// The container's side of each stream and kiln's relays for them.
pub(super) struct Streams {
    /// What the init gets on 0, 1, 2 (dropped by kiln after the spawn).
    pub(super) child_side: [OwnedFd; 3],
    pub(super) relays: Relays,
    pub(super) console: Option<ConsoleIo>,
    pub(super) forward_signals: bool,
}

/// Whether `a` and `b` are one open file description (kcmp(2)
/// `KCMP_FILE`), as kiln's stdout and stderr are after `2>&1`.
fn same_open_file(a: &OwnedFd, b: &OwnedFd) -> bool {
    use std::os::fd::AsRawFd;
    const KCMP_FILE: libc::c_long = 0;
    let pid = libc::c_long::from(std::process::id() as i32);
    // SAFETY: kcmp(2) compares two of our own descriptors; no memory.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_kcmp,
            pid,
            pid,
            KCMP_FILE,
            libc::c_long::from(a.as_raw_fd()),
            libc::c_long::from(b.as_raw_fd()),
        )
    };
    ret == 0
}

fn dup(fd: BorrowedFd<'_>) -> Result<OwnedFd, RuntimeError> {
    fd.try_clone_to_owned().map_err(RuntimeError::Stdio)
}

fn null() -> Result<OwnedFd, RuntimeError> {
    Ok(std::fs::File::options()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(RuntimeError::Stdio)?
        .into())
}

pub(super) fn pipe() -> Result<(OwnedFd, OwnedFd), RuntimeError> {
    rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(|e| RuntimeError::Stdio(e.into()))
}

impl Streams {
    pub(super) fn new(stdio: Stdio, terminal: bool) -> Result<Streams, RuntimeError> {
        let stdin = match stdio.stdin {
            Input::Null => None,
            Input::Inherit => Some(Stdin {
                fd: dup(std::io::stdin().as_fd())?,
                own: true,
            }),
            // A terminal is never handed over, whoever passes it (TIOCSTI).
            Input::Fd(fd) => Some(Stdin {
                own: pty::is_terminal(&fd),
                fd,
            }),
        };
        // (descriptor, whether it must be relayed: kiln's own or a terminal)
        let output = |o: Output, inherit: BorrowedFd<'_>| match o {
            Output::Inherit => dup(inherit).map(|fd| (fd, true)),
            Output::Fd(fd) => {
                let own = pty::is_terminal(&fd);
                Ok((fd, own))
            }
        };
        let stdout = output(stdio.stdout, std::io::stdout().as_fd())?;
        let stderr = output(stdio.stderr, std::io::stderr().as_fd())?;
        let mut relays = Relays::default();
        if terminal {
            // The init's pty takes 0-2; the master arrives later and is
            // relayed to these.
            return Ok(Streams {
                child_side: [null()?, null()?, null()?],
                relays,
                console: Some(ConsoleIo {
                    stdin: stdin.map(|s| s.fd),
                    stdout: stdout.0,
                }),
                forward_signals: stdio.forward_signals,
            });
        }
        // kiln's own streams are the caller's (a terminal, a log file
        // opened with `>>`, a socket): handed over, the container could
        // reopen them through /proc/self/fd and read or truncate what the
        // caller wrote before. It gets pipes, and kiln copies; a descriptor
        // the caller made for the container (`Fd`) is handed over as is.
        let stdin_child = match stdin {
            None => null()?,
            Some(Stdin { fd, own: false }) => fd,
            Some(Stdin { fd, own: true }) => {
                let (r, w) = pipe()?;
                relays.input(fd, w).map_err(RuntimeError::Stdio)?;
                r
            }
        };
        let mut out_child = |(fd, own): (OwnedFd, bool)| -> Result<OwnedFd, RuntimeError> {
            if !own {
                return Ok(fd);
            }
            let (r, w) = pipe()?;
            relays.output(r, fd).map_err(RuntimeError::Stdio)?;
            Ok(w)
        };
        // `kiln run … >> log 2>&1`: one pipe for both keeps the order in
        // which the container wrote its output and its errors.
        let shared = stdout.1 && stderr.1 && same_open_file(&stdout.0, &stderr.0);
        let stdout_child = out_child(stdout)?;
        let stderr_child = if shared {
            dup(stdout_child.as_fd())?
        } else {
            out_child(stderr)?
        };
        Ok(Streams {
            child_side: [stdin_child, stdout_child, stderr_child],
            relays,
            console: None,
            forward_signals: stdio.forward_signals,
        })
    }

    pub(super) fn child_fds(&self) -> [BorrowedFd<'_>; 3] {
        [
            self.child_side[0].as_fd(),
            self.child_side[1].as_fd(),
            self.child_side[2].as_fd(),
        ]
    }
}
