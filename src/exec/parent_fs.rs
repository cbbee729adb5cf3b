//! A read-only view of the filesystem a COPY/ADD lands on: the parent
//! image's snapshot as overlayfs would show it.
//!
//! The copy writes only its new layer; it reads the parent to resolve
//! existing directories (kept as they are, their metadata copied up like
//! overlay's copy-up), symlinks in the destination path (followed inside
//! the rootfs), and `/etc/passwd` / `/etc/group` for `--chown` names.
//!
//! Two implementations:
//! - [`MergedDir`]: a directory that already shows the merged filesystem
//!   (an overlay mount, or an unpacked rootfs);
//! - [`LayerStack`]: the parent's snapshot directories, top first, in
//!   overlayfs upper-dir format, looked up the way overlayfs does without
//!   mounting anything: a whiteout (a 0/0 character device) hides the path
//!   in the layers below, a non-directory hides everything below it, and an
//!   opaque directory (xattr `trusted.overlay.opaque=y`, or
//!   `user.overlay.opaque=y` for snapshots made in a user namespace) hides
//!   the same directory in the layers below.

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Component, Path, PathBuf};

use crate::exec::attrs::get_xattr;

/// Read access to the destination image's current filesystem.
///
/// `path` is relative to the image root, clean, and its directory part has
/// no symlinks (callers resolve them first, one component at a time).
pub trait ParentFs: Sync {
    /// The host path of the entry the image shows at `path` (for `lstat`,
    /// `readlink`, reading contents or xattrs), or `None` when there is
    /// none.
    fn locate(&self, path: &Path) -> io::Result<Option<PathBuf>>;

    /// The names the directory at `path` lists, unsorted, or `None` when
    /// there is no directory there.
    fn list(&self, path: &Path) -> io::Result<Option<Vec<OsString>>>;
}

/// The names in `dir`.
fn names_in(dir: &Path) -> io::Result<Vec<OsString>> {
    std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.file_name()))
        .collect()
}

/// A directory holding the merged filesystem.
#[derive(Debug, Clone)]
pub struct MergedDir {
    root: PathBuf,
}

impl MergedDir {
    /// A view of the merged filesystem at `root`.
    pub fn new(root: impl Into<PathBuf>) -> MergedDir {
        MergedDir { root: root.into() }
    }
}

/// Whether an `lstat` error means "no such entry" (including a file used as
/// a directory).
fn is_absent(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENOTDIR)
}

impl ParentFs for MergedDir {
    fn locate(&self, path: &Path) -> io::Result<Option<PathBuf>> {
        // Every directory on the way must be a real directory: where the
        // new layer put a directory over the parent's symlink, the caller
        // falls through to the parent with a path through that symlink, and
        // following it would read the host (overlayfs does not merge a
        // directory with a lower symlink either).
        let mut host = self.root.clone();
        let mut names = path
            .components()
            .filter(|c| matches!(c, Component::Normal(_)))
            .peekable();
        while let Some(name) = names.next() {
            host.push(name);
            match std::fs::symlink_metadata(&host) {
                Ok(meta) if names.peek().is_none() || meta.is_dir() => {}
                Ok(_) => return Ok(None),
                Err(e) if is_absent(&e) => return Ok(None),
                Err(e) => return Err(e),
            }
        }
        Ok(Some(host))
    }

    fn list(&self, path: &Path) -> io::Result<Option<Vec<OsString>>> {
        match self.locate(path)? {
            Some(host) if std::fs::symlink_metadata(&host)?.is_dir() => names_in(&host).map(Some),
            _ => Ok(None),
        }
    }
}

/// A parent image given as its snapshot directories, topmost first.
#[derive(Debug, Clone)]
pub struct LayerStack {
    layers: Vec<PathBuf>,
}

impl LayerStack {
    /// A view of `layers` stacked as overlayfs would, `layers[0]` on top.
    pub fn new(layers: Vec<PathBuf>) -> LayerStack {
        LayerStack { layers }
    }
}

/// What one layer holds at a path.
enum Entry {
    Absent,
    Whiteout,
    Dir { opaque: bool },
    Other,
}

fn entry_in(layer: &Path, rel: &Path) -> io::Result<Entry> {
    let host = layer.join(rel);
    let meta = match std::fs::symlink_metadata(&host) {
        Ok(meta) => meta,
        Err(e) if is_absent(&e) => return Ok(Entry::Absent),
        Err(e) => return Err(e),
    };
    let ft = meta.file_type();
    if ft.is_char_device() && meta.rdev() == 0 {
        return Ok(Entry::Whiteout);
    }
    if ft.is_dir() {
        let opaque = ["trusted.overlay.opaque", "user.overlay.opaque"]
            .iter()
            .try_fold(false, |found, name| {
                Ok::<_, io::Error>(found || get_xattr(&host, name)?.as_deref() == Some(b"y"))
            })?;
        return Ok(Entry::Dir { opaque });
    }
    Ok(Entry::Other)
}

/// What a [`LayerStack`] shows at a path.
enum Merged<'a> {
    Absent,
    /// A non-directory: its host path.
    NonDir(PathBuf),
    /// A directory: the layers whose copies of it are merged, top first.
    Dir(Vec<&'a Path>),
}

impl LayerStack {
    fn merged(&self, path: &Path) -> io::Result<(Merged<'_>, PathBuf)> {
        let names: Vec<&OsStr> = path
            .components()
            .filter_map(|c| match c {
                Component::Normal(n) => Some(n),
                _ => None,
            })
            .collect();
        // The layers whose copy of the current directory is merged, top
        // first; for `/` that is every layer.
        let mut stack: Vec<&Path> = self.layers.iter().map(PathBuf::as_path).collect();
        let mut rel = PathBuf::new();
        for (i, name) in names.iter().enumerate() {
            rel.push(name);
            let last = i + 1 == names.len();
            let mut next: Vec<&Path> = Vec::new();
            let mut found_non_dir = None;
            for layer in &stack {
                match entry_in(layer, &rel)? {
                    Entry::Absent => continue,
                    Entry::Whiteout => break,
                    Entry::Other => {
                        // A non-directory on top of the stack is the entry;
                        // below a directory it ends the merge.
                        if next.is_empty() {
                            found_non_dir = Some(layer.join(&rel));
                        }
                        break;
                    }
                    Entry::Dir { opaque } => {
                        next.push(layer);
                        if opaque {
                            break;
                        }
                    }
                }
            }
            if let Some(host) = found_non_dir {
                let found = if last {
                    Merged::NonDir(host)
                } else {
                    Merged::Absent
                };
                return Ok((found, rel));
            }
            if next.is_empty() {
                return Ok((Merged::Absent, rel));
            }
            stack = next;
        }
        Ok((Merged::Dir(stack), rel))
    }
}

impl ParentFs for LayerStack {
    fn locate(&self, path: &Path) -> io::Result<Option<PathBuf>> {
        Ok(match self.merged(path)? {
            (Merged::Absent, _) => None,
            (Merged::NonDir(host), _) => Some(host),
            // The root, or a directory: its topmost copy carries the
            // metadata overlay shows.
            (Merged::Dir(stack), rel) => stack.first().map(|top| top.join(rel)),
        })
    }

    fn list(&self, path: &Path) -> io::Result<Option<Vec<OsString>>> {
        let (Merged::Dir(stack), rel) = self.merged(path)? else {
            return Ok(None);
        };
        // A name is decided by the topmost layer that has it; a whiteout
        // there hides it.
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for layer in stack {
            let dir = layer.join(&rel);
            for name in names_in(&dir)? {
                if !seen.insert(name.clone()) {
                    continue;
                }
                if !matches!(entry_in(layer, &rel.join(&name))?, Entry::Whiteout) {
                    out.push(name);
                }
            }
        }
        Ok(Some(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::attrs::set_xattr;

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }

    fn whiteout(path: &Path) {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        nix::sys::stat::mknod(
            path,
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0),
            0,
        )
        .expect("mknod whiteout (needs root)");
    }

    /// Three layers: bottom has a/{x,y}, b/z, c (file), d/inner; middle
    /// whites out a/x and makes d opaque with d/new; top replaces c with a
    /// directory and b with a file.
    fn stack() -> (tempfile::TempDir, LayerStack) {
        let dir = tempfile::tempdir().expect("tempdir");
        let (top, mid, bottom) = (
            dir.path().join("top"),
            dir.path().join("mid"),
            dir.path().join("bottom"),
        );
        write(&bottom.join("a/x"), "bx");
        write(&bottom.join("a/y"), "by");
        write(&bottom.join("b/z"), "bz");
        write(&bottom.join("c"), "bc");
        write(&bottom.join("d/inner"), "bi");
        whiteout(&mid.join("a/x"));
        write(&mid.join("d/new"), "mn");
        set_xattr(&mid.join("d"), b"trusted.overlay.opaque", b"y").expect("opaque");
        write(&top.join("c/file"), "tc");
        write(&top.join("b"), "tb");
        let layers = LayerStack::new(vec![top, mid, bottom]);
        (dir, layers)
    }

    fn located(layers: &LayerStack, path: &str) -> Option<String> {
        layers
            .locate(Path::new(path))
            .expect("lookup")
            .map(|p| std::fs::read_to_string(&p).unwrap_or_else(|_| "<dir>".to_string()))
    }

    #[test]
    fn lookups_follow_overlay_rules() {
        let (_dir, layers) = stack();
        assert_eq!(located(&layers, "a/y").as_deref(), Some("by"));
        assert_eq!(located(&layers, "a/x"), None, "whiteout hides the file");
        assert_eq!(
            located(&layers, "b").as_deref(),
            Some("tb"),
            "file over a dir"
        );
        assert_eq!(located(&layers, "b/z"), None, "a file hides the dir below");
        assert_eq!(
            located(&layers, "c").as_deref(),
            Some("<dir>"),
            "dir over a file"
        );
        assert_eq!(located(&layers, "c/file").as_deref(), Some("tc"));
        assert_eq!(located(&layers, "d/new").as_deref(), Some("mn"));
        assert_eq!(
            located(&layers, "d/inner"),
            None,
            "opaque dir hides the lower dir"
        );
        assert_eq!(located(&layers, "missing/deeper"), None);
        assert!(located(&layers, "").is_some(), "the root exists");
    }

    #[test]
    fn listings_follow_overlay_rules() {
        let (_dir, layers) = stack();
        let listed = |path: &str| {
            layers.list(Path::new(path)).expect("list").map(|names| {
                let mut names: Vec<String> = names
                    .into_iter()
                    .map(|n| n.to_string_lossy().into_owned())
                    .collect();
                names.sort();
                names
            })
        };
        assert_eq!(listed("").unwrap(), ["a", "b", "c", "d"]);
        assert_eq!(listed("a").unwrap(), ["y"], "whiteout hides a/x");
        assert_eq!(listed("c").unwrap(), ["file"], "dir over a file");
        assert_eq!(listed("d").unwrap(), ["new"], "opaque dir hides d/inner");
        assert_eq!(listed("b"), None, "b is a file");
        assert_eq!(listed("missing"), None);
    }

    #[test]
    fn merged_dir_is_a_plain_lookup() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(&dir.path().join("etc/passwd"), "root:x:0:0::/root:/bin/sh");
        let merged = MergedDir::new(dir.path());
        assert!(merged
            .locate(Path::new("etc/passwd"))
            .expect("lookup")
            .is_some());
        assert!(merged
            .locate(Path::new("etc/passwd/x"))
            .expect("lookup")
            .is_none());
        assert!(merged.locate(Path::new("nope")).expect("lookup").is_none());
        // Never through a symlink, even one pointing at a real directory.
        std::os::unix::fs::symlink("/", dir.path().join("hostroot")).expect("symlink");
        assert!(merged
            .locate(Path::new("hostroot/etc"))
            .expect("lookup")
            .is_none());
        assert!(merged
            .locate(Path::new("hostroot"))
            .expect("lookup")
            .is_some());
    }
}
