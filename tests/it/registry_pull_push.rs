//! `kiln pull` / `kiln push` against a real registry, cross-checked with
//! skopeo, plus faults: auth, a killed pull, a failing registry.

use crate::support;

use kiln::cache::Store;
use kiln::image::oci::media;
use support::kiln::Kiln;
use support::oci_layout::{random_bytes, tar_of, write_layout, LayerSpec};
use support::registry::TestRegistry;
use support::tools;

/// `kiln import` of a small rootfs (random content per seed) as `name`.
fn import(k: &Kiln, name: &str, seed: u64) {
    let files = vec![
        ("etc/hostname".to_string(), b"kiln\n".to_vec()),
        ("data.bin".to_string(), random_bytes(seed, 300_000)),
    ];
    let tar = k.path(&format!("rootfs-{seed}.tar"));
    std::fs::write(&tar, tar_of(&files)).unwrap();
    k.ok(&["import", tar.to_str().unwrap(), name]);
}

#[test]
fn skopeo_pushed_image_pulls_with_the_same_layer_digests() {
    let reg = TestRegistry::start();
    let k = Kiln::new();
    let layout = write_layout(
        &k.path("oci"),
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
    tools::run(
        "skopeo",
        &[
            "copy",
            "--dest-tls-verify=false",
            &format!("oci:{}:v1", k.path("oci").display()),
            &format!("docker://{name}"),
        ],
    );
    // skopeo gzips the uncompressed layer on the way, so the registry's
    // manifest is what kiln must reproduce.
    let inspect = tools::run_json(
        "skopeo",
        &["inspect", "--tls-verify=false", &format!("docker://{name}")],
    );
    let registry_digest = inspect["Digest"].as_str().unwrap().to_string();
    let registry_layers: Vec<String> = inspect["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_string())
        .collect();
    assert_eq!(registry_layers[0], layout.layer_digests[0]);
    let out = k.ok(&["pull", &name]);
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
    let store = Store::open(&k.root()).unwrap();
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

    let again = k.ok(&["pull", &name]);
    assert!(
        again.contains(&format!("Status: Image is up to date for {name}")),
        "{again}"
    );
}

#[test]
fn imported_image_pushes_and_skopeo_reads_it() {
    let reg = TestRegistry::start();
    let k = Kiln::new();
    let name = format!("{}/kiln/imported:v1", reg.host());
    import(&k, &name, 2);

    let out = k.ok(&["push", &name]);
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

    let inspect = tools::run_json(
        "skopeo",
        &["inspect", "--tls-verify=false", &format!("docker://{name}")],
    );
    assert_eq!(inspect["Digest"], digest);
    assert_eq!(inspect["Layers"].as_array().unwrap().len(), 1);
    let raw = tools::run_json(
        "skopeo",
        &[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{name}"),
        ],
    );
    // kiln keeps uncompressed tars; a push gzips them, like docker.
    assert_eq!(raw["layers"][0]["mediaType"], media::OCI_LAYER_GZIP);
    let copy = k.path("copy");
    tools::run(
        "skopeo",
        &[
            "copy",
            "--src-tls-verify=false",
            &format!("docker://{name}"),
            &format!("oci:{}:v1", copy.display()),
        ],
    );
    assert!(copy.join("index.json").is_file());

    // Pushing again finds everything there.
    let again = k.ok(&["push", &name]);
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
    let k = Kiln::new();
    let first = format!("{}/kiln/one:v1", reg.host());
    import(&k, &first, 3);
    k.ok(&["push", "--compression", "zstd", &first]);
    let raw = tools::run_json(
        "skopeo",
        &[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{first}"),
        ],
    );
    assert_eq!(raw["layers"][0]["mediaType"], media::OCI_LAYER_ZSTD);

    // The same image under another repository of the same registry: the
    // layer is mounted, not uploaded.
    let second = format!("{}/kiln/two:v1", reg.host());
    k.ok(&["tag", &first, &second]);
    let out = k.ok(&["push", "--compression", "zstd", &second]);
    assert!(out.contains(": Mounted from kiln/one\n"), "{out}");
    // And it pulls back into a fresh store.
    let fresh = Kiln::new();
    fresh.ok(&["pull", &second]);
    assert_eq!(fresh.images_listed(), [second]);
}

#[test]
fn auth_registry_works_after_login_and_not_before() {
    let reg = TestRegistry::with_htpasswd("kiln", "s3cret");
    let k = Kiln::new();
    write_layout(
        &k.path("oci"),
        "v1",
        &[LayerSpec {
            files: vec![("a".into(), b"a".to_vec())],
            gzip: true,
        }],
    );
    let name = format!("{}/kiln/private:v1", reg.host());
    tools::run(
        "skopeo",
        &[
            "copy",
            "--dest-tls-verify=false",
            "--dest-creds=kiln:s3cret",
            &format!("oci:{}:v1", k.path("oci").display()),
            &format!("docker://{name}"),
        ],
    );
    let out = k.kiln(&["pull", &name]);
    let err = out.fails_with(1);
    assert!(
        err.contains(&format!("not logged in: run `kiln login {}`", reg.host())),
        "{err}"
    );
    assert!(k.images_listed().is_empty());

    k.ok(&["login", "-u", "kiln", "-p", "s3cret", &reg.host()]);
    k.ok(&["pull", &name]);
    assert_eq!(k.images_listed(), std::slice::from_ref(&name));
    let pushed = format!("{}/kiln/private2:v1", reg.host());
    k.ok(&["tag", &name, &pushed]);
    k.ok(&["push", &pushed]);
    k.ok(&["logout", &reg.host()]);
    let out = k.kiln(&["push", &pushed]);
    let err = out.fails_with(1);
    assert!(err.contains("kiln login"), "{err}");
}
