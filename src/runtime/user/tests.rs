use super::*;
use std::os::unix::fs::symlink;

const PASSWD: &str = "\
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
app:x:1000:1000:App User:/home/app:/bin/sh
nohome:x:1001:100::
broken:x:abc:1:bad uid:/:/bin/sh
dup:x:2000:2000::/first:/bin/sh
dup:x:2001:2001::/second:/bin/sh
";

const GROUP: &str = "\
root:x:0:
wheel:x:10:root,app
users:x:100:app
docker:x:999:app,nohome
staff:x:50:
";

/// A rootfs in a temp dir with the given /etc files (None = absent).
fn rootfs(passwd: Option<&str>, group: Option<&str>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("etc")).expect("mkdir etc");
    if let Some(text) = passwd {
        std::fs::write(dir.path().join("etc/passwd"), text).expect("write passwd");
    }
    if let Some(text) = group {
        std::fs::write(dir.path().join("etc/group"), text).expect("write group");
    }
    dir
}

/// One resolution: spec → (uid, gid, extra gids, home).
fn check(spec: &str, expected: (u32, u32, &[u32], &str)) {
    let root = rootfs(Some(PASSWD), Some(GROUP));
    let got = resolve_user(root.path(), spec).unwrap_or_else(|e| panic!("{spec:?}: {e}"));
    let (uid, gid, extra, home) = expected;
    assert_eq!(
        got,
        ResolvedUser {
            uid,
            gid,
            additional_gids: extra.to_vec(),
            home: home.to_string(),
        },
        "spec {spec:?}"
    );
}

fn check_err(passwd: Option<&str>, group: Option<&str>, spec: &str, message: &str) {
    let root = rootfs(passwd, group);
    let err = resolve_user(root.path(), spec).expect_err(spec);
    assert_eq!(err.to_string(), message, "spec {spec:?}");
}

#[test]
fn empty_spec_is_root_with_roots_groups() {
    check("", (0, 0, &[10], "/root"));
}

#[test]
fn names_take_passwd_ids_home_and_member_groups() {
    check("root", (0, 0, &[10], "/root"));
    check("app", (1000, 1000, &[10, 100, 999], "/home/app"));
    check("daemon", (1, 1, &[], "/usr/sbin"));
    // Empty home falls back to "/".
    check("nohome", (1001, 100, &[999], "/"));
    // First of two entries with one name wins.
    check("dup", (2000, 2000, &[], "/first"));
}

#[test]
fn numeric_uids_match_passwd_or_stand_alone() {
    check("1000", (1000, 1000, &[10, 100, 999], "/home/app"));
    check("4242", (4242, 0, &[], "/"));
    check("+7", (7, 0, &[], "/"));
}

#[test]
fn explicit_groups_replace_gid_and_drop_supplementary_groups() {
    check("app:staff", (1000, 50, &[], "/home/app"));
    check("app:0", (1000, 0, &[], "/home/app"));
    check("1000:4242", (1000, 4242, &[], "/home/app"));
    check("4242:4343", (4242, 4343, &[], "/"));
    check("4242:docker", (4242, 999, &[], "/"));
    // Extra colon-separated fields are ignored as in moby's parseLine.
    check("app:staff:extra", (1000, 50, &[], "/home/app"));
}

#[test]
fn unknown_names_fail_like_runc() {
    let passwd_msg = "unable to find user nobody: no matching entries in passwd file";
    check_err(Some(PASSWD), Some(GROUP), "nobody", passwd_msg);
    check_err(None, None, "nobody", passwd_msg);
    check_err(
        Some(PASSWD),
        Some(GROUP),
        "app:nogroup",
        "unable to find group nogroup: no matching entries in group file",
    );
    check_err(
        Some(PASSWD),
        None,
        "app:nogroup",
        "unable to find group nogroup: no matching entries in group file",
    );
    // A line with a non-numeric uid is skipped, never read as uid 0.
    check_err(
        Some(PASSWD),
        Some(GROUP),
        "broken",
        "unable to find user broken: no matching entries in passwd file",
    );
}

#[test]
fn out_of_range_ids_fail() {
    check_err(
        Some(PASSWD),
        Some(GROUP),
        "-1",
        "uids and gids must be in range 0-2147483647 (got -1)",
    );
    check_err(
        Some(PASSWD),
        Some(GROUP),
        "0:2147483648",
        "uids and gids must be in range 0-2147483647 (got 2147483648)",
    );
}

#[test]
fn missing_files_allow_numeric_ids_and_root() {
    for (spec, uid, gid) in [("", 0, 0), ("0", 0, 0), ("1000", 1000, 0), ("5:6", 5, 6)] {
        let root = rootfs(None, None);
        let got = resolve_user(root.path(), spec).expect(spec);
        assert_eq!(
            (got.uid, got.gid, got.home.as_str()),
            (uid, gid, "/"),
            "{spec:?}"
        );
        assert!(got.additional_gids.is_empty());
    }
}

#[test]
fn symlinked_etc_cannot_escape_the_rootfs() {
    // A host directory with a passwd the image must not see.
    let host = rootfs(Some("evil:x:666:666::/evil:/bin/sh\n"), None);
    let root = tempfile::tempdir().expect("tempdir");
    symlink(host.path().join("etc"), root.path().join("etc")).expect("symlink");
    let err = resolve_user(root.path(), "evil").expect_err("must not read the host file");
    assert!(matches!(err, UserError::NoSuchUser(_)), "{err}");
    // A symlink inside the rootfs is followed.
    let root = rootfs(None, None);
    std::fs::create_dir(root.path().join("real")).expect("mkdir");
    std::fs::write(root.path().join("real/passwd"), PASSWD).expect("write");
    symlink("../../real/passwd", root.path().join("etc/passwd")).expect("symlink");
    assert_eq!(resolve_user(root.path(), "app").expect("app").uid, 1000);
}

#[test]
fn unreadable_passwd_names_the_file() {
    let root = rootfs(None, None);
    std::fs::create_dir(root.path().join("etc/passwd")).expect("mkdir");
    let err = resolve_user(root.path(), "app").expect_err("a directory is not a file");
    assert!(
        err.to_string().starts_with("failed to read ") && err.to_string().ends_with("etc/passwd"),
        "{err}"
    );
}

#[test]
fn groups_resolve_by_name_or_number() {
    let root = rootfs(Some(PASSWD), Some(GROUP));
    assert_eq!(resolve_group(root.path(), "docker").expect("docker"), 999);
    assert_eq!(resolve_group(root.path(), "12345").expect("numeric"), 12345);
    assert!(matches!(
        resolve_group(root.path(), "nope"),
        Err(UserError::NoSuchGroup(_))
    ));
}

#[test]
fn chown_specs_follow_buildkit() {
    let root = rootfs(Some(PASSWD), Some(GROUP));
    // moby/buildkit client/llb/fileop.go WithUser and
    // solver/llbsolver/ops/user_linux.go readUser.
    let cases: &[(&str, (u32, u32))] = &[
        ("app", (1000, 1000)),
        ("nohome", (1001, 100)),
        ("55", (55, 55)),
        ("55:66", (55, 66)),
        ("app:staff", (1000, 50)),
        ("1000:docker", (1000, 999)),
        // An empty user part is id 0; an empty group part is gid 0.
        (":staff", (0, 50)),
        (":66", (0, 66)),
        ("app:", (1000, 0)),
        // Unknown names are not errors: user 0:0, group keeps the gid.
        ("ghost", (0, 0)),
        ("ghost:staff", (0, 50)),
        ("app:nogroup", (1000, 1000)),
        ("55:nogroup", (55, 55)),
        ("root", (0, 0)),
    ];
    for (spec, expected) in cases {
        assert_eq!(
            resolve_chown(root.path(), spec).expect(spec),
            *expected,
            "{spec}"
        );
    }
    let bare = rootfs(None, None);
    assert_eq!(
        resolve_chown(bare.path(), "app:staff").expect("no files"),
        (0, 0)
    );
}
