//! Expanding a `COPY` source in a source root on disk, the way BuildKit's
//! fsutil `ResolveWildcards` does (tonistiigi/fsutil `copy/copy.go`):
//!
//! - The source path is split at the first component holding a wildcard
//!   (`/a/b*/c` → `/a` and `b*/c`, [`super::split_wildcards`]). The first
//!   part is resolved inside the source root (symlinks followed), a missing
//!   one failing like BuildKit (`lstat /a: no such file or directory`);
//!   below it, entries are matched in lexical order, a matching directory
//!   is taken whole and not descended, and symlinks are never descended.
//! - No match is not an error here: BuildKit's Dockerfile frontend sets
//!   `AllowEmptyWildcard`, so `COPY optional*.txt /dst/` copies nothing when
//!   nothing matches (moby/moby#26332 relies on it).
//! - In the build context, a literal part with a backslash is not there
//!   ([`super::context_can_hold`]).
//!
//! One divergence: Go's `filepath.Match` reports a malformed pattern
//! (`[abc`) as an error that fsutil ignores, silently matching nothing;
//! kiln rejects it, naming the pattern.

use crate::context::scan::{name_bytes, name_string};
use std::io;
use std::path::{Path, PathBuf};

use thiserror::Error;

use super::{context_can_hold, split_wildcards, Pattern, PatternError};
use crate::fs::path_in_root::resolve_in_root;

/// Which kind of root a source is expanded in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceRoot {
    /// The build context: only what BuildKit's transfer would send for the
    /// source is there ([`super::context_can_hold`]).
    Context,
    /// A stage's or image's filesystem: everything is there.
    Rootfs,
}

/// Why a source could not be expanded.
#[derive(Debug, Error)]
pub enum WildcardError {
    /// The pattern is not valid `filepath.Match` syntax.
    #[error("invalid source pattern {pattern:?}: {reason}")]
    BadPattern {
        /// The source as written.
        pattern: String,
        /// What is wrong with it.
        reason: PatternError,
    },
    /// The directory part before the first wildcard does not exist
    /// (BuildKit's wording).
    #[error("lstat {path}: no such file or directory")]
    BaseMissing {
        /// The directory, as a path in the source root.
        path: String,
    },
    /// A literal source the context transfer does not send (BuildKit's
    /// checksum wording, Go `%q` quoting).
    #[error("{path:?}: not found")]
    NotSent {
        /// The source, as an absolute path in the context.
        path: String,
    },
    /// Reading the source tree failed.
    #[error("failed to read source directory {path}")]
    Io {
        /// The directory, as a path in the source root.
        path: String,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
}

/// Expands the source `src` (clean, absolute, relative to `root`): the
/// paths it matches, relative to `root` without a leading `/`, in lexical
/// order. A path without wildcards comes back as is (whether it exists is
/// the caller's check), unless it is one the context cannot hold.
pub fn resolve_wildcards(
    root: &Path,
    src: &str,
    follow: bool,
    kind: SourceRoot,
) -> Result<Vec<String>, WildcardError> {
    let (dir, pattern_text) = split_wildcards(src);
    let hidden = kind == SourceRoot::Context && !context_can_hold(&dir);
    if pattern_text.is_empty() {
        if hidden {
            return Err(WildcardError::NotSent { path: dir });
        }
        return Ok(vec![dir.trim_start_matches('/').to_string()]);
    }
    let pattern = Pattern::new(&pattern_text).map_err(|reason| WildcardError::BadPattern {
        pattern: src.to_string(),
        reason,
    })?;
    if hidden {
        return Err(WildcardError::BaseMissing { path: dir });
    }
    let base = if follow {
        resolve_in_root(root, Path::new(&dir))
    } else {
        resolve_parent_in_root(root, &dir)
    }
    .map_err(|source| WildcardError::Io {
        path: dir.clone(),
        source,
    })?;
    let meta = std::fs::symlink_metadata(&base).map_err(|source| match source.kind() {
        io::ErrorKind::NotFound => WildcardError::BaseMissing {
            path: host_to_rel(root, &base),
        },
        _ => WildcardError::Io {
            path: dir.clone(),
            source,
        },
    })?;
    let mut out = Vec::new();
    if meta.is_dir() {
        walk(root, &base, &pattern, 0, &mut out)?;
    }
    Ok(out)
}

/// `rootPath` without following the last component: only its parent
/// directory is resolved.
fn resolve_parent_in_root(root: &Path, path: &str) -> io::Result<PathBuf> {
    let path = Path::new(path);
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) => Ok(resolve_in_root(root, parent)?.join(name)),
        _ => resolve_in_root(root, path),
    }
}

/// The source-root path of a host path below `root`, with a leading `/`
/// (for messages).
fn host_to_rel(root: &Path, host: &Path) -> String {
    format!(
        "/{}",
        host.strip_prefix(root).unwrap_or(host).to_string_lossy()
    )
}

/// Visits `dir` (at pattern depth `depth`), collecting matches in lexical
/// order and descending only into directories whose names match the
/// pattern component at their depth.
fn walk(
    root: &Path,
    dir: &Path,
    pattern: &Pattern,
    depth: usize,
    out: &mut Vec<String>,
) -> Result<(), WildcardError> {
    let io_err = |source| WildcardError::Io {
        path: host_to_rel(root, dir),
        source,
    };
    let mut entries: Vec<(String, bool)> = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_err)? {
        let entry = entry.map_err(io_err)?;
        // Names keep their bytes (`context::scan::name_string`).
        let name = name_string(&entry.file_name());
        let is_dir = entry.file_type().map_err(io_err)?.is_dir();
        entries.push((name, is_dir));
    }
    entries.sort();
    let last = depth + 1 == pattern.component_count();
    for (name, is_dir) in entries {
        if !pattern.matches_component(depth, &name) {
            continue;
        }
        let host = dir.join(name_bytes(&name));
        if last {
            let rel = host.strip_prefix(root).unwrap_or(&host);
            out.push(name_string(rel.as_os_str()));
        } else if is_dir {
            walk(root, &host, pattern, depth + 1, out)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[&str]) -> tempfile::TempDir {
        let root = tempfile::tempdir().expect("tempdir");
        for f in files {
            let p = root.path().join(f);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(p, f).expect("write");
        }
        root
    }

    fn resolve(root: &Path, src: &str) -> Result<Vec<String>, WildcardError> {
        resolve_wildcards(root, src, true, SourceRoot::Context)
    }

    #[test]
    fn expansion_is_lexical_takes_dirs_whole_and_allows_no_match() {
        let root = tree(&[
            "b.txt",
            "a.txt",
            "c.md",
            "dir1/x.txt",
            "dir2/y.txt",
            "sub/d/e.txt",
        ]);
        let got = resolve(root.path(), "/*.txt").expect("resolves");
        assert_eq!(got, ["a.txt", "b.txt"]);
        let got = resolve(root.path(), "/dir*").expect("resolves");
        assert_eq!(got, ["dir1", "dir2"]);
        let got = resolve(root.path(), "/*/*.txt").expect("resolves");
        assert_eq!(got, ["dir1/x.txt", "dir2/y.txt"]);
        let got = resolve(root.path(), "/sub/*/e.txt").expect("resolves");
        assert_eq!(got, ["sub/d/e.txt"]);
        let got = resolve(root.path(), "/nothing*").expect("resolves");
        assert!(got.is_empty());
    }

    #[test]
    fn missing_base_directory_fails_like_buildkit() {
        let root = tree(&["a.txt"]);
        let err = resolve(root.path(), "/folder/b/*").unwrap_err();
        assert_eq!(
            err.to_string(),
            "lstat /folder/b: no such file or directory"
        );
    }

    #[test]
    fn base_is_resolved_through_symlinks_inside_the_root() {
        let root = tree(&["real/one.txt"]);
        std::os::unix::fs::symlink("/real", root.path().join("link")).expect("symlink");
        let got = resolve(root.path(), "/link/*.txt").expect("resolves");
        assert_eq!(got, ["real/one.txt"]);
    }

    #[test]
    fn escaped_wildcard_is_matched_literally_not_as_a_backslashed_name() {
        let root = tree(&["a*b", "a\\*b", "a\\b/x", "ab/y"]);
        // A wildcard source: `\*` is a literal `*`.
        let got = resolve(root.path(), "/a\\*[b]").expect("resolves");
        assert_eq!(got, ["a*b"]);
        // A literal source with a backslash is not in the sent context...
        let err = resolve(root.path(), "/a\\*b").unwrap_err();
        assert_eq!(err.to_string(), r#""/a\\*b": not found"#);
        let err = resolve(root.path(), "/a\\b/*").unwrap_err();
        assert_eq!(err.to_string(), r"lstat /a\b: no such file or directory");
        // ...but a stage's filesystem has it.
        let got = resolve_wildcards(root.path(), "/a\\*b", true, SourceRoot::Rootfs);
        assert_eq!(got.expect("resolves"), ["a\\*b"]);
        let got = resolve_wildcards(root.path(), "/a\\b/*", true, SourceRoot::Rootfs);
        assert_eq!(got.expect("resolves"), ["a\\b/x"]);
    }
}
