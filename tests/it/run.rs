//! `kiln run` end to end: isolation, filesystem, process and stdio
//! behaviour a docker user relies on, checked against the real binary.

use crate::support;

use std::io::Write;
use std::process::Stdio;
use support::kiln::{host_mounts_under, Kiln};

#[test]
fn process_is_pid_1_and_host_processes_are_hidden() {
    let f = Kiln::with_busybox_rootfs();
    assert_eq!(f.sh_rootfs("echo $$").ok().trim(), "1");
    // Only the container's own processes exist in its /proc.
    let out = f
        .sh_rootfs("ls /proc | grep -E '^[0-9]+$'; ps -o pid,comm")
        .ok()
        .to_string();
    let pids: Vec<u32> = out.lines().filter_map(|l| l.trim().parse().ok()).collect();
    assert!(
        !pids.is_empty() && pids.iter().all(|&p| p < 10),
        "unexpected pids: {out}"
    );
    assert!(!out.contains("cargo") && !out.contains("kiln"), "{out}");
}

#[test]
fn hostname_defaults_to_id_prefix_and_can_be_set() {
    let f = Kiln::with_busybox_rootfs();
    let ran = f.run_rootfs(&[], &["hostname"]);
    let hostname = ran.ok().trim().to_string();
    assert_eq!(hostname.len(), 12, "{hostname}");
    let ids = f.containers();
    assert_eq!(ids.len(), 1);
    assert_eq!(ids[0].len(), 64);
    assert!(ids[0].starts_with(&hostname), "{hostname} vs {ids:?}");
    let ran = f.run_rootfs(
        &["--rm", "--hostname", "web-1"],
        &["sh", "-c", "hostname; cat /etc/hostname; echo $HOSTNAME"],
    );
    assert_eq!(ran.ok(), "web-1\nweb-1\nweb-1\n");
}

#[test]
fn exit_code_is_passed_through() {
    let f = Kiln::with_busybox_rootfs();
    assert_eq!(f.sh_rootfs("exit 42").code, 42);
    // PID 1 ignores signals it has no handler for, even SIGKILL from inside
    // its namespace (docker behaves the same).
    assert_eq!(f.sh_rootfs("kill -9 $$; echo alive").ok(), "alive\n");
}

#[test]
fn death_by_signal_is_128_plus_signal() {
    let f = Kiln::with_busybox_rootfs();
    let marker = f.dir.path().join("ready");
    std::fs::create_dir(&marker).unwrap();
    let mut child = f
        .run_command()
        .args(["--rm", "-v"])
        .arg(format!("{}:/ready", marker.display()))
        .arg("--rootfs")
        .arg(f.rootfs())
        .args(["sh", "-c", "touch /ready/go; exec sleep 1000"])
        .spawn()
        .unwrap();
    wait_for(&marker.join("go"));
    // SIGKILL from the parent namespace is what `docker kill` sends.
    let init = container_init_pid(child.id());
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(init),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(137));
}

/// The container init's host pid: the only child of the kiln process.
fn container_init_pid(kiln: u32) -> i32 {
    let children = std::fs::read_to_string(format!("/proc/{kiln}/task/{kiln}/children")).unwrap();
    let pids: Vec<i32> = children
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(pids.len(), 1, "{children}");
    pids[0]
}

#[test]
fn missing_command_exits_127_with_message() {
    let f = Kiln::with_busybox_rootfs();
    let ran = f.run_rootfs(&["--rm"], &["no-such-command"]);
    assert_eq!(ran.code, 127, "{ran:?}");
    assert!(
        ran.stderr
            .contains("\"no-such-command\": executable file not found in $PATH"),
        "{ran:?}"
    );
    let ran = f.run_rootfs(&["--rm"], &["/etc/passwd"]);
    assert_eq!(ran.code, 126, "{ran:?}");
}

/// Regression: `kiln run` as a non-root user printed only
/// `failed to create the container's namespaces (clone)`, without the
/// errno that says why (the CLI printed the top error, not its causes).
#[test]
fn clone_failure_as_non_root_shows_the_errno() {
    let f = Kiln::new();
    let dir = f.path("");
    std::fs::create_dir(f.rootfs()).expect("creating the rootfs dir");
    // nobody must be able to create the store and the container's state.
    for p in [dir.as_path(), f.rootfs().as_path()] {
        std::os::unix::fs::chown(p, Some(65534), Some(65534)).expect("chown to nobody");
    }
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(support::kiln::KILN)
        .arg("--root")
        .arg(f.root())
        // Not the default bridge: its host-wide lock is root's, and the
        // clone is what this tests.
        .args(["run", "--rm", "--network", "none", "--rootfs"])
        .arg(f.rootfs())
        .arg("/bin/true")
        .stdin(Stdio::null())
        .output()
        .expect("running kiln through setpriv");
    let ran = support::kiln::ran(out);
    assert_eq!(ran.code, 125, "{ran:?}");
    assert!(
        ran.stderr.contains(
            "kiln: failed to create the container's namespaces (clone): Operation not permitted"
        ),
        "{ran:?}"
    );
}

/// An errno met inside the container's init crosses the init's socket to
/// kiln with the rest of the error.
#[test]
fn init_failure_keeps_its_errno() {
    let f = Kiln::with_busybox_rootfs();
    let ran = f.run_rootfs(&["--rm", "-w", "/etc/passwd/sub"], &["true"]);
    assert_eq!(ran.code, 125, "{ran:?}");
    assert!(
        ran.stderr
            .contains("failed to create the working directory: Not a directory (os error 20)"),
        "{ran:?}"
    );
    let ran = f.run_rootfs(&["--rm"], &["/etc/passwd"]);
    assert!(
        ran.stderr
            .contains("exec: \"/etc/passwd\": Permission denied"),
        "{ran:?}"
    );
}

#[test]
fn only_stdio_fds_are_open() {
    let f = Kiln::with_busybox_rootfs();
    // The shell's own descriptors (ls would also list the one it reads with).
    // `; true` keeps sh from exec'ing ls, whose own directory fd would show.
    assert_eq!(f.sh_rootfs("ls /proc/$$/fd; true").ok(), "0\n1\n2\n");
    // And the working directory is inside the container (CVE-2024-21626).
    assert_eq!(f.sh_rootfs("readlink /proc/$$/cwd").ok(), "/\n");
}

#[test]
fn proc_sys_is_read_only_and_masked_paths_are_empty() {
    let f = Kiln::with_busybox_rootfs();
    let ran = f.sh_rootfs("echo x > /proc/sys/kernel/domainname");
    assert_ne!(ran.code, 0);
    assert!(ran.stderr.contains("Read-only file system"), "{ran:?}");
    let out = f.sh_rootfs("cat /proc/keys /proc/timer_list | wc -c; ls -A /proc/acpi | wc -l; ls -A /sys/firmware | wc -l");
    assert_eq!(
        out.ok().split_whitespace().collect::<Vec<_>>(),
        ["0", "0", "0"]
    );
    // /sys is read-only.
    assert_ne!(
        f.sh_rootfs("echo x > /sys/kernel/mm/transparent_hugepage/enabled")
            .code,
        0
    );
}

#[test]
fn writes_stay_in_the_container() {
    let f = Kiln::with_busybox_rootfs();
    f.sh_rootfs("echo data > /etc/newfile && rm /bin/cat && mkdir -p /var/x")
        .ok();
    assert!(!f.rootfs().join("etc/newfile").exists());
    assert!(f.rootfs().join("bin/cat").exists());
    assert_eq!(
        f.sh_rootfs("ls /etc/newfile /var/x 2>&1; cat /etc/passwd | head -1")
            .ok()
            .lines()
            .last(),
        Some("root:x:0:0:root:/root:/bin/sh")
    );
    let ran = f.sh_rootfs("test -e /etc/newfile");
    assert_eq!(ran.code, 1);
}

#[test]
fn read_only_rootfs_and_tmpfs() {
    let f = Kiln::with_busybox_rootfs();
    let ran = f.run_rootfs(
        &["--rm", "--read-only", "--tmpfs", "/scratch"],
        &["sh", "-c", "touch /x; echo $?; touch /scratch/y && echo ok"],
    );
    assert_eq!(ran.ok(), "1\nok\n", "{ran:?}");
    // docker's `--tmpfs` flags (`RUN --mount=type=tmpfs` has BuildKit's);
    // an option of the user's overrides them, as in docker.
    let ran = f.run_rootfs(
        &[
            "--rm",
            "--tmpfs",
            "/scratch",
            "--tmpfs",
            "/run:exec,size=1m",
        ],
        &[
            "sh",
            "-c",
            "grep ' tmpfs ' /proc/mounts | grep -e ' /scratch ' -e ' /run ' | cut -d' ' -f2,4",
        ],
    );
    let flags: Vec<Vec<&str>> = ran
        .ok()
        .lines()
        .map(|l| {
            l.split([' ', ','])
                .filter(|o| !["relatime", "inode64"].contains(o))
                .collect()
        })
        .collect();
    assert_eq!(
        flags,
        [
            vec!["/scratch", "rw", "nosuid", "nodev", "noexec"],
            vec!["/run", "rw", "nosuid", "nodev", "size=1024k"],
        ]
    );
}

#[test]
fn bind_mounts_read_write_and_read_only() {
    let f = Kiln::with_busybox_rootfs();
    let host = f.dir.path().join("shared");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("in"), "from host").unwrap();
    let rw = format!("{}:/data", host.display());
    let ro = format!("{}:/ro:ro", host.display());
    let ran = f.run_rootfs(
        &["--rm", "-v", &rw, "-v", &ro],
        &[
            "sh",
            "-c",
            "cat /data/in; echo out > /data/out; touch /ro/x 2>/dev/null || echo denied",
        ],
    );
    assert_eq!(ran.ok(), "from hostdenied\n");
    assert_eq!(std::fs::read_to_string(host.join("out")).unwrap(), "out\n");
    assert!(!host.join("x").exists());
}

#[test]
fn workdir_is_created_and_used() {
    let f = Kiln::with_busybox_rootfs();
    assert_eq!(
        f.run_rootfs(&["--rm", "-w", "/work/dir"], &["pwd"]).ok(),
        "/work/dir\n"
    );
    let ran = f.run_rootfs(&["--rm", "-w", "relative"], &["pwd"]);
    assert_eq!(ran.code, 125);
    assert!(ran.stderr.contains("--workdir"), "{ran:?}");
}

#[test]
fn environment_follows_docker() {
    let f = Kiln::with_busybox_rootfs();
    let env_file = f.dir.path().join("env");
    std::fs::write(&env_file, "# c\nFROM_FILE=1\nA=file\n").unwrap();
    let ran = f.run_rootfs(
        &[
            "--rm",
            "-e",
            "A=flag",
            "--env-file",
            env_file.to_str().unwrap(),
            "--hostname",
            "h",
        ],
        &["env"],
    );
    let mut env: Vec<&str> = ran.ok().lines().collect();
    env.sort();
    assert_eq!(
        env,
        [
            "A=flag",
            "FROM_FILE=1",
            "HOME=/root",
            "HOSTNAME=h",
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        ]
    );
}

#[test]
fn stdin_is_piped_with_i_and_null_without() {
    let f = Kiln::with_busybox_rootfs();
    let mut child = f
        .run_command()
        .args(["--rm", "-i", "--rootfs"])
        .arg(f.rootfs())
        .arg("cat")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"hi\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\n");
    // Without -i, stdin is /dev/null even when kiln's is a pipe with data.
    let mut child = f
        .run_command()
        .args(["--rm", "--rootfs"])
        .arg(f.rootfs())
        .args(["sh", "-c", "cat; readlink /proc/self/fd/0"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"ignored\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "/dev/null\n");
}

#[test]
fn tty_gives_a_container_pty() {
    let f = Kiln::with_busybox_rootfs();
    let ran = f.run_rootfs(
        &["--rm", "-t"],
        &[
            "sh",
            "-c",
            "tty; echo $TERM; test -c /dev/console && echo console",
        ],
    );
    assert_eq!(ran.ok(), "/dev/pts/0\r\nxterm\r\nconsole\r\n");
}

#[test]
fn many_layers_stack_in_order() {
    let f = Kiln::with_busybox_rootfs();
    let mut flags: Vec<String> = vec!["--rm".into()];
    for i in 0..200 {
        let layer = f.dir.path().join(format!(
            "layers/a-fairly-long-layer-directory-name-{i:04}/fs"
        ));
        std::fs::create_dir_all(&layer).unwrap();
        std::fs::write(layer.join(format!("f{i}")), "").unwrap();
        std::fs::write(layer.join("top"), i.to_string()).unwrap();
        flags.push("--layer".into());
        flags.push(layer.display().to_string());
    }
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let ran = f.run_rootfs(&flags, &["sh", "-c", "cat /top; echo; ls / | grep -c '^f'"]);
    assert_eq!(ran.ok(), "199\n200\n");
}

#[test]
fn rm_leaves_nothing_mounted_and_no_state() {
    let f = Kiln::with_busybox_rootfs();
    f.sh_rootfs("mount | grep -q ' / ' && touch /written").ok();
    assert!(f.containers().is_empty(), "{:?}", f.containers());
    assert_eq!(host_mounts_under(f.dir.path()), Vec::<String>::new());
    // Without --rm the state stays, but still nothing is mounted.
    f.run_rootfs(&[], &["true"]).ok();
    assert_eq!(f.containers().len(), 1);
    assert_eq!(host_mounts_under(f.dir.path()), Vec::<String>::new());
}

#[test]
fn network_none_has_only_loopback_up() {
    let f = Kiln::with_busybox_rootfs();
    let ran = f.run_rootfs(&["--rm", "--network", "none"], &["sh", "-c", "ls /sys/class/net; cat /sys/class/net/lo/operstate; ping -c1 -W1 127.0.0.1 >/dev/null && echo ping"]);
    assert_eq!(ran.ok(), "lo\nunknown\nping\n");
}

#[test]
fn init_reaps_and_forwards_signals() {
    let f = Kiln::with_busybox_rootfs();
    let out = f.run_rootfs(
        &["--rm", "--init"],
        &["sh", "-c", "ps -o pid,comm | grep -c kiln-init; echo $$"],
    );
    assert_eq!(out.ok(), "1\n2\n");
    // A signal to kiln reaches the command through the init: 128+15.
    let marker = f.dir.path().join("ready");
    std::fs::create_dir(&marker).unwrap();
    let mut child = f
        .run_command()
        .args(["--rm", "--init", "-v"])
        .arg(format!("{}:/ready", marker.display()))
        .arg("--rootfs")
        .arg(f.rootfs())
        .args(["sh", "-c", "touch /ready/go; exec sleep 1000"])
        .spawn()
        .unwrap();
    wait_for(&marker.join("go"));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(143));
}

#[test]
fn image_form_reports_missing_image_and_bad_flags_name_the_flag() {
    let f = Kiln::with_busybox_rootfs();
    let out = support::kiln::ran(
        f.run_command()
            .args(["--pull", "never", "busybox", "true"])
            .output()
            .unwrap(),
    );
    assert_eq!(out.code, 125);
    assert!(out.stderr.contains("No such image: busybox"), "{out:?}");
    // `relative:/x` names a volume since volumes exist (docker's rule);
    // a name docker refuses still names the flag.
    let out = f.run_rootfs(&["--rm", "-v", "bad$name:/x"], &["true"]);
    assert!(out.stderr.contains("--volume"), "{out:?}");
    let out = f.run_rootfs(&["--rm", "--hostname", "bad_name"], &["true"]);
    assert!(out.stderr.contains("--hostname"), "{out:?}");
}

#[test]
fn names_are_unique_while_the_container_exists() {
    let f = Kiln::with_busybox_rootfs();
    f.run_rootfs(&["--name", "web"], &["true"]).ok();
    let ran = f.run_rootfs(&["--name", "web"], &["true"]);
    assert_eq!(ran.code, 125);
    assert!(ran.stderr.contains("already in use"), "{ran:?}");
    f.run_rootfs(&["--rm", "--name", "db"], &["true"]).ok();
    f.run_rootfs(&["--rm", "--name", "db"], &["true"]).ok();
}

/// Polls for `path` (the container signalling it is ready); generous
/// deadline, no timing assertion.
fn wait_for(path: &std::path::Path) {
    for _ in 0..600 {
        if path.exists() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("{} never appeared", path.display());
}

/// Regression (issue 10, item 5): kiln handed its own stdout to the
/// container, so `kiln run … >> ci.log` let the container reopen
/// `/proc/self/fd/1` read-write, read an earlier secret from the log and
/// truncate it. The container now writes into a pipe kiln copies from.
#[test]
fn container_cannot_reopen_the_callers_output_file() {
    let f = Kiln::with_busybox_rootfs();
    let log = f.dir.path().join("ci.log");
    std::fs::write(&log, "SECRET=hunter2\n").unwrap();
    let out = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    // On a pipe, reopening fd 1 for reading waits for data forever: the
    // timeout only ends that wait, a reopened file is read at once.
    let status = f
        .run_command()
        .args(["--rm", "--rootfs"])
        .arg(f.rootfs())
        .args([
            "sh",
            "-c",
            "timeout 2 cat /proc/self/fd/1 >&2; : > /proc/self/fd/1; \
             readlink /proc/self/fd/1 | cut -d: -f1; echo done",
        ])
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&status.stderr);
    assert!(!stderr.contains("hunter2"), "secret read back: {stderr}");
    assert_eq!(status.status.code(), Some(0), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "SECRET=hunter2\npipe\ndone\n"
    );
}

/// Regression (issue 10, item 5): with `-i`, the container's stdin is a
/// pipe kiln feeds, never kiln's own stdin file.
#[test]
fn container_cannot_reopen_the_callers_input_file() {
    let f = Kiln::with_busybox_rootfs();
    let input = f.dir.path().join("input");
    std::fs::write(&input, "line\n").unwrap();
    let ran = f
        .run_command()
        .args(["--rm", "-i", "--rootfs"])
        .arg(f.rootfs())
        .args(["sh", "-c", "readlink /proc/self/fd/0 | cut -d: -f1; cat"])
        .stdin(std::fs::File::open(&input).unwrap())
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&ran.stdout), "pipe\nline\n");
}

/// With kiln's stdout and stderr one file (`>> log 2>&1`), relaying them
/// through pipes keeps the container's order of output and errors.
#[test]
fn output_and_errors_to_one_file_keep_their_order() {
    let f = Kiln::with_busybox_rootfs();
    let log = f.dir.path().join("both.log");
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .unwrap();
    let status = f
        .run_command()
        .args(["--rm", "--rootfs"])
        .arg(f.rootfs())
        .args([
            "sh",
            "-c",
            "for i in 1 2 3 4 5; do echo out$i; echo err$i >&2; done",
        ])
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .status()
        .unwrap();
    assert!(status.success());
    let text = std::fs::read_to_string(&log).unwrap();
    let expected: String = (1..=5).map(|i| format!("out{i}\nerr{i}\n")).collect();
    assert_eq!(text, expected);
}
