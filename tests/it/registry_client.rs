//! The registry client against a real distribution registry
//! (Debian's docker-registry): blobs, manifests, mounts, indexes, Basic auth.

use crate::support;

use kiln::image::oci::media::{OCI_CONFIG, OCI_INDEX, OCI_LAYER, OCI_MANIFEST};
use kiln::image::registry::{Platform, RegistryClient, RegistryError};
use kiln::image::Digest;
use std::io::{Cursor, Read, Seek, SeekFrom};
use support::oci_layout::random_bytes;
use support::registry::test_client as client;
use support::registry::TestRegistry;

fn push(c: &RegistryClient, repo: &str, data: &[u8]) -> Digest {
    let digest = Digest::sha256_of(data);
    c.push_blob(
        repo,
        &digest,
        data.len() as u64,
        &mut Cursor::new(data.to_vec()),
        &mut |_| {},
    )
    .unwrap_or_else(|e| panic!("pushing {digest}: {e}"));
    digest
}

fn descriptor(media_type: &str, data: &[u8]) -> String {
    format!(
        r#"{{"mediaType":"{media_type}","digest":"{}","size":{}}}"#,
        Digest::sha256_of(data),
        data.len()
    )
}

/// Pushes a config and layers and returns the manifest bytes.
fn push_image(c: &RegistryClient, repo: &str, layers: &[Vec<u8>], config: &[u8]) -> Vec<u8> {
    push(c, repo, config);
    for l in layers {
        push(c, repo, l);
    }
    let layer_descs: Vec<String> = layers.iter().map(|l| descriptor(OCI_LAYER, l)).collect();
    format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{},"layers":[{}]}}"#,
        descriptor(OCI_CONFIG, config),
        layer_descs.join(",")
    )
    .into_bytes()
}

fn pull(c: &RegistryClient, repo: &str, digest: &Digest, size: Option<u64>) -> Vec<u8> {
    let mut out = Vec::new();
    c.get_blob(repo, digest, size, &mut out, &mut |_| {})
        .unwrap_or_else(|e| panic!("pulling {digest}: {e}"));
    out
}

#[test]
fn push_then_pull_round_trips_blobs_and_manifests() {
    let reg = TestRegistry::start();
    let c = client(&reg.host(), None);
    c.ping().unwrap();
    let small = random_bytes(1, 5_000);
    let big = random_bytes(2, 350 * 1024 + 7); // chunked: 4 PATCHes
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let manifest = push_image(&c, "kiln/round", &[small.clone(), big.clone()], config);
    let md = c
        .put_manifest("kiln/round", "v1", OCI_MANIFEST, &manifest)
        .unwrap();
    assert_eq!(md, Digest::sha256_of(&manifest));

    let got = c.get_manifest("kiln/round", "v1").unwrap();
    assert_eq!(got.bytes, manifest);
    assert_eq!(got.media_type, OCI_MANIFEST);
    assert_eq!(got.digest, md);
    assert_eq!(
        c.get_manifest("kiln/round", &md.to_string()).unwrap().bytes,
        manifest
    );

    for data in [&small, &big] {
        let d = Digest::sha256_of(data);
        assert_eq!(
            c.blob_exists("kiln/round", &d).unwrap(),
            Some(data.len() as u64)
        );
        let mut seen = 0;
        let mut out = Vec::new();
        c.get_blob(
            "kiln/round",
            &d,
            Some(data.len() as u64),
            &mut out,
            &mut |n| seen = n,
        )
        .unwrap();
        assert_eq!(&out, data);
        assert_eq!(seen, data.len() as u64);
    }
    let absent = Digest::sha256_of(b"never pushed");
    assert_eq!(c.blob_exists("kiln/round", &absent).unwrap(), None);
    let e = c
        .get_blob("kiln/round", &absent, None, &mut Vec::new(), &mut |_| {})
        .unwrap_err();
    assert!(matches!(e, RegistryError::BlobUnknown { .. }), "{e}");
}

#[test]
fn resumes_a_partial_file_and_discards_a_wrong_one() {
    let reg = TestRegistry::start();
    let c = client(&reg.host(), None);
    let data = random_bytes(3, 200_000);
    let d = push(&c, "kiln/resume", &data);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("partial");

    // A previous run got the first 70000 bytes.
    std::fs::write(&path, &data[..70_000]).unwrap();
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    f.seek(SeekFrom::End(0)).unwrap();
    let mut copy = Vec::new();
    let n = c
        .get_blob_to_file_and(
            "kiln/resume",
            &d,
            Some(data.len() as u64),
            &mut f,
            &mut copy,
            &mut |_| {},
        )
        .unwrap();
    assert_eq!(n, data.len() as u64);
    assert_eq!(std::fs::read(&path).unwrap(), data);
    // The copy got the whole blob: the resumed prefix, then the rest.
    assert_eq!(copy, data);

    // A partial file that is not a prefix of the blob: detected, emptied.
    let mut wrong = data[..70_000].to_vec();
    wrong[10] ^= 0xff;
    std::fs::write(&path, &wrong).unwrap();
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    let e = c
        .get_blob_to_file(
            "kiln/resume",
            &d,
            Some(data.len() as u64),
            &mut f,
            &mut |_| {},
        )
        .unwrap_err();
    assert!(matches!(e, RegistryError::DigestMismatch { .. }), "{e}");
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
}

#[test]
fn mounts_across_repositories() {
    let reg = TestRegistry::start();
    let c = client(&reg.host(), None);
    let data = random_bytes(4, 10_000);
    let d = push(&c, "kiln/src", &data);
    assert!(c.mount_blob("kiln/dst", &d, "kiln/src").unwrap().is_none());
    assert_eq!(c.blob_exists("kiln/dst", &d).unwrap(), Some(10_000));

    // Mounting from a repository that lacks the blob: the registry opens a
    // normal upload instead (202), which the client then fills.
    let other = random_bytes(5, 3_000);
    let od = Digest::sha256_of(&other);
    let session = c
        .mount_blob("kiln/dst", &od, "kiln/nowhere")
        .unwrap()
        .expect("registry declined the mount");
    c.upload_blob(
        session,
        &od,
        3_000,
        &mut Cursor::new(other.clone()),
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(pull(&c, "kiln/dst", &od, Some(3_000)), other);
}

#[test]
fn manifest_errors_name_what_is_missing() {
    let reg = TestRegistry::start();
    let c = client(&reg.host(), None);
    // distribution answers MANIFEST_UNKNOWN even for repositories it has
    // never seen.
    let e = c.get_manifest("kiln/nothing", "latest").unwrap_err();
    assert!(matches!(e, RegistryError::ManifestUnknown { .. }), "{e}");

    let manifest = push_image(&c, "kiln/some", &[random_bytes(6, 100)], b"{}");
    c.put_manifest("kiln/some", "v1", OCI_MANIFEST, &manifest)
        .unwrap();
    let e = c.get_manifest("kiln/some", "v2").unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("manifest unknown: v2 not found in {}/kiln/some", reg.host())
    );
}

#[test]
fn resolves_an_index_to_linux_amd64() {
    let reg = TestRegistry::start();
    let c = client(&reg.host(), None);
    let arm = push_image(&c, "kiln/multi", &[random_bytes(7, 100)], b"{\"a\":1}");
    let amd = push_image(&c, "kiln/multi", &[random_bytes(8, 100)], b"{\"a\":2}");
    let arm_d = c
        .put_manifest(
            "kiln/multi",
            &Digest::sha256_of(&arm).to_string(),
            OCI_MANIFEST,
            &arm,
        )
        .unwrap();
    let amd_d = c
        .put_manifest(
            "kiln/multi",
            &Digest::sha256_of(&amd).to_string(),
            OCI_MANIFEST,
            &amd,
        )
        .unwrap();
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[
        {{"mediaType":"{OCI_MANIFEST}","digest":"{arm_d}","size":{},"platform":{{"os":"linux","architecture":"arm64","variant":"v8"}}}},
        {{"mediaType":"{OCI_MANIFEST}","digest":"{amd_d}","size":{},"platform":{{"os":"linux","architecture":"amd64"}}}}]}}"#,
        arm.len(),
        amd.len()
    );
    let index_d = c
        .put_manifest("kiln/multi", "latest", OCI_INDEX, index.as_bytes())
        .unwrap();
    let r = c
        .resolve_manifest("kiln/multi", "latest", &Platform::linux_amd64())
        .unwrap();
    assert_eq!(r.image.digest, amd_d);
    assert_eq!(r.image.bytes, amd);
    assert_eq!(r.reference_digest(), &index_d);
    let e = c
        .resolve_manifest(
            "kiln/multi",
            "latest",
            &Platform::parse("linux/s390x").unwrap(),
        )
        .unwrap_err();
    assert!(e.to_string().contains("linux/arm64/v8, linux/amd64"), "{e}");
}

#[test]
fn basic_auth_registry_needs_credentials() {
    let reg = TestRegistry::with_htpasswd("kiln", "s3cret");
    let anon = client(&reg.host(), None);
    let e = anon.ping().unwrap_err();
    assert!(matches!(e, RegistryError::Unauthorized { .. }), "{e}");
    assert!(e.to_string().contains("kiln login"), "{e}");
    let e = anon.get_manifest("kiln/private", "latest").unwrap_err();
    assert!(matches!(e, RegistryError::Unauthorized { .. }), "{e}");

    let wrong = client(&reg.host(), Some(("kiln", "nope")));
    let e = wrong.ping().unwrap_err();
    assert!(
        e.to_string().contains("invalid username or password"),
        "{e}"
    );

    let good = client(&reg.host(), Some(("kiln", "s3cret")));
    good.ping().unwrap();
    let data = random_bytes(9, 1000);
    let d = push(&good, "kiln/private", &data);
    assert_eq!(pull(&good, "kiln/private", &d, Some(1000)), data);
}

#[test]
fn uploads_replay_from_a_seekable_source() {
    // The registry must see exactly the blob, also when the source reader
    // was left somewhere else.
    let reg = TestRegistry::start();
    let c = client(&reg.host(), None);
    let data = random_bytes(13, 150_000);
    let d = Digest::sha256_of(&data);
    let mut cur = Cursor::new(data.clone());
    let mut sink = Vec::new();
    cur.read_to_end(&mut sink).unwrap();
    let mut last = 0;
    c.push_blob("kiln/seek", &d, 150_000, &mut cur, &mut |n| last = n)
        .unwrap();
    assert_eq!(last, 150_000);
    assert_eq!(pull(&c, "kiln/seek", &d, None), data);
}

#[test]
fn one_client_serves_parallel_downloads() {
    let reg = TestRegistry::start();
    let c = client(&reg.host(), None);
    let blobs: Vec<Vec<u8>> = (0..4).map(|i| random_bytes(20 + i, 120_000)).collect();
    let digests: Vec<Digest> = blobs.iter().map(|b| push(&c, "kiln/par", b)).collect();
    std::thread::scope(|s| {
        for (b, d) in blobs.iter().zip(&digests) {
            let c = &c;
            s.spawn(move || assert_eq!(&pull(c, "kiln/par", d, Some(b.len() as u64)), b));
        }
    });
}
