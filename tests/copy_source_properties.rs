//! Property test: the cache key of a `COPY` from the context covers exactly
//! the files the copy reads, for any source pattern and context tree. A
//! file the copy reads but the key does not cover is a stale cache hit
//! waiting to happen (a `COPY a\*b` once keyed on `a*b` and copied
//! `a\*b`); one the key covers but the copy does not read is a needless
//! rebuild.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use kiln::context::digest::{ContextDigester, Selection};
use kiln::context::scan::{scan, IncludeAll};
use kiln::context::stat_cache::NoDigestCache;
use kiln::context::wildcard::{resolve_wildcards, SourceRoot};
use proptest::prelude::*;

/// Characters of file names: plain ones and every one wildcard syntax uses.
const NAME_CHARS: &[char] = &['a', 'b', '*', '?', '[', ']', '\\', '-', '^'];

/// Pattern pieces: literals, wildcards, classes, escapes (a lone `\` at
/// the end or an unclosed `[` make malformed patterns, also worth trying).
const PATTERN_PIECES: &[&str] = &[
    "a", "b", "*", "?", "[ab]", "[^a]", "[a-b]", "\\*", "\\?", "\\[", "\\\\", "\\a", "]", "-",
    "^", "[", "\\",
];

/// Whole components a source may also hold (cleaned lexically by both).
const SPECIAL_COMPONENTS: &[&str] = &["..", "."];

fn name() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(NAME_CHARS), 1..4)
        .prop_map(|cs| cs.into_iter().collect())
}

/// Up to 8 paths of up to 3 components; a path that is also another's
/// parent becomes a directory.
fn tree() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(prop::collection::vec(name(), 1..4), 1..8)
        .prop_map(|paths| paths.into_iter().map(|p| p.join("/")).collect())
}

fn component() -> impl Strategy<Value = String> {
    let pieces =
        prop::collection::vec(prop::sample::select(PATTERN_PIECES), 1..4).prop_map(|ps| ps.concat());
    prop_oneof![
        8 => pieces,
        1 => prop::sample::select(SPECIAL_COMPONENTS).prop_map(str::to_string),
    ]
}

/// A source: generated from pieces, or a path of the tree written as is
/// (a literal name holding wildcard characters), or with its last
/// component swapped for a generated one.
fn source(tree: Vec<String>) -> impl Strategy<Value = String> {
    let generated = prop::collection::vec(component(), 1..4).prop_map(|cs| cs.join("/"));
    let picked = prop::sample::select(tree.clone());
    let mixed = (prop::sample::select(tree), component()).prop_map(|(p, c)| match p.rsplit_once('/') {
        Some((dir, _)) => format!("{dir}/{c}"),
        None => c,
    });
    prop_oneof![generated, picked, mixed]
}

fn case() -> impl Strategy<Value = (Vec<String>, String)> {
    tree().prop_flat_map(|t| (Just(t.clone()), source(t)))
}

/// Writes the tree; a path under another file is skipped.
fn write(root: &Path, paths: &[String]) {
    let mut dirs = BTreeSet::new();
    for p in paths {
        let mut parts: Vec<&str> = p.split('/').collect();
        parts.pop();
        for i in 1..=parts.len() {
            dirs.insert(parts[..i].join("/"));
        }
    }
    for d in &dirs {
        let _ = std::fs::create_dir_all(root.join(d));
    }
    for p in paths {
        if !dirs.contains(p) {
            let _ = std::fs::write(root.join(p), p.as_bytes());
        }
    }
}

/// Every entry at or below `rel` (context-relative, empty for the root,
/// which is not an entry itself), as the copy walks it.
fn entries_under(root: &Path, rel: &str, out: &mut BTreeSet<String>) {
    if !rel.is_empty() {
        out.insert(rel.to_string());
    }
    let host = root.join(rel);
    if std::fs::symlink_metadata(&host).is_ok_and(|m| m.is_dir()) {
        for e in std::fs::read_dir(&host).unwrap() {
            let name = e.unwrap().file_name().into_string().unwrap();
            let child = if rel.is_empty() { name } else { format!("{rel}/{name}") };
            entries_under(root, &child, out);
        }
    }
}

/// What the copy reads for `source`, or `None` when it refuses it (then
/// the build fails and no key is stored).
fn copy_reads(root: &Path, source: &str) -> Option<BTreeSet<String>> {
    let matches = resolve_wildcards(root, &format!("/{source}"), true, SourceRoot::Context).ok()?;
    let mut out = BTreeSet::new();
    for rel in matches {
        // A literal source must exist (the copy's own check).
        std::fs::symlink_metadata(root.join(&rel)).ok()?;
        entries_under(root, &rel, &mut out);
    }
    Some(out)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn the_key_covers_exactly_what_copy_reads((paths, source) in case()) {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &paths);
        let tree = scan(dir.path(), &IncludeAll).unwrap();
        let digester = ContextDigester::new(Arc::new(tree), Arc::new(NoDigestCache));
        let selection = Selection {
            path: &source,
            wildcard: true,
            follow_links: true,
            filter: None,
        };
        if let Some(read) = copy_reads(dir.path(), &source) {
            let keyed = digester.selected_paths(&selection);
            prop_assert!(keyed.is_ok(), "key failed for {source:?} where the copy works: {keyed:?}");
            prop_assert_eq!(keyed.unwrap(), read, "source {:?} in {:?}", source, paths);
        }
    }
}
