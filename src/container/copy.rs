//! `kiln cp`: files between a running container and the host, with
//! docker's path rules (docker/cli `cli/command/container/cp.go`:
//! a destination that is a directory receives the source under its own
//! name, `SRC/.` copies a directory's contents).
//!
//! Paths in the container are resolved by the kernel inside the
//! container's root (`openat2(RESOLVE_IN_ROOT)` on its init's
//! `/proc/<pid>/root`): a symlink the container planted, absolute or
//! with `..`, never leads out of it. The opened directory or file is
//! then used through its descriptor. Below a copied directory entries
//! are `lstat`ed and symlinks copied as symlinks, never followed; a
//! container racing the copy by swapping one of its subdirectories for a
//! symlink between that `lstat` and the read is not covered (docker's tar
//! stream has the same window).

use super::exec;
use super::state::StateError;
use crate::cache::{copy_tree, Store};
use rustix::fs::{Mode, OFlags, ResolveFlags};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// Why a copy failed.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// Lookup or state (the container must be running).
    #[error(transparent)]
    State(#[from] StateError),
    /// A path in the container.
    #[error("{path} in container {id}")]
    InContainer {
        /// The container.
        id: String,
        /// The path as given.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Copying.
    #[error("copying {from} to {to}")]
    Copy {
        /// Source.
        from: String,
        /// Destination.
        to: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// Which way to copy.
#[derive(Debug, Clone)]
pub enum Direction {
    /// `CONTAINER:SRC HOST_DEST`.
    FromContainer {
        /// Path in the container.
        src: String,
        /// Host path.
        dest: PathBuf,
    },
    /// `HOST_SRC CONTAINER:DEST`.
    IntoContainer {
        /// Host path.
        src: PathBuf,
        /// Path in the container (an existing directory, or a new name in
        /// one).
        dest: String,
    },
}

/// Opens `path` inside the container's root.
fn open_in(root: &OwnedFd, path: &str, flags: OFlags) -> std::io::Result<OwnedFd> {
    let rel = path.trim_start_matches('/');
    let rel = if rel.is_empty() { "." } else { rel };
    Ok(rustix::fs::openat2(
        root,
        rel,
        flags | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    )?)
}

fn fd_path(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// Copies `src` (a directory or another entry, through a path that is
/// never a symlink) to `dest`, docker's way: into `dest` when it is an
/// existing directory, under the name `name`; as `dest` otherwise;
/// `contents_only` (`SRC/.`) copies a directory's entries into `dest`.
fn copy_entry(src: &Path, name: &str, dest: &Path, contents_only: bool) -> std::io::Result<()> {
    let meta = std::fs::metadata(src)?;
    // `lstat`: a destination that is a symlink (in a container, planted by
    // it) is never written through; it is replaced.
    let dest_is_dir = std::fs::symlink_metadata(dest).is_ok_and(|m| m.is_dir());
    let target = if dest_is_dir && !(meta.is_dir() && contents_only) {
        dest.join(name)
    } else {
        dest.to_path_buf()
    };
    let existing = std::fs::symlink_metadata(&target).ok();
    let target_is_dir = existing.as_ref().is_some_and(|m| m.is_dir());
    if existing.is_some() && !target_is_dir {
        std::fs::remove_file(&target)?;
    }
    if meta.is_dir() {
        if !target_is_dir {
            std::fs::create_dir(&target)?;
        }
        copy_tree(src, &target)
    } else if target_is_dir {
        Err(std::io::Error::new(
            std::io::ErrorKind::IsADirectory,
            format!(
                "cannot overwrite directory {} with a file",
                target.display()
            ),
        ))
    } else {
        std::fs::copy(src, &target).map(|_| ())
    }
}

fn base_name(path: &str) -> String {
    Path::new(path.trim_end_matches('/'))
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "root".into())
}

/// `kiln cp` with container `key`, which must be running.
pub fn copy(store: &Store, key: &str, direction: &Direction) -> Result<(), CopyError> {
    let (row, init) = exec::running(store, key)?;
    let id = row.id.clone();
    let in_container = |path: &str| {
        let id = id.clone();
        let path = path.to_string();
        move |source| CopyError::InContainer { id, path, source }
    };
    let root: OwnedFd = std::fs::File::open(format!("/proc/{init}/root"))
        .map_err(in_container("/"))?
        .into();
    match direction {
        Direction::FromContainer { src, dest } => {
            let fd = open_in(&root, src, OFlags::PATH).map_err(in_container(src))?;
            let contents_only = src.ends_with("/.");
            copy_entry(&fd_path(&fd), &base_name(src), dest, contents_only).map_err(|source| {
                CopyError::Copy {
                    from: format!("{key}:{src}"),
                    to: dest.display().to_string(),
                    source,
                }
            })
        }
        Direction::IntoContainer { src, dest } => {
            // The destination, or the directory to create it in.
            let (dir, leaf) = match open_in(&root, dest, OFlags::PATH | OFlags::DIRECTORY) {
                Ok(fd) => (fd, None),
                Err(_) => {
                    let trimmed = dest.trim_end_matches('/');
                    let (parent, leaf) = trimmed.rsplit_once('/').unwrap_or(("", trimmed));
                    if matches!(leaf, "" | "." | "..") {
                        return Err(in_container(dest)(std::io::Error::from(
                            std::io::ErrorKind::NotFound,
                        )));
                    }
                    let fd = open_in(&root, parent, OFlags::PATH | OFlags::DIRECTORY)
                        .map_err(in_container(dest))?;
                    (fd, Some(leaf.to_string()))
                }
            };
            let name = src
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "root".into());
            let contents_only = src.to_string_lossy().ends_with("/.");
            // `N/.`: the directory itself (an `lstat` of `N` alone would
            // see the descriptor's magic link).
            let dir_path = fd_path(&dir).join(".");
            let target = match &leaf {
                Some(leaf) => dir_path.join(leaf),
                None => dir_path,
            };
            copy_entry(src, &name, &target, contents_only).map_err(|source| CopyError::Copy {
                from: src.display().to_string(),
                to: format!("{key}:{dest}"),
                source,
            })
        }
    }
}
