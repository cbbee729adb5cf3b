//! The metadata a copy carries over besides content: owner, mode, times and
//! extended attributes, set with the no-follow syscalls so a symlink's own
//! metadata is changed, never its target's.
//!
//! Order matters and follows fsutil's `copyFileInfo`: owner first (chown
//! clears setuid/setgid bits and file capabilities), then mode, then times,
//! then xattrs (so `security.capability` survives).

use rustix::fs::{AtFlags, Mode, Timespec, Timestamps, XattrFlags, CWD};
use rustix::io::Errno;
use std::io;
use std::path::Path;

/// A point in time as `stat` reports it (seconds and nanoseconds since the
/// epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Time {
    /// Seconds since the Unix epoch.
    pub sec: i64,
    /// Nanoseconds within the second.
    pub nsec: i64,
}

impl Time {
    /// The current time.
    pub fn now() -> Time {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Time {
            sec: d.as_secs() as i64,
            nsec: i64::from(d.subsec_nanos()),
        }
    }

    fn timespec(self) -> Timespec {
        Timespec {
            tv_sec: self.sec,
            tv_nsec: self.nsec as _,
        }
    }
}

/// Sets atime and mtime of `path` itself (not a symlink's target).
pub fn set_times(path: &Path, atime: Time, mtime: Time) -> io::Result<()> {
    let times = Timestamps {
        last_access: atime.timespec(),
        last_modification: mtime.timespec(),
    };
    Ok(rustix::fs::utimensat(
        CWD,
        path,
        &times,
        AtFlags::SYMLINK_NOFOLLOW,
    )?)
}

/// Changes the owner of `path` itself (lchown).
pub fn set_owner(path: &Path, uid: u32, gid: u32) -> io::Result<()> {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))
}

/// Sets the 12 permission bits of `path` (which must not be a symlink).
pub fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    Ok(rustix::fs::chmod(path, Mode::from_raw_mode(mode & 0o7777))?)
}

/// Overlayfs' own attributes (`trusted.overlay.*`, or `user.overlay.*` in a
/// user namespace) describe a snapshot's layering (opaque dirs, redirects),
/// not the file: copying them into a new layer would change what overlay
/// shows, e.g. hide everything below a copied-up directory.
fn is_overlay_private(name: &[u8]) -> bool {
    name.starts_with(b"trusted.overlay.") || name.starts_with(b"user.overlay.")
}

/// Reads one extended attribute of `path` itself; `None` if it is not set
/// (or the filesystem has no xattrs).
pub fn get_xattr(path: &Path, name: &str) -> io::Result<Option<Vec<u8>>> {
    let mut buf = vec![0u8; 256];
    loop {
        match rustix::fs::lgetxattr(path, name, &mut buf[..]) {
            Ok(len) => {
                buf.truncate(len);
                return Ok(Some(buf));
            }
            Err(Errno::NODATA | Errno::NOTSUP) => return Ok(None),
            Err(Errno::RANGE) => buf.resize(buf.len() * 4, 0),
            Err(e) => return Err(e.into()),
        }
    }
}

/// The names of `path`'s extended attributes.
fn list_xattrs(path: &Path) -> io::Result<Vec<Vec<u8>>> {
    let size = match rustix::fs::llistxattr_query(path) {
        Ok(size) => size,
        Err(Errno::NOTSUP) => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    if size == 0 {
        return Ok(Vec::new());
    }
    let mut buf = vec![0u8; size];
    let size = rustix::fs::llistxattr(path, &mut buf[..])?;
    buf.truncate(size);
    Ok(buf
        .split(|&b| b == 0)
        .filter(|n| !n.is_empty())
        .map(<[u8]>::to_vec)
        .collect())
}

/// Copies the extended attributes of `src` onto `dst` (both not followed),
/// except overlayfs' private ones. Failures are logged and skipped, as
/// BuildKit's file op does (its xattr error handler only logs): a
/// filesystem without user xattrs must not fail a COPY.
pub fn copy_xattrs(src: &Path, dst: &Path) {
    let names = match list_xattrs(src) {
        Ok(names) => names,
        Err(e) => {
            tracing::debug!(path = %src.display(), error = %e, "cannot list xattrs");
            return;
        }
    };
    for name in names.into_iter().filter(|n| !is_overlay_private(n)) {
        let name_str = String::from_utf8_lossy(&name).into_owned();
        let result = get_xattr(src, &name_str).and_then(|value| match value {
            Some(value) => set_xattr(dst, &name, &value),
            None => Ok(()),
        });
        if let Err(e) = result {
            tracing::debug!(path = %dst.display(), xattr = %name_str, error = %e, "cannot copy xattr");
        }
    }
}

/// Sets one extended attribute on `path` itself.
pub fn set_xattr(path: &Path, name: &[u8], value: &[u8]) -> io::Result<()> {
    Ok(rustix::fs::lsetxattr(
        path,
        name,
        value,
        XattrFlags::empty(),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn times_are_set_on_the_symlink_itself() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("target");
        std::fs::write(&target, "x").expect("write");
        let link = dir.path().join("link");
        std::os::unix::fs::symlink("target", &link).expect("symlink");
        let t = Time {
            sec: 1_000_000,
            nsec: 5,
        };
        set_times(&link, t, t).expect("utimensat");
        assert_eq!(
            std::fs::symlink_metadata(&link).expect("lstat").mtime(),
            1_000_000
        );
        assert_ne!(std::fs::metadata(&target).expect("stat").mtime(), 1_000_000);
    }

    #[test]
    fn overlay_private_xattrs_are_not_copied() {
        let dir = tempfile::tempdir().expect("tempdir");
        let src = dir.path().join("src");
        let dst = dir.path().join("dst");
        std::fs::create_dir(&src).expect("mkdir");
        std::fs::create_dir(&dst).expect("mkdir");
        // trusted.* needs CAP_SYS_ADMIN; the suite runs as root.
        set_xattr(&src, b"trusted.overlay.opaque", b"y").expect("set opaque");
        set_xattr(&src, b"user.kept", b"v").expect("set user xattr");
        copy_xattrs(&src, &dst);
        assert_eq!(
            get_xattr(&dst, "user.kept").expect("get"),
            Some(b"v".to_vec())
        );
        assert_eq!(
            get_xattr(&dst, "trusted.overlay.opaque").expect("get"),
            None
        );
    }
}
