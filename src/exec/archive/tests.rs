//! ADD of local archives, through the whole copy.

use std::io::Write;
use std::os::unix::fs::MetadataExt;

use super::*;
use crate::exec::copy::{CopyError, CopySpec};
use crate::exec::fixture::{assert_listing, list, spec, tar_bytes, Fixture, TarEntry};

fn add(sources: &[&str], dest: &str) -> CopySpec {
    let mut s = spec(sources, dest);
    s.is_add = true;
    s
}

fn compress(data: &[u8], how: Compression) -> Vec<u8> {
    match how {
        Compression::None => data.to_vec(),
        Compression::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(data).expect("gzip");
            e.finish().expect("gzip")
        }
        Compression::Bzip2 => {
            let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
            e.write_all(data).expect("bzip2");
            e.finish().expect("bzip2")
        }
        Compression::Xz => {
            let mut e = liblzma::write::XzEncoder::new(Vec::new(), 1);
            e.write_all(data).expect("xz");
            e.finish().expect("xz")
        }
        Compression::Zstd => zstd::encode_all(data, 1).expect("zstd"),
    }
}

#[test]
fn every_compression_is_detected_by_content_not_name() {
    let tar = tar_bytes(&[
        TarEntry::Dir("pkg", 0o755),
        TarEntry::File("pkg/bin", "binary", 0o755),
    ]);
    for how in [
        Compression::None,
        Compression::Gzip,
        Compression::Bzip2,
        Compression::Xz,
        Compression::Zstd,
    ] {
        let f = Fixture::new();
        let data = compress(&tar, how);
        assert_eq!(detect(&data), how);
        // A misleading name on purpose.
        std::fs::write(f.context.join("archive.txt"), &data).expect("write");
        let got = f.listing(&add(&["archive.txt"], "/opt"));
        assert_listing(
            &got,
            &[
                "d /opt 755 0:0",
                "d /opt/pkg 755 1000:1000",
                "f /opt/pkg/bin 755 1000:1000 \"binary\"",
            ],
        );
        assert_eq!(
            std::fs::metadata(f.out("/opt/pkg/bin"))
                .expect("stat")
                .mtime(),
            1_000_000,
            "{how:?}"
        );
    }
}

#[test]
fn non_archives_and_unpack_false_are_copied_as_files() {
    let f = Fixture::new();
    f.file("fake.tar.gz", "just text");
    let got = f.listing(&add(&["fake.tar.gz"], "/d/"));
    assert_listing(
        &got,
        &["d /d 755 0:0", "f /d/fake.tar.gz 644 0:0 \"just text\""],
    );
    let f = Fixture::new();
    std::fs::write(
        f.context.join("a.tar"),
        tar_bytes(&[TarEntry::File("x", "x", 0o644)]),
    )
    .expect("write");
    let mut s = add(&["a.tar"], "/d/");
    s.unpack = Some(false);
    f.run(&s).expect("add");
    assert!(f.out("/d/a.tar").is_file());
    // COPY never extracts.
    let f = Fixture::new();
    std::fs::write(
        f.context.join("a.tar"),
        tar_bytes(&[TarEntry::File("x", "x", 0o644)]),
    )
    .expect("write");
    f.run(&spec(&["a.tar"], "/d/")).expect("copy");
    assert!(f.out("/d/a.tar").is_file());
}

#[test]
fn entries_cannot_escape_the_destination() {
    let f = Fixture::new();
    std::fs::write(
        f.context.join("evil.tar"),
        tar_bytes(&[TarEntry::File("../../outside", "pwned", 0o644)]),
    )
    .expect("write");
    let err = f.run(&add(&["evil.tar"], "/dst/")).unwrap_err();
    assert!(
        matches!(err, CopyError::Archive(ArchiveError::Escape { .. })),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "archive /evil.tar: path \"../../outside\" is outside extraction root"
    );

    // A symlink entry pointing out, then a file through it.
    let f = Fixture::new();
    std::fs::write(
        f.context.join("evil.tar"),
        tar_bytes(&[
            TarEntry::Symlink("link", "../../../../tmp"),
            TarEntry::File("link/pwned", "pwned", 0o644),
        ]),
    )
    .expect("write");
    let err = f.run(&add(&["evil.tar"], "/dst/")).unwrap_err();
    assert!(
        matches!(err, CopyError::Archive(ArchiveError::Escape { .. })),
        "{err}"
    );
    assert!(!f.layer.join("tmp/pwned").exists());
}

#[test]
fn absolute_names_and_absolute_symlinks_stay_inside() {
    let f = Fixture::new();
    std::fs::write(
        f.context.join("a.tar"),
        tar_bytes(&[
            TarEntry::File("/etc/conf", "abs", 0o644),
            TarEntry::Symlink("lib", "/usr/lib"),
            TarEntry::File("lib/libx.so", "so", 0o755),
        ]),
    )
    .expect("write");
    let got = f.listing(&add(&["a.tar"], "/root/"));
    assert_listing(
        &got,
        &[
            "d /root 755 0:0",
            "d /root/etc 755 0:0",
            "f /root/etc/conf 644 1000:1000 \"abs\"",
            "l /root/lib -> /usr/lib",
            "d /root/usr 755 0:0",
            "d /root/usr/lib 755 0:0",
            "f /root/usr/lib/libx.so 755 1000:1000 \"so\"",
        ],
    );
}

#[test]
fn whiteout_named_entries_are_plain_files_and_links_are_kept() {
    let f = Fixture::new();
    std::fs::write(
        f.context.join("a.tar"),
        tar_bytes(&[
            TarEntry::File("victim", "victim", 0o644),
            TarEntry::File(".wh.victim", "whiteout", 0o644),
            TarEntry::HardLink("hard", "victim"),
        ]),
    )
    .expect("write");
    f.run(&add(&["a.tar"], "/d/")).expect("add");
    assert_eq!(
        std::fs::read_to_string(f.out("/d/victim")).expect("read"),
        "victim"
    );
    assert_eq!(
        std::fs::read_to_string(f.out("/d/.wh.victim")).expect("read"),
        "whiteout"
    );
    let ino = |p: &str| std::fs::metadata(f.out(p)).expect("stat").ino();
    assert_eq!(ino("/d/hard"), ino("/d/victim"));
}

#[test]
fn chown_overrides_header_owners_and_chmod_is_ignored() {
    let f = Fixture::new();
    std::fs::write(
        f.context.join("a.tar"),
        tar_bytes(&[TarEntry::File("sub/x", "x", 0o640)]),
    )
    .expect("write");
    let mut s = add(&["a.tar"], "/d");
    s.chown = Some("7:8".into());
    s.chmod = Some("777".into());
    let got = f.listing(&s);
    assert_listing(
        &got,
        &[
            "d /d 755 7:8",
            "d /d/sub 755 0:0",
            "f /d/sub/x 640 7:8 \"x\"",
        ],
    );
}

#[test]
fn entries_replace_parent_entries_of_another_type() {
    let f = Fixture::new();
    f.parent_file("opt/dir/old", "old");
    f.parent_file("opt/file", "old");
    std::fs::write(
        f.context.join("a.tar"),
        tar_bytes(&[
            TarEntry::File("dir", "now a file", 0o644),
            TarEntry::Dir("file", 0o700),
        ]),
    )
    .expect("write");
    let got = f.listing(&add(&["a.tar"], "/opt/"));
    assert_listing(
        &got,
        &[
            "d /opt 755 0:0",
            "f /opt/dir 644 1000:1000 \"now a file\"",
            "d /opt/file 700 1000:1000",
        ],
    );
    assert!(list(&f.layer).iter().all(|l| !l.contains("old")));
}

#[test]
fn hard_links_to_parent_files_copy_the_target_up() {
    let f = Fixture::new();
    f.parent_file("d/existing", "from parent");
    std::fs::write(
        f.context.join("a.tar"),
        tar_bytes(&[TarEntry::HardLink("link", "existing")]),
    )
    .expect("write");
    f.run(&add(&["a.tar"], "/d/")).expect("add");
    let meta = |p: &str| std::fs::metadata(f.out(p)).expect("stat");
    assert_eq!(meta("/d/existing").ino(), meta("/d/link").ino());
    assert_eq!(
        std::fs::read_to_string(f.out("/d/link")).expect("read"),
        "from parent"
    );
}

#[test]
fn directory_entries_follow_existing_symlinks_inside_the_destination() {
    let f = Fixture::new();
    f.parent_dir("app/real", 0o755);
    f.symlink("real", &f.parent.join("app/current"));
    std::fs::write(
        f.context.join("a.tar"),
        tar_bytes(&[
            TarEntry::Dir("current", 0o700),
            TarEntry::File("current/x", "x", 0o644),
        ]),
    )
    .expect("write");
    f.run(&add(&["a.tar"], "/app/")).expect("add");
    // The symlink stays (not in the layer); the directory it names takes
    // the entry's metadata and content.
    assert_listing(
        &list(&f.layer),
        &[
            "d /app 755 0:0",
            "d /app/real 700 1000:1000",
            "f /app/real/x 644 1000:1000 \"x\"",
        ],
    );
}

/// Owners past ustar's seven octal digits (2097151) are written in PAX
/// records, as Go's archive/tar writes them, and some writers give the
/// owner only there; ADD keeps the archive's owner unless `--chown`
/// (moby/buildkit solver/llbsolver/file/unpack_root.go
/// `mapArchiveHeaderOwner`, on the `hdr.Uid` Go's reader merged PAX into).
/// Regression: ADD read the ustar fields alone and made these root's.
#[test]
fn pax_owners_of_added_archives_are_kept() {
    let f = Fixture::new();
    let mut b = tar::Builder::new(Vec::new());
    for (name, uid, gid) in [("big", 3_000_000, 4_000_001), ("pax-only", 1234, 5678)] {
        let (uid, gid) = (format!("{uid}"), format!("{gid}"));
        b.append_pax_extensions([("uid", uid.as_bytes()), ("gid", gid.as_bytes())])
            .expect("pax");
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_size(1);
        b.append_data(&mut h, name, &b"x"[..]).expect("entry");
    }
    std::fs::write(f.context.join("owners.tar"), b.into_inner().expect("tar")).expect("write");
    let got = f.listing(&add(&["owners.tar"], "/d"));
    assert_listing(
        &got,
        &[
            "d /d 755 0:0",
            "f /d/big 644 3000000:4000001 \"x\"",
            "f /d/pax-only 644 1234:5678 \"x\"",
        ],
    );
}
