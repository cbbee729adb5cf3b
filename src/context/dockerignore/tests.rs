//! Unit tests for `.dockerignore` parsing and matching.

use super::glob::clean;
use super::*;

/// Whether `path` is excluded by `patterns` (one per item).
fn check(patterns: &[&str], path: &str, expected: bool) {
    let ignore = DockerIgnore::new(patterns).unwrap_or_else(|e| panic!("{patterns:?}: {e}"));
    assert_eq!(
        ignore.matches(path),
        expected,
        "patterns {patterns:?} on {path:?}"
    );
}

#[test]
fn literal_prefix_suffix_and_glob_kinds() {
    check(&["abc"], "abc", true);
    check(&["abc"], "abcd", false);
    check(&["abc/**"], "abc/d/e", true);
    check(&["abc/**"], "abc", false);
    check(&["a**"], "abc/def", true);
    // `**` at the start followed by literals is a plain suffix test
    check(&["**file"], "dir/myfile", true);
    check(&["**/file"], "dir/myfile", false);
    check(&["**/file"], "file", true);
    check(&["*.go"], "a.go", true);
    check(&["*.go"], "dir/a.go", false);
    check(&["**/*.go"], "dir/sub/a.go", true);
    check(&["dir/**/*.go"], "dir/a.go", true);
    check(&["dir/**/*.go"], "dir/x/y/a.go", true);
    check(&["dir/**/*.go"], "other/a.go", false);
}

#[test]
fn parents_count_and_last_match_wins() {
    check(&["docs"], "docs/a/b.md", true);
    check(&["docs", "!docs/README.md"], "docs/README.md", false);
    check(&["docs", "!docs/README.md"], "docs/other.md", true);
    check(&["*", "!keep", "keep/drop"], "keep/drop/x", true);
    check(&["*", "!keep", "keep/drop"], "keep/other", false);
    check(&["!a", "a"], "a", true);
    check(&["a", "!a"], "a/b", false);
}

#[test]
fn classes_escapes_and_anchors() {
    check(&["file[0-9].txt"], "file7.txt", true);
    check(&["file[!0-9].txt"], "file!.txt", true);
    check(&["file[^0-9].txt"], "filex.txt", true);
    check(&["file[^0-9].txt"], "file1.txt", false);
    check(&["a\\?b*"], "a?bc", true);
    check(&["a\\?b*"], "axbc", false);
    check(&["[\\^]x*"], "^xy", true);
    // Go's regex translation leaves `^` unescaped: an anchor, not a character
    check(&["^abc*"], "abcd", true);
    check(&["a^b*"], "a^bc", false);
    // ... but a pattern without wildcards compares as a string
    check(&["a^b"], "a^b", true);
    // `.*` of `**` stops at a newline, `*` does not
    check(&["a*"], "a\nb", true);
    check(&["x/**/y*"], "x/a\nb/y", false);
}

#[test]
fn paths_and_patterns_are_cleaned() {
    check(&["./a/../b/"], "b", true);
    check(&["b"], "./b/", true);
    check(&["*"], ".", false);
    check(&["*"], "", false);
}

#[test]
fn malformed_patterns_are_rejected() {
    for (pattern, reason) in [
        ("!", PatternError::EmptyException),
        ("\\", PatternError::TrailingEscape),
        ("[", PatternError::UnterminatedClass),
        ("a[^", PatternError::UnterminatedClass),
        ("[]a]", PatternError::ClassCharExpected(']')),
        ("[-x]", PatternError::ClassCharExpected('-')),
        ("[x-]", PatternError::ClassCharExpected(']')),
        ("[a-b-c]", PatternError::ClassCharExpected('-')),
    ] {
        match DockerIgnore::new([pattern]) {
            Err(IgnoreError::InvalidPattern {
                reason: got,
                pattern: p,
                ..
            }) => {
                assert_eq!(got, reason, "reason for {pattern:?}");
                assert_eq!(p, pattern);
            }
            other => panic!("{pattern:?}: expected an invalid-pattern error, got {other:?}"),
        }
    }
}

/// moby/patternmatcher refuses what Go's `filepath.Match` refuses, so
/// every malformed pattern of Go's own table is refused here too.
#[test]
fn patterns_go_refuses_are_refused() {
    for &(pattern, _, expected) in crate::context::wildcard::go_match_cases::CASES {
        if expected.is_err() {
            assert!(DockerIgnore::new([pattern]).is_err(), "{pattern:?}");
        }
    }
}

#[test]
fn parse_reads_lines_like_docker() {
    let text = "\u{feff}# comment\n  \ntest1\n/test2\n/a/file/here\r\n #not-a-comment\n! /inverted/abs/path\nlastfile";
    let ignore = DockerIgnore::parse(text, ".dockerignore").unwrap();
    let got: Vec<(String, bool, Option<usize>)> = ignore
        .patterns()
        .iter()
        .map(|p| (p.as_str().to_string(), p.is_exception(), p.line()))
        .collect();
    let want = [
        ("test1", false, 3),
        ("test2", false, 4),
        ("a/file/here", false, 5),
        ("#not-a-comment", false, 6),
        ("inverted/abs/path", true, 7),
        ("lastfile", false, 8),
    ];
    let want: Vec<_> = want
        .iter()
        .map(|&(p, e, l)| (p.to_string(), e, Some(l)))
        .collect();
    assert_eq!(got, want);
    assert!(ignore.has_exceptions());
}

#[test]
fn parse_errors_name_file_line_and_pattern() {
    let err = DockerIgnore::parse("ok\n# c\n  bad[  \n", "app/.dockerignore").unwrap_err();
    assert_eq!(
        err.to_string(),
        "app/.dockerignore:3: invalid pattern \"bad[\": unterminated character class: expected ']'"
    );
    let err = DockerIgnore::parse("a\n! \n", ".dockerignore").unwrap_err();
    assert_eq!(
        err.to_string(),
        ".dockerignore:2: invalid pattern \"!\": expected a pattern after '!'"
    );
    let err = DockerIgnore::new(["[x-]"]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid pattern \"[x-]\": expected a character in the class, found ']' (escape it as '\\]')"
    );
}

#[test]
fn walking_with_parent_results_agrees_with_matches() {
    let patterns = [
        "build",
        "!build/keep",
        "**/*.tmp",
        "!**/important.tmp",
        "docs/*",
        "!docs/x/**",
    ];
    let ignore = DockerIgnore::new(patterns).unwrap();
    let tree = [
        "build",
        "build/keep",
        "build/keep/a.tmp",
        "build/keep/important.tmp",
        "build/out",
        "build/out/important.tmp",
        "docs",
        "docs/x",
        "docs/x/y",
        "docs/z",
        "docs/z/w",
        "src",
        "src/a.tmp",
        "src/b.rs",
    ];
    let mut parents: std::collections::HashMap<&str, ParentMatches> = Default::default();
    for path in tree {
        let parent = match path.rsplit_once('/') {
            Some((dir, _)) => parents[dir].clone(),
            None => ParentMatches::default(),
        };
        let (excluded, mine) = ignore.matches_in_dir(path, &parent);
        assert_eq!(
            excluded,
            ignore.matches(path),
            "walk and matches disagree on {path:?}"
        );
        parents.insert(path, mine);
    }
    assert!(ignore.matches("build/out"));
    assert!(!ignore.matches("build/keep"));
    assert!(ignore.matches("build/keep/a.tmp"));
    assert!(!ignore.matches("build/out/important.tmp"));
    assert!(ignore.matches("docs/z/w"));
    assert!(!ignore.matches("docs/x/y"));
}

#[test]
fn skipping_directories() {
    // no exceptions: any excluded dir can be skipped
    let ignore = DockerIgnore::new(["node_modules", "*.log"]).unwrap();
    assert!(ignore.can_skip_dir("node_modules"));
    assert!(!ignore.can_skip_dir("src"));
    // a literal exception below keeps its ancestors walkable, not others
    let ignore = DockerIgnore::new(["vendor", "!vendor/keep/me"]).unwrap();
    assert!(!ignore.can_skip_dir("vendor"));
    assert!(!ignore.can_skip_dir("vendor/keep"));
    assert!(ignore.can_skip_dir("vendor/other"));
    // wildcard exceptions are followed precisely, not given up on
    let ignore = DockerIgnore::new(["out", "!out/*/report.txt"]).unwrap();
    assert!(!ignore.can_skip_dir("out"));
    assert!(!ignore.can_skip_dir("out/a"));
    assert!(ignore.can_skip_dir("out/a/b"));
    // `**` exceptions and suffix exceptions can match anywhere
    let ignore = DockerIgnore::new(["out", "!**/keep"]).unwrap();
    assert!(!ignore.can_skip_dir("out/a/b"));
    let ignore = DockerIgnore::new(["out", "!**keep"]).unwrap();
    assert!(!ignore.can_skip_dir("out/a"));
    // prefix exceptions
    let ignore = DockerIgnore::new(["*", "!out/sub/**"]).unwrap();
    assert!(!ignore.can_skip_dir("out"));
    assert!(ignore.can_skip_dir("other"));
    // a re-included directory is not excluded at all
    let ignore = DockerIgnore::new(["a", "!a/b"]).unwrap();
    assert!(!ignore.can_skip_dir("a/b"));
    assert!(ignore.can_skip_dir("a/c"));
}

#[test]
fn skip_decision_is_never_wrong_on_a_sample_tree() {
    // every path below a skippable dir must be excluded
    let pattern_sets: &[&[&str]] = &[
        &["a", "!a/b/c"],
        &["*", "!*/keep*"],
        &["**/tmp", "!x/tmp/y"],
        &["a/**", "!a/[bc]/d"],
        &["a", "!**/d"],
    ];
    let dirs = ["a", "a/b", "a/c", "a/x", "x", "x/tmp", "a/b/tmp"];
    let leaves = ["c", "d", "keep1", "y", "z"];
    for patterns in pattern_sets {
        let ignore = DockerIgnore::new(*patterns).unwrap();
        for dir in dirs {
            if !ignore.can_skip_dir(dir) {
                continue;
            }
            for leaf in leaves {
                for path in [format!("{dir}/{leaf}"), format!("{dir}/sub/{leaf}")] {
                    assert!(
                        ignore.matches(&path),
                        "{patterns:?}: skipped {dir:?} but {path:?} is included"
                    );
                }
            }
        }
    }
}

#[test]
fn ignore_file_lookup_prefers_dockerfile_specific_file() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path();
    let dockerfile = ctx.join("build/app.Dockerfile");
    std::fs::create_dir_all(ctx.join("build")).unwrap();
    assert_eq!(ignore_file_for(ctx, &dockerfile).unwrap(), None);
    assert!(DockerIgnore::load(ctx, &dockerfile).unwrap().is_empty());

    std::fs::write(ctx.join(".dockerignore"), "from-context\n").unwrap();
    assert_eq!(
        ignore_file_for(ctx, &dockerfile).unwrap(),
        Some(ctx.join(".dockerignore"))
    );

    std::fs::write(
        ctx.join("build/app.Dockerfile.dockerignore"),
        "from-dockerfile\n",
    )
    .unwrap();
    assert_eq!(
        ignore_file_for(ctx, &dockerfile).unwrap(),
        Some(ctx.join("build/app.Dockerfile.dockerignore"))
    );
    let ignore = DockerIgnore::load(ctx, &dockerfile).unwrap();
    assert!(ignore.matches("from-dockerfile"));
    assert!(!ignore.matches("from-context"));

    std::fs::write(ctx.join("build/app.Dockerfile.dockerignore"), "ok\nbad[\n").unwrap();
    let err = DockerIgnore::load(ctx, &dockerfile)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("app.Dockerfile.dockerignore:2: invalid pattern \"bad[\""),
        "{err}"
    );
}

#[test]
fn clean_matches_go_filepath_clean() {
    for (input, expected) in [
        ("", "."),
        (".", "."),
        ("a/./b/", "a/b"),
        ("a//b", "a/b"),
        ("a/../..", ".."),
        ("../a/../../b", "../../b"),
        ("/../a", "/a"),
        ("/", "/"),
        ("//a/", "/a"),
        ("!../x", "!../x"),
        ("!./x", "!./x"),
    ] {
        assert_eq!(clean(input), expected, "clean({input:?})");
    }
}
