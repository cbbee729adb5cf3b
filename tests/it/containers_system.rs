//! The remaining container commands of issue 13 with docker's output and
//! exit codes: `port` (docker/cli `cli/command/container/port.go`).

use crate::run_network::free_port;
use crate::support;
use std::path::Path;
use support::kiln::{ContainerStore, Kiln};

fn store() -> ContainerStore {
    ContainerStore {
        k: Kiln::with_busybox_image(),
    }
}

#[test]
fn port_lists_each_published_port_and_looks_one_up() {
    let k = store();
    let (web, dns) = (free_port(), free_port());
    let tcp = format!("127.0.0.1:{web}:80");
    let udp = format!("127.0.0.1:{dns}:53/udp");
    k.ok(&[
        "create", "--name", "web", "-p", &tcp, "-p", &udp, "busybox", "true",
    ]);

    let all = k.ok(&["port", "web"]);
    assert_eq!(
        all,
        format!("53/udp -> 127.0.0.1:{dns}\n80/tcp -> 127.0.0.1:{web}\n")
    );
    assert_eq!(k.ok(&["port", "web", "80"]), format!("127.0.0.1:{web}\n"));
    assert_eq!(
        k.ok(&["container", "port", "web", "53/udp"]),
        format!("127.0.0.1:{dns}\n")
    );
}

#[test]
fn port_of_an_unpublished_port_or_unknown_container_fails_with_dockers_message() {
    let k = store();
    k.ok(&["create", "--name", "quiet", "busybox", "true"]);
    assert_eq!(k.ok(&["port", "quiet"]), "");

    let r = k.kiln(&["port", "quiet", "80/udp"]);
    let err = r.fails_with(1);
    assert!(
        err.contains("No public port '80/udp' published for quiet"),
        "{err}"
    );
    let r = k.kiln(&["port", "nosuch"]);
    let err = r.fails_with(1);
    assert!(err.contains("No such container: nosuch"), "{err}");
}

/// Each log line with its time, from `logs -t`.
fn timed_lines(k: &Kiln, container: &str) -> Vec<(String, String)> {
    k.ok(&["logs", "-t", container])
        .lines()
        .map(|l| {
            let (time, text) = l.split_once(' ').unwrap();
            (time.to_string(), text.to_string())
        })
        .collect()
}

#[test]
fn logs_since_and_until_keep_the_lines_inside_both_bounds_inclusive() {
    let k = store();
    k.ok(&[
        "run",
        "-d",
        "--name",
        "talk",
        "busybox",
        "sh",
        "-c",
        "echo early; sleep 1; echo late",
    ]);
    assert_eq!(k.ok(&["wait", "talk"]).trim(), "0");
    let lines = timed_lines(&k, "talk");
    let texts: Vec<&str> = lines.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(texts, ["early", "late"]);
    let (early, late) = (&lines[0].0, &lines[1].0);

    assert_eq!(k.ok(&["logs", "--since", late, "talk"]), "late\n");
    assert_eq!(k.ok(&["logs", "--until", early, "talk"]), "early\n");
    assert_eq!(
        k.ok(&["logs", "--since", early, "--until", late, "talk"]),
        "early\nlate\n"
    );
    // Relative: everything was written in the last hour, nothing in the
    // hour to come.
    assert_eq!(k.ok(&["logs", "--since", "1h", "talk"]), "early\nlate\n");
    assert_eq!(k.ok(&["logs", "--since", "-1h", "talk"]), "");
    assert_eq!(k.ok(&["logs", "--until", "1h", "talk"]), "");
}

#[test]
fn logs_since_nonsense_names_the_flag_and_the_forms_expected() {
    let k = store();
    k.ok(&["create", "--name", "mute", "busybox", "true"]);
    let r = k.kiln(&["logs", "--since", "yesterday", "mute"]);
    let err = r.fails_with(1);
    assert!(
        err.contains("invalid value for \"since\"") && err.contains("RFC 3339"),
        "{err}"
    );
    let r = k.kiln(&["logs", "--until", "nosuch", "nosuch"]);
    assert!(r.fails_with(1).contains("invalid value for \"until\""));
    let r = k.kiln(&["logs", "--since", "10m", "nosuch"]);
    assert!(r.fails_with(1).contains("No such container: nosuch"));
}

/// `system df` as rows of cells by TYPE (the first column has a space).
fn df(k: &Kiln) -> Vec<(String, Vec<String>)> {
    let out = k.ok(&["system", "df"]);
    let mut lines = out.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]);
    lines
        .map(|l| {
            let (kind, rest) = l.split_at(l.find(char::is_numeric).unwrap());
            let cells = rest.split_whitespace().map(String::from).collect();
            (kind.trim().to_string(), cells)
        })
        .collect()
}

#[test]
fn system_df_counts_images_containers_volumes_and_what_is_reclaimable() {
    let k = store();
    k.ok(&["volume", "create", "spare"]);
    let before = df(&k);
    let kinds: Vec<&str> = before.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        kinds,
        ["Images", "Containers", "Local Volumes", "Build Cache"]
    );
    // busybox, unused: all of it reclaimable.
    let images = &before[0].1;
    assert_eq!(&images[..2], ["1", "0"]);
    assert_ne!(images[2], "0B");
    assert_eq!(images[3], images[2]);
    assert_eq!(images[4], "(100%)");
    assert_eq!(before[1].1, ["0", "0", "0B", "0B"]);
    assert_eq!(before[2].1, ["1", "0", "0B", "0B", "(0%)"][..4]);

    // A container made from busybox makes the image active, and what it
    // wrote is its size (reclaimable: it is not running).
    k.ok(&[
        "run",
        "-d",
        "--name",
        "writer",
        "-v",
        "spare:/data",
        "busybox",
        "sh",
        "-c",
        "head -c 5000 /dev/zero > /big; head -c 2000 /dev/zero > /data/f",
    ]);
    assert_eq!(k.ok(&["wait", "writer"]).trim(), "0");
    let after = df(&k);
    assert_eq!(&after[0].1[..2], ["1", "1"]);
    assert_eq!(after[0].1[3..], ["0B", "(0%)"]);
    assert_eq!(after[1].1, ["1", "0", "5kB", "5kB", "(100%)"]);
    assert_eq!(after[2].1, ["1", "1", "2kB", "0B", "(0%)"]);
}

#[test]
fn system_prune_all_with_volumes_removes_every_unused_thing_and_says_what() {
    let k = store();
    k.ok(&["network", "create", "spare-net"]);
    k.ok(&[
        "run",
        "-d",
        "--name",
        "done",
        "-v",
        "/anon",
        "busybox",
        "sh",
        "-c",
        "head -c 3000 /dev/zero > /f",
    ]);
    assert_eq!(k.ok(&["wait", "done"]).trim(), "0");
    let id = k
        .ok(&["inspect", "--format", "{{.Id}}", "done"])
        .trim()
        .to_string();
    let anon = k.ok(&["volume", "ls", "-q"]).trim().to_string();
    assert_eq!(anon.lines().count(), 1, "{anon}");

    // Declining the prompt removes nothing.
    let r = k.kiln_with_stdin(&["system", "prune", "-a", "--volumes"], b"n\n");
    assert!(
        r.ok().contains("WARNING! This will remove:"),
        "{}",
        r.stdout
    );
    assert_eq!(k.ok(&["ps", "-aq"]).lines().count(), 1);

    let out = k.ok(&["system", "prune", "-a", "--volumes", "-f"]);
    assert!(
        out.contains(&format!("Deleted Containers:\n{id}\n")),
        "{out}"
    );
    assert!(out.contains("Deleted Networks:\nspare-net\n"), "{out}");
    assert!(
        out.contains(&format!("Deleted Volumes:\n{anon}\n")),
        "{out}"
    );
    assert!(
        out.contains("Deleted Images:\nuntagged: busybox:latest"),
        "{out}"
    );
    let total = out.lines().last().unwrap();
    assert!(total.starts_with("Total reclaimed space: "), "{out}");
    assert_ne!(total, "Total reclaimed space: 0B", "{out}");

    assert_eq!(k.ok(&["ps", "-aq"]), "");
    assert_eq!(k.ok(&["volume", "ls", "-q"]), "");
    assert!(k.images_listed().is_empty());
    // Nothing left: a second prune deletes nothing.
    assert_eq!(
        k.ok(&["system", "prune", "-f"]),
        "Total reclaimed space: 0B\n"
    );
}

#[test]
fn system_prune_keeps_running_containers_and_images_they_use_and_refuses_bad_flags() {
    let k = store();
    k.ok(&["run", "-d", "--name", "busy", "busybox", "sleep", "600"]);
    let out = k.ok(&["system", "prune", "-a", "-f"]);
    assert!(!out.contains("Deleted Containers"), "{out}");
    assert!(!out.contains("Deleted Images"), "{out}");
    assert_eq!(k.ok(&["ps", "-q"]).lines().count(), 1);
    k.kiln(&["system", "prune", "--bogus"]).fails_with(125);
}

#[test]
fn stats_no_stream_reads_the_running_containers_cgroup() {
    let k = store();
    k.ok(&[
        "run",
        "-d",
        "--name",
        "busy",
        "--network",
        "host",
        "busybox",
        "sleep",
        "600",
    ]);
    let id = k
        .ok(&["inspect", "--format", "{{.Id}}", "busy"])
        .trim()
        .to_string();
    let out = k.ok(&["stats", "--no-stream"]);
    let mut lines = out.lines();
    let header = lines.next().unwrap();
    assert!(
        header.starts_with("CONTAINER ID")
            && header.contains("MEM USAGE / LIMIT")
            && header.ends_with("PIDS"),
        "{out}"
    );
    let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(row[0], &id[..12], "{out}");
    assert_eq!(row[1], "busy", "{out}");
    assert!(row[2].ends_with('%'), "{out}");
    // MEM USAGE / LIMIT in docker's binary units (no limit: the host's
    // memory, from /proc/meminfo).
    assert_eq!(row[4], "/", "{out}");
    assert!(row[3].ends_with("iB") && row[5].ends_with("GiB"), "{out}");
    // NET I/O: the container shares the host's network namespace, which
    // docker shows as nothing.
    assert_eq!(&row[7..10], ["0B", "/", "0B"], "{out}");
    assert_eq!(row.last(), Some(&"1"), "one process: {out}");
    assert_eq!(lines.next(), None, "{out}");

    let r = k.kiln(&["stats", "--no-stream", "busy", "nosuch"]);
    assert!(r.fails_with(1).contains("No such container: nosuch"));
    assert!(r.stdout.contains("busy"), "{}", r.stdout);
}

#[test]
fn attach_follows_new_output_and_exits_with_the_containers_status() {
    let k = store();
    k.ok(&[
        "run",
        "-d",
        "--name",
        "waiter",
        "busybox",
        "sh",
        "-c",
        "echo before; while [ ! -e /tmp/go ]; do sleep 0.1; done; echo after; exit 3",
    ]);
    let attach = k
        .cmd(&["attach", "waiter"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // attach holds the log open once it has taken its end: then let the
    // container go on.
    let log = k
        .ok(&["inspect", "--format", "{{.LogPath}}", "waiter"])
        .trim()
        .to_string();
    let holds_log = || {
        std::fs::read_dir(format!("/proc/{}/fd", attach.id()))
            .map(|fds| {
                fds.flatten()
                    .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|t| t == Path::new(&log)))
            })
            .unwrap_or(false)
    };
    crate::run_network::wait_for("attach to open the log", holds_log);
    k.ok(&["exec", "waiter", "touch", "/tmp/go"]);
    let out = attach.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "after\n");
    assert_eq!(out.status.code(), Some(3));
}

#[test]
fn attach_to_a_stopped_or_unknown_container_fails_like_docker() {
    let k = store();
    k.ok(&["create", "--name", "idle", "busybox", "true"]);
    let r = k.kiln(&["attach", "idle"]);
    assert!(r
        .fails_with(1)
        .contains("You cannot attach to a stopped container, start it first"));
    let r = k.kiln(&["attach", "nosuch"]);
    assert!(r.fails_with(1).contains("No such container: nosuch"));
}

/// Regression: a detached container's `--memory` (kept out of the runtime
/// spec's serialization) was lost on the way to its monitor, so `-d -m`
/// ran unlimited.
#[test]
fn a_detached_containers_memory_limit_is_applied() {
    let k = store();
    k.ok(&[
        "run", "-d", "--name", "capped", "-m", "64m", "busybox", "sleep", "600",
    ]);
    let out = k.ok(&["stats", "--no-stream", "capped"]);
    let row: Vec<&str> = out.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(row[5], "64MiB", "the limit in MEM USAGE / LIMIT: {out}");
    // Kept across a restart too.
    k.ok(&["restart", "-t", "0", "capped"]);
    let out = k.ok(&["stats", "--no-stream", "capped"]);
    let row: Vec<&str> = out.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(row[5], "64MiB", "after restart: {out}");
}
