use super::*;
use crate::context::scan::{scan, ExcludeFn, IncludeAll};
use crate::context::stat_cache::{NoDigestCache, StatCacheFile};
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Writes `files` (path → content; a trailing `/` makes a directory).
fn write_tree(root: &Path, files: &[(&str, &str)]) {
    for (path, content) in files {
        if let Some(dir) = path.strip_suffix('/') {
            fs::create_dir_all(root.join(dir)).unwrap();
            continue;
        }
        let full = root.join(path);
        fs::create_dir_all(full.parent().unwrap()).unwrap();
        fs::write(&full, content).unwrap();
    }
}

fn digest_of(root: &Path, path: &str) -> Digest {
    let tree = scan(root, &IncludeAll).unwrap();
    ContextDigester::new(Arc::new(tree), Arc::new(NoDigestCache))
        .digest(&Selection::path(path))
        .unwrap()
}

const TREE: &[(&str, &str)] = &[
    ("src/main.rs", "fn main() {}"),
    ("src/lib.rs", "pub mod x;"),
    ("src/notes.md", "notes"),
    ("docs/guide.md", "guide"),
    ("Cargo.toml", "[package]"),
    ("empty/", ""),
];

#[test]
fn identical_trees_have_equal_digests_whatever_their_mtimes() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    write_tree(a.path(), TREE);
    write_tree(b.path(), TREE);
    let old = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
    fs::File::options()
        .write(true)
        .open(b.path().join("src/main.rs"))
        .unwrap()
        .set_modified(old)
        .unwrap();
    for path in ["", "src", "src/main.rs", "empty"] {
        assert_eq!(
            digest_of(a.path(), path),
            digest_of(b.path(), path),
            "{path}"
        );
    }
    // The selected path is part of the digest.
    assert_ne!(digest_of(a.path(), "src"), digest_of(a.path(), "docs"));
}

#[test]
fn a_change_alters_that_file_and_its_parents_only() {
    let dir = tempfile::tempdir().unwrap();
    write_tree(dir.path(), TREE);
    let paths = ["", "src", "src/main.rs", "src/lib.rs", "docs", "Cargo.toml"];
    let before: Vec<Digest> = paths.iter().map(|p| digest_of(dir.path(), p)).collect();
    let changed = |before: &[Digest]| -> Vec<&str> {
        paths
            .iter()
            .zip(before)
            .filter(|(p, d)| digest_of(dir.path(), p) != **d)
            .map(|(p, _)| *p)
            .collect()
    };

    fs::write(dir.path().join("src/main.rs"), "fn main() { }").unwrap();
    assert_eq!(changed(&before), ["", "src", "src/main.rs"]);

    let before: Vec<Digest> = paths.iter().map(|p| digest_of(dir.path(), p)).collect();
    fs::set_permissions(
        dir.path().join("src/lib.rs"),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    assert_eq!(changed(&before), ["", "src", "src/lib.rs"]);

    let before: Vec<Digest> = paths.iter().map(|p| digest_of(dir.path(), p)).collect();
    std::os::unix::fs::chown(dir.path().join("Cargo.toml"), Some(1000), None).unwrap();
    assert_eq!(changed(&before), ["", "Cargo.toml"]);

    let before: Vec<Digest> = paths.iter().map(|p| digest_of(dir.path(), p)).collect();
    std::os::unix::fs::chown(dir.path().join("docs/guide.md"), None, Some(1000)).unwrap();
    assert_eq!(changed(&before), ["", "docs"]);
}

#[test]
fn the_stat_cache_makes_the_second_digest_stat_only() {
    let (dir, store) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    write_tree(dir.path(), TREE);
    super::settle(dir.path());
    let run = || {
        let tree = scan(dir.path(), &IncludeAll).unwrap();
        let cache = Arc::new(StatCacheFile::open(store.path(), dir.path()));
        let digester = ContextDigester::new(Arc::new(tree), cache.clone());
        let digest = digester.digest(&Selection::path("/")).unwrap();
        cache.save().unwrap();
        (digest, digester.stats())
    };
    let (first, stats) = run();
    assert_eq!((stats.files_read, stats.cache_hits), (5, 0));
    assert_eq!(stats.bytes_read, 12 + 10 + 5 + 5 + 9);
    let (second, stats) = run();
    assert_eq!(second, first);
    assert_eq!((stats.files_read, stats.cache_hits), (0, 5));

    // Same size, mtime put back: only ctime tells, and it does.
    let main = dir.path().join("src/main.rs");
    let mtime = fs::metadata(&main).unwrap().modified().unwrap();
    fs::write(&main, "fn mian() {}").unwrap();
    fs::File::options()
        .write(true)
        .open(&main)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    super::settle(dir.path());
    let (third, stats) = run();
    assert_ne!(third, first);
    assert_eq!((stats.files_read, stats.cache_hits), (1, 4));

    // A touch re-reads the file but the digest stays.
    fs::File::options()
        .write(true)
        .open(&main)
        .unwrap()
        .set_modified(SystemTime::now())
        .unwrap();
    super::settle(dir.path());
    let (fourth, stats) = run();
    assert_eq!(fourth, third);
    assert_eq!(stats.files_read, 1);
}

#[test]
fn files_changing_while_read_are_not_remembered() {
    let (dir, store) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    write_tree(dir.path(), &[("a", "1")]);
    let tree = scan(dir.path(), &IncludeAll).unwrap();
    let ctime = tree.entries()[0].ctime_ns;
    let cache = Arc::new(StatCacheFile::open(store.path(), dir.path()));
    let mut digester = ContextDigester::new(Arc::new(tree), cache.clone());
    // As if the file had been written in the tick hashing started.
    digester.trust_before_ns = ctime;
    digester.digest(&Selection::path("a")).unwrap();
    assert!(cache.is_empty());
}

#[test]
fn excluded_files_do_not_count() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    write_tree(a.path(), TREE);
    write_tree(
        a.path(),
        &[("secret.env", "TOKEN=1"), ("src/secret.env", "x")],
    );
    write_tree(b.path(), TREE);
    let ignore = ExcludeFn(|rel: &str| rel.ends_with("secret.env"));
    let digest = |root: &Path| {
        let tree = scan(root, &ignore).unwrap();
        ContextDigester::new(Arc::new(tree), Arc::new(NoDigestCache))
            .digest(&Selection::path("."))
            .unwrap()
    };
    let with_secret = digest(a.path());
    assert_eq!(with_secret, digest(b.path()));
    fs::write(a.path().join("secret.env"), "TOKEN=2").unwrap();
    assert_eq!(digest(a.path()), with_secret);
}

#[test]
fn selection_filters_work_like_copy_exclude() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    write_tree(a.path(), TREE);
    write_tree(b.path(), &TREE[..2]);
    let no_md = ExcludeFn(|rel: &str| rel.ends_with(".md"));
    let tree = scan(a.path(), &IncludeAll).unwrap();
    let digester = ContextDigester::new(Arc::new(tree), Arc::new(NoDigestCache));
    let filtered = digester
        .digest(&Selection {
            filter: Some(&no_md),
            ..Selection::path("src")
        })
        .unwrap();
    assert_eq!(filtered, digest_of(b.path(), "src"));
    assert_eq!(
        digester.stats().files_read,
        2,
        "excluded files are not read"
    );
}

#[test]
fn wildcards_match_names_and_count_them() {
    let dir = tempfile::tempdir().unwrap();
    write_tree(dir.path(), TREE);
    let wildcard = |path: &'static str| {
        let tree = scan(dir.path(), &IncludeAll).unwrap();
        ContextDigester::new(Arc::new(tree), Arc::new(NoDigestCache)).digest(&Selection {
            wildcard: true,
            ..Selection::path(path)
        })
    };
    let rs = wildcard("src/*.rs").unwrap();
    fs::write(dir.path().join("src/notes.md"), "changed").unwrap();
    assert_eq!(wildcard("src/*.rs").unwrap(), rs);
    // Same content under another name is a different copy result.
    fs::rename(dir.path().join("src/lib.rs"), dir.path().join("src/mod.rs")).unwrap();
    assert_ne!(wildcard("src/*.rs").unwrap(), rs);
    // Nothing matched is an empty selection, not an error.
    assert_eq!(wildcard("*.none").unwrap(), wildcard("nothing/*").unwrap());
    assert!(matches!(
        wildcard("src/[").unwrap_err(),
        ContentDigestError::Pattern(_)
    ));
}

#[test]
fn selected_symlinks_are_followed_inside_the_context_only() {
    let dir = tempfile::tempdir().unwrap();
    write_tree(dir.path(), TREE);
    symlink("src", dir.path().join("code")).unwrap();
    symlink("/src/main.rs", dir.path().join("abs")).unwrap();
    symlink("../../../Cargo.toml", dir.path().join("src/up")).unwrap();
    symlink("loop2", dir.path().join("loop1")).unwrap();
    symlink("loop1", dir.path().join("loop2")).unwrap();
    let tree = scan(dir.path(), &IncludeAll).unwrap();
    let digester = ContextDigester::new(Arc::new(tree), Arc::new(NoDigestCache));
    let digest = |path, follow_links| {
        digester.digest(&Selection {
            follow_links,
            ..Selection::path(path)
        })
    };
    // A followed link digests as its target, under the link's name.
    assert_ne!(
        digest("code", true).unwrap(),
        digest("code", false).unwrap()
    );
    assert_eq!(
        digester.resolve("code/main.rs", false).unwrap(),
        digester.resolve("src/main.rs", false).unwrap()
    );
    assert_eq!(
        digester.resolve("abs", true).unwrap(),
        digester.resolve("src/main.rs", true).unwrap()
    );
    assert_eq!(
        digester.resolve("src/up", true).unwrap(),
        digester.resolve("Cargo.toml", true).unwrap()
    );
    assert!(matches!(
        digest("loop1", true).unwrap_err(),
        ContentDigestError::SymlinkLoop { .. }
    ));
    let err = digest("src/missing.rs", true).unwrap_err();
    assert_eq!(err.to_string(), "\"/src/missing.rs\": not found");
}

#[test]
fn subtree_ends_bound_each_directory() {
    let dir = tempfile::tempdir().unwrap();
    write_tree(
        dir.path(),
        &[("a/b/c", ""), ("a/d", ""), ("a-x", ""), ("b/", "")],
    );
    let tree = scan(dir.path(), &IncludeAll).unwrap();
    let paths: Vec<&str> = tree.entries().iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["a", "a/b", "a/b/c", "a/d", "a-x", "b"]);
    assert_eq!(subtree_ends(tree.entries()), [4, 3, 3, 4, 5, 6]);
}

/// Regression: `..` after a symlink was resolved physically here (through
/// the link's target) while the copy cleans the path lexically first, as
/// BuildKit's frontend does: `COPY link/../Cargo.toml` read `Cargo.toml`
/// but was keyed on `src/Cargo.toml`'s absence or content.
#[test]
fn dot_dot_after_a_symlink_is_cleaned_lexically_like_the_copy() {
    let dir = tempfile::tempdir().unwrap();
    write_tree(dir.path(), TREE);
    write_tree(dir.path(), &[("src/deep/Cargo.toml", "[other]")]);
    symlink("src/deep", dir.path().join("link")).unwrap();
    let tree = scan(dir.path(), &IncludeAll).unwrap();
    let digester = ContextDigester::new(Arc::new(tree), Arc::new(NoDigestCache));
    for wildcard in [false, true] {
        let selection = Selection {
            wildcard,
            ..Selection::path("link/../Cargo.toml")
        };
        let paths = digester.selected_paths(&selection).unwrap();
        assert_eq!(paths.into_iter().collect::<Vec<_>>(), ["Cargo.toml"]);
    }
}
