//! `kiln diff`: what a container changed in its root filesystem, read
//! from its overlay upper dir against its image's layers.
//!
//! moby's overlay differ (`pkg/archive/changes.go`, `changes` with the
//! overlay's deleted-file check) walks the upper dir in path order: a
//! whiteout (a 0/0 character device) is `D`; an entry a lower layer also
//! has is `C`, except a directory whose size, mode and mtime are the
//! lower one's (copied up only because of something below it); anything
//! else is `A`; and the parent of an `A` or `D` is reported `C` before
//! it when it was not reported already. An opaque directory the image
//! has (`rm -rf d && mkdir d`) additionally lists as `D` each entry of
//! the image's directory it no longer shows, which is what docker's
//! whole-tree differ (`ChangesDirs`) reports for it.
//!
//! docker never shows the mount points its runtime needs: they live in
//! the container's init layer below its writable one (moby
//! `daemon/initlayer/setup_unix.go`, `Setup`). kiln's init makes them in
//! the upper dir, so an empty stub at one of [`RUNTIME_STUBS`] is left
//! out, and the directories holding them compare without their mtime
//! (which the stubs changed); such a directory still shows as the parent
//! of a real `A` or `D`. One difference remains: a file changed in place
//! in `/etc` does not show `C /etc` by itself, as it can in docker.

use super::image::LeasedImage;
use super::state::{self, CreateConfig, StateError};
use crate::cache::{Store, StoreError};
use std::collections::{BTreeSet, HashSet};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// The kind of a change, docker's letters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// `A`: new.
    Add,
    /// `C`: changed.
    Modify,
    /// `D`: deleted.
    Delete,
}

/// One line of `kiln diff`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// `A`, `C` or `D`.
    pub kind: ChangeKind,
    /// Absolute path in the container.
    pub path: String,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let letter = match self.kind {
            ChangeKind::Add => 'A',
            ChangeKind::Modify => 'C',
            ChangeKind::Delete => 'D',
        };
        write!(f, "{letter} {}", self.path)
    }
}

/// `kiln diff CONTAINER`: the changes of a container (running or not),
/// against its image's layers, leased while they are read.
pub fn of_container(store: &Store, key: &str) -> Result<Vec<Change>, DiffError> {
    state::reconcile(store)?;
    let row = state::find(store, key)?;
    let config = CreateConfig::of(&row)?;
    let upper = state::state_dir(store.root(), &row.id).join("upper");
    let (_held, lowers) = match &row.image_id {
        Some(image_id) => {
            let image = store.image_by_id(&image_id.parse().map_err(StoreError::from)?)?;
            let held = LeasedImage::lease(store, image, &format!("diff {}", &row.id[..12]))?;
            let lowers = held.layers.clone();
            (Some(held), lowers)
        }
        None => (None, config.spec.rootfs.lowers.clone()),
    };
    if !upper.exists() {
        // Created, never started: nothing written yet.
        return Ok(Vec::new());
    }
    Ok(changes(&upper, &lowers)?)
}

/// Why `kiln diff` failed.
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    /// Lookup or state.
    #[error(transparent)]
    State(#[from] StateError),
    /// The image's layers.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Reading the upper dir.
    #[error(transparent)]
    Changes(#[from] ChangesError),
}

/// Reading the upper dir failed.
#[derive(Debug, thiserror::Error)]
#[error("reading the container's changes at {}", path.display())]
pub struct ChangesError {
    path: PathBuf,
    #[source]
    source: std::io::Error,
}

/// The mount points kiln's init creates (docker's init layer has the
/// same ones).
pub const RUNTIME_STUBS: &[&str] = &[
    "/dev",
    "/dev/pts",
    "/dev/shm",
    "/dev/console",
    "/proc",
    "/sys",
    "/etc/resolv.conf",
    "/etc/hosts",
    "/etc/hostname",
    "/etc/mtab",
];

/// Directories whose mtime the stubs change.
const STUB_PARENTS: &[&str] = &["/etc", "/dev"];

/// An unchanged stub: at a stub path, and an empty directory or file.
fn is_stub(path: &Path, rel: &str, meta: &std::fs::Metadata) -> bool {
    RUNTIME_STUBS.contains(&rel)
        && if meta.is_dir() {
            std::fs::read_dir(path).is_ok_and(|mut d| d.next().is_none())
        } else {
            meta.is_file() && meta.len() == 0
        }
}

const OPAQUE_XATTRS: [&str; 2] = ["trusted.overlay.opaque", "user.overlay.opaque"];

/// The changes of `upper` over `lowers` (bottom first), in docker's order.
/// Nothing is followed: every entry is `lstat`ed, so a symlink the
/// container planted never leads the walk out of its directories.
pub fn changes(upper: &Path, lowers: &[PathBuf]) -> Result<Vec<Change>, ChangesError> {
    let mut walk = Walk {
        lowers,
        out: Vec::new(),
        changed_dirs: HashSet::new(),
    };
    walk.dir(upper, "")?;
    Ok(walk.out)
}

struct Walk<'a> {
    lowers: &'a [PathBuf],
    out: Vec<Change>,
    changed_dirs: HashSet<String>,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ChangesError + '_ {
    move |source| ChangesError {
        path: path.to_path_buf(),
        source,
    }
}

impl Walk<'_> {
    /// The topmost lower entry at `rel` (a path starting with `/`).
    fn in_base(&self, rel: &str) -> Option<std::fs::Metadata> {
        self.lowers
            .iter()
            .rev()
            .find_map(|l| std::fs::symlink_metadata(l.join(&rel[1..])).ok())
    }

    fn dir(&mut self, upper_dir: &Path, rel: &str) -> Result<(), ChangesError> {
        let mut names: Vec<_> = std::fs::read_dir(upper_dir)
            .map_err(io_err(upper_dir))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()
            .map_err(io_err(upper_dir))?;
        names.sort();
        for name in names {
            let path = upper_dir.join(&name);
            let child = format!("{rel}/{}", name.to_string_lossy());
            let meta = std::fs::symlink_metadata(&path).map_err(io_err(&path))?;
            self.entry(&path, &child, &meta)?;
        }
        Ok(())
    }

    fn entry(
        &mut self,
        path: &Path,
        rel: &str,
        meta: &std::fs::Metadata,
    ) -> Result<(), ChangesError> {
        let whiteout = meta.file_type().is_char_device() && meta.rdev() == 0;
        let base = self.in_base(rel);
        if base.is_none() && is_stub(path, rel, meta) {
            return Ok(());
        }
        // A directory that replaced the image's (opaque) is a change even
        // when its times happen to match.
        let replaced =
            meta.is_dir() && base.as_ref().is_some_and(|b| b.is_dir()) && is_opaque(path);
        let kind = if whiteout {
            Some(ChangeKind::Delete)
        } else {
            match &base {
                Some(b) if b.is_dir() && meta.is_dir() && !replaced && same_dir(b, meta, rel) => {
                    None
                }
                Some(_) => Some(ChangeKind::Modify),
                None => Some(ChangeKind::Add),
            }
        };
        if let Some(kind) = kind {
            if meta.is_dir() {
                self.changed_dirs.insert(rel.to_string());
            }
            self.record(kind, rel.to_string());
        }
        if meta.is_dir() {
            if replaced {
                self.hidden_by_opaque(path, rel)?;
            }
            self.dir(path, rel)?;
        }
        Ok(())
    }

    /// Adds a change, after its parent directory's `C` when an `A` or `D`
    /// is the first thing seen to change in it.
    fn record(&mut self, kind: ChangeKind, path: String) {
        if matches!(kind, ChangeKind::Add | ChangeKind::Delete) {
            let parent = path.rsplit_once('/').map_or("", |(p, _)| p);
            if !parent.is_empty() && self.changed_dirs.insert(parent.to_string()) {
                self.out.push(Change {
                    kind: ChangeKind::Modify,
                    path: parent.to_string(),
                });
            }
        }
        self.out.push(Change { kind, path });
    }

    /// `D` for each entry of the image's directory `rel` that the opaque
    /// upper directory `path` does not have.
    fn hidden_by_opaque(&mut self, path: &Path, rel: &str) -> Result<(), ChangesError> {
        let mut base_names = BTreeSet::new();
        for lower in self.lowers {
            if let Ok(entries) = std::fs::read_dir(lower.join(&rel[1..])) {
                base_names.extend(entries.filter_map(|e| Some(e.ok()?.file_name())));
            }
        }
        for name in base_names {
            if std::fs::symlink_metadata(path.join(&name)).is_err() {
                self.record(
                    ChangeKind::Delete,
                    format!("{rel}/{}", name.to_string_lossy()),
                );
            }
        }
        Ok(())
    }
}

/// moby's test for a directory copied up only for its children: same
/// size, mode and mtime (`sameFsTime`: seconds and nanoseconds).
/// Without the mtime for [`STUB_PARENTS`]; the size is never compared
/// there either, since an entry added changes a directory's size.
fn same_dir(a: &std::fs::Metadata, b: &std::fs::Metadata, rel: &str) -> bool {
    if STUB_PARENTS.contains(&rel) {
        return a.mode() == b.mode();
    }
    a.size() == b.size()
        && a.mode() == b.mode()
        && a.mtime() == b.mtime()
        && a.mtime_nsec() == b.mtime_nsec()
}

fn is_opaque(path: &Path) -> bool {
    OPAQUE_XATTRS.iter().any(|x| {
        let mut value = [0u8; 2];
        matches!(rustix::fs::lgetxattr(path, *x, &mut value), Ok(1) if value[0] == b'y')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(upper: &Path, lower: &Path) -> Vec<String> {
        changes(upper, &[lower.to_path_buf()])
            .unwrap()
            .iter()
            .map(|c| c.to_string())
            .collect()
    }

    #[test]
    fn whiteouts_opaque_dirs_and_stubs() {
        let tmp = tempfile::tempdir().unwrap();
        let (lower, upper) = (tmp.path().join("lower"), tmp.path().join("upper"));
        for d in ["d", "keep"] {
            std::fs::create_dir_all(lower.join(d)).unwrap();
        }
        std::fs::write(lower.join("d/a"), "a").unwrap();
        std::fs::write(lower.join("gone"), "g").unwrap();
        std::fs::create_dir_all(upper.join("d")).unwrap();
        std::fs::create_dir_all(upper.join("proc")).unwrap();
        std::fs::write(upper.join("d/c"), "c").unwrap();
        // Same times as the image's `d`: only the opaque marker (or `c`,
        // as its parent) makes it a change.
        let lower_d = std::fs::metadata(lower.join("d")).unwrap();
        let upper_d = std::fs::File::open(upper.join("d")).unwrap();
        upper_d.set_modified(lower_d.modified().unwrap()).unwrap();
        // A whiteout needs CAP_MKNOD and the opaque xattr CAP_SYS_ADMIN;
        // without them (an unprivileged `cargo test`) only the rest is checked.
        let privileged = rustix::fs::mknodat(
            rustix::fs::CWD,
            upper.join("gone"),
            rustix::fs::FileType::CharacterDevice,
            rustix::fs::Mode::empty(),
            0,
        )
        .is_ok()
            && rustix::fs::setxattr(
                upper.join("d"),
                "trusted.overlay.opaque",
                b"y",
                rustix::fs::XattrFlags::empty(),
            )
            .is_ok();
        let got = lines(&upper, &lower);
        if privileged {
            assert_eq!(got, ["C /d", "D /d/a", "A /d/c", "D /gone"]);
        } else {
            assert_eq!(got, ["C /d", "A /d/c"]);
        }
    }
}
