use super::*;
use crate::image::layer::extract::tests::{tar_of, E};
use crate::image::layer::{Compression, Encoder};
use crate::image::oci::{media, Descriptor, ImageConfig, Manifest, RootFs};
use crate::image::reference::ImageRef;
use std::io::Write;

fn store() -> (tempfile::TempDir, Store) {
    let t = tempfile::tempdir().unwrap();
    let s = Store::open(&t.path().join("root")).unwrap();
    (t, s)
}

fn name(s: &str) -> ImageRef {
    ImageRef::parse(s).unwrap()
}

fn config_for(layers: &[&LayerInfo]) -> ImageConfig {
    ImageConfig {
        architecture: "amd64".into(),
        os: "linux".into(),
        rootfs: RootFs {
            kind: "layers".into(),
            diff_ids: layers.iter().map(|l| l.diff_id.clone()).collect(),
        },
        ..Default::default()
    }
}

fn layer(s: &Store, files: &[(&str, &[u8])], parent: Option<&Digest>) -> LayerInfo {
    let entries: Vec<E> = files.iter().map(|(p, d)| E::File(p, d, 0o644)).collect();
    s.add_layer_from_tar(std::io::Cursor::new(tar_of(&entries)), parent)
        .unwrap()
}

fn tmp_entries(s: &Store) -> usize {
    std::fs::read_dir(s.root().join("tmp")).unwrap().count()
}

#[test]
fn blob_with_wrong_digest_is_never_visible() {
    let (_t, s) = store();
    let claimed = Digest::sha256_of(b"what the manifest says");
    let err = s
        .ingest_blob(
            &b"something else"[..],
            Some(&claimed),
            None,
            "layer 0 of test",
        )
        .unwrap_err();
    assert!(matches!(err, StoreError::DigestMismatch { .. }), "{err}");
    assert!(err.to_string().contains("layer 0 of test"), "{err}");
    assert!(!s.has_blob(&claimed));
    assert!(!s.has_blob(&Digest::sha256_of(b"something else")));
    let err = s
        .ingest_blob(&b"12345"[..], None, Some(3), "sized")
        .unwrap_err();
    assert!(matches!(err, StoreError::SizeMismatch { .. }), "{err}");
    let ok = s.ingest_bytes(b"hello", "test").unwrap();
    assert_eq!(s.read_blob(&ok.digest).unwrap(), b"hello");
    s.verify_blob(&ok.digest).unwrap();
    std::fs::write(s.blob_path(&ok.digest), b"hellO").unwrap();
    assert!(matches!(
        s.verify_blob(&ok.digest),
        Err(StoreError::DigestMismatch { .. })
    ));
}

#[test]
fn import_like_flow_and_layer_tars_in_every_compression() {
    let (_t, s) = store();
    let base = layer(&s, &[("etc/os-release", b"kiln"), ("bin/sh", b"#!")], None);
    assert_eq!(base.chain_id, base.diff_id);
    assert_eq!(base.size, 6);
    let img = s
        .write_image(
            &config_for(&[&base]),
            std::slice::from_ref(&base),
            &[name("test/base:1")],
        )
        .unwrap();
    assert_eq!(img.layers, vec![s.layer_info(&base.chain_id).unwrap()]);
    let by_name = s.image("test/base:1").unwrap();
    assert_eq!(by_name.id, img.id);
    assert_eq!(s.image(&img.id.to_string()).unwrap().id, img.id);
    assert_eq!(s.image(&img.id.hex()[..8]).unwrap().id, img.id);
    assert!(matches!(s.image("nope"), Err(StoreError::ImageNotFound(_))));
    let dirs = s.snapshot_dirs(&img).unwrap();
    assert_eq!(
        std::fs::read(dirs[0].join("etc/os-release")).unwrap(),
        b"kiln"
    );

    // The manifest's uncompressed layer blob is produced on demand.
    let mut raw = Vec::new();
    s.open_blob(&base.diff_id)
        .unwrap()
        .read_to_end(&mut raw)
        .unwrap();
    assert_eq!(Digest::sha256_of(&raw), base.diff_id);
    for c in [Compression::Gzip, Compression::Zstd, Compression::None] {
        let d = s.layer_tar(&img.layers[0], c).unwrap();
        assert_eq!(d.media_type, c.oci_media_type());
        let mut out = Vec::new();
        crate::image::layer::decompressed(s.open_blob(&d.digest).unwrap())
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(Digest::sha256_of(&out), base.diff_id, "{c:?}");
        // Made once: asking again gives the same blob.
        let again = s
            .layer_tar(&s.image("test/base:1").unwrap().layers[0], c)
            .unwrap();
        assert_eq!(again, d);
    }
}

#[test]
fn shared_layers_survive_until_the_last_image_goes() {
    let (_t, s) = store();
    let base = layer(&s, &[("base", b"b")], None);
    let top = layer(&s, &[("top", b"t")], Some(&base.chain_id));
    let a = s
        .write_image(
            &config_for(&[&base]),
            std::slice::from_ref(&base),
            &[name("a")],
        )
        .unwrap();
    let b = s
        .write_image(
            &config_for(&[&base, &top]),
            &[base.clone(), top.clone()],
            &[name("b")],
        )
        .unwrap();
    s.tag("a", &name("a:two")).unwrap();
    assert_eq!(s.list_images().unwrap().len(), 2);

    // Untagging one of two names deletes nothing.
    let ev = s.remove_image("a:two", false).unwrap();
    assert_eq!(ev, vec![RemoveEvent::Untagged("a:two".into())]);
    let ev = s.remove_image("a", false).unwrap();
    assert_eq!(
        ev,
        vec![
            RemoveEvent::Untagged("a:latest".into()),
            RemoveEvent::Deleted(a.id.clone())
        ]
    );
    assert!(
        s.snapshot_path(&base.chain_id).is_dir(),
        "shared base layer removed"
    );
    assert!(!s.has_blob(&a.manifest_digest));
    let ev = s.remove_image(&b.id.to_string(), false).unwrap();
    assert_eq!(
        ev,
        vec![
            RemoveEvent::Untagged("b:latest".into()),
            RemoveEvent::Deleted(b.id.clone()),
            RemoveEvent::Deleted(top.chain_id.clone()),
            RemoveEvent::Deleted(base.chain_id.clone()),
        ]
    );
    assert!(!s.snapshot_path(&base.chain_id).exists());
    let blobs = std::fs::read_dir(s.root().join("blobs/sha256"))
        .unwrap()
        .count();
    assert_eq!(blobs, 0);
}

#[test]
fn removing_by_id_with_tags_in_several_repos_needs_force() {
    let (_t, s) = store();
    let l = layer(&s, &[("f", b"f")], None);
    let img = s
        .write_image(&config_for(&[&l]), &[l], &[name("one"), name("two")])
        .unwrap();
    let err = s.remove_image(img.id.short(), false).unwrap_err();
    assert!(err.to_string().contains("must be forced"), "{err}");
    let ev = s.remove_image(img.id.short(), true).unwrap();
    assert_eq!(ev.len(), 4, "{ev:?}");
}

#[test]
fn pulled_image_flow_checks_diff_ids_and_media_types() {
    let (_t, s) = store();
    let tar = tar_of(&[E::File("hello", b"world", 0o644)]);
    let diff_id = Digest::sha256_of(&tar);
    let mut enc = Encoder::new(Vec::new(), Compression::Gzip).unwrap();
    enc.write_all(&tar).unwrap();
    let gz = enc.finish().unwrap();
    let blob = s.ingest_bytes(&gz, "layer").unwrap();
    let good = ImageConfig {
        architecture: "amd64".into(),
        os: "linux".into(),
        rootfs: RootFs {
            kind: "layers".into(),
            diff_ids: vec![diff_id.clone()],
        },
        ..Default::default()
    };
    let bad = ImageConfig {
        rootfs: RootFs {
            kind: "layers".into(),
            diff_ids: vec![Digest::sha256_of(b"lies")],
        },
        ..good.clone()
    };
    let manifest_for = |cfg: &ImageConfig, layer_mt: &str| {
        let c = s
            .ingest_bytes(&serde_json::to_vec(cfg).unwrap(), "config")
            .unwrap();
        let m = Manifest {
            schema_version: 2,
            media_type: Some(media::DOCKER_MANIFEST.into()),
            config: Descriptor::new(media::DOCKER_CONFIG, c.digest, c.size),
            layers: vec![Descriptor::new(layer_mt, blob.digest.clone(), blob.size)],
            annotations: None,
            extra: Default::default(),
        };
        serde_json::to_vec(&m).unwrap()
    };
    // Unknown layer media type: refused before anything is written.
    let odd = manifest_for(&good, "application/x-mystery");
    let err = s.ingest_manifest(&odd, None).unwrap_err();
    assert!(err.to_string().contains("unsupported media type"), "{err}");
    assert!(!s.has_blob(&Digest::sha256_of(&odd)));
    let err = s
        .ingest_manifest(br#"{"mediaType":"text/html"}"#, None)
        .unwrap_err();
    assert!(
        matches!(err, StoreError::UnsupportedMediaType { .. }),
        "{err}"
    );

    let lying = s
        .ingest_manifest(&manifest_for(&bad, media::DOCKER_LAYER_GZIP), None)
        .unwrap();
    let err = s
        .commit_image(&lying.digest, &[name("liar")], &[])
        .unwrap_err();
    assert!(err.to_string().contains(&blob.digest.to_string()), "{err}");
    assert!(matches!(s.image("liar"), Err(StoreError::ImageNotFound(_))));

    let m = s
        .ingest_manifest(&manifest_for(&good, media::DOCKER_LAYER_GZIP), None)
        .unwrap();
    let repo = ImageRef::parse_unnormalized_tag("example.com/app").unwrap();
    let img = s
        .commit_image(&m.digest, &[name("example.com/app:v1")], &[repo])
        .unwrap();
    assert_eq!(img.repo_digests.len(), 1);
    assert_eq!(img.layers[0].blobs[0].digest, blob.digest);
    let dirs = s.snapshot_dirs(&img).unwrap();
    assert_eq!(std::fs::read(dirs[0].join("hello")).unwrap(), b"world");
    // The pulled gzip blob is reused for push.
    assert_eq!(
        s.layer_tar(&img.layers[0], Compression::Gzip)
            .unwrap()
            .digest,
        blob.digest
    );
    let by_digest = format!("example.com/app@{}", m.digest);
    assert_eq!(s.image(&by_digest).unwrap().id, img.id);
    assert_eq!(tmp_entries(&s), 1, "only our own scratch dir");
}

#[test]
fn concurrent_extraction_of_one_layer_first_rename_wins() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("root");
    Store::open(&root).unwrap();
    let tar = tar_of(&[
        E::File("a/b/c", &[1u8; 100_000], 0o644),
        E::Dir("d/", 0o755),
    ]);
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let (root, tar) = (root.clone(), tar.clone());
            std::thread::spawn(move || {
                let s = Store::open(&root).unwrap();
                let l = s
                    .add_layer_from_tar(std::io::Cursor::new(tar), None)
                    .unwrap();
                s.write_image(
                    &config_for(&[&l]),
                    std::slice::from_ref(&l),
                    &[name("same")],
                )
                .unwrap();
                l
            })
        })
        .collect();
    let layers: Vec<LayerInfo> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(layers.windows(2).all(|w| w[0] == w[1]));
    let s = Store::open(&root).unwrap();
    assert_eq!(s.list_images().unwrap().len(), 1);
    assert_eq!(
        std::fs::read_dir(root.join("snapshots")).unwrap().count(),
        1
    );
    assert_eq!(std::fs::read_dir(root.join("tmp")).unwrap().count(), 0);
}

#[test]
fn leases_keep_snapshots_of_removed_images() {
    let (_t, s) = store();
    let l = layer(&s, &[("f", b"f")], None);
    let img = s
        .write_image(&config_for(&[&l]), std::slice::from_ref(&l), &[name("run")])
        .unwrap();
    let lease = s.create_lease(None, "container").unwrap();
    s.lease_image(&lease, &img).unwrap();
    s.remove_image("run", false).unwrap();
    assert!(
        s.snapshot_path(&l.chain_id).is_dir(),
        "leased snapshot collected"
    );
    s.release_lease(lease).unwrap();
    let report = s.gc().unwrap();
    assert!(report.snapshots.contains(&l.chain_id));
    assert!(!s.snapshot_path(&l.chain_id).exists());
}

#[test]
fn dead_processes_leases_and_scratch_are_cleaned_on_open() {
    let (t, s) = store();
    let root = t.path().join("root");
    // Simulate a killed importer: a lease of a dead process holding a
    // snapshot, and its scratch dir with a half-written file.
    let l = layer(&s, &[("f", b"f")], None);
    let me = scratch::ProcessId::current();
    s.write(|tx| {
        tx.prepare_cached("UPDATE leases SET pid_start = pid_start + 1")?
            .execute([])?;
        Ok(())
    })
    .unwrap();
    let dead_tmp = root.join(format!("tmp/{}-{}-dead", me.pid, me.start + 1));
    std::fs::create_dir_all(dead_tmp.join("extract-0")).unwrap();
    std::mem::forget(s); // as if killed: no Drop
    let s2 = Store::open(&root).unwrap();
    assert!(!dead_tmp.exists());
    assert!(
        !s2.snapshot_path(&l.chain_id).exists(),
        "orphan snapshot kept"
    );
    assert!(s2.list_images().unwrap().is_empty());
}

#[test]
fn upper_dir_becomes_a_snapshot() {
    let (_t, s) = store();
    let upper = s.scratch_path("upper").unwrap();
    std::fs::create_dir_all(upper.join("etc")).unwrap();
    std::fs::write(upper.join("etc/new"), b"n").unwrap();
    nix::sys::stat::mknod(
        &upper.join("gone"),
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::empty(),
        0,
    )
    .unwrap();
    let l = s.add_layer_from_dir(&upper, None).unwrap();
    assert!(!upper.exists());
    let snap = s.snapshot_path(&l.chain_id);
    assert_eq!(std::fs::read(snap.join("etc/new")).unwrap(), b"n");
    // The canonical tar reproduces the diff ID, with the whiteout as `.wh.gone`.
    let tar = s.layer_tar(&l, Compression::None).unwrap();
    assert_eq!(tar.digest, l.diff_id);
    let mut a = tar::Archive::new(s.open_blob(&tar.digest).unwrap());
    let names: Vec<String> = a
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    assert!(names.contains(&".wh.gone".to_string()), "{names:?}");
}

use std::io::Read;

#[test]
fn a_layer_rebased_on_another_parent_keeps_its_diff_and_blobs() {
    let (_t, s) = store();
    let upper = s.scratch_path("upper").unwrap();
    std::fs::create_dir_all(upper.join("app")).unwrap();
    std::fs::write(upper.join("app/f"), b"linked").unwrap();
    let linked = s.add_layer_from_dir(&upper, None).unwrap();
    let base = layer(&s, &[("etc/os", b"b")], None);

    let rebased = s.rebase_layer(&linked, Some(&base.chain_id)).unwrap();
    assert_eq!(rebased.diff_id, linked.diff_id);
    assert_eq!(
        rebased.chain_id,
        crate::image::layer::chain_id(Some(&base.chain_id), &linked.diff_id)
    );
    assert_eq!(rebased.blobs, linked.blobs);
    let snap = s.snapshot_path(&rebased.chain_id);
    assert_eq!(std::fs::read(snap.join("app/f")).unwrap(), b"linked");
    // The canonical tar is made from the new snapshot and checked.
    let tar = s.layer_tar(&rebased, Compression::None).unwrap();
    assert_eq!(tar.digest, linked.diff_id);
    // Again: the existing snapshot, nothing left in scratch.
    let before = tmp_entries(&s);
    assert_eq!(
        s.rebase_layer(&linked, Some(&base.chain_id)).unwrap(),
        rebased
    );
    assert_eq!(tmp_entries(&s), before);
    // On no parent it is the layer itself.
    assert_eq!(
        s.rebase_layer(&linked, None).unwrap().chain_id,
        linked.chain_id
    );
    let img = s
        .write_image(
            &config_for(&[&base, &rebased]),
            &[base.clone(), rebased.clone()],
            &[name("rebased")],
        )
        .unwrap();
    assert_eq!(s.snapshot_dirs(&img).unwrap().last(), Some(&snap));
}

/// A sweep killed before its commit moved files into the trash whose rows
/// are still there: the next open puts them back. One killed after its
/// commit left files without rows: they go. Nothing else is touched.
#[test]
fn an_interrupted_sweep_is_finished_at_open() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("root");
    let s = Store::open(&root).unwrap();
    let l = layer(&s, &[("f", b"kept")], None);
    let img = s
        .write_image(&config_for(&[&l]), std::slice::from_ref(&l), &[name("a")])
        .unwrap();
    drop(s);
    // Before the commit: the rows of these are still there.
    let rolled_back = root.join("trash/1-1-0");
    std::fs::create_dir_all(&rolled_back).unwrap();
    let blob = root.join("blobs/sha256").join(img.manifest_digest.hex());
    std::fs::rename(
        &blob,
        rolled_back.join(format!("blob-{}", img.manifest_digest.hex())),
    )
    .unwrap();
    let snap = root.join("snapshots").join(l.chain_id.hex());
    std::fs::rename(
        &snap,
        rolled_back.join(format!("snapshot-{}", l.chain_id.hex())),
    )
    .unwrap();
    let unknown = Digest::sha256_of(b"gone");
    std::fs::write(rolled_back.join(format!("blob-{}", unknown.hex())), b"gone").unwrap();
    // After the commit, half deleted.
    let committed = root.join("trash/1-1-1.doomed");
    std::fs::create_dir_all(committed.join(format!("snapshot-{}/sub", unknown.hex()))).unwrap();

    let s = Store::open(&root).unwrap();
    assert!(
        blob.is_file(),
        "a rolled-back sweep's blob was not put back"
    );
    assert!(
        snap.join("f").is_file(),
        "a rolled-back sweep's snapshot was not put back"
    );
    assert_eq!(std::fs::read_dir(root.join("trash")).unwrap().count(), 0);
    assert!(!root.join("blobs/sha256").join(unknown.hex()).exists());
    assert_eq!(s.check().unwrap(), vec![]);
    assert_eq!(s.image("a").unwrap().id, img.id);
}

#[test]
fn a_multi_platform_name_keeps_its_index_until_the_name_moves() {
    use crate::image::oci::{image_index, Platform};
    let (_t, s) = store();
    let l = layer(&s, &[("f", b"x")], None);
    let amd = s
        .write_image(&config_for(&[&l]), std::slice::from_ref(&l), &[])
        .unwrap();
    let mut arm_config = config_for(&[&l]);
    arm_config.architecture = "arm64".into();
    let arm = s
        .write_image(&arm_config, std::slice::from_ref(&l), &[])
        .unwrap();
    let desc = |i: &Image| Descriptor::new(media::OCI_MANIFEST, i.manifest_digest.clone(), 1);
    let arm64 = Platform::new("linux", "arm64", None);
    let index = image_index::assemble(
        &[
            (desc(&amd), Platform::linux_amd64()),
            (desc(&arm), arm64.clone()),
        ],
        &[],
    );
    let bytes = image_index::to_bytes(&index);
    let multi = name("multi:1");
    let digest = s
        .commit_index(
            &bytes,
            &[amd.id.clone(), arm.id.clone()],
            &amd.id,
            std::slice::from_ref(&multi),
        )
        .unwrap();
    assert_eq!(s.image("multi:1").unwrap().id, amd.id);
    assert_eq!(
        s.index_member_for(&multi, &arm64).unwrap(),
        Some(arm.id.clone())
    );
    // One line in `kiln images`; prune and GC keep the other platform.
    assert_eq!(s.list_images().unwrap().len(), 1);
    s.prune_images(false).unwrap();
    assert!(
        s.image_by_id(&arm.id).is_ok(),
        "a named index's member was pruned"
    );
    assert!(s.has_blob(&digest));
    // Removing the name removes every platform's image.
    s.tag("multi:1", &name("other:1")).unwrap();
    let again = s
        .commit_index(
            &bytes,
            &[amd.id.clone(), arm.id.clone()],
            &amd.id,
            std::slice::from_ref(&multi),
        )
        .unwrap();
    assert_eq!(again, digest);
    let events = s.remove_image("multi:1", false).unwrap();
    assert!(
        events.contains(&RemoveEvent::Deleted(arm.id.clone())),
        "{events:?}"
    );
    assert!(s.image_by_id(&amd.id).is_ok(), "other:1 still names it");
    let arm = s
        .write_image(&arm_config, std::slice::from_ref(&l), &[])
        .unwrap();
    s.commit_index(
        &bytes,
        &[amd.id.clone(), arm.id.clone()],
        &amd.id,
        std::slice::from_ref(&multi),
    )
    .unwrap();
    // Moving the name drops the index: the amd64 image (named only by
    // other:1 now) no longer belongs to one, and the index blob goes.
    s.tag(&arm.id.to_string(), &multi).unwrap();
    assert!(s.index_named(&multi).unwrap().is_none());
    s.remove_image("other:1", false).unwrap();
    assert_eq!(s.list_images().unwrap().len(), 1);
    s.prune_images(false).unwrap();
    assert!(s.image_by_id(&amd.id).is_err());
    assert!(!s.has_blob(&digest), "the unnamed index blob was kept");
}
