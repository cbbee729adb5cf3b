//! Building for other platforms: `FROM --platform`, the automatic
//! platform ARGs, RUN steps under qemu (binfmt_misc), the platform in
//! cache keys, and `kiln run --platform` refusing an image for another.

use crate::support;
use support::kiln::{step_states, Kiln};

/// A RUN for arm64 on this amd64 host runs its binary under qemu (kiln
/// registers Debian's qemu-aarch64-static when binfmt_misc has no handler),
/// the image says arm64, and `kiln run --platform` checks it.
#[test]
fn arm64_run_steps_run_under_emulation_and_run_checks_the_platform() {
    let k = Kiln::new();
    k.import_probe("arm64", "armprobe:1");
    let ctx = k.context(&[]);
    k.build_ok(
        &ctx,
        "FROM armprobe:1\nRUN [\"/probe\", \"write\", \"/machine\"]\n",
        "armrun:1",
        &["--platform", "linux/arm64"],
    );
    assert_eq!(k.inspect("armrun:1", "{{.Os}}/{{.Architecture}}"), "linux/arm64");
    let machine = k.kiln(&[
        "run", "--rm", "--platform", "linux/arm64", "armrun:1", "/probe", "cat", "/machine",
    ]);
    assert_eq!(machine.ok(), "aarch64\n");
    // docker's refusal (moby daemon/images GetImage), not a silent run.
    let err = k
        .kiln(&["run", "--rm", "--platform", "linux/amd64", "armrun:1", "/probe"])
        .fails()
        .to_string();
    assert!(
        err.contains(
            "image with reference armrun:1 was found but its platform (linux/arm64) does not match the specified platform (linux/amd64)"
        ),
        "{err}"
    );
    // A host build refuses the arm64 image as a base for linux/amd64
    // rather than running it as the host's (it is not pullable here).
    std::fs::write(ctx.join("Dockerfile"), "FROM armprobe:1\n").unwrap();
    let err = k.build(&ctx, &["--platform", "linux/amd64"]).fails().to_string();
    assert!(err.contains("armprobe"), "{err}");
}

/// BuildKit's automatic platform ARGs: TARGET* from `--platform`, BUILD*
/// from the host, declared with `ARG` in a `FROM --platform=$BUILDPLATFORM`
/// stage that runs natively; the image config says the target.
#[test]
fn platform_args_have_buildkits_values() {
    let k = Kiln::with_busybox_image();
    let ctx = k.context(&[]);
    k.build_ok(
        &ctx,
        "FROM --platform=$BUILDPLATFORM busybox\n\
         ARG TARGETPLATFORM TARGETOS TARGETARCH TARGETVARIANT BUILDPLATFORM BUILDOS BUILDARCH BUILDVARIANT\n\
         RUN echo \"$TARGETPLATFORM|$TARGETOS|$TARGETARCH|$TARGETVARIANT|$BUILDPLATFORM|$BUILDOS|$BUILDARCH|$BUILDVARIANT|$(uname -m)\" > /args\n",
        "args:1",
        &["--platform", "linux/arm/v7"],
    );
    assert_eq!(
        k.sh("args:1", "cat /args"),
        "linux/arm/v7|linux|arm|v7|linux/amd64|linux|amd64||x86_64\n"
    );
    let config = k.config_blob("args:1");
    assert_eq!(config["architecture"], "arm");
    assert_eq!(config["variant"], "v7");
}

/// The same RUN on the same parent for two platforms is two steps: the
/// arm64 result is never taken for amd64; the context COPY before it is
/// platform-independent and shared.
#[test]
fn run_steps_for_two_platforms_never_share_a_cache_result() {
    let k = Kiln::new();
    let ctx = k.context(&[]);
    support::cross::probe(&ctx, "arm64");
    let df = "FROM scratch\nCOPY probe /probe\nRUN [\"/probe\", \"write\", \"/m\"]\n";
    k.build_ok(&ctx, df, "two:arm", &["--platform", "linux/arm64"]);
    let progress = k.build_ok(&ctx, df, "two:amd", &["--platform", "linux/amd64"]);
    let (cached, done) = step_states(&progress);
    assert!(cached.iter().any(|s| s.contains("COPY probe")), "{progress}");
    assert!(done.iter().any(|s| s.contains("RUN")), "{progress}");
    let again = k.build_ok(&ctx, df, "two:arm", &["--platform", "linux/arm64"]);
    let (cached, _) = step_states(&again);
    assert!(cached.iter().any(|s| s.contains("RUN")), "{again}");
}
