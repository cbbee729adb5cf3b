//! What a COPY reads from the build context and what its cache key
//! covers: always the same files, with BuildKit's rules for escaped
//! wildcard characters.

use crate::support;

use std::path::Path;

use support::kiln::{step_states, Kiln};

/// Rewrites `path` with `content` keeping its mtime, so only the bytes
/// tell the change (what a stat-based shortcut would miss).
fn rewrite_same_mtime(path: &Path, content: &str) {
    let mtime = std::fs::metadata(path).unwrap().modified().unwrap();
    std::fs::write(path, content).unwrap();
    let f = std::fs::File::options().write(true).open(path).unwrap();
    f.set_modified(mtime).unwrap();
}

/// Whether the progress shows the step named `name` as CACHED.
fn cached(progress: &str, name: &str) -> bool {
    step_states(progress).0.iter().any(|s| s.contains(name))
}

/// Regression: the key's selection took `a\*b` as a pattern (matching
/// `a*b`) while the copy took it literally (reading `a\*b`), so changing
/// `a\*b` left the step CACHED with the old content. BuildKit refuses the
/// literal source: its context transfer matches sources as patterns, so
/// `a\*b` is never sent (moby/buildkit `cache/contenthash/checksum.go`
/// `checksum`: `"/a\\*b": not found`).
#[test]
fn copy_of_escaped_wildcard_name_stayed_cached_after_the_file_changed() {
    let k = Kiln::with_busybox_image();
    let ctx = k.context(&[("a*b", "one"), ("a\\*b", "two")]);
    std::fs::write(ctx.join("Dockerfile"), "FROM busybox\nCOPY a\\\\*b /x/\n").unwrap();
    for edit in ["two", "TWO"] {
        rewrite_same_mtime(&ctx.join("a\\*b"), edit);
        let ran = k.build(&ctx, &["-t", "escaped:1"]);
        let err = ran.fails();
        assert!(err.contains(r#""/a\\*b": not found"#), "{err}");
        assert!(!cached(&ran.stderr, "COPY"), "{}", ran.stderr);
    }

    // As a pattern, `\*` is a literal `*`: only `a*b` is read and keyed.
    let df = "FROM busybox\nCOPY a\\\\*[b] /x/\n";
    k.build_ok(&ctx, df, "escaped:2", &[]);
    assert_eq!(k.sh("escaped:2", "ls /x; cat /x/*"), "a*b\none");
    rewrite_same_mtime(&ctx.join("a*b"), "uno");
    let progress = k.build_ok(&ctx, df, "escaped:2", &[]);
    assert!(!cached(&progress, "COPY"), "{progress}");
    assert_eq!(k.sh("escaped:2", "cat /x/*"), "uno");
    rewrite_same_mtime(&ctx.join("a\\*b"), "dos");
    let progress = k.build_ok(&ctx, df, "escaped:2", &[]);
    assert!(cached(&progress, "COPY"), "{progress}");
}

/// A literal directory with a backslash before a wildcard is not sent
/// either: fsutil's `ResolveWildcards` finds no base (`lstat`), while the
/// same tree in a stage is read as written.
#[test]
fn backslashed_directory_before_a_wildcard_exists_only_in_stages() {
    let k = Kiln::with_busybox_image();
    let ctx = k.context(&[("d\\x/f.txt", "in-d-x")]);
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nCOPY d\\\\x/*.txt /x/\n",
    )
    .unwrap();
    let err = k.build(&ctx, &["-t", "bsdir:1"]).fails().to_string();
    assert!(
        err.contains(r"lstat /d\x: no such file or directory"),
        "{err}"
    );

    let df = "FROM busybox AS src\nRUN mkdir 'd\\x' && echo staged > 'd\\x/f.txt'\n\
              FROM busybox\nCOPY --from=src d\\\\x/*.txt /x/\n";
    k.build_ok(&ctx, df, "bsdir:2", &[]);
    assert_eq!(k.sh("bsdir:2", "cat /x/f.txt"), "staged\n");
}
