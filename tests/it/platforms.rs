//! Building for other platforms: `FROM --platform`, the automatic
//! platform ARGs, RUN steps under qemu (binfmt_misc), the platform in
//! cache keys, and `kiln run --platform` refusing an image for another.

use crate::support;
use support::kiln::{step_states, Kiln};
use support::registry::TestRegistry;
use support::tools;

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
    assert_eq!(
        k.inspect("armrun:1", "{{.Os}}/{{.Architecture}}"),
        "linux/arm64"
    );
    let machine = k.kiln(&[
        "run",
        "--rm",
        "--platform",
        "linux/arm64",
        "armrun:1",
        "/probe",
        "cat",
        "/machine",
    ]);
    assert_eq!(machine.ok(), "aarch64\n");
    // docker's refusal (moby daemon/images GetImage), not a silent run.
    let err = k
        .kiln(&[
            "run",
            "--rm",
            "--platform",
            "linux/amd64",
            "armrun:1",
            "/probe",
        ])
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
    let err = k
        .build(&ctx, &["--platform", "linux/amd64"])
        .fails()
        .to_string();
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
    assert!(
        cached.iter().any(|s| s.contains("COPY probe")),
        "{progress}"
    );
    assert!(done.iter().any(|s| s.contains("RUN")), "{progress}");
    let again = k.build_ok(&ctx, df, "two:arm", &["--platform", "linux/arm64"]);
    let (cached, _) = step_states(&again);
    assert!(cached.iter().any(|s| s.contains("RUN")), "{again}");
}

/// The must-show: `--platform linux/amd64,linux/arm64` compiles
/// a C program for both in a `$BUILDPLATFORM` toolchain stage (gcc or the
/// arm64 cross gcc by `TARGETARCH`), the arm64 binary runs under qemu
/// with `kiln run --platform`, the pushed index lists both manifests
/// (skopeo), a pull of the index takes the platform asked for, and
/// save/load carry the index.
#[test]
fn a_multi_platform_build_pushes_an_index_whose_arm64_image_runs_under_qemu() {
    let reg = TestRegistry::start();
    let k = Kiln::new();
    k.import_toolchain("toolchain:1");
    let probe_c = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/platform/probe.c"
    ))
    .unwrap();
    let ctx = k.context(&[("probe.c", &probe_c)]);
    let name = format!("{}/kiln/multi:v1", reg.host());
    let df = "FROM --platform=$BUILDPLATFORM toolchain:1 AS build\n\
              ARG TARGETARCH\n\
              COPY probe.c /src/\n\
              RUN case $TARGETARCH in amd64) cc=x86_64-linux-gnu-gcc-12 ;; arm64) cc=aarch64-linux-gnu-gcc-12 ;; esac \\\n\
                  && $cc -static -Os -o /probe /src/probe.c\n\
              FROM scratch\n\
              COPY --from=build /probe /probe\n";
    let progress = k.build_ok(
        &ctx,
        df,
        &name,
        &[
            "--platform",
            "linux/amd64,linux/arm64",
            "--push",
            "-o",
            &format!("type=oci,dest={}", k.path("built-oci.tar").display()),
        ],
    );
    // The build platform's COPY is one step for both platforms.
    let (cached, _) = step_states(&progress);
    assert!(
        cached.iter().any(|s| s.contains("COPY probe.c")),
        "{progress}"
    );

    assert_eq!(k.kiln(&["run", "--rm", &name, "/probe"]).ok(), "x86_64\n");
    let arm = k.kiln(&["run", "--rm", "--platform", "linux/arm64", &name, "/probe"]);
    assert_eq!(arm.ok(), "aarch64\n");
    let err = k
        .kiln(&["run", "--rm", "--platform", "linux/s390x", &name, "/probe"])
        .fails()
        .to_string();
    assert!(
        err.contains("does not match the specified platform (linux/s390x)"),
        "{err}"
    );

    let raw = tools::run_json(
        "skopeo",
        &[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{name}"),
        ],
    );
    assert_eq!(raw["mediaType"], "application/vnd.oci.image.index.v1+json");
    let platforms: Vec<String> = raw["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            format!(
                "{}/{}",
                m["platform"]["os"].as_str().unwrap(),
                m["platform"]["architecture"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64"]);

    // With attestations, the index also holds one attestation manifest per
    // platform manifest, after them, pointing at it (BuildKit's
    // attestation-storage.md: `vnd.docker.reference.type`/`.digest`).
    let attested = format!("{}/kiln/multi:attested", reg.host());
    k.build_ok(
        &ctx,
        df,
        &attested,
        &[
            "--platform",
            "linux/amd64,linux/arm64",
            "--provenance",
            "mode=max",
            "--sbom",
            "true",
            "--push",
        ],
    );
    let raw = tools::run_json(
        "skopeo",
        &[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{attested}"),
        ],
    );
    let manifests = raw["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 4, "{raw}");
    for (i, arch) in ["amd64", "arm64"].iter().enumerate() {
        assert_eq!(manifests[i]["platform"]["architecture"], *arch, "{raw}");
        let a = &manifests[i + 2];
        assert_eq!(a["platform"]["os"], "unknown", "{raw}");
        let ann = &a["annotations"];
        assert_eq!(ann["vnd.docker.reference.type"], "attestation-manifest");
        assert_eq!(ann["vnd.docker.reference.digest"], manifests[i]["digest"]);
    }

    let fresh = Kiln::new();
    fresh.ok(&["pull", "--platform", "linux/arm64", &name]);
    assert_eq!(fresh.inspect(&name, "{{.Architecture}}"), "arm64");
    let pulled = fresh.kiln(&["run", "--rm", &name, "/probe"]);
    assert_eq!(pulled.ok(), "aarch64\n");

    // save/load carry the index (OCI layout: index.json names it); the
    // docker format's manifest.json lists the host's image for the name.
    let oci = k.path("multi-oci.tar");
    k.ok(&[
        "save",
        "--format",
        "oci",
        "-o",
        oci.to_str().unwrap(),
        &name,
    ]);
    let items = support::archive::read(&std::fs::read(&oci).unwrap());
    let index = support::archive::json(&items, "index.json");
    assert_eq!(index["manifests"].as_array().unwrap().len(), 1, "{index}");
    assert_eq!(
        index["manifests"][0]["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    // The build's own OCI output is the same archive.
    let built = support::archive::read(&std::fs::read(k.path("built-oci.tar")).unwrap());
    let built = support::archive::json(&built, "index.json");
    assert_eq!(
        built["manifests"][0]["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let docker = k.path("multi-docker.tar");
    k.ok(&["save", "-o", docker.to_str().unwrap(), &name]);
    let items = support::archive::read(&std::fs::read(&docker).unwrap());
    let listed = support::archive::json(&items, "manifest.json");
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    let loaded = Kiln::new();
    loaded.ok(&["load", "-i", oci.to_str().unwrap()]);
    assert_eq!(
        loaded.kiln(&["run", "--rm", &name, "/probe"]).ok(),
        "x86_64\n"
    );
    let arm = loaded.kiln(&["run", "--rm", "--platform", "linux/arm64", &name, "/probe"]);
    assert_eq!(arm.ok(), "aarch64\n");
    // Saved again, the index is the same bytes.
    let again = loaded.path("again.tar");
    loaded.ok(&[
        "save",
        "--format",
        "oci",
        "-o",
        again.to_str().unwrap(),
        &name,
    ]);
    let items = support::archive::read(&std::fs::read(&again).unwrap());
    assert_eq!(
        support::archive::json(&items, "index.json")["manifests"][0]["digest"],
        index["manifests"][0]["digest"]
    );
}

/// Bad `--platform` values are refused naming the flag; a platform kiln
/// cannot emulate fails its first RUN naming the platform.
#[test]
fn bad_platforms_get_clear_errors() {
    let k = Kiln::new();
    k.import_probe("arm64", "armprobe:1");
    let ctx = k.context(&[("Dockerfile", "FROM armprobe:1\nRUN [\"/probe\"]\n")]);
    let err = k
        .build(&ctx, &["--platform", "linux/arm64,linux/aarch64"])
        .fails()
        .to_string();
    assert!(
        err.contains("--platform: linux/arm64 is given twice"),
        "{err}"
    );
    let err = k
        .kiln(&["run", "--rm", "--platform", "arm64", "armprobe:1"])
        .fails_with(125)
        .to_string();
    assert!(err.contains("--platform"), "{err}");
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM --platform=linux/sparc64 armprobe:1\n",
    )
    .unwrap();
    let err = k.build(&ctx, &[]).fails().to_string();
    // The stored arm64 image is not used for linux/sparc64: the stage's
    // platform is asked of the registry (unreachable here).
    assert!(err.contains("pulling armprobe:1"), "{err}");
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM scratch\nCOPY Dockerfile /\nRUN [\"/Dockerfile\"]\n",
    )
    .unwrap();
    let err = k
        .build(&ctx, &["--platform", "linux/sparc64"])
        .fails()
        .to_string();
    assert!(
        err.contains("platform linux/sparc64 is not supported by kiln's emulation"),
        "{err}"
    );
}

/// The platforms of a multi-platform build run at once: a step they share
/// (a `FROM --platform=$BUILDPLATFORM` stage) runs for one and is taken
/// from the cache by the other, and step names start with the stage's
/// platform as buildx shows them (`[linux/arm64 stage-1 2/2] COPY ...`).
#[test]
fn a_shared_buildplatform_step_runs_once_in_a_parallel_multi_platform_build() {
    let k = Kiln::with_busybox_image();
    let ctx = k.context(&[("f", "x")]);
    let df = "FROM --platform=$BUILDPLATFORM busybox AS tool\n\
              RUN echo shared > /s\n\
              FROM scratch\n\
              COPY --from=tool /s /s\n\
              COPY f /f\n";
    let progress = k.build_ok(
        &ctx,
        df,
        "shared:1",
        &["--platform", "linux/amd64,linux/arm64"],
    );
    let (cached, done) = step_states(&progress);
    let runs = |names: &[String]| {
        names
            .iter()
            .filter(|n| n.contains("[linux/amd64 tool 2/2] RUN echo shared"))
            .count()
    };
    assert_eq!(
        (runs(&done), runs(&cached)),
        (1, 1),
        "the shared RUN must run once and be cached once:\n{progress}"
    );
    for platform in ["linux/amd64", "linux/arm64"] {
        assert!(
            progress.contains(&format!("[{platform} stage-1 2/2] COPY f /f")),
            "{progress}"
        );
    }
}

/// A RUN that fails for one platform fails the build with that step's
/// error, naming the platform (the other platform is cancelled); the
/// progress names the step `[linux/amd64->arm64 2/2] RUN ...`.
#[test]
fn a_failing_run_on_one_platform_fails_the_build_naming_the_platform() {
    let k = Kiln::with_busybox_image();
    let ctx = k.context(&[]);
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM --platform=$BUILDPLATFORM busybox\n\
         ARG TARGETARCH\n\
         RUN [ \"$TARGETARCH\" != arm64 ] || exit 7\n",
    )
    .unwrap();
    let err = k
        .build(&ctx, &["--platform", "linux/amd64,linux/arm64"])
        .fails()
        .to_string();
    let last = err
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    assert!(
        last.contains("linux/arm64: process") && last.contains("exit code: 7"),
        "{err}"
    );
    assert!(!last.contains("linux/amd64"), "{err}");
    // The `$BUILDPLATFORM` stage cross-building for arm64, named as
    // BuildKit's `formatTargetPlatform` does.
    assert!(err.contains("[linux/amd64->arm64 2/2] RUN"), "{err}");
}

/// SIGINT while both platforms run a long RUN cancels both solves: kiln
/// exits with the cancelled error and leaves no process, mount, scratch
/// dir or cgroup of either RUN.
#[test]
fn sigint_cancels_every_platform_of_a_parallel_build_and_cleans_up() {
    use crate::build_cancel::{assert_cleaned_up, marker, processes_with, Build};
    use std::time::{Duration, Instant};

    let k = Kiln::with_busybox_image();
    let marker = marker(&k);
    let ctx = k.context(&[]);
    // TARGETARCH in the RUN's environment makes it two steps (two cache
    // keys) that run at once, both natively.
    std::fs::write(
        ctx.join("Dockerfile"),
        format!(
            "FROM --platform=$BUILDPLATFORM busybox\n\
             ARG TARGETARCH\n\
             RUN sleep 1000; echo {marker} $TARGETARCH\n"
        ),
    )
    .unwrap();
    let mut build = Build::start_with(&k, &ctx, &["--platform", "linux/amd64,linux/arm64"]);
    build.wait_for_process(&marker);
    // Both RUNs running: their processes are in two pid namespaces.
    let start = Instant::now();
    let pids = loop {
        let pids = processes_with(&marker);
        let namespaces: std::collections::BTreeSet<_> = pids
            .iter()
            .filter_map(|p| std::fs::read_link(format!("/proc/{p}/ns/pid")).ok())
            .collect();
        if namespaces.len() >= 2 {
            break pids;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the two platforms' RUNs never ran at once"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let cgroups = kiln_cgroups_of(&pids);
    assert!(!cgroups.is_empty(), "no kiln cgroup found for {pids:?}");
    build.signal(libc::SIGINT);
    let (code, stderr) = build.wait();
    assert_ne!(code, 0, "{stderr}");
    assert!(stderr.contains("build cancelled by SIGINT"), "{stderr}");
    assert_cleaned_up(&k, &marker);
    let left: Vec<_> = cgroups.iter().filter(|c| c.exists()).collect();
    assert!(left.is_empty(), "cgroups left: {left:?}");
}

/// The cgroup directories below a `kiln` cgroup that `pids` are in.
fn kiln_cgroups_of(pids: &[u32]) -> std::collections::BTreeSet<std::path::PathBuf> {
    let mut dirs = std::collections::BTreeSet::new();
    for pid in pids {
        let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/cgroup")) else {
            continue;
        };
        for line in text.lines() {
            let mut parts = line.splitn(3, ':');
            let (_, controllers, path) = (parts.next(), parts.next(), parts.next());
            let (Some(controllers), Some(path)) = (controllers, path) else {
                continue;
            };
            if !path.contains("/kiln/") || controllers.contains('=') {
                continue;
            }
            let rel = path.trim_start_matches('/');
            let root = std::path::Path::new("/sys/fs/cgroup");
            let dir = match controllers.split(',').next() {
                Some("") | None if root.join("unified").is_dir() => root.join("unified").join(rel),
                Some("") | None => root.join(rel),
                Some(first) => root.join(first).join(rel),
            };
            if dir.is_dir() {
                dirs.insert(dir);
            }
        }
    }
    dirs
}
