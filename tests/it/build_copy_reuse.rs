//! Incremental COPY: after one context file changes, the COPY reruns but
//! links the unchanged files from its previous snapshot; the image must
//! be exactly what a fresh copy makes.

use crate::support;

use std::collections::HashMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use support::kiln::{step_states, Kiln};

// Into a directory the base has, so the copy keeps its times (fsutil
// restores them) and two copies of one context can be byte-identical.
const DF: &str = "FROM busybox\nCOPY . /tmp/\n";

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
            "cat /tmp/same.txt /tmp/dir/deep.txt /tmp/changes.txt"
        ),
        "unchangeddeepv2"
    );
    assert_eq!(k.sh("reuse:2", "stat -c %a /tmp/mode.txt"), "600\n");

    // Unchanged files are one inode in both snapshots; changed content and
    // changed metadata got fresh copies.
    let root = k.root();
    for rel in ["tmp/same.txt", "tmp/dir/deep.txt"] {
        let inodes = inodes_of(&root, rel);
        assert_eq!(inodes.len(), 1, "{rel}: {inodes:?}");
    }
    for rel in ["tmp/changes.txt", "tmp/mode.txt"] {
        let inodes = inodes_of(&root, rel);
        assert_eq!(inodes.len(), 2, "{rel}: {inodes:?}");
    }

    // A fresh copy of the same context (no copy index: nothing to link
    // from) gives the same layer, byte for byte.
    std::fs::remove_dir_all(root.join("copy-index")).unwrap();
    k.build(&ctx, &["--no-cache", "-t", "fresh:2"]).ok();
    assert_eq!(top_layer(&k, "fresh:2"), top_layer(&k, "reuse:2"));
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
