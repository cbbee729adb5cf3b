//! A copy of the running kiln binary that a container cannot overwrite.
//!
//! kiln re-executes itself as each container's init. While that init runs
//! inside the container, a container process can open `/proc/<pid>/exe` and
//! — if that resolves to the host binary — rewrite the host's kiln
//! (CVE-2019-5736, the runc escape). So the init is never executed from the
//! host path. Like runc ≥ 1.2 we try, in order:
//!
//! 1. a read-only overlayfs view of the binary's directory, made with the
//!    new mount API and never attached to any mount tree: opening the file
//!    through it costs a few syscalls and any write gets `EROFS`;
//! 2. a sealed `memfd` copy (`F_SEAL_SEAL|SHRINK|GROW|WRITE`), which costs a
//!    copy of the binary but works without overlayfs (older kernels,
//!    filesystems overlayfs cannot stack on).
//!
//! The result is cached for the life of the process: a build running many
//! steps seals once.

use crate::error_chain::Chain;
use rustix::fs::{self, Mode, OFlags, SealFlags};
use rustix::mount::{self, FsMountFlags, FsOpenFlags, MountAttrFlags};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::sync::OnceLock;

/// Why the binary could not be sealed.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// `/proc/self/exe` could not be read.
    #[error("failed to open /proc/self/exe")]
    OpenSelf(#[source] std::io::Error),
    /// The memfd copy failed.
    #[error("failed to copy kiln into a sealed memfd")]
    Memfd(#[source] std::io::Error),
}

/// How the binary was protected (reported in logs and tested).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sealing {
    /// Opened through a detached read-only overlayfs mount.
    Overlay,
    /// Copied into a sealed memfd.
    Memfd,
}

/// An executable file descriptor for kiln that writes cannot reach.
#[derive(Debug)]
pub struct SealedExe {
    fd: OwnedFd,
    sealing: Sealing,
}

impl SealedExe {
    /// The fd to pass to `execveat(fd, "", .., AT_EMPTY_PATH)`.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Which protection was used.
    pub fn sealing(&self) -> Sealing {
        self.sealing
    }
}

/// The process-wide sealed copy of kiln, made on first use.
pub fn sealed_exe() -> Result<&'static SealedExe, SealError> {
    static CELL: OnceLock<SealedExe> = OnceLock::new();
    if let Some(exe) = CELL.get() {
        return Ok(exe);
    }
    let exe = seal(Path::new("/proc/self/exe"))?;
    Ok(CELL.get_or_init(|| exe))
}

/// Seals `exe`, preferring the overlay view and falling back to a memfd.
pub fn seal(exe: &Path) -> Result<SealedExe, SealError> {
    match overlay_view(exe) {
        Ok(fd) => {
            return Ok(SealedExe {
                fd,
                sealing: Sealing::Overlay,
            })
        }
        Err(err) => tracing::debug!(
            "overlay sealing unavailable ({err}), copying into a memfd",
            err = Chain(&err)
        ),
    }
    memfd_copy(exe).map(|fd| SealedExe {
        fd,
        sealing: Sealing::Memfd,
    })
}

/// Opens `exe` through a read-only overlay of its directory. The mount is
/// created detached (`fsmount` without `move_mount`), so it appears in no
/// mount table and disappears once the returned `O_PATH` fd is closed.
pub fn overlay_view(exe: &Path) -> std::io::Result<OwnedFd> {
    let target = std::fs::canonicalize(exe)?;
    let (Some(dir), Some(name)) = (target.parent(), target.file_name()) else {
        return Err(std::io::Error::other("kiln binary has no parent directory"));
    };
    let fsfd = mount::fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC)?;
    mount::fsconfig_set_string(fsfd.as_fd(), "source", "kiln-exe")?;
    mount::fsconfig_set_string(fsfd.as_fd(), "lowerdir+", dir)?;
    // Without an upper dir overlayfs wants two lower layers, and not the
    // same directory twice: put an empty detached tmpfs below.
    let empty = empty_tmpfs()?;
    let empty_path = format!("/proc/self/fd/{}", empty.as_raw_fd());
    mount::fsconfig_set_string(fsfd.as_fd(), "lowerdir+", empty_path.as_str())?;
    mount::fsconfig_create(fsfd.as_fd())?;
    let mnt = mount::fsmount(
        fsfd.as_fd(),
        FsMountFlags::FSMOUNT_CLOEXEC,
        MountAttrFlags::MOUNT_ATTR_RDONLY | MountAttrFlags::MOUNT_ATTR_NODEV,
    )?;
    let fd = fs::openat(
        mnt.as_fd(),
        name,
        OFlags::PATH | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    // The file seen through the overlay must be the binary we are running.
    let (seen, ours) = (fs::fstat(&fd)?, fs::stat(exe)?);
    if seen.st_size != ours.st_size || seen.st_mtime != ours.st_mtime {
        return Err(std::io::Error::other("kiln binary changed while sealing"));
    }
    Ok(fd)
}

/// A read-only empty tmpfs that is attached nowhere.
fn empty_tmpfs() -> std::io::Result<OwnedFd> {
    let fsfd = mount::fsopen("tmpfs", FsOpenFlags::FSOPEN_CLOEXEC)?;
    mount::fsconfig_set_string(fsfd.as_fd(), "size", "4k")?;
    mount::fsconfig_create(fsfd.as_fd())?;
    Ok(mount::fsmount(
        fsfd.as_fd(),
        FsMountFlags::FSMOUNT_CLOEXEC,
        MountAttrFlags::MOUNT_ATTR_RDONLY,
    )?)
}

/// Copies `exe` into a memfd and seals it against any change.
pub fn memfd_copy(exe: &Path) -> Result<OwnedFd, SealError> {
    let mut src = std::fs::File::open(exe).map_err(SealError::OpenSelf)?;
    let fd = fs::memfd_create(
        "kiln-init",
        fs::MemfdFlags::CLOEXEC | fs::MemfdFlags::ALLOW_SEALING,
    )
    .map_err(|e| SealError::Memfd(e.into()))?;
    let mut dst = std::fs::File::from(fd);
    std::io::copy(&mut src, &mut dst).map_err(SealError::Memfd)?;
    fs::fcntl_add_seals(
        &dst,
        SealFlags::SEAL | SealFlags::SHRINK | SealFlags::GROW | SealFlags::WRITE,
    )
    .map_err(|e| SealError::Memfd(e.into()))?;
    Ok(dst.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A copy of a binary in a temp dir, so the test never touches the real one.
    fn fixture() -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kiln-copy");
        std::fs::copy("/bin/busybox", &path).unwrap();
        (dir, path)
    }

    /// Reopening the sealed fd for writing, as the CVE-2019-5736 exploit
    /// does through /proc/<pid>/exe, must not change the file.
    fn assert_unwritable(fd: &OwnedFd, original: &Path) {
        let before = std::fs::read(original).unwrap();
        let proc_path = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(fd));
        if let Ok(mut f) = std::fs::OpenOptions::new().write(true).open(&proc_path) {
            assert!(f.write_all(b"pwned").is_err(), "write went through");
        }
        assert_eq!(std::fs::read(original).unwrap(), before);
    }

    #[test]
    fn overlay_view_is_read_only() {
        let (_dir, path) = fixture();
        let fd = overlay_view(&path).unwrap();
        assert_unwritable(&fd, &path);
        // The detached mount must not show up in our mount table.
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(!mounts.contains("kiln-exe"));
    }

    #[test]
    fn memfd_copy_is_sealed() {
        let (_dir, path) = fixture();
        let fd = memfd_copy(&path).unwrap();
        assert_unwritable(&fd, &path);
        let copy = std::fs::read(format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(&fd)
        ))
        .unwrap();
        assert_eq!(copy, std::fs::read(&path).unwrap());
    }
}
