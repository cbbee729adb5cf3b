//! The container's init: kiln re-executed inside the new namespaces.
//!
//! `main` dispatches here (before clap) when argv[1] is
//! [`INIT_ARG`](super::spawn::INIT_ARG). The process is PID 1 of a new PID
//! namespace, single-threaded, with its channel on fd 3. It receives the
//! spec, then:
//!
//! 1. new session, private mount propagation;
//! 2. overlay root, kernel filesystems, /dev, network files, user mounts;
//! 3. pty (`-t`), hostname, loopback; user looked up in the rootfs,
//!    seccomp filter compiled;
//! 4. `pivot_root`; then waits for kiln's "cgroup joined" message, makes
//!    its cgroup namespace, mounts `/sys/fs/cgroup` from inside it (v2, or
//!    the v1 hierarchies on a tmpfs); masked and read-only paths,
//!    read-only `/`;
//! 5. working dir, then [`Credentials::become_the_process`]: rlimits, keepcaps,
//!    seccomp, setgroups/setgid/setuid, capabilities (no_new_privs);
//! 6. every fd above 2 close-on-exec, signals reset, `execve`.
//!
//! Any failure is sent to kiln as an [`InitMessage::Error`] and the init
//! exits. Success is seen by kiln as end-of-file on the channel.

use super::channel::{Channel, InitMessage};
use super::credentials::{Credentials, CredentialsError};
use super::exec::{Command, ExecError};
use super::rootfs::{self, Host, RootfsError};
use super::spec::ContainerSpec;
use super::{confined, namespaces, overlay, pty, reaper};
use crate::error_chain::Chain;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};

/// Exit status for failures before the command could be tried (docker
/// uses 125 when the container could not be created).
pub const EXIT_SETUP_FAILED: i32 = 125;

/// Why the init failed.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// The spec could not be received.
    #[error("failed to receive the container spec")]
    Spec(#[source] super::channel::ChannelError),
    /// A syscall step failed.
    #[error("failed to {action}")]
    Sys {
        /// The step.
        action: &'static str,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The state dir could not be prepared.
    #[error(transparent)]
    State(#[from] super::state::StateError),
    /// Overlay mount failed.
    #[error(transparent)]
    Overlay(#[from] overlay::OverlayError),
    /// Mount setup failed.
    #[error(transparent)]
    Rootfs(#[from] RootfsError),
    /// A path inside the root failed.
    #[error(transparent)]
    Confined(#[from] confined::ConfinedError),
    /// Namespace setup failed.
    #[error(transparent)]
    Namespace(#[from] namespaces::NamespaceError),
    /// Terminal setup failed.
    #[error(transparent)]
    Pty(#[from] pty::PtyError),
    /// User, capabilities or seccomp failed.
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    /// The command could not be executed.
    #[error(transparent)]
    Exec(#[from] ExecError),
    /// `--init` supervision failed.
    #[error(transparent)]
    Reaper(#[from] reaper::ReaperError),
    /// Talking to kiln failed.
    #[error(transparent)]
    Channel(#[from] super::channel::ChannelError),
    /// kiln closed the socket before the container could start.
    #[error("kiln went away before the container started")]
    KilnGone,
}

impl InitError {
    fn exit_code(&self) -> i32 {
        match self {
            InitError::Exec(e) => e.exit_code(),
            _ => EXIT_SETUP_FAILED,
        }
    }
}

fn sys<T>(action: &'static str, r: Result<T, impl Into<std::io::Error>>) -> Result<T, InitError> {
    r.map_err(|e| InitError::Sys {
        action,
        source: e.into(),
    })
}

/// The init's entry point; returns the process exit status.
pub fn main() -> i32 {
    // SAFETY: spawn_init placed our end of the channel on fd 3 for us.
    let channel = Channel::from_fd(unsafe { OwnedFd::from_raw_fd(super::spawn::INIT_CHANNEL_FD) });
    // The descriptor arrived without O_CLOEXEC (dup3 cleared it); set it
    // again so the exec of the user's process closes it and kiln sees EOF.
    let _ = rustix::io::fcntl_setfd(channel.as_fd(), rustix::io::FdFlags::CLOEXEC);
    // Name the process after what it is (`ps` in the container with
    // `--init`); exec through a fd would otherwise show the fd number.
    let _ = nix::sys::prctl::set_name(c"kiln-init");
    // Not dumpable: no process of the container may ptrace the init or
    // open its /proc files while it holds kiln's socket (runc's fix for
    // CVE-2016-9962). execve of the user's command makes it dumpable again.
    let _ = nix::sys::prctl::set_dumpable(false);
    let spec: ContainerSpec = match channel.recv() {
        Ok(Some((spec, _))) => spec,
        // kiln went away before sending anything: nothing to report to.
        Ok(None) => return EXIT_SETUP_FAILED,
        Err(e) => return report(&channel, &InitError::Spec(e)),
    };
    match run(&spec, &channel) {
        Ok(command) => {
            // `--init`: stay as PID 1; kiln's socket goes to the child only.
            let terminal = spec.process.terminal;
            match reaper::run(&command, terminal, channel, |channel, err| {
                report(channel, &InitError::Exec(err))
            }) {
                Ok(code) => code,
                Err((channel, e)) => report(&channel, &e.into()),
            }
        }
        Err(e) => report(&channel, &e),
    }
}

/// Sends `err` to kiln with its whole cause chain as text (the errno must
/// survive the socket); returns the exit status.
fn report(channel: &Channel, err: &InitError) -> i32 {
    let message = Chain(err).to_string();
    let exit_code = err.exit_code();
    let _ = channel.send(&InitMessage::Error { message, exit_code }, None);
    exit_code
}

/// Sets the container up and executes the command; returns only on
/// failure, or with the prepared command when `--init` keeps kiln as PID 1.
fn run(spec: &ContainerSpec, channel: &Channel) -> Result<Command, InitError> {
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
    sys("start a new session", nix::unistd::setsid())?;
    // Nothing mounted below may propagate back to the host.
    sys(
        "make mounts private",
        nix::mount::mount(
            None::<&str>,
            "/",
            None::<&str>,
            nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_PRIVATE,
            None::<&str>,
        ),
    )?;

    // Looked at while the host's /sys is still in view.
    let host = Host::detect()?;
    // The state dir is made here rather than by kiln, so that it overlaps
    // with kiln joining the init to its cgroup.
    super::state::prepare(spec)?;
    let merged = spec.rootfs.merged_dir();
    let empty = spec.rootfs.state_dir.join("empty");
    let lowers = if spec.rootfs.lowers.is_empty() {
        // overlayfs needs a lower layer; an empty one is `FROM scratch`.
        vec![empty]
    } else {
        spec.rootfs.lowers.clone()
    };
    overlay::Overlay {
        lowers: &lowers,
        upper: &spec.rootfs.upper_dir(),
        work: &spec.rootfs.work_dir(),
        volatile: spec.rootfs.volatile,
    }
    .mount(&merged)?;
    let root = confined::Root::open(&merged)?;
    rootfs::prepare(&rootfs::plan(spec), &root)?;

    if spec.process.terminal {
        let ptmx = root.resolve("/dev/pts/ptmx")?;
        let pty = pty::open(&confined::proc_fd_path(&ptmx), spec.process.console_size)?;
        let console = root.ensure("/dev/console", false)?;
        sys(
            "bind the terminal to /dev/console",
            nix::mount::mount(
                Some(confined::proc_fd_path(&pty.slave).as_str()),
                confined::proc_fd_path(&console).as_str(),
                None::<&str>,
                nix::mount::MsFlags::MS_BIND,
                None::<&str>,
            ),
        )?;
        pty::make_controlling(&pty.slave)?;
        sys("attach the terminal", nix::unistd::dup2_stdin(&pty.slave))?;
        sys("attach the terminal", nix::unistd::dup2_stdout(&pty.slave))?;
        sys("attach the terminal", nix::unistd::dup2_stderr(&pty.slave))?;
        channel.send(&InitMessage::Console, Some(pty.master.as_fd()))?;
    }

    namespaces::set_hostname(&spec.hostname)?;
    match spec.network {
        super::spec::Network::Host => {}
        super::spec::Network::Join(pid) => namespaces::join_network(pid)?,
        _ => namespaces::loopback_up()?,
    }
    // The user is looked up in the rootfs before pivot_root, and the
    // seccomp filter compiled, while the init may still allocate freely.
    let credentials = Credentials::prepare(
        &merged,
        &spec.process.user,
        &spec.process.additional_gids,
        &spec.capabilities,
        spec.seccomp,
        spec.process.no_new_privs,
    )?;
    drop(root);

    rootfs::pivot(&merged)?;
    // Sync point: kiln has moved us into the container's cgroup (nothing
    // before this forks or runs the user's code). The cgroup namespace is
    // rooted where the process is when it is made, so it comes now.
    wait_for_cgroup()?;
    namespaces::enter_cgroup_namespace()?;
    rootfs::finish(spec, &host)?;

    let cwd = confined::normalize(&spec.process.cwd);
    sys(
        "create the working directory",
        std::fs::create_dir_all(&cwd),
    )?;
    // Before the user switch, as runc does: the process may start in a
    // directory it could not enter itself.
    sys(
        "enter the working directory",
        std::env::set_current_dir(&cwd),
    )?;
    let env = credentials.become_the_process(&spec.process)?;
    let command = Command::new(&spec.process.args, &env)?;
    // CVE-2024-21626: nothing but stdio (and our channel, itself
    // close-on-exec) may survive into the container's process.
    // SAFETY: close_range only changes descriptor flags.
    if unsafe { libc::close_range(3, u32::MAX, libc::CLOSE_RANGE_CLOEXEC as libc::c_int) } != 0 {
        return sys(
            "mark descriptors close-on-exec",
            Err(std::io::Error::last_os_error()),
        );
    }
    channel.send(&InitMessage::Executing, None)?;
    if spec.init {
        return Ok(command);
    }
    reset_signals();
    Err(InitError::Exec(command.exec()))
}

/// Waits for kiln's byte on the sync pipe saying the init is in its
/// cgroup; end-of-file means kiln failed or died before that.
fn wait_for_cgroup() -> Result<(), InitError> {
    // SAFETY: spawn_init placed the pipe's read end on this fd.
    let sync = unsafe { OwnedFd::from_raw_fd(super::spawn::INIT_SYNC_FD) };
    let mut byte = [0u8; 1];
    loop {
        match rustix::io::read(&sync, &mut byte) {
            Ok(1) => return Ok(()),
            Ok(_) => return Err(InitError::KilnGone),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return sys("wait for the cgroup", Err(e)),
        }
    }
}

/// Sets every signal back to its default action and unblocks all of them:
/// dispositions set to "ignore" (Rust ignores SIGPIPE) and the mask survive
/// execve, and the user's process must not inherit ours.
pub fn reset_signals() {
    for signo in 1..=libc::SIGRTMAX() {
        if signo == libc::SIGKILL || signo == libc::SIGSTOP {
            continue;
        }
        // SAFETY: installing SIG_DFL is always sound.
        unsafe {
            libc::signal(signo, libc::SIG_DFL);
        }
    }
    let _ = nix::sys::signal::SigSet::empty().thread_set_mask();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_docker() {
        assert_eq!(
            InitError::Exec(ExecError::NotFound("x".into())).exit_code(),
            127
        );
        let err = InitError::Sys {
            action: "x",
            source: std::io::ErrorKind::Other.into(),
        };
        assert_eq!(err.exit_code(), EXIT_SETUP_FAILED);
    }
}
