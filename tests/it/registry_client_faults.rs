//! The registry client against stub servers, for what a real registry
//! will not do on demand: 5xx and 429 answers, connections cut mid-body,
//! wrong content, Docker Hub's bearer-token flow (a token server issuing
//! anonymous and credentialed tokens, then revoking them).
//!
//! distribution's own token auth needs JWTs signed with a certificate the
//! registry trusts; a stub token server exercises the same client code
//! (challenge, token request, cache, refresh) without a PKI.

use crate::support;

use kiln::image::oci::media::{DOCKER_MANIFEST, DOCKER_MANIFEST_SCHEMA1_SIGNED, OCI_MANIFEST};
use kiln::image::registry::{RegistryClient, RegistryError};
use kiln::image::Digest;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use support::http_stub::{Reply, Request, StubServer};
use support::oci_layout::random_bytes;
use support::registry::test_client as client;

/// A schema 2 manifest of `media_type` with nothing in it, for stubs that
/// serve it from `'static` closures.
fn empty_manifest(media_type: &str) -> &'static [u8] {
    format!(r#"{{"schemaVersion":2,"mediaType":"{media_type}","config":{{}},"layers":[]}}"#)
        .leak()
        .as_bytes()
}

fn pull(c: &RegistryClient, repo: &str, digest: &Digest, size: Option<u64>) -> Vec<u8> {
    let mut out = Vec::new();
    c.get_blob(repo, digest, size, &mut out, &mut |_| {})
        .unwrap_or_else(|e| panic!("pulling {digest}: {e}"));
    out
}

#[test]
fn unknown_repositories_are_reported_as_such() {
    // Registries that tell a missing repository apart (NAME_UNKNOWN).
    let stub = StubServer::start(|_| {
        Reply::new(
            404,
            r#"{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry"}]}"#,
        )
    });
    let c = client(&stub.host(), None);
    let e = c.get_manifest("kiln/nothing", "latest").unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "repository {}/kiln/nothing not found or access denied",
            stub.host()
        )
    );
}

/// A stub that answers every request with 500.
#[test]
fn server_errors_are_retried_then_reported() {
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let stub = StubServer::start(move |_| {
        h.fetch_add(1, Ordering::SeqCst);
        Reply::new(
            500,
            r#"{"errors":[{"code":"UNKNOWN","message":"storage on fire"}]}"#,
        )
    });
    let c = client(&stub.host(), None);
    let e = c.get_manifest("a/b", "latest").unwrap_err();
    assert_eq!(hits.load(Ordering::SeqCst), 3);
    let msg = e.to_string();
    assert!(matches!(e, RegistryError::RetriesExhausted { .. }), "{msg}");
    assert!(msg.contains("after 3 attempts"), "{msg}");
    assert!(
        msg.contains("last status 500: UNKNOWN storage on fire"),
        "{msg}"
    );
}

#[test]
fn refused_connections_say_the_registry_is_unreachable() {
    // Bind and drop: nothing listens on the port afterwards.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let c = client(&format!("127.0.0.1:{port}"), None);
    let e = c.ping().unwrap_err();
    assert!(matches!(e, RegistryError::Connect { .. }), "{e}");
    assert!(e.to_string().contains("cannot reach registry"), "{e}");
    assert!(e.to_string().contains("tried 3 times"), "{e}");
}

/// Serves `data` as blob `/v2/a/b/blobs/…`, cutting every full response
/// after `cut` bytes; honours `Range` if `ranges`.
fn flaky_blob_server(
    data: Vec<u8>,
    cut: usize,
    ranges: bool,
) -> (StubServer, Arc<Mutex<Vec<String>>>) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = log.clone();
    let stub = StubServer::start(move |req: &Request| {
        l.lock()
            .unwrap()
            .push(req.header("range").unwrap_or("-").to_string());
        let start: usize = match req.header("range") {
            Some(r) if ranges => r
                .trim_start_matches("bytes=")
                .trim_end_matches('-')
                .parse()
                .unwrap(),
            _ => 0,
        };
        if start > 0 {
            return Reply::new(206, data[start..].to_vec()).header(
                "Content-Range",
                format!("bytes {start}-{}/{}", data.len() - 1, data.len()),
            );
        }
        let mut r = Reply::new(200, data[..cut].to_vec());
        r.declared_len = Some(data.len());
        r
    });
    (stub, log)
}

#[test]
fn a_connection_closed_mid_body_is_resumed_with_range() {
    let data = random_bytes(10, 50_000);
    let d = Digest::sha256_of(&data);
    let (stub, log) = flaky_blob_server(data.clone(), 20_000, true);
    let c = client(&stub.host(), None);
    assert_eq!(pull(&c, "a/b", &d, Some(50_000)), data);
    assert_eq!(*log.lock().unwrap(), ["-", "bytes=20000-"]);
}

#[test]
fn a_connection_that_keeps_closing_mid_body_is_a_clear_error() {
    let data = random_bytes(11, 50_000);
    let d = Digest::sha256_of(&data);
    let (stub, log) = flaky_blob_server(data, 20_000, false);
    let c = client(&stub.host(), None);
    let e = c
        .get_blob("a/b", &d, Some(50_000), &mut Vec::new(), &mut |_| {})
        .unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, RegistryError::ConnectionClosed { .. }), "{msg}");
    assert!(
        msg.contains("closed in the middle of blob")
            && msg.contains("after 20000 bytes of 50000 (tried 3 times)"),
        "{msg}"
    );
    // Each retry asked to resume; the stub ignored it and the client
    // skipped what it already had.
    assert_eq!(log.lock().unwrap().len(), 3);
}

#[test]
fn content_that_does_not_match_its_digest_is_rejected() {
    let served = random_bytes(12, 4_000);
    let claimed = Digest::sha256_of(b"something else");
    let body = served.clone();
    let stub = StubServer::start(move |req: &Request| {
        if req.path().contains("/manifests/") {
            Reply::new(200, br#"{"schemaVersion":2,"layers":[]}"#.to_vec())
                .header("Content-Type", OCI_MANIFEST)
        } else {
            Reply::new(200, body.clone())
        }
    });
    let c = client(&stub.host(), None);
    let e = c
        .get_blob("a/b", &claimed, None, &mut Vec::new(), &mut |_| {})
        .unwrap_err();
    assert!(matches!(e, RegistryError::DigestMismatch { .. }), "{e}");
    assert!(
        e.to_string().contains(&format!("expected {claimed}")),
        "{e}"
    );
    let e = c
        .get_blob(
            "a/b",
            &Digest::sha256_of(&served),
            Some(3_999),
            &mut Vec::new(),
            &mut |_| {},
        )
        .unwrap_err();
    assert!(matches!(e, RegistryError::SizeMismatch { .. }), "{e}");
    let e = c.get_manifest("a/b", &claimed.to_string()).unwrap_err();
    assert!(matches!(e, RegistryError::DigestMismatch { .. }), "{e}");
}

#[test]
fn unknown_manifest_media_types_are_named() {
    let stub = StubServer::start(|_| {
        Reply::new(200, r#"{"schemaVersion":1,"fsLayers":[]}"#)
            .header("Content-Type", DOCKER_MANIFEST_SCHEMA1_SIGNED)
    });
    let c = client(&stub.host(), None);
    let e = c.get_manifest("a/b", "latest").unwrap_err();
    assert!(
        e.to_string().contains(&format!(
            "unsupported manifest media type {DOCKER_MANIFEST_SCHEMA1_SIGNED:?}"
        )),
        "{e}"
    );
}

/// A registry with Docker Hub's token flow: `/token` issues bearer tokens
/// (checking Basic credentials if `user` is set); the registry accepts only
/// live tokens and can revoke them all.
struct TokenRegistry {
    stub: StubServer,
    token_requests: Arc<Mutex<Vec<Request>>>,
    revoked_before: Arc<AtomicUsize>,
}

fn token_registry(user: Option<(&'static str, &'static str)>) -> TokenRegistry {
    let token_requests = Arc::new(Mutex::new(Vec::<Request>::new()));
    let revoked_before = Arc::new(AtomicUsize::new(0));
    let issued = Arc::new(AtomicUsize::new(0));
    let port = Arc::new(Mutex::new(String::new()));
    let (tr, rb, p) = (token_requests.clone(), revoked_before.clone(), port.clone());
    let manifest = empty_manifest(DOCKER_MANIFEST);
    let stub = StubServer::start(move |req: &Request| {
        if req.path() == "/token" {
            tr.lock().unwrap().push(req.clone());
            if let Some((u, pw)) = user {
                let want = format!("Basic {}", base64_encode(format!("{u}:{pw}").as_bytes()));
                if req.header("authorization") != Some(want.as_str()) {
                    return Reply::new(401, r#"{"details":"incorrect username or password"}"#);
                }
            }
            let n = issued.fetch_add(1, Ordering::SeqCst) + 1;
            return Reply::new(200, format!(r#"{{"token":"tok-{n}","expires_in":300}}"#));
        }
        let valid = req
            .header("authorization")
            .and_then(|a| a.strip_prefix("Bearer tok-"))
            .and_then(|n| n.parse::<usize>().ok())
            .is_some_and(|n| n > rb.load(Ordering::SeqCst));
        if !valid {
            let realm = format!("http://{}/token", p.lock().unwrap());
            return Reply::new(401, r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#)
                .header(
                    "WWW-Authenticate",
                    format!(r#"Bearer realm="{realm}",service="stub-registry",scope="repository:lib/app:pull""#),
                );
        }
        if req.path() == "/v2/lib/app/manifests/latest" {
            Reply::new(200, manifest.to_vec()).header("Content-Type", DOCKER_MANIFEST)
        } else {
            Reply::new(
                404,
                r#"{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry"}]}"#,
            )
        }
    });
    *port.lock().unwrap() = stub.host();
    TokenRegistry {
        stub,
        token_requests,
        revoked_before,
    }
}

fn base64_encode(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(data)
}

#[test]
fn bearer_tokens_are_fetched_cached_and_refreshed() {
    let reg = token_registry(None);
    let c = client(&reg.stub.host(), None);
    let m = c.get_manifest("lib/app", "latest").unwrap();
    assert_eq!(m.media_type, DOCKER_MANIFEST);
    c.get_manifest("lib/app", "latest").unwrap();
    {
        let reqs = reg.token_requests.lock().unwrap();
        assert_eq!(reqs.len(), 1, "the token is reused for the same scope");
        assert_eq!(
            reqs[0].target,
            "/token?service=stub-registry&scope=repository%3Alib%2Fapp%3Apull"
        );
        assert_eq!(reqs[0].header("authorization"), None, "anonymous token");
    }
    // The registry stops accepting the token: the client gets a new one.
    reg.revoked_before.store(1, Ordering::SeqCst);
    c.get_manifest("lib/app", "latest").unwrap();
    assert_eq!(reg.token_requests.lock().unwrap().len(), 2);

    // A repository the token does not open: docker's "not found or access
    // denied", with the hint to log in.
    let e = c.get_manifest("lib/other", "latest").unwrap_err();
    assert!(matches!(e, RegistryError::RepositoryNotFound { .. }), "{e}");
}

#[test]
fn bearer_token_server_checks_credentials() {
    let reg = token_registry(Some(("me", "pw")));
    let good = client(&reg.stub.host(), Some(("me", "pw")));
    good.get_manifest("lib/app", "latest").unwrap();
    let wrong = client(&reg.stub.host(), Some(("me", "bad")));
    let e = wrong.get_manifest("lib/app", "latest").unwrap_err();
    assert!(matches!(e, RegistryError::Unauthorized { .. }), "{e}");
    assert!(
        e.to_string().contains("rejected the credentials of me"),
        "{e}"
    );
    let anon = client(&reg.stub.host(), None);
    let e = anon.get_manifest("lib/app", "latest").unwrap_err();
    assert!(e.to_string().contains("refused an anonymous token"), "{e}");
}

#[test]
fn too_many_requests_is_retried() {
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let stub = StubServer::start(move |_| {
        if h.fetch_add(1, Ordering::SeqCst) == 0 {
            Reply::new(429, "slow down").header("Retry-After", "0")
        } else {
            Reply::new(200, "{}")
        }
    });
    let c = client(&stub.host(), None);
    c.ping().unwrap();
    assert_eq!(hits.load(Ordering::SeqCst), 2);
}

#[test]
fn a_manifest_cut_short_is_fetched_again_then_reported() {
    let manifest = empty_manifest(OCI_MANIFEST);
    let hits = Arc::new(AtomicUsize::new(0));
    let (h, always_cut) = (hits.clone(), Arc::new(AtomicUsize::new(0)));
    let cut = always_cut.clone();
    let stub = StubServer::start(move |_| {
        let n = h.fetch_add(1, Ordering::SeqCst);
        let mut r = Reply::new(200, manifest.to_vec()).header("Content-Type", OCI_MANIFEST);
        if n == 0 || cut.load(Ordering::SeqCst) == 1 {
            r.body.truncate(20);
            r.declared_len = Some(manifest.len());
        }
        r
    });
    let c = client(&stub.host(), None);
    let m = c.get_manifest("a/b", "v1").unwrap();
    assert_eq!(m.bytes, manifest);
    assert_eq!(hits.load(Ordering::SeqCst), 2);

    always_cut.store(1, Ordering::SeqCst);
    let e = c.get_manifest("a/b", "v1").unwrap_err();
    assert!(
        e.to_string()
            .contains("closed in the middle of manifest a/b:v1"),
        "{e}"
    );
    assert!(e.to_string().contains("(tried 3 times)"), "{e}");
}

/// A registry that accepts the connection and never answers: given up
/// once the stall timeout has passed, not retried `attempts` times.
#[test]
fn a_registry_that_never_answers_is_given_up_after_the_stall_timeout() {
    use kiln::image::registry::{ClientOptions, RetryPolicy};
    use std::time::Duration;
    let requests = Arc::new(AtomicUsize::new(0));
    let counted = requests.clone();
    let stub = StubServer::start(move |_| {
        counted.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(Duration::from_secs(60));
        Reply::new(500, "")
    });
    let options = ClientOptions {
        retry: RetryPolicy {
            attempts: 5,
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(50),
            stall_timeout: Duration::from_secs(1),
        },
        ..ClientOptions::default()
    };
    let c = RegistryClient::new(&stub.host(), &options).unwrap();
    let err = c.get_manifest("kiln/stalled", "latest").unwrap_err();
    assert!(matches!(err, RegistryError::Stalled { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains(&format!(
            "registry {} stalled: nothing received for 1s",
            stub.host()
        )) && msg.contains("/v2/kiln/stalled/manifests/latest"),
        "{msg}"
    );
    assert_eq!(requests.load(Ordering::SeqCst), 1);
}
