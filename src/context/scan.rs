//! Walking a build context: every entry's metadata, never its contents.
//!
//! Directories are read in parallel (rayon) and stats use the directory's
//! fd (`fstatat` via `DirEntry::metadata`), so a 10,000-file context scans
//! in milliseconds. `.dockerignore` is applied here, through the
//! [`PathFilter`] seam, so excluded files never reach a digest or a copy.

use rayon::prelude::*;
use std::cmp::Ordering;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// Decides which context paths are left out (`.dockerignore`). Paths are
/// relative to the context root, `/`-separated, without a leading slash.
pub trait PathFilter: Sync {
    /// Whether `rel` is excluded.
    fn excluded(&self, rel: &str) -> bool;
    /// Whether nothing under the excluded directory `rel` can be
    /// re-included (no `!` pattern reaches inside), so it need not be read.
    fn can_skip_dir(&self, rel: &str) -> bool;
}

/// Keeps everything.
#[derive(Clone, Copy, Debug, Default)]
pub struct IncludeAll;

impl PathFilter for IncludeAll {
    fn excluded(&self, _: &str) -> bool {
        false
    }
    fn can_skip_dir(&self, _: &str) -> bool {
        false
    }
}

/// A filter from a closure saying which paths are excluded; excluded
/// directories are skipped whole.
pub struct ExcludeFn<F>(pub F);

impl<F: Fn(&str) -> bool + Sync> PathFilter for ExcludeFn<F> {
    fn excluded(&self, rel: &str) -> bool {
        (self.0)(rel)
    }
    fn can_skip_dir(&self, rel: &str) -> bool {
        (self.0)(rel)
    }
}

/// What kind of file an entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
    Fifo,
    Socket,
    CharDevice,
    BlockDevice,
}

/// One file, directory or link in the context, as stat saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Relative to the context root, `/`-separated, no leading slash.
    pub path: String,
    pub kind: EntryKind,
    /// Permission bits including setuid/setgid/sticky (`st_mode & 0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    /// For symlinks, where they point (as stored, not resolved).
    pub link_target: Option<String>,
    /// For devices, the device number.
    pub rdev: u64,
    pub mtime_ns: i64,
    /// ctime, inode and device detect changes mtime hides (a restored
    /// mtime, a replaced file); used only by the digest cache.
    pub ctime_ns: i64,
    pub ino: u64,
    pub dev: u64,
}

/// A scanned context: its root and its entries in [`path_order`].
#[derive(Clone, Debug)]
pub struct ContextTree {
    root: PathBuf,
    entries: Vec<Entry>,
}

/// Why a context cannot be scanned.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("cannot read build context {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("build context {0} is not a directory")]
    NotADirectory(PathBuf),
}

impl ContextTree {
    /// The context directory on the host.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// All kept entries, parents before children, siblings by name.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The index of the entry at `rel` (no leading slash).
    pub fn find(&self, rel: &str) -> Option<usize> {
        self.entries
            .binary_search_by(|e| path_order(&e.path, rel))
            .ok()
    }

    /// Where the entry at `rel` lives on the host.
    pub fn host_path(&self, rel: &str) -> PathBuf {
        if rel.is_empty() {
            self.root.clone()
        } else {
            self.root.join(name_bytes(rel))
        }
    }
}

/// The first of the 256 code points that stand for raw bytes in context
/// paths: the last 256 of Supplementary Private Use Area-B.
const RAW_BYTE_BASE: u32 = 0x10_FF00;

/// A file name (or link target) as a context path string. Names are bytes
/// on Linux and BuildKit sends them as such (fsutil's `Stat.Path` is a Go
/// string, any bytes), so a name that is not UTF-8 must neither fail the
/// build nor change: each byte of an invalid sequence becomes the code
/// point `U+10FF00 + byte`, and [`name_bytes`] turns it back. Patterns and
/// digests see these stand-ins; a real name made of those private-use code
/// points would read back as raw bytes, the one ambiguity kept.
pub fn name_string(name: &std::ffi::OsStr) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut bytes = name.as_bytes();
    let mut out = String::with_capacity(bytes.len());
    loop {
        match std::str::from_utf8(bytes) {
            Ok(valid) => {
                out.push_str(valid);
                return out;
            }
            Err(e) => {
                let (valid, rest) = bytes.split_at(e.valid_up_to());
                // Checked by from_utf8 just above.
                out.push_str(std::str::from_utf8(valid).unwrap_or_default());
                let bad = e.error_len().unwrap_or(rest.len());
                for &b in &rest[..bad] {
                    out.extend(char::from_u32(RAW_BYTE_BASE + u32::from(b)));
                }
                bytes = &rest[bad..];
            }
        }
    }
}

/// The bytes a context path stands for (see [`name_string`]).
pub fn name_bytes(rel: &str) -> std::borrow::Cow<'_, std::ffi::OsStr> {
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    let is_raw = |c: char| (RAW_BYTE_BASE..=RAW_BYTE_BASE + 0xff).contains(&u32::from(c));
    if !rel.contains(is_raw) {
        return std::borrow::Cow::Borrowed(std::ffi::OsStr::from_bytes(rel.as_bytes()));
    }
    let mut out = Vec::with_capacity(rel.len());
    for c in rel.chars() {
        if is_raw(c) {
            out.push((u32::from(c) - RAW_BYTE_BASE) as u8);
        } else {
            out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
        }
    }
    std::borrow::Cow::Owned(std::ffi::OsString::from_vec(out))
}

/// Orders paths component by component (`a/b` < `a-b`, since `a` < `a-b`),
/// which keeps every directory's subtree contiguous right after it.
pub fn path_order(a: &str, b: &str) -> Ordering {
    let key = |c: u8| if c == b'/' { 0 } else { c };
    a.bytes().map(key).cmp(b.bytes().map(key))
}

/// Scans the context at `root`, leaving out what `filter` excludes.
pub fn scan(root: &Path, filter: &dyn PathFilter) -> Result<ContextTree, ScanError> {
    let meta = fs::metadata(root).map_err(|source| ScanError::Io {
        path: root.to_path_buf(),
        source,
    })?;
    if !meta.is_dir() {
        return Err(ScanError::NotADirectory(root.to_path_buf()));
    }
    let entries = scan_dir(root, "", filter)?;
    Ok(ContextTree {
        root: root.to_path_buf(),
        entries,
    })
}

/// A directory entry read but not yet stat'ed.
struct Listed {
    name: String,
    is_dir: bool,
    entry: fs::DirEntry,
}

/// Scans one directory: its entries in name order, each directory
/// followed by its own subtree, so the result is already in
/// [`path_order`] and no global sort is needed.
fn scan_dir(abs: &Path, rel: &str, filter: &dyn PathFilter) -> Result<Vec<Entry>, ScanError> {
    let io_err = |path: PathBuf| move |source| ScanError::Io { path, source };
    let mut listed = Vec::new();
    for entry in fs::read_dir(abs).map_err(io_err(abs.to_path_buf()))? {
        let entry = entry.map_err(io_err(abs.to_path_buf()))?;
        let name = name_string(&entry.file_name());
        // d_type from readdir; no stat needed to know a directory.
        let is_dir = entry.file_type().map_err(io_err(entry.path()))?.is_dir();
        listed.push(Listed {
            name,
            is_dir,
            entry,
        });
    }
    // Sibling names hold no '/', so byte order is path order among them.
    listed.sort_unstable_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
    let scanned: Vec<Option<(Entry, Vec<Entry>)>> = listed
        .into_par_iter()
        .with_min_len(32)
        .map(|item| {
            let rel = if rel.is_empty() {
                item.name
            } else {
                let mut path = String::with_capacity(rel.len() + 1 + item.name.len());
                path.push_str(rel);
                path.push('/');
                path.push_str(&item.name);
                path
            };
            let excluded = filter.excluded(&rel);
            if excluded && (!item.is_dir || filter.can_skip_dir(&rel)) {
                return Ok(None);
            }
            // fstatat on the directory's fd: no path walk from the root.
            let meta = item.entry.metadata().map_err(io_err(item.entry.path()))?;
            let entry = entry_from(rel, &item.entry, &meta)?;
            if !item.is_dir {
                return Ok(Some((entry, Vec::new())));
            }
            let below = scan_dir(&item.entry.path(), &entry.path, filter)?;
            // An excluded directory is kept only as the parent of something
            // a `!` pattern brought back.
            if excluded && below.is_empty() {
                return Ok(None);
            }
            Ok(Some((entry, below)))
        })
        .collect::<Result<_, ScanError>>()?;
    let total = scanned
        .iter()
        .flatten()
        .map(|(_, below)| 1 + below.len())
        .sum();
    let mut out = Vec::with_capacity(total);
    for (entry, below) in scanned.into_iter().flatten() {
        out.push(entry);
        out.extend(below);
    }
    Ok(out)
}

fn entry_from(
    path: String,
    dirent: &fs::DirEntry,
    meta: &fs::Metadata,
) -> Result<Entry, ScanError> {
    let ft = meta.file_type();
    let kind = if ft.is_file() {
        EntryKind::File
    } else if ft.is_dir() {
        EntryKind::Dir
    } else if ft.is_symlink() {
        EntryKind::Symlink
    } else if ft.is_fifo() {
        EntryKind::Fifo
    } else if ft.is_socket() {
        EntryKind::Socket
    } else if ft.is_char_device() {
        EntryKind::CharDevice
    } else {
        EntryKind::BlockDevice
    };
    let link_target = if kind == EntryKind::Symlink {
        let abs = dirent.path();
        let target = fs::read_link(&abs).map_err(|source| ScanError::Io {
            path: abs.clone(),
            source,
        })?;
        Some(name_string(target.as_os_str()))
    } else {
        None
    };
    Ok(Entry {
        path,
        kind,
        mode: meta.mode() & 0o7777,
        uid: meta.uid(),
        gid: meta.gid(),
        size: if kind == EntryKind::File {
            meta.size()
        } else {
            0
        },
        link_target,
        rdev: meta.rdev(),
        mtime_ns: meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
        ctime_ns: meta.ctime() * 1_000_000_000 + meta.ctime_nsec(),
        ino: meta.ino(),
        dev: meta.dev(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    fn tree(files: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for f in files {
            let path = dir.path().join(f);
            if let Some(d) = f.strip_suffix('/') {
                fs::create_dir_all(dir.path().join(d)).unwrap();
            } else {
                fs::create_dir_all(path.parent().unwrap()).unwrap();
                fs::write(&path, f.as_bytes()).unwrap();
            }
        }
        dir
    }

    fn paths(t: &ContextTree) -> Vec<&str> {
        t.entries().iter().map(|e| e.path.as_str()).collect()
    }

    #[test]
    fn entries_are_sorted_parents_first_with_metadata() {
        let dir = tree(&["a-b", "a/b", "a/c/d", "z", "empty/"]);
        fs::set_permissions(dir.path().join("z"), fs::Permissions::from_mode(0o4755)).unwrap();
        symlink("a/b", dir.path().join("link")).unwrap();
        let t = scan(dir.path(), &IncludeAll).unwrap();
        assert_eq!(
            paths(&t),
            ["a", "a/b", "a/c", "a/c/d", "a-b", "empty", "link", "z"]
        );
        let z = &t.entries()[t.find("z").unwrap()];
        assert_eq!((z.kind, z.mode, z.size), (EntryKind::File, 0o4755, 1));
        let link = &t.entries()[t.find("link").unwrap()];
        assert_eq!(link.kind, EntryKind::Symlink);
        assert_eq!(link.link_target.as_deref(), Some("a/b"));
        assert_eq!(t.entries()[t.find("a/c").unwrap()].kind, EntryKind::Dir);
        assert!(t.find("a/x").is_none());
    }

    #[test]
    fn excluded_paths_are_left_out_and_skipped_dirs_not_read() {
        let dir = tree(&[
            "keep",
            "drop.log",
            "node_modules/x/y",
            "docs/a.md",
            "docs/keep.txt",
        ]);
        /// Records every question, to prove node_modules is never read.
        struct Ignore(std::sync::Mutex<Vec<String>>);
        impl PathFilter for Ignore {
            fn excluded(&self, rel: &str) -> bool {
                self.0.lock().unwrap().push(rel.to_string());
                rel.ends_with(".log")
                    || rel.starts_with("node_modules")
                    || rel == "docs"
                    || rel == "docs/a.md"
            }
            fn can_skip_dir(&self, rel: &str) -> bool {
                // As if `!docs/keep.txt` re-included something inside docs.
                rel != "docs"
            }
        }
        let ignore = Ignore(Default::default());
        let t = scan(dir.path(), &ignore).unwrap();
        assert_eq!(paths(&t), ["docs", "docs/keep.txt", "keep"]);
        let asked = ignore.0.into_inner().unwrap();
        assert!(
            asked.iter().all(|p| !p.starts_with("node_modules/")),
            "{asked:?}"
        );
        let t = scan(dir.path(), &ExcludeFn(|rel: &str| rel == "docs")).unwrap();
        assert_eq!(
            paths(&t),
            [
                "drop.log",
                "keep",
                "node_modules",
                "node_modules/x",
                "node_modules/x/y"
            ]
        );
    }

    #[test]
    fn a_missing_or_non_directory_context_is_an_error() {
        let dir = tree(&["file"]);
        let err = scan(&dir.path().join("file"), &IncludeAll).unwrap_err();
        assert!(matches!(err, ScanError::NotADirectory(_)), "{err}");
        let err = scan(&dir.path().join("nope"), &IncludeAll).unwrap_err();
        assert!(
            err.to_string().starts_with("cannot read build context"),
            "{err}"
        );
    }

    #[test]
    fn non_utf8_names_round_trip_through_their_string_form() {
        use std::os::unix::ffi::OsStrExt;
        for raw in [
            &b"plain"[..],
            b"bad\xff",
            b"\xe2\x82 cut \xe2\x82\xac euro",
            b"\xc0\xaf",
            "\u{10FF00}".as_bytes(),
        ] {
            let name = std::ffi::OsStr::from_bytes(raw);
            let s = name_string(name);
            if std::str::from_utf8(raw).is_ok() && !s.contains('\u{10FF00}') {
                assert_eq!(s.as_bytes(), raw);
            }
            if raw != "\u{10FF00}".as_bytes() {
                assert_eq!(name_bytes(&s).as_bytes(), raw, "{s:?}");
            }
        }
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(std::ffi::OsStr::from_bytes(b"x\xff")), "").unwrap();
        let t = scan(dir.path(), &IncludeAll).unwrap();
        assert_eq!(t.entries().len(), 1);
        assert!(t.host_path(&t.entries()[0].path).exists());
    }

    #[test]
    fn path_order_is_component_wise() {
        let mut v = vec!["a.b", "a/z", "a", "a/b/c", "a-", "b"];
        v.sort_by(|a, b| path_order(a, b));
        assert_eq!(v, ["a", "a/b/c", "a/z", "a-", "a.b", "b"]);
    }
}
