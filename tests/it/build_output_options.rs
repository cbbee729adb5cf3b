//! `kiln build -o type=oci|docker|tar` options (issue 14, item 4), with
//! BuildKit's names and defaults (moby/buildkit
//! `exporter/containerimage/opts.go`, `util/compression`,
//! `exporter/oci/export.go`, `exptypes/annotations.go`; docker/buildx
//! `build/opt.go` for stdout), checked from outside kiln: `tar`, `skopeo
//! inspect --raw` and the archive's own `index.json` and blobs.

use crate::support;

use std::path::Path;
use std::process::Stdio;
use support::kiln::{ran, Kiln};
use support::registry::TestRegistry;

const DOCKERFILE: &str = "FROM busybox\nRUN yes | head -c 1000000 > /big\n";

/// A file of an archive, by its name inside.
fn entry(archive: &Path, name: &str) -> Vec<u8> {
    let out = std::process::Command::new("tar")
        .arg("-xOf")
        .arg(archive)
        .arg(name)
        .output()
        .unwrap();
    assert!(out.status.success(), "tar -xOf {archive:?} {name}");
    out.stdout
}

/// The archive's only manifest (from its `index.json`) and that
/// manifest's descriptor there.
fn manifest(archive: &Path) -> (serde_json::Value, serde_json::Value) {
    let index: serde_json::Value = serde_json::from_slice(&entry(archive, "index.json")).unwrap();
    let desc = index["manifests"][0].clone();
    let hex = desc["digest"]
        .as_str()
        .unwrap()
        .strip_prefix("sha256:")
        .unwrap();
    let m = serde_json::from_slice(&entry(archive, &format!("blobs/sha256/{hex}"))).unwrap();
    (m, desc)
}

fn layer_types(m: &serde_json::Value) -> Vec<String> {
    m["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["mediaType"].as_str().unwrap().to_string())
        .collect()
}

/// type=docker writes Docker media types by default and type=oci OCI's;
/// without force-compression a layer already stored compressed keeps its
/// blob (BuildKit's rule), with it every layer is recompressed; zstd,
/// annotations of the manifest and of its descriptor; skopeo reads the
/// result.
#[test]
fn archive_outputs_take_compression_media_types_and_annotations() {
    let k = Kiln::with_busybox_image();
    let ctx = k.context(&[("Dockerfile", DOCKERFILE)]);
    let out = |name: &str| k.path(name);
    let build = |spec: String, extra: &[&str]| {
        let mut flags = vec!["-t", "outs:1", "-o", spec.as_str()];
        flags.extend_from_slice(extra);
        k.build(&ctx, &flags).ok();
    };

    build(format!("type=docker,dest={}", out("d.tar").display()), &[]);
    let (m, desc) = manifest(&out("d.tar"));
    assert_eq!(
        m["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    assert_eq!(desc["mediaType"], m["mediaType"]);
    assert_eq!(
        m["config"]["mediaType"],
        "application/vnd.docker.container.image.v1+json"
    );
    assert_eq!(
        layer_types(&m),
        ["application/vnd.docker.image.rootfs.diff.tar.gzip"; 2]
    );
    // Docker's media types load back (kiln's own load, and skopeo's).
    k.kiln(&["load", "-i", out("d.tar").to_str().unwrap()]).ok();
    support::tools::run_json(
        "skopeo",
        &[
            "inspect",
            &format!("docker-archive:{}", out("d.tar").display()),
        ],
    );

    // The gzip blobs the docker output made are kept in a zstd export ...
    build(
        format!(
            "type=oci,dest={},compression=zstd",
            out("keep.tar").display()
        ),
        &[],
    );
    let (m, _) = manifest(&out("keep.tar"));
    assert_eq!(m["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    assert_eq!(
        layer_types(&m),
        ["application/vnd.oci.image.layer.v1.tar+gzip"; 2]
    );

    // ... unless forced.
    let forced = out("force.tar");
    build(
        format!(
            "type=oci,dest={},compression=zstd,force-compression=true,\
             annotation.org.opencontainers.image.title=kiln,\
             annotation-manifest-descriptor.com.example.d=1",
            forced.display()
        ),
        &["--annotation", "manifest:com.example.m=2"],
    );
    let raw = support::tools::run_json(
        "skopeo",
        &[
            "inspect",
            "--raw",
            &format!("oci-archive:{}", forced.display()),
        ],
    );
    assert_eq!(
        layer_types(&raw),
        ["application/vnd.oci.image.layer.v1.tar+zstd"; 2]
    );
    assert_eq!(raw["annotations"]["org.opencontainers.image.title"], "kiln");
    assert_eq!(raw["annotations"]["com.example.m"], "2");
    let (_, desc) = manifest(&forced);
    assert_eq!(desc["annotations"]["com.example.d"], "1");
    let name = desc["annotations"]["io.containerd.image.name"]
        .as_str()
        .unwrap();
    assert!(name.ends_with("outs:1"), "{desc}");
    let inspected = support::tools::run_json(
        "skopeo",
        &["inspect", &format!("oci-archive:{}", forced.display())],
    );
    assert_eq!(inspected["Layers"].as_array().unwrap().len(), 2);

    build(
        format!(
            "type=oci,dest={},compression=uncompressed,force-compression=true",
            out("plain.tar").display()
        ),
        &[],
    );
    let (m, _) = manifest(&out("plain.tar"));
    assert_eq!(
        layer_types(&m),
        ["application/vnd.oci.image.layer.v1.tar"; 2]
    );
}

/// compression-level reaches the compressor: gzip level 0 stores, so the
/// 1 MB of `yes` the new layer holds is not shrunk as the default level
/// shrinks it.
#[test]
fn compression_level_is_applied_to_new_blobs() {
    let k = Kiln::with_busybox_image();
    let sizes = |level: &str, file: &str| {
        let ctx = k.context(&[(
            "Dockerfile",
            &format!("FROM busybox\nRUN yes | head -c 1000000 > /{file}\n"),
        )]);
        let dest = k.path(&format!("{file}.tar"));
        let spec = format!("type=oci,dest={},compression=gzip{level}", dest.display());
        k.build(&ctx, &["-o", &spec]).ok();
        let (m, _) = manifest(&dest);
        m["layers"][1]["size"].as_u64().unwrap()
    };
    let stored = sizes(",compression-level=0", "zero");
    let default = sizes("", "default");
    assert!(stored > 1_000_000, "{stored}");
    assert!(default < 100_000, "{default}");
}

/// `-o -`, `dest=-` and an oci output without dest write to stdout; two
/// such outputs, `-q` beside one, or a terminal as stdout are refused.
#[test]
fn dest_dash_writes_to_stdout_unless_it_is_a_terminal() {
    let k = Kiln::with_busybox_image();
    let ctx = k.context(&[("Dockerfile", DOCKERFILE)]);
    let to_stdout = |spec: &str| {
        let mut cmd = k.cmd(&["build", "--progress", "plain", "-o", spec]);
        cmd.arg(&ctx);
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let file = k.path("stdout.tar");
        std::fs::write(&file, &out.stdout).unwrap();
        support::tools::run("tar", &["-tf", file.to_str().unwrap()])
    };
    for spec in ["-", "type=tar,dest=-"] {
        let names = to_stdout(spec);
        let names: Vec<&str> = names.lines().collect();
        // BuildKit's tar exporter: the root filesystem, paths relative.
        assert!(
            names.contains(&"big") && names.contains(&"etc/passwd"),
            "{names:?}"
        );
        assert!(!names.contains(&"index.json"), "{names:?}");
    }
    let names = to_stdout("type=oci");
    assert!(names.lines().any(|n| n == "index.json"), "{names}");
    assert!(names.lines().any(|n| n == "oci-layout"), "{names}");

    let ctx_arg = ctx.to_str().unwrap();
    let err = k
        .kiln(&["build", "-o", "-", "-o", "type=oci,dest=-", ctx_arg])
        .fails()
        .to_string();
    assert!(
        err.contains("multiple outputs configured to write to stdout"),
        "{err}"
    );
    let err = k
        .kiln(&["build", "-q", "-o", "-", ctx_arg])
        .fails()
        .to_string();
    assert!(err.contains("-q prints the image ID on stdout"), "{err}");

    let pty = nix::pty::openpty(None, None).unwrap();
    let mut cmd = k.cmd(&["build", "-o", "type=tar,dest=-", ctx_arg]);
    cmd.stdout(Stdio::from(pty.slave)).stderr(Stdio::piped());
    let out = ran(cmd.output().unwrap());
    let err = out.fails();
    assert!(
        err.contains("dest file is required for tar exporter. refusing to write to console"),
        "{err}"
    );
    drop(pty.master);
}

/// Bad option values are usage errors (exit 125) naming the option.
#[test]
fn bad_output_options_are_usage_errors() {
    let k = Kiln::with_busybox_image();
    let ctx = k.context(&[("Dockerfile", "FROM busybox\n")]);
    let dest = k.path("x.tar");
    let oci = |opts: &str| format!("type=oci,dest={}{opts}", dest.display());
    for (flags, expected) in [
        (
            vec!["-o".to_string(), oci(",compression=estargz")],
            "compression=estargz is not supported",
        ),
        (
            vec!["-o".into(), oci(",compression=brotli")],
            "expected uncompressed, gzip or zstd",
        ),
        (
            vec!["-o".into(), oci(",compression-level=10")],
            "out of range for gzip (0-9)",
        ),
        (
            vec!["-o".into(), oci(",oci-mediatypes=yes")],
            "non-bool value \"yes\" specified for oci-mediatypes",
        ),
        (
            vec!["-o".into(), oci(",annotation-index.k=v")],
            "index annotations not supported for single platform export",
        ),
        (
            vec!["-o".into(), oci(""), "--annotation".into(), "k".into()],
            "invalid --annotation \"k\"",
        ),
        (
            vec!["--annotation".into(), "manifest-descriptor:k=v".into()],
            "manifest descriptor annotations are written only by type=oci and type=docker",
        ),
        (
            vec!["-o".into(), "type=image,compression=zstd".into()],
            "compression is not supported for type=image",
        ),
    ] {
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        let err = k.build(&ctx, &flags).fails_with(125).to_string();
        assert!(err.contains(expected), "{flags:?}: {err}");
    }
    assert!(!dest.exists());
}

/// `--annotation` and `-o type=registry,annotation.K=V` reach the pushed
/// manifest (BuildKit's image exporter writes them into the manifest it
/// pushes); the image ID, its config's digest, is the same as without.
#[test]
fn annotations_reach_the_pushed_manifest() {
    let reg = TestRegistry::start();
    let k = Kiln::with_busybox_image();
    let ctx = k.context(&[("Dockerfile", "FROM busybox\nRUN echo annotated > /a\n")]);
    let name = format!("{}/ci/annotated:v1", reg.host());
    let output = format!("type=registry,name={name},annotation.com.example.o=out");
    k.build(
        &ctx,
        &[
            "-o",
            &output,
            "--annotation",
            "org.opencontainers.image.title=kiln",
        ],
    )
    .ok();
    let raw = support::tools::run_json(
        "skopeo",
        &[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{name}"),
        ],
    );
    assert_eq!(
        raw["annotations"]["org.opencontainers.image.title"], "kiln",
        "{raw}"
    );
    assert_eq!(raw["annotations"]["com.example.o"], "out", "{raw}");
    let annotated = k.inspect(&name, "{{.Id}}");
    k.build(&ctx, &["-t", "plain"]).ok();
    assert_eq!(k.inspect("plain", "{{.Id}}"), annotated);
}
