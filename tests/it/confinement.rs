//! What a `kiln run` process may do: user, capabilities, seccomp, cgroup
//! limits, and the flags that change them — as docker users see it in
//! /proc/self/status and in exit codes.

use crate::support;

use std::path::Path;
use support::kiln::Kiln;

/// The `Name:\tvalue` fields of /proc/self/status the tests look at.
fn status(f: &Kiln, flags: &[&str]) -> Vec<String> {
    let mut all = vec!["--rm"];
    all.extend_from_slice(flags);
    let ran = f.run_rootfs(
        &all,
        &[
            "grep",
            "-E",
            "^(CapEff|CapBnd|CapPrm|Seccomp|NoNewPrivs):",
            "/proc/self/status",
        ],
    );
    ran.ok()
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

#[test]
fn default_capabilities_and_seccomp_match_docker() {
    let f = Kiln::with_busybox_rootfs();
    // docker's set on a network of the container's own (the default
    // bridge, kiln run's default, as docker's) ...
    assert_eq!(
        status(&f, &[]),
        [
            "CapPrm: 00000000a80425fb",
            "CapEff: 00000000a80425fb",
            "CapBnd: 00000000a80425fb",
            "NoNewPrivs: 0",
            "Seccomp: 2",
        ]
    );
    // ... and without NET_RAW (bit 13) on the host's, where it would let
    // the container sniff local traffic (issue 10).
    assert_eq!(
        status(&f, &["--network", "host"]),
        [
            "CapPrm: 00000000a80405fb",
            "CapEff: 00000000a80405fb",
            "CapBnd: 00000000a80405fb",
            "NoNewPrivs: 0",
            "Seccomp: 2",
        ]
    );
}

#[test]
fn cap_flags_and_privileged_change_the_sets() {
    let f = Kiln::with_busybox_rootfs();
    let s = status(&f, &["--cap-drop", "ALL", "--cap-add", "cap_chown"]);
    assert!(s.contains(&"CapEff: 0000000000000001".to_string()), "{s:?}");
    let s = status(&f, &["--privileged"]);
    assert!(s.contains(&"Seccomp: 0".to_string()), "{s:?}");
    assert!(
        !s.contains(&"CapEff: 00000000a80425fb".to_string()),
        "{s:?}"
    );
    let ran = f.run_rootfs(
        &["--rm", "--privileged"],
        &["sh", "-c", "wc -c < /proc/keys; mount | grep ' /sys '"],
    );
    let out = ran.ok();
    assert!(out.contains("sysfs on /sys type sysfs (rw"), "{out}");
    let ran = f.run_rootfs(&["--rm", "--cap-add", "NOT_A_CAP"], &["true"]);
    assert_eq!(ran.code, 125);
    assert!(ran.stderr.contains("--cap-add"), "{ran:?}");
}

#[test]
fn mount_and_unshare_are_refused() {
    let f = Kiln::with_busybox_rootfs();
    let ran =
        f.sh_rootfs("mount -t tmpfs none /mnt; echo mount=$?; unshare -m true; echo unshare=$?");
    assert_eq!(ran.ok(), "mount=1\nunshare=1\n", "{ran:?}");
    assert!(
        ran.stderr.contains("Operation not permitted") || ran.stderr.contains("permission denied"),
        "{ran:?}"
    );
}

#[test]
fn user_flag_resolves_names_from_the_rootfs() {
    let f = Kiln::with_busybox_rootfs();
    let ran = f.run_rootfs(
        &["--rm", "-u", "tester", "-w", "/home/tester"],
        &[
            "sh",
            "-c",
            "id; pwd; echo $HOME; grep CapEff /proc/self/status",
        ],
    );
    assert_eq!(
        ran.ok(),
        // busybox's id lists getgroups(2): the groups naming the user and,
        // as docker and BuildKit give it (containerd's ensureAdditionalGids),
        // the primary group.
        "uid=1000(tester) gid=1000(tester) groups=1000(tester),1001(extra)\n/home/tester\n/home/tester\nCapEff:\t0000000000000000\n"
    );
    assert_eq!(
        f.run_rootfs(&["--rm", "-u", "1000:1001"], &["id", "-u"])
            .ok(),
        "1000\n"
    );
    assert_eq!(
        f.run_rootfs(&["--rm", "-u", "4242"], &["sh", "-c", "id -u; echo $HOME"])
            .ok(),
        "4242\n/\n"
    );
    let ran = f.run_rootfs(&["--rm", "-u", "nobody-here"], &["true"]);
    assert_eq!(ran.code, 125);
    assert!(ran.stderr.contains("nobody-here"), "{ran:?}");
}

#[test]
fn ulimit_and_pids_limit_apply() {
    let f = Kiln::with_busybox_rootfs();
    assert_eq!(
        f.run_rootfs(
            &["--rm", "--ulimit", "nofile=100:200"],
            &["sh", "-c", "ulimit -n; ulimit -Hn"]
        )
        .ok(),
        "100\n200\n"
    );
    // With at most 3 tasks the shell cannot start five sleeps (busybox sh
    // gives up at the first failed fork); with 10 it can.
    let script = [
        "sh",
        "-c",
        "for i in 1 2 3 4 5; do sleep 5 & done; echo started",
    ];
    let ran = f.run_rootfs(&["--rm", "--pids-limit", "3"], &script);
    assert_eq!(ran.code, 2, "{ran:?}");
    assert!(ran.stderr.contains("can't fork"), "{ran:?}");
    assert_eq!(
        f.run_rootfs(&["--rm", "--pids-limit", "10"], &script).ok(),
        "started\n"
    );
}

#[test]
fn memory_limit_kills_with_137_and_cgroup_is_removed() {
    let f = Kiln::with_busybox_rootfs();
    let ran = f.run_rootfs(
        &["--memory", "16m", "--hostname", "memtest"],
        &[
            "sh",
            "-c",
            "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived",
        ],
    );
    assert_eq!(ran.code, 137, "{ran:?}");
    let id = &f.containers()[0];
    assert_eq!(cgroup_dirs_named(id), Vec::<String>::new());
    // --rm removes the state too.
    let ran = f.run_rootfs(&["--rm", "--memory", "64m"], &["true"]);
    ran.ok();
    assert_eq!(f.containers().len(), 1);
}

#[test]
fn bad_resource_flags_name_the_flag() {
    let f = Kiln::with_busybox_rootfs();
    for (flags, needle) in [
        (&["--memory", "lots"][..], "--memory"),
        (&["--memory", "1k"][..], "minimum memory limit"),
        (&["--cpus", "x"][..], "--cpus"),
        (&["--cpus", "1000"][..], "range of CPUs"),
        (&["--pids-limit", "many"][..], "--pids-limit"),
        (&["--ulimit", "bogus=1"][..], "ulimit"),
    ] {
        let mut all = vec!["--rm"];
        all.extend_from_slice(flags);
        let ran = f.run_rootfs(&all, &["true"]);
        assert_eq!(ran.code, 125, "{flags:?}: {ran:?}");
        assert!(ran.stderr.contains(needle), "{flags:?}: {ran:?}");
    }
}

/// Directories under /sys/fs/cgroup named `name` (a container's cgroup).
fn cgroup_dirs_named(name: &str) -> Vec<String> {
    fn walk(dir: &Path, name: &str, depth: usize, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            if !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            if e.file_name().to_string_lossy() == name {
                out.push(e.path().display().to_string());
            }
            if depth > 0 {
                walk(&e.path(), name, depth - 1, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(Path::new("/sys/fs/cgroup"), name, 5, &mut out);
    out
}

/// Regression: when the init failed early (here: an unknown user), kiln's
/// write of the sync byte could hit a pipe with no reader and kill kiln with
/// SIGPIPE instead of reporting exit code 125. It was a race, so try often.
#[test]
fn setup_failure_is_exit_125_never_sigpipe() {
    let f = Kiln::with_busybox_rootfs();
    for _ in 0..25 {
        let ran = f.run_rootfs(&["--rm", "-u", "nobody-here"], &["true"]);
        assert_eq!(ran.code, 125, "{ran:?}");
    }
}

/// Regression (issue 10, item 6): an image symlink `/myproc -> /proc` let
/// `-v x:/myproc/sys` and `--tmpfs /myproc/sys` mount over the container's
/// /proc/sys, undoing its read-only protection; runc refuses destinations
/// inside /proc (`checkProcMount`). /sys through a symlink likewise.
#[test]
fn mounts_through_symlinks_into_proc_or_sys_are_refused() {
    let f = Kiln::with_busybox_rootfs();
    std::os::unix::fs::symlink("/proc", f.rootfs().join("myproc")).unwrap();
    std::os::unix::fs::symlink("../sys", f.rootfs().join("mysys")).unwrap();
    let src = f.path("src");
    std::fs::create_dir(&src).unwrap();
    let bind = |dest: &str| format!("{}:{dest}", src.display());
    for (flags, inside) in [
        (vec!["-v".to_string(), bind("/myproc/sys")], "/proc"),
        (vec!["-v".to_string(), bind("/myproc/new/dir")], "/proc"),
        (
            vec!["--tmpfs".to_string(), "/myproc/sys".to_string()],
            "/proc",
        ),
        (
            vec!["--tmpfs".to_string(), "/mysys/kernel".to_string()],
            "/sys",
        ),
        (vec!["-v".to_string(), bind("/mysys/fs")], "/sys"),
    ] {
        let mut all = vec!["--rm"];
        all.extend(flags.iter().map(String::as_str));
        let err = f.run_rootfs(&all, &["true"]).fails_with(125).to_string();
        assert!(
            err.contains(&format!("cannot be mounted because it is inside {inside}")),
            "{flags:?}: {err}"
        );
    }
    // The same destinations without the symlinks still work.
    f.run_rootfs(&["--rm", "-v", &bind("/data")], &["true"])
        .ok();
}

/// Regression (issue 10, item 6): RUN `--mount` targets resolve through
/// the image's symlinks too, and may not land in /proc or /sys.
#[test]
fn run_mount_targets_through_symlinks_into_proc_are_refused() {
    let k = Kiln::with_busybox_image();
    for mount in [
        "type=tmpfs,target=/myproc/sys",
        "type=bind,target=/myproc/sys",
    ] {
        let ctx = k.context(&[(
            "Dockerfile",
            &format!("FROM busybox\nRUN ln -s /proc /myproc\nRUN --mount={mount} true\n"),
        )]);
        let ran = k.build(&ctx, &[]);
        let err = ran.fails();
        assert!(
            err.contains("cannot be mounted because it is inside /proc"),
            "{mount}: {err}"
        );
    }
}
