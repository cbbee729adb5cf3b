//! COPY/ADD source wildcards with Go's `filepath.Match` semantics, expanded
//! the way BuildKit's fsutil `ResolveWildcards` does.
//!
//! - `*` matches any run of characters other than `/`, `?` one such
//!   character, `[...]` / `[^...]` a character class with `lo-hi` ranges,
//!   `\x` the character `x`. There is no `**`.
//! - The source path is split at the first component holding a wildcard
//!   (`/a/b*/c` → `/a` and `b*/c`). The first part is resolved inside the
//!   source root (symlinks followed), a missing one failing like BuildKit
//!   (`lstat /a: no such file or directory`); below it, entries are matched
//!   in lexical order, a matching directory is taken whole and not
//!   descended, and symlinks are never descended.
//! - No match is not an error here: BuildKit's Dockerfile frontend sets
//!   `AllowEmptyWildcard`, so `COPY optional*.txt /dst/` copies nothing when
//!   nothing matches (moby/moby#26332 relies on it).
//!
//! The matching itself is [`crate::context::wildcard`]'s, shared with the
//! cache-key digests so both agree on what a source names.
//!
//! One divergence: Go's `filepath.Match` reports a malformed pattern
//! (`[abc`) as an error that fsutil ignores, silently matching nothing;
//! kiln rejects it, naming the pattern.

use crate::context::scan::{name_bytes, name_string};
use std::io;
use std::path::{Path, PathBuf};

use thiserror::Error;

pub use crate::context::wildcard::{Pattern, PatternError};
use crate::runtime::path_in_root::resolve_in_root;

/// Why a wildcard source could not be expanded.
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

/// Whether a path component holds a wildcard (an unescaped `*`, `?` or `[`),
/// as fsutil's `containsWildcards`.
pub fn contains_wildcards(name: &str) -> bool {
    let bytes = name.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 1,
            b'*' | b'?' | b'[' => return true,
            _ => {}
        }
        i += 1;
    }
    false
}

/// Splits a clean, absolute source path before its first component with a
/// wildcard: the literal directory and the pattern below it (empty when the
/// path has no wildcard).
pub fn split_wildcards(path: &str) -> (String, String) {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let first = parts.iter().position(|p| contains_wildcards(p));
    match first {
        None => (format!("/{}", parts.join("/")), String::new()),
        Some(i) => (format!("/{}", parts[..i].join("/")), parts[i..].join("/")),
    }
}

/// Expands the wildcard source `src` (clean, absolute, relative to
/// `root`): the paths it matches, relative to `root` without a leading `/`,
/// in lexical order. A path without wildcards comes back as is.
pub fn resolve_wildcards(
    root: &Path,
    src: &str,
    follow: bool,
) -> Result<Vec<String>, WildcardError> {
    let (dir, pattern_text) = split_wildcards(src);
    if pattern_text.is_empty() {
        return Ok(vec![dir.trim_start_matches('/').to_string()]);
    }
    let pattern = Pattern::new(&pattern_text).map_err(|reason| WildcardError::BadPattern {
        pattern: src.to_string(),
        reason,
    })?;
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

    /// One case: pattern, name, whether Go's filepath.Match matches.
    fn check(pattern: &str, name: &str, expected: bool) {
        let compiled = Pattern::new(pattern).unwrap_or_else(|e| panic!("{pattern}: {e}"));
        assert_eq!(compiled.matches(name), expected, "{pattern} vs {name}");
    }

    #[test]
    fn go_filepath_match_cases() {
        // From Go's path/filepath match_test.go.
        check("abc", "abc", true);
        check("*", "abc", true);
        check("*c", "abc", true);
        check("a*", "a", true);
        check("a*", "abc", true);
        check("a*", "ab/c", false);
        check("a*/b", "abc/b", true);
        check("a*/b", "a/c/b", false);
        check("a*b*c*d*e*/f", "axbxcxdxe/f", true);
        check("a*b*c*d*e*/f", "axbxcxdxexxx/f", true);
        check("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", false);
        check("a*b*c*d*e*/f", "axbxcxdxexxx/fff", false);
        check("a*b?c*x", "abxbbxdbxebxczzx", true);
        check("a*b?c*x", "abxbbxdbxebxczzy", false);
        check("ab[c]", "abc", true);
        check("ab[b-d]", "abc", true);
        check("ab[e-g]", "abc", false);
        check("ab[^c]", "abc", false);
        check("ab[^b-d]", "abc", false);
        check("ab[^e-g]", "abc", true);
        check("a\\*b", "a*b", true);
        check("a\\*b", "ab", false);
        check("a?b", "a☺b", true);
        check("a[^a]b", "a☺b", true);
        check("a???b", "a☺b", false);
        check("[a-ζ]*", "α", true);
        check("*[a-ζ]", "A", false);
        check("a?b", "a/b", false);
        check("a*b", "a/b", false);
        check("[\\]a]", "]", true);
        check("[\\-]", "-", true);
        check("[x\\-]", "x", true);
        check("[x\\-]", "-", true);
        check("[x\\-]", "z", false);
        check("[\\-x]", "-", true);
        check("*x", "xxx", true);
    }

    #[test]
    fn malformed_patterns_are_errors() {
        for bad in [
            "[", "[^", "[^bc", "a[", "[]a]", "[-]", "[x-]", "[a-b-c]", "a\\", "[\\",
        ] {
            assert!(Pattern::new(bad).is_err(), "{bad} should be malformed");
        }
    }

    #[test]
    fn contains_and_split() {
        assert!(contains_wildcards("a*"));
        assert!(contains_wildcards("[ab]"));
        assert!(!contains_wildcards("a\\*"));
        assert!(!contains_wildcards("plain"));
        assert_eq!(split_wildcards("/a/b*/c"), ("/a".into(), "b*/c".into()));
        assert_eq!(split_wildcards("/*.txt"), ("/".into(), "*.txt".into()));
        assert_eq!(split_wildcards("/a/b"), ("/a/b".into(), String::new()));
    }

    fn tree(files: &[&str], dirs: &[&str]) -> tempfile::TempDir {
        let root = tempfile::tempdir().expect("tempdir");
        for d in dirs {
            std::fs::create_dir_all(root.path().join(d)).expect("mkdir");
        }
        for f in files {
            let p = root.path().join(f);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(p, f).expect("write");
        }
        root
    }

    #[test]
    fn expansion_is_lexical_takes_dirs_whole_and_allows_no_match() {
        let root = tree(
            &[
                "b.txt",
                "a.txt",
                "c.md",
                "dir1/x.txt",
                "dir2/y.txt",
                "sub/d/e.txt",
            ],
            &[],
        );
        let got = resolve_wildcards(root.path(), "/*.txt", true).expect("resolves");
        assert_eq!(got, ["a.txt", "b.txt"]);
        let got = resolve_wildcards(root.path(), "/dir*", true).expect("resolves");
        assert_eq!(got, ["dir1", "dir2"]);
        let got = resolve_wildcards(root.path(), "/*/*.txt", true).expect("resolves");
        assert_eq!(got, ["dir1/x.txt", "dir2/y.txt"]);
        let got = resolve_wildcards(root.path(), "/sub/*/e.txt", true).expect("resolves");
        assert_eq!(got, ["sub/d/e.txt"]);
        let got = resolve_wildcards(root.path(), "/nothing*", true).expect("resolves");
        assert!(got.is_empty());
    }

    #[test]
    fn missing_base_directory_fails_like_buildkit() {
        let root = tree(&["a.txt"], &[]);
        let err = resolve_wildcards(root.path(), "/folder/b/*", true).unwrap_err();
        assert_eq!(
            err.to_string(),
            "lstat /folder/b: no such file or directory"
        );
    }

    #[test]
    fn base_is_resolved_through_symlinks_inside_the_root() {
        let root = tree(&["real/one.txt"], &[]);
        std::os::unix::fs::symlink("/real", root.path().join("link")).expect("symlink");
        let got = resolve_wildcards(root.path(), "/link/*.txt", true).expect("resolves");
        assert_eq!(got, ["real/one.txt"]);
    }
}
