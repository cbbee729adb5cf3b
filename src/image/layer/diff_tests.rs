use super::*;
use crate::image::layer::extract::extract;
use nix::sys::stat::{mknod, Mode, SFlag};
use std::os::unix::fs::PermissionsExt;

/// (name, type byte, link name, size) of each entry of a tar.
fn listing(tar: &[u8]) -> Vec<(String, char, String, u64)> {
    let mut a = tar::Archive::new(tar);
    a.entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                String::from_utf8_lossy(&e.path_bytes()).into_owned(),
                e.header().entry_type().as_byte() as char,
                e.link_name_bytes()
                    .map(|l| String::from_utf8_lossy(&l).into_owned())
                    .unwrap_or_default(),
                e.header().size().unwrap(),
            )
        })
        .collect()
}

fn tar_bytes(dir: &Path) -> (Vec<u8>, DiffStats) {
    write_tar(dir, Vec::new(), DiffOptions::default()).unwrap()
}

fn whiteout(path: &Path) {
    mknod(path, SFlag::S_IFCHR, Mode::empty(), 0).unwrap();
}

#[test]
fn whiteouts_sharing_one_inode_stay_separate_entries() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    fs::create_dir(d.join("etc")).unwrap();
    whiteout(&d.join("etc/a"));
    // The kernel's shared whiteout inode: several names, one inode.
    fs::hard_link(d.join("etc/a"), d.join("etc/b")).unwrap();
    fs::hard_link(d.join("etc/a"), d.join("gone")).unwrap();
    let (tar, _) = tar_bytes(d);
    let l = listing(&tar);
    let names: Vec<(&str, char)> = l.iter().map(|(n, k, _, _)| (n.as_str(), *k)).collect();
    assert_eq!(
        names,
        vec![
            ("etc/", '5'),
            ("etc/.wh.a", '0'),
            ("etc/.wh.b", '0'),
            (".wh.gone", '0')
        ]
    );
}

#[test]
fn opaque_dirs_get_a_marker_and_overlay_xattrs_stay_out() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    fs::create_dir(d.join("cache")).unwrap();
    fs::write(d.join("cache/new"), b"n").unwrap();
    xattr::set(d.join("cache"), OVERLAY_OPAQUE_XATTR, b"y").unwrap();
    xattr::set(d.join("cache"), "trusted.overlay.origin", b"zzz").unwrap();
    xattr::set(d, OVERLAY_OPAQUE_XATTR, b"y").unwrap();
    let (tar, _) = tar_bytes(d);
    let l = listing(&tar);
    let names: Vec<&str> = l.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(
        names,
        vec![".wh..wh..opq", "cache/", "cache/.wh..wh..opq", "cache/new"]
    );
    let mut a = tar::Archive::new(&tar[..]);
    for mut e in a.entries().unwrap().map(Result::unwrap) {
        if let Some(pax) = e.pax_extensions().unwrap() {
            for p in pax {
                assert!(!p.unwrap().key().unwrap().contains("overlay"));
            }
        }
    }
}

#[test]
fn hard_links_become_link_entries() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    fs::write(d.join("a"), b"data").unwrap();
    fs::hard_link(d.join("a"), d.join("b")).unwrap();
    let (tar, stats) = tar_bytes(d);
    let l = listing(&tar);
    assert_eq!(l[0], ("a".into(), '0', "".into(), 4));
    assert_eq!(l[1], ("b".into(), '1', "a".into(), 0));
    assert_eq!(stats.content_size, 4);
}

#[test]
fn same_dir_same_diff_id_and_mtime_clamp() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    fs::create_dir_all(d.join("z/y")).unwrap();
    fs::write(d.join("z/y/f"), b"f").unwrap();
    fs::write(d.join("a"), b"a").unwrap();
    std::os::unix::fs::symlink("a", d.join("s")).unwrap();
    let (tar1, s1) = tar_bytes(d);
    let (tar2, s2) = tar_bytes(d);
    assert_eq!(s1, s2);
    assert_eq!(tar1, tar2);
    assert_eq!(s1.diff_id, Digest::sha256_of(&tar1));
    assert_eq!(s1.tar_size, tar1.len() as u64);
    let clamped = write_tar(
        d,
        Vec::new(),
        DiffOptions {
            clamp_mtime: Some(5),
            ..Default::default()
        },
    )
    .unwrap()
    .1;
    assert_ne!(clamped.diff_id, s1.diff_id);
    let bytes = write_tar(
        d,
        Vec::new(),
        DiffOptions {
            clamp_mtime: Some(5),
            ..Default::default()
        },
    )
    .unwrap()
    .0;
    let mut a = tar::Archive::new(&bytes[..]);
    for e in a.entries().unwrap() {
        assert!(e.unwrap().header().mtime().unwrap() <= 5);
    }
}

#[test]
fn strip_overlay_meta_removes_foreign_xattrs_but_keeps_opaque() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    fs::create_dir(d.join("dir")).unwrap();
    xattr::set(d.join("dir"), "trusted.overlay.impure", b"y").unwrap();
    xattr::set(d.join("dir"), OVERLAY_OPAQUE_XATTR, b"y").unwrap();
    let opts = DiffOptions {
        strip_overlay_meta: true,
        ..Default::default()
    };
    diff_id_of(d, opts).unwrap();
    assert!(xattr::get(d.join("dir"), "trusted.overlay.impure")
        .unwrap()
        .is_none());
    assert!(xattr::get(d.join("dir"), OVERLAY_OPAQUE_XATTR)
        .unwrap()
        .is_some());
}

/// snapshot → tar → snapshot → tar gives the same bytes, for every file
/// type, long names, xattrs, whiteouts and opaque dirs.
#[test]
fn round_trip_is_stable() {
    let t = tempfile::tempdir().unwrap();
    let a = t.path().join("a");
    fs::create_dir(&a).unwrap();
    fs::create_dir_all(a.join("dir/sub")).unwrap();
    fs::set_permissions(a.join("dir/sub"), fs::Permissions::from_mode(0o1750)).unwrap();
    fs::write(a.join("dir/file"), b"content").unwrap();
    fs::set_permissions(a.join("dir/file"), fs::Permissions::from_mode(0o4755)).unwrap();
    fs::hard_link(a.join("dir/file"), a.join("dir/hard")).unwrap();
    std::os::unix::fs::symlink("../x", a.join("dir/sym")).unwrap();
    mknod(
        &a.join("null"),
        SFlag::S_IFCHR,
        Mode::from_bits_truncate(0o666),
        libc::makedev(1, 3),
    )
    .unwrap();
    mknod(
        &a.join("fifo"),
        SFlag::S_IFIFO,
        Mode::from_bits_truncate(0o600),
        0,
    )
    .unwrap();
    whiteout(&a.join("deleted"));
    xattr::set(a.join("dir"), OVERLAY_OPAQUE_XATTR, b"y").unwrap();
    xattr::set(a.join("dir/file"), "user.k", b"v").unwrap();
    let long = "n".repeat(120);
    fs::create_dir_all(a.join(&long)).unwrap();
    fs::write(a.join(&long).join(&long), b"long").unwrap();
    std::os::unix::fs::symlink("t".repeat(150), a.join("longlink")).unwrap();
    nix::unistd::chown(
        &a.join("dir/file"),
        Some(nix::unistd::Uid::from_raw(123)),
        Some(nix::unistd::Gid::from_raw(456)),
    )
    .unwrap();

    let (tar1, s1) = tar_bytes(&a);
    let b = t.path().join("b");
    fs::create_dir(&b).unwrap();
    extract(&tar1[..], &b).unwrap();
    let (tar2, s2) = tar_bytes(&b);
    assert_eq!(listing(&tar1), listing(&tar2));
    assert_eq!(s1.diff_id, s2.diff_id);
    assert_eq!(tar1, tar2);
}
