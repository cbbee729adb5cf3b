//! `ADD <url>` as the copy sees it: a [`CopySource::Remote`] naming a file
//! the HTTP source downloaded (here a prepared file). How the file is
//! fetched, named from the URL, dated from `Last-Modified` and checked
//! against `--checksum` is tested with the HTTP source
//! (`exec::http_source::tests`, `exec::fetch::tests`, `source::url::tests`).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;

use super::super::*;
use crate::exec::attrs::{set_times, Time};
use crate::exec::fixture::{assert_listing, tar_bytes, Fixture, TarEntry};

/// A downloaded file as the HTTP source leaves it: named `name` in a
/// directory of its own, mode 0600, mtime `mtime`.
fn download(f: &Fixture, name: &str, body: &[u8], mtime: i64) -> PathBuf {
    let dir = f.parent.parent().expect("fixture root").join("download");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let file = dir.join(name);
    std::fs::write(&file, body).expect("write");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let time = Time {
        sec: mtime,
        nsec: 0,
    };
    set_times(&file, time, time).expect("utimes");
    file
}

fn add(url: &str, file: PathBuf, dest: &str) -> CopySpec {
    let mut s = CopySpec::new(
        vec![CopySource::Remote {
            url: url.to_string(),
            file,
        }],
        dest,
    );
    s.is_add = true;
    s
}

fn mtime(f: &Fixture, rel: &str) -> i64 {
    std::fs::metadata(f.out(rel)).expect("stat").mtime()
}

#[test]
fn a_download_keeps_its_name_mode_0600_and_mtime() {
    let f = Fixture::new();
    let file = download(&f, "tool.bin", b"payload", 784_111_777);
    let got = f.listing(&add("https://h/files/tool.bin?v=2", file, "/opt/"));
    assert_listing(
        &got,
        &["d /opt 755 0:0", "f /opt/tool.bin 600 0:0 \"payload\""],
    );
    assert_eq!(mtime(&f, "/opt/tool.bin"), 784_111_777);
}

#[test]
fn a_download_goes_to_the_path_or_into_an_existing_directory() {
    let f = Fixture::new();
    f.parent_dir("srv", 0o750);
    let file = download(&f, "tool.bin", b"x", 0);
    let got = f.listing(&add("https://h/tool.bin", file.clone(), "/srv"));
    assert_listing(&got, &["d /srv 750 0:0", "f /srv/tool.bin 600 0:0 \"x\""]);

    let f2 = Fixture::new();
    let got = f2.listing(&add("https://h/tool.bin", file, "/usr/bin/renamed"));
    assert_listing(
        &got,
        &[
            "d /usr 755 0:0",
            "d /usr/bin 755 0:0",
            "f /usr/bin/renamed 600 0:0 \"x\"",
        ],
    );
}

#[test]
fn chown_and_chmod_apply_to_a_download_and_the_epoch_mtime_is_kept() {
    let f = Fixture::new();
    let file = download(&f, "dl", b"x", 0);
    let mut s = add("https://h/dl", file, "/bin/tool");
    s.chmod = Some("755".into());
    s.chown = Some("10:20".into());
    let got = f.listing(&s);
    assert_listing(&got, &["d /bin 755 10:20", "f /bin/tool 755 10:20 \"x\""]);
    assert_eq!(mtime(&f, "/bin/tool"), 0);
}

#[test]
fn a_downloaded_archive_is_extracted_only_with_unpack_true() {
    let tar = tar_bytes(&[TarEntry::File("inside.txt", "i", 0o644)]);
    let f = Fixture::new();
    let file = download(&f, "a.tar", &tar, 0);
    f.run(&add("https://h/a.tar", file.clone(), "/d/"))
        .expect("add");
    assert!(f.out("/d/a.tar").is_file());
    assert!(!f.out("/d/inside.txt").exists());

    let f2 = Fixture::new();
    let mut s = add("https://h/a.tar", file, "/d/");
    s.unpack = Some(true);
    f2.run(&s).expect("add");
    assert!(f2.out("/d/inside.txt").is_file());
    assert!(!f2.out("/d/a.tar").exists());
}

#[test]
fn a_download_is_refused_for_copy_and_errors_hide_its_password() {
    let f = Fixture::new();
    let file = download(&f, "x", b"x", 0);
    let mut s = add("https://h/x", file.clone(), "/x");
    s.is_add = false;
    let err = f.run(&s).unwrap_err();
    assert_eq!(err.to_string(), "source can't be a URL for COPY");

    let missing = file.with_file_name("gone");
    let err = f
        .run(&add("https://user:secret@h/gone", missing, "/x"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("https://user:xxxxx@h/gone"), "{err}");
    assert!(!err.contains("secret"), "{err}");
}
