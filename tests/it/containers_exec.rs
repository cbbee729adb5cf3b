//! `exec`, `top`, `diff` and `commit` on detached containers (issue 13):
//! each test starts its own busybox `sleep 1000` and force-removes every
//! container it made at the end.

use crate::support;

use support::kiln::Kiln;

/// A store with busybox whose containers go when it is dropped.
use support::kiln::ContainerStore as Store;

/// A store with one running busybox `sleep 1000` named `box1`.
fn sleeping() -> Store {
    let s = Store {
        k: Kiln::with_busybox_image(),
    };
    s.ok(&[
        "run",
        "-d",
        "--name",
        "box1",
        "--hostname",
        "box",
        "busybox",
        "sleep",
        "1000",
    ]);
    s
}

#[test]
fn exec_prints_output_and_propagates_exit_code() {
    let k = sleeping();
    assert_eq!(k.ok(&["exec", "box1", "echo", "hi"]), "hi\n");
    k.kiln(&["exec", "box1", "sh", "-c", "exit 3"])
        .fails_with(3);
    // docker: a command that does not exist is 127.
    k.kiln(&["exec", "box1", "no-such-command"]).fails_with(127);
}

#[test]
fn exec_i_passes_stdin_and_leaves_the_commands_flags_alone() {
    let k = sleeping();
    let ran = k.kiln_with_stdin(&["exec", "-i", "box1", "cat"], b"piped in\n");
    assert_eq!(ran.ok(), "piped in\n");
    // Without -i the command reads /dev/null.
    let ran = k.kiln_with_stdin(&["exec", "box1", "cat"], b"ignored\n");
    assert_eq!(ran.ok(), "");
    // Flags after the command are the command's.
    assert_eq!(k.ok(&["exec", "box1", "ls", "-d", "/etc"]), "/etc\n");
}

#[test]
fn exec_takes_env_workdir_and_user() {
    let k = sleeping();
    assert_eq!(
        k.ok(&["exec", "-e", "X=from-exec", "box1", "sh", "-c", "echo $X"]),
        "from-exec\n"
    );
    assert_eq!(k.ok(&["exec", "-w", "/etc", "box1", "pwd"]), "/etc\n");
    assert_eq!(k.ok(&["exec", "box1", "pwd"]), "/\n");
    assert_eq!(
        k.ok(&["exec", "-u", "nobody", "box1", "id", "-u"]),
        "65534\n"
    );
    assert_eq!(k.ok(&["exec", "box1", "id", "-u"]), "0\n");
}

#[test]
fn exec_sees_the_containers_processes_and_hostname() {
    let k = sleeping();
    assert_eq!(k.ok(&["exec", "box1", "hostname"]), "box\n");
    // PID 1 of the exec'd process's pid namespace is the container's sleep.
    assert_eq!(
        k.ok(&["exec", "box1", "cat", "/proc/1/cmdline"]),
        "sleep\u{0}1000\u{0}"
    );
    let ps = k.ok(&["exec", "box1", "ps", "-o", "pid,comm"]);
    let host_pid = std::process::id().to_string();
    assert!(
        !ps.lines()
            .any(|l| l.split_whitespace().next() == Some(&host_pid)),
        "a host process shows in the container: {ps}"
    );
    // The same confinement as the container: docker's capability set
    // (no CAP_SYS_ADMIN, bit 21) and the seccomp filter (mode 2).
    let status = k.ok(&["exec", "box1", "cat", "/proc/self/status"]);
    let container = k.ok(&["exec", "box1", "cat", "/proc/1/status"]);
    let line = |text: &str, key: &str| {
        text.lines()
            .find(|l| l.starts_with(key))
            .map(|l| l.to_string())
            .unwrap_or_default()
    };
    assert_eq!(line(&status, "CapEff:"), line(&container, "CapEff:"));
    assert_eq!(line(&status, "CapBnd:"), line(&container, "CapBnd:"));
    assert_eq!(line(&status, "Seccomp:"), "Seccomp:\t2");
}

#[test]
fn exec_does_not_hand_over_the_callers_descriptors() {
    let k = sleeping();
    // kiln's stdout is a file here: the process must get a pipe that kiln
    // copies from, or it could reopen (truncate, read) the caller's file.
    let out_path = k.path("exec-out");
    let out = std::fs::File::create(&out_path).unwrap();
    let status = k
        .cmd(&[
            "exec",
            "box1",
            "sh",
            "-c",
            "readlink /proc/self/fd/1; ls /proc/self/fd",
        ])
        .stdout(out)
        .status()
        .unwrap();
    assert!(status.success());
    let text = std::fs::read_to_string(&out_path).unwrap();
    let mut lines = text.lines();
    let target = lines.next().unwrap_or_default();
    assert!(target.starts_with("pipe:"), "fd 1 is {target}");
    // 0-2, and the directory `ls` itself opens: nothing else of kiln's.
    let fds: Vec<&str> = lines.collect();
    assert!(fds.len() <= 4, "extra descriptors: {fds:?}");
}

#[test]
fn exec_into_a_stopped_or_missing_container_fails_like_docker() {
    let k = sleeping();
    k.ok(&["stop", "-t", "0", "box1"]);
    let err = k.kiln(&["exec", "box1", "true"]).fails_with(1).to_string();
    assert!(err.contains("is not running"), "{err}");
    let err = k.kiln(&["exec", "nope", "true"]).fails_with(1).to_string();
    assert!(err.contains("No such container: nope"), "{err}");
}

#[test]
fn exec_into_a_paused_container_is_refused() {
    let k = sleeping();
    k.ok(&["pause", "box1"]);
    let err = k.kiln(&["exec", "box1", "true"]).fails_with(1).to_string();
    assert!(
        err.contains("is paused, unpause the container before exec"),
        "{err}"
    );
    k.ok(&["unpause", "box1"]);
    k.ok(&["exec", "box1", "true"]);
}

#[test]
fn top_lists_the_containers_processes_only() {
    let k = sleeping();
    let out = k.ok(&["top", "box1"]);
    let mut lines = out.lines();
    let header = lines.next().unwrap();
    assert!(header.contains("PID") && header.contains("CMD"), "{out}");
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 1, "{out}");
    assert!(rows[0].ends_with("sleep 1000"), "{out}");
    let err = k.kiln(&["top", "nope"]).fails_with(1).to_string();
    assert!(err.contains("No such container"), "{err}");
}

#[test]
fn diff_shows_added_changed_and_deleted_paths() {
    let k = sleeping();
    // A container that changed nothing shows nothing: the mount points
    // kiln's runtime made are not changes (docker's init layer).
    assert_eq!(k.ok(&["diff", "box1"]), "");
    k.ok(&[
        "exec",
        "box1",
        "sh",
        "-c",
        "touch /new && rm /etc/group && echo x >> /etc/passwd && mkdir -p /tmp/d && touch /tmp/d/f",
    ]);
    let out = k.ok(&["diff", "box1"]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        !out.contains("/proc") && !out.contains("/etc/hosts"),
        "{out}"
    );
    for expected in [
        "A /new",
        "C /etc",
        "D /etc/group",
        "C /etc/passwd",
        "A /tmp/d",
        "A /tmp/d/f",
    ] {
        assert!(lines.contains(&expected), "{expected} missing from:\n{out}");
    }
    // The parent comes before what changed in it (docker's order).
    let at = |l: &str| lines.iter().position(|x| *x == l).unwrap();
    assert!(at("C /etc") < at("D /etc/group"), "{out}");
    // A stopped container still has its changes.
    k.ok(&["stop", "-t", "0", "box1"]);
    assert_eq!(k.ok(&["diff", "box1"]), out);
}

#[test]
fn commit_makes_an_image_that_runs_with_the_containers_writes() {
    let k = sleeping();
    k.ok(&[
        "exec",
        "box1",
        "sh",
        "-c",
        "echo committed > /new && rm /etc/group",
    ]);
    let id = k.ok(&[
        "commit",
        "-c",
        "ENV X=1",
        "-m",
        "my message",
        "-a",
        "Jane",
        "box1",
        "saved:v1",
    ]);
    let id = id.trim();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");
    assert_eq!(k.inspect("saved:v1", "{{.Id}}"), id);
    let out = k.ok(&[
        "run", "--rm", "saved:v1", "sh", "-c",
        "cat /new; echo X=$X; test -e /etc/group || echo no-group; test -e /etc/hosts && echo hosts",
    ]);
    assert_eq!(out, "committed\nX=1\nno-group\nhosts\n");
    let config = k.config_blob("saved:v1");
    let last = config["history"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["comment"], "my message", "{last}");
    assert_eq!(last["author"], "Jane", "{last}");
    assert_eq!(last["created_by"], "sleep 1000", "{last}");
    assert_eq!(config["author"], "Jane");
    // The container was thawed after the commit (paused by default).
    assert_eq!(
        k.ok(&["inspect", "--format", "{{.State.Status}}", "box1"])
            .trim(),
        "running"
    );
    // The new layer holds the writes, not the runtime's mount points.
    let snapshots = k.root().join("snapshots");
    let layer = std::fs::read_dir(&snapshots)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.join("new").exists())
        .expect("a snapshot with /new");
    let mut top: Vec<String> = std::fs::read_dir(&layer)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    top.sort();
    assert_eq!(top, ["etc", "new"], "{}", layer.display());
    assert!(!layer.join("etc/hosts").exists() && !layer.join("etc/resolv.conf").exists());
}

#[test]
fn commit_keeps_the_containers_env_and_command() {
    let k = Store {
        k: Kiln::with_busybox_image(),
    };
    k.ok(&[
        "run", "-d", "--name", "withenv", "-e", "FOO=bar", "busybox", "sleep", "1000",
    ]);
    k.ok(&["commit", "withenv", "saved:env"]);
    assert_eq!(
        k.ok(&["run", "--rm", "saved:env", "sh", "-c", "echo $FOO"]),
        "bar\n"
    );
    let config = k.config_blob("saved:env");
    assert_eq!(
        config["config"]["Cmd"],
        serde_json::json!(["sleep", "1000"])
    );
    let env = config["config"]["Env"].to_string();
    assert!(!env.contains("HOSTNAME"), "{env}");
}

#[test]
fn commit_refuses_a_bad_change_and_a_missing_container() {
    let k = sleeping();
    let err = k
        .kiln(&["commit", "-c", "BOGUS x", "box1"])
        .fails_with(1)
        .to_string();
    assert!(err.contains("BOGUS"), "{err}");
    let err = k.kiln(&["commit", "nope"]).fails_with(1).to_string();
    assert!(err.contains("No such container: nope"), "{err}");
}

#[test]
fn exec_t_gives_the_process_a_terminal_in_the_container() {
    let k = sleeping();
    let out = k.ok(&["exec", "-t", "box1", "sh", "-c", "tty; echo $TERM"]);
    assert!(out.contains("/dev/pts/"), "{out:?}");
    assert!(out.contains("xterm"), "{out:?}");
    // Without -t, no terminal.
    k.kiln(&["exec", "box1", "tty"]).fails_with(1);
}

#[test]
fn exec_d_runs_in_the_background_and_returns_at_once() {
    let k = sleeping();
    let out = k.ok(&[
        "exec",
        "-d",
        "box1",
        "sh",
        "-c",
        "touch /started; exec sleep 999",
    ]);
    assert_eq!(out, "");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while k.kiln(&["exec", "box1", "test", "-e", "/started"]).code != 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the detached exec never ran"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // It outlives the CLI that started it, inside the container.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !k.ok(&["top", "box1"]).contains("sleep 999") {
        assert!(std::time::Instant::now() < deadline, "no sleep 999 in top");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn cp_copies_files_and_directories_both_ways() {
    let k = sleeping();
    k.ok(&[
        "exec",
        "box1",
        "sh",
        "-c",
        "mkdir /data && echo inside > /data/f",
    ]);
    let out = k.path("out-file");
    k.ok(&["cp", "box1:/data/f", out.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "inside\n");
    let dir = k.path("out-dir");
    k.ok(&["cp", "box1:/data", dir.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(dir.join("f")).unwrap(), "inside\n");

    let host = k.path("from-host");
    std::fs::write(&host, "outside\n").unwrap();
    k.ok(&["cp", host.to_str().unwrap(), "box1:/tmp"]);
    assert_eq!(
        k.ok(&["exec", "box1", "cat", "/tmp/from-host"]),
        "outside\n"
    );
    k.ok(&["cp", host.to_str().unwrap(), "box1:/tmp/renamed"]);
    assert_eq!(k.ok(&["exec", "box1", "cat", "/tmp/renamed"]), "outside\n");
    let err = k
        .kiln(&["cp", "box1:/no/such", out.to_str().unwrap()])
        .fails_with(1)
        .to_string();
    assert!(err.contains("/no/such"), "{err}");
}

#[test]
fn cp_never_follows_a_containers_symlink_out_of_it() {
    let k = sleeping();
    // A host file and directory the container names by their host paths.
    let secret = k.path("host-secret");
    std::fs::write(&secret, "host only\n").unwrap();
    let victim = k.path("host-victim");
    std::fs::create_dir(&victim).unwrap();
    let script = format!(
        "ln -s {} /leak && ln -s ../../../../..{} /leak2 && ln -s {} /evil",
        secret.display(),
        secret.display(),
        victim.display()
    );
    k.ok(&["exec", "box1", "sh", "-c", &script]);
    for link in ["box1:/leak", "box1:/leak2"] {
        let out = k.path("leaked");
        let ran = k.kiln(&["cp", link, out.to_str().unwrap()]);
        ran.fails_with(1);
        assert!(!out.exists(), "{link} copied a host file");
    }
    let file = k.path("payload");
    std::fs::write(&file, "x").unwrap();
    k.ok(&["cp", file.to_str().unwrap(), "box1:/evil"]);
    assert_eq!(
        std::fs::read_dir(&victim).unwrap().count(),
        0,
        "wrote into the host"
    );
    // The container's symlink was replaced by the file, inside it.
    assert_eq!(k.ok(&["exec", "box1", "cat", "/evil"]), "x");
}

#[test]
fn exec_joins_the_containers_cgroup_and_rlimits() {
    let k = Store {
        k: Kiln::with_busybox_image(),
    };
    k.ok(&[
        "run",
        "-d",
        "--name",
        "limited",
        "--ulimit",
        "nofile=100:200",
        "--memory",
        "64m",
        "busybox",
        "sleep",
        "1000",
    ]);
    assert_eq!(
        k.ok(&["exec", "limited", "sh", "-c", "ulimit -n; ulimit -Hn"]),
        "100\n200\n"
    );
    // Same cgroups as the container's init, in every hierarchy (in its
    // cgroup namespace a process outside them shows `/..` paths).
    let own = k.ok(&["exec", "limited", "cat", "/proc/self/cgroup"]);
    let init = k.ok(&["exec", "limited", "cat", "/proc/1/cgroup"]);
    assert_eq!(own, init);
    assert!(!own.contains(".."), "{own}");
}
