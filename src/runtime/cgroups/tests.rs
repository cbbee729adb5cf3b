//! Real-kernel tests (root): each creates its own uniquely named cgroup,
//! kills only the processes it started, and checks the cgroup is gone.

use super::*;
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

const MIB: u64 = 1024 * 1024;

fn unique_name(label: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("test-{label}-{}-{n}", std::process::id())
}

/// A busybox shell that waits for a line on stdin before running `script`,
/// so it can be put into the cgroup first. Killed and reaped on drop.
struct GatedShell(Child);

impl GatedShell {
    fn spawn(script: &str) -> GatedShell {
        let child = Command::new("/bin/busybox")
            .args(["sh", "-c", &format!("read go; {script}")])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn /bin/busybox");
        GatedShell(child)
    }

    fn pid(&self) -> i32 {
        self.0.id() as i32
    }

    fn start_and_wait(&mut self) -> (ExitStatus, String) {
        let mut stdin = self.0.stdin.take().expect("stdin is piped");
        stdin.write_all(b"go\n").expect("release the shell");
        drop(stdin);
        let status = self.0.wait().expect("wait for the shell");
        let mut stderr = String::new();
        if let Some(mut err) = self.0.stderr.take() {
            use std::io::Read;
            let _ = err.read_to_string(&mut stderr);
        }
        (status, stderr)
    }
}

impl Drop for GatedShell {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Kills what is left in a test's cgroup: only processes the test started
/// can be in it.
fn kill_members(cg: &Cgroup) {
    for pid in cg.procs().unwrap_or_default() {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

fn remove_and_check_gone(cg: Cgroup) {
    let paths: Vec<PathBuf> = cg.paths().iter().map(|p| p.to_path_buf()).collect();
    assert!(!paths.is_empty());
    cg.remove().expect("cgroup removes");
    for p in paths {
        assert!(!p.exists(), "{} is left behind", p.display());
    }
}

#[test]
fn memory_limit_oom_kills_and_is_reported() {
    let res = Resources {
        memory: Some(32 * MIB),
        ..Default::default()
    };
    let cg = Cgroup::create(&unique_name("oom"), &res).expect("create cgroup");
    assert!(!cg.oom_killed(), "fresh cgroup has no OOM kill");
    // Doubling a shell variable grows without bound.
    let mut shell = GatedShell::spawn("x=a; while true; do x=$x$x; done");
    cg.add_process(shell.pid()).expect("add process");
    let (status, _) = shell.start_and_wait();
    assert_eq!(status.signal(), Some(libc::SIGKILL), "status {status:?}");
    assert!(cg.oom_killed(), "oom_kill counter is set");
    drop(shell);
    remove_and_check_gone(cg);
}

#[test]
fn pids_limit_makes_fork_fail() {
    let res = Resources {
        pids_limit: Some(4),
        ..Default::default()
    };
    let cg = Cgroup::create(&unique_name("pids"), &res).expect("create cgroup");
    let mut shell = GatedShell::spawn("for i in 1 2 3 4 5 6 7 8; do sleep 30 2>/dev/null & done");
    cg.add_process(shell.pid()).expect("add process");
    let (_, stderr) = shell.start_and_wait();
    // busybox ash reports the failed fork and goes on with the loop.
    assert!(stderr.contains("can't fork"), "stderr: {stderr}");
    assert!(cg.procs().expect("procs").len() <= 4, "pids.max holds");
    kill_members(&cg);
    drop(shell);
    remove_and_check_gone(cg);
}

#[test]
fn cpu_and_pids_limits_are_written() {
    let res = Resources {
        cpus: Some(0.5),
        cpu_shares: Some(512),
        pids_limit: Some(100),
        ..Default::default()
    };
    let cg = Cgroup::create(&unique_name("cpu"), &res).expect("create cgroup");
    let read = |c: Controller, file: &str| {
        let dir = cg.dir_of(c).expect("controller directory");
        fs::read_to_string(dir.join(file))
            .expect("read back")
            .trim()
            .to_string()
    };
    if cg.mode() == CgroupMode::Unified {
        assert_eq!(read(Controller::Cpu, "cpu.max"), "50000 100000");
        assert_eq!(read(Controller::Cpu, "cpu.weight"), "20");
    } else {
        assert_eq!(read(Controller::Cpu, "cpu.cfs_quota_us"), "50000");
        assert_eq!(read(Controller::Cpu, "cpu.shares"), "512");
    }
    assert_eq!(read(Controller::Pids, "pids.max"), "100");
    remove_and_check_gone(cg);
}

#[test]
fn cgroups_live_below_kilns_own_cgroup() {
    let cg = Cgroup::create(&unique_name("place"), &Resources::default()).expect("create");
    let own = fs::read_to_string("/proc/self/cgroup").expect("proc cgroup");
    for path in cg.paths() {
        let parent = path.parent().expect("kiln dir");
        assert_eq!(
            parent.file_name().and_then(|n| n.to_str()),
            Some(KILN_CGROUP_DIR)
        );
        // The grandparent is this process's cgroup in that hierarchy.
        let own_dir = parent.parent().expect("own cgroup");
        let own_dir = own_dir.to_string_lossy();
        assert!(
            own.lines().any(|l| {
                let p = l.splitn(3, ':').nth(2).unwrap_or("");
                own_dir.ends_with(p.trim_end_matches('/'))
            }),
            "{own_dir} is not one of {own}"
        );
    }
    remove_and_check_gone(cg);
}

#[test]
fn duplicate_names_fail_without_touching_the_first() {
    let name = unique_name("dup");
    let first = Cgroup::create(&name, &Resources::default()).expect("create");
    let err = Cgroup::create(&name, &Resources::default()).expect_err("second create");
    assert!(matches!(err, CgroupError::Exists(_)), "{err}");
    assert!(first.paths().iter().all(|p| p.exists()));
    remove_and_check_gone(first);
}

#[test]
fn bad_names_and_resources_are_rejected_before_touching_the_kernel() {
    for name in ["", "..", "a/b"] {
        assert!(matches!(
            Cgroup::create(name, &Resources::default()),
            Err(CgroupError::Invalid(_))
        ));
    }
    let res = Resources {
        memory: Some(MIB),
        ..Default::default()
    };
    assert!(matches!(
        Cgroup::create(&unique_name("bad"), &res),
        Err(CgroupError::Invalid(_))
    ));
}

#[test]
fn empty_cgroups_are_found_as_stale_and_removed() {
    let cg = Cgroup::create(&unique_name("stale"), &Resources::default()).expect("create");
    let paths: Vec<PathBuf> = cg.paths().iter().map(|p| p.to_path_buf()).collect();
    // Forget the handle as a crashed kiln would.
    let mut cg = cg;
    cg.removed = true;
    drop(cg);
    let stale = find_stale(Duration::ZERO).expect("scan");
    for p in &paths {
        let entry = stale
            .iter()
            .find(|s| &s.path == p)
            .unwrap_or_else(|| panic!("{} not found as stale", p.display()));
        entry.remove().expect("remove stale");
        assert!(!p.exists());
    }
    // A cgroup with a live process is not stale.
    let cg = Cgroup::create(&unique_name("busy"), &Resources::default()).expect("create");
    let shell = GatedShell::spawn("true");
    cg.add_process(shell.pid()).expect("add");
    let stale = find_stale(Duration::ZERO).expect("scan");
    assert!(cg
        .paths()
        .iter()
        .all(|p| !stale.iter().any(|s| s.path == *p)));
    drop(shell);
    remove_and_check_gone(cg);
}

#[test]
fn creating_a_cgroup_sweeps_old_empty_ones_a_killed_kiln_left() {
    let left = Cgroup::create(&unique_name("left"), &Resources::default()).expect("create");
    let paths: Vec<PathBuf> = left.paths().iter().map(|p| p.to_path_buf()).collect();
    let mut left = left;
    left.removed = true;
    drop(left);
    let old = std::time::UNIX_EPOCH + Duration::from_secs(1_000_000);
    for p in &paths {
        fs::File::open(p)
            .and_then(|d| d.set_times(fs::FileTimes::new().set_modified(old)))
            .expect("age the cgroup dir");
    }
    let cg = Cgroup::create(&unique_name("sweeper"), &Resources::default()).expect("create");
    for p in &paths {
        assert!(!p.exists(), "{} was not swept", p.display());
    }
    remove_and_check_gone(cg);
}

/// The v2 code path on this host's controller-less v2 hierarchy (hybrid
/// hosts mount one at /sys/fs/cgroup/unified): creating works, a limit
/// fails naming the subtree_control file, and removal leaves nothing.
#[test]
fn v2_path_without_delegated_controllers() {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    let proc_cgroup = fs::read_to_string("/proc/self/cgroup").expect("proc cgroup");
    let v2_only: String = mountinfo
        .lines()
        .filter(|l| l.contains(" - cgroup2 "))
        .map(|l| format!("{l}\n"))
        .collect();
    let Some(Layout::V2 { own_dir }) = layout::resolve(&v2_only, &proc_cgroup) else {
        panic!("this host mounts a v2 hierarchy: {mountinfo}");
    };
    let make = |name: &str| Cgroup {
        name: name.to_string(),
        mode: CgroupMode::Unified,
        dirs: Vec::new(),
        removed: false,
    };
    let mut cg = make(&unique_name("v2"));
    cg.create_v2(&own_dir, &Resources::default())
        .expect("create without limits");
    remove_and_check_gone(cg);

    let mut cg = make(&unique_name("v2lim"));
    let res = Resources {
        pids_limit: Some(10),
        ..Default::default()
    };
    match cg.create_v2(&own_dir, &res) {
        // A host that delegates pids to kiln: the limit is written.
        Ok(()) => {
            let dir = cg.dir_of(Controller::Pids).expect("pids dir");
            assert_eq!(
                fs::read_to_string(dir.join("pids.max"))
                    .expect("read")
                    .trim(),
                "10"
            );
        }
        Err(e) => assert!(
            e.to_string().contains("cgroup.subtree_control"),
            "error names the file: {e}"
        ),
    }
    remove_and_check_gone(cg);
}
