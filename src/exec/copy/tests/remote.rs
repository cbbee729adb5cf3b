//! `ADD <url>` against a tiny HTTP server on 127.0.0.1.

use std::os::unix::fs::MetadataExt;

use super::super::*;
use crate::exec::fixture::{assert_listing, spec, tar_bytes, Fixture, Reply, Server, TarEntry};

fn ok(body: &[u8], headers: &[(&str, &str)]) -> Reply {
    Reply {
        status: 200,
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        body: body.to_vec(),
    }
}

fn add(url: &str, dest: &str) -> CopySpec {
    let mut s = spec(&[url], dest);
    s.is_add = true;
    s
}

#[test]
fn a_download_is_named_after_the_url_mode_0600_with_last_modified() {
    let server = Server::start(vec![ok(
        b"payload",
        &[("Last-Modified", "Sun, 06 Nov 1994 08:49:37 GMT")],
    )]);
    let f = Fixture::new();
    let got = f.listing(&add(
        &format!("{}/files/tool.bin?v=2", server.base),
        "/opt/",
    ));
    assert_listing(
        &got,
        &["d /opt 755 0:0", "f /opt/tool.bin 600 0:0 \"payload\""],
    );
    assert_eq!(
        std::fs::metadata(f.out("/opt/tool.bin"))
            .expect("stat")
            .mtime(),
        784_111_777
    );
}

#[test]
fn without_last_modified_the_mtime_is_the_epoch_and_chown_chmod_apply() {
    let server = Server::start(vec![ok(b"x", &[])]);
    let f = Fixture::new();
    let mut s = add(&format!("{}/dl", server.base), "/bin/tool");
    s.chmod = Some("755".into());
    s.chown = Some("10:20".into());
    let got = f.listing(&s);
    assert_listing(&got, &["d /bin 755 10:20", "f /bin/tool 755 10:20 \"x\""]);
    assert_eq!(
        std::fs::metadata(f.out("/bin/tool")).expect("stat").mtime(),
        0
    );
}

#[test]
fn checksums_are_verified() {
    let body = b"checked content";
    let server = Server::start(vec![ok(body, &[]), ok(b"tampered", &[])]);
    let f = Fixture::new();
    let mut s = add(&format!("{}/a", server.base), "/a");
    s.checksum = Some(Digest::sha256_of(body));
    f.run(&s).expect("matching checksum");
    let f2 = Fixture::new();
    let url = format!("{}/b", server.base);
    let mut s = add(&url, "/b");
    s.checksum = Some(Digest::sha256_of(body));
    let err = f2.run(&s).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "digest mismatch for {url}: {} (expected: {})",
            Digest::sha256_of(b"tampered"),
            Digest::sha256_of(body)
        )
    );
}

#[test]
fn error_statuses_fail() {
    let server = Server::start(vec![Reply {
        status: 404,
        headers: Vec::new(),
        body: b"not here".to_vec(),
    }]);
    let f = Fixture::new();
    let url = format!("{}/missing", server.base);
    let err = f.run(&add(&url, "/x")).unwrap_err().to_string();
    assert_eq!(
        err,
        format!("failed to download {url}: invalid response status 404")
    );
}

#[test]
fn remote_archives_are_not_extracted_unless_unpack_is_true() {
    let tar = tar_bytes(&[TarEntry::File("inside.txt", "i", 0o644)]);
    let server = Server::start(vec![ok(&tar, &[]), ok(&tar, &[])]);
    let f = Fixture::new();
    f.run(&add(&format!("{}/a.tar", server.base), "/d/"))
        .expect("add");
    assert!(f.out("/d/a.tar").is_file());
    assert!(!f.out("/d/inside.txt").exists());
    let f2 = Fixture::new();
    let mut s = add(&format!("{}/a.tar", server.base), "/d/");
    s.unpack = Some(true);
    f2.run(&s).expect("add");
    assert!(f2.out("/d/inside.txt").is_file());
    assert!(!f2.out("/d/a.tar").exists());
}
