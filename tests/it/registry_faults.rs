//! `kiln pull` when things go wrong: killed mid-download (then resumed),
//! a registry answering 500, a connection closed mid-body. The store must
//! never list a half-pulled image.

use crate::support;

use kiln::image::digest::DigestWriter;
use kiln::image::oci::media::{OCI_CONFIG, OCI_LAYER, OCI_MANIFEST};
use kiln::image::registry::{ClientOptions, RegistryClient};
use kiln::image::Digest;
use std::io::{Cursor, Read, Write};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};
use support::archive;
use support::http_stub::{Reply, Request, StubServer};
use support::kiln::Kiln;
use support::oci_layout::{random_bytes, tar_of};
use support::registry::TestRegistry;

/// Endless pseudo-random bytes, so a 200 MB layer is never held in memory.
struct Noise {
    seed: u64,
    buf: Vec<u8>,
    pos: usize,
}

impl Read for Noise {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.pos == self.buf.len() {
            self.seed += 1;
            self.buf = random_bytes(self.seed, 1 << 20);
            self.pos = 0;
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Pushes (with kiln's client) an image whose single layer is an
/// uncompressed tar holding `size` random bytes; returns the layer digest.
fn push_big_image(host: &str, repo: &str, size: u64, dir: &Path) -> Digest {
    let path = dir.join("layer.tar");
    let file = std::fs::File::create(&path).unwrap();
    let mut w = DigestWriter::new(std::io::BufWriter::new(file));
    let noise = Noise {
        seed: 7,
        buf: Vec::new(),
        pos: 0,
    };
    let mut content = noise.take(size);
    archive::write_files(
        &mut w,
        &mut [("big.bin", size, &mut content as &mut dyn Read)],
    );
    let (mut inner, digest, len) = w.finish();
    inner.flush().unwrap();
    drop(inner);
    let client = RegistryClient::new(host, &ClientOptions::default()).unwrap();
    let mut f = std::fs::File::open(&path).unwrap();
    client
        .push_blob(repo, &digest, len, &mut f, &mut |_| {})
        .unwrap();
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{digest}"]}}}}"#
    );
    let cd = Digest::sha256_of(config.as_bytes());
    client
        .push_blob(
            repo,
            &cd,
            config.len() as u64,
            &mut Cursor::new(config.clone()),
            &mut |_| {},
        )
        .unwrap();
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"{OCI_CONFIG}","digest":"{cd}","size":{}}},"layers":[{{"mediaType":"{OCI_LAYER}","digest":"{digest}","size":{len}}}]}}"#,
        config.len()
    );
    client
        .put_manifest(repo, "v1", OCI_MANIFEST, manifest.as_bytes())
        .unwrap();
    std::fs::remove_file(&path).unwrap();
    digest
}

fn partial_size(root: &Path) -> u64 {
    std::fs::read_dir(root.join("ingest"))
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

#[test]
fn a_pull_killed_mid_download_resumes_and_never_lists_a_half_image() {
    let reg = TestRegistry::start();
    let k = Kiln::new();
    let layer = push_big_image(&reg.host(), "kiln/big", 200 << 20, k.dir.path());
    let name = format!("{}/kiln/big:v1", reg.host());
    let root = k.root();

    let mut child = k
        .cmd(&["pull", &name])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut seen = 0;
    while Instant::now() < deadline {
        seen = partial_size(&root);
        if seen > 20 << 20 {
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("pull ended ({status}) before it could be killed; {seen} bytes seen");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(seen > 20 << 20, "download never got going");
    assert!(
        k.images_listed().is_empty(),
        "a killed pull left an image listed"
    );
    let kept = partial_size(&root);
    assert!(kept >= seen, "the partial download was not kept");

    let out = k
        .cmd(&["pull", &name])
        .env("KILN_LOG", "kiln=debug")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("resuming download") && stderr.contains(&layer.to_string()),
        "the second pull did not resume: {stderr}"
    );
    assert_eq!(k.images_listed(), [name]);
    assert_eq!(partial_size(&root), 0, "ingest files left after commit");
}

#[test]
fn a_registry_answering_500_is_a_clear_error_and_leaves_no_image() {
    let stub = StubServer::start(|_| {
        Reply::new(
            500,
            r#"{"errors":[{"code":"UNKNOWN","message":"unknown error"}]}"#,
        )
    });
    let k = Kiln::new();
    let out = k.kiln(&["pull", &format!("{}/kiln/x:v1", stub.host())]);
    let err = out.fails_with(1);
    assert!(
        err.contains("failed after 5 attempts")
            && err.contains("last status 500: UNKNOWN unknown error"),
        "{err}"
    );
    assert!(k.images_listed().is_empty());
}

/// A one-layer image (a 200 kB random file) as a stub registry serves it.
struct OneLayerImage {
    tar: Vec<u8>,
    layer: Digest,
    config: String,
    /// The config's digest.
    cd: Digest,
    manifest: String,
}

fn one_layer_image(seed: u64) -> OneLayerImage {
    let tar = tar_of(&[("f".to_string(), random_bytes(seed, 200_000))]);
    let layer = Digest::sha256_of(&tar);
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{layer}"]}}}}"#
    );
    let cd = Digest::sha256_of(config.as_bytes());
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"{OCI_CONFIG}","digest":"{cd}","size":{}}},"layers":[{{"mediaType":"{OCI_LAYER}","digest":"{layer}","size":{}}}]}}"#,
        config.len(),
        tar.len()
    );
    OneLayerImage {
        tar,
        layer,
        config,
        cd,
        manifest,
    }
}

/// A registry serving a small image whose layer download is always cut
/// after half the bytes.
#[test]
fn a_connection_closed_mid_layer_is_a_clear_error_and_leaves_no_image() {
    let OneLayerImage {
        tar,
        layer,
        config,
        cd,
        manifest,
    } = one_layer_image(5);
    let layer_path = layer.to_string();
    let stub = StubServer::start(move |req: &Request| {
        let path = req.path();
        if path.ends_with("/manifests/v1") {
            Reply::new(200, manifest.clone()).header("Content-Type", OCI_MANIFEST)
        } else if path.ends_with(&cd.to_string()) {
            Reply::new(200, config.clone())
        } else if path.ends_with(&layer_path) {
            let mut r = Reply::new(200, tar[..tar.len() / 2].to_vec());
            r.declared_len = Some(tar.len());
            r
        } else {
            Reply::new(404, "")
        }
    });
    let k = Kiln::new();
    let out = k.kiln(&["pull", &format!("{}/kiln/x:v1", stub.host())]);
    let err = out.fails_with(1);
    assert!(
        err.contains(&format!("closed in the middle of blob {layer} of kiln/x")),
        "{err}"
    );
    assert!(k.images_listed().is_empty());
}

/// Regression: a registry that accepts and then stalls held a pull for
/// 605 s (5 tries of 120 s reads). Once nothing has arrived for the stall
/// timeout (set small here) the pull gives up, naming the registry, the
/// blob and the time, without trying again.
#[test]
fn a_stalled_layer_download_gives_up_naming_registry_blob_and_time() {
    let OneLayerImage {
        tar,
        layer,
        config,
        cd,
        manifest,
    } = one_layer_image(6);
    let layer_path = layer.to_string();
    let layer_requests = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = layer_requests.clone();
    let stub = StubServer::start(move |req: &Request| {
        let path = req.path();
        if path.ends_with("/manifests/v1") {
            Reply::new(200, manifest.clone()).header("Content-Type", OCI_MANIFEST)
        } else if path.ends_with(&cd.to_string()) {
            Reply::new(200, config.clone())
        } else if path.ends_with(&layer_path) {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let mut r = Reply::new(200, tar[..tar.len() / 2].to_vec());
            r.declared_len = Some(tar.len());
            r.stall = Some(Duration::from_secs(60));
            r
        } else {
            Reply::new(404, "")
        }
    });
    let k = Kiln::new();
    let out = k
        .cmd(&["pull", &format!("{}/kiln/x:v1", stub.host())])
        .env(kiln::image::registry::STALL_TIMEOUT_ENV, "2")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let out = support::kiln::ran(out);
    let err = out.fails_with(1);
    assert!(
        err.contains(&format!(
            "registry {} stalled: nothing received for 2s",
            stub.host()
        )) && err.contains(&format!("blob {layer} of kiln/x")),
        "{err}"
    );
    assert_eq!(
        layer_requests.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "a stalled registry is not asked again"
    );
    assert!(k.images_listed().is_empty());
}
