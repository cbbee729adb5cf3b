//! Incremental COPY: after one context file changes, the COPY reruns but
//! links the unchanged files from its previous snapshot; the image must
//! be exactly what a fresh copy makes.

mod support;

use std::collections::HashMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use support::kiln::{step_states, Kiln};

const DF: &str = "FROM busybox\nCOPY . /src\n";

/// Every file named `name` under the store's snapshots, by inode.
fn inodes_of(root: &Path, rel: &str) -> HashMap<u64, usize> {
    let mut seen = HashMap::new();
    for snap in std::fs::read_dir(root.join("snapshots")).unwrap() {
        let path = snap.unwrap().path().join(rel);
        if let Ok(md) = std::fs::symlink_metadata(&path) {
            *seen.entry(md.ino()).or_insert(0) += 1;
        }
    }
    seen
}

/// The diff ID of the image's top layer.
fn top_layer(k: &Kiln, image: &str) -> String {
    let layers: Vec<String> =
        serde_json::from_str(&k.inspect(image, "{{json .RootFS.Layers}}")).unwrap();
    layers.last().unwrap().clone()
}

#[test]
fn a_rerun_copy_links_unchanged_files_and_makes_the_same_layer_as_a_fresh_copy() {
    let k = Kiln::with_busybox_image();
    let files = [
        ("same.txt", "unchanged"),
        ("dir/deep.txt", "deep"),
        ("changes.txt", "v1"),
        ("mode.txt", "mode"),
    ];
    let ctx = k.context(&files);
    std::fs::write(ctx.join("Dockerfile"), DF).unwrap();
    k.build_ok(&ctx, DF, "reuse:1", &[]);

    std::fs::write(ctx.join("changes.txt"), "v2").unwrap();
    std::fs::set_permissions(ctx.join("mode.txt"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = k.build(&ctx, &["-t", "reuse:2"]);
    out.ok();
    let (cached, _) = step_states(&out.stderr);
    assert!(!cached.iter().any(|s| s.contains("COPY")), "{}", out.stderr);
    assert_eq!(
        k.sh(
            "reuse:2",
            "cat /src/same.txt /src/dir/deep.txt /src/changes.txt"
        ),
        "unchangeddeepv2"
    );
    assert_eq!(k.sh("reuse:2", "stat -c %a /src/mode.txt"), "600\n");

    // Unchanged files are one inode in both snapshots; changed content and
    // changed metadata got fresh copies.
    let root = k.root();
    for rel in ["src/same.txt", "src/dir/deep.txt"] {
        let inodes = inodes_of(&root, rel);
        assert_eq!(inodes.len(), 1, "{rel}: {inodes:?}");
    }
    for rel in ["src/changes.txt", "src/mode.txt"] {
        let inodes = inodes_of(&root, rel);
        assert_eq!(inodes.len(), 2, "{rel}: {inodes:?}");
    }

    // The same context copied by a store that never saw the first version
    // gives the same COPY layer, byte for byte (each test store imports its
    // own busybox, so only the top layer is comparable).
    let fresh = Kiln::with_busybox_image();
    let ctx2 = fresh.context(&files);
    std::fs::write(ctx2.join("changes.txt"), "v2").unwrap();
    std::fs::set_permissions(
        ctx2.join("mode.txt"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    std::fs::write(ctx2.join("Dockerfile"), DF).unwrap();
    // Same mtimes as the first context, so the tars can be equal.
    for rel in [
        "same.txt",
        "dir/deep.txt",
        "changes.txt",
        "mode.txt",
        "Dockerfile",
        "dir",
        "",
    ] {
        let modified = std::fs::metadata(ctx.join(rel))
            .unwrap()
            .modified()
            .unwrap();
        let times = std::fs::FileTimes::new().set_modified(modified);
        std::fs::File::open(ctx2.join(rel))
            .unwrap()
            .set_times(times)
            .unwrap();
    }
    fresh.build(&ctx2, &["-t", "reuse:2"]).ok();
    assert_eq!(top_layer(&fresh, "reuse:2"), top_layer(&k, "reuse:2"));
}

#[test]
fn builder_prune_forgets_the_copy_indexes() {
    let k = Kiln::with_busybox_image();
    let ctx = k.context(&[("a.txt", "a")]);
    k.build_ok(&ctx, DF, "prune:1", &[]);
    assert!(k
        .root()
        .join("copy-index")
        .read_dir()
        .unwrap()
        .next()
        .is_some());
    k.kiln(&["builder", "prune", "-f"]).ok();
    assert!(!k.root().join("copy-index").exists());
}
