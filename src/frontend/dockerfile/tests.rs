//! Lowering tests: Dockerfiles in, graph ops and image config out, with a
//! resolver that knows a few fake images.

use std::cell::RefCell;
use std::collections::BTreeMap;

use super::*;
use crate::image::oci::{ContainerConfig, RootFs};
use crate::image::Digest;
use crate::solver::{CopyFiles, CopySource, Exec, FileAction, MountKind, Network};

/// Knows `busybox` (one layer, no env) and `trigger` (with ONBUILD
/// triggers); records what it was asked for.
struct Images {
    asked: RefCell<Vec<String>>,
}

impl ImageResolver for Images {
    fn resolve(&self, r: &ImageRef, _: &Platform) -> Result<ResolvedImage, String> {
        self.asked.borrow_mut().push(r.familiar_name());
        let mut cc = ContainerConfig::default();
        match r.familiar_name().as_str() {
            "busybox" => {}
            "trigger" => {
                cc.extra.insert(
                    "OnBuild".into(),
                    serde_json::json!(["RUN echo triggered", "ENV FROM_TRIGGER=1"]),
                );
                cc.env = Some(vec!["PATH=/bin".into()]);
                cc.cmd = Some(vec!["inherited".into()]);
                cc.working_dir = Some("/base".into());
            }
            other => return Err(format!("{other}: not found")),
        }
        let digest = Digest::sha256_of(r.to_string().as_bytes());
        Ok(ResolvedImage {
            reference: r.with_digest(digest.clone()),
            config: ImageConfig {
                architecture: "amd64".into(),
                os: "linux".into(),
                created: Some("2020-01-01T00:00:00Z".into()),
                config: Some(cc),
                rootfs: RootFs {
                    kind: "layers".into(),
                    diff_ids: vec![digest],
                },
                ..ImageConfig::default()
            },
        })
    }
}

fn opts() -> LowerOptions {
    LowerOptions {
        file_name: "Dockerfile".into(),
        build_args: BTreeMap::new(),
        target: None,
        labels: BTreeMap::new(),
        source_date_epoch: None,
        created: None,
        platform: Platform::linux_amd64(),
        build_platform: Platform::linux_amd64(),
        platform_implicit: false,
        multi_platform: false,
        context_exclude: Vec::new(),
        network: Network::Sandbox,
        step_flags: Default::default(),
        named_contexts: Default::default(),
    }
}

fn lower_with(src: &str, opts: &LowerOptions) -> Result<(BuildPlan, Vec<String>), LowerError> {
    let df = crate::parser::parse("Dockerfile", src.as_bytes()).expect("parses");
    let images = Images {
        asked: RefCell::new(Vec::new()),
    };
    let plan = lower(&df, opts, &images)?;
    Ok((plan, images.asked.into_inner()))
}

fn plan(src: &str) -> BuildPlan {
    lower_with(src, &opts()).expect("lowers").0
}

/// The exec ops of a plan, in graph order.
fn execs(plan: &BuildPlan) -> Vec<Exec> {
    plan.graph
        .iter()
        .filter_map(|(_, v)| match v.op() {
            Op::Exec(e) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

/// Vertex names, digests of pinned images cut off.
fn names(plan: &BuildPlan) -> Vec<String> {
    plan.graph
        .iter()
        .map(|(_, v)| {
            let name = v.info().name.clone();
            match name.split_once("@sha256:") {
                Some((head, _)) => format!("{head}@sha256"),
                None => name,
            }
        })
        .collect()
}

fn history(plan: &BuildPlan) -> Vec<(String, bool)> {
    plan.config
        .history
        .iter()
        .map(|h| (h.created_by.clone().unwrap_or_default(), h.empty_layer))
        .collect()
}

fn cc(plan: &BuildPlan) -> ContainerConfig {
    plan.config.config.clone().unwrap_or_default()
}

fn env_of(e: &Exec, key: &str) -> Option<String> {
    e.env
        .iter()
        .find_map(|kv| kv.strip_prefix(&format!("{key}=")).map(str::to_string))
}

#[test]
fn single_stage_lowers_to_image_run_copy_and_config() {
    let p =
        plan("FROM busybox\nENV A=1\nWORKDIR /app\nRUN echo $A > f\nCOPY a.txt b/\nCMD [\"sh\"]\n");
    assert_eq!(
        names(&p),
        [
            "[1/4] FROM docker.io/library/busybox:latest@sha256",
            "[2/4] WORKDIR /app",
            "[3/4] RUN echo 1 > f",
            "[internal] load build context",
            "[4/4] COPY a.txt b/",
        ]
    );
    let run = &execs(&p)[0];
    assert_eq!(run.args, ["/bin/sh", "-c", "echo $A > f"]);
    assert_eq!(run.cwd, "/app");
    assert_eq!(env_of(run, "A").as_deref(), Some("1"));
    assert_eq!(
        env_of(run, "PATH").as_deref(),
        Some(crate::image::oci::DEFAULT_PATH)
    );
    let c = cc(&p);
    assert_eq!(c.cmd, Some(vec!["sh".to_string()]));
    assert_eq!(c.working_dir.as_deref(), Some("/app"));
    assert_eq!(
        history(&p),
        [
            ("ENV A=1".to_string(), true),
            ("WORKDIR /app".into(), false),
            ("RUN /bin/sh -c echo $A > f # buildkit".into(), false),
            ("COPY a.txt b/ # buildkit".into(), false),
            ("CMD [\"sh\"]".into(), true),
        ]
    );
    assert_eq!(p.layer_steps.len(), 3);
    // Times are the exporter's to fill in (no SOURCE_DATE_EPOCH here).
    assert_eq!(p.config.created, None);
    assert!(p.config.history.iter().all(|h| h.created.is_none()));
    let copy = p.graph.get(p.target.unwrap()).unwrap();
    let Op::File(f) = copy.op() else {
        panic!("target is the copy")
    };
    let FileAction::CopyFiles(action) = &f.actions[0] else {
        panic!("copy files action")
    };
    assert_eq!(action.workdir, "/app");
    assert_eq!(
        action.sources,
        [CopySource::Path {
            path: "a.txt".into()
        }]
    );
}

#[test]
fn only_stages_the_target_needs_are_lowered() {
    let src = "FROM busybox AS a\nRUN echo a\nFROM nonexistent AS unused\nRUN no\n\
               FROM busybox AS b\nCOPY --from=a /x /x\nFROM b AS c\nRUN echo c\n";
    let (p, asked) = lower_with(src, &opts()).unwrap();
    assert_eq!(asked, ["busybox"]);
    assert!(
        names(&p).iter().any(|n| n == "[c 1/1] RUN echo c"),
        "{:?}",
        names(&p)
    );
    let mut o = opts();
    o.target = Some("A".into());
    let (p, _) = lower_with(src, &o).unwrap();
    assert_eq!(execs(&p).len(), 1);
    o.target = Some("nope".into());
    let err = lower_with(src, &o).unwrap_err().to_string();
    assert_eq!(err, "target stage \"nope\" could not be found");
    o.target = Some("unused".into());
    let err = lower_with(src, &o).unwrap_err().to_string();
    assert_eq!(err, "Dockerfile:3: nonexistent: not found");
}

#[test]
fn copy_from_must_name_an_earlier_stage() {
    let err = lower_with(
        "FROM busybox AS a\nCOPY --from=b /x /x\nFROM busybox AS b\n",
        &{
            let mut o = opts();
            o.target = Some("a".into());
            o
        },
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        err,
        "Dockerfile:2: cannot copy from stage \"b\", it needs to be defined before current stage \"a\""
    );
    let p = plan("FROM busybox\nRUN true\nFROM scratch\nCOPY --from=0 /bin /bin\n");
    assert!(names(&p).contains(&"[stage-1 1/1] COPY --from=0 /bin /bin".to_string()));
}

#[test]
fn args_are_scoped_like_buildkit() {
    let src = "ARG TAG=latest\nARG UNUSED\nFROM busybox:${TAG}\nARG TAG\nARG B=b-$TAG\nENV E=$B\n\
               RUN echo $TAG $B $TARGETARCH\nARG TARGETARCH\nRUN echo $TARGETARCH\n";
    let mut o = opts();
    o.build_args.insert("B".into(), "from-cli".into());
    o.build_args
        .insert("HTTP_PROXY".into(), "http://proxy:3128".into());
    let (p, _) = lower_with(src, &o).unwrap();
    let runs = execs(&p);
    assert_eq!(env_of(&runs[0], "TAG").as_deref(), Some("latest"));
    assert_eq!(env_of(&runs[0], "B").as_deref(), Some("from-cli"));
    assert_eq!(env_of(&runs[0], "TARGETARCH"), None);
    assert_eq!(env_of(&runs[1], "TARGETARCH").as_deref(), Some("amd64"));
    assert_eq!(
        env_of(&runs[0], "HTTP_PROXY"),
        None,
        "proxies stay out of the key"
    );
    assert_eq!(
        runs[0].proxy_env,
        [
            "HTTP_PROXY=http://proxy:3128",
            "http_proxy=http://proxy:3128"
        ]
    );
    let env = cc(&p).env.unwrap();
    assert!(env.contains(&"E=from-cli".to_string()), "{env:?}");
    assert!(
        !env.iter().any(|e| e.starts_with("TAG=")),
        "ARGs never reach the config"
    );
    let h = history(&p);
    assert_eq!(h[0].0, "ARG TAG=latest");
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    o.build_args.insert("NOPE".into(), "x".into());
    let (p, _) = lower_with(src, &o).unwrap();
    assert_eq!(
        p.warnings,
        ["[Warning] One or more build-args [NOPE] were not consumed"]
    );
    assert_eq!(
        h[3].0,
        "RUN |2 TAG=latest B=from-cli /bin/sh -c echo $TAG $B $TARGETARCH # buildkit"
    );
}

#[test]
fn env_words_expand_with_the_environment_from_before() {
    let p = plan("FROM busybox\nENV a=hello\nENV a=bye b=$a\nLABEL x=\"$a there\"\n");
    let env = cc(&p).env.unwrap();
    assert!(env.contains(&"a=bye".into()) && env.contains(&"b=hello".into()));
    assert_eq!(cc(&p).labels.unwrap()["x"], "bye there");
}

#[test]
fn entrypoint_resets_inherited_cmd_only() {
    let p = plan("FROM trigger\nENTRYPOINT [\"/bin/app\"]\n");
    assert_eq!(cc(&p).cmd, None);
    let p = plan("FROM busybox\nCMD [\"x\"]\nENTRYPOINT echo hi\n");
    assert_eq!(cc(&p).cmd, Some(vec!["x".to_string()]));
    assert_eq!(
        cc(&p).entrypoint,
        Some(vec!["/bin/sh".into(), "-c".into(), "echo hi".into()])
    );
    let p = plan("FROM busybox\nSHELL [\"/bin/ash\", \"-eo\"]\nRUN a\nCMD b\n");
    assert_eq!(execs(&p)[0].args, ["/bin/ash", "-eo", "a"]);
    assert_eq!(
        cc(&p).cmd,
        Some(vec!["/bin/ash".into(), "-eo".into(), "b".into()])
    );
}

#[test]
fn onbuild_triggers_run_after_from_and_are_not_inherited() {
    let p = plan("FROM trigger\nRUN echo own\n");
    assert_eq!(
        names(&p),
        [
            "[1/4] FROM docker.io/library/trigger:latest@sha256",
            "[2/4] ONBUILD RUN echo triggered",
            "[3/4] RUN echo own",
        ]
    );
    let runs = execs(&p);
    assert_eq!(runs[0].cwd, "/base");
    assert_eq!(env_of(&runs[1], "FROM_TRIGGER").as_deref(), Some("1"));
    assert!(!cc(&p).extra.contains_key("OnBuild"));
    let p = plan("FROM busybox\nONBUILD RUN make\n");
    assert_eq!(cc(&p).extra["OnBuild"], serde_json::json!(["RUN make"]));
    // An earlier stage's ONBUILDs run in a stage built on it, and are not
    // carried into its config either.
    let p = plan("FROM busybox AS a\nONBUILD RUN make\nFROM a\nRUN true\n");
    assert!(
        names(&p).iter().any(|n| n.contains("ONBUILD RUN make")),
        "{:?}",
        names(&p)
    );
    assert!(!cc(&p).extra.contains_key("OnBuild"));
}

#[test]
fn heredocs_run_as_scripts_or_shell_input() {
    let p = plan("FROM busybox\nRUN <<EOF\n#!/bin/sh\necho hi\nEOF\nRUN <<EOF\necho plain\nEOF\nRUN cat <<X >/f\nbody $A\nX\n");
    let runs = execs(&p);
    assert_eq!(runs[0].args, ["/bin/sh", "-c", "/dev/pipes/EOF"]);
    assert!(matches!(runs[0].mounts[1].kind, MountKind::Bind));
    assert_eq!(runs[0].mounts[1].dest, "/dev/pipes/");
    assert_eq!(runs[1].args, ["/bin/sh", "-c", "echo plain\n"]);
    assert_eq!(runs[2].args[2], "cat <<X >/f\nbody $A\nX");
    assert!(names(&p).contains(&"[3/4] RUN <<EOF (echo plain)".to_string()));
}

#[test]
fn run_mounts_and_network() {
    let p = plan(
        "FROM busybox AS b\nRUN true\nFROM busybox\nWORKDIR /w\nARG ID=c1\n\
         RUN --mount=type=cache,id=$ID,target=cache,sharing=locked \
         --mount=type=bind,from=b,source=/bin,target=/b --mount=type=secret,id=tok \
         --mount=type=tmpfs,target=/t --network=none true\n",
    );
    let run = execs(&p).pop().unwrap();
    assert_eq!(run.network, Network::None);
    // `kiln build --network none` is the default of every RUN.
    let mut o = opts();
    o.network = Network::None;
    let (p, _) = lower_with("FROM busybox\nRUN true\nRUN --network=host true\n", &o).unwrap();
    let nets: Vec<Network> = execs(&p).iter().map(|e| e.network).collect();
    assert_eq!(nets, [Network::None, Network::Host]);
    let kinds: Vec<(String, &MountKind)> = run
        .mounts
        .iter()
        .map(|m| (m.dest.clone(), &m.kind))
        .collect();
    assert_eq!(kinds[1].0, "/w/cache");
    assert!(matches!(kinds[1].1, MountKind::Cache { id, .. } if id == "c1"));
    assert_eq!(run.mounts[2].selector, "/bin");
    assert!(run.mounts[2].readonly && run.mounts[2].input.is_some());
    assert_eq!(kinds[3].0, "/run/secrets/tok");
    assert!(matches!(kinds[4].1, MountKind::Tmpfs { .. }));
}

#[test]
fn secret_env_mounts_have_no_file_unless_targeted_and_show_masked() {
    let p = plan(
        "FROM busybox\nWORKDIR /w\n\
         RUN --mount=type=secret,id=tok,env=TOKEN --mount=type=secret,id=k,env=K,target=key \
         echo $TOKEN\n",
    );
    let run = execs(&p).pop().unwrap();
    let secrets: Vec<(&str, &MountKind)> = run.mounts[1..]
        .iter()
        .map(|m| (m.dest.as_str(), &m.kind))
        .collect();
    assert!(
        matches!(secrets[0], ("", MountKind::Secret { id, env: Some(v), .. }) if id == "tok" && v == "TOKEN"),
        "{secrets:?}"
    );
    assert!(
        matches!(secrets[1], ("/w/key", MountKind::Secret { env: Some(v), .. }) if v == "K"),
        "{secrets:?}"
    );
    // The variable is not part of the step's environment (the value is
    // only known when it runs) and its name shows as BuildKit masks it.
    assert!(!run.env.iter().any(|e| e.starts_with("TOKEN=")));
    assert!(
        names(&p).iter().any(|n| n.ends_with("echo ****")),
        "{:?}",
        names(&p)
    );
}

/// BuildKit's llb defaults for SSH mounts (moby/buildkit
/// `client/llb/exec.go`, `ExecOp.Marshal`): numbered default targets and
/// `SSH_AUTH_SOCK` naming the first, unless the stage set it.
#[test]
fn ssh_mounts_get_numbered_targets_and_ssh_auth_sock() {
    let p = plan(
        "FROM busybox\nWORKDIR /w\n\
         RUN --mount=type=ssh --mount=type=ssh,id=gh,target=a.sock,required \
         --mount=type=ssh,id=x,mode=0644,uid=7 true\n\
         ENV SSH_AUTH_SOCK=/mine\nRUN --mount=type=ssh true\n",
    );
    let runs = execs(&p);
    let ssh: Vec<(&str, &MountKind)> = runs[0].mounts[1..]
        .iter()
        .map(|m| (m.dest.as_str(), &m.kind))
        .collect();
    assert!(
        matches!(ssh[0], ("/run/buildkit/ssh_agent.0", MountKind::Ssh { id, required: false, mode: None, .. }) if id == "default"),
        "{ssh:?}"
    );
    assert!(
        matches!(ssh[1], ("/w/a.sock", MountKind::Ssh { id, required: true, .. }) if id == "gh"),
        "{ssh:?}"
    );
    assert!(
        matches!(
            ssh[2],
            (
                "/run/buildkit/ssh_agent.2",
                MountKind::Ssh {
                    mode: Some(0o644),
                    uid: Some(7),
                    ..
                }
            )
        ),
        "{ssh:?}"
    );
    let socks = |env: &[String]| -> Vec<String> {
        env.iter()
            .filter(|e| e.starts_with("SSH_AUTH_SOCK="))
            .cloned()
            .collect()
    };
    assert_eq!(
        socks(&runs[0].env),
        ["SSH_AUTH_SOCK=/run/buildkit/ssh_agent.0"]
    );
    assert_eq!(socks(&runs[1].env), ["SSH_AUTH_SOCK=/mine"]);
}

#[test]
fn unsupported_requests_fail_at_their_line() {
    for (src, expected) in [
        (
            "FROM --platform=linux/arm64/v8/x busybox\n",
            "Dockerfile:1: failed to parse platform linux/arm64/v8/x: invalid platform \"linux/arm64/v8/x\": expected os/arch[/variant], e.g. linux/arm64/v8",
        ),
        (
            "FROM busybox\nCOPY http://x/y /\n",
            "Dockerfile:2: source can't be a URL for COPY",
        ),
        (
            "FROM busybox\nCOPY https://github.com/moby/buildkit.git /\n",
            "Dockerfile:2: source can't be a git ref for COPY",
        ),
        (
            "FROM busybox\nCOPY git@github.com:moby/buildkit.git /\n",
            "Dockerfile:2: source can't be a git ref for COPY",
        ),
        (
            "FROM busybox\nADD https://u:secret@h/repo.git#main other /src/\n",
            "Dockerfile:2: ADD of git repository https://u:xxxxx@h/repo.git#main must be the instruction's only source",

        ),
        (
            "FROM busybox\nADD --checksum=sha256:00 a /\n",
            "Dockerfile:2: checksum can't be specified for non-HTTP(S) sources",
        ),
        (
            "FROM busybox\nSTOPSIGNAL SIGNOPE\n",
            "Dockerfile:2: invalid signal: SIGNOPE",
        ),
    ] {
        let err = lower_with(src, &opts()).unwrap_err().to_string();
        assert_eq!(err, expected, "{src}");
    }
    let p = plan("FROM --platform=$BUILDPLATFORM scratch\nCOPY <<EOF /x\nhi\nEOF\n");
    assert!(p.target.is_some());
}

#[test]
fn config_instructions() {
    let p = plan(
        "FROM scratch\nUSER 1000:1000\nEXPOSE 80 53/udp\nVOLUME /data\nSTOPSIGNAL SIGINT\n\
         MAINTAINER me\nHEALTHCHECK --interval=30s CMD true\nLABEL a=b\n",
    );
    let c = cc(&p);
    assert_eq!(c.user.as_deref(), Some("1000:1000"));
    assert_eq!(
        c.exposed_ports.unwrap().keys().cloned().collect::<Vec<_>>(),
        ["53/udp", "80/tcp"]
    );
    assert!(c.volumes.unwrap().contains_key("/data"));
    assert_eq!(c.stop_signal.as_deref(), Some("SIGINT"));
    assert_eq!(c.extra["Healthcheck"]["Interval"], 30_000_000_000u64);
    assert_eq!(p.config.author.as_deref(), Some("me"));
    assert_eq!(p.target, None);
    // BuildKit's current spellings (dispatchExpose, dispatchHealthcheck).
    assert_eq!(history(&p)[1].0, "EXPOSE [53/udp 80/tcp]");
    assert_eq!(
        history(&p)[5].0,
        "HEALTHCHECK {Test:[CMD-SHELL true] Interval:30s Timeout:0s StartPeriod:0s \
         StartInterval:0s Retries:0}"
    );
}

/// `created_by` of EXPOSE and HEALTHCHECK as current BuildKit writes them
/// (moby/buildkit dockerfile2llb `dispatchExpose`: `EXPOSE %v` of the
/// parsed port list; `dispatchHealthcheck`: `HEALTHCHECK %+v` of the
/// config struct), not old docker's `EXPOSE map[80/tcp:{}]`.
#[test]
fn expose_and_healthcheck_history_is_buildkits_current_format() {
    for (line, expected) in [
        // The words are sorted as written (instructions `parseExpose`), then
        // expanded and parsed; repeats stay.
        ("EXPOSE 80 53/udp 80", "EXPOSE [53/udp 80/tcp 80/tcp]"),
        ("EXPOSE $P 1000", "EXPOSE [9/tcp 1000/tcp]"),
        ("EXPOSE 8000-8001/tcp", "EXPOSE [8000/tcp 8001/tcp]"),
        (
            "HEALTHCHECK NONE",
            "HEALTHCHECK {Test:[NONE] Interval:0s Timeout:0s StartPeriod:0s StartInterval:0s Retries:0}",
        ),
        (
            "HEALTHCHECK CMD [\"curl\", \"-f\", \"http://x/\"]",
            "HEALTHCHECK {Test:[CMD curl -f http://x/] Interval:0s Timeout:0s StartPeriod:0s StartInterval:0s Retries:0}",
        ),
        (
            "HEALTHCHECK --interval=1m30s --timeout=500ms --start-period=2s --start-interval=1.5s --retries=3 CMD curl -f http://x/ || exit 1",
            "HEALTHCHECK {Test:[CMD-SHELL curl -f http://x/ || exit 1] Interval:1m30s Timeout:500ms StartPeriod:2s StartInterval:1.5s Retries:3}",
        ),
    ] {
        let p = plan(&format!("FROM scratch\nENV P=9\n{line}\n"));
        assert_eq!(history(&p)[1], (expected.to_string(), true), "{line}");
    }
    let p = plan("FROM scratch\nHEALTHCHECK NONE\n");
    assert_eq!(
        cc(&p).extra["Healthcheck"],
        serde_json::json!({"Test": ["NONE"]})
    );
}

#[test]
fn add_urls_are_http_sources_shared_by_url_and_checksum() {
    let p = plan(
        "FROM busybox\nADD https://u:secret@h/a/tool.bin ./x /opt/\n\
         ADD https://u:secret@h/a/tool.bin /again\n\
         ADD --checksum=sha256:0000 https://u:secret@h/a/tool.bin /pinned\n",
    );
    assert_eq!(
        names(&p),
        [
            "[1/4] FROM docker.io/library/busybox:latest@sha256",
            "https://u:xxxxx@h/a/tool.bin",
            "[internal] load build context",
            "[2/4] ADD https://u:secret@h/a/tool.bin ./x /opt/",
            "[3/4] ADD https://u:secret@h/a/tool.bin /again",
            "https://u:xxxxx@h/a/tool.bin",
            "[4/4] ADD --checksum=sha256:0000 https://u:secret@h/a/tool.bin /pinned",
        ]
    );
    let (_, http) = p.graph.iter().nth(1).unwrap();
    assert_eq!(http.info().location.as_deref(), Some("Dockerfile:2"));
    let (_, pinned) = p.graph.iter().nth(5).unwrap();
    let Op::Http(source) = pinned.op() else {
        panic!("{:?}", pinned.op())
    };
    assert_eq!(source.checksum.as_deref(), Some("sha256:0000"));
    let (_, add) = p.graph.iter().nth(3).unwrap();
    let Op::File(file) = add.op() else {
        panic!("{:?}", add.op())
    };
    let FileAction::CopyFiles(copy) = &file.actions[0] else {
        panic!("{:?}", file.actions)
    };
    let [CopySource::Url { url, input }, CopySource::Path { path }] = copy.sources.as_slice()
    else {
        panic!("{:?}", copy.sources)
    };
    assert_eq!(
        (url.as_str(), path.as_str()),
        ("https://u:secret@h/a/tool.bin", "./x")
    );
    assert_eq!(add.input(*input).map(|v| v.index()), Some(1));
}

/// The file op of vertex `v`'s single copy action, and the op's base.
fn copy_action(
    p: &BuildPlan,
    v: crate::solver::VertexId,
) -> (Option<crate::solver::Input>, CopyFiles) {
    let Op::File(f) = p.graph.get(v).unwrap().op() else {
        panic!("not a file op: {:?}", p.graph.get(v).unwrap().op())
    };
    let FileAction::CopyFiles(action) = &f.actions[0] else {
        panic!("not a copy")
    };
    (f.base, action.clone())
}

#[test]
fn copy_link_copies_onto_nothing_and_merges_onto_the_stage() {
    let p = plan("FROM busybox\nWORKDIR /srv\nCOPY --link --chown=root:7 a.txt .\nRUN true\n");
    assert_eq!(
        names(&p),
        [
            "[1/4] FROM docker.io/library/busybox:latest@sha256",
            "[2/4] WORKDIR /srv",
            "[internal] load build context",
            "[3/4] COPY --link --chown=root:7 a.txt .",
            "[3/4] LINK COPY --link --chown=root:7 a.txt .",
            "[4/4] RUN true",
        ]
    );
    let ids: Vec<_> = p.graph.iter().map(|(id, _)| id).collect();
    let (base, action) = copy_action(&p, ids[3]);
    assert_eq!(base, None, "the copy does not see the base");
    assert_eq!(action.source, Some(crate::solver::Input(0)));
    assert_eq!(
        (action.dest.as_str(), action.workdir.as_str()),
        ("/srv/", "/")
    );
    assert_eq!(action.chown.as_deref(), Some("0:7"));
    assert!(action.link);
    let merge = p.graph.get(ids[4]).unwrap();
    assert_eq!(merge.inputs(), [ids[1], ids[3]]);
    assert!(matches!(merge.op(), Op::Merge(m) if m.inputs.len() == 2));
    // The history is the instruction's, with the layer in the merge.
    assert_eq!(
        history(&p)[1],
        ("COPY --chown=root:7 a.txt . # buildkit".to_string(), false)
    );
    assert_eq!(p.layer_steps[1].vertex, ids[4]);
    assert_eq!(p.layer_steps[1].parent, Some(ids[1]));
}

#[test]
fn copy_link_keys_do_not_depend_on_the_base_or_workdir() {
    let copy_of = |src: &str| {
        let p = plan(src);
        let (id, _) = p
            .graph
            .iter()
            .find(|(_, v)| matches!(v.op(), Op::File(_)) && v.info().name.contains("COPY"))
            .unwrap();
        p.graph.get(id).unwrap().op().definition_digest().unwrap()
    };
    assert_eq!(
        copy_of("FROM busybox\nCOPY --link a.txt /app/\n"),
        copy_of("FROM trigger\nWORKDIR /x\nRUN true\nCOPY --link a.txt /app/\n"),
    );
}

#[test]
fn copy_link_with_chmod_is_a_plain_copy_and_on_scratch_needs_no_merge() {
    let p = plan("FROM busybox\nCOPY --link --chmod=600 --chown=tester a.txt /app/\n");
    let target = p.target.unwrap();
    let (base, action) = copy_action(&p, target);
    assert!(base.is_some());
    assert!(!action.link, "same op as without --link");
    assert_eq!(action.chown.as_deref(), Some("tester"));
    let p = plan("FROM scratch\nCOPY --link a.txt /\n");
    let (base, action) = copy_action(&p, p.target.unwrap());
    assert_eq!((base, action.link), (None, true));
    assert!(!p.graph.iter().any(|(_, v)| matches!(v.op(), Op::Merge(_))));
}

#[test]
fn copy_link_refuses_chown_names() {
    let err = lower_with(
        "FROM busybox\nCOPY --link --chown=tester:tester a.txt /app/\n",
        &opts(),
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        err,
        "Dockerfile:2: COPY --link --chown=tester:tester: user and group names need the base image's /etc/passwd and /etc/group, which a linked copy does not read; use numeric ids"
    );
}

/// BuildKit's `emptyImage` sets `WorkingDir: "/"` for `FROM scratch`
/// (dockerfile2llb image.go); an image without one keeps it unset, and a
/// stage built on a scratch stage inherits `/`.
#[test]
fn scratch_gets_root_workdir_and_images_keep_theirs() {
    let p = plan("FROM scratch\nENV A=1\n");
    assert_eq!(cc(&p).working_dir.as_deref(), Some("/"));
    let p = plan("FROM scratch AS a\nFROM a\nLABEL x=y\n");
    assert_eq!(cc(&p).working_dir.as_deref(), Some("/"));
    let p = plan("FROM busybox\nENV A=1\n");
    assert_eq!(cc(&p).working_dir, None);
    let p = plan("FROM trigger\n");
    assert_eq!(cc(&p).working_dir.as_deref(), Some("/base"));
}

/// `TARGETSTAGE` is `--target` as given, else the last stage's name, else
/// `default` (moby/buildkit dockerfile_test.go `testTargetStageNameArg`);
/// a stage reads it only after `ARG TARGETSTAGE`.
#[test]
fn targetstage_names_the_target_or_default() {
    let src = "FROM busybox AS base\nRUN echo $TARGETSTAGE\nARG TARGETSTAGE\n\
               RUN echo $TARGETSTAGE\nFROM scratch AS foo\nCOPY --from=base / /\n\
               FROM scratch\nCOPY --from=base / /\n";
    let seen = |o: &LowerOptions, src: &str| {
        let (p, _) = lower_with(src, o).unwrap();
        let runs = execs(&p);
        (
            env_of(&runs[0], "TARGETSTAGE"),
            env_of(&runs[1], "TARGETSTAGE"),
        )
    };
    assert_eq!(seen(&opts(), src), (None, Some("default".into())));
    let mut o = opts();
    o.target = Some("foo".into());
    assert_eq!(seen(&o, src), (None, Some("foo".into())));
    let named = format!("{src}FROM scratch AS final\nCOPY --from=base / /\n");
    assert_eq!(seen(&opts(), &named), (None, Some("final".into())));
}

/// `WORKDIR /app/` stays `/app/` in the config and history (BuildKit's
/// `NormalizeWorkdir` cleans only relative paths); a base image's
/// `WorkingDir` is written back normalized.
#[test]
fn workdir_keeps_an_absolute_path_as_written() {
    let p = plan("FROM busybox\nWORKDIR /app/\nWORKDIR src/../lib\nWORKDIR /x/../y\n");
    assert_eq!(
        history(&p),
        [
            ("WORKDIR /app/".to_string(), false),
            ("WORKDIR /app/lib".into(), false),
            ("WORKDIR /x/../y".into(), false),
        ]
    );
    assert_eq!(cc(&p).working_dir.as_deref(), Some("/x/../y"));
    let p = plan("FROM trigger\nRUN pwd\n");
    assert_eq!(execs(&p).last().unwrap().cwd, "/base");
}

/// A proxy build arg reaches the history only through an `ARG` declaring
/// it, like any build arg (dockerfile2llb `runCommandString` lists declared
/// ARGs); undeclared it is only the process's (`llb.WithProxy`).
#[test]
fn proxy_args_are_in_the_history_only_when_declared() {
    let mut o = opts();
    o.build_args
        .insert("HTTP_PROXY".into(), "http://p:1".into());
    let (p, _) = lower_with("FROM busybox\nRUN a\nARG HTTP_PROXY\nRUN b\n", &o).unwrap();
    let h = history(&p);
    assert_eq!(h[0].0, "RUN /bin/sh -c a # buildkit");
    assert_eq!(
        h[2].0,
        "RUN |1 HTTP_PROXY=http://p:1 /bin/sh -c b # buildkit"
    );
    let runs = execs(&p);
    assert_eq!(env_of(&runs[0], "HTTP_PROXY"), None);
    assert_eq!(
        env_of(&runs[1], "HTTP_PROXY").as_deref(),
        Some("http://p:1")
    );
    for run in &runs {
        assert_eq!(
            run.proxy_env,
            ["HTTP_PROXY=http://p:1", "http_proxy=http://p:1"]
        );
    }
    assert!(cc(&p)
        .env
        .unwrap()
        .iter()
        .all(|e| !e.contains("http://p:1")));
}

#[test]
fn misspelt_stage_names_get_buildkits_suggestion() {
    let src = "FROM busybox AS builder\nRUN true\nFROM busybox\nCOPY --from=buidler /x /x\n";
    let err = lower_with(src, &opts()).unwrap_err().to_string();
    assert_eq!(
        err,
        "Dockerfile:4: buidler: not found (did you mean builder?)"
    );
    let src = "FROM busybox AS builder\nFROM buidler\n";
    let err = lower_with(src, &opts()).unwrap_err().to_string();
    assert_eq!(
        err,
        "Dockerfile:2: buidler: not found (did you mean builder?)"
    );
    // Common images are suggested too; a far name gets nothing.
    let err = lower_with("FROM busybx\n", &opts())
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "Dockerfile:1: busybx: not found (did you mean busybox?)"
    );
    let err = lower_with("FROM zzzzzz\n", &opts())
        .unwrap_err()
        .to_string();
    assert_eq!(err, "Dockerfile:1: zzzzzz: not found");
    let mut o = opts();
    o.target = Some("BUIDLER".into());
    let err = lower_with("FROM busybox AS builder\n", &o)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "target stage \"BUIDLER\" could not be found (did you mean BUILDER?)"
    );
}

#[test]
fn undefined_variables_in_expanded_words_are_found_while_lowering() {
    // Only lowered stages are checked, as BuildKit dispatches only the
    // stages the target needs.
    let src = "FROM busybox AS unused\nWORKDIR $unused\nFROM busybox\nARG declared\nENV PAHT_COPY=$PAHT\nCOPY $declared $nope /dst/\nRUN echo $in_shell\nWORKDIR $PATH\n";
    let checks: Vec<String> = plan(src).checks.iter().map(lint::Warning::short).collect();
    assert_eq!(
        checks,
        [
            "UndefinedVar: Usage of undefined variable '$PAHT' (did you mean $PATH?) (line 5)",
            "UndefinedVar: Usage of undefined variable '$nope' (line 6)",
        ]
    );
}

/// Regression: 2,500 chained stages overflowed the stack (one recursion
/// level per stage); BuildKit builds 3,000. Test threads have small stacks.
#[test]
fn thousands_of_chained_stages_lower_without_overflowing_the_stack() {
    let mut src = String::from("FROM scratch AS s0\nWORKDIR /w\n");
    for i in 1..=3000 {
        src.push_str(&format!("FROM s{} AS s{i}\n", i - 1));
    }
    assert!(plan(&src).target.is_some());

    // The same through COPY --from and RUN --mount=from, each stage built
    // on scratch.
    let mut src = String::from("FROM busybox AS s0\nWORKDIR /w\n");
    for i in 1..=3000 {
        let from = if i % 2 == 0 {
            format!("COPY --from=s{} /w /w", i - 1)
        } else {
            format!("RUN --mount=from=s{},target=/m true", i - 1)
        };
        src.push_str(&format!("FROM busybox AS s{i}\n{from}\n"));
    }
    assert_eq!(execs(&plan(&src)).len(), 1500);
}

/// A `--from` whose stage is only known after expansion is lowered inside
/// the stage naming it: past the bound that is an error naming the line.
#[test]
fn variable_from_references_nested_too_deep_are_an_error() {
    let mut src = String::from("FROM busybox AS s0\n");
    for i in 1..=MAX_FROM_NESTING + 5 {
        src.push_str(&format!(
            "FROM busybox AS s{i}\nARG P=s{}\nRUN --mount=from=$P,target=/m true\n",
            i - 1
        ));
    }
    let err = lower_with(&src, &opts()).unwrap_err().to_string();
    assert!(
        err.contains(&format!("nested more than {MAX_FROM_NESTING} deep")),
        "{err}"
    );
    assert!(err.starts_with("Dockerfile:"), "{err}");
}

/// `kiln build --add-host/--shm-size/--ulimit` reach every RUN's
/// definition (BuildKit's ExecOp meta and a `/dev/shm` tmpfs mount), so a
/// changed value is a new key; COPY steps are untouched.
#[test]
fn step_flags_are_part_of_every_runs_definition() {
    let src = "FROM busybox\nRUN true\nCOPY a /a\nRUN --security=insecure false\n";
    let mut o = opts();
    o.step_flags = StepFlags {
        extra_hosts: vec![crate::solver::ExtraHost {
            host: "db".into(),
            ip: "192.0.2.7".into(),
        }],
        shm_size: Some(1 << 20),
        ulimits: vec!["nofile=1024:2048".into()],
        no_cache_filter: None,
    };
    let (with, _) = lower_with(src, &o).unwrap();
    let (without, _) = lower_with(src, &opts()).unwrap();
    let runs = execs(&with);
    assert_eq!(runs.len(), 2);
    for run in &runs {
        assert_eq!(run.extra_hosts[0].host, "db");
        assert_eq!(run.ulimits, ["nofile=1024:2048"]);
        let shm = run.mounts.last().unwrap();
        assert_eq!(shm.dest, "/dev/shm");
        assert_eq!(
            shm.kind,
            MountKind::Tmpfs {
                size: Some(1 << 20)
            }
        );
    }
    assert_eq!(runs[0].security, crate::solver::Security::Sandbox);
    assert_eq!(runs[1].security, crate::solver::Security::Insecure);
    let digests = |p: &BuildPlan| -> Vec<_> {
        p.graph
            .iter()
            .map(|(_, v)| v.definition_digest().clone())
            .collect()
    };
    let (a, b) = (digests(&with), digests(&without));
    assert_eq!(a.len(), b.len());
    let differ: Vec<bool> = a.iter().zip(&b).map(|(x, y)| x != y).collect();
    // image, RUN, context, COPY, RUN: the COPY differs only through its
    // base (an input), never its own definition.
    let kinds: Vec<bool> = with
        .graph
        .iter()
        .map(|(_, v)| matches!(v.op(), Op::Exec(_)))
        .collect();
    assert_eq!(differ, kinds, "{a:?} {b:?}");
}

/// `--no-cache-filter` marks the RUN and COPY steps of the named stages
/// only (BuildKit: `llb.IgnoreCache` in `dispatchRun`/`dispatchCopy`), and
/// leaves every definition as it was.
#[test]
fn no_cache_filter_marks_only_the_named_stages_steps() {
    let src = "FROM busybox AS deps\nRUN echo d\nFROM busybox AS Build\nWORKDIR /w\n\
               COPY --from=deps /etc/hostname /h\nRUN echo b\n";
    let mut o = opts();
    o.step_flags.no_cache_filter = Some(vec!["build".into()]);
    let (p, _) = lower_with(src, &o).unwrap();
    let ignored: Vec<(String, bool)> = p
        .graph
        .iter()
        .map(|(_, v)| (v.info().name.clone(), v.info().ignore_cache))
        .collect();
    let marked: Vec<&str> = ignored
        .iter()
        .filter(|(_, i)| *i)
        .map(|(n, _)| n.as_str())
        .collect();
    assert_eq!(marked.len(), 2, "{ignored:?}");
    assert!(marked[0].contains("COPY --from=deps"), "{marked:?}");
    assert!(marked[1].contains("RUN echo b"), "{marked:?}");
    let (plain, _) = lower_with(src, &opts()).unwrap();
    let defs = |p: &BuildPlan| -> Vec<_> {
        p.graph
            .iter()
            .map(|(_, v)| v.definition_digest().clone())
            .collect()
    };
    assert_eq!(defs(&p), defs(&plain));
}

#[test]
fn stages_are_for_their_from_platform_and_other_platforms_run_emulated() {
    let mut o = opts();
    o.platform = Platform::parse("linux/arm/v7").unwrap();
    let src = "FROM --platform=$BUILDPLATFORM busybox AS build\n\
               ARG TARGETPLATFORM TARGETOS TARGETARCH TARGETVARIANT BUILDPLATFORM BUILDARCH BUILDVARIANT\n\
               RUN echo build\n\
               FROM busybox\nCOPY --from=build /x /x\nRUN echo target\n";
    let (p, _) = lower_with(src, &o).unwrap();
    let runs = execs(&p);
    let build = &runs[0];
    assert_eq!(build.platform, None, "the build platform's RUN is native");
    for (k, v) in [
        ("TARGETPLATFORM", "linux/arm/v7"),
        ("TARGETOS", "linux"),
        ("TARGETARCH", "arm"),
        ("TARGETVARIANT", "v7"),
        ("BUILDPLATFORM", "linux/amd64"),
        ("BUILDARCH", "amd64"),
        ("BUILDVARIANT", ""),
    ] {
        assert_eq!(env_of(build, k).as_deref(), Some(v), "{k}");
    }
    assert_eq!(runs[1].platform, Some(o.platform.clone()));
    let image_platforms: Vec<String> = p
        .graph
        .iter()
        .filter_map(|(_, v)| match v.op() {
            Op::Image(i) => Some(i.platform.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(image_platforms, ["linux/amd64", "linux/arm/v7"]);
    assert_eq!(p.config.architecture, "arm");
    assert_eq!(p.config.variant.as_deref(), Some("v7"));
}

#[test]
fn an_implicit_target_keeps_the_final_stages_platform_in_the_config() {
    let mut o = opts();
    o.platform_implicit = true;
    let (p, _) = lower_with(
        "FROM --platform=linux/arm64 scratch\nCOPY <<EOF /x\nhi\nEOF\n",
        &o,
    )
    .unwrap();
    assert_eq!(p.config.architecture, "arm64");
    // Asked for explicitly, the target platform is what the config says.
    o.platform_implicit = false;
    let (p, _) = lower_with(
        "FROM --platform=linux/arm64 scratch\nCOPY <<EOF /x\nhi\nEOF\n",
        &o,
    )
    .unwrap();
    assert_eq!(p.config.architecture, "amd64");
}
