//! Where a mount would land, and the kernel filesystems it must not land
//! in.
//!
//! A mount destination is resolved inside the rootfs, so an image's
//! symlink `/myproc -> /proc` makes `-v x:/myproc/sys` (or `--tmpfs`, or a
//! RUN `--mount` target) land on the container's procfs: a bind over
//! `/proc/sys` or `/proc/sysrq-trigger` undoes the read-only and masked
//! paths that keep the container off the host's kernel knobs. runc refuses
//! any destination that resolves inside `/proc` (opencontainers/runc
//! `libcontainer/rootfs_linux.go`, `checkProcMount`), except lxcfs-style
//! binds over a few files (its `validProcMounts`). kiln checks the
//! filesystem the resolved destination is on instead of its path, which
//! also catches sysfs: a destination landing in sysfs is refused unless it
//! was written under `/sys` itself (runc allows `/sys/...` destinations,
//! e.g. `-v /sys/kernel/debug:/sys/kernel/debug`; a symlink reaching sysfs
//! from elsewhere is never what a user meant).

use super::confined::{normalize, ConfinedError, Root};
use std::os::fd::AsFd;

/// runc's `validProcMounts`: files lxcfs binds over to show a container
/// its own view of them.
const VALID_PROC_BINDS: &[&str] = &[
    "/proc/cpuinfo",
    "/proc/diskstats",
    "/proc/meminfo",
    "/proc/stat",
    "/proc/swaps",
    "/proc/uptime",
    "/proc/loadavg",
    "/proc/slabinfo",
    "/proc/net/dev",
    "/proc/sys/kernel/ns_last_pid",
    "/proc/sys/crypto/fips_enabled",
];

/// A kernel filesystem a mount destination must not resolve into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelFs {
    /// procfs.
    Proc,
    /// sysfs.
    Sys,
}

impl std::fmt::Display for KernelFs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            KernelFs::Proc => "/proc",
            KernelFs::Sys => "/sys",
        })
    }
}

/// The kernel filesystem `fd` is on, if it is procfs or sysfs.
pub fn kernel_fs(fd: &impl AsFd) -> Result<Option<KernelFs>, rustix::io::Errno> {
    let st = rustix::fs::fstatfs(fd)?;
    Ok(match st.f_type {
        t if t == libc::PROC_SUPER_MAGIC => Some(KernelFs::Proc),
        t if t == libc::SYSFS_MAGIC => Some(KernelFs::Sys),
        _ => None,
    })
}

/// Whether a mount on `target` (as the user wrote it) may land on `fs`.
pub fn allowed(target: &str, fs: KernelFs, bind: bool) -> bool {
    let target = normalize(target);
    match fs {
        KernelFs::Proc => bind && VALID_PROC_BINDS.contains(&target.as_str()),
        KernelFs::Sys => target == "/sys" || target.starts_with("/sys/"),
    }
}

/// Where `target` lands before anything is created for it: the deepest
/// of its ancestors (itself included) that exists, resolved inside `root`.
/// A missing component would be created there, so that is what counts.
pub fn landing(root: &Root, target: &str) -> Result<Option<KernelFs>, ConfinedError> {
    let mut path = normalize(target);
    loop {
        if let Ok(fd) = root.resolve(&path) {
            return kernel_fs(&fd).map_err(|e| ConfinedError::Path {
                action: "inspect",
                path: path.clone(),
                source: e.into(),
            });
        }
        if path == "/" {
            return Ok(None);
        }
        path.truncate(path.rfind('/').unwrap_or(0).max(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_only_takes_runc_lxcfs_binds_and_sys_only_its_own_paths() {
        assert!(allowed("/proc/meminfo", KernelFs::Proc, true));
        assert!(!allowed("/proc/meminfo", KernelFs::Proc, false));
        assert!(!allowed("/proc/sys", KernelFs::Proc, true));
        assert!(!allowed("/myproc/meminfo", KernelFs::Proc, true));
        assert!(allowed("/sys/kernel/debug", KernelFs::Sys, true));
        assert!(allowed("/sys/./fs/../kernel", KernelFs::Sys, false));
        assert!(!allowed("/mysys/kernel", KernelFs::Sys, true));
        assert!(!allowed("/sysx", KernelFs::Sys, true));
    }

    #[test]
    fn kernel_filesystems_are_recognised() {
        let proc = std::fs::File::open("/proc/self").unwrap();
        assert_eq!(kernel_fs(&proc).unwrap(), Some(KernelFs::Proc));
        let sys = std::fs::File::open("/sys/kernel").unwrap();
        assert_eq!(kernel_fs(&sys).unwrap(), Some(KernelFs::Sys));
        let tmp = tempfile::tempdir().unwrap();
        let dir = std::fs::File::open(tmp.path()).unwrap();
        assert_eq!(kernel_fs(&dir).unwrap(), None);
    }
}
