//! `--build-context NAME=VALUE` (buildx's flag, BuildKit's named
//! contexts) and a tarball URL as the main context: a named context
//! replaces a stage or image of its name in `FROM`, `COPY --from` and
//! `RUN --mount=from` (moby/buildkit `dockerfile2llb` `toDispatchState`;
//! `frontend/dockerui/namedcontext.go`), a directory is read with its own
//! `.dockerignore` and never written, and bad values name the flag.

use crate::support;

use std::path::Path;
use std::process::Command;

use support::http_stub::{Reply, StubServer};
use support::kiln::Kiln;

/// Every file under `dir` with its content, sorted: what "never written"
/// compares.
fn tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p.clone());
            }
            let rel = p.strip_prefix(dir).unwrap().display().to_string();
            out.push((rel, std::fs::read(&p).unwrap_or_default()));
        }
    }
    out.sort();
    out
}

#[test]
fn named_directory_serves_from_copy_from_and_run_mounts() {
    let k = Kiln::with_busybox_image();
    let extra = k.context(&[
        ("a", "from extra\n"),
        ("secret", "ignored\n"),
        (".dockerignore", "secret\n"),
    ]);
    let before = tree(&extra);
    let ctx = k.context(&[("a", "from the main context\n")]);
    let named = format!("extra={}", extra.display());
    // `base` names a stage too: the named context replaces it whole (its
    // RUN would fail if it ran).
    let df = "FROM busybox AS base\nRUN false\n\
              FROM busybox\nCOPY --from=extra . /all/\nCOPY a /main-a\n\
              COPY --from=base a /stage-a\n\
              RUN --mount=from=extra,target=/m,rw cat /m/a > /mounted && rm -rf /m/*\n";
    let base = format!("base={}", extra.display());
    k.build_ok(
        &ctx,
        df,
        "named:1",
        &["--build-context", &named, "--build-context", &base],
    );
    let out = k.sh(
        "named:1",
        "cat /all/a /main-a /stage-a /mounted; test -e /all/secret || echo ignored",
    );
    assert_eq!(
        out,
        "from extra\nfrom the main context\nfrom extra\nfrom extra\nignored\n"
    );
    assert_eq!(tree(&extra), before, "a named context was written");

    // FROM a directory: its files are the stage's filesystem.
    let df = "FROM extra AS files\nFROM busybox\nCOPY --from=files /a /from-files\n";
    k.build_ok(&ctx, df, "named:2", &["--build-context", &named]);
    assert_eq!(k.sh("named:2", "cat /from-files"), "from extra\n");
    // The change reruns: the copy keys on the named context's content.
    std::fs::write(extra.join("a"), "changed\n").unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nCOPY --from=extra a /a\n",
    )
    .unwrap();
    k.build(&ctx, &["-t", "named:3", "--build-context", &named])
        .ok();
    assert_eq!(k.sh("named:3", "cat /a"), "changed\n");
}

#[test]
fn named_image_context_replaces_a_base_image_by_its_normalized_name() {
    let k = Kiln::with_busybox_image();
    let ctx = k.context(&[]);
    // There is no alpine in the store and no registry to pull from: only
    // the named context makes this build work.
    let flags = ["--build-context", "alpine=docker-image://busybox"];
    let df = "FROM docker.io/library/alpine:latest\nRUN echo hi > /x\n";
    k.build_ok(&ctx, df, "img:1", &flags);
    assert_eq!(k.sh("img:1", "cat /x"), "hi\n");
    // `COPY --from=alpine` finds the named context as well.
    let df = "FROM busybox\nCOPY --from=alpine /bin/busybox /bb\n";
    k.build_ok(&ctx, df, "img:1b", &flags);
    // docker-image://scratch is BuildKit's empty filesystem.
    k.build_ok(
        &ctx,
        "FROM busybox\nCOPY --from=nothing / /empty/\nRUN ls -A /empty | wc -l > /n\n",
        "img:2",
        &["--build-context", "nothing=docker-image://scratch"],
    );
    assert_eq!(k.sh("img:2", "cat /n").trim(), "0");
}

#[test]
fn oci_layout_context_is_loaded_without_a_name() {
    let k = Kiln::with_busybox_image();
    let tar = k.path("layout.tar");
    k.ok(&[
        "save",
        "--format",
        "oci",
        "-o",
        tar.to_str().unwrap(),
        "busybox",
    ]);
    let layout = k.path("layout");
    std::fs::create_dir_all(&layout).unwrap();
    let status = Command::new("tar")
        .args(["-xf", tar.to_str().unwrap(), "-C", layout.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(status.success());
    let before = tree(&layout);
    // Another store, with no image at all: the layout is the only source.
    let other = Kiln::new();
    let ctx = other.context(&[]);
    let value = format!("base=oci-layout://{}:latest", layout.display());
    other.build_ok(
        &ctx,
        "FROM base\nRUN echo from-layout > /x\n",
        "fromlayout:1",
        &["--build-context", &value],
    );
    assert_eq!(other.sh("fromlayout:1", "cat /x"), "from-layout\n");
    assert_eq!(tree(&layout), before, "the layout was written");
    // Known only by its digest, as after `pull base@sha256:…`: no tag.
    let listed = other.images_listed();
    assert_eq!(listed, ["base:<none>", "fromlayout:1"]);
    let err = other
        .build(
            &ctx,
            &[
                "--build-context",
                &format!("base=oci-layout://{}:nope", layout.display()),
            ],
        )
        .fails()
        .to_string();
    assert!(
        err.contains("tag \"nope\": index.json has no such entry"),
        "{err}"
    );
}

#[test]
fn tarball_url_is_the_context_and_a_named_url_is_one_file() {
    let k = Kiln::with_busybox_image();
    let src = k.context(&[
        (
            "Dockerfile",
            "FROM busybox\nCOPY f /f\nCOPY --from=dl context /dl\n",
        ),
        ("f", "from the tarball\n"),
    ]);
    let tarball = k.path("ctx.tar.gz");
    let status = Command::new("tar")
        .args([
            "-czf",
            tarball.to_str().unwrap(),
            "-C",
            src.to_str().unwrap(),
            ".",
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let body = std::fs::read(&tarball).unwrap();
    let server = StubServer::start(move |req| match req.path() {
        "/ctx.tar.gz" => Reply::new(200, body.clone()),
        "/file" => Reply::new(200, "downloaded\n"),
        _ => Reply::new(404, ""),
    });
    let host = server.host();
    k.kiln(&[
        "build",
        "-t",
        "url:1",
        "--build-context",
        &format!("dl=http://{host}/file"),
        &format!("http://{host}/ctx.tar.gz"),
    ])
    .ok();
    assert_eq!(
        k.sh("url:1", "cat /f /dl"),
        "from the tarball\ndownloaded\n"
    );
    let err = k
        .kiln(&["build", &format!("http://{host}/missing.tar")])
        .fails()
        .to_string();
    assert!(
        err.contains("unable to prepare context") && err.contains("404"),
        "{err}"
    );
}

#[test]
fn bad_build_context_values_name_the_flag() {
    let k = Kiln::with_busybox_image();
    let ctx = k.context(&[("Dockerfile", "FROM busybox\n")]);
    for (value, expected) in [
        (
            "novalue",
            "--build-context \"novalue\": expected NAME=VALUE",
        ),
        (
            "x=/nonexistent/kiln-ctx",
            "--build-context x: /nonexistent/kiln-ctx: not a directory",
        ),
        (
            "x=oci-layout:///nonexistent/kiln-layout",
            "/nonexistent/kiln-layout: not an OCI layout directory",
        ),
        (
            "x=ftp://h/f",
            "--build-context x: unsupported context source \"ftp://\"",
        ),
        ("Bad=.", "invalid context name Bad"),
    ] {
        let err = k
            .build(&ctx, &["--build-context", value])
            .fails()
            .to_string();
        assert!(err.contains(expected), "{value}: {err}");
    }
    let dir = k.context(&[]);
    let twice = format!("x={}", dir.display());
    let err = k
        .build(
            &ctx,
            &["--build-context", &twice, "--build-context", &twice],
        )
        .fails()
        .to_string();
    assert!(err.contains("--build-context x given twice"), "{err}");
}
