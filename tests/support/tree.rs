//! A host directory tree as a comparable listing, to prove a command
//! left it alone: every entry (the root included) with its type, mode,
//! owner, mtime and contents (file bytes, symlink target), symlinks never
//! followed.
//!
//! ctime, atime and link counts are left out: reading a file and
//! hard-linking it (the `.dockerignore` mirror does) change them without
//! changing anything a user keeps.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// The listing of `root`, one line per entry in path order; file contents
/// are given in full (test trees are small).
pub fn listing(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    add(root, Path::new("."), &mut out);
    out.sort();
    out
}

fn add(root: &Path, rel: &Path, out: &mut Vec<String>) {
    let path = root.join(rel);
    let md = std::fs::symlink_metadata(&path)
        .unwrap_or_else(|e| panic!("listing {}: {e}", path.display()));
    let ft = md.file_type();
    let what = if ft.is_dir() {
        "dir".to_string()
    } else if ft.is_symlink() {
        format!("link -> {}", std::fs::read_link(&path).unwrap().display())
    } else if ft.is_file() {
        let bytes = std::fs::read(&path).unwrap();
        format!("file {:?}", String::from_utf8_lossy(&bytes))
    } else {
        format!("special rdev {}", md.rdev())
    };
    out.push(format!(
        "{} {what} mode {:o} owner {}:{} mtime {}.{:09}",
        rel.display(),
        md.mode(),
        md.uid(),
        md.gid(),
        md.mtime(),
        md.mtime_nsec()
    ));
    if ft.is_dir() {
        for e in std::fs::read_dir(&path).unwrap() {
            add(root, &rel.join(e.unwrap().file_name()), out);
        }
    }
}
