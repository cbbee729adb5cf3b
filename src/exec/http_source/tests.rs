//! The HTTP source against canned answers from a server on 127.0.0.1
//! (the server exits after its last answer, so a request made when none
//! was expected fails the fetch).

use std::os::unix::fs::MetadataExt;

use super::*;
use crate::exec::fixture::{Reply, Server};

fn reply(status: u16, body: &[u8], headers: &[(&str, &str)]) -> Reply {
    Reply {
        status,
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        body: body.to_vec(),
    }
}

fn source(url: &str, checksum: Option<&[u8]>) -> HttpSource {
    HttpSource {
        url: url.to_string(),
        checksum: checksum.map(|b| Digest::sha256_of(b).to_string()),
    }
}

const DATE: &str = "Sun, 06 Nov 1994 08:49:37 GMT";

#[test]
fn a_304_reuses_the_stored_copy_and_new_content_replaces_it() {
    let t = tempfile::tempdir().unwrap();
    let store = Store::open(t.path()).unwrap();
    let server = Server::start(vec![
        reply(200, b"v1", &[("ETag", "\"1\""), ("Last-Modified", DATE)]),
        reply(304, b"", &[("ETag", "\"1\"")]),
        reply(200, b"v2", &[("ETag", "\"2\"")]),
    ]);
    let url = format!("{}/dir/tool.bin", server.base);
    let first = fetch(&store, &source(&url, None)).unwrap();
    assert_eq!(first.outcome, Outcome::Downloaded);
    assert_eq!(first.file.file_name().unwrap(), "tool.bin");
    assert_eq!(std::fs::read(&first.file).unwrap(), b"v1");
    let md = std::fs::metadata(&first.file).unwrap();
    assert_eq!((md.mode() & 0o7777, md.mtime()), (0o600, 784_111_777));

    let second = fetch(&store, &source(&url, None)).unwrap();
    assert_eq!(second.outcome, Outcome::NotModified);
    assert_eq!(second.content_digest(), first.content_digest());
    assert_eq!(second.mtime, Some(784_111_777));
    let ino = |p: &Path| std::fs::metadata(p).unwrap().ino();
    assert_eq!(ino(&second.file), ino(&first.file), "not rewritten");

    let third = fetch(&store, &source(&url, None)).unwrap();
    assert_eq!(third.outcome, Outcome::Downloaded);
    assert_eq!(std::fs::read(&third.file).unwrap(), b"v2");
    assert_ne!(third.content_digest(), first.content_digest());
    assert_eq!(
        std::fs::read(&first.file).unwrap(),
        b"v1",
        "an earlier link keeps its content"
    );
    let dir = first.file.parent().unwrap().to_path_buf();
    drop(store);
    assert!(!dir.exists(), "links live in the process's scratch dir");
    let stored: Vec<String> = std::fs::read_dir(t.path().join("http"))
        .unwrap()
        .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "lock" && n != "entry.json")
        .collect();
    assert_eq!(stored, [Digest::sha256_of(b"v2").hex()], "one body per URL");
}

#[test]
fn a_matching_checksum_needs_no_request_and_a_wrong_one_no_body() {
    let t = tempfile::tempdir().unwrap();
    let store = Store::open(t.path()).unwrap();
    let server = Server::start(vec![
        reply(200, b"pinned", &[("ETag", "\"p\"")]),
        reply(304, b"", &[]),
    ]);
    let url = format!("{}/f", server.base);
    let first = fetch(&store, &source(&url, Some(b"pinned"))).unwrap();
    assert_eq!(first.outcome, Outcome::Downloaded);
    let again = fetch(&store, &source(&url, Some(b"pinned"))).unwrap();
    assert_eq!(again.outcome, Outcome::Pinned);
    assert_eq!(again.content_digest(), first.content_digest());
    let err = fetch(&store, &source(&url, Some(b"other"))).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "digest mismatch for {url}: {} (expected: {})",
            Digest::sha256_of(b"pinned"),
            Digest::sha256_of(b"other")
        )
    );
    let bad = HttpSource {
        url: url.clone(),
        checksum: Some("md5:abc".into()),
    };
    assert!(matches!(
        fetch(&store, &bad),
        Err(HttpSourceError::InvalidChecksum { .. })
    ));
}

#[test]
fn a_304_for_another_etag_and_error_statuses_fail() {
    let t = tempfile::tempdir().unwrap();
    let store = Store::open(t.path()).unwrap();
    let server = Server::start(vec![
        reply(200, b"x", &[("ETag", "\"1\"")]),
        reply(304, b"", &[("ETag", "\"9\"")]),
        reply(404, b"gone", &[]),
    ]);
    let url = format!("{}/f", server.base);
    fetch(&store, &source(&url, None)).unwrap();
    let err = fetch(&store, &source(&url, None)).unwrap_err();
    assert!(matches!(err, HttpSourceError::NotModified { .. }), "{err}");
    let err = fetch(&store, &source(&url, None)).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("failed to download {url}: invalid response status 404")
    );
}

#[test]
fn same_bytes_again_keep_the_key_and_a_new_date_changes_it() {
    let t = tempfile::tempdir().unwrap();
    let store = Store::open(t.path()).unwrap();
    let server = Server::start(vec![
        reply(200, b"same", &[]),
        reply(200, b"same", &[]),
        reply(200, b"same", &[("Last-Modified", DATE)]),
    ]);
    let url = format!("{}/f", server.base);
    let a = fetch(&store, &source(&url, None)).unwrap();
    let b = fetch(&store, &source(&url, None)).unwrap();
    assert_eq!(b.outcome, Outcome::Unchanged);
    assert_eq!(a.content_digest(), b.content_digest());
    let c = fetch(&store, &source(&url, None)).unwrap();
    assert_eq!(c.outcome, Outcome::Downloaded, "the mtime changed");
    assert_ne!(a.content_digest(), c.content_digest());
    let pinned = |mut r: RemoteFile| {
        r.checksum = Some(r.digest.clone());
        r.content_digest()
    };
    assert_eq!(pinned(a), pinned(c), "a checksum key ignores the date");
}

#[test]
fn without_last_modified_a_download_is_dated_the_epoch() {
    let t = tempfile::tempdir().unwrap();
    let store = Store::open(t.path()).unwrap();
    let server = Server::start(vec![reply(200, b"x", &[])]);
    let got = fetch(&store, &source(&format!("{}/dl", server.base), None)).unwrap();
    assert_eq!(got.mtime, None);
    let md = std::fs::metadata(&got.file).unwrap();
    assert_eq!((md.mode() & 0o7777, md.mtime()), (0o600, 0));
}

#[test]
fn a_first_download_that_misses_the_checksum_fails() {
    let t = tempfile::tempdir().unwrap();
    let store = Store::open(t.path()).unwrap();
    let server = Server::start(vec![reply(200, b"tampered", &[])]);
    let url = format!("{}/b", server.base);
    let err = fetch(&store, &source(&url, Some(b"checked content"))).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "digest mismatch for {url}: {} (expected: {})",
            Digest::sha256_of(b"tampered"),
            Digest::sha256_of(b"checked content")
        )
    );
}

#[test]
fn errors_hide_the_url_password() {
    let t = tempfile::tempdir().unwrap();
    let store = Store::open(t.path()).unwrap();
    let server = Server::start(vec![reply(404, b"gone", &[]), reply(200, b"body", &[])]);
    let with_password = |path: &str| server.base.replace("://", "://me:secret@") + path;
    let shown = |path: &str| server.base.replace("://", "://me:xxxxx@") + path;
    let err = fetch(&store, &source(&with_password("/a"), None)).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "failed to download {}: invalid response status 404",
            shown("/a")
        )
    );
    let err = fetch(&store, &source(&with_password("/b"), Some(b"other"))).unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("digest mismatch for {}:", shown("/b"))),
        "{err}"
    );
    let bad = HttpSource {
        url: with_password("/c"),
        checksum: Some("md5:abc".into()),
    };
    let err = fetch(&store, &bad).unwrap_err().to_string();
    assert!(
        err.contains(&shown("/c")) && !err.contains("secret"),
        "{err}"
    );
}
