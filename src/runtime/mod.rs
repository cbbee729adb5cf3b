//! kiln's bundled container runtime: runs a process spec in a root
//! filesystem, isolated, with no runc, docker or podman.
//!
//! **Architecture Invariant:** `runtime` knows nothing of Dockerfiles,
//! images or the store (its one import from `image` is the default `PATH`,
//! [`spec::DEFAULT_PATH`]). Callers hand it directories
//! ([`RootfsSpec::lowers`]) and an argv; the build uses it for each `RUN`,
//! `kiln run` for images.
//!
//! **Architecture Invariant:** nothing in `runtime` allocates between
//! `clone` and `exec`. kiln *re-executes itself* as the container's init
//! ([`spawn`] does only raw syscalls in the clone child, then `execveat`s a
//! sealed copy of kiln, see [`sealed_exe`]); all setup happens in that
//! fresh single-threaded process ([`init`]).
//!
//! The flow of [`run`]:
//!
//! ```text
//! kiln (host)                              init (PID 1, new namespaces)
//! clone(NEWNS|NEWPID|NEWUTS|NEWIPC[|NEWNET])
//!   └─ execveat(sealed kiln) ───────────▶  read spec from fd 3
//! send spec ──────────────────────────▶    setsid, state dir, overlay (volatile
//! create cgroup, join it (an RCU grace      with --rm), /proc /sys /dev, binds,
//!   period, overlapped with the init)       pty, user from the rootfs, seccomp
//!                           ◀── pty master  compiled, pivot_root
//! sync byte on fd 4 ──────────────────▶    unshare(NEWCGROUP), /sys/fs/cgroup,
//!                                           masks, ro paths
//! supervise: relay, forward signals         rlimits, keepcaps, seccomp, setuid,
//!                                           caps; close_range; execve
//!   channel EOF = command started
//! pidfd readable → waitpid → ExitStatus, cgroup removed
//! ```
//!
//! Modules: [`spec`] (the data), [`container`] (host side of a run),
//! [`supervisor`] (poll loop), [`spawn`] (clone+exec), [`channel`]
//! (kiln↔init socket), [`init`] (inside), [`overlay`], [`rootfs`],
//! [`devices`], [`confined`] (symlink-safe paths), [`namespaces`], [`pty`],
//! [`exec`], [`join`] (`kiln exec` into a running container), [`reaper`] (`--init`), [`state`] (ids, state dir),
//! [`mount_target`] (destinations never in procfs or sysfs),
//! [`kill_switch`] (ending a container early).
//!
//! The security and resource modules are libraries the init calls; each
//! owns one kernel mechanism:
//! - [`caps`]: capability names, Docker's default set, applying a set;
//! - [`seccomp`]: Docker's default seccomp profile compiled to BPF;
//! - [`cgroups`]: per-container cgroups (v1, hybrid, v2) with limits;
//! - [`user`]: `USER`/`--user` resolution against the image's passwd/group;
//! - [`rlimits`]: `--ulimit` parsing and `setrlimit`.
//!
//! # Order of the privileged steps in the init (before execve)
//! The seccomp program is built from the resolved capabilities and the user
//! resolved from the rootfs before `pivot_root`. Then: mounts, `pivot_root`,
//! hostname, `rlimits::apply` (raising a hard limit needs
//! CAP_SYS_RESOURCE) — everything the seccomp profile denies comes first;
//! `caps::set_keep_caps()`; without no-new-privileges (Docker's default)
//! `seccomp::install` here, while CAP_SYS_ADMIN is still effective (the
//! kernel demands it without no_new_privs); setgroups/setresgid/setresuid;
//! `caps::apply_capabilities`; with no-new-privileges
//! `caps::set_no_new_privs` then `seccomp::install`; `execve`.

pub mod binfmt;
pub mod caps;
pub mod cgroups;
pub mod channel;
pub mod confined;
pub mod container;
pub mod credentials;
pub mod devices;
pub mod exec;
pub mod init;
pub mod join;
pub mod kill_switch;
pub mod mount_options;
pub mod mount_target;
pub mod namespaces;
pub mod overlay;
pub mod pty;
pub mod reaper;
pub mod rlimits;
pub mod rootfs;
pub mod sealed_exe;
pub mod seccomp;
pub mod slirp;
pub mod spawn;
pub mod spec;
pub mod state;
pub mod supervisor;
pub mod user;

#[cfg(test)]
mod child_probe;
#[cfg(test)]
mod init_sequence_tests;

pub use container::{
    run, run_killable, run_observed, run_observed_with_network, run_with_network, ExitStatus,
    Input, NetworkSetup, Output, Stdio,
};
pub use kill_switch::KillSwitch;
pub use spec::{
    ContainerSpec, MountKind, MountSpec, Network, NetworkExtras, NetworkFiles, ProcessSpec,
    RootfsSpec,
};

/// Why a container could not be run. Errors of the user's process itself
/// are not errors here: they are its [`ExitStatus`].
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The kiln binary could not be sealed for re-execution.
    #[error(transparent)]
    Seal(#[from] sealed_exe::SealError),
    /// The state dir could not be prepared.
    #[error(transparent)]
    State(#[from] state::StateError),
    /// The container's cgroup could not be set up or removed.
    #[error(transparent)]
    Cgroup(#[from] cgroups::CgroupError),
    /// Standard streams could not be set up.
    #[error("failed to set up the container's standard streams")]
    Stdio(#[source] std::io::Error),
    /// The kiln↔init socket failed.
    #[error(transparent)]
    Channel(#[from] channel::ChannelError),
    /// The init could not be started.
    #[error(transparent)]
    Spawn(#[from] spawn::SpawnError),
    /// The container's network could not be set up.
    #[error(transparent)]
    Slirp(#[from] slirp::SlirpError),
    /// The caller's network setup ([`run_with_network`]) failed.
    #[error(transparent)]
    Network(Box<dyn std::error::Error + Send + Sync>),
    /// Supervising failed.
    #[error(transparent)]
    Supervisor(#[from] supervisor::SupervisorError),
    /// The init reported that the container could not be started.
    #[error("{message}")]
    Start {
        /// The init's message with its causes.
        message: String,
        /// What `kiln run` exits with (125 setup, 126/127 exec).
        exit_code: i32,
    },
    /// The init died before it executed the command, without a word.
    #[error("container init exited unexpectedly (status {0})")]
    InitDied(i32),
    /// The caller's [`KillSwitch`] ended the container.
    #[error("container killed on request")]
    Killed,
}

impl RuntimeError {
    /// The status `kiln run` exits with for this error (docker: 125 when
    /// the container could not be created, 126/127 for exec failures).
    pub fn exit_code(&self) -> i32 {
        match self {
            RuntimeError::Start { exit_code, .. } => *exit_code,
            _ => init::EXIT_SETUP_FAILED,
        }
    }
}
