//! `kiln build` of single-stage Dockerfiles, checked by running the
//! image (`kiln run`) or reading its config: RUN, COPY/ADD, config
//! instructions, history, ARG/ENV scoping, heredocs, `.dockerignore`,
//! errors, outputs.

use crate::support;

use support::http_stub::{Reply, StubServer};
use support::kiln::Kiln;

#[test]
fn from_run_copy_cmd_build_and_run() {
    let k = Kiln::with_busybox_image();
    let ctx = k.context(&[(
        "hello.sh",
        "#!/bin/sh\necho \"$GREETING from $(cat /app/built)\"\n",
    )]);
    k.build_ok(
        &ctx,
        "FROM busybox\nENV GREETING=hello\nWORKDIR /app\nCOPY hello.sh /app/\n\
         RUN chmod +x hello.sh && echo kiln > /app/built\nCMD [\"/app/hello.sh\"]\n",
        "hello:1",
        &[],
    );
    let ran = k.run("hello:1", &[]);
    assert_eq!(ran.ok(), "hello from kiln\n");
    assert_eq!(k.sh("hello:1", "pwd; id -u"), "/app\n0\n");
    let history = k.history("hello:1");
    let ours: Vec<(String, bool)> = history[1..].to_vec();
    assert_eq!(
        ours,
        [
            ("ENV GREETING=hello".to_string(), false),
            ("WORKDIR /app".into(), true),
            ("COPY hello.sh /app/ # buildkit".into(), true),
            (
                "RUN /bin/sh -c chmod +x hello.sh && echo kiln > /app/built # buildkit".into(),
                true
            ),
            ("CMD [\"/app/hello.sh\"]".into(), false),
        ]
    );
    // One layer per history entry that says it has one.
    let layers = k.config_blob("hello:1")["rootfs"]["diff_ids"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(layers, history.iter().filter(|h| h.1).count());
}

#[test]
fn run_leaves_no_mount_stubs_and_steps_without_changes_add_empty_layers() {
    let k = Kiln::with_busybox_image();
    let ctx = k.context(&[]);
    k.build_ok(
        &ctx,
        "FROM busybox\nRUN true\nWORKDIR /tmp\nRUN --mount=type=tmpfs,target=/scratch/t echo > /dev/null\n",
        "quiet:1",
        &[],
    );
    // As in BuildKit, every step has a layer: the first RUN's holds the
    // /dev, /proc and /sys that busybox lacked, the others are empty.
    let history = k.history("quiet:1");
    assert!(history[1..].iter().all(|(_, layer)| *layer), "{history:?}");
    let diff_ids = k.config_blob("quiet:1")["rootfs"]["diff_ids"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(diff_ids, 4, "busybox's layer and one per step");
    // /etc/hosts, /etc/resolv.conf and the tmpfs target were mount stubs.
    assert_eq!(
        k.sh("quiet:1", "ls -d /scratch 2>&1 || echo gone"),
        "ls: /scratch: No such file or directory\ngone\n"
    );
}

#[test]
fn config_instructions_reach_the_image_config() {
    let k = Kiln::with_busybox_image();
    let ctx = k.context(&[]);
    k.build_ok(
        &ctx,
        "FROM busybox\nLABEL a=1 \"b c\"=\"d e\"\nEXPOSE 80 53/udp\nVOLUME [\"/data\"]\n\
         STOPSIGNAL SIGINT\nUSER tester\nWORKDIR /home/tester/work\nENTRYPOINT [\"/bin/echo\"]\n\
         CMD [\"hi\"]\nHEALTHCHECK --interval=5s CMD true\nSHELL [\"/bin/sh\", \"-ec\"]\n\
         ONBUILD RUN echo child\nMAINTAINER someone\n",
        "meta:1",
        &["--label", "extra=yes"],
    );
    let c = k.config("meta:1");
    let cfg = &c["Config"];
    assert_eq!(cfg["Labels"]["a"], "1");
    assert_eq!(cfg["Labels"]["b c"], "d e");
    assert_eq!(cfg["Labels"]["extra"], "yes");
    assert!(cfg["ExposedPorts"].get("80/tcp").is_some());
    assert!(cfg["ExposedPorts"].get("53/udp").is_some());
    assert!(cfg["Volumes"].get("/data").is_some());
    assert_eq!(cfg["StopSignal"], "SIGINT");
    assert_eq!(cfg["User"], "tester");
    assert_eq!(cfg["WorkingDir"], "/home/tester/work");
    assert_eq!(cfg["Entrypoint"], serde_json::json!(["/bin/echo"]));
    assert_eq!(cfg["Cmd"], serde_json::json!(["hi"]));
    assert_eq!(cfg["OnBuild"], serde_json::json!(["RUN echo child"]));
    assert_eq!(c["Author"], "someone");
    let blob = k.config_blob("meta:1");
    assert_eq!(blob["config"]["Healthcheck"]["Interval"], 5_000_000_000u64);
    assert_eq!(
        blob["config"]["Shell"],
        serde_json::json!(["/bin/sh", "-ec"])
    );
    // ENTRYPOINT + CMD run together; WORKDIR was created owned by USER.
    assert_eq!(k.run("meta:1", &[]).ok(), "hi\n");
    assert_eq!(
        k.run("meta:1", &["--entrypoint", "sh", "meta:1"]).code,
        k.run("meta:1", &[]).code
    );
    let owner = k
        .kiln(&[
            "run",
            "--rm",
            "--entrypoint",
            "stat",
            "meta:1",
            "-c",
            "%u:%g %a",
            "/home/tester/work",
        ])
        .ok()
        .to_string();
    assert_eq!(owner, "1000:1000 755\n");
}

#[test]
fn run_uses_user_workdir_and_env_of_the_stage() {
    let k = Kiln::with_busybox_image();
    let ctx = k.context(&[]);
    let df = "FROM busybox\nUSER tester\nWORKDIR /home/tester\nENV A=1\n\
RUN echo \"$(id -un):$(id -gn) $HOME $PWD $A $0\" > out\n\
USER root:extra\nRUN id -u >> /home/tester/out; id -g >> /home/tester/out\n";
    k.build_ok(&ctx, df, "user:1", &[]);
    assert_eq!(
        k.sh("user:1", "cat /home/tester/out"),
        "tester:tester /home/tester /home/tester 1 /bin/sh\n0\n1001\n"
    );
    assert_eq!(k.sh("user:1", "stat -c %U /home/tester/out"), "tester\n");
}

#[test]
fn entrypoint_resets_the_base_cmd_and_onbuild_triggers_run_in_children() {
    let k = Kiln::with_busybox_image();
    let ctx = k.context(&[]);
    k.build_ok(
        &ctx,
        "FROM busybox\nCMD [\"base-cmd\"]\nONBUILD RUN echo triggered > /onbuild\n",
        "parent:1",
        &[],
    );
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM parent:1\nENTRYPOINT [\"/bin/cat\"]\n",
    )
    .unwrap();
    k.build(&ctx, &["-t", "child:1"]).ok();
    let c = k.config("child:1");
    assert_eq!(c["Config"]["Cmd"], serde_json::Value::Null);
    assert_eq!(c["Config"]["OnBuild"], serde_json::Value::Null);
    assert_eq!(k.run("child:1", &["/onbuild"]).ok(), "triggered\n");
}

#[test]
fn args_and_env_are_scoped_like_buildkit() {
    let k = Kiln::with_busybox_image();
    let ctx = k.context(&[]);
    let df = "ARG BASE=busybox\nARG GLOBAL=g\nFROM ${BASE}:latest\nARG GLOBAL\nARG LOCAL=l-$GLOBAL\n\
              ENV FROM_ENV=$LOCAL\nARG TARGETARCH\n\
              RUN echo \"$GLOBAL $LOCAL $FROM_ENV $TARGETARCH $UNDECLARED ${HTTP_PROXY:-noproxy}\" > /out\n";
    std::fs::write(ctx.join("Dockerfile"), df).unwrap();
    k.build(
        &ctx,
        &[
            "-t",
            "args:1",
            "--build-arg",
            "LOCAL=cli",
            "--build-arg",
            "UNDECLARED=x",
            "--build-arg",
            "HTTP_PROXY=http://proxy.invalid:3128",
        ],
    )
    .ok();
    assert_eq!(
        k.sh("args:1", "cat /out"),
        "g cli cli amd64  http://proxy.invalid:3128\n"
    );
    let env = k.config("args:1")["Config"]["Env"].clone();
    let env: Vec<String> = serde_json::from_value(env).unwrap();
    assert!(env.contains(&"FROM_ENV=cli".to_string()), "{env:?}");
    assert!(!env
        .iter()
        .any(|e| e.starts_with("LOCAL=") || e.starts_with("GLOBAL=")));
    let run = k
        .history("args:1")
        .into_iter()
        .find(|(by, _)| by.starts_with("RUN"))
        .unwrap()
        .0;
    assert!(
        run.starts_with("RUN |3 GLOBAL=g LOCAL=cli TARGETARCH=amd64 /bin/sh -c"),
        "{run}"
    );
    assert!(
        !run.contains("proxy.invalid"),
        "proxies stay out of history: {run}"
    );
    // A bare --build-arg K takes K from the environment.
    let out = k
        .cmd(&["build", "-q", "--build-arg", "LOCAL", ctx.to_str().unwrap()])
        .env("LOCAL", "from-env")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert_eq!(
        k.sh(&id, "cat /out"),
        "g from-env from-env amd64  noproxy\n"
    );
}

#[test]
fn heredocs_in_run_and_copy() {
    let k = Kiln::with_busybox_image();
    let ctx = k.context(&[]);
    let df = "FROM busybox\nENV WHO=kiln\n\
RUN <<EOF\necho \"plain $WHO\" > /plain\nEOF\n\
RUN <<EOF\n#!/bin/sh\necho \"script $0\" > /script\nEOF\n\
RUN cat <<'X' > /quoted\nno $WHO here\nX\n\
COPY <<EOF <<'RAW' /docs/\nexpanded $WHO\nEOF\nraw $WHO\nRAW\n";
    k.build_ok(&ctx, df, "heredoc:1", &[]);
    assert_eq!(k.sh("heredoc:1", "cat /plain"), "plain kiln\n");
    assert_eq!(k.sh("heredoc:1", "cat /script"), "script /dev/pipes/EOF\n");
    assert_eq!(k.sh("heredoc:1", "cat /quoted"), "no $WHO here\n");
    assert_eq!(k.sh("heredoc:1", "cat /docs/EOF"), "expanded kiln\n");
    assert_eq!(k.sh("heredoc:1", "cat /docs/RAW"), "raw $WHO\n");
}

#[test]
fn copy_and_add_rules() {
    let k = Kiln::with_busybox_image();
    let mut files = vec![
        ("src/a.txt", "a"),
        ("src/sub/b.txt", "b"),
        ("src/skip.log", "log"),
        ("one.txt", "1"),
    ];
    files.push(("keep/x.txt", "x"));
    let ctx = k.context(&files);
    // A local tar archive ADD unpacks.
    let st = std::process::Command::new("tar")
        .arg("-C")
        .arg(ctx.join("src"))
        .arg("-czf")
        .arg(ctx.join("bundle.tgz"))
        .arg("a.txt")
        .status()
        .unwrap();
    assert!(st.success());
    let df = "FROM busybox\n\
COPY --chown=tester:extra --chmod=640 one.txt /owned\n\
COPY --exclude=*.log src /copied/\n\
COPY --parents src/sub/b.txt /parents/\n\
COPY *.txt /glob/\n\
ADD bundle.tgz /unpacked/\n\
ADD --chmod=755 one.txt /added\n\
COPY --link keep /linked/\n";
    k.build_ok(&ctx, df, "copy:1", &[]);
    assert_eq!(
        k.sh("copy:1", "stat -c '%U:%G %a' /owned"),
        "tester:extra 640\n"
    );
    assert_eq!(
        k.sh("copy:1", "find /copied | sort"),
        "/copied\n/copied/a.txt\n/copied/sub\n/copied/sub/b.txt\n"
    );
    assert_eq!(k.sh("copy:1", "cat /parents/src/sub/b.txt"), "b");
    assert_eq!(k.sh("copy:1", "ls /glob"), "one.txt\n");
    assert_eq!(k.sh("copy:1", "cat /unpacked/a.txt"), "a");
    assert_eq!(k.sh("copy:1", "stat -c %a /added"), "755\n");
    assert_eq!(k.sh("copy:1", "cat /linked/x.txt"), "x");
    // Context files are owned by root whatever their owner on the host.
    assert_eq!(k.sh("copy:1", "stat -c %u:%g /copied/a.txt"), "0:0\n");
}

#[test]
fn dockerignore_keeps_files_out_of_the_build() {
    let k = Kiln::with_busybox_image();
    let ctx = k.context(&[
        (".dockerignore", "*.secret\nnode_modules\n!keep.secret\n"),
        ("app.js", "app"),
        ("token.secret", "t"),
        ("keep.secret", "k"),
        ("node_modules/dep/index.js", "dep"),
    ]);
    k.build_ok(&ctx, "FROM busybox\nCOPY . /ctx/\n", "ignore:1", &[]);
    assert_eq!(
        k.sh("ignore:1", "cd /ctx && find . -type f | sort"),
        "./.dockerignore\n./Dockerfile\n./app.js\n./keep.secret\n"
    );
    // An ignored file cannot be named either.
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nCOPY token.secret /\n",
    )
    .unwrap();
    let ran = k.build(&ctx, &[]);
    assert!(ran.fails().contains("token.secret"), "{}", ran.stderr);
    // Changing an ignored file keeps the cache.
    std::fs::write(ctx.join("Dockerfile"), "FROM busybox\nCOPY . /ctx/\n").unwrap();
    std::fs::write(ctx.join("token.secret"), "changed").unwrap();
    let out = k.build(&ctx, &["-t", "ignore:1"]);
    let (_, done) = support::kiln::step_states(&out.stderr);
    assert!(!done.iter().any(|s| s.contains("COPY")), "{}", out.stderr);
}

#[test]
fn failing_run_reports_line_exit_code_and_output() {
    let k = Kiln::with_busybox_image();
    let ctx = k.context(&[]);
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nRUN echo ok\nRUN echo 'first line'; echo 'to stderr' >&2; exit 3\nRUN echo never\n",
    )
    .unwrap();
    let ran = k.build(&ctx, &["-t", "broken:1"]);
    let err = ran.fails();
    assert!(
        err.contains("Dockerfile:3\n")
            && err.contains(" >>> RUN echo 'first line'")
            && err.contains("did not complete successfully: exit code: 3"),
        "{err}"
    );
    assert!(
        err.contains("first line") && err.contains("to stderr"),
        "{err}"
    );
    assert!(!err.contains("#4 [4/4] RUN echo never"), "{err}");
    assert!(
        k.kiln(&["inspect", "broken:1"]).code != 0,
        "no image on failure"
    );
    // Unknown instructions and missing base images fail before running.
    std::fs::write(ctx.join("Dockerfile"), "FROM nothere:1\nRUN true\n").unwrap();
    let err = k.build(&ctx, &[]).fails().to_string();
    assert!(
        err.contains("Dockerfile:1:") && err.contains("nothere:1"),
        "{err}"
    );
}

#[test]
fn secrets_network_and_outputs() {
    let k = Kiln::with_busybox_image();
    let ctx = k.context(&[]);
    let secret = k.dir.path().join("token");
    std::fs::write(&secret, "s3cret").unwrap();
    let df = "FROM busybox\n\
RUN --mount=type=secret,id=tok cat /run/secrets/tok > /seen && stat -c %a /run/secrets/tok >> /seen\n\
RUN --network=none ip -o link | cut -d: -f2 | tr -d ' ' > /links\n\
RUN --mount=type=secret,id=absent,required=false test ! -e /run/secrets/absent\n";
    let out = k.dir.path().join("out");
    std::fs::write(ctx.join("Dockerfile"), df).unwrap();
    k.build(
        &ctx,
        &[
            "-t",
            "secret:1",
            "--secret",
            &format!("id=tok,src={}", secret.display()),
            "--output",
            &format!("type=local,dest={}", out.display()),
            "--iidfile",
            k.dir.path().join("iid").to_str().unwrap(),
        ],
    )
    .ok();
    assert_eq!(k.sh("secret:1", "cat /seen"), "s3cret400\n");
    assert_eq!(k.sh("secret:1", "cat /links"), "lo\n");
    // The secret never reaches a layer.
    assert_eq!(k.sh("secret:1", "ls /run/secrets 2>&1 | wc -l"), "1\n");
    assert_eq!(
        std::fs::read_to_string(out.join("seen")).unwrap(),
        "s3cret400\n"
    );
    assert!(out.join("bin/busybox").is_file());
    let iid = std::fs::read_to_string(k.dir.path().join("iid")).unwrap();
    assert_eq!(iid, k.inspect("secret:1", "{{.Id}}"));
    // `kiln build --network none` applies to every RUN (and to its key).
    let net = k.context(&[]);
    std::fs::write(
        net.join("Dockerfile"),
        "FROM busybox\nRUN ip -o link | wc -l > /n\n",
    )
    .unwrap();
    k.build(&net, &["-t", "net:host"]).ok();
    k.build(&net, &["-t", "net:none", "--network", "none"]).ok();
    assert_eq!(k.sh("net:none", "cat /n"), "1\n");
    assert_ne!(k.sh("net:host", "cat /n"), "1\n");
    // Archives: an OCI layout and a docker-archive that kiln load reads back.
    let oci = k.dir.path().join("image-oci.tar");
    let docker = k.dir.path().join("image-docker.tar");
    for (kind, path) in [("oci", &oci), ("docker", &docker)] {
        let spec = format!("type={kind},dest={}", path.display());
        k.build(
            &ctx,
            &[
                "-t",
                "secret:1",
                "--secret",
                &format!("id=tok,src={}", secret.display()),
                "--output",
                &spec,
            ],
        )
        .ok();
    }
    let listing = std::process::Command::new("tar")
        .arg("-tf")
        .arg(&oci)
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(
        listing.contains("index.json") && listing.contains("oci-layout"),
        "{listing}"
    );
    k.kiln(&["rmi", "secret:1"]).ok();
    k.kiln(&["load", "-i", docker.to_str().unwrap()]).ok();
    assert_eq!(k.sh("secret:1", "cat /seen"), "s3cret400\n");
}

#[test]
fn dockerfile_and_context_from_stdin_or_elsewhere() {
    let k = Kiln::with_busybox_image();
    let ctx = k.context(&[("f.txt", "from ctx")]);
    let other = k.dir.path().join("Other.dockerfile");
    std::fs::write(&other, "FROM busybox\nCOPY f.txt /f\n").unwrap();
    k.build(&ctx, &["-t", "f:1", "-f", other.to_str().unwrap()])
        .ok();
    assert_eq!(k.sh("f:1", "cat /f"), "from ctx");
    // `-` as context: a Dockerfile on stdin and no context.
    let mut child = k
        .cmd(&["build", "-q", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"FROM busybox\nRUN echo stdin > /s\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert_eq!(k.sh(&id, "cat /s"), "stdin\n");
    // Other platforms can be built (tests/it/platforms.rs); a malformed
    // one is refused naming the flag.
    let err = k.build(&ctx, &["--platform", "linux"]).fails().to_string();
    assert!(
        err.contains("--platform: invalid platform \"linux\": expected os/arch[/variant]"),
        "{err}"
    );
}

#[test]
fn add_downloads_urls_and_checks_checksums() {
    let k = Kiln::with_busybox_image();
    let server = StubServer::start(|_| Reply::new(200, &b"downloaded\n"[..]));
    let base = server.url();
    let ctx = k.context(&[]);
    let sum = "sha256:0d9dbb7d1c8ddcf1e13b1cc2ca8fd1c8e1fc04ba0e1d0a55bf5c6d6dfb37f5ab";
    let df = format!("FROM busybox\nADD {base}/file.txt /dl/\n");
    k.build_ok(&ctx, &df, "add:1", &[]);
    assert_eq!(k.sh("add:1", "cat /dl/file.txt"), "downloaded\n");
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("FROM busybox\nADD --checksum={sum} {base}/file.txt /dl/\n"),
    )
    .unwrap();
    let err = k.build(&ctx, &["--no-cache"]).fails().to_string();
    assert!(
        err.contains("Dockerfile:2:") && err.contains("digest mismatch"),
        "{err}"
    );
}

#[test]
fn missing_images_are_pulled_for_run_and_build() {
    let k = Kiln::with_busybox_image();
    let err = k
        .run("127.0.0.1:1/missing:1", &["true"])
        .fails()
        .to_string();
    assert!(
        err.contains("Unable to find image '127.0.0.1:1/missing:1' locally"),
        "{err}"
    );
    let ctx = k.context(&[]);
    std::fs::write(ctx.join("Dockerfile"), "FROM 127.0.0.1:1/base:1\n").unwrap();
    let err = k.build(&ctx, &["--pull"]).fails().to_string();
    assert!(
        err.contains("Dockerfile:1: 127.0.0.1:1/base:1: pulling"),
        "{err}"
    );
}

/// Proxy build args reach RUN undeclared, in both cases whichever case was
/// given, the lower-case one winning when both are, over an ENV of the same
/// name; they stay out of the config and the history (moby/buildkit
/// dockerfile2llb `proxyEnvFromBuildArgs`, llbsolver/ops/exec.go
/// `proxyEnvList`, runc `prepareEnv` keeping the last duplicate).
#[test]
fn proxy_build_args_set_both_cases_and_stay_out_of_the_image() {
    let k = Kiln::with_busybox_image();
    let ctx = k.context(&[]);
    let df = "FROM busybox\nENV HTTPS_PROXY=from-env\n\
              RUN echo \"$HTTP_PROXY $http_proxy $HTTPS_PROXY $https_proxy ${NO_PROXY:-unset}\" > /out\n";
    k.build_ok(
        &ctx,
        df,
        "proxy:1",
        &[
            "--build-arg",
            "HTTP_PROXY=http://upper.invalid",
            "--build-arg",
            "http_proxy=http://lower.invalid",
            "--build-arg",
            "https_proxy=https://arg.invalid",
        ],
    );
    assert_eq!(
        k.sh("proxy:1", "cat /out"),
        "http://lower.invalid http://lower.invalid https://arg.invalid https://arg.invalid unset\n"
    );
    let env: Vec<String> =
        serde_json::from_value(k.config("proxy:1")["Config"]["Env"].clone()).unwrap();
    assert!(env.contains(&"HTTPS_PROXY=from-env".to_string()), "{env:?}");
    assert!(
        !env.iter()
            .any(|e| e.to_ascii_lowercase().starts_with("http_proxy")),
        "{env:?}"
    );
    let history = k.history("proxy:1");
    assert!(
        history.iter().all(|(by, _)| !by.contains(".invalid")),
        "{history:?}"
    );
}

/// BuildKit keeps an absolute WORKDIR as written (util/system
/// `NormalizeWorkdir`): `/app/` is the config's WorkingDir and the history's
/// text, and RUN steps and containers still work in `/app`.
#[test]
fn workdir_with_a_trailing_slash_is_kept_as_written() {
    let k = Kiln::with_busybox_image();
    let ctx = k.context(&[]);
    k.build_ok(
        &ctx,
        "FROM busybox\nWORKDIR /app/\nRUN pwd > /ran-in\n",
        "wd:1",
        &[],
    );
    assert_eq!(k.config("wd:1")["Config"]["WorkingDir"], "/app/");
    assert!(
        k.history("wd:1")
            .contains(&("WORKDIR /app/".to_string(), true)),
        "{:?}",
        k.history("wd:1")
    );
    assert_eq!(k.sh("wd:1", "cat /ran-in; pwd"), "/app\n/app\n");
}
