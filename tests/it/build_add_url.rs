//! `ADD <url>` is re-checked on every build and its content is part of the
//! cache key (BuildKit's HTTP source): a changed resource makes the ADD
//! and everything after it run again, an unchanged one costs a `304` and
//! stays CACHED, and `--checksum` of a stored copy needs no request.
//!
//! The resource is served by a stub on 127.0.0.1 whose body can change
//! between builds and which honours `If-None-Match` like a real server.
//! Whether a RUN executed is told by a line it appends to a cache mount.

use crate::support;

use std::sync::{Arc, Mutex};

use support::http_stub::{Reply, StubServer};
use support::kiln::{step_states, Kiln};

/// What the stub serves at `/f`, and what it was asked.
#[derive(Default)]
struct Resource {
    body: Vec<u8>,
    /// Sent as `ETag`; a request whose `If-None-Match` names it gets 304.
    etag: Option<String>,
    /// Each request's `If-None-Match` (if any) and the status answered.
    log: Vec<(Option<String>, u16)>,
}

struct Origin {
    server: StubServer,
    resource: Arc<Mutex<Resource>>,
}

impl Origin {
    fn start(body: &str, etag: Option<&str>) -> Origin {
        let resource = Arc::new(Mutex::new(Resource {
            body: body.as_bytes().to_vec(),
            etag: etag.map(str::to_string),
            log: Vec::new(),
        }));
        let shared = resource.clone();
        let server = StubServer::start(move |req| {
            let mut r = shared.lock().unwrap();
            let asked = req.header("if-none-match").map(str::to_string);
            let reply = match &r.etag {
                Some(etag) if asked.as_deref() == Some(etag.as_str()) => Reply::new(304, ""),
                _ => Reply::new(200, r.body.clone()),
            };
            let reply = match &r.etag {
                Some(etag) => reply.header("ETag", etag.clone()),
                None => reply,
            };
            r.log.push((asked, reply.status));
            reply
        });
        Origin { server, resource }
    }

    fn url(&self) -> String {
        format!("http://{}/f", self.server.host())
    }

    fn serve(&self, body: &str, etag: Option<&str>) {
        let mut r = self.resource.lock().unwrap();
        r.body = body.as_bytes().to_vec();
        r.etag = etag.map(str::to_string);
    }

    /// The requests since the last call.
    fn take_log(&self) -> Vec<(Option<String>, u16)> {
        std::mem::take(&mut self.resource.lock().unwrap().log)
    }
}

/// An ADD of the stub's file and a RUN that logs what it saw.
fn dockerfile(origin: &Origin, flags: &str) -> String {
    format!(
        "FROM busybox\nADD {flags}{} /f\n\
         RUN --mount=type=cache,id=log,target=/log cat /f >> /log/runs\n",
        origin.url()
    )
}

fn is_add(step: &str) -> bool {
    step.contains("] ADD ")
}

#[test]
fn changed_content_reruns_the_add_and_what_follows() {
    let k = Kiln::with_busybox_image();
    let origin = Origin::start("one\n", Some("\"1\""));
    let ctx = k.context(&[]);
    let df = dockerfile(&origin, "");
    k.build_ok(&ctx, &df, "url:1", &[]);
    assert_eq!(k.sh("url:1", "cat /f"), "one\n");
    assert_eq!(k.cache_file("log", "runs"), ["one"]);

    origin.serve("two\n", Some("\"2\""));
    let progress = k.build_ok(&ctx, &df, "url:2", &[]);
    let (cached, done) = step_states(&progress);
    assert!(!cached.iter().any(|s| is_add(s)), "{progress}");
    assert!(done.iter().any(|s| is_add(s)), "{progress}");
    assert_eq!(k.sh("url:2", "cat /f"), "two\n");
    assert_eq!(k.cache_file("log", "runs"), ["one", "two"]);
    assert_eq!(
        origin.take_log(),
        [(None, 200), (Some("\"1\"".into()), 200)],
        "the second build asked about the stored copy and got the new one"
    );
}

#[test]
fn unchanged_content_is_a_304_and_stays_cached() {
    let k = Kiln::with_busybox_image();
    let origin = Origin::start("same\n", Some("\"s\""));
    let ctx = k.context(&[]);
    let df = dockerfile(&origin, "");
    k.build_ok(&ctx, &df, "url:1", &[]);
    let progress = k.build_ok(&ctx, &df, "url:2", &[]);
    let (cached, _) = step_states(&progress);
    assert!(cached.iter().any(|s| is_add(s)), "{progress}");
    assert!(cached.iter().any(|s| s.contains("] RUN ")), "{progress}");
    assert_eq!(k.cache_file("log", "runs"), ["same"]);
    assert_eq!(
        origin.take_log(),
        [(None, 200), (Some("\"s\"".into()), 304)],
        "one download, then a conditional request answered 304"
    );
    assert_eq!(
        k.config_blob("url:1")["rootfs"],
        k.config_blob("url:2")["rootfs"],
        "the same layers"
    );

    // Without an ETag the body is downloaded again, and the same bytes
    // keep the key.
    origin.serve("same\n", None);
    let progress = k.build_ok(&ctx, &df, "url:3", &[]);
    let (cached, _) = step_states(&progress);
    assert!(cached.iter().any(|s| is_add(s)), "{progress}");
    assert_eq!(origin.take_log(), [(Some("\"s\"".into()), 200)]);
}

#[test]
fn a_checksum_hit_needs_no_download_and_a_wrong_one_names_the_line() {
    let k = Kiln::with_busybox_image();
    let origin = Origin::start("pinned\n", None);
    let ctx = k.context(&[]);
    let sum = "sha256:51e6ffa5e1bd6f9f2b4d1e0ae4e28c1ab8ac9a6e9c4cb1d83fce8a3de95c6b1b";
    let right = format!(
        "sha256:{}",
        hex_sha256(b"pinned\n") // computed, so the fixture cannot drift
    );
    assert_ne!(right, sum);
    let df = dockerfile(&origin, &format!("--checksum={right} "));
    k.build_ok(&ctx, &df, "sum:1", &[]);
    assert_eq!(origin.take_log(), [(None, 200)]);
    assert_eq!(k.sh("sum:1", "cat /f"), "pinned\n");

    let progress = k.build_ok(&ctx, &df, "sum:2", &[]);
    let (cached, _) = step_states(&progress);
    assert!(cached.iter().any(|s| is_add(s)), "{progress}");
    assert_eq!(origin.take_log(), [], "the stored copy has the checksum");

    std::fs::write(
        ctx.join("Dockerfile"),
        dockerfile(&origin, &format!("--checksum={sum} ")),
    )
    .unwrap();
    let err = k.build(&ctx, &[]).fails().to_string();
    assert!(
        err.contains("Dockerfile:2:")
            && err.contains(&format!(
                "digest mismatch for {}: {right} (expected: {sum})",
                origin.url()
            )),
        "{err}"
    );
}

fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}
