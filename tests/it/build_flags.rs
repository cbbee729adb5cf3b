//! `kiln build`'s flags for CI (issue 14, item 4), checked against
//! BuildKit/buildx: `--add-host`, `--shm-size`, `--ulimit` on every RUN
//! and in its cache key (dockerfile2llb `dispatchRun`), `--no-cache-filter`
//! (`llb.IgnoreCache` on the named stages' steps), `--allow
//! security.insecure` (`solver/llbsolver/vertex.go`), `--progress rawjson`
//! (`progressui.RawJSONMode`).

use crate::build_network::{ip, Netns};
use crate::support;

use std::process::Command;
use support::kiln::{ran, step_states, Kiln};

/// The lines a step printed, from a plain progress log (`#N 0.123 line`).
fn step_output(log: &str) -> Vec<String> {
    log.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix('#')?;
            let (_, rest) = rest.split_once(' ')?;
            let (time, line) = rest.split_once(' ')?;
            time.parse::<f64>().ok().map(|_| line.to_string())
        })
        .collect()
}

/// `--add-host` lines follow BuildKit's own in `/etc/hosts`, `--shm-size`
/// sizes `/dev/shm`, `--ulimit` sets the rlimits, and each is part of the
/// step's key: the same flags hit the cache, a changed value reruns it.
#[test]
fn add_host_shm_size_and_ulimit_reach_every_run_and_its_key() {
    let k = Kiln::with_busybox_image();
    let ctx = k.context(&[(
        "Dockerfile",
        "FROM busybox\n\
         RUN cat /etc/hosts && df -k /dev/shm | tail -n 1 \
         && echo \"nofile=$(ulimit -n):$(ulimit -Hn)\"\n",
    )]);
    let flags = |host: &'static str, shm: &'static str, nofile: &'static str| {
        vec![
            "--add-host",
            host,
            "--add-host",
            "v6=[2001:DB8::1]",
            "--shm-size",
            shm,
            "--ulimit",
            nofile,
        ]
    };
    let first = k.build(&ctx, &flags("db:192.0.2.7", "128m", "nofile=1024:2048"));
    first.ok();
    let out = step_output(&first.stderr);
    let at = |want: &str| {
        out.iter()
            .position(|l| l == want)
            .unwrap_or_else(|| panic!("no line {want:?} in {out:#?}"))
    };
    let own = at("127.0.0.1\tlocalhost buildkitsandbox");
    assert!(own < at("192.0.2.7\tdb") && at("192.0.2.7\tdb") < at("2001:db8::1\tv6"));
    assert!(
        out.iter()
            .any(|l| l.starts_with("tmpfs") && l.contains(" 131072 ") && l.ends_with("/dev/shm")),
        "{out:#?}"
    );
    at("nofile=1024:2048");

    let same = flags("db:192.0.2.7", "128m", "nofile=1024:2048");
    let (cached, _) = step_states(&k.build(&ctx, &same).stderr);
    assert!(cached.iter().any(|s| s.contains("RUN cat")), "{cached:?}");
    for changed in [
        flags("db:192.0.2.8", "128m", "nofile=1024:2048"),
        flags("db:192.0.2.7", "64m", "nofile=1024:2048"),
        flags("db:192.0.2.7", "128m", "nofile=1024:4096"),
    ] {
        let again = k.build(&ctx, &changed);
        let (_, done) = step_states(&again.stderr);
        assert!(
            done.iter().any(|s| s.contains("RUN cat")),
            "{changed:?}: {done:?}"
        );
    }
}

/// `host-gateway` is the host's address as a RUN's network reaches it:
/// kiln runs in a namespace whose default route leaves from 10.213.9.1
/// (an address on its `lo`, always up, unlike a veth waiting for its
/// peer), and the step reaches a server there by the name.
#[test]
fn add_host_gateway_reaches_the_host_from_a_run() {
    let k = Kiln::with_busybox_image();
    let net = Netns::new();
    for args in [
        ["-n", &net.a, "addr", "add", "10.213.9.1/32", "dev", "lo"].as_slice(),
        &[
            "-n",
            &net.a,
            "route",
            "add",
            "default",
            "dev",
            "lo",
            "src",
            "10.213.9.1",
        ],
    ] {
        ip(args).unwrap();
    }
    let _server = Netns::serve(&net.a, "10.213.9.1:8082", "hello-from-the-host");
    let ctx = k.context(&[(
        "Dockerfile",
        "FROM busybox\nRUN grep gw /etc/hosts && wget -q -O- http://gw:8082/ && echo\n",
    )]);
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &net.a])
        .arg(support::kiln::KILN)
        .arg("--root")
        .arg(k.root())
        .args([
            "build",
            "--progress",
            "plain",
            "--add-host",
            "gw:host-gateway",
        ])
        .arg(&ctx);
    let out = ran(cmd.output().unwrap());
    out.ok();
    let lines = step_output(&out.stderr);
    assert!(lines.contains(&"10.213.9.1\tgw".to_string()), "{lines:#?}");
    assert!(
        lines.contains(&"hello-from-the-host".to_string()),
        "{lines:#?}"
    );
}

/// A bad value is a usage error (exit 125) naming the flag and the value,
/// before anything is built.
#[test]
fn bad_step_flag_values_are_usage_errors_naming_the_flag() {
    let k = Kiln::with_busybox_image();
    let ctx = k.context(&[("Dockerfile", "FROM busybox\nRUN true\n")]);
    for (flags, expected) in [
        (
            &["--add-host", "db"][..],
            "invalid --add-host \"db\": expected NAME:IP",
        ),
        (
            &["--add-host", "db:300.1.1.1"],
            "\"300.1.1.1\" is not an IP address",
        ),
        (&["--shm-size", "big"], "invalid --shm-size \"big\""),
        (
            &["--ulimit", "nofiles=1"],
            "invalid --ulimit: invalid ulimit type: nofiles",
        ),
        (
            &["--ulimit", "nofile=2:1"],
            "soft limit must be less than or equal to hard limit",
        ),
    ] {
        let err = k.build(&ctx, flags).fails_with(125).to_string();
        assert!(err.contains(expected), "{flags:?}: {err}");
    }
}

/// `--no-cache-filter STAGE` reruns that stage's RUN and COPY steps and
/// takes the others from the cache (BuildKit's `llb.IgnoreCache` on the
/// stage's ops): the filtered stage's file changes, the other's not.
#[test]
fn no_cache_filter_reruns_only_the_named_stages() {
    let k = Kiln::with_busybox_image();
    let ctx = k.context(&[(
        "Dockerfile",
        "FROM busybox AS deps\nRUN cat /proc/sys/kernel/random/uuid > /deps\n\
         FROM busybox AS build\nCOPY --from=deps /deps /deps\n\
         RUN cat /proc/sys/kernel/random/uuid > /build\n",
    )]);
    let out = |n: &str| k.path(&format!("out-{n}"));
    let build = |n: &str, extra: &[&str]| {
        let dest = format!("type=local,dest={}", out(n).display());
        let mut flags = vec!["-o", dest.as_str()];
        flags.extend_from_slice(extra);
        let ran = k.build(&ctx, &flags);
        ran.ok();
        step_states(&ran.stderr)
    };
    let read = |n: &str, f: &str| std::fs::read_to_string(out(n).join(f)).unwrap();
    build("1", &[]);
    let (cached, done) = build("2", &["--no-cache-filter", "BUILD"]);
    assert!(
        cached.iter().any(|s| s.contains("[deps 2/2] RUN")),
        "{cached:?}"
    );
    assert!(
        done.iter().any(|s| s.contains("[build 2/3] COPY")),
        "{done:?}"
    );
    assert!(
        done.iter().any(|s| s.contains("[build 3/3] RUN")),
        "{done:?}"
    );
    assert_eq!(read("1", "deps"), read("2", "deps"));
    assert_ne!(read("1", "build"), read("2", "build"));
    // An empty filter is every stage (dockerui's `IsNoCache`).
    let (cached, _) = build("3", &["--no-cache-filter", ""]);
    assert!(!cached.iter().any(|s| s.contains("RUN")), "{cached:?}");
    assert_ne!(read("1", "deps"), read("3", "deps"));
}

/// `RUN --security=insecure` needs `--allow security.insecure`, checked
/// before anything runs; granted, the step runs as `kiln run
/// --privileged` does (every capability, no seccomp, `/sys` writable),
/// and a sandboxed step beside it keeps its confinement.
#[test]
fn security_insecure_needs_the_entitlement_and_runs_privileged() {
    let k = Kiln::with_busybox_image();
    let probe = "grep -E '^(CapEff|Seccomp):' /proc/self/status; mount | grep ' /sys '";
    let ctx = k.context(&[(
        "Dockerfile",
        &format!(
            "FROM busybox\nRUN touch /ran-sandboxed && {{ {probe}; }} > /sandboxed\n\
             RUN --security=insecure {{ {probe}; }} > /insecure\n"
        ),
    )]);
    let err = k.build(&ctx, &[]).fails().to_string();
    assert!(
        err.contains("entitlement security.insecure is not allowed"),
        "{err}"
    );
    assert!(
        !err.contains("ran-sandboxed") && !err.contains("DONE"),
        "{err}"
    );
    let dest = k.path("insecure-out");
    let output = format!("type=local,dest={}", dest.display());
    k.build(&ctx, &["--allow", "security.insecure", "-o", &output])
        .ok();
    let insecure = std::fs::read_to_string(dest.join("insecure")).unwrap();
    let privileged = k
        .kiln(&["run", "--rm", "--privileged", "busybox", "sh", "-c", probe])
        .ok()
        .to_string();
    assert_eq!(insecure, privileged);
    assert!(insecure.contains("Seccomp:\t0"), "{insecure}");
    assert!(
        insecure.contains("sysfs on /sys type sysfs (rw"),
        "{insecure}"
    );
    let sandboxed = std::fs::read_to_string(dest.join("sandboxed")).unwrap();
    assert!(sandboxed.contains("Seccomp:\t2"), "{sandboxed}");
    assert!(
        sandboxed.contains("sysfs on /sys type sysfs (ro"),
        "{sandboxed}"
    );
    let err = k
        .build(&ctx, &["--allow", "security.unsafe"])
        .fails()
        .to_string();
    assert!(err.contains("unknown entitlement"), "{err}");

    // Where no cgroup can be made (`ip netns exec` remounts /sys without
    // them), opening every device asks for nothing: the step still runs.
    let net = Netns::new();
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &net.a])
        .arg(support::kiln::KILN)
        .arg("--root")
        .arg(k.root())
        .args([
            "build",
            "--progress",
            "plain",
            "--network",
            "none",
            "--no-cache",
        ])
        .args(["--allow", "security.insecure"])
        .arg(&ctx);
    let out = ran(cmd.output().unwrap());
    out.ok();
    assert!(
        out.stderr.contains("no cgroups on this host"),
        "{}",
        out.stderr
    );
}

/// `--progress rawjson`: every stderr line is one BuildKit `SolveStatus`;
/// vertexes carry digest, name, started/completed and cached, logs their
/// bytes in base64 under the vertex's digest.
#[test]
fn progress_rawjson_prints_solve_status_lines() {
    use base64::Engine as _;
    let k = Kiln::with_busybox_image();
    let ctx = k.context(&[("Dockerfile", "FROM busybox\nRUN echo hello-json\n")]);
    let json = |ran: &support::kiln::Ran| -> Vec<serde_json::Value> {
        ran.ok();
        ran.stderr
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
            .collect()
    };
    let statuses = json(&k.kiln(&[
        "build",
        "--progress",
        "rawjson",
        "-t",
        "j",
        ctx.to_str().unwrap(),
    ]));
    let vertexes: Vec<&serde_json::Value> = statuses
        .iter()
        .filter_map(|s| s["vertexes"].as_array())
        .flatten()
        .collect();
    let run = vertexes
        .iter()
        .find(|v| v["name"] == "[2/2] RUN echo hello-json" && v.get("completed").is_some())
        .unwrap_or_else(|| panic!("{vertexes:#?}"));
    let digest = run["digest"].as_str().unwrap();
    assert!(digest.starts_with("sha256:"), "{run}");
    assert!(run["started"].as_str().unwrap() <= run["completed"].as_str().unwrap());
    assert!(
        run.get("error").is_none() && run.get("cached").is_none(),
        "{run}"
    );
    let logged: Vec<String> = statuses
        .iter()
        .filter_map(|s| s["logs"].as_array())
        .flatten()
        .filter(|l| l["vertex"] == digest)
        .map(|l| {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(l["data"].as_str().unwrap())
                .unwrap();
            String::from_utf8(bytes).unwrap()
        })
        .collect();
    assert_eq!(logged, ["hello-json\n"]);

    let again = json(&k.kiln(&["build", "--progress", "rawjson", ctx.to_str().unwrap()]));
    let cached = again
        .iter()
        .filter_map(|s| s["vertexes"].as_array())
        .flatten()
        .find(|v| v["digest"] == digest)
        .unwrap();
    assert_eq!(cached["cached"], true, "{cached}");
}
