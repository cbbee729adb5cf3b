//! COPY semantics, each checked by reading the layer directory.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use super::*;
use crate::exec::attrs::{set_times, Time};
use crate::exec::fixture::{assert_listing, list, spec, Fixture};

fn mtime(path: &Path) -> i64 {
    std::fs::symlink_metadata(path).expect("lstat").mtime()
}

fn set_mtime(path: &Path, sec: i64) {
    let t = Time { sec, nsec: 0 };
    set_times(path, t, t).expect("utimes");
}

// ---- destination rules -------------------------------------------------

#[test]
fn trailing_slash_makes_a_directory_with_root_owned_0755_parents() {
    let f = Fixture::new();
    f.file("a.txt", "a");
    let got = f.listing(&spec(&["a.txt"], "/x/y/"));
    assert_listing(
        &got,
        &[
            "d /x 755 0:0",
            "d /x/y 755 0:0",
            "f /x/y/a.txt 644 0:0 \"a\"",
        ],
    );
}

#[test]
fn without_trailing_slash_the_file_is_written_at_the_path() {
    let f = Fixture::new();
    f.file("a.txt", "a");
    let got = f.listing(&spec(&["a.txt"], "/opt/renamed"));
    assert_listing(&got, &["d /opt 755 0:0", "f /opt/renamed 644 0:0 \"a\""]);
}

#[test]
fn an_existing_directory_receives_the_file_and_is_copied_up_as_is() {
    let f = Fixture::new();
    f.file("a.txt", "a");
    f.parent_dir("srv", 0o750);
    std::os::unix::fs::chown(f.parent.join("srv"), Some(33), Some(33)).expect("chown");
    let got = f.listing(&spec(&["a.txt"], "/srv"));
    assert_listing(&got, &["d /srv 750 33:33", "f /srv/a.txt 644 0:0 \"a\""]);
}

#[test]
fn relative_destinations_are_relative_to_workdir() {
    let f = Fixture::new();
    f.file("a.txt", "a");
    let mut s = spec(&["a.txt"], "sub/");
    s.workdir = "/app".into();
    let got = f.listing(&s);
    assert_listing(
        &got,
        &[
            "d /app 755 0:0",
            "d /app/sub 755 0:0",
            "f /app/sub/a.txt 644 0:0 \"a\"",
        ],
    );
    // `.` is the WORKDIR itself.
    let f = Fixture::new();
    f.file("a.txt", "a");
    f.parent_dir("app", 0o755);
    let mut s = spec(&["a.txt"], ".");
    s.workdir = "/app".into();
    assert_listing(
        &f.listing(&s),
        &["d /app 755 0:0", "f /app/a.txt 644 0:0 \"a\""],
    );
}

#[test]
fn several_sources_need_a_directory_destination() {
    let f = Fixture::new();
    f.file("a.txt", "a");
    f.file("b.txt", "b");
    let err = f.run(&spec(&["a.txt", "b.txt"], "/out")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "when using COPY with more than one source file, the destination must be a directory and end with a / (destination /out)"
    );
    let err = f.run(&spec(&["*.txt"], "/out")).unwrap_err();
    assert!(matches!(err, CopyError::DestNotDirectory { .. }), "{err}");
    // One wildcard match is one source.
    let f = Fixture::new();
    f.file("a.txt", "a");
    assert_listing(
        &f.listing(&spec(&["*.txt"], "/out")),
        &["f /out 644 0:0 \"a\""],
    );
    // An existing directory, or `.`, is a directory destination.
    let f = Fixture::new();
    f.file("a.txt", "a");
    f.file("b.txt", "b");
    f.parent_dir("out", 0o755);
    assert_eq!(f.listing(&spec(&["a.txt", "b.txt"], "/out")).len(), 3);
    let f = Fixture::new();
    f.file("a.txt", "a");
    f.file("b.txt", "b");
    let mut s = spec(&["a.txt", "b.txt"], ".");
    s.workdir = "/w".into();
    f.parent_dir("w", 0o755);
    assert_eq!(f.listing(&s).len(), 3);
}

#[test]
fn destination_symlinks_resolve_inside_the_rootfs() {
    let f = Fixture::new();
    f.file("a.txt", "a");
    f.parent_dir("opt/app", 0o755);
    f.symlink("/opt/app", &f.parent.join("app"));
    // An absolute symlink that climbs: still inside the rootfs.
    f.symlink("../../../../../etc", &f.parent.join("escape"));
    let got = f.listing(&spec(&["a.txt"], "/app/"));
    assert_listing(
        &got,
        &[
            "d /opt 755 0:0",
            "d /opt/app 755 0:0",
            "f /opt/app/a.txt 644 0:0 \"a\"",
        ],
    );
    let f2 = Fixture::new();
    f2.file("a.txt", "a");
    f2.symlink("../../../../../etc", &f2.parent.join("escape"));
    let got = f2.listing(&spec(&["a.txt"], "/escape/"));
    assert_listing(&got, &["d /etc 755 0:0", "f /etc/a.txt 644 0:0 \"a\""]);
}

// ---- sources -------------------------------------------------------------

#[test]
fn a_directory_source_copies_its_contents_and_its_times() {
    let f = Fixture::new();
    f.file("src/a.txt", "a");
    f.file("src/sub/b.txt", "b");
    set_mtime(&f.context.join("src/sub/b.txt"), 1_000);
    set_mtime(&f.context.join("src/sub"), 2_000);
    set_mtime(&f.context.join("src"), 3_000);
    let got = f.listing(&spec(&["src"], "/dst"));
    assert_listing(
        &got,
        &[
            "d /dst 755 0:0",
            "f /dst/a.txt 644 0:0 \"a\"",
            "d /dst/sub 755 0:0",
            "f /dst/sub/b.txt 644 0:0 \"b\"",
        ],
    );
    assert_eq!(mtime(&f.out("/dst/sub/b.txt")), 1_000);
    assert_eq!(mtime(&f.out("/dst/sub")), 2_000);
    // fsutil#140: a target dir the copy made has the copy's time, one that
    // existed keeps its own (not the source dir's, 3000).
    assert!(mtime(&f.out("/dst")) > 1_000_000_000, "made now");
    let f = Fixture::new();
    f.file("src/a.txt", "a");
    set_mtime(&f.context.join("src"), 3_000);
    std::fs::create_dir(f.parent.join("etc")).unwrap();
    set_mtime(&f.parent.join("etc"), 5_000);
    f.listing(&spec(&["src"], "/etc"));
    assert_eq!(
        mtime(&f.out("/etc")),
        5_000,
        "an existing target keeps its times"
    );
}

#[test]
fn wildcards_match_like_go_and_directories_merge() {
    let f = Fixture::new();
    f.file("a.txt", "a");
    f.file("b.md", "b");
    f.file("dir1/x", "x");
    f.file("dir2/y", "y");
    let got = f.listing(&spec(&["*.txt", "dir?"], "/out/"));
    assert_listing(
        &got,
        &[
            "d /out 755 0:0",
            "f /out/a.txt 644 0:0 \"a\"",
            "f /out/x 644 0:0 \"x\"",
            "f /out/y 644 0:0 \"y\"",
        ],
    );
}

#[test]
fn a_wildcard_without_match_copies_nothing_but_a_missing_dir_fails() {
    let f = Fixture::new();
    f.file("a.txt", "a");
    let stats = f
        .run(&spec(&["optional*.json"], "/out/"))
        .expect("no match is fine");
    assert_eq!(stats, CopyStats::default());
    assert!(list(&f.layer).is_empty());
    let err = f.run(&spec(&["folder/b/*"], "/out/")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "lstat /folder/b: no such file or directory"
    );
}

#[test]
fn a_missing_literal_source_fails_naming_it() {
    let f = Fixture::new();
    let err = f.run(&spec(&["nope.txt"], "/out/")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "failed to copy /nope.txt: not found in build context"
    );
}

#[test]
fn sources_outside_the_context_are_clamped_to_it() {
    let f = Fixture::new();
    f.file("x", "inside");
    std::fs::write(f.context.parent().expect("tmp").join("x"), "outside").expect("write");
    let got = f.listing(&spec(&["../x"], "/x"));
    assert_listing(&got, &["f /x 644 0:0 \"inside\""]);
}

#[test]
fn top_level_symlinks_are_followed_inner_ones_kept() {
    let f = Fixture::new();
    f.file("real/file", "content");
    f.symlink("real/file", &f.context.join("link"));
    f.symlink("/real", &f.context.join("dirlink"));
    f.symlink("file", &f.context.join("real/inner"));
    let got = f.listing(&spec(&["link", "dirlink"], "/out/"));
    assert_listing(
        &got,
        &[
            "d /out 755 0:0",
            "f /out/link 644 0:0 \"content\"",
            "f /out/file 644 0:0 \"content\"",
            "l /out/inner -> file",
        ],
    );
    // Without following, the link itself is copied.
    let f2 = Fixture::new();
    f2.symlink("somewhere", &f2.context.join("link"));
    let mut s = spec(&["link"], "/out/");
    s.follow_symlinks = false;
    assert_listing(
        &f2.listing(&s),
        &["d /out 755 0:0", "l /out/link -> somewhere"],
    );
}

#[test]
fn hard_links_within_one_copy_are_preserved() {
    let f = Fixture::new();
    let a = f.file("d/a", "shared");
    std::fs::hard_link(&a, f.context.join("d/b")).expect("link");
    f.run(&spec(&["d"], "/out/")).expect("copy");
    let ino = |p: &str| std::fs::metadata(f.out(p)).expect("stat").ino();
    assert_eq!(ino("/out/a"), ino("/out/b"));
    assert_eq!(std::fs::metadata(f.out("/out/a")).expect("stat").nlink(), 2);
}

#[test]
fn special_files_are_recreated() {
    let f = Fixture::new();
    std::fs::create_dir(f.context.join("d")).expect("mkdir");
    nix::unistd::mkfifo(
        &f.context.join("d/fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o640),
    )
    .expect("mkfifo");
    let got = f.listing(&spec(&["d"], "/out/"));
    assert_listing(&got, &["d /out 755 0:0", "p /out/fifo 640 0:0"]);
}

// ---- ownership -----------------------------------------------------------

#[test]
fn context_files_become_root_owned_stage_files_keep_owners() {
    let f = Fixture::new();
    let a = f.file("d/a", "a");
    std::os::unix::fs::chown(&a, Some(1234), Some(5678)).expect("chown");
    std::os::unix::fs::chown(f.context.join("d"), Some(1234), Some(5678)).expect("chown");
    f.file("d/sub/b", "b");
    std::os::unix::fs::chown(f.context.join("d/sub"), Some(42), Some(43)).expect("chown");
    let got = f.listing(&spec(&["d"], "/ctx/"));
    assert!(
        got.contains(&"f /ctx/a 644 0:0 \"a\"".to_string()),
        "{got:#?}"
    );
    assert!(got.contains(&"d /ctx/sub 755 0:0".to_string()), "{got:#?}");

    let f2 = Fixture::new();
    let a = f2.file("d/a", "a");
    std::os::unix::fs::chown(&a, Some(1234), Some(5678)).expect("chown");
    f2.file("d/sub/b", "b");
    std::os::unix::fs::chown(f2.context.join("d/sub"), Some(42), Some(43)).expect("chown");
    let mut s = spec(&["/d"], "/stage/");
    s.source_kind = SourceKind::Stage;
    let got = f2.listing(&s);
    assert!(
        got.contains(&"f /stage/a 644 1234:5678 \"a\"".to_string()),
        "{got:#?}"
    );
    assert!(
        got.contains(&"d /stage/sub 755 42:43".to_string()),
        "{got:#?}"
    );
}

#[test]
fn chown_names_come_from_the_destination_image() {
    let f = Fixture::new();
    f.file("a", "a");
    f.parent_file(
        "etc/passwd",
        "root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n",
    );
    f.parent_file("etc/group", "root:x:0:\napp:x:1001:\nstaff:x:50:\n");
    // A context file named etc/passwd must not be consulted.
    f.file("etc/passwd", "app:x:7:7::/:/bin/sh\n");
    let check = |chown: &str, expected: &[&str]| {
        let f2 = Fixture::new();
        std::fs::remove_dir(&f2.parent).expect("rmdir");
        std::os::unix::fs::symlink(&f.parent, &f2.parent).expect("share parent");
        f2.file("a", "a");
        let mut s = spec(&["a"], "/new/dir/");
        s.chown = Some(chown.into());
        assert_listing(&f2.listing(&s), expected);
    };
    check(
        "app",
        &[
            "d /new 755 1000:1001",
            "d /new/dir 755 1000:1001",
            "f /new/dir/a 644 1000:1001 \"a\"",
        ],
    );
    check(
        "app:staff",
        &[
            "d /new 755 1000:50",
            "d /new/dir 755 1000:50",
            "f /new/dir/a 644 1000:50 \"a\"",
        ],
    );
    check(
        "4000:4001",
        &[
            "d /new 755 4000:4001",
            "d /new/dir 755 4000:4001",
            "f /new/dir/a 644 4000:4001 \"a\"",
        ],
    );
    check(
        "77",
        &[
            "d /new 755 77:77",
            "d /new/dir 755 77:77",
            "f /new/dir/a 644 77:77 \"a\"",
        ],
    );
    // BuildKit's readUser (moby/buildkit solver/llbsolver/ops/user_linux.go):
    // an unknown user is 0:0, an unknown group keeps the user's gid, an
    // empty user part is uid 0 (client/llb/fileop.go UserOpt.marshal).
    check(
        "nobody",
        &[
            "d /new 755 0:0",
            "d /new/dir 755 0:0",
            "f /new/dir/a 644 0:0 \"a\"",
        ],
    );
    check(
        "app:nogroup",
        &[
            "d /new 755 1000:1001",
            "d /new/dir 755 1000:1001",
            "f /new/dir/a 644 1000:1001 \"a\"",
        ],
    );
    check(
        ":staff",
        &[
            "d /new 755 0:50",
            "d /new/dir 755 0:50",
            "f /new/dir/a 644 0:50 \"a\"",
        ],
    );
}

// ---- modes and times -----------------------------------------------------

#[test]
fn chmod_applies_to_copied_and_created_dirs_and_files() {
    let f = Fixture::new();
    f.file("d/a", "a");
    f.file("d/sub/b", "b");
    f.parent_dir("p", 0o700);
    let mut s = spec(&["d"], "/p/out/");
    s.chmod = Some("750".into());
    // /p existed and is kept as it was; /p/out is created with the mode.
    assert_listing(
        &f.listing(&s),
        &[
            "d /p 700 0:0",
            "d /p/out 750 0:0",
            "f /p/out/a 750 0:0 \"a\"",
            "d /p/out/sub 750 0:0",
            "f /p/out/sub/b 750 0:0 \"b\"",
        ],
    );
    let f = Fixture::new();
    f.file("d/a", "a");
    f.file("d/sub/b", "b");
    let mut s = spec(&["d"], "/out/");
    s.chmod = Some("u+x,g-r".into());
    assert_listing(
        &f.listing(&s),
        &[
            "d /out 715 0:0",
            "f /out/a 704 0:0 \"a\"",
            "d /out/sub 715 0:0",
            "f /out/sub/b 704 0:0 \"b\"",
        ],
    );
    let mut s = spec(&["d"], "/out/");
    s.chmod = Some("88".into());
    assert!(matches!(f.run(&s), Err(CopyError::Chmod(_))));
}

#[test]
fn mtimes_are_kept() {
    let f = Fixture::new();
    let a = f.file("a", "a");
    set_mtime(&a, 123_456_789);
    f.run(&spec(&["a"], "/a")).expect("copy");
    assert_eq!(mtime(&f.out("/a")), 123_456_789);
}

// ---- --link, --parents, --exclude ----------------------------------------

#[test]
fn link_makes_an_independent_layer() {
    let f = Fixture::new();
    f.file("a", "a");
    f.parent_dir("usr/local", 0o700);
    f.symlink("/elsewhere", &f.parent.join("app"));
    let mut s = spec(&["a"], "/usr/local/bin/");
    s.link = true;
    let got = f.listing(&s);
    assert_listing(
        &got,
        &[
            "d /usr 755 0:0",
            "d /usr/local 755 0:0",
            "d /usr/local/bin 755 0:0",
            "f /usr/local/bin/a 644 0:0 \"a\"",
        ],
    );
    // The parent's symlink is not followed either.
    let f2 = Fixture::new();
    f2.file("a", "a");
    f2.symlink("/elsewhere", &f2.parent.join("app"));
    let mut s = spec(&["a"], "/app/");
    s.link = true;
    assert_listing(
        &f2.listing(&s),
        &["d /app 755 0:0", "f /app/a 644 0:0 \"a\""],
    );
    // With --chmod BuildKit falls back to a plain copy onto the parent.
    let f3 = Fixture::new();
    f3.file("a", "a");
    f3.symlink("/elsewhere", &f3.parent.join("app"));
    let mut s = spec(&["a"], "/app/");
    s.link = true;
    s.chmod = Some("600".into());
    assert_listing(
        &f3.listing(&s),
        &["d /elsewhere 600 0:0", "f /elsewhere/a 600 0:0 \"a\""],
    );
}

#[test]
fn parents_keeps_source_directories() {
    let f = Fixture::new();
    f.file("a/b/c.txt", "c");
    f.file("a/b/other.txt", "o");
    f.file("x/y/z.txt", "z");
    std::fs::set_permissions(
        f.context.join("a"),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .expect("chmod");
    let mut s = spec(&["a/b/c.txt", "x/./y/z.txt"], "/dst/");
    s.parents = true;
    let got = f.listing(&s);
    assert_listing(
        &got,
        &[
            "d /dst 755 0:0",
            "d /dst/a 700 0:0",
            "d /dst/a/b 755 0:0",
            "f /dst/a/b/c.txt 644 0:0 \"c\"",
            "d /dst/y 755 0:0",
            "f /dst/y/z.txt 644 0:0 \"z\"",
        ],
    );
    let mut s = spec(&["*/b/*.txt"], "/w/");
    s.parents = true;
    let got = Fixture::new();
    got.file("a/b/c.txt", "c");
    got.file("k/b/d.txt", "d");
    got.file("k/e.txt", "e");
    assert_listing(
        &got.listing(&s),
        &[
            "d /w 755 0:0",
            "d /w/a 755 0:0",
            "d /w/a/b 755 0:0",
            "f /w/a/b/c.txt 644 0:0 \"c\"",
            "d /w/k 755 0:0",
            "d /w/k/b 755 0:0",
            "f /w/k/b/d.txt 644 0:0 \"d\"",
        ],
    );
    let mut s = spec(&["a/missing.txt"], "/dst/");
    s.parents = true;
    assert!(matches!(f.run(&s), Err(CopyError::SourceNotFound { .. })));
}

/// BuildKit's `testExcludedFilesOnCopy` cases.
#[test]
fn exclude_patterns_like_buildkit() {
    let setup = || {
        let f = Fixture::new();
        for (name, content) in [
            ("dir1/file-101.png", "2"),
            ("dir1/file-102.txt", "3"),
            ("dir1/file-103.jpeg", "4"),
            ("dir2/file-201.pdf", "6"),
            ("dir2/file-202.jpeg", "7"),
            ("dir2/file-203.png", "8"),
            ("dir3/file-301.mp3", "9"),
            ("dir3/file-302.mpeg", "10"),
        ] {
            f.file(name, content);
        }
        f
    };
    let files = |f: &Fixture| -> Vec<String> {
        list(&f.layer)
            .into_iter()
            .filter(|l| l.starts_with("f "))
            .map(|l| l.split(' ').nth(1).unwrap_or_default().to_string())
            .collect()
    };
    let run = |sources: &[&str], dest: &str, exclude: &[&str], add: bool| {
        let f = setup();
        let mut s = spec(sources, dest);
        s.exclude = exclude.iter().map(|e| e.to_string()).collect();
        s.is_add = add;
        f.run(&s).expect("copy");
        files(&f)
    };
    assert_eq!(
        run(&["."], "/1", &["*/*.png", "*/*.jpeg"], false),
        [
            "/1/dir1/file-102.txt",
            "/1/dir2/file-201.pdf",
            "/1/dir3/file-301.mp3",
            "/1/dir3/file-302.mpeg"
        ]
    );
    assert_eq!(
        run(&["dir3/"], "/3/", &["*.mp3"], true),
        ["/3/file-302.mpeg"]
    );
    assert_eq!(
        run(
            &["dir*"],
            "/4/",
            &["*.mp3", "*.jpeg", "*.png", "*.pdf", "*.txt"],
            false
        ),
        ["/4/file-302.mpeg"]
    );
    let f = setup();
    let mut s = spec(&["dir*"], "/6/");
    s.exclude = vec!["*".into()];
    s.is_add = true;
    f.run(&s).expect("copy");
    assert_listing(&list(&f.layer), &["d /6 755 0:0"]);
    // An exception re-includes inside an excluded directory.
    let kept = run(&["."], "/7/", &["dir1", "!dir1/file-102.txt"], false);
    assert_eq!(kept.len(), 6, "{kept:?}");
    assert!(kept.contains(&"/7/dir1/file-102.txt".to_string()));
    assert!(!kept.contains(&"/7/dir1/file-101.png".to_string()));
}

// ---- heredocs --------------------------------------------------------------

#[test]
fn heredocs_become_0644_files() {
    let f = Fixture::new();
    let s = CopySpec::new(
        vec![
            CopySource::Heredoc {
                name: "robots.txt".into(),
                content: "User-agent: *\n".into(),
            },
            CopySource::Heredoc {
                name: "humans.txt".into(),
                content: "hi\n".into(),
            },
        ],
        "/usr/share/nginx/html/",
    );
    let got = f.listing(&s);
    assert!(got
        .contains(&"f /usr/share/nginx/html/robots.txt 644 0:0 \"User-agent: *\\n\"".to_string()));
    assert!(got.contains(&"f /usr/share/nginx/html/humans.txt 644 0:0 \"hi\\n\"".to_string()));
    let f = Fixture::new();
    let mut s = CopySpec::new(
        vec![CopySource::Heredoc {
            name: "EOF".into(),
            content: "#!/bin/sh\n".into(),
        }],
        "/script.sh",
    );
    s.chmod = Some("755".into());
    assert_listing(&f.listing(&s), &["f /script.sh 755 0:0 \"#!/bin/sh\\n\""]);
}

// ---- replacing what the parent has ---------------------------------------

#[test]
fn type_conflicts_with_the_parent_fail_like_buildkit() {
    let f = Fixture::new();
    f.file("rootfs/bin/foo.sh", "x");
    f.parent_dir("usr/bin", 0o755);
    f.symlink("usr/bin", &f.parent.join("bin"));
    let err = f.run(&spec(&["rootfs"], "/")).unwrap_err();
    assert_eq!(err.to_string(), "cannot copy to non-directory: /bin");

    let f = Fixture::new();
    f.file("src/conf", "x");
    f.parent_dir("etc/conf", 0o755);
    let err = f.run(&spec(&["src"], "/etc/")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot replace to directory /etc/conf with file"
    );
}

#[test]
fn a_file_replaces_a_parent_file_or_symlink() {
    let f = Fixture::new();
    f.file("src/conf", "new");
    f.file("src/link", "file now");
    f.parent_file("etc/conf", "old");
    f.symlink("/nowhere", &f.parent.join("etc/link"));
    let got = f.listing(&spec(&["src"], "/etc/"));
    assert_listing(
        &got,
        &[
            "d /etc 755 0:0",
            "f /etc/conf 644 0:0 \"new\"",
            "f /etc/link 644 0:0 \"file now\"",
        ],
    );
}

#[test]
fn stats_count_what_was_written() {
    let f = Fixture::new();
    f.file("d/a", "12345");
    f.file("d/s/b", "678");
    let stats = f.run(&spec(&["d"], "/o/")).expect("copy");
    assert_eq!(
        stats,
        CopyStats {
            files: 2,
            dirs: 1,
            bytes: 8
        }
    );
}

#[test]
fn a_layer_stack_parent_is_seen_as_overlay_shows_it() {
    use crate::exec::parent_fs::LayerStack;
    let f = Fixture::new();
    f.file("a", "a");
    let (top, bottom) = (f.parent.join("top"), f.parent.join("bottom"));
    let write = |p: std::path::PathBuf, text: &str| {
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    };
    write(bottom.join("etc/passwd"), "app:x:1000:1000::/:/bin/sh\n");
    write(bottom.join("etc/group"), "app:x:1000:\nstaff:x:50:\n");
    std::fs::create_dir_all(bottom.join("usr/local")).expect("mkdir");
    std::fs::set_permissions(
        bottom.join("usr/local"),
        std::fs::Permissions::from_mode(0o700),
    )
    .expect("chmod");
    std::fs::create_dir_all(top.join("usr/local")).expect("mkdir");
    std::fs::set_permissions(
        top.join("usr/local"),
        std::fs::Permissions::from_mode(0o750),
    )
    .expect("chmod");
    std::fs::create_dir_all(top.join("etc")).expect("mkdir");
    nix::sys::stat::mknod(
        &top.join("etc/group"),
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::empty(),
        0,
    )
    .expect("whiteout");
    let stack = LayerStack::new(vec![top, bottom]);
    let mut s = spec(&["a"], "/usr/local/bin/");
    s.chown = Some("app".into());
    copy(&s, &f.context, &stack, &f.layer, None, None).expect("copy");
    assert_listing(
        &list(&f.layer),
        &[
            "d /usr 755 0:0",
            "d /usr/local 750 0:0",
            "d /usr/local/bin 755 1000:1000",
            "f /usr/local/bin/a 644 1000:1000 \"a\"",
        ],
    );
    // The group file is whited out in the top layer.
    let layer2 = f.layer.parent().expect("tmp").join("layer2");
    std::fs::create_dir(&layer2).expect("mkdir");
    s.chown = Some("app:staff".into());
    copy(&s, &f.context, &stack, &layer2, None, None).expect("copy");
    // BuildKit keeps the user's gid for a group it cannot find.
    assert_listing(
        &list(&layer2),
        &[
            "d /usr 755 0:0",
            "d /usr/local 750 0:0",
            "d /usr/local/bin 755 1000:1000",
            "f /usr/local/bin/a 644 1000:1000 \"a\"",
        ],
    );
}

mod overlay;
mod remote;

#[test]
fn a_fired_cancel_token_stops_the_copy() {
    let f = Fixture::new();
    f.file("src/a.txt", "a");
    f.file("src/b.txt", "b");
    let cancel = crate::solver::CancelToken::new();
    cancel.cancel();
    let view = crate::exec::parent_fs::MergedDir::new(&f.parent);
    let err = copy(
        &spec(&["src"], "/dst/"),
        &f.context,
        &view,
        &f.layer,
        None,
        Some(&cancel),
    )
    .unwrap_err();
    assert!(
        matches!(err, CopyError::Tree(TreeError::Cancelled)),
        "{err:?}"
    );
    assert!(!f.layer.join("dst/a.txt").exists());
}
