//! COPY's ownership and mode flags compared with BuildKit: `--chown`
//! parts BuildKit resolves its own way, `--chmod` symbolic modes, hard
//! links kept.

use crate::support;

use support::archive;
use support::kiln::{step_states, Kiln};

/// `--chown` as BuildKit resolves it (moby/buildkit `client/llb/fileop.go`
/// `WithUser`/`UserOpt.marshal`, `solver/llbsolver/ops/user_linux.go`
/// `readUser`): an empty user part is uid 0, an empty group part gid 0,
/// an unknown user 0:0 and an unknown group keeps the user's gid; none of
/// them is an error.
#[test]
fn chown_empty_parts_and_unknown_names_resolve_as_buildkit() {
    let k = Kiln::with_busybox_image();
    let ctx = k.context(&[("f", "x")]);
    let df = "FROM busybox\n\
              COPY --chown=:extra f /grp\n\
              COPY --chown=tester: f /user-colon\n\
              COPY --chown=unknown f /unknown\n\
              COPY --chown=tester:unknown f /unknown-group\n\
              COPY --chown=unknown:extra f /unknown-user-group\n";
    k.build_ok(&ctx, df, "chown:1", &[]);
    let out = k.sh(
        "chown:1",
        "stat -c '%n %u:%g' /grp /user-colon /unknown /unknown-group /unknown-user-group",
    );
    assert_eq!(
        out,
        "/grp 0:1001\n/user-colon 1000:0\n/unknown 0:0\n/unknown-group 1000:1000\n\
         /unknown-user-group 0:1001\n"
    );
}

/// Symbolic `--chmod` on a directory source (BuildKit: fsutil
/// `copy.go` `copier.copy` applies the mode set to each copied entry in
/// `copyFileInfo`, but the directory whose contents are copied gets no file
/// info when it already existed, `copyDirectoryOnly` returning not
/// created; tonistiigi/dchapes-mode `ParseWithUmask` keeps `X` only after
/// `+`, and `Apply` tests the entry's original mode and `IsDir`):
/// an existing destination root keeps its mode, files and directories
/// below it each get the mode applied to their own.
#[test]
fn symbolic_chmod_on_a_directory_source_leaves_an_existing_destination_root_alone() {
    use std::os::unix::fs::PermissionsExt;
    let k = Kiln::with_busybox_image();
    let ctx = k.context(&[("dir/f", "x"), ("dir/sub/g", "y")]);
    for (path, mode) in [
        ("dir", 0o750),
        ("dir/sub", 0o700),
        ("dir/f", 0o640),
        ("dir/sub/g", 0o666),
    ] {
        std::fs::set_permissions(ctx.join(path), PermissionsExt::from_mode(mode)).unwrap();
    }
    let df = "FROM busybox\n\
              RUN mkdir -m 700 /ex1 /ex2 /ex3 /ex4\n\
              COPY --chmod=u+x dir/ /ex1/\n\
              COPY --chmod=go-w dir/ /ex2/\n\
              COPY --chmod=a=rX dir/ /ex3/\n\
              COPY --chmod=a+rX dir/ /ex4/\n\
              COPY --chmod=u+x dir/ /new1/\n";
    k.build_ok(&ctx, df, "symchmod:1", &[]);
    let out = k.sh(
        "symchmod:1",
        "for d in ex1 ex2 ex3 ex4 new1; do stat -c '%n %a' /$d /$d/f /$d/sub /$d/sub/g; done",
    );
    let expected = [
        // u+x: each entry's own mode plus u+x; the root untouched.
        "/ex1 700",
        "/ex1/f 740",
        "/ex1/sub 700",
        "/ex1/sub/g 766",
        // go-w.
        "/ex2 700",
        "/ex2/f 640",
        "/ex2/sub 700",
        "/ex2/sub/g 644",
        // `=` ignores X: directories too become 444.
        "/ex3 700",
        "/ex3/f 444",
        "/ex3/sub 444",
        "/ex3/sub/g 444",
        // +X: execute for directories and already-executable files only.
        "/ex4 700",
        "/ex4/f 644",
        "/ex4/sub 755",
        "/ex4/sub/g 666",
        // A root the copy creates: the mode applied to 0755 (fsutil#228).
        "/new1 755",
        "/new1/f 740",
        "/new1/sub 700",
        "/new1/sub/g 766",
    ];
    assert_eq!(out.lines().collect::<Vec<_>>(), expected);
}

/// The entries of the image's last layer tar, as `kiln save` writes it:
/// (name, type flag, hard-link target).
fn last_layer_entries(k: &Kiln, image: &str) -> Vec<(String, char, Option<String>)> {
    let out = k.path(&format!("{}.tar", image.replace(':', "-")));
    k.ok(&["save", "-o", out.to_str().unwrap(), image]);
    let items = archive::read(&std::fs::read(&out).unwrap());
    let manifest = archive::json(&items, "manifest.json");
    let layer = manifest[0]["Layers"].as_array().unwrap().last().unwrap();
    let blob = &items[archive::position(&items, layer.as_str().unwrap())].data;
    let tar = if blob.starts_with(&[0x1f, 0x8b]) {
        let mut plain = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&blob[..]), &mut plain)
            .unwrap();
        plain
    } else {
        blob.clone()
    };
    archive::read(&tar)
        .into_iter()
        .map(|i| (i.name, i.kind.as_byte() as char, i.link))
        .collect()
}

/// The image's last layer's diff ID.
fn last_diff_id(k: &Kiln, image: &str) -> String {
    let layers = k.config(image)["RootFS"]["Layers"].clone();
    layers
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .as_str()
        .unwrap()
        .to_string()
}

/// Hard links among the files one COPY source copies stay hard links, as
/// BuildKit keeps them (tonistiigi/fsutil `copy/copy.go` `copier.copy`:
/// `getLinkSource` and its inode map, one copier per `copy.Copy` call,
/// which moby/buildkit `solver/llbsolver/file/backend.go` `docopy` makes
/// per source path match): one inode in the image, a hard-link entry for
/// the second name in the layer tar (containerd `archive` `tarWriter`
/// likewise). Separate sources are separate copies. A rerun that links
/// unchanged files from the previous snapshot (`exec::copy_reuse`) writes
/// the same layer as a fresh copy.
#[test]
fn hard_links_in_a_copy_source_stay_one_inode_and_one_tar_entry() {
    let k = Kiln::with_busybox_image();
    let ctx = k.context(&[("dir/a", "same"), ("dir/x", "x1"), ("b", "bb")]);
    std::fs::hard_link(ctx.join("dir/a"), ctx.join("dir/a2")).unwrap();
    std::fs::hard_link(ctx.join("b"), ctx.join("b2")).unwrap();
    // Into `/`, so the layer holds only copied entries, their mtimes the
    // sources' (a directory the copy makes would have the build's time).
    let df = "FROM busybox\nCOPY b b2 /m/\nCOPY dir/ /\n";
    k.build_ok(&ctx, df, "links:1", &[]);
    let stat = "stat -c '%n %h' /a /a2 /x /m/b /m/b2; \
                [ $(stat -c %i /a) = $(stat -c %i /a2) ] && echo same; \
                [ $(stat -c %i /m/b) = $(stat -c %i /m/b2) ] && echo m-same; true";
    assert_eq!(
        k.sh("links:1", stat),
        "/a 2\n/a2 2\n/x 1\n/m/b 1\n/m/b2 1\nsame\n"
    );
    let expected = vec![
        ("a".to_string(), '0', None),
        ("a2".to_string(), '1', Some("a".to_string())),
        ("x".to_string(), '0', None),
    ];
    assert_eq!(last_layer_entries(&k, "links:1"), expected);

    // A changed file reruns the COPY, linking a and a2 from before.
    std::fs::write(ctx.join("dir/x"), "x2").unwrap();
    let progress = k.build_ok(&ctx, df, "links:2", &[]);
    assert!(
        !step_states(&progress)
            .0
            .iter()
            .any(|s| s.contains("COPY dir/")),
        "{progress}"
    );
    // (The rerun did link: the snapshot's inode has more names than the
    // image shows, which a fresh copy never has.)
    let nlink: u32 = k.sh("links:2", "stat -c %h /a").trim().parse().unwrap();
    assert!(
        nlink > 2,
        "the COPY rerun did not reuse the earlier snapshot"
    );
    assert_eq!(last_layer_entries(&k, "links:2"), expected);
    k.build_ok(&ctx, df, "links:3", &["--no-cache"]);
    assert_eq!(last_diff_id(&k, "links:2"), last_diff_id(&k, "links:3"));
}
