//! Several `kiln build`s on one `--root` at once: a step they all reach
//! runs once, the others take its result (the per-key step locks), and
//! different steps still run side by side.

use crate::support;

use std::io::Read;
use std::process::{Child, Stdio};
use support::kiln::{ran, step_states, Kiln, Ran};

/// Starts `kiln build --progress plain <flags> <ctx>` without waiting.
fn spawn_build(k: &Kiln, flags: &[&str], ctx: &std::path::Path) -> Child {
    let mut args = vec!["build", "--progress", "plain"];
    args.extend_from_slice(flags);
    args.push(ctx.to_str().unwrap());
    let mut cmd = k.cmd(&args);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.spawn().expect("starting kiln build")
}

/// Waits for a build started by [`spawn_build`].
fn finish(child: Child) -> Ran {
    ran(child.wait_with_output().unwrap())
}

/// Regression: four identical builds started together each ran every
/// RUN (six concurrent CI jobs on one builder did all the work six times).
/// Each RUN writes a random value into its layer, so the four images are
/// the same image only if it ran once.
#[test]
fn four_concurrent_identical_builds_run_each_step_once() {
    let k = Kiln::with_busybox_image();
    let ctx = k.context(&[(
        "Dockerfile",
        "FROM busybox\n\
         RUN cat /proc/sys/kernel/random/uuid > /first && sleep 1\n\
         RUN cat /proc/sys/kernel/random/uuid > /second\n",
    )]);
    let iid: Vec<_> = (0..4).map(|i| k.path(&format!("iid-{i}"))).collect();
    let children: Vec<_> = iid
        .iter()
        .map(|f| spawn_build(&k, &["--iidfile", f.to_str().unwrap()], &ctx))
        .collect();
    let runs: Vec<Ran> = children.into_iter().map(finish).collect();
    let mut ran_first = 0;
    let mut ran_second = 0;
    for r in &runs {
        r.ok();
        let (_, done) = step_states(&r.stderr);
        ran_first += done.iter().filter(|s| s.contains("/first")).count();
        ran_second += done.iter().filter(|s| s.contains("/second")).count();
    }
    let all: Vec<String> = runs.iter().map(|r| r.stderr.clone()).collect();
    assert_eq!(ran_first, 1, "first RUN ran {ran_first} times:\n{all:#?}");
    assert_eq!(
        ran_second, 1,
        "second RUN ran {ran_second} times:\n{all:#?}"
    );
    let ids: Vec<String> = iid
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    assert!(ids.iter().all(|id| id == &ids[0]), "{ids:?}");
    let first = k.sh(&ids[0], "cat /first");
    assert_eq!(first.trim().len(), 36, "{first}");
}

/// Different steps are not serialized by the locks: two builds whose RUNs
/// each wait for the other's marker in a shared cache mount finish only
/// if both RUNs run at the same time.
#[test]
fn different_steps_of_concurrent_builds_still_run_together() {
    let k = Kiln::with_busybox_image();
    let script = |me: &str, other: &str| {
        format!(
            "FROM busybox\n\
             RUN --mount=type=cache,id=meet,target=/meet,sharing=shared \
             touch /meet/{me} && i=0; while [ ! -e /meet/{other} ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; \
             test -e /meet/{other}\n"
        )
    };
    let a = k.context(&[("Dockerfile", &script("a", "b"))]);
    let b = k.context(&[("Dockerfile", &script("b", "a"))]);
    let (ca, cb) = (spawn_build(&k, &[], &a), spawn_build(&k, &[], &b));
    let (ra, rb) = (finish(ca), finish(cb));
    ra.ok();
    rb.ok();
}

/// A killed build releases the steps it was running: the next build of the
/// same step runs it rather than wait for a dead holder (the lock is an
/// `flock`, dropped with its holder). The first build's RUN waits on a
/// gate in a cache mount that only the test opens, after the kill.
#[test]
fn a_killed_build_releases_the_step_it_was_running() {
    let k = Kiln::with_busybox_image();
    let marker = format!("gate-{}", std::process::id());
    let ctx = k.context(&[(
        "Dockerfile",
        &format!(
            "FROM busybox\n\
             RUN --mount=type=cache,id=gate,target=/gate \
             sh -c 'test -e /gate/open || sleep 1000; : {marker}'\n"
        ),
    )]);
    let mut first = KilledOnDrop(spawn_build(&k, &[], &ctx));
    let started = std::time::Instant::now();
    while !processes_with(&marker) {
        assert!(
            first.0.try_wait().unwrap().is_none(),
            "the first build ended before its RUN started"
        );
        assert!(started.elapsed() < DEADLINE, "the RUN never started");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    drop(first);
    std::fs::write(k.root().join("cache-mounts/gate/open"), "").unwrap();
    let mut second = KilledOnDrop(spawn_build(&k, &[], &ctx));
    let started = std::time::Instant::now();
    while second.0.try_wait().unwrap().is_none() {
        assert!(
            started.elapsed() < DEADLINE,
            "the second build still waits for the killed build's step"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let mut out = String::new();
    second
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let second = Ran {
        code: second.0.wait().unwrap().code().unwrap_or(-1),
        stdout: String::new(),
        stderr: out,
    };
    second.ok();
    let (_, done) = step_states(&second.stderr);
    assert!(done.iter().any(|s| s.contains("RUN")), "{}", second.stderr);
}

/// A build SIGKILLed (by its pid, `Child::kill`) when dropped unfinished,
/// then its store opened once so kiln detaches what it left mounted.
struct KilledOnDrop(Child);

impl Drop for KilledOnDrop {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// How long a build may take before a test declares it stuck.
const DEADLINE: std::time::Duration = std::time::Duration::from_secs(120);

/// Whether a process whose command line contains `marker` runs.
fn processes_with(marker: &str) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
        std::fs::read(e.path().join("cmdline"))
            .is_ok_and(|c| String::from_utf8_lossy(&c).contains(marker))
    })
}
