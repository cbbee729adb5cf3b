//! Paths resolved inside a container's root, never outside it.
//!
//! A root filesystem comes from an image anyone may have written, so
//! `/etc/hosts` in it can be a symlink to `/../../etc/shadow` of the host.
//! Before `pivot_root` every lookup of a mount target goes through
//! `openat2(RESOLVE_IN_ROOT)`, which treats the rootfs as `/` for `..` and
//! absolute symlinks alike (runc's `SecureJoin` and `MkdirAllInRoot` did
//! the same for CVE-2018-15664 / CVE-2021-30465). The resulting `O_PATH`
//! fd is then used as `/proc/self/fd/N` for mount(2), so the kernel mounts
//! exactly on the inode we checked.

use rustix::fs::{self, AtFlags, FileType, Mode, OFlags, ResolveFlags};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;

/// How many symlinks [`Root::ensure_file`] follows before giving up
/// (the kernel's own limit).
const MAX_SYMLINKS: usize = 40;

/// Why a path inside the root could not be resolved or created.
#[derive(Debug, thiserror::Error)]
pub enum ConfinedError {
    /// The root itself could not be opened.
    #[error("failed to open root {path}")]
    OpenRoot {
        /// The root directory.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A path inside the root failed.
    #[error("failed to {action} {path} in the container")]
    Path {
        /// What was attempted.
        action: &'static str,
        /// The path, as the container sees it.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// A directory treated as `/` for every lookup below it.
#[derive(Debug)]
pub struct Root {
    fd: OwnedFd,
}

/// `/proc/self/fd/N` for `fd`: lets path-based syscalls (mount) act on an
/// already resolved inode.
pub fn proc_fd_path(fd: &impl AsRawFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

fn resolve_flags() -> ResolveFlags {
    ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS
}

impl Root {
    /// Opens `path` as the root of later lookups.
    pub fn open(path: &Path) -> Result<Root, ConfinedError> {
        let fd = fs::open(
            path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| ConfinedError::OpenRoot {
            path: path.display().to_string(),
            source: e.into(),
        })?;
        Ok(Root { fd })
    }

    fn err(action: &'static str, path: &str, e: impl Into<std::io::Error>) -> ConfinedError {
        ConfinedError::Path {
            action,
            path: path.to_string(),
            source: e.into(),
        }
    }

    /// Opens an existing `path` (symlinks followed, inside the root) as
    /// `O_PATH`.
    pub fn resolve(&self, path: &str) -> Result<OwnedFd, ConfinedError> {
        fs::openat2(
            &self.fd,
            relative(path),
            OFlags::PATH | OFlags::CLOEXEC,
            Mode::empty(),
            resolve_flags(),
        )
        .map_err(|e| Self::err("resolve", path, e))
    }

    /// `mkdir -p path` inside the root; returns the directory as `O_PATH`.
    pub fn mkdir_all(&self, path: &str, mode: u32) -> Result<OwnedFd, ConfinedError> {
        let mut prefix = String::new();
        let mut dir = fs::openat(&self.fd, ".", OFlags::PATH | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| Self::err("open", "/", e))?;
        for name in components(path) {
            if name == ".." {
                // openat2 clamps `..` at the root; keep the prefix in step.
                prefix.truncate(prefix.rfind('/').unwrap_or(0));
            } else {
                prefix.push('/');
                prefix.push_str(name);
            }
            let open = || {
                fs::openat2(
                    &self.fd,
                    relative(&prefix),
                    OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                    Mode::empty(),
                    resolve_flags(),
                )
            };
            dir = match open() {
                Ok(fd) => fd,
                Err(rustix::io::Errno::NOENT) => {
                    match fs::mkdirat(&dir, name, Mode::from_raw_mode(mode)) {
                        Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                        Err(e) => return Err(Self::err("create directory", &prefix, e)),
                    }
                    // Re-resolve from the root rather than trusting `name`:
                    // whatever is there now is looked up confined.
                    open().map_err(|e| Self::err("open", &prefix, e))?
                }
                Err(e) => return Err(Self::err("open", &prefix, e)),
            };
        }
        Ok(dir)
    }

    /// Makes sure `path` exists as a directory (`dir`) or a file, creating
    /// it and its parents when missing, and returns it as `O_PATH`. A
    /// dangling symlink (say `/etc/resolv.conf -> ../run/resolv.conf`) is
    /// followed inside the root and its target created, as runc does.
    pub fn ensure(&self, path: &str, dir: bool) -> Result<OwnedFd, ConfinedError> {
        let mut current = normalize(path);
        for _ in 0..MAX_SYMLINKS {
            if current == "/" {
                return self.mkdir_all("/", 0o755);
            }
            let (parent, name) = split_parent(&current);
            let parent_fd = self.mkdir_all(&parent, 0o755)?;
            match fs::statat(&parent_fd, name, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Symlink => {
                    let target = fs::readlinkat(&parent_fd, name, Vec::new())
                        .map_err(|e| Self::err("read link", &current, e))?;
                    let target = target.to_string_lossy().into_owned();
                    current = if target.starts_with('/') {
                        normalize(&target)
                    } else {
                        normalize(&format!("{parent}/{target}"))
                    };
                    continue;
                }
                Ok(_) => return self.resolve(&current),
                Err(rustix::io::Errno::NOENT) => {}
                Err(e) => return Err(Self::err("stat", &current, e)),
            }
            if dir {
                return self.mkdir_all(&current, 0o755);
            }
            let created = fs::openat(
                &parent_fd,
                name,
                OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::WRONLY | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o644),
            );
            match created {
                Ok(_) | Err(rustix::io::Errno::EXIST) => return self.resolve(&current),
                Err(e) => return Err(Self::err("create file", &current, e)),
            }
        }
        Err(Self::err("resolve", path, rustix::io::Errno::LOOP))
    }
}

impl AsFd for Root {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// The non-empty, non-`.` components of `path`.
fn components(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|c| !c.is_empty() && *c != ".")
}

/// `path` relative to the root (openat2 wants no leading `/`).
fn relative(path: &str) -> &str {
    let p = path.trim_start_matches('/');
    if p.is_empty() {
        "."
    } else {
        p
    }
}

/// Lexically cleans an in-container path: `/a/./b/../c` → `/a/c`, `..`
/// never climbing above `/` (what RESOLVE_IN_ROOT does).
pub fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in components(path) {
        if c == ".." {
            parts.pop();
        } else {
            parts.push(c);
        }
    }
    format!("/{}", parts.join("/"))
}

/// (`/a/b`, `c`) for `/a/b/c`; the path must be normalized and not `/`.
fn split_parent(path: &str) -> (String, &str) {
    let idx = path.rfind('/').unwrap_or(0);
    let parent = if idx == 0 {
        "/".to_string()
    } else {
        path[..idx].to_string()
    };
    (parent, &path[idx + 1..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_normalize(input: &str, expected: &str) {
        assert_eq!(normalize(input), expected, "normalize({input})");
    }

    #[test]
    fn normalize_cases() {
        check_normalize("/", "/");
        check_normalize("", "/");
        check_normalize("/a/./b/../c", "/a/c");
        check_normalize("/../../etc", "/etc");
        check_normalize("a//b/", "/a/b");
    }

    #[test]
    fn symlinks_stay_inside_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        // Escapes by absolute and by relative symlink.
        std::os::unix::fs::symlink("/outside-abs", root.join("etc/hosts")).unwrap();
        std::os::unix::fs::symlink("../../../outside-rel", root.join("etc/resolv.conf")).unwrap();
        std::os::unix::fs::symlink("/", root.join("up")).unwrap();
        let r = Root::open(&root).unwrap();
        r.ensure("/etc/hosts", false).unwrap();
        r.ensure("/etc/resolv.conf", false).unwrap();
        r.mkdir_all("/up/../up/x/y", 0o755).unwrap();
        assert!(root.join("outside-abs").is_file());
        assert!(root.join("outside-rel").is_file());
        assert!(root.join("x/y").is_dir());
        assert!(!dir.path().join("outside-rel").exists());
        assert!(!Path::new("/outside-abs").exists());
    }

    #[test]
    fn ensure_keeps_existing_and_creates_dirs() {
        let dir = tempfile::tempdir().unwrap();
        let r = Root::open(dir.path()).unwrap();
        let fd = r.ensure("/data/sub", true).unwrap();
        assert!(dir.path().join("data/sub").is_dir());
        assert!(fs::fstat(&fd).is_ok());
        std::fs::write(dir.path().join("data/f"), "x").unwrap();
        r.ensure("/data/f", false).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("data/f")).unwrap(),
            "x"
        );
    }
}
