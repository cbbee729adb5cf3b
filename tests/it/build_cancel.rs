//! A build that stops early stops everything it started: when one step
//! fails, or kiln gets SIGINT/SIGTERM, the RUNs still running are killed
//! (BuildKit does the same), their mounts and scratch dirs are cleaned up
//! and kiln exits non-zero without waiting for them.
//!
//! The RUNs that must be killed sleep for 1000 s. If cancelling were
//! broken, kiln would not exit: each test gives it a generous deadline,
//! then kills it and fails rather than hang.

use crate::support;

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use support::kiln::{host_mounts_under, Kiln};

/// How long kiln may take before the test declares it hung.
const DEADLINE: Duration = Duration::from_secs(300);

/// A marker unique to this test's store, put in the long RUN's command
/// line so its processes can be found in /proc.
pub(crate) fn marker(k: &Kiln) -> String {
    let name = k.dir.path().file_name().unwrap().to_string_lossy();
    format!(
        "cancel-marker-{}",
        name.trim_start_matches(support::kiln::TEMP_PREFIX)
    )
}

/// Pids whose command line contains `marker`.
pub(crate) fn processes_with(marker: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            if String::from_utf8_lossy(&cmdline).contains(marker) {
                found.push(pid);
            }
        }
    }
    found
}

/// A running `kiln build`; killed (by its pid) if the test panics, then
/// its store opened once more so that kiln detaches the views the killed
/// build left mounted.
pub(crate) struct Build {
    child: Child,
    out: tempfile::NamedTempFile,
    err: tempfile::NamedTempFile,
    root: std::path::PathBuf,
}

impl Build {
    fn start(k: &Kiln, ctx: &Path) -> Build {
        Build::start_with(k, ctx, &[])
    }

    /// Starts `kiln build --progress plain <flags> <ctx>`.
    pub(crate) fn start_with(k: &Kiln, ctx: &Path, flags: &[&str]) -> Build {
        let out = tempfile::NamedTempFile::new().unwrap();
        let err = tempfile::NamedTempFile::new().unwrap();
        let mut args = vec!["build", "--progress", "plain"];
        args.extend_from_slice(flags);
        args.push(ctx.to_str().unwrap());
        let child = k
            .cmd(&args)
            .stdin(Stdio::null())
            .stdout(out.reopen().unwrap())
            .stderr(err.reopen().unwrap())
            .spawn()
            .unwrap();
        Build {
            child,
            out,
            err,
            root: k.root(),
        }
    }

    /// Waits for kiln to exit within [`DEADLINE`]; returns its exit code
    /// and stderr, or fails the test (killing kiln) when it hangs.
    pub(crate) fn wait(mut self) -> (i32, String) {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let stderr = std::fs::read_to_string(self.err.path()).unwrap();
                return (status.code().unwrap_or(-1), stderr);
            }
            if start.elapsed() > DEADLINE {
                let stderr = std::fs::read_to_string(self.err.path()).unwrap_or_default();
                let stdout = std::fs::read_to_string(self.out.path()).unwrap_or_default();
                panic!(
                    "kiln build did not stop within {DEADLINE:?}: the running RUN was not \
                     cancelled\n{stderr}\n{stdout}"
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until a process whose command line has `marker` runs.
    pub(crate) fn wait_for_process(&mut self, marker: &str) {
        let start = Instant::now();
        while processes_with(marker).is_empty() {
            if let Some(status) = self.child.try_wait().unwrap() {
                let stderr = std::fs::read_to_string(self.err.path()).unwrap();
                panic!("kiln exited ({status}) before the RUN started:\n{stderr}");
            }
            assert!(start.elapsed() < DEADLINE, "the RUN never started");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub(crate) fn signal(&self, sig: libc::c_int) {
        // Our own child's pid, not reaped yet (so it cannot have been reused).
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let sig = nix::sys::signal::Signal::try_from(sig).expect("a known signal");
        nix::sys::signal::kill(pid, sig).expect("kill(2) on the kiln child");
    }
}

impl Drop for Build {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
            let _ = std::process::Command::new(support::kiln::KILN)
                .arg("--root")
                .arg(&self.root)
                .arg("images")
                .output();
        }
    }
}

/// Asserts that nothing of the build is left: no process of the long
/// RUN, no mount below the store, no scratch dir.
#[track_caller]
pub(crate) fn assert_cleaned_up(k: &Kiln, marker: &str) {
    assert_eq!(
        processes_with(marker),
        Vec::<u32>::new(),
        "RUN processes left"
    );
    assert_eq!(
        host_mounts_under(k.dir.path()),
        Vec::<String>::new(),
        "mounts left"
    );
    let scratch: Vec<_> = std::fs::read_dir(k.root().join("tmp"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert_eq!(
        scratch,
        Vec::<std::path::PathBuf>::new(),
        "scratch dirs left"
    );
}

#[test]
fn a_failed_step_kills_the_runs_still_running() {
    let k = Kiln::with_busybox_image();
    let marker = marker(&k);
    let ctx = k.context(&[]);
    // Stage b fails only once stage a's RUN is running (they meet in a
    // shared cache mount), so the failure must kill it rather than stop
    // it from starting. Stage a also holds a writable view of another
    // stage, a mount on the host that must go too.
    let dockerfile = format!(
        "FROM busybox AS a\n\
         RUN --mount=type=cache,id={marker},target=/sync \
             --mount=type=bind,from=busybox,target=/view,rw \
             touch /sync/started; sleep 1000; echo {marker}\n\
         FROM busybox AS b\n\
         RUN --mount=type=cache,id={marker},target=/sync \
             until [ -e /sync/started ]; do sleep 0.1; done; exit 3\n\
         FROM busybox\n\
         COPY --from=a /etc/passwd /a\n\
         COPY --from=b /etc/passwd /b\n"
    );
    std::fs::write(ctx.join("Dockerfile"), dockerfile).unwrap();
    let (code, stderr) = Build::start(&k, &ctx).wait();
    assert_ne!(code, 0, "{stderr}");
    assert!(
        stderr.contains("did not complete successfully: exit code: 3"),
        "{stderr}"
    );
    assert_cleaned_up(&k, &marker);
}

#[test]
fn sigint_and_sigterm_cancel_the_build_and_clean_up() {
    for (sig, name) in [(libc::SIGINT, "SIGINT"), (libc::SIGTERM, "SIGTERM")] {
        let k = Kiln::with_busybox_image();
        let marker = marker(&k);
        let ctx = k.context(&[]);
        std::fs::write(
            ctx.join("Dockerfile"),
            format!(
                "FROM busybox\n\
                 RUN --mount=type=bind,from=busybox,target=/view,rw sleep 1000; echo {marker}\n"
            ),
        )
        .unwrap();
        let mut build = Build::start(&k, &ctx);
        build.wait_for_process(&marker);
        build.signal(sig);
        let (code, stderr) = build.wait();
        assert_ne!(code, 0, "{name}: {stderr}");
        assert!(
            stderr.contains(&format!("build cancelled by {name}")),
            "{name}: {stderr}"
        );
        assert_cleaned_up(&k, &marker);
    }
}
