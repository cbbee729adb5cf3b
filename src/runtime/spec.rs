//! What a container is made of: the description [`super::run`] executes.
//!
//! The spec is plain data. The host side builds it, serialises it with
//! serde_json and sends it to the container's init over a socket, so every
//! type here is `Serialize + Deserialize` and holds no file descriptors.
//! Nothing here knows about images or Dockerfiles: a caller (the CLI, the
//! build executor) resolves those to directories and argv first.

use super::caps::Capability;
use super::cgroups::Resources;
use super::rlimits::Rlimit;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// docker's `PATH` when an image sets none; one constant with the
/// lowering's, kept with the image config.
pub use crate::image::oci::DEFAULT_PATH;

/// docker's masked paths: bound over with `/dev/null` (files) or an empty
/// read-only tmpfs (directories) because they leak host information or
/// allow host-wide effects (moby `oci/defaults.go`, runc `maskPath`).
pub const DOCKER_MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// docker's read-only paths: writable procfs files that reconfigure the
/// whole host kernel, remounted read-only inside the container.
pub const DOCKER_READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Everything needed to run one container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerSpec {
    /// The container's id (64 hex digits); names its cgroup and, by
    /// default, its hostname.
    pub id: String,
    /// The root filesystem: layers plus a private writable upper dir.
    pub rootfs: RootfsSpec,
    /// The process to run as the container's PID 1 (or its only child with
    /// [`ContainerSpec::init`]).
    pub process: ProcessSpec,
    /// The UTS hostname inside the container.
    pub hostname: String,
    /// Extra mounts (binds, tmpfs), applied in order after the standard ones.
    pub mounts: Vec<MountSpec>,
    /// Which network namespace the container gets.
    pub network: Network,
    /// Paths hidden from the container ([`DOCKER_MASKED_PATHS`] by default).
    pub masked_paths: Vec<String>,
    /// Paths made read-only ([`DOCKER_READONLY_PATHS`] by default).
    pub readonly_paths: Vec<String>,
    /// Mount `/sys` read-only (docker does unless `--privileged`).
    pub readonly_sysfs: bool,
    /// Which `/etc` network files are generated in the state dir and bound
    /// in (they then never reach the upper dir).
    pub network_files: NetworkFiles,
    /// What a network adds to docker's network files (`kiln run`'s
    /// bridge address, `--add-host`, `--dns`).
    #[serde(default)]
    pub network_extras: NetworkExtras,
    /// Run kiln as a tiny PID 1 that reaps zombies and forwards signals to
    /// the process (docker `--init`); otherwise the process is PID 1.
    pub init: bool,
    /// The process's capabilities (bounding, effective, permitted; see
    /// [`super::caps`]): [`super::caps::docker_default_caps`] by default,
    /// all of them with `--privileged`.
    #[serde(with = "cap_names")]
    pub capabilities: Vec<Capability>,
    /// Install docker's default seccomp profile (off with `--privileged`).
    pub seccomp: bool,
    /// cgroup limits; the host side applies them, the init never sees them.
    #[serde(skip)]
    pub resources: Resources,
}

/// The root filesystem: an overlay of read-only layers and a fresh upper.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RootfsSpec {
    /// Read-only layer directories (absolute paths), bottom first. Never
    /// written to; at most [`super::overlay::MAX_LAYERS`].
    pub lowers: Vec<PathBuf>,
    /// Directory owned by this container: `upper/` (the container's writes,
    /// which a build snapshots), `work/` (overlay's scratch dir), `rootfs/`
    /// (the merged mount point, only ever mounted inside the container's
    /// mount namespace) and the generated network files go here.
    pub state_dir: PathBuf,
    /// Make `/` read-only (docker `--read-only`).
    pub readonly: bool,
    /// The upper dir is thrown away after the run (`--rm`): skip the
    /// upper filesystem's sync at unmount (overlayfs `volatile`).
    pub volatile: bool,
}

impl RootfsSpec {
    /// Where the container's writes land.
    pub fn upper_dir(&self) -> PathBuf {
        self.state_dir.join("upper")
    }

    /// overlayfs's work dir; must be on the same filesystem as the upper.
    pub fn work_dir(&self) -> PathBuf {
        self.state_dir.join("work")
    }

    /// The merged mount point (only mounted in the container's namespace).
    pub fn merged_dir(&self) -> PathBuf {
        self.state_dir.join("rootfs")
    }
}

/// The process to execute and the identity it runs with.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProcessSpec {
    /// argv; `args[0]` without a `/` is looked up in the container's `PATH`.
    pub args: Vec<String>,
    /// `KEY=VALUE` entries, complete except for `HOME`, which the init
    /// derives from the user's passwd entry when absent (runc behaviour).
    pub env: Vec<String>,
    /// Absolute working directory in the container, created when missing.
    pub cwd: String,
    /// docker's `--user` syntax (`""`, `name`, `uid`, `name:group`,
    /// `uid:gid`), resolved against the container's own `/etc/passwd` and
    /// `/etc/group` by the init, so a user added by an earlier layer works.
    pub user: String,
    /// Supplementary groups added to those from `/etc/group`.
    pub additional_gids: Vec<u32>,
    /// Give the process a pseudo-terminal on stdin/stdout/stderr.
    pub terminal: bool,
    /// Initial terminal size (rows, columns) when [`ProcessSpec::terminal`].
    pub console_size: Option<(u16, u16)>,
    /// Resource limits set with setrlimit(2) before exec (`--ulimit`).
    #[serde(with = "ulimits")]
    pub rlimits: Vec<Rlimit>,
    /// Set `PR_SET_NO_NEW_PRIVS` so setuid binaries cannot gain privileges.
    pub no_new_privs: bool,
}

/// Capabilities travel to the init by name (`CAP_CHOWN`); also
/// `kiln exec`'s joiner ([`super::join`]).
pub(super) mod cap_names {
    use super::Capability;
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(caps: &[Capability], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(caps.iter().map(|c| c.to_string()))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Capability>, D::Error> {
        let names = Vec::<String>::deserialize(d)?;
        names
            .iter()
            .map(|n| {
                n.parse()
                    .map_err(|_| D::Error::custom(format!("unknown capability {n}")))
            })
            .collect()
    }
}

/// Resource limits travel in `--ulimit` syntax (`nofile=1024:2048`).
mod ulimits {
    use super::Rlimit;
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(limits: &[Rlimit], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(limits.iter().map(|l| l.to_string()))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Rlimit>, D::Error> {
        let texts = Vec::<String>::deserialize(d)?;
        texts
            .iter()
            .map(|t| super::super::rlimits::parse_ulimit(t).map_err(D::Error::custom))
            .collect()
    }
}

/// A mount added on top of the root filesystem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountSpec {
    /// Absolute path inside the container; created when missing.
    pub destination: String,
    /// What to mount there.
    pub kind: MountKind,
}

/// What docker's daemon puts before a `--tmpfs`'s own options (moby/moby
/// daemon/oci_linux.go `WithMounts`), which may override them.
pub const DOCKER_TMPFS_OPTIONS: &str = "nosuid,nodev,noexec";

/// The kinds of mounts `kiln run` offers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MountKind {
    /// A recursive bind of a host path (docker `-v`).
    Bind {
        /// Host path (file or directory).
        source: PathBuf,
        /// Make the bind (and the mounts below it) read-only.
        readonly: bool,
    },
    /// A fresh tmpfs.
    Tmpfs {
        /// mount(8)-style options, flag words and tmpfs's own alike
        /// (`nosuid,nodev,noexec,size=64m,mode=1777`; see
        /// [`super::mount_options`]). No defaults are added: docker's
        /// `--tmpfs` starts from [`DOCKER_TMPFS_OPTIONS`], a build's
        /// `RUN --mount=type=tmpfs` from BuildKit's `nosuid`.
        options: String,
    },
}

/// The `/etc` network files a container gets: docker's for `kiln run`,
/// BuildKit's for a build's RUN; they differ in content and writability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NetworkFiles {
    /// None: the root filesystem's own files show.
    Own,
    /// docker's: `/etc/hostname`, `/etc/hosts` (the host's copy with
    /// `--network host`, loopback names otherwise) and the host's
    /// `/etc/resolv.conf`, writable unless the rootfs is read-only.
    Docker,
    /// BuildKit's RUN sandbox (executor/oci `GetHostsFile`, `GenerateSpec`):
    /// `/etc/hosts` naming the hostname on loopback and the host's
    /// `/etc/resolv.conf`, both read-only (`ro,nosuid,nodev,noexec`); no
    /// `/etc/hostname` (the image's shows).
    Sandbox,
}

/// Additions to [`NetworkFiles::Docker`]'s files (and to
/// [`NetworkFiles::Sandbox`]'s `/etc/hosts`: `kiln build --add-host`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkExtras {
    /// Lines appended to `/etc/hosts` (`ADDRESS\tNAMES`), in order.
    pub hosts: Vec<String>,
    /// Nameservers replacing the host's in `/etc/resolv.conf` (docker
    /// `--dns`); the host's `search` and `options` lines are kept.
    pub nameservers: Vec<String>,
}

/// Which network the container sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Network {
    /// The host's network namespace (docker `--network host`).
    Host,
    /// A new network namespace with only loopback, brought up.
    None,
    /// A new network namespace with loopback and outbound access through
    /// `slirp4netns` (user-mode NAT, DNS at 10.0.2.3), the host's own
    /// loopback unreachable: BuildKit's default network for RUN. Nothing
    /// on the host's interfaces can be sniffed from inside (see
    /// [`super::slirp`]).
    Slirp,
    /// The network namespace of another container, whose init has this
    /// pid in kiln's pid namespace (docker `--network container:NAME`):
    /// the init joins it before anything else of the container's runs.
    Join(i32),
}

/// docker's environment rules for a container process: `PATH` defaults to
/// [`DEFAULT_PATH`], `HOSTNAME` is set first, `TERM=xterm` with a terminal.
/// Later entries override earlier ones with the same key, like docker's
/// `-e` after the image's `ENV`.
pub fn docker_env(env: &[String], hostname: &str, terminal: bool) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(env.len() + 3);
    let mut set = |entry: String| {
        let key = entry.split('=').next().unwrap_or_default().to_string();
        match out.iter_mut().find(|e| e.split('=').next() == Some(&key)) {
            Some(existing) => *existing = entry,
            None => out.push(entry),
        }
    };
    set(format!("HOSTNAME={hostname}"));
    if terminal {
        set("TERM=xterm".to_string());
    }
    for entry in env {
        set(entry.clone());
    }
    if !out.iter().any(|e| e.starts_with("PATH=")) {
        out.insert(1, format!("PATH={DEFAULT_PATH}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_and_rlimits_survive_json() {
        #[derive(Serialize, Deserialize)]
        struct Both {
            #[serde(with = "cap_names")]
            caps: Vec<Capability>,
            #[serde(with = "ulimits")]
            limits: Vec<Rlimit>,
        }
        let both = Both {
            caps: super::super::caps::docker_default_caps(),
            limits: vec![super::super::rlimits::parse_ulimit("nofile=10:-1").unwrap()],
        };
        let json = serde_json::to_string(&both).unwrap();
        assert!(json.contains("\"CAP_CHOWN\""), "{json}");
        let back: Both = serde_json::from_str(&json).unwrap();
        assert_eq!(back.caps, both.caps);
        assert_eq!(back.limits, both.limits);
    }

    fn check(env: &[&str], terminal: bool, expected: &[&str]) {
        let env: Vec<String> = env.iter().map(|s| s.to_string()).collect();
        assert_eq!(docker_env(&env, "abc", terminal), expected);
    }

    #[test]
    fn docker_env_defaults() {
        check(
            &[],
            false,
            &["HOSTNAME=abc", &format!("PATH={DEFAULT_PATH}")],
        );
        check(
            &["A=1"],
            true,
            &[
                "HOSTNAME=abc",
                &format!("PATH={DEFAULT_PATH}"),
                "TERM=xterm",
                "A=1",
            ],
        );
    }

    #[test]
    fn docker_env_user_values_win() {
        check(
            &["PATH=/x", "HOSTNAME=h", "TERM=vt100", "A=1", "A=2"],
            true,
            &["HOSTNAME=h", "TERM=vt100", "PATH=/x", "A=2"],
        );
    }
}
