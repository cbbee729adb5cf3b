//! `--provenance`, `--sbom`, `--attest`: BuildKit's attestations. A push
//! carries them as an attestation manifest in an image index (moby/buildkit
//! `docs/attestations/attestation-storage.md`), `-o type=oci` as the same
//! index in the layout, `-o type=local|tar` as `provenance.json` and
//! `sbom.spdx.json` beside the filesystem; a store-only build refuses them
//! as buildx's docker driver does, and bad values are usage errors.

use crate::support;

use support::http_stub::{Reply, StubServer};
use support::kiln::Kiln;
use support::registry::{test_client, TestRegistry};
use support::tools;

/// The Debian status file the image gets: its installed packages must be
/// in the SBOM, its deinstalled one must not.
fn dpkg_status() -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/attest/dpkg/status");
    std::fs::read_to_string(p).unwrap()
}

fn raw(reference: &str) -> serde_json::Value {
    let text = tools::run(
        "skopeo",
        &[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{reference}"),
        ],
    );
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{reference}: not JSON ({e}): {text}"))
}

/// The statement in a pushed blob.
fn blob_json(host: &str, repo: &str, digest: &str) -> serde_json::Value {
    let mut out = Vec::new();
    test_client(host, None)
        .get_blob(repo, &digest.parse().unwrap(), None, &mut out, &mut |_| {})
        .unwrap();
    serde_json::from_slice(&out).unwrap()
}

/// The SBOM's package URLs.
fn purls(sbom: &serde_json::Value) -> Vec<String> {
    sbom["packages"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["externalRefs"].as_array().unwrap().clone())
        .map(|r| r["referenceLocator"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn push_with_max_provenance_and_sbom_attaches_an_attestation_manifest() {
    let reg = TestRegistry::start();
    // The base comes from the registry, so its digest is the registry's.
    let base = format!("{}/attest/base:1", reg.host());
    let seed = Kiln::with_busybox_image();
    seed.ok(&["tag", "busybox:latest", &base]);
    seed.ok(&["push", &base]);
    let base_digest = tools::run_json(
        "skopeo",
        &["inspect", "--tls-verify=false", &format!("docker://{base}")],
    )["Digest"]
        .as_str()
        .unwrap()
        .to_string();

    let k = Kiln::new();
    let secret = k.path("token");
    std::fs::write(&secret, "s3cr3t-value-never-attested").unwrap();
    let ctx = k.context(&[("status", &dpkg_status())]);
    let dockerfile = format!(
        "FROM {base}\nARG VERSION=1\n\
         RUN --mount=type=secret,id=tok test -s /run/secrets/tok && echo v$VERSION > /built\n\
         COPY status /var/lib/dpkg/status\n"
    );
    let name = format!("{}/attest/app:v1", reg.host());
    let meta = k.path("meta.json");
    k.build_ok(
        &ctx,
        &dockerfile,
        &name,
        &[
            "--push",
            "--provenance",
            "mode=max",
            "--sbom",
            "true",
            "--build-arg",
            "VERSION=7",
            "--secret",
            &format!("id=tok,src={}", secret.display()),
            "--metadata-file",
            meta.to_str().unwrap(),
        ],
    );

    // The tag names an index: the image manifest, then its attestation
    // manifest.
    let index = raw(&name);
    assert_eq!(
        index["mediaType"], "application/vnd.oci.image.index.v1+json",
        "{index}"
    );
    let manifests = index["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 2, "{index}");
    let image = &manifests[0];
    assert_eq!(image["platform"]["os"], "linux", "{index}");
    let att = &manifests[1];
    assert_eq!(att["platform"]["os"], "unknown", "{index}");
    assert_eq!(att["platform"]["architecture"], "unknown", "{index}");
    assert_eq!(
        att["annotations"]["vnd.docker.reference.type"],
        "attestation-manifest"
    );
    assert_eq!(
        att["annotations"]["vnd.docker.reference.digest"],
        image["digest"]
    );
    // buildx's metadata names what the tag names: the index.
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&meta).unwrap()).unwrap();
    assert_eq!(
        meta["containerimage.digest"].as_str().unwrap(),
        support::archive::digest_of(
            tools::run(
                "skopeo",
                &[
                    "inspect",
                    "--raw",
                    "--tls-verify=false",
                    &format!("docker://{name}")
                ],
            )
            .as_bytes()
        )
    );
    // The image itself still pulls and runs from another store.
    let other = Kiln::new();
    other.ok(&["pull", &name]);
    assert_eq!(other.sh(&name, "cat /built").trim(), "v7");

    // The attestation manifest: one in-toto layer per predicate.
    let att_manifest = raw(&format!(
        "{}/attest/app@{}",
        reg.host(),
        att["digest"].as_str().unwrap()
    ));
    let layers = att_manifest["layers"].as_array().unwrap();
    let types: Vec<&str> = layers
        .iter()
        .map(|l| {
            assert_eq!(l["mediaType"], "application/vnd.in-toto+json");
            l["annotations"]["in-toto.io/predicate-type"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(
        types,
        [
            "https://slsa.dev/provenance/v0.2",
            "https://spdx.dev/Document"
        ]
    );
    let statements: Vec<serde_json::Value> = layers
        .iter()
        .map(|l| blob_json(&reg.host(), "attest/app", l["digest"].as_str().unwrap()))
        .collect();
    let image_hex = image["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:");
    for st in &statements {
        assert_eq!(st["subject"][0]["digest"]["sha256"], image_hex, "{st}");
        assert_eq!(
            st["subject"][0]["name"],
            format!(
                "pkg:docker/{}/attest/app@v1?platform=linux%2Famd64",
                reg.host()
            ),
            "{st}"
        );
    }

    let prov = &statements[0]["predicate"];
    assert_eq!(prov["buildType"], "https://mobyproject.org/buildkit@v1");
    let materials = prov["materials"].as_array().unwrap();
    let base_hex = base_digest.trim_start_matches("sha256:");
    assert!(
        materials.iter().any(|m| m["digest"]["sha256"] == base_hex
            && m["uri"].as_str().unwrap().contains("/attest/base@1")),
        "base image not among the materials: {prov}"
    );
    let params = &prov["invocation"]["parameters"];
    // mode=max: the build argument and the secret's id, never its value.
    assert_eq!(params["args"]["build-arg:VERSION"], "7", "{prov}");
    assert_eq!(params["secrets"][0]["id"], "tok", "{prov}");
    assert!(prov.get("buildConfig").is_some(), "{prov}");
    let all = statements[0].to_string();
    assert!(
        !all.contains("s3cr3t-value"),
        "a secret value leaked: {all}"
    );

    let sbom = &statements[1]["predicate"];
    assert_eq!(sbom["spdxVersion"], "SPDX-2.3");
    let found = purls(sbom);
    for want in [
        "pkg:deb/debian/base-files@12.4+deb12u5?arch=amd64",
        "pkg:deb/debian/libc6@2.36-9+deb12u4?arch=amd64&upstream=glibc",
        "pkg:deb/debian/bash@5.2.15-2+b7?arch=amd64",
    ] {
        assert!(
            found.iter().any(|p| p == want),
            "{want} missing from {found:?}"
        );
    }
    assert!(!found.iter().any(|p| p.contains("oldpkg")), "{found:?}");
}

#[test]
fn file_outputs_carry_min_provenance_and_sbom() {
    let stub = StubServer::start(|_| Reply::new(200, "downloaded\n"));
    let k = Kiln::with_busybox_image();
    let ctx = k.context(&[("status", &dpkg_status())]);
    let url = format!("http://{}/file.txt", stub.host());
    std::fs::write(
        ctx.join("Dockerfile"),
        format!(
            "FROM busybox\nARG VERSION=1\nRUN echo v$VERSION > /built\n\
             COPY status /var/lib/dpkg/status\nADD {url} /file.txt\n"
        ),
    )
    .unwrap();
    let local = k.path("out");
    let tar = k.path("fs.tar");
    let oci = k.path("image.tar");
    k.build(
        &ctx,
        &[
            "-t",
            "attest/files:v1",
            "--provenance",
            "true",
            "--attest",
            "type=sbom",
            "--build-arg",
            "VERSION=7",
            "-o",
            &format!("type=local,dest={}", local.display()),
            "-o",
            &format!("type=tar,dest={}", tar.display()),
            "-o",
            &format!("type=oci,dest={}", oci.display()),
        ],
    )
    .ok();

    // type=local: the files beside the filesystem, about its files.
    let read = |p: &std::path::Path| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
    };
    let prov = read(&local.join("provenance.json"));
    let sbom = read(&local.join("sbom.spdx.json"));
    assert_eq!(
        std::fs::read_to_string(local.join("built")).unwrap(),
        "v7\n"
    );
    let built = prov["subject"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "built")
        .unwrap_or_else(|| panic!("no subject for /built: {prov}"));
    assert_eq!(
        built["digest"]["sha256"],
        support::archive::digest_of(b"v7\n").trim_start_matches("sha256:"),
        "{prov}"
    );
    // mode=min: no build arguments (and the parameters say so).
    let p = &prov["predicate"];
    assert!(p["invocation"]["parameters"].get("args").is_none(), "{p}");
    assert_eq!(p["metadata"]["completeness"]["parameters"], false, "{p}");
    assert!(p.get("buildConfig").is_none(), "{p}");
    // The download is a material, with the digest of what was read.
    let download = &p["materials"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["uri"] == url.as_str())
        .unwrap_or_else(|| panic!("no material for {url}: {p}"))["digest"]["sha256"];
    assert_eq!(
        download,
        support::archive::digest_of(b"downloaded\n").trim_start_matches("sha256:"),
        "{p}"
    );
    assert!(purls(&sbom["predicate"])
        .iter()
        .any(|u| u.starts_with("pkg:deb/debian/libc6@")));

    // type=tar: the same two files in the tar, which GNU tar reads whole.
    let listing = tools::run("tar", &["-tf", tar.to_str().unwrap()]);
    let names: Vec<&str> = listing.lines().collect();
    assert!(
        names.contains(&"provenance.json") && names.contains(&"sbom.spdx.json"),
        "{listing}"
    );
    assert!(
        names.iter().any(|n| n.trim_start_matches("./") == "built"),
        "{listing}"
    );

    // type=oci: index.json names an index of the image and its
    // attestation manifest; skopeo picks the image, umoci unpacks it, and
    // kiln loads it back.
    let dir = k.path("layout");
    std::fs::create_dir_all(&dir).unwrap();
    tools::run(
        "tar",
        &["-xf", oci.to_str().unwrap(), "-C", dir.to_str().unwrap()],
    );
    let top: serde_json::Value = read(&dir.join("index.json"));
    assert_eq!(
        top["manifests"][0]["mediaType"], "application/vnd.oci.image.index.v1+json",
        "{top}"
    );
    let index_digest = top["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:");
    let index = read(&dir.join("blobs/sha256").join(index_digest));
    assert_eq!(index["manifests"].as_array().unwrap().len(), 2, "{index}");
    assert_eq!(
        index["manifests"][1]["annotations"]["vnd.docker.reference.type"],
        "attestation-manifest"
    );
    let layout = format!("oci:{}:v1", dir.display());
    // skopeo reports the digest the name resolves to (the index) and the
    // config of the linux manifest in it.
    let inspect = tools::run_json("skopeo", &["inspect", &layout]);
    assert_eq!(
        inspect["Digest"], top["manifests"][0]["digest"],
        "{inspect}"
    );
    assert_eq!(inspect["Os"], "linux", "{inspect}");
    assert_eq!(inspect["Layers"].as_array().unwrap().len(), 4, "{inspect}");
    // umoci resolves a tag to every manifest under it ("tag is
    // ambiguous" for any index), so it unpacks skopeo's copy of the
    // platform's image, which the attestation manifest does not follow.
    let single = k.path("single");
    tools::run(
        "skopeo",
        &["copy", &layout, &format!("oci:{}:v1", single.display())],
    );
    let bundle = k.path("bundle");
    tools::run(
        "umoci",
        &[
            "unpack",
            "--rootless",
            "--image",
            &format!("{}:v1", single.display()),
            bundle.to_str().unwrap(),
        ],
    );
    assert_eq!(
        std::fs::read_to_string(bundle.join("rootfs/built")).unwrap(),
        "v7\n"
    );
    let other = Kiln::new();
    other.ok(&["load", "-i", oci.to_str().unwrap()]);
    assert_eq!(other.sh("attest/files:v1", "cat /built").trim(), "v7");
}

#[test]
fn bad_attestation_flags_are_usage_errors() {
    let k = Kiln::with_busybox_image();
    let ctx = k.context(&[("Dockerfile", "FROM busybox\n")]);
    for (flags, wanted) in [
        (
            &["--provenance", "mode=mid"][..],
            "invalid --provenance \"mode=mid\": invalid mode \"mid\"",
        ),
        (&["--sbom", "maybe"][..], "invalid --sbom \"maybe\""),
        (
            &["--sbom", "generator=docker/scout-sbom-indexer"][..],
            "generator= is not supported",
        ),
        (
            &["--attest", "type=vex"][..],
            "unknown attestation type \"vex\"",
        ),
        (
            &["--attest", "mode=max"][..],
            "attestation type not specified",
        ),
        (
            &["--provenance", "true", "--attest", "type=provenance"][..],
            "duplicate attestation field provenance",
        ),
    ] {
        let err = k.build(&ctx, flags).fails_with(125).to_string();
        assert!(err.contains(wanted), "{flags:?}: {err}");
    }
    // Asked for with nowhere to put them: refused before anything runs.
    let err = k
        .build(&ctx, &["-t", "x", "--provenance", "true"])
        .fails_with(1)
        .to_string();
    assert!(
        err.contains("attestations need an output that can hold them"),
        "{err}"
    );
    assert!(!k.images_listed().contains(&"x:latest".to_string()));
    // Disabled ones need nothing.
    k.build(
        &ctx,
        &["-t", "y", "--provenance", "false", "--sbom", "false"],
    )
    .ok();
}
