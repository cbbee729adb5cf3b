//! Broken and hostile archives given to `kiln load`: a clear error naming
//! the entry, and the store left as it was (no image listed, no layer,
//! blob or temp file left behind).

use crate::support;
use support::archive::{self as ar, raw_tar, Entry, Item};
use support::kiln::Kiln;

/// Archives of two one-file images (`tiny:1`, `tiny:2`), as kiln saves
/// them in each format, with their layer and config digests.
struct Fixture {
    docker: Vec<Item>,
    oci: Vec<Item>,
    /// `tiny:1`'s layer and config digests.
    layer: String,
    config: String,
    /// `tiny:2`'s layer digest.
    layer2: String,
}

fn fixture() -> Fixture {
    let env = Kiln::new();
    let mut layers = Vec::new();
    let mut configs = Vec::new();
    for (i, content) in [b"one", b"two"].iter().enumerate() {
        let tar = env.path(&format!("t{i}.tar"));
        std::fs::write(&tar, raw_tar(&[Entry::File("hello", &content[..])])).unwrap();
        let name = format!("tiny:{}", i + 1);
        configs.push(
            env.ok(&["import", tar.to_str().unwrap(), &name])
                .trim()
                .to_string(),
        );
        let l = env.ok(&["inspect", "--format", "{{index .RootFS.Layers 0}}", &name]);
        layers.push(l.trim().to_string());
    }
    let docker = ar::read(&env.output(&["save", "tiny:1", "tiny:2"]).stdout);
    let oci = ar::read(&env.output(&["save", "--format", "oci", "tiny:1"]).stdout);
    Fixture {
        docker,
        oci,
        layer: layers[0].clone(),
        config: configs[0].clone(),
        layer2: layers[1].clone(),
    }
}

/// Loads `archive` into a fresh store, expects an error containing every
/// one of `expect`, and checks that nothing was left behind.
fn check_refused(archive: &[u8], expect: &[&str]) {
    let env = Kiln::new();
    env.ok(&["images"]); // create the store
    let file = env.path("archive.tar");
    std::fs::write(&file, archive).unwrap();
    let err = env.fails(&["load", "-i", file.to_str().unwrap()]);
    for e in expect {
        assert!(err.contains(e), "expected {e:?} in: {err}");
    }
    assert_eq!(env.ok(&["images", "-q"]), "", "half-loaded image listed");
    for dir in ["snapshots", "blobs/sha256", "tmp"] {
        assert!(env.entries(dir).is_empty(), "{dir}: {:?}", env.entries(dir));
    }
}

fn without(items: &[Item], name: &str) -> Vec<u8> {
    let kept: Vec<Item> = items.iter().filter(|i| i.name != name).cloned().collect();
    ar::write(&kept)
}

#[test]
fn missing_blobs_are_named_with_what_refers_to_them() {
    let f = fixture();
    let layer = ar::blob_name(&f.layer);
    check_refused(
        &without(&f.docker, &layer),
        &[&format!(
            "archive entry {layer} is missing (referenced by layer 0 of tiny:1)"
        )],
    );
    check_refused(
        &without(&f.oci, &layer),
        &[&format!(
            "archive entry {layer} is missing (referenced by layer 0 of tiny:1)"
        )],
    );
    let config = ar::blob_name(&f.config);
    check_refused(
        &without(&f.docker, &config),
        &[&format!(
            "archive entry {config} is missing (referenced by the Config of tiny:1)"
        )],
    );
}

#[test]
fn content_that_does_not_match_its_digest_is_refused() {
    let f = fixture();
    let name = ar::blob_name(&f.layer);
    let mut items = f.oci.clone();
    let i = ar::position(&items, &name);
    // The file's content ("one") sits right after the first 512-byte header.
    items[i].data[512] ^= 0x20;
    check_refused(
        &ar::write(&items),
        &[&format!(
            "archive entry {name}: digest mismatch: named {}",
            f.layer
        )],
    );
}

#[test]
fn a_legacy_layer_that_does_not_match_its_diff_id_fails_the_whole_archive() {
    // Two images; only the second one's layer is bad. Neither is listed.
    let f = fixture();
    let mut items = f.docker.clone();
    let mut manifest = ar::json(&items, "manifest.json");
    let other = raw_tar(&[Entry::File("hello", b"not what the config says")]);
    items.push(ar::file("0123abcd/layer.tar", &other));
    items.push(ar::file("0123abcd/json", b"{}"));
    assert_eq!(manifest[1]["Layers"][0], ar::blob_name(&f.layer2));
    manifest[1]["Layers"][0] = "0123abcd/layer.tar".into();
    ar::set_json(&mut items, "manifest.json", &manifest);
    check_refused(
        &ar::write(&items),
        &[
            "tiny:2: layer 0 (blobs/sha256/",
            "uncompressed content: digest mismatch",
            &f.layer2,
        ],
    );
}

#[test]
fn bad_json_is_refused_naming_the_document() {
    let f = fixture();
    let mut items = f.docker.clone();
    let i = ar::position(&items, "manifest.json");
    items[i].data = b"[{\"Config\": ".to_vec();
    check_refused(
        &ar::write(&items),
        &["archive entry manifest.json: invalid JSON"],
    );
    items[i].data = b"null".to_vec();
    check_refused(&ar::write(&items), &["manifest cannot be null"]);
    let mut manifest = ar::json(&f.docker, "manifest.json");
    manifest[0]["Layers"]
        .as_array_mut()
        .unwrap()
        .push(ar::blob_name(&f.layer).into());
    items[i].data = serde_json::to_vec(&manifest).unwrap();
    check_refused(
        &ar::write(&items),
        &["tiny:1: invalid manifest, layers length mismatch"],
    );

    let mut items = f.oci.clone();
    let i = ar::position(&items, "index.json");
    items[i].data = b"{\"manifests\": 7}".to_vec();
    check_refused(
        &ar::write(&items),
        &["archive entry index.json: invalid JSON"],
    );
    // A config that is not an image config.
    let mut items = f.oci.clone();
    let index = ar::json(&items, "index.json");
    let mname = ar::blob_name(index["manifests"][0]["digest"].as_str().unwrap());
    let mut manifest = ar::json(&items, &mname);
    let (d, size) = ar::put_blob(&mut items, b"{\"rootfs\": 12}");
    manifest["config"]["digest"] = d.into();
    manifest["config"]["size"] = size.into();
    repoint(&mut items, &manifest);
    check_refused(
        &ar::write(&items),
        &["tiny:1: config", "is not a valid image config"],
    );
}

/// Stores `manifest` as a new blob and points index.json's first entry at it.
fn repoint(items: &mut Vec<Item>, manifest: &serde_json::Value) {
    let (d, size) = ar::put_blob(items, &serde_json::to_vec(manifest).unwrap());
    let mut index = ar::json(items, "index.json");
    index["manifests"][0]["digest"] = d.into();
    index["manifests"][0]["size"] = size.into();
    ar::set_json(items, "index.json", &index);
}

#[test]
fn unknown_media_types_are_refused() {
    let f = fixture();
    let mut items = f.oci.clone();
    let index = ar::json(&items, "index.json");
    let mname = ar::blob_name(index["manifests"][0]["digest"].as_str().unwrap());
    let mut manifest = ar::json(&items, &mname);
    manifest["layers"][0]["mediaType"] = "application/x-unknown".into();
    repoint(&mut items, &manifest);
    check_refused(
        &ar::write(&items),
        &[
            "tiny:1",
            &f.layer,
            "unsupported media type \"application/x-unknown\"",
        ],
    );
    let mut items = f.oci.clone();
    let mut index = ar::json(&items, "index.json");
    index["manifests"][0]["mediaType"] = "application/vnd.example.thing".into();
    ar::set_json(&mut items, "index.json", &index);
    check_refused(
        &ar::write(&items),
        &["unsupported media type \"application/vnd.example.thing\""],
    );
}

#[test]
fn path_traversal_and_odd_entries_are_refused() {
    let f = fixture();
    let with = |extra: Item| {
        let mut items = f.docker.clone();
        items.insert(0, extra);
        ar::write(&items)
    };
    check_refused(
        &with(ar::file("../evil", b"x")),
        &["archive entry ../evil: '..' in an entry name (path traversal)"],
    );
    check_refused(
        &with(ar::file("blobs/../../evil", b"x")),
        &["archive entry blobs/../../evil", "path traversal"],
    );
    check_refused(
        &with(ar::file("/etc/evil", b"x")),
        &["archive entry /etc/evil: absolute path"],
    );
    check_refused(
        &with(ar::symlink("abc/layer.tar", "../../etc/passwd")),
        &["archive entry abc/layer.tar: symlink target \"../../etc/passwd\" escapes the archive"],
    );
    let mut fifo = ar::file("abc/pipe", b"");
    fifo.kind = tar::EntryType::Fifo;
    check_refused(
        &with(fifo),
        &["archive entry abc/pipe: unsupported entry type"],
    );
    check_refused(
        &with(ar::file("blobs/sha512/abcd", b"x")),
        &["archive entry blobs/sha512/abcd: unsupported digest algorithm \"sha512\""],
    );
}

#[test]
fn things_that_are_not_image_archives_are_refused() {
    check_refused(
        &ar::write(&[ar::file("hello.txt", b"hi")]),
        &["not an image archive: it has neither manifest.json (docker) nor index.json (OCI layout)"],
    );
    check_refused(
        b"this is not a tar file at all, just some words that go on for a while",
        &["reading the archive"],
    );
    let f = fixture();
    let bytes = ar::write(&f.oci);
    // Cut inside the layer blob's data.
    let layer_at = {
        let names: Vec<&str> = f.oci.iter().map(|i| i.name.as_str()).collect();
        names
            .iter()
            .position(|n| *n == ar::blob_name(&f.layer))
            .unwrap()
    };
    let offset: usize = f.oci[..layer_at]
        .iter()
        .map(|i| 512 + i.data.len().div_ceil(512) * 512)
        .sum();
    check_refused(
        &bytes[..offset + 512 + 100],
        &[&format!(
            "archive entry {}: the archive ends inside this entry (100 of",
            ar::blob_name(&f.layer)
        )],
    );
}

#[test]
fn images_for_other_systems_are_refused() {
    let f = fixture();
    let mut items = f.oci.clone();
    let index = ar::json(&items, "index.json");
    let mname = ar::blob_name(index["manifests"][0]["digest"].as_str().unwrap());
    let mut manifest = ar::json(&items, &mname);
    let mut config = ar::json(&items, &ar::blob_name(&f.config));
    config["os"] = "windows".into();
    let (d, size) = ar::put_blob(&mut items, &serde_json::to_vec(&config).unwrap());
    manifest["config"]["digest"] = d.into();
    manifest["config"]["size"] = size.into();
    repoint(&mut items, &manifest);
    check_refused(
        &ar::write(&items),
        &["tiny:1: cannot load a windows image on linux"],
    );
}

#[test]
fn a_failed_load_leaves_existing_images_alone() {
    let env = Kiln::new();
    let tar = env.path("t.tar");
    std::fs::write(&tar, raw_tar(&[Entry::File("hello", b"one")])).unwrap();
    let id = env.ok(&["import", tar.to_str().unwrap(), "tiny:1"]);
    let good = env.output(&["save", "tiny:1"]).stdout;
    let mut items = ar::read(&good);
    let i = ar::position(&items, "manifest.json");
    items[i].data = b"{".to_vec();
    let bad = env.path("bad.tar");
    std::fs::write(&bad, ar::write(&items)).unwrap();
    let before = (env.entries("snapshots"), env.entries("blobs/sha256").len());
    env.fails(&["load", "-i", bad.to_str().unwrap()]);
    assert_eq!(env.ok(&["images", "-q", "--no-trunc"]), id);
    assert_eq!(
        (env.entries("snapshots"), env.entries("blobs/sha256").len()),
        before
    );
    assert!(env.entries("tmp").is_empty());
    // And the image still saves and loads.
    let fresh = Kiln::new();
    let file = fresh.path("good.tar");
    std::fs::write(&file, &good).unwrap();
    fresh.ok(&["load", "-i", file.to_str().unwrap()]);
}
