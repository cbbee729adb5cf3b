//! Multi-stage builds: `--target`, reachability, `COPY --from` a stage,
//! an index or an image, `RUN --mount=from=`, stages in parallel.

use crate::support;

use support::kiln::{step_states, Kiln};

const STAGES: &str = "\
FROM busybox AS base
RUN echo base > /base

FROM base AS builder
RUN echo built > /artifact

FROM busybox AS unused
RUN echo unused-ran > /unused

FROM busybox AS final
COPY --from=builder /artifact /from-name
COPY --from=0 /base /from-index
COPY --from=busybox:latest /bin/busybox /from-image
CMD [\"cat\", \"/from-name\"]
";

#[test]
fn stages_copy_from_names_indexes_and_images() {
    let k = Kiln::with_busybox_image();
    let ctx = k.context(&[]);
    let progress = k.build_ok(&ctx, STAGES, "stages:1", &[]);
    assert_eq!(k.run("stages:1", &[]).ok(), "built\n");
    assert_eq!(k.sh("stages:1", "cat /from-index"), "base\n");
    assert_eq!(
        k.sh("stages:1", "cmp /from-image /bin/busybox && echo same"),
        "same\n"
    );
    // Only what the target needs ran; stages are named in progress.
    assert!(
        !progress.contains("unused-ran") && !progress.contains("[unused"),
        "{progress}"
    );
    assert!(
        progress.contains("[builder 1/1] RUN echo built > /artifact"),
        "{progress}"
    );
    assert_eq!(k.sh("stages:1", "ls /base /artifact 2>&1 | wc -l"), "2\n");
}

#[test]
fn target_builds_an_intermediate_stage_only() {
    let k = Kiln::with_busybox_image();
    let ctx = k.context(&[]);
    let progress = k.build_ok(&ctx, STAGES, "builder:1", &["--target", "builder"]);
    assert_eq!(k.sh("builder:1", "cat /base /artifact"), "base\nbuilt\n");
    assert!(!progress.contains("COPY --from"), "{progress}");
    let err = k.build(&ctx, &["--target", "nope"]).fails().to_string();
    assert!(
        err.contains("target stage \"nope\" could not be found"),
        "{err}"
    );
    // Bad references are errors at their line.
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox AS a\nCOPY --from=b /x /x\nFROM busybox AS b\n",
    )
    .unwrap();
    let err = k.build(&ctx, &["--target", "a"]).fails().to_string();
    assert!(
        err.contains("Dockerfile:2: cannot copy from stage \"b\", it needs to be defined before current stage \"a\""),
        "{err}"
    );
}

#[test]
fn independent_stages_run_in_parallel() {
    // Each stage waits (up to 20 s) for the other to have started: run
    // one after the other, the first would give up and fail the build.
    let k = Kiln::with_busybox_image();
    let ctx = k.context(&[]);
    let wait = |me: &str, other: &str| {
        format!(
            "RUN --mount=type=cache,id=rendezvous,target=/r touch /r/{me} && \
             for i in $(seq 200); do [ -e /r/{other} ] && exit 0; sleep 0.1; done; exit 1\n"
        )
    };
    let df = format!(
        "FROM busybox AS a\n{}RUN echo a > /a\nFROM busybox AS b\n{}RUN echo b > /b\n\
         FROM busybox\nCOPY --from=a /a /a\nCOPY --from=b /b /b\n",
        wait("a", "b"),
        wait("b", "a")
    );
    k.build_ok(&ctx, &df, "parallel:1", &[]);
    assert_eq!(k.sh("parallel:1", "cat /a /b"), "a\nb\n");
}

#[test]
fn run_mounts_from_stages_and_context() {
    let k = Kiln::with_busybox_image();
    let ctx = k.context(&[("data/in.txt", "context data")]);
    let df = "FROM busybox AS tools\nRUN mkdir /out && echo tool > /out/t\n\
FROM busybox\n\
RUN --mount=type=bind,from=tools,source=/out,target=/tools cat /tools/t > /got-tool\n\
RUN --mount=type=bind,source=data,target=/data cat /data/in.txt > /got-data\n\
RUN --mount=type=bind,from=tools,target=/t,rw touch /t/scratch && test -e /t/scratch\n\
RUN --mount=type=cache,target=/seeded,from=tools,source=/out cat /seeded/t > /got-seed\n";
    k.build_ok(&ctx, df, "mounts:1", &[]);
    assert_eq!(
        k.sh("mounts:1", "cat /got-tool /got-data /got-seed"),
        "tool\ncontext datatool\n"
    );
    assert_eq!(
        k.sh("mounts:1", "ls /tools /data /t 2>/dev/null | wc -l"),
        "0\n"
    );
    // A context bind mount's content is part of the step's cache key.
    let (_, done) = step_states(&k.build(&ctx, &["-t", "mounts:1"]).stderr);
    assert!(done.iter().all(|s| !s.contains("RUN")), "{done:?}");
    std::fs::write(ctx.join("data/in.txt"), "changed").unwrap();
    let (_, done) = step_states(&k.build(&ctx, &["-t", "mounts:1"]).stderr);
    assert!(done.iter().any(|s| s.contains("source=data")), "{done:?}");
    assert_eq!(k.sh("mounts:1", "cat /got-data"), "changed");
}

/// BuildKit keys a cache mount with `from=` by its id and the source it
/// was seeded from: a changed source starts a new cache rather than
/// serving one seeded from old content; the same source keeps its cache.
#[test]
fn cache_mount_seeded_from_a_changed_stage_kept_the_old_seed() {
    let k = Kiln::with_busybox_image();
    let ctx = k.context(&[("v.txt", "v1")]);
    let df = "FROM busybox AS src\nCOPY v.txt /data/v\n\
FROM busybox\nARG N\n\
RUN --mount=type=cache,id=seeded,from=src,source=/data,target=/c \
    echo $N >/dev/null && cat /c/v > /seen && echo >> /seen && ls /c >> /seen && touch /c/ran\n";
    k.build_ok(&ctx, df, "seeded:1", &[]);
    assert_eq!(k.sh("seeded:1", "cat /seen"), "v1\nv\n");
    std::fs::write(ctx.join("v.txt"), "v2").unwrap();
    k.build_ok(&ctx, df, "seeded:2", &[]);
    assert_eq!(k.sh("seeded:2", "cat /seen"), "v2\nv\n");
    // The first source again (the COPY a cache hit, the same snapshot; the
    // RUN rerun for its new build-arg): its cache, with the first write.
    std::fs::write(ctx.join("v.txt"), "v1").unwrap();
    k.build_ok(&ctx, df, "seeded:3", &["--build-arg", "N=3"]);
    assert_eq!(k.sh("seeded:3", "cat /seen"), "v1\nran\nv\n");
}
