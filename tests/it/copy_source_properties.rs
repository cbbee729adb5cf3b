//! Property test: the cache key of a `COPY` from the context covers exactly
//! the files the copy reads, for any source pattern (wildcards, escapes,
//! `.`/`..`) and context tree (names full of wildcard characters, symlinks
//! to files, directories and the root). A
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
use kiln::fs::path_in_root::resolve_in_root;
use proptest::prelude::*;

/// Characters of file names: plain ones and every one wildcard syntax uses.
const NAME_CHARS: &[char] = &['a', 'b', '*', '?', '[', ']', '\\', '-', '^'];

/// Pattern pieces: literals, wildcards, classes, escapes (a lone `\` at
/// the end or an unclosed `[` make malformed patterns, also worth trying).
const PATTERN_PIECES: &[&str] = &[
    "a", "b", "*", "?", "[ab]", "[^a]", "[a-b]", "\\*", "\\?", "\\[", "\\\\", "\\a", "]", "-", "^",
    "[", "\\",
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
    let pieces = prop::collection::vec(prop::sample::select(PATTERN_PIECES), 1..4)
        .prop_map(|ps| ps.concat());
    prop_oneof![
        8 => pieces,
        1 => prop::sample::select(SPECIAL_COMPONENTS).prop_map(str::to_string),
    ]
}

/// A source: generated from pieces, or a path of the tree written as is
/// (a literal name holding wildcard characters), or with its last
/// component swapped for a generated one, or one more generated
/// component below it (through a directory or a symlink to one).
fn source(tree: Vec<String>) -> impl Strategy<Value = String> {
    let generated = prop::collection::vec(component(), 1..4).prop_map(|cs| cs.join("/"));
    let picked = prop::sample::select(tree.clone());
    let mixed = (prop::sample::select(tree.clone()), component()).prop_map(|(p, c)| {
        match p.rsplit_once('/') {
            Some((dir, _)) => format!("{dir}/{c}"),
            None => c,
        }
    });
    let below_component = prop_oneof![Just("*".to_string()), component()];
    let below = (prop::sample::select(tree), below_component).prop_map(|(p, c)| format!("{p}/{c}"));
    prop_oneof![1 => generated, 1 => picked, 1 => mixed, 2 => below]
}

/// Up to 3 symlinks, each named like a tree path with its last component
/// replaced, pointing (absolutely, so inside the context) at a tree path,
/// a directory of the tree, or the root.
fn links(tree: Vec<String>) -> impl Strategy<Value = Vec<(String, String)>> {
    let mut targets: Vec<String> = vec!["/".to_string()];
    for p in &tree {
        let parts: Vec<&str> = p.split('/').collect();
        for i in 1..=parts.len() {
            targets.push(format!("/{}", parts[..i].join("/")));
        }
    }
    let one = (
        prop::sample::select(tree),
        name(),
        prop::sample::select(targets),
    )
        .prop_map(|(at, n, target)| {
            let name = match at.rsplit_once('/') {
                Some((dir, _)) => format!("{dir}/{n}"),
                None => n,
            };
            (name, target)
        });
    prop::collection::vec(one, 0..4)
}

type Case = (Vec<String>, Vec<(String, String)>, String);

fn case() -> impl Strategy<Value = Case> {
    tree()
        .prop_flat_map(|t| (Just(t.clone()), links(t)))
        .prop_flat_map(|(t, l)| {
            let mut names = t.clone();
            names.extend(l.iter().map(|(name, _)| name.clone()));
            (Just(t), Just(l), source(names))
        })
}

/// Writes the tree, then the links; a path under a file, or a link whose
/// name is taken, is skipped.
fn write(root: &Path, paths: &[String], links: &[(String, String)]) {
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
    for (name, target) in links {
        let _ = std::os::unix::fs::symlink(target, root.join(name));
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
            let child = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
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
        // The copy follows a source that is a symlink (inside the root) and
        // needs it to exist.
        let host = resolve_in_root(root, Path::new(&rel)).ok()?;
        std::fs::symlink_metadata(&host).ok()?;
        let followed = host
            .strip_prefix(root)
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        entries_under(root, &followed, &mut out);
    }
    Some(out)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn the_key_covers_exactly_what_copy_reads((paths, links, source) in case()) {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &paths, &links);
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
            prop_assert_eq!(keyed.unwrap(), read, "source {:?} in {:?} {:?}", source, paths, links);
        }
    }
}
