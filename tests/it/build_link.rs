//! `COPY --link`: the copy is made on an empty tree and merged onto the
//! stage (BuildKit's `llb.Merge` lowering), so a new base reuses the cached
//! copy and its very layer; the destination path is made of directories,
//! never resolved through the base's symlinks; `--chmod` makes it a plain
//! copy.

use crate::support;

use support::kiln::{step_states, Kiln};

/// The image's layer diff IDs, as `kiln inspect` shows them.
#[track_caller]
fn layers(k: &Kiln, image: &str) -> Vec<String> {
    k.config(image)["RootFS"]["Layers"]
        .as_array()
        .expect("RootFS.Layers")
        .iter()
        .map(|l| l.as_str().unwrap().to_string())
        .collect()
}

/// Two bases on busybox: `base-a:1` and `base-b:1`, each with a marker
/// file (and one layer more than busybox).
fn bases(k: &Kiln) {
    for name in ["a", "b"] {
        let ctx = k.context(&[]);
        k.build_ok(
            &ctx,
            &format!("FROM busybox\nRUN echo {name} > /base-{name}\n"),
            &format!("base-{name}:1"),
            &[],
        );
    }
}

#[test]
fn a_new_base_reuses_the_cached_link_layer() {
    let k = Kiln::with_busybox_image();
    bases(&k);
    let ctx = k.context(&[("f", "linked\n")]);
    let dockerfile = "ARG BASE\nFROM ${BASE}\nCOPY --link f /app/f\nRUN cat /app/f > /seen\n";
    let first = k.build_ok(&ctx, dockerfile, "out:a", &["--build-arg", "BASE=base-a:1"]);
    let (cached, done) = step_states(&first);
    assert!(
        done.contains(&"[2/3] COPY --link f /app/f".to_string()),
        "{first}"
    );
    assert!(!cached.iter().any(|s| s.contains("COPY")), "{first}");

    let second = k.build_ok(&ctx, dockerfile, "out:b", &["--build-arg", "BASE=base-b:1"]);
    let (cached, done) = step_states(&second);
    assert!(
        cached.contains(&"[2/3] COPY --link f /app/f".to_string()),
        "the linked copy does not depend on the base:\n{second}"
    );
    assert!(
        done.contains(&"[2/3] LINK COPY --link f /app/f".to_string()),
        "{second}"
    );
    assert!(done.contains(&"[3/3] RUN cat /app/f > /seen".to_string()));

    // The same layer on each base: base layers, link layer, RUN layer.
    let (a, b) = (layers(&k, "out:a"), layers(&k, "out:b"));
    let (base_a, base_b) = (layers(&k, "base-a:1"), layers(&k, "base-b:1"));
    assert_eq!(a.len(), base_a.len() + 2, "{a:?}");
    assert_eq!(b.len(), base_b.len() + 2, "{b:?}");
    assert_eq!(a[..base_a.len()], base_a[..]);
    assert_eq!(b[..base_b.len()], base_b[..]);
    assert_eq!(a[base_a.len()], b[base_b.len()], "the link layer's diff ID");

    // The RUN saw the new base and the linked file.
    assert_eq!(
        k.sh("out:b", "cat /seen /base-b; ls /base-a 2>&1 || true"),
        "linked\nb\nls: /base-a: No such file or directory\n"
    );
    assert_eq!(k.sh("out:a", "cat /seen /base-a"), "linked\na\n");

    // Back to the first base: every step, the merge included, is cached.
    let third = k.build_ok(
        &ctx,
        dockerfile,
        "out:a2",
        &["--build-arg", "BASE=base-a:1"],
    );
    let (_, done) = step_states(&third);
    assert!(done.iter().all(|s| s.starts_with("[internal]")), "{third}");
    assert_eq!(layers(&k, "out:a2"), a);
}

#[test]
fn missing_parents_are_created_and_existing_ones_take_the_link_layers_attributes() {
    let k = Kiln::with_busybox_image();
    let ctx = k.context(&[("f", "x")]);
    // busybox has /tmp (1777) and /home/tester (1000:1000).
    k.build_ok(
        &ctx,
        "FROM busybox\nCOPY --link f /deep/new/dir/f\n\
         COPY --link --chown=1000:1001 f /owned/sub/\n\
         COPY --link f /tmp/x/f\n",
        "parents:1",
        &[],
    );
    let stat = "stat -c '%n %a %u:%g' /deep /deep/new /deep/new/dir /deep/new/dir/f \
                /owned /owned/sub /owned/sub/f /tmp /tmp/x";
    assert_eq!(
        k.sh("parents:1", stat),
        "/deep 755 0:0\n/deep/new 755 0:0\n/deep/new/dir 755 0:0\n/deep/new/dir/f 644 0:0\n\
         /owned 755 1000:1001\n/owned/sub 755 1000:1001\n/owned/sub/f 644 1000:1001\n\
         /tmp 755 0:0\n/tmp/x 755 0:0\n",
        "created parents are 0755, owned by --chown; an existing parent shows the \
         link layer's directory (BuildKit's documented --link caveat)"
    );
}

#[test]
fn the_destination_is_not_resolved_through_a_base_symlink() {
    let k = Kiln::with_busybox_image();
    let ctx = k.context(&[]);
    k.build_ok(
        &ctx,
        "FROM busybox\nRUN mkdir /real && echo old > /real/old && ln -s /real /app\n",
        "symbase:1",
        &[],
    );
    let ctx = k.context(&[("f", "new\n")]);
    // BuildKit's Dockerfile reference (COPY --link, "Incompatibilities
    // with --link=false"): the copy cannot follow a symlink of the
    // previous state; the destination path it creates is made of
    // directories only, and hides the base's symlink.
    k.build_ok(
        &ctx,
        "FROM symbase:1\nCOPY --link f /app/f\n",
        "linked:1",
        &[],
    );
    assert_eq!(
        k.sh(
            "linked:1",
            "test -L /app && echo link || echo dir; ls /app; ls /real"
        ),
        "dir\nf\nold\n"
    );
    // Without --link the copy goes through the symlink.
    k.build_ok(&ctx, "FROM symbase:1\nCOPY f /app/f\n", "plain:1", &[]);
    assert_eq!(
        k.sh("plain:1", "test -L /app && echo link || echo dir; ls /real"),
        "link\nf\nold\n"
    );
}

#[test]
fn link_with_chmod_is_a_plain_copy_and_chown_names_are_refused() {
    let k = Kiln::with_busybox_image();
    bases(&k);
    let ctx = k.context(&[]);
    k.build_ok(
        &ctx,
        "ARG BASE\nFROM ${BASE}\nRUN mkdir /real && ln -s /real /app\n",
        "symbase:a",
        &["--build-arg", "BASE=base-a:1"],
    );
    k.build_ok(
        &ctx,
        "ARG BASE\nFROM ${BASE}\nRUN mkdir /real && ln -s /real /app\n",
        "symbase:b",
        &["--build-arg", "BASE=base-b:1"],
    );
    let ctx = k.context(&[("f", "x")]);
    let dockerfile = "ARG BASE\nFROM ${BASE}\nCOPY --link --chmod=600 f /app/f\n";
    let first = k.build_ok(
        &ctx,
        dockerfile,
        "chmod:a",
        &["--build-arg", "BASE=symbase:a"],
    );
    assert!(!first.contains("LINK COPY"), "no merge step:\n{first}");
    // A plain copy: through the base's symlink, with the mode asked for.
    assert_eq!(
        k.sh("chmod:a", "test -L /app && echo link; stat -c '%a' /real/f"),
        "link\n600\n"
    );
    // ...that depends on its base.
    let second = k.build_ok(
        &ctx,
        dockerfile,
        "chmod:b",
        &["--build-arg", "BASE=symbase:b"],
    );
    let (_, done) = step_states(&second);
    assert!(
        done.contains(&"[2/2] COPY --link --chmod=600 f /app/f".to_string()),
        "{second}"
    );

    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nCOPY --link --chown=tester f /app/f\n",
    )
    .unwrap();
    let err = k.build(&ctx, &["-t", "named:1"]);
    assert!(
        err.fails().contains(
            "COPY --link --chown=tester: user and group names need the base image's \
             /etc/passwd and /etc/group, which a linked copy does not read; use numeric ids"
        ),
        "{}",
        err.stderr
    );
}
