//! The build cache: rebuilds run nothing, a changed context file reruns
//! only what reads it (and what follows), `--no-cache`, cache mounts that
//! outlive builds, history times that come from the steps (so a cached
//! rebuild is the same image), and `SOURCE_DATE_EPOCH` reproducibility.
//!
//! Whether a RUN executed is told by a line it appends to a cache mount
//! (cache mounts are outside every layer and every cache key).

use crate::support;

use support::kiln::{step_states, Kiln};

const DF: &str = "\
FROM busybox
COPY a.txt /a.txt
RUN --mount=type=cache,id=log,target=/log echo after-a >> /log/runs
COPY b.txt /b.txt
RUN --mount=type=cache,id=log,target=/log echo after-b >> /log/runs
ENV DONE=1
";

#[test]
fn rebuild_is_all_cached_and_runs_nothing() {
    let k = Kiln::with_busybox_image();
    let ctx = k.context(&[("a.txt", "a"), ("b.txt", "b")]);
    let first = k.build_ok(&ctx, DF, "cached:1", &[]);
    let (cached, done) = step_states(&first);
    assert!(cached.is_empty(), "{first}");
    assert_eq!(done.len(), 6, "context, FROM and 4 steps: {first}");
    assert_eq!(k.cache_file("log", "runs"), ["after-a", "after-b"]);
    let id = k.inspect("cached:1", "{{.Id}}");

    let second = k.build(&ctx, &["-t", "cached:1"]);
    second.ok();
    let (cached, done) = step_states(&second.stderr);
    assert_eq!(cached.len(), 5, "FROM and every step: {}", second.stderr);
    assert_eq!(done, ["[internal] load build context"], "{}", second.stderr);
    assert_eq!(k.cache_file("log", "runs"), ["after-a", "after-b"]);
    // The same image: its times are the steps' (BuildKit gives the same
    // config digest twice), not the build's.
    assert_eq!(k.inspect("cached:1", "{{.Id}}"), id);

    // The cache survives in the store, for a later process too, and a
    // store GC does not drop it.
    k.kiln(&["rmi", "cached:1"]).ok();
    k.kiln(&["image", "prune", "-f"]).ok();
    let third = k.build(&ctx, &["-t", "cached:1"]);
    let (_, done) = step_states(&third.stderr);
    assert_eq!(done, ["[internal] load build context"], "{}", third.stderr);
    assert_eq!(k.sh("cached:1", "cat /a.txt /b.txt"), "ab");

    // `builder prune` forgets it all.
    let pruned = k.kiln(&["builder", "prune", "-f"]).ok().to_string();
    assert_eq!(pruned, "Deleted build cache records: 5\n");
    let fourth = k.build(&ctx, &["-t", "cached:1"]);
    let (cached, _) = step_states(&fourth.stderr);
    assert!(cached.is_empty(), "{}", fourth.stderr);
}

#[test]
fn a_changed_file_reruns_only_the_steps_after_the_copy_reading_it() {
    let k = Kiln::with_busybox_image();
    let ctx = k.context(&[("a.txt", "a"), ("b.txt", "b"), ("unrelated.txt", "u")]);
    k.build_ok(&ctx, DF, "partial:1", &[]);
    std::fs::write(ctx.join("unrelated.txt"), "changed").unwrap();
    let out = k.build(&ctx, &["-t", "partial:1"]);
    let (_, done) = step_states(&out.stderr);
    assert_eq!(done, ["[internal] load build context"], "{}", out.stderr);

    std::fs::write(ctx.join("b.txt"), "B").unwrap();
    let out = k.build(&ctx, &["-t", "partial:1"]);
    let (cached, done) = step_states(&out.stderr);
    assert!(
        cached.iter().any(|s| s.contains("COPY a.txt")),
        "{}",
        out.stderr
    );
    assert!(
        cached.iter().any(|s| s.contains("echo after-a")),
        "{}",
        out.stderr
    );
    assert!(
        done.iter().any(|s| s.contains("COPY b.txt")),
        "{}",
        out.stderr
    );
    assert!(
        done.iter().any(|s| s.contains("echo after-b")),
        "{}",
        out.stderr
    );
    assert_eq!(
        k.cache_file("log", "runs"),
        ["after-a", "after-b", "after-b"]
    );
    assert_eq!(k.sh("partial:1", "cat /b.txt"), "B");
    // Only content counts: a touched file keeps the cache.
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(ctx.join("a.txt"))
        .unwrap()
        .set_modified(later)
        .unwrap();
    let out = k.build(&ctx, &["-t", "partial:1"]);
    let (_, done) = step_states(&out.stderr);
    assert_eq!(done, ["[internal] load build context"], "{}", out.stderr);
}

#[test]
fn no_cache_runs_everything_again() {
    let k = Kiln::with_busybox_image();
    let ctx = k.context(&[("a.txt", "a"), ("b.txt", "b")]);
    k.build_ok(&ctx, DF, "nocache:1", &[]);
    k.build_ok(&ctx, DF, "nocache:1", &["--no-cache"]);
    assert_eq!(
        k.cache_file("log", "runs"),
        ["after-a", "after-b", "after-a", "after-b"]
    );
}

#[test]
fn cache_mounts_persist_across_builds_with_their_options() {
    let k = Kiln::with_busybox_image();
    let ctx = k.context(&[]);
    let df = |n: u32| {
        format!(
            "FROM busybox\nARG N={n}\n\
RUN --mount=type=cache,target=/cache,uid=1000,gid=1000,mode=0700 \
echo \"build $N\" >> /cache/log && stat -c '%u:%g %a' /cache > /owner && cp /cache/log /seen\n\
RUN --mount=type=cache,target=/locked,sharing=locked echo $N >> /locked/n\n\
RUN --mount=type=cache,target=/private,sharing=private echo $N >> /private/n\n"
        )
    };
    k.build_ok(&ctx, &df(1), "cm:1", &[]);
    k.build_ok(&ctx, &df(2), "cm:2", &[]);
    assert_eq!(k.sh("cm:2", "cat /seen"), "build 1\nbuild 2\n");
    assert_eq!(k.sh("cm:2", "cat /owner"), "1000:1000 700\n");
    // Nothing of a cache mount reaches the image.
    assert_eq!(
        k.sh("cm:2", "ls -A /cache /locked /private 2>/dev/null | wc -l"),
        "0\n"
    );
    assert_eq!(k.cache_file("/locked", "n"), ["1", "2"]);
    assert_eq!(k.cache_file("/private", "n"), ["1", "2"]);
}

#[test]
fn source_date_epoch_makes_builds_byte_identical() {
    let k = Kiln::with_busybox_image();
    let ctx = k.context(&[("app.txt", "app")]);
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nCOPY app.txt /app/\nRUN mkdir -p /var/x && echo built > /var/x/f && touch /tmp/t\n\
         WORKDIR /work\nCMD [\"cat\", \"/app/app.txt\"]\n",
    )
    .unwrap();
    let build = |extra: &[&str]| -> String {
        let mut args = vec!["build", "-q", "--no-cache"];
        args.extend_from_slice(extra);
        args.push(ctx.to_str().unwrap());
        k.kiln(&args).ok().trim().to_string()
    };
    let a = build(&["--build-arg", "SOURCE_DATE_EPOCH=1700000000"]);
    let b = build(&["--build-arg", "SOURCE_DATE_EPOCH=1700000000"]);
    assert_eq!(a, b, "same image ID from two clean builds");
    let out = k
        .cmd(&["build", "-q", "--no-cache", ctx.to_str().unwrap()])
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        a,
        "the environment works too"
    );
    assert_eq!(k.inspect(&a, "{{.Created}}"), "2023-11-14T22:13:20Z");
    assert_eq!(
        k.sh(&a, "stat -c %Y /var/x/f /app/app.txt"),
        "1700000000\n1700000000\n"
    );
    let c = build(&["--build-arg", "SOURCE_DATE_EPOCH=1700000001"]);
    assert_ne!(a, c);
}

/// Each history entry's `created`, oldest first.
fn times(k: &Kiln, image: &str) -> Vec<String> {
    k.config_blob(image)["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["created"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// BuildKit's exporter dates a layer's history entry by its cache ref's
/// creation time and the config by the last entry (moby/buildkit
/// exporter/containerimage/writer.go `normalizeLayersAndHistory`,
/// `patchImageConfig`): a fully cached rebuild gives the same config
/// digest, and a changed step re-dates only the entries from it on.
#[test]
fn cached_rebuild_keeps_the_image_id_and_a_change_redates_only_later_steps() {
    let k = Kiln::with_busybox_image();
    let ctx = k.context(&[("a.txt", "a"), ("b.txt", "b")]);
    let df = "FROM busybox\nENV A=1\nCOPY a.txt /a.txt\nRUN echo a > /ran-a\n\
              COPY b.txt /b.txt\nRUN echo b > /ran-b\nLABEL done=yes\n";
    k.build_ok(&ctx, df, "times:1", &[]);
    let id = k.inspect("times:1", "{{.Id}}");
    let first = times(&k, "times:1");
    let base = first.len() - 6;
    assert!(first.iter().all(|t| !t.is_empty()), "{first:?}");
    // ENV, before the first new layer, takes that layer's time; LABEL the
    // time of the layer before it; the config the last entry's.
    assert_eq!(first[base], first[base + 1], "{first:?}");
    assert_eq!(first[base + 5], first[base + 4], "{first:?}");
    assert_ne!(first[base + 1], first[base + 2], "{first:?}");
    let created = |image: &str| {
        k.config_blob(image)["created"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(created("times:1"), first[base + 5]);

    k.build_ok(&ctx, df, "times:2", &[]);
    assert_eq!(k.inspect("times:2", "{{.Id}}"), id, "same config digest");

    std::fs::write(ctx.join("b.txt"), "B").unwrap();
    k.build_ok(&ctx, df, "times:3", &[]);
    let third = times(&k, "times:3");
    assert_eq!(
        third[..base + 3],
        first[..base + 3],
        "base, ENV, COPY a, RUN a"
    );
    for i in base + 3..base + 6 {
        assert_ne!(third[i], first[i], "entry {i} is re-dated: {third:?}");
    }
    assert_eq!(created("times:3"), third[base + 5]);
    assert_ne!(k.inspect("times:3", "{{.Id}}"), id);
}
