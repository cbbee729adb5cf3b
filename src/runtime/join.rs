//! `kiln exec`: a new process inside a running container, with the
//! container's namespaces, cgroups, capabilities, seccomp filter,
//! no_new_privs and rlimits.
//!
//! The flow, runc's `exec` order (opencontainers/runc
//! `libcontainer/nsenter/nsexec.c`, `join_namespaces` then the fork for
//! the pid namespace, and `libcontainer/setns_init_linux.go`,
//! `linuxSetnsInit.Init`, for what follows):
//!
//! ```text
//! kiln (host)                          joiner (kiln re-executed, no new ns)
//! clone + execveat(sealed kiln) ────▶  read the JoinSpec from fd 3
//! send JoinSpec; write the joiner's    open /proc/<init>/ns/*, wait for the
//!   pid into the init's cgroups          sync byte, setns ipc uts net cgroup
//! sync byte ───────────────────────▶     pid, mnt last (root and cwd become
//!                                        the container's root)
//! supervise (relays, pty master)       fork (a pid namespace is entered by
//!                                        children only) ──▶ child: setsid,
//!                                        pty, cwd, rlimits, credentials,
//!   channel EOF = command started        close_range, execve
//! pidfd → the joiner's exit status     joiner: waits, exits with the
//!                                        child's status
//! ```
//!
//! Like the init, the joiner holds nothing of kiln's but its stdio (pipes
//! or a pty it makes in the container) and the channel, close-on-exec.

use super::channel::{self, Channel, InitMessage};
use super::container::{self, Streams};
use super::credentials::Credentials;
use super::exec::{Command, ExecError};
use super::init::{reset_signals, EXIT_SETUP_FAILED};
use super::spec::ProcessSpec;
use super::supervisor::{self, Watch};
use super::{caps::Capability, cgroups, pty, sealed_exe, spawn};
use super::{ExitStatus, RuntimeError, Stdio};
use crate::error_chain::Chain;
use serde::{Deserialize, Serialize};
use std::os::fd::{AsFd, FromRawFd, OwnedFd};

/// argv[1] that makes `kiln` run as an exec joiner.
pub const JOIN_ARG: &str = "__kiln-join";

/// What `kiln exec` runs where: the container's init and the process,
/// with the container's own confinement.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JoinSpec {
    /// The container's id (names its cgroup).
    pub id: String,
    /// The container's init, in kiln's pid namespace.
    pub init_pid: i32,
    /// The process; its rlimits and no_new_privs are the container's.
    pub process: ProcessSpec,
    /// The container's capabilities.
    #[serde(with = "super::spec::cap_names")]
    pub capabilities: Vec<Capability>,
    /// Whether the container has docker's seccomp profile.
    pub seccomp: bool,
}

/// The namespaces joined, in runc's order (`nsexec.c` `join_namespaces`:
/// the mount namespace last, since entering it changes what `/proc` is).
const NAMESPACES: &[(&str, nix::sched::CloneFlags)] = &[
    ("ipc", nix::sched::CloneFlags::CLONE_NEWIPC),
    ("uts", nix::sched::CloneFlags::CLONE_NEWUTS),
    ("net", nix::sched::CloneFlags::CLONE_NEWNET),
    ("pid", nix::sched::CloneFlags::CLONE_NEWPID),
    ("cgroup", nix::sched::CloneFlags::CLONE_NEWCGROUP),
    ("mnt", nix::sched::CloneFlags::CLONE_NEWNS),
];

/// Runs `spec.process` in the container and returns how it ended.
/// Blocks until it has; it dies with the calling thread (PDEATHSIG).
pub fn exec(spec: &JoinSpec, stdio: Stdio) -> Result<ExitStatus, RuntimeError> {
    // SAFETY: installing SIG_IGN has no preconditions (see container::start).
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    let exe = sealed_exe::sealed_exe()?;
    let streams = Streams::new(stdio, spec.process.terminal)?;
    let (channel, joiner_end) = channel::pair()?;
    let (sync_r, sync_w) = container::pipe()?;
    let child = spawn::spawn_sealed(
        exe.fd(),
        JOIN_ARG,
        0,
        streams.child_fds(),
        joiner_end.as_fd(),
        sync_r.as_fd(),
    )?;
    drop((joiner_end, sync_r));
    let Streams {
        child_side,
        relays,
        console,
        ..
    } = streams;
    drop(child_side);
    let sent = channel.send(spec, None);
    // Before the fork in the joiner, so the process is born in the
    // container's cgroups and counted against its limits.
    if let Err(e) = cgroups::join_cgroups_of(spec.init_pid, child.pid, &spec.id) {
        let _ = rustix::process::pidfd_send_signal(&child.pidfd, rustix::process::Signal::KILL);
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(child.pid), None);
        return Err(e.into());
    }
    let _ = rustix::io::write(&sync_w, b"j");
    drop(sync_w);
    let outcome = supervisor::supervise(Watch {
        pid: child.pid,
        pidfd: &child.pidfd,
        channel,
        relays,
        console,
        signals: None,
        kill: None,
        on_exec: None,
    })?;
    container::conclude(outcome, None, sent)
}

/// Why the joiner failed.
#[derive(Debug, thiserror::Error)]
enum JoinError {
    #[error("failed to {action}")]
    Sys {
        action: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Channel(#[from] channel::ChannelError),
    #[error(transparent)]
    Pty(#[from] pty::PtyError),
    #[error(transparent)]
    Credentials(#[from] super::credentials::CredentialsError),
    #[error(transparent)]
    Exec(#[from] ExecError),
    #[error("kiln went away before the process started")]
    KilnGone,
}

impl JoinError {
    fn exit_code(&self) -> i32 {
        match self {
            JoinError::Exec(e) => e.exit_code(),
            _ => EXIT_SETUP_FAILED,
        }
    }
}

fn sys<T>(
    action: impl Into<String>,
    r: Result<T, impl Into<std::io::Error>>,
) -> Result<T, JoinError> {
    r.map_err(|e| JoinError::Sys {
        action: action.into(),
        source: e.into(),
    })
}

fn report(channel: &Channel, err: &JoinError) -> i32 {
    let _ = channel.send(
        &InitMessage::Error {
            message: Chain(err).to_string(),
            exit_code: err.exit_code(),
        },
        None,
    );
    err.exit_code()
}

/// The joiner's entry point; returns the process exit status.
pub fn main() -> i32 {
    // SAFETY: spawn_sealed placed our end of the channel on fd 3.
    let channel = Channel::from_fd(unsafe { OwnedFd::from_raw_fd(spawn::INIT_CHANNEL_FD) });
    let _ = rustix::io::fcntl_setfd(channel.as_fd(), rustix::io::FdFlags::CLOEXEC);
    let _ = nix::sys::prctl::set_name(c"kiln-exec");
    // Not dumpable while it holds kiln's socket (CVE-2016-9962, as the init).
    let _ = nix::sys::prctl::set_dumpable(false);
    let spec: JoinSpec = match channel.recv() {
        Ok(Some((spec, _))) => spec,
        Ok(None) => return EXIT_SETUP_FAILED,
        Err(e) => return report(&channel, &e.into()),
    };
    if let Err(e) = enter(&spec) {
        return report(&channel, &e);
    }
    // SAFETY: the joiner is single-threaded; the child only continues
    // this program.
    match unsafe { nix::unistd::fork() } {
        Err(e) => report(
            &channel,
            &JoinError::Sys {
                action: "fork into the pid namespace".into(),
                source: e.into(),
            },
        ),
        Ok(nix::unistd::ForkResult::Child) => {
            let e = start(&spec, &channel);
            std::process::exit(report(&channel, &e));
        }
        Ok(nix::unistd::ForkResult::Parent { child }) => {
            // Only the child may keep the streams and the channel open:
            // kiln sees their end when the process's own end.
            drop(channel);
            for fd in 0..3 {
                // SAFETY: closing our own standard descriptors.
                unsafe { libc::close(fd) };
            }
            wait_status(child)
        }
    }
}

/// Opens the container's namespaces, waits for kiln's cgroup byte, and
/// joins them.
fn enter(spec: &JoinSpec) -> Result<(), JoinError> {
    let pid = spec.init_pid;
    let fds: Vec<(OwnedFd, nix::sched::CloneFlags, &str)> = NAMESPACES
        .iter()
        .map(|(name, flag)| {
            let path = format!("/proc/{pid}/ns/{name}");
            let file = sys(format!("open {path}"), std::fs::File::open(&path))?;
            Ok((OwnedFd::from(file), *flag, *name))
        })
        .collect::<Result<_, JoinError>>()?;
    // SAFETY: spawn_sealed placed the sync pipe's read end on this fd.
    let sync = unsafe { OwnedFd::from_raw_fd(spawn::INIT_SYNC_FD) };
    let mut byte = [0u8; 1];
    loop {
        match rustix::io::read(&sync, &mut byte) {
            Ok(1) => break,
            Ok(_) => return Err(JoinError::KilnGone),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return sys("wait for the cgroup", Err(e)),
        }
    }
    for (fd, flag, name) in &fds {
        sys(
            format!("join the container's {name} namespace"),
            nix::sched::setns(fd, *flag),
        )?;
    }
    Ok(())
}

/// The child, now in the container's pid namespace: becomes the process.
/// Returns only on failure.
fn start(spec: &JoinSpec, channel: &Channel) -> JoinError {
    match prepare(spec, channel) {
        Ok(command) => {
            reset_signals();
            JoinError::Exec(command.exec())
        }
        Err(e) => e,
    }
}

fn prepare(spec: &JoinSpec, channel: &Channel) -> Result<Command, JoinError> {
    let process = &spec.process;
    sys(
        "set the parent-death signal",
        nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL),
    )?;
    sys("start a new session", nix::unistd::setsid())?;
    if process.terminal {
        // The container's own devpts, seen through its mount namespace.
        let pty = pty::open("/dev/pts/ptmx", process.console_size)?;
        pty::make_controlling(&pty.slave)?;
        sys("attach the terminal", nix::unistd::dup2_stdin(&pty.slave))?;
        sys("attach the terminal", nix::unistd::dup2_stdout(&pty.slave))?;
        sys("attach the terminal", nix::unistd::dup2_stderr(&pty.slave))?;
        channel.send(&InitMessage::Console, Some(pty.master.as_fd()))?;
    }
    // The user is looked up in the container's own /etc/passwd: after
    // entering its mount namespace, `/` is its root.
    let credentials = Credentials::prepare(
        std::path::Path::new("/"),
        &process.user,
        &process.additional_gids,
        &spec.capabilities,
        spec.seccomp,
        process.no_new_privs,
    )?;
    // docker exec: a missing working dir is an error, never created
    // (runc `setns_init_linux.go` only chdirs).
    sys(
        format!("enter the working directory {}", process.cwd),
        std::env::set_current_dir(&process.cwd),
    )?;
    let env = credentials.become_the_process(process)?;
    let command = Command::new(&process.args, &env)?;
    // CVE-2024-21626: only stdio (and the close-on-exec channel) survive.
    // SAFETY: close_range only changes descriptor flags.
    if unsafe { libc::close_range(3, u32::MAX, libc::CLOSE_RANGE_CLOEXEC as libc::c_int) } != 0 {
        return sys(
            "mark descriptors close-on-exec",
            Err(std::io::Error::last_os_error()),
        );
    }
    channel.send(&InitMessage::Executing, None)?;
    Ok(command)
}

/// Waits for the child; its exit code, or 128 + the signal that killed it
/// (what docker reports either way).
fn wait_status(child: nix::unistd::Pid) -> i32 {
    use nix::sys::wait::{waitpid, WaitStatus};
    loop {
        match waitpid(child, None) {
            Ok(WaitStatus::Exited(_, code)) => return code,
            Ok(WaitStatus::Signaled(_, sig, _)) => return 128 + sig as i32,
            Ok(_) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return EXIT_SETUP_FAILED,
        }
    }
}
