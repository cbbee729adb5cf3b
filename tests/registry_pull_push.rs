//! `kiln pull` / `kiln push` against a real registry, cross-checked with
//! skopeo, plus faults: auth, a killed pull, a failing registry.

mod support;

use kiln::cache::Store;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use support::oci_layout::{random_bytes, tar_of, write_layout, LayerSpec};
use support::registry::TestRegistry;

fn kiln(root: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg("--root")
        .arg(root)
        .args(args)
        .env("DOCKER_CONFIG", root.join("no-docker-config"))
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "kiln failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn failed(out: Output) -> String {
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    String::from_utf8(out.stderr).unwrap()
}

fn skopeo(args: &[&str]) -> String {
    let out = Command::new("skopeo").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "skopeo {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The `REPOSITORY:TAG` rows `kiln images` prints.
fn listed(root: &Path) -> Vec<String> {
    let out = kiln(root, &["images"]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    assert!(
        lines.next().unwrap_or("").starts_with("REPOSITORY"),
        "{text}"
    );
    let mut names: Vec<String> = lines
        .map(|l| {
            let mut cols = l.split_whitespace();
            format!("{}:{}", cols.next().unwrap(), cols.next().unwrap())
        })
        .collect();
    names.sort();
    names
}

/// `kiln import` of a small rootfs (random content per seed) as `name`.
fn import(root: &Path, name: &str, seed: u64) {
    let files = vec![
        ("etc/hostname".to_string(), b"kiln\n".to_vec()),
        ("data.bin".to_string(), random_bytes(seed, 300_000)),
    ];
    let tar = root.with_extension(format!("rootfs-{seed}.tar"));
    std::fs::write(&tar, tar_of(&files)).unwrap();
    ok(kiln(root, &["import", tar.to_str().unwrap(), name]));
}

fn tag(root: &Path, from: &str, to: &str) {
    ok(kiln(root, &["tag", from, to]));
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap()
}

#[test]
fn skopeo_pushed_image_pulls_with_the_same_layer_digests() {
    let reg = TestRegistry::start();
    let work = tempfile::tempdir().unwrap();
    let layout = write_layout(
        &work.path().join("oci"),
        "v1",
        &[
            LayerSpec {
                files: vec![("a.txt".into(), b"hello".to_vec())],
                gzip: true,
            },
            LayerSpec {
                files: vec![("b.bin".into(), random_bytes(1, 100_000))],
                gzip: false,
            },
        ],
    );
    let name = format!("{}/kiln/from-skopeo:v1", reg.host());
    skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        &format!("oci:{}:v1", work.path().join("oci").display()),
        &format!("docker://{name}"),
    ]);
    // skopeo gzips the uncompressed layer on the way, so the registry's
    // manifest is what kiln must reproduce.
    let inspect = json(&skopeo(&[
        "inspect",
        "--tls-verify=false",
        &format!("docker://{name}"),
    ]));
    let registry_digest = inspect["Digest"].as_str().unwrap().to_string();
    let registry_layers: Vec<String> = inspect["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_string())
        .collect();
    assert_eq!(registry_layers[0], layout.layer_digests[0]);
    let root = work.path().join("root");
    let out = ok(kiln(&root, &["pull", &name]));
    assert!(
        out.starts_with("v1: Pulling from kiln/from-skopeo\n"),
        "{out}"
    );
    assert!(
        out.contains(&format!("\nDigest: {registry_digest}\n")),
        "{out}"
    );
    assert!(
        out.ends_with(&format!(
            "Status: Downloaded newer image for {name}\n{name}\n"
        )),
        "{out}"
    );
    let store = Store::open(&root).unwrap();
    let image = store.image(&name).unwrap();
    let got: Vec<String> = image
        .manifest
        .layers
        .iter()
        .map(|l| l.digest.to_string())
        .collect();
    assert_eq!(got, registry_layers);
    assert_eq!(image.manifest_digest.to_string(), registry_digest);
    drop(store);

    let again = ok(kiln(&root, &["pull", &name]));
    assert!(
        again.contains(&format!("Status: Image is up to date for {name}")),
        "{again}"
    );
}

#[test]
fn imported_image_pushes_and_skopeo_reads_it() {
    let reg = TestRegistry::start();
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("root");
    let name = format!("{}/kiln/imported:v1", reg.host());
    import(&root, &name, 2);

    let out = ok(kiln(&root, &["push", &name]));
    assert!(
        out.starts_with(&format!(
            "The push refers to repository [{}/kiln/imported]\n",
            reg.host()
        )),
        "{out}"
    );
    assert!(out.contains(": Pushed\n"), "{out}");
    let digest_line = out.lines().last().unwrap();
    assert!(digest_line.starts_with("v1: digest: sha256:"), "{out}");
    let digest = digest_line.split_whitespace().nth(2).unwrap();

    let inspect = json(&skopeo(&[
        "inspect",
        "--tls-verify=false",
        &format!("docker://{name}"),
    ]));
    assert_eq!(inspect["Digest"], digest);
    assert_eq!(inspect["Layers"].as_array().unwrap().len(), 1);
    let raw = json(&skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{name}"),
    ]));
    // kiln keeps uncompressed tars; a push gzips them, like docker.
    assert_eq!(
        raw["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    let copy = work.path().join("copy");
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{name}"),
        &format!("oci:{}:v1", copy.display()),
    ]);
    assert!(copy.join("index.json").is_file());

    // Pushing again finds everything there.
    let again = ok(kiln(&root, &["push", &name]));
    assert!(again.contains(": Layer already exists\n"), "{again}");
    assert!(
        again.ends_with(&format!(
            "v1: digest: {digest} size: {}\n",
            digest_line.split_whitespace().last().unwrap()
        )),
        "{again}"
    );
}

#[test]
fn push_recompresses_with_zstd_and_mounts_across_repositories() {
    let reg = TestRegistry::start();
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("root");
    let first = format!("{}/kiln/one:v1", reg.host());
    import(&root, &first, 3);
    ok(kiln(&root, &["push", "--compression", "zstd", &first]));
    let raw = json(&skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{first}"),
    ]));
    assert_eq!(
        raw["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+zstd"
    );

    // The same image under another repository of the same registry: the
    // layer is mounted, not uploaded.
    let second = format!("{}/kiln/two:v1", reg.host());
    tag(&root, &first, &second);
    let out = ok(kiln(&root, &["push", "--compression", "zstd", &second]));
    assert!(out.contains(": Mounted from kiln/one\n"), "{out}");
    // And it pulls back into a fresh store.
    let fresh = work.path().join("fresh");
    ok(kiln(&fresh, &["pull", &second]));
    assert_eq!(listed(&fresh), [second]);
}

#[test]
fn auth_registry_works_after_login_and_not_before() {
    let reg = TestRegistry::with_htpasswd("kiln", "s3cret");
    let work = tempfile::tempdir().unwrap();
    write_layout(
        &work.path().join("oci"),
        "v1",
        &[LayerSpec {
            files: vec![("a".into(), b"a".to_vec())],
            gzip: true,
        }],
    );
    let name = format!("{}/kiln/private:v1", reg.host());
    skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds=kiln:s3cret",
        &format!("oci:{}:v1", work.path().join("oci").display()),
        &format!("docker://{name}"),
    ]);
    let root = work.path().join("root");
    let err = failed(kiln(&root, &["pull", &name]));
    assert!(
        err.contains(&format!("not logged in: run `kiln login {}`", reg.host())),
        "{err}"
    );
    assert!(listed(&root).is_empty());

    ok(kiln(
        &root,
        &["login", "-u", "kiln", "-p", "s3cret", &reg.host()],
    ));
    ok(kiln(&root, &["pull", &name]));
    assert_eq!(listed(&root), std::slice::from_ref(&name));
    let pushed = format!("{}/kiln/private2:v1", reg.host());
    tag(&root, &name, &pushed);
    ok(kiln(&root, &["push", &pushed]));
    ok(kiln(&root, &["logout", &reg.host()]));
    let err = failed(kiln(&root, &["push", &pushed]));
    assert!(err.contains("kiln login"), "{err}");
}
