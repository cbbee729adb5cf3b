//! The local image commands driven through the real binary.

use crate::support;
use support::kiln::Kiln;

#[test]
fn busybox_import_shows_in_images_inspect_and_history() {
    let env = Kiln::new();
    let tar = env.busybox_tar("busybox.tar");
    let out = env.ok(&[
        "import",
        "--change",
        r#"CMD ["sh"]"#,
        "-c",
        "ENV GREETING=hello",
        "-c",
        "WORKDIR /root",
        tar.to_str().unwrap(),
        "busybox:imported",
    ]);
    let id = out.trim();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{out}");

    let images = env.ok(&["images"]);
    let lines: Vec<&str> = images.lines().collect();
    assert!(
        lines[0].starts_with("REPOSITORY   TAG        IMAGE ID       CREATED"),
        "{images}"
    );
    assert_eq!(lines.len(), 2, "{images}");
    assert!(lines[1].starts_with("busybox      imported   "), "{images}");
    assert!(lines[1].contains(&id[7..19]), "{images}");
    assert!(lines[1].ends_with("MB"), "{images}");
    assert_eq!(env.ok(&["images", "-q"]).trim(), &id[7..19]);
    assert_eq!(env.ok(&["images", "-q", "--no-trunc"]).trim(), id);
    assert_eq!(env.ok(&["images", "-q", "nothere"]).trim(), "");

    let fmt = env.ok(&[
        "inspect",
        "--format",
        "{{.Id}}|{{.Config.Cmd}}|{{json .Config.Env}}|{{.Config.WorkingDir}}|{{.Os}}|{{len .RootFS.Layers}}",
        "busybox:imported",
    ]);
    assert_eq!(
        fmt.trim(),
        format!(r#"{id}|[sh]|["GREETING=hello"]|/root|linux|1"#)
    );
    let json: serde_json::Value = serde_json::from_str(&env.ok(&["inspect", &id[7..15]])).unwrap();
    assert_eq!(json[0]["RepoTags"][0], "busybox:imported");
    assert_eq!(json[0]["RootFS"]["Type"], "layers");
    assert!(json[0]["Size"].as_u64().unwrap() > 500_000);

    let hist = env.ok(&["history", "busybox:imported"]);
    let h: Vec<&str> = hist.lines().collect();
    assert!(h[0].starts_with("IMAGE          CREATED"), "{hist}");
    assert!(
        h[1].starts_with(&id[7..19]) && h[1].ends_with("Imported from -"),
        "{hist}"
    );
    // The alias spelling works too.
    assert_eq!(env.ok(&["image", "ls", "-q"]), env.ok(&["images", "-q"]));
    assert!(
        env.entries("tmp").is_empty(),
        "temp files left: {:?}",
        env.entries("tmp")
    );
}

#[test]
fn tag_and_rmi_keep_shared_layers_until_unused() {
    let env = Kiln::new();
    let tar = env.busybox_tar("bb.tar");
    let t = tar.to_str().unwrap();
    let a = env.ok(&["import", t, "a:1"]).trim().to_string();
    // Same tarball again: same layer, a different image (new created time).
    let b = env
        .ok(&["import", "-m", "second", t, "b:1"])
        .trim()
        .to_string();
    assert_ne!(a, b);
    assert_eq!(env.entries("snapshots").len(), 1, "layer not shared");
    env.ok(&["tag", "a:1", "other/repo:x"]);
    env.ok(&["image", "tag", &b, "b:2"]);

    let err = env.fails(&["rmi", &a[7..19]]);
    assert!(err.contains("must be forced"), "{err}");
    assert_eq!(
        env.ok(&["rmi", "other/repo:x"]).trim(),
        "Untagged: other/repo:x"
    );
    let out = env.ok(&["rmi", "a:1"]);
    assert_eq!(out, format!("Untagged: a:1\nDeleted: {a}\n"));
    assert_eq!(
        env.entries("snapshots").len(),
        1,
        "shared snapshot removed early"
    );
    let out = env.ok(&["rmi", "-f", &b]);
    assert!(out.contains("Untagged: b:1\nUntagged: b:2\n"), "{out}");
    assert!(out.contains(&format!("Deleted: {b}\n")), "{out}");
    assert_eq!(
        out.lines().filter(|l| l.starts_with("Deleted:")).count(),
        2,
        "{out}"
    );
    assert!(env.entries("snapshots").is_empty());
    assert!(env.entries("blobs/sha256").is_empty());
    assert_eq!(env.ok(&["images", "-q"]), "");
}

#[test]
fn prune_removes_dangling_images_only() {
    let env = Kiln::new();
    let tar = env.busybox_tar("bb.tar");
    let t = tar.to_str().unwrap();
    let keep = env.ok(&["import", t, "keep:1"]).trim().to_string();
    let dangling = env.ok(&["import", t]).trim().to_string();
    let images = env.ok(&["images"]);
    assert!(images.contains("<none>       <none>"), "{images}");
    let out = env.ok(&["image", "prune", "-f"]);
    assert!(out.starts_with("Deleted Images:\n"), "{out}");
    assert!(out.contains(&format!("deleted: {dangling}")), "{out}");
    assert!(out.contains("Total reclaimed space: "), "{out}");
    assert_eq!(env.ok(&["images", "-q", "--no-trunc"]).trim(), keep);
    let out = env.ok(&["image", "prune", "-a", "-f"]);
    assert!(
        out.contains(&format!("untagged: keep:1\ndeleted: {keep}")),
        "{out}"
    );
    assert!(env.entries("snapshots").is_empty());
}

#[test]
fn unknown_images_and_bad_names_are_clear_errors() {
    let env = Kiln::new();
    assert!(env
        .fails(&["rmi", "ghost"])
        .contains("no such image: ghost"));
    assert!(env
        .fails(&["inspect", "ghost"])
        .contains("No such object: ghost"));
    assert!(env.fails(&["tag", "ghost", "x"]).contains("no such image"));
    let tar = env.busybox_tar("bb.tar");
    let err = env.fails(&["import", tar.to_str().unwrap(), "Bad:Name"]);
    assert!(err.contains("invalid reference format"), "{err}");
    let err = env.fails(&["import", "-c", "RUN rm -rf /", tar.to_str().unwrap()]);
    assert!(err.contains("RUN is not a valid change command"), "{err}");
    assert!(env.entries("snapshots").is_empty());
}
