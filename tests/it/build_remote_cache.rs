//! The build cache shared through a registry or a directory
//! (`--cache-to` / `--cache-from`): builder A exports, builder B with an
//! empty store imports and reuses A's steps; min vs max; inline caches;
//! two exports to one ref at once; caches that are not usable never fail
//! a build (one warning each); a failed export fails it unless
//! `ignore-error=true`.
//!
//! Both builders start from the same base image, pushed once to the test
//! registry by a third store and pulled by each build: a base image's
//! cache key is its manifest digest, so it must be the same one.

use crate::support;

use std::path::Path;

use support::http_stub::{Reply, StubServer};
use support::kiln::{step_states, Kiln, Ran};
use support::registry::TestRegistry;

/// A registry holding busybox as `HOST/busybox:latest`; returns it and
/// the base image's name.
fn farm() -> (TestRegistry, String) {
    let reg = TestRegistry::start();
    let seed = Kiln::new();
    let base = format!("{}/busybox:latest", reg.host());
    seed.import_busybox(&base);
    seed.ok(&["push", &base]);
    (reg, base)
}

const FILES: &[(&str, &str)] = &[("a.txt", "a"), ("b.txt", "b")];

/// Two stages: the final image copies from `build`; `ARG V` changes the
/// final stage's RUN (and what follows) but not the `build` stage.
fn dockerfile(base: &str) -> String {
    format!(
        "FROM {base} AS build\n\
RUN echo built > /built\n\
FROM {base}\n\
COPY a.txt /a.txt\n\
ARG V=1\n\
RUN echo $V > /v\n\
COPY --from=build /built /built\n\
COPY b.txt /b.txt\n"
    )
}

/// Builds `df` in a fresh context of `k` with `flags`.
fn build(k: &Kiln, df: &str, flags: &[&str]) -> Ran {
    let ctx = k.context(FILES);
    std::fs::write(ctx.join("Dockerfile"), df).unwrap();
    k.build(&ctx, flags)
}

/// The steps that ran, the context load aside.
fn ran_steps(progress: &str) -> Vec<String> {
    let (_, done) = step_states(progress);
    done.into_iter()
        .filter(|n| n != "[internal] load build context")
        .collect()
}

fn image_id(k: &Kiln, tag: &str) -> String {
    k.inspect(tag, "{{.Id}}")
}

/// A's build, exported with `cache_to`; returns A's image ID.
fn build_a(base: &str, cache_to: &[&str]) -> (Kiln, String) {
    let a = Kiln::new();
    let mut flags = vec!["-t", "app:a"];
    for c in cache_to {
        flags.extend(["--cache-to", c]);
    }
    let out = build(&a, &dockerfile(base), &flags);
    out.ok();
    assert!(out.stderr.contains("exporting cache to"), "{}", out.stderr);
    let id = image_id(&a, "app:a");
    (a, id)
}

/// B's build from an empty store with `cache_from` (and `extra` flags).
fn build_b(base: &str, cache_from: &str, extra: &[&str]) -> (Kiln, Ran) {
    let b = Kiln::new();
    let mut flags = vec!["-t", "app:b", "--cache-from", cache_from];
    flags.extend_from_slice(extra);
    let out = build(&b, &dockerfile(base), &flags);
    (b, out)
}

#[test]
fn registry_cache_makes_every_step_of_an_empty_builder_cached_with_the_same_image_id() {
    let (reg, base) = farm();
    let cache = format!("{}/cache/app:buildcache", reg.host());
    // gzip, as the pushed image's (the cache's default is zstd).
    let (a, id) = build_a(
        &base,
        &[&format!(
            "type=registry,ref={cache},mode=max,compression=gzip"
        )],
    );
    // The image and the cache share their layer blobs (compressed once):
    // pushing the image next to the cache uploads no layer.
    let image = format!("{}/cache/app:image", reg.host());
    a.ok(&["tag", "app:a", &image]);
    let pushed = a.ok(&["push", &image]).to_string();
    assert!(pushed.contains("Layer already exists"), "{pushed}");
    assert!(!pushed.contains("Pushed"), "{pushed}");

    let (b, out) = build_b(&base, &format!("type=registry,ref={cache}"), &[]);
    out.ok();
    assert_eq!(
        ran_steps(&out.stderr),
        Vec::<String>::new(),
        "{}",
        out.stderr
    );
    let (cached, _) = step_states(&out.stderr);
    assert!(cached.iter().any(|s| s.contains("> /v")), "{}", out.stderr);
    assert_eq!(image_id(&b, "app:b"), id, "the same image, times included");
    assert_eq!(b.sh("app:b", "cat /a.txt /v /built /b.txt"), "a1\nbuilt\nb");
    // Lazily: the final image's four layers were fetched (the store needs
    // them), not the `build` stage's, which the max cache also holds but
    // nothing took; and the progress says so.
    assert!(
        out.stderr
            .contains("importing cache: fetched 4 layer blobs, "),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("WARNING"), "{}", out.stderr);
}

#[test]
fn local_cache_dir_is_an_oci_layout_of_zstd_layers_an_empty_builder_reuses() {
    let (_reg, base) = farm();
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("cache");
    let dest = dest.to_str().unwrap();
    let (_a, id) = build_a(
        &base,
        &[&format!("type=local,dest={dest},mode=max,compression=zstd")],
    );
    for f in ["oci-layout", "index.json", "blobs/sha256"] {
        assert!(Path::new(dest).join(f).exists(), "{f} missing");
    }
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(Path::new(dest).join("index.json")).unwrap())
            .unwrap();
    let manifest = index["manifests"][0]["digest"].as_str().unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            Path::new(dest)
                .join("blobs/sha256")
                .join(manifest.strip_prefix("sha256:").unwrap()),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.kiln.cache.v1+json"
    );
    let layers = manifest["layers"].as_array().unwrap();
    assert!(!layers.is_empty());
    for l in layers {
        assert_eq!(
            l["mediaType"],
            "application/vnd.oci.image.layer.v1.tar+zstd"
        );
    }

    let (b, out) = build_b(&base, &format!("type=local,src={dest}"), &[]);
    out.ok();
    assert_eq!(
        ran_steps(&out.stderr),
        Vec::<String>::new(),
        "{}",
        out.stderr
    );
    assert_eq!(image_id(&b, "app:b"), id);
}

#[test]
fn inline_cache_travels_in_the_pushed_image_config() {
    let (reg, base) = farm();
    let image = format!("{}/app:inline", reg.host());
    let a = Kiln::new();
    let out = build(
        &a,
        &dockerfile(&base),
        &["-t", &image, "--cache-to", "type=inline"],
    );
    out.ok();
    assert!(a.config_blob(&image)["kiln.cache.v1"]["records"].is_array());
    let id = image_id(&a, &image);
    a.ok(&["push", &image]);

    // Built with the same inline cache, B's image is A's.
    let (b, out) = build_b(&base, &image, &["--cache-to", "type=inline"]);
    out.ok();
    assert_eq!(
        ran_steps(&out.stderr),
        Vec::<String>::new(),
        "{}",
        out.stderr
    );
    assert_eq!(image_id(&b, "app:b"), id);
}

#[test]
fn an_intermediate_stage_step_hits_only_with_mode_max() {
    let (reg, base) = farm();
    let min = format!("{}/cache/app:min", reg.host());
    let max = format!("{}/cache/app:max", reg.host());
    build_a(
        &base,
        &[
            &format!("type=registry,ref={min}"),
            &format!("type=registry,ref={max},mode=max"),
        ],
    );
    // V=2 reruns the final stage's RUN and so the COPY --from after it,
    // which needs the `build` stage's result.
    let (_, out) = build_b(&base, &min, &["--build-arg", "V=2"]);
    out.ok();
    let ran = ran_steps(&out.stderr);
    assert!(
        ran.iter().any(|s| s.contains("echo built")),
        "{}",
        out.stderr
    );
    assert!(
        !ran.iter().any(|s| s.contains("COPY a.txt")),
        "{}",
        out.stderr
    );

    let (_, out) = build_b(&base, &max, &["--build-arg", "V=2"]);
    out.ok();
    let ran = ran_steps(&out.stderr);
    assert!(
        !ran.iter().any(|s| s.contains("echo built")),
        "{}",
        out.stderr
    );
    assert!(ran.iter().any(|s| s.contains("> /v")), "{}", out.stderr);
}

/// A cold export uploads each layer blob it compresses while the store
/// writes it, instead of reading the blob back afterwards (issue 12's
/// export time); what it uploads is a cache B takes whole.
#[test]
fn a_cold_exports_layer_blobs_are_uploaded_while_compressed_and_b_takes_them() {
    let (reg, base) = farm();
    let cache = format!("{}/cache/app:streamed", reg.host());
    let a = Kiln::new();
    let ctx = a.context(FILES);
    std::fs::write(ctx.join("Dockerfile"), dockerfile(&base)).unwrap();
    let out = a
        .cmd(&[
            "build",
            "--progress",
            "plain",
            "-t",
            "app:a",
            "--cache-to",
            &format!("type=registry,ref={cache},mode=max"),
            ctx.to_str().unwrap(),
        ])
        .env("KILN_LOG", "kiln=debug")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // The final stage's four layers at least (busybox's pulled blob is
    // reused as it is, never compressed again).
    let streamed = stderr
        .matches("layer blob uploaded while compressed")
        .count();
    assert!(streamed >= 4, "{streamed} streamed: {stderr}");
    assert!(!stderr.contains("streamed upload"), "{stderr}");

    let (b, out) = build_b(&base, &cache, &[]);
    out.ok();
    assert_eq!(
        ran_steps(&out.stderr),
        Vec::<String>::new(),
        "{}",
        out.stderr
    );
    assert_eq!(image_id(&b, "app:b"), image_id(&a, "app:a"));
    assert!(!out.stderr.contains("WARNING"), "{}", out.stderr);
}

#[test]
fn two_exports_to_one_ref_at_once_leave_a_cache_with_both_builds_records() {
    let (reg, base) = farm();
    let cache = format!("{}/cache/app:shared", reg.host());
    let df = |branch: &str| format!("FROM {base}\nRUN echo {branch} > /branch\nCOPY a.txt /a\n");
    let builders: Vec<Kiln> = (0..2).map(|_| Kiln::new()).collect();
    let children: Vec<_> = builders
        .iter()
        .zip(["one", "two"])
        .map(|(k, branch)| {
            let ctx = k.context(FILES);
            std::fs::write(ctx.join("Dockerfile"), df(branch)).unwrap();
            k.cmd(&[
                "build",
                "--progress",
                "plain",
                "-t",
                "app:x",
                "--cache-to",
                &format!("type=registry,ref={cache},mode=max"),
                ctx.to_str().unwrap(),
            ])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for branch in ["one", "two"] {
        let b = Kiln::new();
        let out = build(&b, &df(branch), &["--cache-from", &cache]);
        out.ok();
        assert_eq!(
            ran_steps(&out.stderr),
            Vec::<String>::new(),
            "{branch}: {}",
            out.stderr
        );
    }
}

/// The one warning a bad cache gives, asserting the build went on.
#[track_caller]
fn warned_once(out: &Ran, name: &str, reason: &str) {
    out.ok();
    let warnings: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("WARNING: cache import"))
        .collect();
    assert_eq!(warnings.len(), 1, "{}", out.stderr);
    assert!(warnings[0].contains(name), "{}", warnings[0]);
    assert!(warnings[0].contains(reason), "{}", warnings[0]);
}

#[test]
fn a_missing_ref_is_a_warning_and_the_build_runs() {
    let (reg, base) = farm();
    let missing = format!("{}/cache/none:here", reg.host());
    let (_, out) = build_b(&base, &missing, &[]);
    warned_once(&out, &missing, "not found");
    assert!(ran_steps(&out.stderr).iter().any(|s| s.contains("> /v")));
}

#[test]
fn an_ordinary_image_as_cache_is_a_warning() {
    let (_reg, base) = farm();
    let (_, out) = build_b(&base, &format!("type=registry,ref={base}"), &[]);
    warned_once(&out, &base, "without an inline kiln cache");
}

/// A local cache of A's build, to damage.
fn local_cache(base: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("cache").to_str().unwrap().to_string();
    build_a(base, &[&format!("type=local,dest={dest},mode=max")]);
    (dir, dest)
}

fn blob(dest: &str, digest: &str) -> std::path::PathBuf {
    Path::new(dest)
        .join("blobs/sha256")
        .join(digest.strip_prefix("sha256:").unwrap())
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Rewrites the layout's description to `bytes` (manifest and index
/// follow, so every digest matches: only the content is bad).
fn replace_description(dest: &str, bytes: &[u8]) {
    let index_path = Path::new(dest).join("index.json");
    let mut index = json(&index_path);
    let mut manifest = json(&blob(
        dest,
        index["manifests"][0]["digest"].as_str().unwrap(),
    ));
    let digest = support::archive::digest_of(bytes);
    std::fs::write(blob(dest, &digest), bytes).unwrap();
    manifest["config"]["digest"] = digest.into();
    manifest["config"]["size"] = bytes.len().into();
    let mbytes = serde_json::to_vec(&manifest).unwrap();
    let mdigest = support::archive::digest_of(&mbytes);
    std::fs::write(blob(dest, &mdigest), &mbytes).unwrap();
    index["manifests"][0]["digest"] = mdigest.into();
    index["manifests"][0]["size"] = mbytes.len().into();
    std::fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();
}

#[test]
fn a_truncated_or_corrupt_description_is_a_warning() {
    let (_reg_guard, base) = farm();
    let (_dir, dest) = local_cache(&base);
    let index = json(&Path::new(&dest).join("index.json"));
    let manifest = json(&blob(
        &dest,
        index["manifests"][0]["digest"].as_str().unwrap(),
    ));
    let good = std::fs::read(blob(&dest, manifest["config"]["digest"].as_str().unwrap())).unwrap();

    replace_description(&dest, &good[..good.len() / 2]);
    let (_, out) = build_b(&base, &format!("type=local,src={dest}"), &[]);
    warned_once(&out, &dest, "cache description is not valid JSON");

    let mut v: serde_json::Value = serde_json::from_slice(&good).unwrap();
    v["records"][0]["layers"] = serde_json::json!([format!("sha256:{}", "0".repeat(64))]);
    replace_description(&dest, &serde_json::to_vec(&v).unwrap());
    let (_, out) = build_b(&base, &format!("type=local,src={dest}"), &[]);
    warned_once(&out, &dest, "which the cache does not describe");
}

#[test]
fn a_layer_blob_with_the_wrong_digest_is_a_warning_and_never_enters_the_store() {
    let (_reg_guard, base) = farm();
    let (_dir, dest) = local_cache(&base);
    let index = json(&Path::new(&dest).join("index.json"));
    let manifest = json(&blob(
        &dest,
        index["manifests"][0]["digest"].as_str().unwrap(),
    ));
    // Every layer blob but the base image's is damaged (the base's is
    // already in B's store, pulled, so it is never fetched).
    let mut damaged = Vec::new();
    for l in manifest["layers"].as_array().unwrap() {
        let d = l["digest"].as_str().unwrap().to_string();
        let path = blob(&dest, &d);
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(&path, bytes).unwrap();
        damaged.push(d);
    }
    let (b, out) = build_b(&base, &format!("type=local,src={dest}"), &[]);
    warned_once(&out, &dest, "digest mismatch");
    assert!(
        ran_steps(&out.stderr).iter().any(|s| s.contains("> /v")),
        "{}",
        out.stderr
    );
    assert_eq!(b.sh("app:b", "cat /a.txt /v /built /b.txt"), "a1\nbuilt\nb");
    for d in damaged {
        let pulled = b
            .root()
            .join("blobs/sha256")
            .join(d.strip_prefix("sha256:").unwrap());
        if pulled.exists() {
            // Only the base image's own blob, pulled intact, may be there.
            assert_eq!(
                support::archive::digest_of(&std::fs::read(&pulled).unwrap()),
                d,
                "an unverified blob entered the store"
            );
        }
    }
    b.kiln(&["system", "check"]).ok();
}

#[test]
fn a_registry_that_dies_mid_import_is_a_warning_and_the_build_runs() {
    let (_reg_guard, base) = farm();
    let (_dir, dest) = local_cache(&base);
    let index = json(&Path::new(&dest).join("index.json"));
    let manifest_digest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let manifest = std::fs::read(blob(&dest, &manifest_digest)).unwrap();
    let config_digest = json(&blob(&dest, &manifest_digest))["config"]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let layout = dest.clone();
    // Serves the manifest and the description, then drops every layer
    // download halfway.
    let stub = StubServer::start(move |req| {
        let path = req.path().to_string();
        if path == "/v2/" {
            return Reply::new(200, "{}");
        }
        if path.contains("/manifests/") {
            return Reply::new(200, manifest.clone())
                .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
                .header("Docker-Content-Digest", manifest_digest.clone());
        }
        if let Some(d) = path.split("/blobs/").nth(1) {
            let bytes = std::fs::read(blob(&layout, d)).unwrap_or_default();
            if d == config_digest {
                return Reply::new(200, bytes);
            }
            let mut r = Reply::new(200, bytes[..bytes.len() / 2].to_vec());
            r.declared_len = Some(bytes.len());
            return r;
        }
        Reply::new(404, "")
    });
    let cache = format!("{}/cache/app:dying", stub.host());
    let (b, out) = build_b(&base, &cache, &[]);
    warned_once(&out, &cache, "closed");
    assert!(
        ran_steps(&out.stderr).iter().any(|s| s.contains("> /v")),
        "{}",
        out.stderr
    );
    b.kiln(&["system", "check"]).ok();
}

#[test]
fn a_failed_export_fails_the_build_unless_ignore_error() {
    let (_reg, base) = farm();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let dest = file.join("cache");
    let dest = dest.to_str().unwrap();
    let k = Kiln::new();
    let out = build(
        &k,
        &dockerfile(&base),
        &["--cache-to", &format!("type=local,dest={dest}")],
    );
    let err = out.fails();
    assert!(
        err.contains(&format!("exporting the build cache to {dest}")),
        "{err}"
    );
    assert!(err.contains("Not a directory"), "{err}");

    let out = build(
        &k,
        &dockerfile(&base),
        &[
            "--cache-to",
            &format!("type=local,dest={dest},ignore-error=true"),
        ],
    );
    out.ok();
    assert!(
        out.stderr.contains("WARNING: exporting the build cache"),
        "{}",
        out.stderr
    );
}

#[test]
fn an_unknown_cache_key_or_type_is_a_clear_error_before_anything_runs() {
    let k = Kiln::new();
    let out = build(
        &k,
        "FROM scratch\n",
        &["--cache-to", "type=registry,ref=r/a:c,mood=max"],
    );
    let err = out.fails();
    assert!(
        err.contains("--cache-to") && err.contains("unknown key \"mood\""),
        "{err}"
    );
    let out = build(&k, "FROM scratch\n", &["--cache-from", "type=gha"]);
    let err = out.fails();
    assert!(
        err.contains("--cache-from") && err.contains("unknown type \"gha\""),
        "{err}"
    );
}

#[test]
fn a_cache_mount_written_in_a_is_seen_by_a_run_that_reruns_in_b() {
    let (reg, base) = farm();
    let with = format!("{}/cache/app:mounts", reg.host());
    let without = format!("{}/cache/app:nomounts", reg.host());
    let df = |n: u32| {
        format!(
            "FROM {base}\nARG N={n}\n\
RUN --mount=type=cache,id=deps,target=/cache,sharing=locked \
echo \"run $N\" >> /cache/log && cp /cache/log /seen\n"
        )
    };
    let a = Kiln::new();
    build(
        &a,
        &df(1),
        &[
            "--cache-to",
            &format!("type=registry,ref={with},cache-mounts=true"),
            "--cache-to",
            &format!("type=registry,ref={without}"),
        ],
    )
    .ok();

    // N=2 reruns the RUN, which finds A's cache content first.
    let b = Kiln::new();
    let out = build(&b, &df(2), &["-t", "app:b", "--cache-from", &with]);
    out.ok();
    assert!(
        ran_steps(&out.stderr)
            .iter()
            .any(|s| s.contains("/cache/log")),
        "{}",
        out.stderr
    );
    assert_eq!(b.sh("app:b", "cat /seen"), "run 1\nrun 2\n");
    assert_eq!(b.cache_file("deps", "log"), ["run 1", "run 2"]);
    // A store that has the cache keeps its own: nothing is restored over it.
    let out = build(&b, &df(3), &["-t", "app:b", "--cache-from", &with]);
    out.ok();
    assert_eq!(b.sh("app:b", "cat /seen"), "run 1\nrun 2\nrun 3\n");

    // Without cache-mounts=true, nothing of the mount travels.
    let c = Kiln::new();
    build(&c, &df(2), &["-t", "app:c", "--cache-from", &without]).ok();
    assert_eq!(c.sh("app:c", "cat /seen"), "run 2\n");
}

/// `skopeo inspect` of a pushed image.
fn skopeo_inspect(name: &str) -> serde_json::Value {
    support::tools::run_json(
        "skopeo",
        &["inspect", "--tls-verify=false", &format!("docker://{name}")],
    )
}

/// Regression (issue 12's farm target): a fully cached build that only
/// pushed its result fetched every layer of it from the cache first, to
/// write the image into its own store. Now the image is pushed from the
/// cache's blobs (cross-repository mounts within the registry) and not
/// stored: B downloads no layer, `--metadata-file` names what was pushed,
/// and a third store pulls an image that runs and has A's ID.
#[test]
fn fully_cached_push_from_an_empty_builder_downloads_no_layer_and_stores_nothing() {
    let (reg, base) = farm();
    let cache = format!("{}/cache/app:buildcache", reg.host());
    let (_a, id) = build_a(&base, &[&format!("type=registry,ref={cache},mode=max")]);

    let b = Kiln::new();
    let name = format!("{}/farm/app:v1", reg.host());
    let meta = b.path("meta.json");
    let cache_from = format!("type=registry,ref={cache}");
    let flags = [
        "-t",
        &name,
        "--cache-from",
        &cache_from,
        "--push",
        "--metadata-file",
        meta.to_str().unwrap(),
    ];
    let out = build(&b, &dockerfile(&base), &flags);
    out.ok();
    assert_eq!(
        ran_steps(&out.stderr),
        Vec::<String>::new(),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("importing cache: fetched 0 layer blobs, 0 bytes"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("Mounted from cache/app"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("WARNING"), "{}", out.stderr);
    // Nothing unverified entered B's store: no image at all.
    b.fails(&["inspect", &name]);

    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&meta).unwrap()).unwrap();
    let inspect = skopeo_inspect(&name);
    assert_eq!(meta["containerimage.digest"], inspect["Digest"], "{meta}");
    assert_eq!(meta["containerimage.config.digest"], id.as_str(), "{meta}");

    let c = Kiln::new();
    c.ok(&["pull", &name]);
    assert_eq!(image_id(&c, &name), id);
    assert_eq!(c.sh(&name, "cat /a.txt /v /built /b.txt"), "a1\nbuilt\nb");
}

/// A directory cache's blobs can only reach a registry through this
/// builder: the pushed result is fetched (verified) and stored as before.
#[test]
fn push_from_a_directory_cache_fetches_the_layers_and_stores_the_image() {
    let (reg, base) = farm();
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("cache");
    let dest = dest.to_str().unwrap();
    let (_a, id) = build_a(&base, &[&format!("type=local,dest={dest},mode=max")]);

    let b = Kiln::new();
    let name = format!("{}/farm/app:local", reg.host());
    let cache_from = format!("type=local,src={dest}");
    let out = build(
        &b,
        &dockerfile(&base),
        &["-t", &name, "--cache-from", &cache_from, "--push"],
    );
    out.ok();
    assert_eq!(
        ran_steps(&out.stderr),
        Vec::<String>::new(),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("importing cache: fetched 4 layer blobs, "),
        "{}",
        out.stderr
    );
    assert_eq!(image_id(&b, &name), id);
    let c = Kiln::new();
    c.ok(&["pull", &name]);
    assert_eq!(c.sh(&name, "cat /a.txt /v /built /b.txt"), "a1\nbuilt\nb");
}

/// The layer digests of a pushed manifest.
fn pushed_layers(name: &str) -> Vec<String> {
    let raw = support::tools::run(
        "skopeo",
        &[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{name}"),
        ],
    );
    let m: serde_json::Value = serde_json::from_str(&raw).unwrap();
    m["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect()
}

/// Without `compression=`, a cache export reuses the blobs the build's
/// own push just made (gzip) instead of compressing each layer again in
/// the cache's default zstd: the image's layers are the cache's blobs.
#[test]
fn cache_export_without_compression_reuses_the_pushed_images_blobs() {
    let (reg, base) = farm();
    let cache = format!("{}/cache/app:buildcache", reg.host());
    let name = format!("{}/cache/app:image", reg.host());
    let a = Kiln::new();
    let cache_to = format!("type=registry,ref={cache}");
    let out = build(
        &a,
        &dockerfile(&base),
        &["-t", &name, "--push", "--cache-to", &cache_to],
    );
    out.ok();
    let image = pushed_layers(&name);
    let cache = pushed_layers(&cache);
    assert_eq!(image.len(), 5, "busybox and four steps: {image:?}");
    for layer in &image {
        assert!(cache.contains(layer), "{layer} not in the cache {cache:?}");
    }
}
