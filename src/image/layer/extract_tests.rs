use super::*;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

/// One entry of a test tar.
pub(crate) enum E<'a> {
    File(&'a str, &'a [u8], u32),
    Dir(&'a str, u32),
    Symlink(&'a str, &'a str),
    Hardlink(&'a str, &'a str),
    Char(&'a str, u32, u32),
    Block(&'a str, u32, u32),
    Fifo(&'a str),
    /// A file with PAX xattrs.
    XattrFile(&'a str, &'a [(&'a str, &'a [u8])]),
    /// A file with a uid/gid.
    Owned(&'a str, u64, u64),
}

/// Appends with the name copied verbatim (hostile names included); long
/// names go through tar-rs's GNU long-name support.
fn put(b: &mut tar::Builder<Vec<u8>>, h: &mut tar::Header, p: &str, data: &[u8]) {
    if p.len() <= 100 {
        h.as_old_mut().name[..p.len()].copy_from_slice(p.as_bytes());
        h.set_cksum();
        b.append(h, data).unwrap();
    } else {
        b.append_data(h, p, data).unwrap();
    }
}

/// Builds a tar from entries, mtime 1000.
pub(crate) fn tar_of(entries: &[E]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(1000);
        h.set_uid(0);
        h.set_gid(0);
        h.set_size(0);
        match *e {
            E::File(p, data, mode) => {
                h.set_entry_type(EntryType::Regular);
                h.set_mode(mode);
                h.set_size(data.len() as u64);
                put(&mut b, &mut h, p, data);
            }
            E::Dir(p, mode) => {
                h.set_entry_type(EntryType::Directory);
                h.set_mode(mode);
                put(&mut b, &mut h, p, &[]);
            }
            E::Symlink(p, t) | E::Hardlink(p, t) => {
                let sym = matches!(e, E::Symlink(..));
                h.set_entry_type(if sym {
                    EntryType::Symlink
                } else {
                    EntryType::Link
                });
                h.set_mode(0o777);
                h.set_link_name_literal(t).unwrap();
                put(&mut b, &mut h, p, &[]);
            }
            E::Char(p, ma, mi) | E::Block(p, ma, mi) => {
                let c = matches!(e, E::Char(..));
                h.set_entry_type(if c { EntryType::Char } else { EntryType::Block });
                h.set_mode(0o640);
                h.set_device_major(ma).unwrap();
                h.set_device_minor(mi).unwrap();
                put(&mut b, &mut h, p, &[]);
            }
            E::Fifo(p) => {
                h.set_entry_type(EntryType::Fifo);
                h.set_mode(0o600);
                put(&mut b, &mut h, p, &[]);
            }
            E::XattrFile(p, xattrs) => {
                let recs: Vec<(String, &[u8])> = xattrs
                    .iter()
                    .map(|(k, v)| (format!("SCHILY.xattr.{k}"), *v))
                    .collect();
                b.append_pax_extensions(recs.iter().map(|(k, v)| (k.as_str(), *v)))
                    .unwrap();
                h.set_entry_type(EntryType::Regular);
                h.set_mode(0o755);
                put(&mut b, &mut h, p, &[]);
            }
            E::Owned(p, uid, gid) => {
                h.set_entry_type(EntryType::Regular);
                h.set_mode(0o4750);
                h.set_uid(uid);
                h.set_gid(gid);
                put(&mut b, &mut h, p, &[]);
            }
        }
    }
    b.into_inner().unwrap()
}

fn unpack(entries: &[E]) -> (tempfile::TempDir, Result<ExtractStats, ExtractError>) {
    let outer = tempfile::tempdir().unwrap();
    fs::create_dir(outer.path().join("root")).unwrap();
    let r = extract(&tar_of(entries)[..], &outer.path().join("root"));
    (outer, r)
}

#[test]
fn extracts_every_file_type() {
    let long = format!("deep/{}/file", "d".repeat(150));
    let (t, r) = unpack(&[
        E::Dir("tmp/", 0o1777),
        E::File("bin/tool", b"#!/bin/sh\n", 0o4755),
        E::Symlink("bin/sh", "/bin/busybox"),
        E::Hardlink("bin/tool2", "bin/tool"),
        E::Char("dev/null", 1, 3),
        E::Block("dev/loop0", 7, 0),
        E::Fifo("run/fifo"),
        E::XattrFile(
            "bin/ping",
            &[("security.capability", b"\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"), ("user.note", b"hi")],
        ),
        E::Owned("home/u/own", 1000, 2000),
        E::File(&long, b"x", 0o644),
    ]);
    let stats = r.unwrap();
    assert_eq!(stats.size, 11);
    let root = t.path().join("root");
    let md = |p: &str| fs::symlink_metadata(root.join(p)).unwrap();
    assert_eq!(md("tmp").mode() & 0o7777, 0o1777);
    assert!(md("tmp").is_dir());
    assert_eq!(md("bin/tool").mode() & 0o7777, 0o4755);
    assert_eq!(md("bin/tool").mtime(), 1000);
    assert_eq!(md("bin/tool").nlink(), 2);
    assert_eq!(md("bin/tool").ino(), md("bin/tool2").ino());
    assert_eq!(
        fs::read_link(root.join("bin/sh")).unwrap().to_str(),
        Some("/bin/busybox")
    );
    assert!(md("dev/null").file_type().is_char_device());
    assert_eq!(md("dev/null").rdev(), libc::makedev(1, 3));
    assert!(md("dev/loop0").file_type().is_block_device());
    assert!(md("run/fifo").file_type().is_fifo());
    assert_eq!(
        xattr::get(root.join("bin/ping"), "user.note")
            .unwrap()
            .as_deref(),
        Some(&b"hi"[..])
    );
    assert!(xattr::get(root.join("bin/ping"), "security.capability")
        .unwrap()
        .is_some());
    let own = md("home/u/own");
    assert_eq!(
        (own.uid(), own.gid(), own.mode() & 0o7777),
        (1000, 2000, 0o4750)
    );
    assert_eq!(fs::read(root.join(&long)).unwrap(), b"x");
    // Implicit parents: 0755 and the entry's mtime.
    assert_eq!(md("home").mode() & 0o7777, 0o755);
    assert_eq!(md("home").mtime(), 1000);
    assert_eq!(md("").mode() & 0o7777, 0o755);
}

#[test]
fn whiteouts_become_overlay_form() {
    let (t, r) = unpack(&[
        E::Dir("etc/", 0o755),
        E::File("etc/.wh.passwd", b"", 0o644),
        E::Dir("var/cache/", 0o700),
        E::File("var/cache/.wh..wh..opq", b"", 0o700),
        E::File("x/.wh..wh.plnk", b"", 0o600),
        // A whiteout and a file of the same layer: the file stays.
        E::File("keep", b"k", 0o644),
        E::File(".wh.keep", b"", 0o644),
    ]);
    r.unwrap();
    let root = t.path().join("root");
    let wh = fs::symlink_metadata(root.join("etc/passwd")).unwrap();
    assert!(wh.file_type().is_char_device());
    assert_eq!(wh.rdev(), 0);
    assert!(!root.join("etc/.wh.passwd").exists());
    let opq = xattr::get(root.join("var/cache"), OVERLAY_OPAQUE_XATTR).unwrap();
    assert_eq!(opq.as_deref(), Some(&b"y"[..]));
    assert!(!root.join("var/cache/.wh..wh..opq").exists());
    assert!(!root.join("x/.wh..wh.plnk").exists());
    assert_eq!(fs::read(root.join("keep")).unwrap(), b"k");
}

#[test]
fn overlay_xattrs_from_the_tar_are_dropped() {
    let (t, r) = unpack(&[E::XattrFile(
        "f",
        &[("trusted.overlay.redirect", b"/etc"), ("user.ok", b"1")],
    )]);
    r.unwrap();
    let f = t.path().join("root/f");
    assert!(xattr::get(&f, "trusted.overlay.redirect")
        .unwrap()
        .is_none());
    assert!(xattr::get(&f, "user.ok").unwrap().is_some());
}

#[test]
fn later_entries_replace_earlier_ones() {
    let (t, r) = unpack(&[
        E::Dir("a/", 0o755),
        E::File("a/inner", b"1", 0o644),
        E::File("a", b"now a file", 0o600),
        E::Dir("d/", 0o700),
        E::Dir("d/", 0o751),
    ]);
    r.unwrap();
    let root = t.path().join("root");
    assert_eq!(fs::read(root.join("a")).unwrap(), b"now a file");
    assert_eq!(fs::metadata(root.join("d")).unwrap().mode() & 0o777, 0o751);
}

#[test]
fn absolute_names_are_stripped_like_docker() {
    let (t, r) = unpack(&[
        E::File("/etc/hostname", b"h", 0o644),
        E::File("/../../x", b"y", 0o644),
    ]);
    r.unwrap();
    assert_eq!(fs::read(t.path().join("root/etc/hostname")).unwrap(), b"h");
    assert_eq!(fs::read(t.path().join("root/x")).unwrap(), b"y");
}

/// Hostile layers: each must fail with the right error and write nothing
/// outside the destination (the sibling `outside` dir stays empty).
fn check_refused(entries: &[E], want: fn(&ExtractError) -> bool) {
    let (t, r) = unpack(entries);
    let err = r.expect_err("hostile layer accepted");
    assert!(want(&err), "unexpected error: {err}");
    let siblings: Vec<_> = fs::read_dir(t.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        siblings,
        vec![std::ffi::OsString::from("root")],
        "wrote outside"
    );
}

#[test]
fn refuses_dot_dot_escapes() {
    check_refused(&[E::File("../evil", b"x", 0o644)], |e| {
        matches!(e, ExtractError::Escape { .. })
    });
    check_refused(&[E::File("a/../../evil", b"x", 0o644)], |e| {
        matches!(e, ExtractError::Escape { .. })
    });
}

#[test]
fn refuses_writing_through_symlinks() {
    check_refused(
        &[
            E::Symlink("link", "/etc"),
            E::File("link/passwd", b"x", 0o644),
        ],
        |e| matches!(e, ExtractError::SymlinkParent { .. }),
    );
    // The links themselves are accepted (containerd's rule); writing
    // through them is not.
    check_refused(
        &[E::Symlink("up", ".."), E::File("up/evil", b"x", 0o644)],
        |e| matches!(e, ExtractError::SymlinkParent { .. }),
    );
    check_refused(
        &[
            E::Symlink("a/link", "../../.."),
            E::File("a/link/evil", b"x", 0o644),
        ],
        |e| matches!(e, ExtractError::SymlinkParent { .. }),
    );
    check_refused(
        &[E::File("f", b"", 0o644), E::File("f/x", b"", 0o644)],
        |e| matches!(e, ExtractError::NotDir { .. }),
    );
}

/// Regression: `kiln load` refused a valid image whose relative symlink
/// climbs above the root; `docker load` (containerd) accepts it.
#[test]
fn symlinks_climbing_above_the_root_are_kept_as_written() {
    let (t, r) = unpack(&[
        E::Symlink("a", "../../../etc/passwd"),
        E::Symlink("d/up", "../.."),
    ]);
    r.unwrap();
    let root = t.path().join("root");
    assert_eq!(
        fs::read_link(root.join("a")).unwrap(),
        std::path::Path::new("../../../etc/passwd")
    );
    assert_eq!(
        fs::read_link(root.join("d/up")).unwrap(),
        std::path::Path::new("../..")
    );
}

#[test]
fn relative_symlinks_inside_are_fine() {
    let (t, r) = unpack(&[E::Symlink("usr/lib/libc.so", "../../lib/libc.so.6")]);
    r.unwrap();
    assert!(fs::symlink_metadata(t.path().join("root/usr/lib/libc.so"))
        .unwrap()
        .file_type()
        .is_symlink());
}

#[test]
fn refuses_hard_links_out_of_the_layer() {
    check_refused(&[E::Hardlink("h", "../outside")], |e| {
        matches!(e, ExtractError::LinkEscape { .. })
    });
    check_refused(&[E::Hardlink("h", "etc/shadow")], |e| {
        matches!(e, ExtractError::LinkMissing { .. })
    });
    // Through a symlinked directory: the target walk does not follow it.
    check_refused(
        &[E::Symlink("l", "/etc"), E::Hardlink("h", "l/passwd")],
        |e| matches!(e, ExtractError::LinkMissing { .. }),
    );
}

#[test]
fn truncated_tars_are_errors() {
    let full = tar_of(&[
        E::File("a", &[7u8; 3000], 0o644),
        E::File("b", b"bb", 0o644),
    ]);
    for cut in [100, 700, 2048, 4096] {
        let outer = tempfile::tempdir().unwrap();
        let err = extract(&full[..cut], outer.path()).expect_err("truncated tar accepted");
        assert!(
            matches!(err, ExtractError::Read(_) | ExtractError::Truncated),
            "cut {cut}: {err}"
        );
    }
}

/// `kiln import /dev/zero` read zeros forever after the end marker.
#[test]
fn padding_after_the_end_marker_is_bounded() {
    let tar = tar_of(&[E::File("a", b"a", 0o644)]);
    let (ok, endless) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let padded = [tar.clone(), vec![0u8; 9 * 1024]].concat();
    extract(&padded[..], ok.path()).expect("record padding is fine");
    let zeros = std::io::Read::chain(&tar[..], std::io::repeat(0));
    let err = extract(zeros, endless.path()).expect_err("endless zeros");
    assert!(matches!(err, ExtractError::TrailerTooLong), "{err}");
}

#[test]
fn clean_name_matches_go_filepath_clean() {
    let c = |s: &str| {
        clean_name(s.as_bytes()).map(|v| {
            v.iter()
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect::<Vec<_>>()
                .join("/")
        })
    };
    assert_eq!(c("./a//b/./c/"), Some("a/b/c".into()));
    assert_eq!(c("a/b/../c"), Some("a/c".into()));
    assert_eq!(c("/../etc"), Some("etc".into()));
    assert_eq!(c("./"), Some("".into()));
    assert_eq!(c(".."), None);
    assert_eq!(c("a/../../b"), None);
}
