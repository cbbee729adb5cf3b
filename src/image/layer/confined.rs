//! Filesystem operations confined to one directory tree.
//!
//! Layer tars are hostile input: an entry `link/passwd` after `link -> /etc`
//! must not write to the host's `/etc` (CVE-2018-15664-class escapes, and
//! the many "tar slip" bugs). Every operation here works relative to an
//! open directory fd and resolves each path component with
//! `O_NOFOLLOW | O_DIRECTORY`, so a symlink anywhere in the path is an
//! error, never followed. Final components are created with `*at` calls
//! that do not follow symlinks either.

use nix::errno::Errno;
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::{fstatat, mkdirat, FileStat, Mode, SFlag};
use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Why a path could not be resolved inside the tree.
#[derive(Debug)]
pub enum Resolve {
    /// A component of the parent path is a symlink.
    Symlink(Vec<u8>),
    /// A component of the parent path exists but is not a directory.
    NotDir(Vec<u8>),
    /// Some other system error.
    Io(io::Error),
}

/// An open directory that operations are relative to.
pub struct Dir {
    fd: OwnedFd,
}

fn os(name: &[u8]) -> &OsStr {
    OsStr::from_bytes(name)
}

impl Dir {
    /// Opens `path` (which the caller trusts, e.g. the snapshot temp dir).
    pub fn open(path: &Path) -> io::Result<Dir> {
        let fd = openat(
            nix::fcntl::AT_FDCWD,
            path,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Dir { fd })
    }

    /// The raw fd, for `/proc/self/fd` paths and `*at` calls.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Opens the child directory `name` without following a symlink.
    pub fn open_dir(&self, name: &[u8]) -> Result<Dir, Resolve> {
        match openat(
            &self.fd,
            os(name),
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => Ok(Dir { fd }),
            Err(Errno::ELOOP) | Err(Errno::ENOTDIR) => match self.stat(name) {
                Ok(st) if kind(&st) == SFlag::S_IFLNK => Err(Resolve::Symlink(name.to_vec())),
                Ok(_) => Err(Resolve::NotDir(name.to_vec())),
                Err(e) => Err(Resolve::Io(e)),
            },
            Err(e) => Err(Resolve::Io(e.into())),
        }
    }

    /// Walks `components` from this directory, creating missing ones with
    /// mode 0755 (as docker's `MkdirAll` does for implicit parents) and
    /// reporting each created one to `created` (index into `components`).
    pub fn walk(
        &self,
        components: &[Vec<u8>],
        mut created: impl FnMut(usize),
    ) -> Result<Dir, Resolve> {
        let mut cur: Option<Dir> = None;
        for (i, c) in components.iter().enumerate() {
            let here = cur.as_ref().unwrap_or(self);
            let next = match here.open_dir(c) {
                Ok(d) => d,
                Err(Resolve::Io(e)) if e.raw_os_error() == Some(libc::ENOENT) => {
                    mkdirat(&here.fd, os(c), Mode::from_bits_truncate(0o755))
                        .map_err(|e| Resolve::Io(e.into()))?;
                    created(i);
                    here.open_dir(c)?
                }
                Err(e) => return Err(e),
            };
            cur = Some(next);
        }
        match cur {
            Some(d) => Ok(d),
            None => self.try_clone().map_err(Resolve::Io),
        }
    }

    fn try_clone(&self) -> io::Result<Dir> {
        Ok(Dir {
            fd: self.fd.try_clone()?,
        })
    }

    /// `lstat` of a child.
    pub fn stat(&self, name: &[u8]) -> io::Result<FileStat> {
        Ok(fstatat(
            &self.fd,
            os(name),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )?)
    }

    /// Removes a child of any type; directories recursively. std's
    /// `remove_dir_all` is symlink-safe (it uses `openat`, since the
    /// CVE-2022-21658 fix), and the `/proc/self/fd` path pins the parent.
    pub fn remove(&self, name: &[u8]) -> io::Result<()> {
        let st = self.stat(name)?;
        if kind(&st) == SFlag::S_IFDIR {
            std::fs::remove_dir_all(self.proc_path(name))
        } else {
            nix::unistd::unlinkat(&self.fd, os(name), nix::unistd::UnlinkatFlags::NoRemoveDir)?;
            Ok(())
        }
    }

    /// A path naming the child through this fd, immune to renames of the
    /// directories above it.
    pub fn proc_path(&self, name: &[u8]) -> std::path::PathBuf {
        let mut p = std::path::PathBuf::from(format!("/proc/self/fd/{}", self.fd.as_raw_fd()));
        p.push(os(name));
        p
    }

    /// Sets an xattr on a child without following a symlink.
    pub fn set_xattr(&self, name: &[u8], key: &[u8], value: &[u8]) -> io::Result<()> {
        let path = self.proc_path(name);
        Ok(rustix::fs::lsetxattr(
            path,
            key,
            value,
            rustix::fs::XattrFlags::empty(),
        )?)
    }

    /// Sets an xattr on this directory itself.
    pub fn set_own_xattr(&self, key: &[u8], value: &[u8]) -> io::Result<()> {
        set_fd_xattr(self.fd.as_fd(), key, value)
    }
}

/// Sets an xattr through an open fd.
pub fn set_fd_xattr(fd: BorrowedFd<'_>, key: &[u8], value: &[u8]) -> io::Result<()> {
    Ok(rustix::fs::fsetxattr(
        fd,
        key,
        value,
        rustix::fs::XattrFlags::empty(),
    )?)
}

/// The file type bits of a stat result.
pub fn kind(st: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(st.st_mode & libc::S_IFMT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walk_refuses_symlinked_parents() {
        let t = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/etc", t.path().join("link")).unwrap();
        std::fs::write(t.path().join("file"), b"").unwrap();
        let root = Dir::open(t.path()).unwrap();
        assert!(matches!(
            root.walk(&[b"link".to_vec()], |_| {}),
            Err(Resolve::Symlink(_))
        ));
        assert!(matches!(
            root.walk(&[b"file".to_vec(), b"x".to_vec()], |_| {}),
            Err(Resolve::NotDir(_))
        ));
        let mut made = Vec::new();
        root.walk(&[b"a".to_vec(), b"b".to_vec()], |i| made.push(i))
            .unwrap();
        assert_eq!(made, vec![0, 1]);
        assert!(t.path().join("a/b").is_dir());
    }
}
