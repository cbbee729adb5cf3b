//! A build writes to no host path but its declared outputs (the store
//! and `--output`): whatever a step does through its mounts, the build
//! context stays byte for byte as it was, and each step sees it as it is
//! on disk, never an earlier step's writes.

use crate::support;

use std::path::Path;

use support::kiln::{host_mounts_under, Kiln};
use support::tree::listing;

/// The context the tests below try to damage.
fn checkout(k: &Kiln, extra: &[(&str, &str)]) -> std::path::PathBuf {
    let mut files = vec![("a.txt", "a\n"), ("dir/b.txt", "b\n"), ("dir/sub/", "")];
    files.extend_from_slice(extra);
    k.context(&files)
}

/// Builds `dockerfile` in `ctx`, written there before the "before"
/// listing is taken; asserts the build succeeded, left the context as it
/// was and left nothing mounted.
#[track_caller]
fn build_leaves_context_alone(k: &Kiln, ctx: &Path, dockerfile: &str, tag: &str) {
    std::fs::write(ctx.join("Dockerfile"), dockerfile).unwrap();
    let before = listing(ctx);
    k.build(ctx, &["-t", tag]).ok();
    assert_eq!(listing(ctx), before, "the build changed the context");
    assert_eq!(host_mounts_under(k.dir.path()), Vec::<String>::new());
}

const RW_CONTEXT_BIND: &str = "\
FROM busybox
RUN --mount=type=bind,target=/ctx,rw \\
    rm /ctx/dir/b.txt && echo x > /ctx/new.txt && echo more >> /ctx/a.txt \\
    && chmod 600 /ctx/a.txt && touch -d 2001-01-01 /ctx/dir && rmdir /ctx/dir/sub \\
    && test ! -e /ctx/dir/b.txt && cat /ctx/new.txt /ctx/a.txt > /own-writes
RUN --mount=type=bind,source=dir,target=/d,rw rm -rf /d/* && touch /d/planted && test -e /d/planted
RUN --mount=type=bind,target=/ctx \\
    cat /ctx/a.txt /ctx/dir/b.txt > /later && ls /ctx /ctx/dir >> /later \\
    && stat -c %a /ctx/a.txt >> /later
";

#[test]
fn rw_context_bind_mount_wrote_into_the_users_checkout() {
    let k = Kiln::with_busybox_image();
    let ctx = checkout(&k, &[]);
    build_leaves_context_alone(&k, &ctx, RW_CONTEXT_BIND, "rw-ctx:1");
    // The step saw its own writes; the later one the files as on disk.
    assert_eq!(k.sh("rw-ctx:1", "cat /own-writes"), "x\na\nmore\n");
    assert_eq!(
        k.sh("rw-ctx:1", "cat /later"),
        "a\nb\n/ctx:\nDockerfile\na.txt\ndir\n\n/ctx/dir:\nb.txt\nsub\n644\n"
    );
}

/// With a `.dockerignore` the steps see a hard-linked mirror of the kept
/// files: writing through it would write the user's own inodes.
#[test]
fn rw_context_bind_mount_wrote_into_the_users_checkout_through_the_ignore_mirror() {
    let k = Kiln::with_busybox_image();
    let ctx = checkout(
        &k,
        &[(".dockerignore", "ignored.txt\n"), ("ignored.txt", "i\n")],
    );
    build_leaves_context_alone(&k, &ctx, RW_CONTEXT_BIND, "rw-ctx:2");
    // (`ls` shows no ignored.txt, and hides the kept .dockerignore.)
    assert_eq!(k.sh("rw-ctx:2", "cat /own-writes"), "x\na\nmore\n");
    assert_eq!(
        k.sh("rw-ctx:2", "cat /later"),
        "a\nb\n/ctx:\nDockerfile\na.txt\ndir\n\n/ctx/dir:\nb.txt\nsub\n644\n"
    );
}

#[test]
fn read_only_context_bind_refuses_every_write() {
    let k = Kiln::with_busybox_image();
    let ctx = checkout(&k, &[(".dockerignore", "ignored.txt\n")]);
    let dockerfile = "\
FROM busybox
RUN --mount=type=bind,target=/ctx --mount=type=bind,source=dir,target=/d \\
    for op in 'touch /ctx/new' 'rm /ctx/a.txt' 'chmod 777 /ctx/a.txt' 'echo x >> /ctx/a.txt' \\
              'touch -d 2001-01-01 /ctx/a.txt' 'chown 1:1 /ctx/a.txt' 'rm /d/b.txt' 'mkdir /d/m'; do \\
        if sh -c \"$op\" 2>/dev/null; then echo \"allowed: $op\"; fi; \\
    done > /result; grep -E ' /(ctx|d) ' /proc/mounts | cut -d' ' -f2,4 | cut -d, -f1 >> /result
";
    build_leaves_context_alone(&k, &ctx, dockerfile, "ro-ctx:1");
    assert_eq!(k.sh("ro-ctx:1", "cat /result"), "/ctx ro\n/d ro\n");
}

/// After a RUN, kiln removes the mount points it had to create from the
/// step's upper dir. The command may have replaced a directory above one
/// with a symlink to a host path: the removal must not follow it.
#[test]
fn mount_stub_removal_followed_a_symlink_out_of_the_run() {
    let k = Kiln::with_busybox_image();
    let ctx = checkout(&k, &[]);
    let victim = k.path("victim");
    std::fs::create_dir_all(victim.join("y")).unwrap();
    std::fs::write(victim.join("z"), "").unwrap();
    let dockerfile = format!(
        "FROM busybox
RUN --mount=type=tmpfs,target=/x/y --mount=type=bind,source=a.txt,target=/w/z \\
    mv /x /x.moved && ln -s {v} /x && mv /w /w.moved && ln -s {v} /w
",
        v = victim.display()
    );
    let before = listing(&victim);
    build_leaves_context_alone(&k, &ctx, &dockerfile, "stubs:1");
    assert_eq!(listing(&victim), before, "the build changed a host dir");
}

/// Runs each shell command of `ops` in the RUN and records the ones that
/// succeeded, into `/result` (empty when every write was refused).
fn attempts(ops: &[&str]) -> String {
    let list: Vec<String> = ops.iter().map(|op| format!("'{op}'")).collect();
    format!(
        "for op in {}; do if sh -c \"$op\" 2>/dev/null; then echo \"allowed: $op\"; fi; done > /result",
        list.join(" ")
    )
}

#[test]
fn secret_file_cannot_be_written_and_never_is_the_users_file() {
    let k = Kiln::with_busybox_image();
    let ctx = checkout(&k, &[]);
    let secrets = k.path("secrets");
    std::fs::create_dir(&secrets).unwrap();
    std::fs::write(secrets.join("token"), "t0ken\n").unwrap();
    let dockerfile = format!(
        "FROM busybox
RUN --mount=type=secret,id=tok,target=/s \\
    {} && stat -c %a /s >> /result && cat /s >> /result \\
    && grep ' /s ' /proc/mounts | cut -d' ' -f4 | tr , '\\n' \\
       | grep -x -e ro -e nosuid -e nodev -e noexec | tr '\\n' ' ' >> /result
RUN --mount=type=secret,id=tok,target=/x,mode=0500 \\
    grep ' /x ' /proc/mounts | cut -d' ' -f4 | tr , '\\n' | grep -c -x noexec > /exec || true
",
        attempts(&[
            "echo x > /s",
            "echo x >> /s",
            ": > /s",
            "chmod 777 /s",
            "chown 1 /s",
            "touch -d 2001-01-01 /s",
            "rm /s",
        ])
    );
    std::fs::write(ctx.join("Dockerfile"), &dockerfile).unwrap();
    let before = listing(&secrets);
    let src = format!("id=tok,src={}", secrets.join("token").display());
    k.build(&ctx, &["-t", "secret:1", "--secret", &src]).ok();
    assert_eq!(
        listing(&secrets),
        before,
        "the build changed the secret file"
    );
    // BuildKit's bind of the secret: ro,nosuid,nodev and noexec unless
    // its mode has an execute bit.
    assert_eq!(
        k.sh("secret:1", "cat /result /exec"),
        "400\nt0ken\nro nosuid nodev noexec 0\n"
    );
    assert_eq!(host_mounts_under(k.dir.path()), Vec::<String>::new());
}

/// `--output` writes into its destination only: symlinks already there
/// (a directory's, a file's, the archive's own name) are replaced, never
/// followed to what they point at.
#[test]
fn outputs_never_follow_a_symlink_out_of_their_destination() {
    let k = Kiln::with_busybox_image();
    let ctx = checkout(&k, &[]);
    let outside = k.path("outside");
    std::fs::create_dir_all(outside.join("d")).unwrap();
    std::fs::write(outside.join("f"), "keep\n").unwrap();
    let out = k.path("out");
    std::fs::create_dir(&out).unwrap();
    let link = |target: &str, name: &str| {
        std::os::unix::fs::symlink(outside.join(target), name).unwrap();
    };
    link("d", out.join("etc").to_str().unwrap());
    link("f", out.join("hello").to_str().unwrap());
    let (oci, docker, fs) = (
        k.path("img.oci.tar"),
        k.path("img.docker.tar"),
        k.path("fs.tar"),
    );
    for archive in [&oci, &docker, &fs] {
        link("f", archive.to_str().unwrap());
    }
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nRUN echo hi > /hello\n",
    )
    .unwrap();
    let before = listing(&outside);
    let flag = |kind: &str, dest: &Path| format!("type={kind},dest={}", dest.display());
    k.build(
        &ctx,
        &[
            "-o",
            &flag("local", &out),
            "-o",
            &flag("oci", &oci),
            "-o",
            &flag("docker", &docker),
            "-o",
            &flag("tar", &fs),
        ],
    )
    .ok();
    assert_eq!(
        listing(&outside),
        before,
        "an output wrote outside its destination"
    );
    let md = |p: &Path| std::fs::symlink_metadata(p).unwrap();
    assert!(md(&out.join("etc")).is_dir() && out.join("etc/passwd").is_file());
    assert_eq!(std::fs::read_to_string(out.join("hello")).unwrap(), "hi\n");
    assert!(md(&out.join("hello")).is_file());
    for archive in [&oci, &docker, &fs] {
        assert!(
            md(archive).is_file() && md(archive).len() > 1024,
            "{archive:?}"
        );
    }
    // `type=tar` is the filesystem (BuildKit's tar exporter), not an image.
    let names = support::tools::run("tar", &["-tf", fs.to_str().unwrap()]);
    let names: Vec<&str> = names.lines().collect();
    assert!(
        names.contains(&"hello") && names.contains(&"etc/passwd"),
        "{names:?}"
    );
    assert!(!names.contains(&"manifest.json"), "{names:?}");
}

/// A `rw` bind from a stage and a cache seeded `from=` a stage write to a
/// throwaway view and to the cache: the stage itself (a store snapshot,
/// never written once published) is what later steps see. `one` is a
/// single layer, which a read-only mount binds in place.
#[test]
fn rw_stage_binds_and_cache_seeds_never_write_their_source_stage() {
    let k = Kiln::with_busybox_image();
    let ctx = checkout(&k, &[]);
    let dockerfile = format!(
        "FROM scratch AS one
COPY a.txt /data/f

FROM busybox AS many
RUN mkdir /data && echo orig > /data/f

FROM busybox
ARG N
RUN echo $N > /n
RUN --mount=type=bind,from=one,source=/data,target=/b,rw \\
    echo changed > /b/f && echo new > /b/g && rm /b/f && touch /b/f
RUN --mount=type=bind,from=many,source=/data,target=/b,rw \\
    echo changed > /b/f && echo new > /b/g && chmod 700 /b
RUN --mount=type=bind,from=one,source=/data,target=/b \\
    {}
RUN --mount=type=cache,from=many,source=/data,target=/c,id=seeded \\
    cat /c/f > /cache-first && echo changed > /c/f && echo new > /c/g
RUN --mount=type=cache,from=many,source=/data,target=/c,id=seeded cat /c/f /c/g > /cache-again
RUN --mount=type=bind,from=one,source=/data,target=/one --mount=type=bind,from=many,source=/data,target=/many \\
    cat /one/f /many/f > /after && ls /one /many >> /after && stat -c %a /many >> /after
COPY --from=many /data/f /copied
",
        attempts(&["echo x > /b/f", "rm /b/f", "touch /b/new", "chmod 777 /b/f"])
    );
    // The Dockerfile outside the context (`-f`) is only read.
    let df_dir = k.path("dockerfiles");
    std::fs::create_dir(&df_dir).unwrap();
    std::fs::write(df_dir.join("Dockerfile"), &dockerfile).unwrap();
    let (ctx_before, df_before) = (listing(&ctx), listing(&df_dir));
    let df = df_dir.join("Dockerfile");
    k.build(&ctx, &["-t", "stages:1", "-f", df.to_str().unwrap()])
        .ok();
    assert_eq!((listing(&ctx), listing(&df_dir)), (ctx_before, df_before));
    assert_eq!(
        k.sh("stages:1", "cat /result /after /copied"),
        "a\norig\n/many:\nf\n\n/one:\nf\n755\norig\n"
    );
    assert_eq!(
        k.sh("stages:1", "cat /cache-first /cache-again"),
        "orig\nchanged\nnew\n"
    );
    // The stages' snapshots themselves: a rebuild reruns every mounting
    // step over the cached stages and leaves each byte of them alone.
    let snapshots = k.root().join("snapshots");
    let before: Vec<(String, Vec<String>)> = std::fs::read_dir(&snapshots)
        .unwrap()
        .map(|e| {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            let tree = listing(&snapshots.join(&name));
            (name, tree)
        })
        .collect();
    let args = [
        "-t",
        "stages:2",
        "-f",
        df.to_str().unwrap(),
        "--build-arg",
        "N=2",
    ];
    k.build(&ctx, &args).ok();
    assert_eq!(
        k.sh("stages:2", "cat /n /after"),
        "2\na\norig\n/many:\nf\n\n/one:\nf\n755\n"
    );
    for (name, tree) in before {
        assert_eq!(
            listing(&snapshots.join(&name)),
            tree,
            "snapshot {name} changed"
        );
    }
}

/// A context tar on stdin is unpacked in the store's scratch space: names
/// with `..`, symlinks planted to reach out and hard links to host files
/// neither write nor read anything outside it (each tar alone, since the
/// build may stop at the first).
#[test]
fn hostile_stdin_context_tar_stays_inside_its_scratch_dir() {
    use support::archive::{raw_tar, Entry};
    let k = Kiln::with_busybox_image();
    let outside = k.path("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("f"), "host secret\n").unwrap();
    let abs = outside.display().to_string();
    let abs_f = format!("{abs}/f");
    let dockerfile: &[u8] =
        b"FROM busybox\nCOPY . /ctx\nRUN cat /ctx/h /ctx/out/f > /leak 2>/dev/null; true\n";
    let hostile: [Vec<Entry>; 4] = [
        vec![Entry::File("../../../../escape.txt", b"x")],
        vec![
            Entry::Symlink("out", &abs),
            Entry::File("out/planted", b"x"),
        ],
        vec![Entry::Symlink("out", &abs)],
        vec![Entry::Hardlink("h", &abs_f)],
    ];
    for (n, mut all) in hostile.into_iter().enumerate() {
        all.insert(0, Entry::File("Dockerfile", dockerfile));
        let before = listing(&outside);
        let tag = format!("tar-ctx:{n}");
        let ran = k.kiln_with_stdin(
            &["build", "--progress", "plain", "-t", &tag, "-"],
            &raw_tar(&all),
        );
        assert_eq!(listing(&outside), before, "tar {n} wrote outside");
        let escaped: Vec<_> = walk_names(k.dir.path())
            .into_iter()
            .filter(|p| p.ends_with("escape.txt"))
            .collect();
        assert_eq!(escaped, Vec::<String>::new(), "tar {n}");
        if ran.code == 0 {
            assert_eq!(k.sh(&tag, "cat /leak"), "", "tar {n} read a host file");
        } else {
            // Refused as a whole, with the reason.
            assert!(
                ran.stderr.contains("unpacking the context from stdin"),
                "tar {n}: {}",
                ran.stderr
            );
        }
    }
}

/// Every path below `dir` (symlinks not followed).
fn walk_names(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        out.push(p.display().to_string());
        if std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir()) {
            out.extend(walk_names(&p));
        }
    }
    out
}

/// The context's own path is an overlay lower dir for a `rw` mount:
/// characters overlayfs's option syntax gives a meaning must not matter.
#[test]
fn rw_context_bind_of_a_context_path_with_colons_and_commas() {
    let k = Kiln::with_busybox_image();
    let ctx = k.path("ctx a:b,c\\d");
    std::fs::create_dir(&ctx).unwrap();
    std::fs::write(ctx.join("f"), "hi\n").unwrap();
    let dockerfile =
        "FROM busybox\nRUN --mount=type=bind,target=/c,rw cat /c/f > /seen && echo x > /c/f\n";
    build_leaves_context_alone(&k, &ctx, dockerfile, "odd-path:1");
    assert_eq!(k.sh("odd-path:1", "cat /seen"), "hi\n");
}

/// A bind's `source=` is resolved inside the context, symlinks too (as
/// BuildKit resolves it inside the context snapshot): a link in the user's
/// tree pointing out of it reaches nothing on the host.
#[test]
fn bind_source_symlinks_stay_inside_the_context() {
    let k = Kiln::with_busybox_image();
    let ctx = checkout(&k, &[]);
    let outside = k.path("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("host-file"), "host\n").unwrap();
    std::os::unix::fs::symlink(&outside, ctx.join("abs")).unwrap();
    std::os::unix::fs::symlink("../../../../..", ctx.join("up")).unwrap();
    let dockerfile = "FROM busybox
RUN --mount=type=bind,source=up,target=/up,rw ls /up > /seen && rm /up/a.txt
";
    build_leaves_context_alone(&k, &ctx, dockerfile, "links:1");
    assert_eq!(
        k.sh("links:1", "cat /seen"),
        "Dockerfile\na.txt\nabs\ndir\nup\n"
    );
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nRUN --mount=type=bind,source=abs,target=/abs ls /abs\n",
    )
    .unwrap();
    let err = k.build(&ctx, &[]).fails().to_string();
    // BuildKit's checksum wording (cache/contenthash/checksum.go).
    assert!(err.contains("\"/abs\": not found"), "{err}");
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 1);
}
