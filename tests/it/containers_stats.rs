//! `kiln stats` streaming, `--format`, `--no-trunc` and `-a` (docker/cli
//! `cli/command/container/stats.go` `RunStats`, `formatter_stats.go`).

use crate::support;
use std::io::Read;
use std::process::Stdio;
use support::kiln::{ContainerStore, Kiln};

#[test]
fn stats_streams_a_redrawn_table_per_interval_until_interrupted() {
    let k = ContainerStore {
        k: Kiln::with_busybox_image(),
    };
    k.ok(&["run", "-d", "--name", "busy", "busybox", "sleep", "600"]);
    let mut child = k
        .cmd(&["stats", "--format", "{{.Name}} {{.PIDs}}", "busy"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    // Two frames prove it streams; it never ends by itself.
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while out.windows(3).filter(|w| w == b"\x1b[J").count() < 2 {
        let n = stdout.read(&mut buf).unwrap();
        assert!(n > 0, "stats ended: {}", String::from_utf8_lossy(&out));
        out.extend_from_slice(&buf[..n]);
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let out = String::from_utf8(out).unwrap();
    let frame = "\x1b[Hbusy 1 \x1b[K\n \x1b[K\n\x1b[J";
    assert!(out.starts_with(&format!("{frame}{frame}")), "{out:?}");

    // -a adds containers that do not run (docker's zeros); --no-trunc
    // shows full IDs; a bad template is a usage error.
    k.ok(&["create", "--name", "idle", "busybox", "true"]);
    let names = |args: &[&str]| {
        let mut v: Vec<String> = k.ok(args).lines().map(str::to_string).collect();
        v.sort();
        v
    };
    let f = "{{.Name}} {{.CPUPerc}} {{.MemUsage}}";
    let running = names(&["stats", "--no-stream", "--format", f]);
    assert_eq!(running.len(), 1, "{running:?}");
    assert!(running[0].starts_with("busy "), "{running:?}");
    let all = names(&["stats", "--no-stream", "-a", "--format", f]);
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(all[1], "idle 0.00% 0B / 0B", "{all:?}");
    let id = k.ok(&["inspect", "--format", "{{.Id}}", "busy"]);
    let ids = k.ok(&[
        "stats",
        "--no-stream",
        "--no-trunc",
        "--format",
        "{{.ID}}",
        "busy",
    ]);
    assert_eq!(ids, id);
    let json = k.ok(&["stats", "--no-stream", "--format", "json", "busy"]);
    let v: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(
        (v["Name"].as_str(), v["PIDs"].as_str()),
        (Some("busy"), Some("1"))
    );
    let r = k.kiln(&["stats", "--no-stream", "--format", "{{.Name", "busy"]);
    assert!(r.fails_with(125).contains("template"), "{}", r.stderr);
}
