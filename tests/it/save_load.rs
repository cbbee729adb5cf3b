//! `kiln save` / `kiln load` through the real binary, checked against the
//! tools that define the formats: skopeo (docker-archive: and
//! oci-archive:) and umoci (OCI layout unpacking).

use crate::support;
use kiln::cache::Store;
use kiln::image::oci::media;
use kiln::image::oci::{host_architecture, ContainerConfig, History, ImageConfig, RootFs};
use kiln::image::reference::ImageRef;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use support::archive::{self as ar, raw_tar, Entry, Item};
use support::kiln::Kiln;
use support::tools;

/// The diff IDs kiln reports for an image.
fn kiln_layers(env: &Kiln, image: &str) -> serde_json::Value {
    let out = env.ok(&["inspect", "--format", "{{json .RootFS.Layers}}", image]);
    serde_json::from_str(out.trim()).unwrap()
}

fn image_id(env: &Kiln, image: &str) -> String {
    env.ok(&["inspect", "--format", "{{.Id}}", image])
        .trim()
        .to_string()
}

/// A two-layer image made through the store API: `base` (a rootfs tar)
/// plus a layer that adds /etc/motd and deletes /etc/hostname.
fn two_layer_image(env: &Kiln, base: &Path, name: &str) -> String {
    let top = raw_tar(&[
        Entry::Dir("etc/"),
        Entry::File("etc/motd", b"layer two\n"),
        Entry::File("etc/.wh.hostname", b""),
    ]);
    let store = Store::open(&env.root()).unwrap();
    let l1 = store
        .add_layer_from_tar(std::fs::File::open(base).unwrap(), None)
        .unwrap();
    let l2 = store
        .add_layer_from_tar(std::io::Cursor::new(top), Some(&l1.chain_id))
        .unwrap();
    let step = |by: &str| History {
        created: Some("2024-01-02T03:04:05Z".into()),
        created_by: Some(by.into()),
        ..History::default()
    };
    let config = ImageConfig {
        created: Some("2024-01-02T03:04:05Z".into()),
        architecture: host_architecture().into(),
        os: "linux".into(),
        config: Some(ContainerConfig {
            cmd: Some(vec!["sh".into()]),
            ..ContainerConfig::default()
        }),
        rootfs: RootFs {
            kind: "layers".into(),
            diff_ids: vec![l1.diff_id.clone(), l2.diff_id.clone()],
        },
        history: vec![step("ADD rootfs /"), step("RUN edit /etc")],
        ..ImageConfig::default()
    };
    let image = store
        .write_image(&config, &[l1, l2], &[ImageRef::parse(name).unwrap()])
        .unwrap();
    image.id.to_string()
}

/// Unpacks an oci-archive tar into `<dir>/layout` and runs `umoci unpack`
/// for `tag` into `<dir>/bundle-<tag>`; returns the rootfs.
fn umoci_unpack(env: &Kiln, archive: &Path, tag: &str) -> std::path::PathBuf {
    let layout = env.path("layout");
    if !layout.exists() {
        std::fs::create_dir(&layout).unwrap();
        tools::run(
            "tar",
            &[
                "-C",
                layout.to_str().unwrap(),
                "-xf",
                archive.to_str().unwrap(),
            ],
        );
    }
    let bundle = env.path(&format!("bundle-{tag}"));
    let image = format!("{}:{tag}", layout.display());
    tools::run(
        "umoci",
        &["unpack", "--image", &image, bundle.to_str().unwrap()],
    );
    bundle.join("rootfs")
}

#[test]
fn oci_save_is_read_by_skopeo_and_umoci_and_shares_layers() {
    let env = Kiln::new();
    let base = env.busybox_tar("bb.tar");
    env.ok(&["import", base.to_str().unwrap(), "bb:1"]);
    let two = two_layer_image(&env, &base, "multi:2");
    for compression in ["none", "gzip"] {
        let file = env.path(&format!("oci-{compression}.tar"));
        let f = file.to_str().unwrap();
        env.ok(&[
            "save",
            "--format",
            "oci",
            "--compression",
            compression,
            "-o",
            f,
            "bb:1",
            "multi:2",
        ]);
        let items = ar::read(&std::fs::read(&file).unwrap());
        assert!(items.iter().all(|i| i.name != "manifest.json"));
        assert_eq!(
            ar::json(&items, "oci-layout")["imageLayoutVersion"],
            "1.0.0"
        );
        let index = ar::json(&items, "index.json");
        let entries = index["manifests"].as_array().unwrap();
        assert_eq!(entries.len(), 2, "{index}");
        assert_eq!(
            entries[1]["annotations"]["io.containerd.image.name"],
            "docker.io/library/multi:2"
        );
        assert_eq!(
            entries[1]["annotations"]["org.opencontainers.image.ref.name"],
            "2"
        );
        // configs 2 + manifests 2 + layers 2: the busybox layer once.
        let blobs = items
            .iter()
            .filter(|i| i.name.starts_with("blobs/sha256/") && i.kind.is_file());
        assert_eq!(
            blobs.count(),
            6,
            "{:?}",
            items.iter().map(|i| &i.name).collect::<Vec<_>>()
        );

        for (tag, image) in [("1", "bb:1"), ("2", "multi:2")] {
            let inspected =
                tools::run_json("skopeo", &["inspect", &format!("oci-archive:{f}:{tag}")]);
            let entry = entries
                .iter()
                .find(|e| e["annotations"]["org.opencontainers.image.ref.name"] == tag)
                .unwrap();
            assert_eq!(inspected["Digest"], entry["digest"]);
            let manifest = ar::json(&items, &ar::blob_name(entry["digest"].as_str().unwrap()));
            let blob_digests: Vec<&serde_json::Value> = manifest["layers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| &l["digest"])
                .collect();
            assert_eq!(
                serde_json::to_value(&blob_digests).unwrap(),
                inspected["Layers"]
            );
            if compression == "none" {
                assert_eq!(inspected["Layers"], kiln_layers(&env, image));
            } else {
                assert_eq!(manifest["layers"][0]["mediaType"], media::OCI_LAYER_GZIP);
            }
            let raw_config = tools::run(
                "skopeo",
                &[
                    "inspect",
                    "--raw",
                    "--config",
                    &format!("oci-archive:{f}:{tag}"),
                ],
            );
            assert_eq!(ar::digest_of(raw_config.as_bytes()), image_id(&env, image));
        }
        let env2 = Kiln::new();
        let rootfs = umoci_unpack(&env2, &file, "2");
        assert!(rootfs.join("bin/busybox").is_file());
        assert_eq!(
            std::fs::read_link(rootfs.join("bin/sh")).unwrap(),
            Path::new("busybox")
        );
        assert_eq!(
            std::fs::read(rootfs.join("etc/motd")).unwrap(),
            b"layer two\n"
        );
        assert!(
            !rootfs.join("etc/hostname").exists(),
            "whiteout not applied"
        );
        let out = tools::run(
            rootfs.join("bin/busybox").to_str().unwrap(),
            &["echo", "ok"],
        );
        assert_eq!(out, "ok\n");
        let rootfs1 = umoci_unpack(&env2, &file, "1");
        assert_eq!(
            std::fs::read(rootfs1.join("etc/hostname")).unwrap(),
            b"kiln\n"
        );
    }
    assert_eq!(image_id(&env, "multi:2"), two);
}

#[test]
fn docker_save_is_read_by_skopeo_and_looks_like_docker_25() {
    let env = Kiln::new();
    let base = env.busybox_tar("bb.tar");
    let id = env
        .ok(&["import", base.to_str().unwrap(), "bb:1"])
        .trim()
        .to_string();
    let file = env.path("docker.tar");
    let f = file.to_str().unwrap();
    env.ok(&["save", "-o", f, "bb:1"]);
    let inspected = tools::run_json("skopeo", &["inspect", &format!("docker-archive:{f}")]);
    assert_eq!(inspected["Layers"], kiln_layers(&env, "bb:1"));
    assert_eq!(inspected["Os"], "linux");
    assert_eq!(inspected["Architecture"], host_architecture());
    let raw_config = tools::run(
        "skopeo",
        &[
            "inspect",
            "--raw",
            "--config",
            &format!("docker-archive:{f}"),
        ],
    );
    assert_eq!(ar::digest_of(raw_config.as_bytes()), id);

    let items = ar::read(&std::fs::read(&file).unwrap());
    let manifest = ar::json(&items, "manifest.json");
    assert_eq!(manifest[0]["RepoTags"], serde_json::json!(["bb:1"]));
    assert_eq!(manifest[0]["Config"], ar::blob_name(&id));
    let layer = kiln_layers(&env, "bb:1")[0].as_str().unwrap().to_string();
    assert_eq!(manifest[0]["Layers"][0], ar::blob_name(&layer));
    assert_eq!(
        ar::json(&items, "repositories"),
        serde_json::json!({"bb": {"1": layer.trim_start_matches("sha256:")}})
    );
    // docker ≥ 25 also writes the OCI layout beside it.
    let index = ar::json(&items, "index.json");
    assert_eq!(
        index["manifests"][0]["annotations"]["io.containerd.image.name"],
        "docker.io/library/bb:1"
    );
    ar::position(&items, "oci-layout");
    // An image saved by ID has no RepoTags.
    let by_id = env.path("by-id.tar");
    env.ok(&["save", "-o", by_id.to_str().unwrap(), &id[7..19]]);
    let items = ar::read(&std::fs::read(&by_id).unwrap());
    assert!(ar::json(&items, "manifest.json")[0]["RepoTags"].is_null());
    assert!(items.iter().all(|i| i.name != "repositories"));
}

#[test]
fn archives_written_by_skopeo_load() {
    let env = Kiln::new();
    let base = env.busybox_tar("bb.tar");
    env.ok(&["import", base.to_str().unwrap(), "bb:1"]);
    let two = two_layer_image(&env, &base, "multi:2");
    let oci = env.path("kiln-oci.tar");
    let docker = env.path("kiln-docker.tar");
    env.ok(&[
        "save",
        "--format",
        "oci",
        "-o",
        oci.to_str().unwrap(),
        "multi:2",
    ]);
    env.ok(&["save", "-o", docker.to_str().unwrap(), "multi:2"]);
    let sk_docker = env.path("skopeo-docker.tar");
    let sk_oci = env.path("skopeo-oci.tar");
    tools::run(
        "skopeo",
        &[
            "copy",
            "-q",
            &format!("oci-archive:{}", oci.display()),
            &format!(
                "docker-archive:{}:other/multi:from-oci",
                sk_docker.display()
            ),
        ],
    );
    tools::run(
        "skopeo",
        &[
            "copy",
            "-q",
            &format!("docker-archive:{}", docker.display()),
            &format!("oci-archive:{}:multi:from-docker", sk_oci.display()),
        ],
    );
    let fresh = Kiln::new();
    let out = fresh.ok(&["load", "-i", sk_docker.to_str().unwrap()]);
    assert_eq!(out, "Loaded image: other/multi:from-oci\n");
    // skopeo keeps the config bytes from an OCI source: same image ID.
    assert_eq!(image_id(&fresh, "other/multi:from-oci"), two);
    let out = fresh.ok(&["load", "-q", "-i", sk_oci.to_str().unwrap()]);
    assert_eq!(out, "Loaded image: multi:from-docker\n");
    // Converting to OCI, skopeo rewrites the config (drops docker-only
    // fields), so only the layers are the same.
    assert_eq!(
        kiln_layers(&fresh, "multi:from-docker"),
        kiln_layers(&env, "multi:2")
    );
    assert_eq!(fresh.entries("snapshots").len(), 2, "layers not shared");
    assert!(fresh.entries("tmp").is_empty());
}

#[test]
fn rmi_then_load_gives_back_the_same_image() {
    let env = Kiln::new();
    let base = env.busybox_tar("bb.tar");
    let id = two_layer_image(&env, &base, "multi:2");
    for (format, compression) in [
        ("docker", "none"),
        ("oci", "none"),
        ("oci", "gzip"),
        ("docker", "zstd"),
    ] {
        let file = env.path(&format!("{format}-{compression}.tar"));
        let f = file.to_str().unwrap();
        env.ok(&[
            "save",
            "--format",
            format,
            "--compression",
            compression,
            "-o",
            f,
            "multi:2",
        ]);
        env.ok(&["rmi", "multi:2"]);
        assert!(
            env.entries("snapshots").is_empty(),
            "{format}: rmi left layers"
        );
        assert_eq!(
            env.ok(&["load", "-i", f]),
            "Loaded image: multi:2\n",
            "{format}"
        );
        assert_eq!(image_id(&env, "multi:2"), id, "{format}/{compression}");
        assert_eq!(env.entries("snapshots").len(), 2);
    }
    let hist = env.ok(&["history", "multi:2"]);
    assert!(hist.contains("RUN edit /etc"), "{hist}");
    // Loading over a name that points elsewhere says so, like docker.
    let tiny = raw_tar(&[Entry::File("hello", b"hi")]);
    let tiny_path = env.path("tiny.tar");
    std::fs::write(&tiny_path, tiny).unwrap();
    let other = env.ok(&["import", tiny_path.to_str().unwrap(), "multi:2"]);
    let out = env.ok(&["load", "-i", env.path("oci-none.tar").to_str().unwrap()]);
    assert_eq!(
        out,
        format!(
            "The image multi:2 already exists, renaming the old one with ID {} to empty string\nLoaded image: multi:2\n",
            other.trim()
        )
    );
    assert_eq!(image_id(&env, "multi:2"), id);
}

#[test]
fn save_pipes_into_load_and_compressed_archives_load() {
    let env = Kiln::new();
    let base = env.busybox_tar("bb.tar");
    let id = env
        .ok(&["import", base.to_str().unwrap(), "bb:1"])
        .trim()
        .to_string();
    env.ok(&["tag", "bb:1", "bb:2"]);
    let other = Kiln::new();
    let mut save = env
        .cmd(&["save", "bb"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let load = other
        .cmd(&["load"])
        .stdin(save.stdout.take().unwrap())
        .output()
        .unwrap();
    assert!(save.wait().unwrap().success());
    assert!(
        load.status.success(),
        "{}",
        String::from_utf8_lossy(&load.stderr)
    );
    // A bare repository name saves all its tags.
    assert_eq!(
        String::from_utf8(load.stdout).unwrap(),
        "Loaded image: bb:1\nLoaded image: bb:2\n"
    );
    assert_eq!(image_id(&other, "bb:2"), id);

    // The whole archive gzip'd or zstd'd, as `docker load` accepts.
    let tar = env.output(&["save", "--format", "oci", &id]).stdout;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    let zst = zstd::encode_all(&tar[..], 3).unwrap();
    for (name, bytes) in [("gz", gz.finish().unwrap()), ("zst", zst)] {
        let third = Kiln::new();
        let out = third.kiln_with_stdin(&["load"], &bytes);
        assert!(out.code == 0, "{name}: {}", out.stderr);
        // Saved by ID: no name, docker's "Loaded image ID" line.
        assert_eq!(out.stdout, format!("Loaded image ID: {id}\n"));
    }
}

#[test]
fn save_refuses_a_terminal_and_unknown_images() {
    let env = Kiln::new();
    let tiny = env.path("tiny.tar");
    std::fs::write(&tiny, raw_tar(&[Entry::File("hello", b"hi")])).unwrap();
    env.ok(&["import", tiny.to_str().unwrap(), "tiny:1"]);
    // `script` gives kiln a pseudo-terminal as stdout.
    let cmd = format!(
        "{} --root {} save tiny:1",
        env!("CARGO_BIN_EXE_kiln"),
        env.root().display()
    );
    let out = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("cowardly refusing to save to a terminal. Use the -o flag or redirect"),
        "{text}"
    );
    let err = env.fails(&[
        "save",
        "-o",
        env.path("x.tar").to_str().unwrap(),
        "tiny:1",
        "ghost:1",
    ]);
    assert!(err.contains("no such image: ghost:1"), "{err}");
    assert!(!env.path("x.tar").exists(), "partial archive left behind");
    let leftovers: Vec<_> = std::fs::read_dir(env.dir.path())
        .unwrap()
        .filter_map(|e| {
            let n = e.unwrap().file_name().to_string_lossy().into_owned();
            n.contains("kiln-save").then_some(n)
        })
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let err = env.fails(&["save", "-o", "/nonexistent/dir/x.tar", "tiny:1"]);
    assert!(err.contains("does not exist"), "{err}");
}

/// The architecture that is not this machine's, for platform tests.
fn foreign_arch() -> &'static str {
    if host_architecture() == "arm64" {
        "amd64"
    } else {
        "arm64"
    }
}

/// A kiln OCI archive of a one-file image whose index.json entry is
/// replaced by a nested index holding `platforms` (each a manifest
/// descriptor; the host's points at the real manifest).
fn nested_index_archive(env: &Kiln, platforms: &[&str]) -> (Vec<Item>, String) {
    let tiny = env.path("tiny.tar");
    std::fs::write(&tiny, raw_tar(&[Entry::File("hello", b"hi")])).unwrap();
    let id = env
        .ok(&["import", tiny.to_str().unwrap()])
        .trim()
        .to_string();
    let bytes = env.output(&["save", "--format", "oci", &id]).stdout;
    let mut items = ar::read(&bytes);
    let mut index = ar::json(&items, "index.json");
    let real = index["manifests"][0].clone();
    let mut entries = Vec::new();
    for (i, arch) in platforms.iter().enumerate() {
        let mut d = if *arch == host_architecture() {
            real.clone()
        } else {
            // Blobs for other platforms are commonly left out of a layout.
            let missing = ar::digest_of(format!("absent {i}").as_bytes());
            serde_json::json!({"mediaType": real["mediaType"], "digest": missing, "size": 9})
        };
        d["platform"] = serde_json::json!({"os": if *arch == "unknown" { "unknown" } else { "linux" }, "architecture": arch});
        entries.push(d);
    }
    let nested = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_INDEX,
        "manifests": entries,
    });
    let (digest, size) = ar::put_blob(&mut items, &serde_json::to_vec(&nested).unwrap());
    index["manifests"] = serde_json::json!([{
        "mediaType": media::OCI_INDEX,
        "digest": digest,
        "size": size,
        "annotations": {"io.containerd.image.name": "docker.io/library/multiarch:1"},
    }]);
    ar::set_json(&mut items, "index.json", &index);
    (items, id)
}

#[test]
fn a_multi_platform_index_loads_the_host_platform() {
    let env = Kiln::new();
    let (items, id) = nested_index_archive(&env, &[foreign_arch(), "unknown", host_architecture()]);
    let file = env.path("multi.tar");
    std::fs::write(&file, ar::write(&items)).unwrap();
    let fresh = Kiln::new();
    let out = fresh.ok(&["load", "-i", file.to_str().unwrap()]);
    assert_eq!(out, "Loaded image: multiarch:1\n");
    assert_eq!(image_id(&fresh, "multiarch:1"), id);

    let env = Kiln::new();
    let (items, _) = nested_index_archive(&env, &[foreign_arch()]);
    let file = env.path("foreign.tar");
    std::fs::write(&file, ar::write(&items)).unwrap();
    let fresh = Kiln::new();
    let err = fresh.fails(&["load", "-i", file.to_str().unwrap()]);
    let want = format!(
        "has no image for linux/{} (it has: linux/{})",
        host_architecture(),
        foreign_arch()
    );
    assert!(err.contains(&want), "{err}");
    assert_eq!(fresh.ok(&["images", "-q"]), "");
}

#[test]
fn compressed_blobs_are_made_once_and_archives_are_reproducible() {
    let env = Kiln::new();
    let base = env.busybox_tar("bb.tar");
    env.ok(&["import", base.to_str().unwrap(), "bb:1"]);
    let mut archives = Vec::new();
    let mut blob_counts = Vec::new();
    for _ in 0..2 {
        archives.push(
            env.output(&["save", "--compression", "gzip", "bb:1"])
                .stdout,
        );
        blob_counts.push(env.entries("blobs/sha256").len());
    }
    assert!(archives[0] == archives[1], "two saves differ");
    // manifest + config + the gzip blob, made from the snapshot once (the
    // uncompressed tar is never written).
    assert_eq!(blob_counts, vec![3, 3]);
    let items = ar::read(&archives[0]);
    let manifest = ar::json(&items, "manifest.json");
    let layer = &items[ar::position(&items, manifest[0]["Layers"][0].as_str().unwrap())];
    assert_eq!(&layer.data[..2], &[0x1f, 0x8b], "layer is not gzip");
}

/// A character device with the numbers of `/dev/<like>`, made in `dir`.
fn char_device(dir: &Path, name: &str, like: &str) -> std::path::PathBuf {
    use std::os::unix::fs::MetadataExt;
    let rdev = std::fs::metadata(format!("/dev/{like}")).unwrap().rdev();
    let path = dir.join(name);
    nix::sys::stat::mknod(
        &path,
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::from_bits_truncate(0o666),
        rdev,
    )
    .unwrap();
    path
}

fn assert_char_device(path: &Path) {
    use std::os::unix::fs::FileTypeExt;
    let ft = std::fs::symlink_metadata(path).unwrap().file_type();
    assert!(ft.is_char_device(), "{} is now {ft:?}", path.display());
}

/// Runs `write` (a kiln command writing an archive to `fifo`) while a
/// thread reads the FIFO; returns what it read.
fn through_fifo(fifo: &Path, write: impl FnOnce()) -> Vec<u8> {
    use std::os::unix::fs::FileTypeExt;
    nix::unistd::mkfifo(fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let path = fifo.to_path_buf();
    let reader = std::thread::spawn(move || std::fs::read(path).unwrap());
    write();
    let bytes = reader.join().unwrap();
    let ft = std::fs::symlink_metadata(fifo).unwrap().file_type();
    assert!(ft.is_fifo(), "{} is now {ft:?}", fifo.display());
    bytes
}

/// Regression (issue 10, item 7): `kiln save -o /dev/full` exited 0 and
/// renamed a regular file over the device (a FIFO likewise). A FIFO or a
/// character device is written in place, like `docker save -o`, and a
/// write error is an error.
#[test]
fn save_to_a_device_or_fifo_writes_in_place_and_never_replaces_it() {
    let env = Kiln::with_busybox_image();
    let dir = tempfile::tempdir().unwrap();
    let null = char_device(dir.path(), "null", "null");
    env.ok(&["save", "-o", null.to_str().unwrap(), "busybox"]);
    assert_char_device(&null);

    let full = char_device(dir.path(), "full", "full");
    let err = env.fails(&["save", "-o", full.to_str().unwrap(), "busybox"]);
    assert!(err.contains("No space left on device"), "{err}");
    assert_char_device(&full);

    let fifo = dir.path().join("fifo");
    let tar = through_fifo(&fifo, || {
        env.ok(&["save", "-o", fifo.to_str().unwrap(), "busybox"]);
    });
    ar::position(&ar::read(&tar), "manifest.json");
    // Only the outputs the test made are in the directory: no temporary
    // file was left beside them.
    let mut left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(left, ["fifo", "full", "null"]);
}

/// Regression (issue 10, item 7): `build -o type=docker,dest=` over a
/// device or FIFO, as `kiln save -o`.
#[test]
fn build_output_to_a_device_or_fifo_writes_in_place_and_never_replaces_it() {
    let env = Kiln::with_busybox_image();
    let ctx = env.context(&[("Dockerfile", "FROM busybox\nENV A=1\n")]);
    let dir = tempfile::tempdir().unwrap();
    let output = |dest: &Path| format!("type=docker,dest={}", dest.display());
    let null = char_device(dir.path(), "null", "null");
    env.build(&ctx, &["-o", &output(&null)]).ok();
    assert_char_device(&null);

    let full = char_device(dir.path(), "full", "full");
    let err = env.build(&ctx, &["-o", &output(&full)]).fails().to_string();
    assert!(err.contains("No space left on device"), "{err}");
    assert_char_device(&full);

    let fifo = dir.path().join("fifo");
    let tar = through_fifo(&fifo, || {
        env.build(&ctx, &["-o", &output(&fifo)]).ok();
    });
    ar::position(&ar::read(&tar), "manifest.json");
}
