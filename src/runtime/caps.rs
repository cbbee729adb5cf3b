//! Linux capabilities of a container process: names, Docker's default set,
//! `--cap-add`/`--cap-drop`/`--privileged` resolution, and applying a set to
//! the calling process.
//!
//! Docker semantics (moby `oci/caps`): the bounding, effective and permitted
//! sets are the resolved list; the inheritable and ambient sets are empty.
//! Inheritable stays empty since CVE-2022-24769 (a non-empty inheritable set
//! let `execve` of a file with inheritable file caps gain them). Because of
//! that, a non-root process loses every capability at `execve` (no ambient
//! set, no inheritable set), which is what `docker run --user 1000` shows:
//! `CapEff: 0`, `CapBnd: 00000000a80425fb`.
//!
//! [`apply_capabilities`] only makes syscalls (rustix's allocation-free
//! wrappers) on a caller-provided slice, so it is safe to call between
//! `fork` and `execve`.
//!
//! # Call order in the container's init (after fork, before execve)
//!
//! 1. `prctl(PR_SET_KEEPCAPS, 1)` ([`set_keep_caps`]) so `setuid` away from
//!    root keeps the permitted set;
//! 2. `setgroups` / `setgid` / `setuid` to the resolved user;
//! 3. [`apply_capabilities`]: it sets the bounding set (needs CAP_SETPCAP,
//!    still permitted thanks to KEEPCAPS) and then effective/permitted;
//! 4. [`set_no_new_privs`] when requested (`--security-opt no-new-privileges`);
//! 5. `seccomp::install` (see that module for the order without
//!    no_new_privs, where the filter goes in before step 2);
//! 6. `execve`.

use std::fmt;
use std::str::FromStr;

use nix::errno::Errno;
use rustix::thread::{CapabilitySet, CapabilitySets};

/// Errors from parsing capability names and changing capability sets.
#[derive(Debug, thiserror::Error)]
pub enum CapsError {
    /// A `--cap-add`/`--cap-drop` value that names no capability; Docker
    /// prints the same message (`unknown capability: "CAP_FOO"`).
    #[error("unknown capability: \"{name}\" (from {flag} value {value:?})")]
    Unknown {
        /// The normalized name (`CAP_` + upper case).
        name: String,
        /// Which flag carried it, e.g. `--cap-add`.
        flag: &'static str,
        /// The value exactly as given.
        value: String,
    },
    /// `prctl(PR_CAPBSET_DROP)` failed, usually for lack of CAP_SETPCAP.
    #[error("failed to drop {cap} from the bounding set")]
    DropBounding {
        /// The capability being dropped.
        cap: Capability,
        /// The errno from the kernel.
        #[source]
        errno: Errno,
    },
    /// `capset(2)` failed: a requested capability is not in the permitted set.
    #[error("failed to set capabilities with capset")]
    Capset(#[source] Errno),
    /// `capget(2)` failed.
    #[error("failed to read capabilities with capget")]
    Capget(#[source] Errno),
    /// A `prctl` option failed (keep-caps, no_new_privs, ambient clear).
    #[error("prctl({option}) failed")]
    Prctl {
        /// The prctl option name.
        option: &'static str,
        /// The errno from the kernel.
        #[source]
        errno: Errno,
    },
}

macro_rules! capabilities {
    ($($variant:ident = $num:literal => $name:literal,)*) => {
        /// One Linux capability (see `capabilities(7)`); the discriminant is
        /// the kernel's bit number.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[repr(u8)]
        pub enum Capability {
            $(
                #[doc = concat!("`CAP_", $name, "` (bit ", stringify!($num), ")")]
                $variant = $num,
            )*
        }

        impl Capability {
            /// Every capability kiln knows, in bit order (Linux 5.9 added the
            /// last one, CAP_CHECKPOINT_RESTORE = 40).
            pub const ALL: &'static [Capability] = &[$(Capability::$variant,)*];

            /// The name without the `CAP_` prefix, upper case.
            pub fn short_name(self) -> &'static str {
                match self {
                    $(Capability::$variant => $name,)*
                }
            }
        }
    };
}

capabilities! {
    Chown = 0 => "CHOWN",
    DacOverride = 1 => "DAC_OVERRIDE",
    DacReadSearch = 2 => "DAC_READ_SEARCH",
    Fowner = 3 => "FOWNER",
    Fsetid = 4 => "FSETID",
    Kill = 5 => "KILL",
    Setgid = 6 => "SETGID",
    Setuid = 7 => "SETUID",
    Setpcap = 8 => "SETPCAP",
    LinuxImmutable = 9 => "LINUX_IMMUTABLE",
    NetBindService = 10 => "NET_BIND_SERVICE",
    NetBroadcast = 11 => "NET_BROADCAST",
    NetAdmin = 12 => "NET_ADMIN",
    NetRaw = 13 => "NET_RAW",
    IpcLock = 14 => "IPC_LOCK",
    IpcOwner = 15 => "IPC_OWNER",
    SysModule = 16 => "SYS_MODULE",
    SysRawio = 17 => "SYS_RAWIO",
    SysChroot = 18 => "SYS_CHROOT",
    SysPtrace = 19 => "SYS_PTRACE",
    SysPacct = 20 => "SYS_PACCT",
    SysAdmin = 21 => "SYS_ADMIN",
    SysBoot = 22 => "SYS_BOOT",
    SysNice = 23 => "SYS_NICE",
    SysResource = 24 => "SYS_RESOURCE",
    SysTime = 25 => "SYS_TIME",
    SysTtyConfig = 26 => "SYS_TTY_CONFIG",
    Mknod = 27 => "MKNOD",
    Lease = 28 => "LEASE",
    AuditWrite = 29 => "AUDIT_WRITE",
    AuditControl = 30 => "AUDIT_CONTROL",
    Setfcap = 31 => "SETFCAP",
    MacOverride = 32 => "MAC_OVERRIDE",
    MacAdmin = 33 => "MAC_ADMIN",
    Syslog = 34 => "SYSLOG",
    WakeAlarm = 35 => "WAKE_ALARM",
    BlockSuspend = 36 => "BLOCK_SUSPEND",
    AuditRead = 37 => "AUDIT_READ",
    Perfmon = 38 => "PERFMON",
    Bpf = 39 => "BPF",
    CheckpointRestore = 40 => "CHECKPOINT_RESTORE",
}

impl Capability {
    /// The kernel's bit number.
    pub fn bit(self) -> u32 {
        self as u32
    }

    /// Parses one name: `NET_ADMIN`, `CAP_NET_ADMIN`, any case. `ALL` is not
    /// a capability; [`resolve_caps`] handles it.
    pub fn from_name(name: &str) -> Option<Capability> {
        let upper = name.trim().to_ascii_uppercase();
        let short = upper.strip_prefix("CAP_").unwrap_or(&upper);
        Capability::ALL
            .iter()
            .copied()
            .find(|c| c.short_name() == short)
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CAP_{}", self.short_name())
    }
}

impl FromStr for Capability {
    type Err = CapsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Capability::from_name(s).ok_or_else(|| unknown(s, "capability"))
    }
}

/// Docker's default capability set (moby `oci/caps/defaults.go`), the set a
/// `RUN` step or `docker run` without cap flags gets. As a mask it is
/// `00000000a80425fb`, the `CapBnd` line seen in such a container.
pub fn docker_default_caps() -> Vec<Capability> {
    use Capability::*;
    vec![
        Chown,
        DacOverride,
        Fowner,
        Fsetid,
        Kill,
        Setgid,
        Setuid,
        Setpcap,
        NetBindService,
        NetRaw,
        SysChroot,
        Mknod,
        AuditWrite,
        Setfcap,
    ]
}

/// The bit mask of a capability list, as printed in `/proc/PID/status`.
pub fn mask_of(caps: &[Capability]) -> u64 {
    caps.iter().fold(0u64, |m, c| m | (1u64 << c.bit()))
}

/// One `--cap-add`/`--cap-drop` entry after normalization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CapArg {
    All,
    One(Capability),
}

fn unknown(value: &str, flag: &'static str) -> CapsError {
    let upper = value.trim().to_ascii_uppercase();
    let name = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    CapsError::Unknown {
        name,
        flag,
        value: value.to_string(),
    }
}

fn normalize(values: &[String], flag: &'static str) -> Result<Vec<CapArg>, CapsError> {
    values
        .iter()
        .map(|v| {
            if v.trim().eq_ignore_ascii_case("ALL") {
                Ok(CapArg::All)
            } else {
                Capability::from_name(v)
                    .map(CapArg::One)
                    .ok_or_else(|| unknown(v, flag))
            }
        })
        .collect()
}

/// Resolves `--cap-add`, `--cap-drop` and `--privileged` against Docker's
/// default set with Docker's rules (moby `caps.TweakCapabilities`):
/// privileged → all capabilities, flags ignored; `ALL` in add → everything
/// except the drops; `ALL` in drop → only the adds; otherwise defaults minus
/// drops plus adds. Names are checked even when the result does not need
/// them, so a typo always fails. The result is sorted and deduplicated.
pub fn resolve_caps(
    add: &[String],
    drop: &[String],
    privileged: bool,
) -> Result<Vec<Capability>, CapsError> {
    if privileged {
        return Ok(Capability::ALL.to_vec());
    }
    let adds = normalize(add, "--cap-add")?;
    let drops = normalize(drop, "--cap-drop")?;
    let dropped = |c: &Capability| drops.contains(&CapArg::One(*c));
    let added: Vec<Capability> = adds
        .iter()
        .filter_map(|a| match a {
            CapArg::One(c) => Some(*c),
            CapArg::All => None,
        })
        .collect();
    let mut caps: Vec<Capability> = if adds.contains(&CapArg::All) {
        Capability::ALL
            .iter()
            .copied()
            .filter(|c| !dropped(c))
            .collect()
    } else if drops.contains(&CapArg::All) {
        added
    } else {
        let mut caps: Vec<Capability> = docker_default_caps()
            .into_iter()
            .filter(|c| !dropped(c))
            .collect();
        caps.extend(added);
        caps
    };
    caps.sort();
    caps.dedup();
    Ok(caps)
}

/// Drops CAP_NET_RAW from a container that shares the host's network
/// namespace, unless `add` (`--cap-add`) names it or `ALL`: with it, an
/// AF_PACKET socket on the host's `lo` reads every local request of every
/// process, bearer tokens included. docker keeps NET_RAW by default
/// because its default network is a private bridge; on the host's network
/// it is a sniffer's capability, so kiln grants it there only when asked.
pub fn for_host_network(mut caps: Vec<Capability>, add: &[String]) -> Vec<Capability> {
    let asked = add.iter().any(|a| {
        a.trim().eq_ignore_ascii_case("ALL") || Capability::from_name(a) == Some(Capability::NetRaw)
    });
    if !asked {
        caps.retain(|c| *c != Capability::NetRaw);
    }
    caps
}

/// A capability bit as rustix's set type (`from_bits_retain` keeps bits
/// rustix has no name for, which newer kernels may know).
fn one(bit: u32) -> CapabilitySet {
    CapabilitySet::from_bits_retain(1u64 << bit)
}

/// rustix's errno as the nix one [`CapsError`] carries.
fn errno(e: rustix::io::Errno) -> Errno {
    Errno::from_raw(e.raw_os_error())
}

/// The capability sets of a process, as 64-bit masks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CapSets {
    /// Effective set.
    pub effective: u64,
    /// Permitted set.
    pub permitted: u64,
    /// Inheritable set.
    pub inheritable: u64,
}

/// Reads the calling thread's effective/permitted/inheritable sets with
/// `capget(2)`; allocation-free, so tests can call it after `fork`.
pub fn current_caps() -> Result<CapSets, CapsError> {
    let sets = rustix::thread::capabilities(None).map_err(|e| CapsError::Capget(errno(e)))?;
    Ok(CapSets {
        effective: sets.effective.bits(),
        permitted: sets.permitted.bits(),
        inheritable: sets.inheritable.bits(),
    })
}

fn capset(sets: CapSets) -> Result<(), CapsError> {
    rustix::thread::set_capabilities(
        None,
        CapabilitySets {
            effective: CapabilitySet::from_bits_retain(sets.effective),
            permitted: CapabilitySet::from_bits_retain(sets.permitted),
            inheritable: CapabilitySet::from_bits_retain(sets.inheritable),
        },
    )
    .map_err(|e| CapsError::Capset(errno(e)))
}

/// Whether the running kernel knows capability `bit`: `PR_CAPBSET_READ`
/// fails with EINVAL past `/proc/sys/kernel/cap_last_cap`. Asking the
/// kernel instead of reading the file keeps this allocation-free.
fn kernel_knows(bit: u32) -> bool {
    rustix::thread::capability_is_in_bounding_set(one(bit)).is_ok()
}

/// Applies a resolved capability list to the calling process the way runc
/// applies Docker's spec: every capability not listed is dropped from the
/// bounding set, then effective = permitted = the list, inheritable = empty,
/// and the ambient set is cleared. Capabilities the running kernel does not
/// know are skipped (runc does the same, so an older kernel still runs a
/// `--privileged` container).
///
/// Runs before or after `setuid`; after it, CAP_SETPCAP must still be
/// permitted (`PR_SET_KEEPCAPS`), see the module docs for the full order.
/// Allocation-free: safe between `fork` and `execve`.
pub fn apply_capabilities(caps: &[Capability]) -> Result<(), CapsError> {
    let mut wanted = 0u64;
    for cap in caps {
        if kernel_knows(cap.bit()) {
            wanted |= 1u64 << cap.bit();
        }
    }
    // Ambient first: lowering permitted later would clear ambient bits
    // anyway, but an explicit clear also covers caps kept in permitted.
    match rustix::thread::clear_ambient_capability_set() {
        // EINVAL: kernel before 4.3 without ambient caps, nothing to clear.
        Ok(()) | Err(rustix::io::Errno::INVAL) => {}
        Err(e) => {
            return Err(CapsError::Prctl {
                option: "PR_CAP_AMBIENT_CLEAR_ALL",
                errno: errno(e),
            })
        }
    }
    // After setuid from root, KEEPCAPS kept the permitted set but the
    // kernel cleared the effective one, and PR_CAPBSET_DROP checks
    // CAP_SETPCAP in the effective set: raise effective to permitted first
    // (always allowed) so the bounding set can shrink in either order.
    let current = current_caps()?;
    capset(CapSets {
        effective: current.permitted,
        ..current
    })?;
    for cap in Capability::ALL {
        if wanted & (1u64 << cap.bit()) != 0 || !kernel_knows(cap.bit()) {
            continue;
        }
        rustix::thread::remove_capability_from_bounding_set(one(cap.bit())).map_err(|e| {
            CapsError::DropBounding {
                cap: *cap,
                errno: errno(e),
            }
        })?;
    }
    capset(CapSets {
        effective: wanted,
        permitted: wanted,
        inheritable: 0,
    })
}

/// Sets `PR_SET_KEEPCAPS` so that the following `setuid` from root to
/// another user keeps the permitted set; [`apply_capabilities`] then
/// restores the effective set. The flag is cleared by `execve`.
pub fn set_keep_caps() -> Result<(), CapsError> {
    rustix::thread::set_keep_capabilities(true).map_err(|e| CapsError::Prctl {
        option: "PR_SET_KEEPCAPS",
        errno: errno(e),
    })
}

/// Sets `PR_SET_NO_NEW_PRIVS` (`--security-opt no-new-privileges`): from
/// now on `execve` never grants privileges (setuid bits and file caps are
/// ignored), and seccomp filters can be installed without CAP_SYS_ADMIN.
/// Docker leaves it off by default, so setuid binaries like `su` still work
/// in `RUN`.
pub fn set_no_new_privs() -> Result<(), CapsError> {
    rustix::thread::set_no_new_privs(true).map_err(|e| CapsError::Prctl {
        option: "PR_SET_NO_NEW_PRIVS",
        errno: errno(e),
    })
}

/// The calling thread's bounding set as a mask, read with
/// `PR_CAPBSET_READ`; allocation-free.
pub fn current_bounding() -> u64 {
    Capability::ALL
        .iter()
        .filter(|c| {
            matches!(
                rustix::thread::capability_is_in_bounding_set(one(c.bit())),
                Ok(true)
            )
        })
        .fold(0u64, |m, c| m | (1u64 << c.bit()))
}

#[cfg(test)]
mod tests;
