//! The destination side of a copy: the new layer directory seen on top of
//! the parent image, as overlayfs will stack them.
//!
//! A lookup checks the layer first (entries this copy already wrote), then
//! the parent view; a non-directory in the layer hides everything the
//! parent has below it, exactly as a non-directory in an overlay upper dir
//! does. The layer never holds whiteouts or opaque directories: BuildKit's
//! COPY/ADD never delete, they add, replace a non-directory, or merge a
//! directory into a directory.
//!
//! Writing below a directory that exists only in the parent first *copies
//! it up*: the layer gets a directory with the parent's mode, owner, times
//! and xattrs, as overlayfs' own copy-up would make it, so the layer is a
//! correct upper dir and, later, a correct layer diff (parents of changed
//! files are part of a diff).
//!
//! Destination paths resolve symlinks with the image root as `/`
//! (securejoin semantics, as BuildKit's `fs.RootPath`): `COPY x /link/` with
//! `/link -> /opt/app` writes `/opt/app/x`, never outside the rootfs.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fs::Metadata;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Component, Path, PathBuf};

use thiserror::Error;

use crate::exec::attrs::{copy_xattrs, set_mode, set_owner, set_times, Time};
use crate::exec::parent_fs::ParentFs;

/// Linux follows 40 symlinks in one lookup; securejoin allows 255.
const MAX_SYMLINKS: usize = 255;

/// Why a destination path could not be resolved or prepared. Paths are
/// image paths (`/usr/bin`), never host paths.
#[derive(Debug, Error)]
pub enum DestError {
    /// A path component that must be a directory is not one (BuildKit's
    /// wording).
    #[error("cannot copy to non-directory: {0}")]
    NotADirectory(String),
    /// A symlink chain longer than 255 links.
    #[error("too many levels of symbolic links resolving {0}")]
    SymlinkLoop(String),
    /// A path or symlink in an archive points outside the extraction root.
    #[error("archive path {0:?} points outside the extraction root")]
    Escape(String),
    /// An I/O error on the layer or parent.
    #[error("failed to {op} {path}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The image path.
        path: String,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
}

/// How `..` and symlinks that leave the resolution root are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escape {
    /// Clamp at the root, as for paths in the image (securejoin).
    Clamp,
    /// Fail, as BuildKit's archive extraction does for relative symlinks
    /// leaving the destination.
    Reject,
}

/// Where an entry of the merged view lives.
#[derive(Debug)]
pub enum Located {
    /// In the new layer, at `layer/rel`.
    Layer(Metadata),
    /// Only in the parent, at this host path.
    Parent(PathBuf, Metadata),
}

impl Located {
    /// The entry's metadata (not followed).
    pub fn meta(&self) -> &Metadata {
        match self {
            Located::Layer(m) | Located::Parent(_, m) => m,
        }
    }
}

/// Formats an image path for messages: `/` + the relative path.
pub fn image_path(rel: &Path) -> String {
    format!("/{}", rel.to_string_lossy())
}

/// The owner and mode of directories a copy creates where nothing existed
/// (BuildKit's `MkdirAll(dest, 0755, chown, ...)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewDir {
    /// Owner uid.
    pub uid: u32,
    /// Owner gid.
    pub gid: u32,
    /// Permission bits.
    pub mode: u32,
}

/// The new layer on top of an optional parent view.
pub struct DestFs<'a> {
    layer: &'a Path,
    parent: Option<&'a dyn ParentFs>,
    euid: u32,
    egid: u32,
}

fn components(path: &Path) -> VecDeque<OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
        .collect()
}

fn is_absent(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENOTDIR)
}

impl<'a> DestFs<'a> {
    /// A view of `layer` stacked on `parent` (`None`: an independent layer,
    /// as for `COPY --link`).
    pub fn new(layer: &'a Path, parent: Option<&'a dyn ParentFs>) -> DestFs<'a> {
        DestFs {
            layer,
            parent,
            euid: nix::unistd::geteuid().as_raw(),
            egid: nix::unistd::getegid().as_raw(),
        }
    }

    /// The layer directory.
    pub fn layer(&self) -> &Path {
        self.layer
    }

    /// The host path of `rel` in the layer.
    pub fn host(&self, rel: &Path) -> PathBuf {
        self.layer.join(rel)
    }

    /// Looks `rel` (clean, relative to the image root, no symlinks in its
    /// directory part) up in the merged view.
    pub fn lookup(&self, rel: &Path) -> Result<Option<Located>, DestError> {
        let io_err = |source| DestError::Io {
            op: "stat",
            path: image_path(rel),
            source,
        };
        let mut prefix = PathBuf::new();
        let names = components(rel);
        for (i, name) in names.iter().enumerate() {
            prefix.push(name);
            let last = i + 1 == names.len();
            match std::fs::symlink_metadata(self.layer.join(&prefix)) {
                Ok(meta) if last => return Ok(Some(Located::Layer(meta))),
                Ok(meta) if meta.is_dir() => continue,
                // A non-directory in the layer hides the parent's subtree.
                Ok(_) => return Ok(None),
                Err(e) if is_absent(&e) => return self.lookup_parent(rel),
                Err(e) => return Err(io_err(e)),
            }
        }
        // The root: the layer directory itself.
        std::fs::symlink_metadata(self.layer)
            .map(|m| Some(Located::Layer(m)))
            .map_err(io_err)
    }

    /// Looks `rel` up in the parent only.
    pub fn lookup_parent(&self, rel: &Path) -> Result<Option<Located>, DestError> {
        let Some(parent) = self.parent else {
            return Ok(None);
        };
        let io_err = |source| DestError::Io {
            op: "stat",
            path: image_path(rel),
            source,
        };
        let Some(host) = parent.locate(rel).map_err(io_err)? else {
            return Ok(None);
        };
        match std::fs::symlink_metadata(&host) {
            Ok(meta) => Ok(Some(Located::Parent(host, meta))),
            Err(e) if is_absent(&e) => Ok(None),
            Err(e) => Err(io_err(e)),
        }
    }

    fn read_link(&self, rel: &Path, found: &Located) -> Result<PathBuf, DestError> {
        let host = match found {
            Located::Layer(_) => self.layer.join(rel),
            Located::Parent(host, _) => host.clone(),
        };
        std::fs::read_link(&host).map_err(|source| DestError::Io {
            op: "read symlink",
            path: image_path(rel),
            source,
        })
    }

    /// Resolves `path` below `root` (both relative to the image root) with
    /// every symlink expanded inside `root`; the last component is expanded
    /// only if `follow_last`. Returns the resolved path relative to the
    /// image root.
    pub fn resolve(
        &self,
        root: &Path,
        path: &Path,
        follow_last: bool,
        escape: Escape,
    ) -> Result<PathBuf, DestError> {
        let mut resolved = PathBuf::new();
        let mut pending = components(path);
        let mut followed = 0;
        while let Some(name) = pending.pop_front() {
            if name == ".." {
                if !resolved.pop() && escape == Escape::Reject {
                    return Err(DestError::Escape(path.to_string_lossy().into_owned()));
                }
                continue;
            }
            let candidate = resolved.join(&name);
            if pending.is_empty() && !follow_last {
                resolved = candidate;
                continue;
            }
            let full = root.join(&candidate);
            match self.lookup(&full)? {
                Some(found) if found.meta().file_type().is_symlink() => {
                    followed += 1;
                    if followed > MAX_SYMLINKS {
                        return Err(DestError::SymlinkLoop(image_path(&root.join(path))));
                    }
                    let target = self.read_link(&full, &found)?;
                    if target.is_absolute() {
                        resolved = PathBuf::new();
                    }
                    let mut expanded = components(&target);
                    expanded.extend(pending);
                    pending = expanded;
                }
                _ => resolved = candidate,
            }
        }
        Ok(root.join(resolved))
    }

    /// Makes `rel` a directory in the merged view, like BuildKit's
    /// `MkdirAll`: directories that exist (in the layer, or copied up from
    /// the parent) are kept as they are, missing ones are created with
    /// `new`'s owner and mode. Returns whether `rel` itself was created here
    /// (then nothing below it exists yet). `rel` must be resolved.
    pub fn mkdir_all(&self, rel: &Path, new: NewDir) -> Result<bool, DestError> {
        let names = components(rel);
        let mut prefix = PathBuf::new();
        let mut fresh = false;
        for name in names {
            prefix.push(&name);
            if !fresh {
                match self.lookup(&prefix)? {
                    Some(Located::Layer(meta)) if meta.is_dir() => continue,
                    Some(Located::Parent(host, meta)) if meta.is_dir() => {
                        self.copy_up_dir(&prefix, &host, &meta)?;
                        continue;
                    }
                    Some(_) => return Err(DestError::NotADirectory(image_path(&prefix))),
                    None => fresh = true,
                }
            }
            self.create_dir(&prefix, new)?;
        }
        Ok(fresh)
    }

    /// Creates the directory `rel` in the layer with `new`'s mode and owner.
    pub fn create_dir(&self, rel: &Path, new: NewDir) -> Result<(), DestError> {
        self.make_dir(rel, "create directory", new)
    }

    /// Makes `rel` in the layer with `dir`'s owner and mode; `op` names
    /// the mkdir in errors.
    fn make_dir(&self, rel: &Path, op: &'static str, dir: NewDir) -> Result<(), DestError> {
        let host = self.layer.join(rel);
        let err = |op, source| DestError::Io {
            op,
            path: image_path(rel),
            source,
        };
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&host)
            .map_err(|e| err(op, e))?;
        self.chown_if_needed(&host, dir.uid, dir.gid)
            .map_err(|e| err("chown", e))?;
        // Set explicitly: mkdir's mode is filtered by the umask.
        set_mode(&host, dir.mode).map_err(|e| err("chmod", e))
    }

    /// Recreates the parent's directory `rel` (at `host`) in the layer with
    /// its metadata, as overlayfs' copy-up does.
    pub fn copy_up_dir(&self, rel: &Path, host: &Path, meta: &Metadata) -> Result<(), DestError> {
        let dst = self.layer.join(rel);
        let err = |op, source| DestError::Io {
            op,
            path: image_path(rel),
            source,
        };
        let dir = NewDir {
            uid: meta.uid(),
            gid: meta.gid(),
            mode: meta.mode(),
        };
        self.make_dir(rel, "copy up directory", dir)?;
        copy_xattrs(host, &dst);
        let atime = Time {
            sec: meta.atime(),
            nsec: meta.atime_nsec(),
        };
        let mtime = Time {
            sec: meta.mtime(),
            nsec: meta.mtime_nsec(),
        };
        set_times(&dst, atime, mtime).map_err(|e| err("set times on", e))
    }

    /// Sets the owner unless the entry was created with it already (files
    /// kiln creates belong to its effective ids), saving a syscall per file.
    pub fn chown_if_needed(&self, host: &Path, uid: u32, gid: u32) -> io::Result<()> {
        if uid == self.euid && gid == self.egid {
            return Ok(());
        }
        set_owner(host, uid, gid)
    }

    /// Removes whatever the layer holds at `rel` (a file or a whole tree)
    /// so a new entry can take its place.
    pub fn remove_in_layer(&self, rel: &Path) -> Result<(), DestError> {
        let host = self.layer.join(rel);
        let result = match std::fs::symlink_metadata(&host) {
            Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(&host),
            Ok(_) => std::fs::remove_file(&host),
            Err(e) if is_absent(&e) => Ok(()),
            Err(e) => Err(e),
        };
        result.map_err(|source| DestError::Io {
            op: "remove",
            path: image_path(rel),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::parent_fs::MergedDir;
    use std::os::unix::fs::symlink;

    fn parent_with(links: &[(&str, &str)], dirs: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        for d in dirs {
            std::fs::create_dir_all(dir.path().join(d)).expect("mkdir");
        }
        for (link, target) in links {
            symlink(target, dir.path().join(link)).expect("symlink");
        }
        dir
    }

    /// One case: parent symlinks and dirs, a path, the expected resolution.
    fn check(links: &[(&str, &str)], dirs: &[&str], path: &str, follow_last: bool, expected: &str) {
        let parent = parent_with(links, dirs);
        let merged = MergedDir::new(parent.path());
        let layer = tempfile::tempdir().expect("tempdir");
        let fs = DestFs::new(layer.path(), Some(&merged));
        let got = fs
            .resolve(Path::new(""), Path::new(path), follow_last, Escape::Clamp)
            .expect("resolves");
        assert_eq!(got, Path::new(expected), "{path} with {links:?}");
    }

    #[test]
    fn dest_symlinks_resolve_inside_the_rootfs() {
        check(
            &[("link", "/opt/app")],
            &["opt/app"],
            "/link/x",
            true,
            "opt/app/x",
        );
        check(
            &[("link", "../../../../etc")],
            &[],
            "/link/x",
            true,
            "etc/x",
        );
        check(&[("a", "b"), ("b", "/c")], &[], "/a", true, "c");
        check(&[("a", "b")], &[], "/a", false, "a");
        check(&[], &[], "/../../x/./y", true, "x/y");
    }

    #[test]
    fn mkdir_all_copies_up_existing_dirs_and_creates_missing_ones() {
        let parent = parent_with(&[], &["usr/local"]);
        std::fs::set_permissions(
            parent.path().join("usr/local"),
            std::os::unix::fs::PermissionsExt::from_mode(0o750),
        )
        .expect("chmod");
        let merged = MergedDir::new(parent.path());
        let layer = tempfile::tempdir().expect("tempdir");
        let fs = DestFs::new(layer.path(), Some(&merged));
        let new = NewDir {
            uid: 1000,
            gid: 1001,
            mode: 0o755,
        };
        let fresh = fs
            .mkdir_all(Path::new("usr/local/app/bin"), new)
            .expect("mkdir");
        assert!(fresh);
        let meta = |p: &str| std::fs::symlink_metadata(layer.path().join(p)).expect("lstat");
        assert_eq!(meta("usr/local").mode() & 0o7777, 0o750, "copied up as is");
        assert_eq!(meta("usr/local").uid(), 0);
        assert_eq!(meta("usr/local/app").mode() & 0o7777, 0o755);
        assert_eq!(
            (
                meta("usr/local/app/bin").uid(),
                meta("usr/local/app/bin").gid()
            ),
            (1000, 1001)
        );
        assert!(!fs
            .mkdir_all(Path::new("usr/local/app"), new)
            .expect("again"));
    }

    #[test]
    fn mkdir_all_through_a_file_fails_with_the_image_path() {
        let parent = parent_with(&[], &["etc"]);
        std::fs::write(parent.path().join("etc/passwd"), "x").expect("write");
        let merged = MergedDir::new(parent.path());
        let layer = tempfile::tempdir().expect("tempdir");
        let fs = DestFs::new(layer.path(), Some(&merged));
        let new = NewDir {
            uid: 0,
            gid: 0,
            mode: 0o755,
        };
        let err = fs.mkdir_all(Path::new("etc/passwd/x"), new).unwrap_err();
        assert_eq!(err.to_string(), "cannot copy to non-directory: /etc/passwd");
    }

    #[test]
    fn a_file_in_the_layer_hides_the_parent_subtree() {
        let parent = parent_with(&[], &["d/sub"]);
        let merged = MergedDir::new(parent.path());
        let layer = tempfile::tempdir().expect("tempdir");
        std::fs::write(layer.path().join("d"), "file").expect("write");
        let fs = DestFs::new(layer.path(), Some(&merged));
        assert!(fs.lookup(Path::new("d/sub")).expect("lookup").is_none());
        assert!(matches!(
            fs.lookup(Path::new("d")).expect("lookup"),
            Some(Located::Layer(_))
        ));
    }

    #[test]
    fn reject_mode_refuses_to_leave_the_root() {
        let layer = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(layer.path().join("dst")).expect("mkdir");
        symlink("../../outside", layer.path().join("dst/evil")).expect("symlink");
        let fs = DestFs::new(layer.path(), None);
        let err = fs
            .resolve(Path::new("dst"), Path::new("evil/x"), true, Escape::Reject)
            .unwrap_err();
        assert!(matches!(err, DestError::Escape(_)), "{err}");
        // An absolute target is taken relative to the extraction root.
        symlink("/inside", layer.path().join("dst/abs")).expect("symlink");
        let got = fs
            .resolve(Path::new("dst"), Path::new("abs/x"), true, Escape::Reject)
            .expect("resolves");
        assert_eq!(got, Path::new("dst/inside/x"));
    }
}
