//! What a CI job asks of `kiln build`: `--push`, `-o type=image,push=true`
//! and `-o type=registry` push the result to a real registry;
//! `--metadata-file` writes buildx's keys, matching what was pushed; an
//! unknown `-o` key or type is an error, never ignored.

use crate::support;

use support::kiln::Kiln;
use support::registry::TestRegistry;
use support::tools;

const DOCKERFILE: &str = "FROM busybox\nRUN echo pushed > /built\n";

/// `skopeo inspect` of `name` on the test registry.
fn skopeo_inspect(name: &str) -> serde_json::Value {
    tools::run_json(
        "skopeo",
        &["inspect", "--tls-verify=false", &format!("docker://{name}")],
    )
}

fn metadata(path: &std::path::Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).expect("--metadata-file written");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("metadata is not JSON ({e}): {text}"))
}

/// Regression: `--push` did not exist, and `push=true` was accepted and
/// silently ignored.
#[test]
fn push_flag_pushes_and_metadata_names_the_pushed_manifest() {
    let reg = TestRegistry::start();
    let k = Kiln::with_busybox_image();
    let ctx = k.context(&[]);
    let name = format!("{}/ci/app:v1", reg.host());
    let meta = k.path("meta.json");
    k.build_ok(
        &ctx,
        DOCKERFILE,
        &name,
        &["--push", "--metadata-file", meta.to_str().unwrap()],
    );
    let id = k.inspect(&name, "{{.Id}}");
    let inspect = skopeo_inspect(&name);
    let meta = metadata(&meta);
    assert_eq!(meta["containerimage.digest"], inspect["Digest"], "{meta}");
    assert_eq!(meta["containerimage.config.digest"], id.as_str(), "{meta}");
    assert_eq!(meta["image.name"], name.as_str(), "{meta}");
    assert_eq!(
        meta["containerimage.descriptor"]["digest"], inspect["Digest"],
        "{meta}"
    );
    let raw = tools::run(
        "skopeo",
        &[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{name}"),
        ],
    );
    assert_eq!(
        meta["containerimage.descriptor"]["size"],
        raw.len() as u64,
        "{meta}"
    );

    // Another store pulls the same image (same config, so the same ID).
    let other = Kiln::new();
    other.ok(&["pull", &name]);
    assert_eq!(other.inspect(&name, "{{.Id}}"), id);
}

#[test]
fn output_type_registry_pushes_its_name() {
    let reg = TestRegistry::start();
    let k = Kiln::with_busybox_image();
    let ctx = k.context(&[("Dockerfile", DOCKERFILE)]);
    let name = format!("{}/ci/registry:v2", reg.host());
    let meta = k.path("meta.json");
    let out = format!("type=registry,name={name}");
    k.build(
        &ctx,
        &["-o", &out, "--metadata-file", meta.to_str().unwrap()],
    )
    .ok();
    let inspect = skopeo_inspect(&name);
    assert_eq!(metadata(&meta)["containerimage.digest"], inspect["Digest"]);
    // The name is also the image's name in the store, as with -t.
    assert!(k.images_listed().iter().any(|n| n.contains("ci/registry")));
}

#[test]
fn output_type_image_push_true_pushes_the_tag() {
    let reg = TestRegistry::start();
    let k = Kiln::with_busybox_image();
    let ctx = k.context(&[]);
    let name = format!("{}/ci/image:v3", reg.host());
    k.build_ok(&ctx, DOCKERFILE, &name, &["-o", "type=image,push=true"]);
    let inspect = skopeo_inspect(&name);
    assert_eq!(inspect["Layers"].as_array().unwrap().len(), 2, "{inspect}");
}

#[test]
fn image_output_without_push_pushes_nothing() {
    let reg = TestRegistry::start();
    let k = Kiln::with_busybox_image();
    let ctx = k.context(&[]);
    let name = format!("{}/ci/local:v1", reg.host());
    let meta = k.path("meta.json");
    k.build_ok(
        &ctx,
        DOCKERFILE,
        &name,
        &[
            "-o",
            "type=image",
            "--metadata-file",
            meta.to_str().unwrap(),
        ],
    );
    let out = std::process::Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", &format!("docker://{name}")])
        .output()
        .unwrap();
    assert!(!out.status.success(), "nothing should have been pushed");
    // The metadata names the stored manifest.
    let digest = metadata(&meta)["containerimage.digest"]
        .as_str()
        .unwrap()
        .to_string();
    let hex = digest.strip_prefix("sha256:").unwrap();
    assert!(
        k.root().join("blobs/sha256").join(hex).is_file(),
        "{digest}"
    );
}

#[test]
fn unknown_output_key_is_an_error_naming_the_valid_keys() {
    let k = Kiln::with_busybox_image();
    let ctx = k.context(&[("Dockerfile", DOCKERFILE)]);
    let err = k
        .build(&ctx, &["-t", "x", "-o", "type=image,psuh=true"])
        .fails()
        .to_string();
    assert!(err.contains("\"psuh\""), "{err}");
    assert!(err.contains("name, push"), "{err}");
    let err = k.build(&ctx, &["-o", "type=s3,dest=x"]).fails().to_string();
    assert!(err.contains("\"s3\"") && err.contains("registry"), "{err}");
    // Nothing was built.
    assert_eq!(k.images_listed(), vec!["busybox:latest".to_string()]);
}

#[test]
fn push_without_a_name_is_an_error_before_building() {
    let k = Kiln::with_busybox_image();
    let ctx = k.context(&[("Dockerfile", "FROM busybox\nRUN false\n")]);
    let err = k.build(&ctx, &["--push"]).fails().to_string();
    assert!(err.contains("tag is needed when pushing"), "{err}");
}
