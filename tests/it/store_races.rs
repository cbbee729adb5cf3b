//! The store under concurrent prunes and kills: builds beside a prune
//! loop, a GC killed mid-sweep, a `kiln run --rm` killed mid-run.

use crate::support;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use support::kiln::Kiln;
use support::registry::TestRegistry;

fn sigkill(child: &mut Child) {
    // Only the child this test started, by pid.
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
    let _ = child.wait();
}

/// Polls `cond` every few ms while `child` runs; false if it exited first.
fn wait_while_running(child: &mut Child, mut cond: impl FnMut() -> bool) -> bool {
    loop {
        if cond() {
            return true;
        }
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[track_caller]
fn check_ok(env: &Kiln) {
    let r = env.kiln(&["system", "check"]);
    assert_eq!(r.code, 0, "kiln system check: {r:?}");
}

/// Regression: with `builder prune` and `image prune -a` looping beside
/// them, builds failed (`snapshot of layer … is missing and no blob holds
/// it`: the base image and cache hits were used after being looked up
/// without a lease) and some returned images whose layers were gone.
/// The base image lives in a local registry so that a build finding it
/// pruned pulls it again (a pull leases what it fetches until the image
/// is recorded and then held).
#[test]
fn builds_succeed_and_their_images_run_while_prunes_loop() {
    let registry = TestRegistry::start();
    let env = Kiln::new();
    env.import_busybox("bb:1");
    let base = format!("{}/races/bb:1", registry.host());
    env.ok(&["tag", "bb:1", &base]);
    env.ok(&["push", &base]);
    let ctx = env.context(&[("f", "from the context\n")]);
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("FROM {base}\nARG N\nRUN echo run-$N > /n\nCOPY f /f\nRUN cat /n /f > /both\n"),
    )
    .unwrap();
    let done = AtomicBool::new(false);
    let mut prunes = 0;
    std::thread::scope(|s| {
        let pruner = s.spawn(|| {
            let mut n = 0;
            while !done.load(Ordering::SeqCst) {
                env.ok(&["builder", "prune", "-f"]);
                env.ok(&["image", "prune", "-a", "-f"]);
                n += 1;
            }
            n
        });
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut ran = 0;
            for i in 0..40 {
                let tag = format!("r:{i}");
                let arg = format!("N={}", i % 4);
                let b = env.kiln(&[
                    "build",
                    "-q",
                    "-t",
                    &tag,
                    "--build-arg",
                    &arg,
                    ctx.to_str().unwrap(),
                ]);
                assert_eq!(b.code, 0, "build {i} failed: {b:?}");
                // The image may be pruned by now (that is what `image
                // prune -a` does); if it is still there, it runs.
                let r = env.kiln(&["run", "--rm", "--pull", "never", &tag, "cat", "/both"]);
                if r.code == 0 {
                    assert_eq!(r.stdout, format!("run-{}\nfrom the context\n", i % 4));
                    ran += 1;
                } else {
                    assert!(
                        r.stderr.contains("No such image"),
                        "image of build {i} does not run: {r:?}"
                    );
                }
            }
            ran
        }));
        done.store(true, Ordering::SeqCst);
        prunes = pruner.join().expect("a prune failed");
        match result {
            Ok(ran) => eprintln!("{ran} of 40 images ran before a prune took them"),
            Err(p) => std::panic::resume_unwind(p),
        }
    });
    assert!(prunes > 0);
    check_ok(&env);
    // What is left after the last prune is whole: build once more and run.
    env.ok(&[
        "build",
        "-q",
        "-t",
        "r:last",
        "--build-arg",
        "N=9",
        ctx.to_str().unwrap(),
    ]);
    assert_eq!(
        env.ok(&["run", "--rm", "r:last", "cat", "/both"]),
        "run-9\nfrom the context\n"
    );
}

/// Files in `dir` (none if it does not exist).
fn names_in(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Regression: GC unlinked blob files before its transaction committed,
/// so a SIGKILL in between left rows whose files were gone and `save` and
/// `push` failed with `blob … not found in the store`. Now the rows go
/// first and the files after; the next store open finishes the sweep.
#[test]
fn a_gc_killed_mid_sweep_leaves_save_push_and_check_working() {
    let registry = TestRegistry::start();
    let env = Kiln::with_busybox_image();
    let ctx = env.context(&[("a", "keep me\n")]);
    env.build_ok(
        &ctx,
        "FROM busybox\nRUN echo one > /one\nCOPY a /a\nRUN echo two > /two\n",
        "app:1",
        &[],
    );
    env.build_ok(
        &ctx,
        "FROM busybox\nRUN echo junk1 > /j1\nRUN echo junk2 > /j2\nRUN echo junk3 > /j3\n",
        "junk:1",
        &[],
    );
    // Leave the junk to GC alone: no cache record may keep it.
    env.ok(&["builder", "prune", "-f"]);
    let trash = env.root().join("trash");
    let mut gc = env
        .cmd(&["rmi", "junk:1"])
        .env("KILN_TEST_GC_UNLINK_DELAY_MS", "400")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The sweep committed and is deleting: kill it after its first unlink.
    let mut doomed_at_first = None;
    let mid_sweep = wait_while_running(&mut gc, || {
        for d in names_in(&trash) {
            if d.ends_with(".doomed") {
                let n = names_in(&trash.join(&d)).len();
                match doomed_at_first {
                    None => doomed_at_first = Some(n),
                    Some(first) if n < first => return true,
                    Some(_) => {}
                }
            }
        }
        false
    });
    assert!(mid_sweep, "the sweep ended before it could be killed");
    sigkill(&mut gc);
    assert!(
        names_in(&trash).iter().any(|d| d.ends_with(".doomed")),
        "the killed sweep left nothing to finish?"
    );

    check_ok(&env);
    assert!(names_in(&trash).is_empty(), "{:?}", names_in(&trash));
    let archive = env.path("app.tar");
    env.ok(&["save", "-o", archive.to_str().unwrap(), "app:1"]);
    let remote = format!("{}/gc/app:1", registry.host());
    env.ok(&["tag", "app:1", &remote]);
    env.ok(&["push", &remote]);
    // The junk is really gone, and comes back whole from a rebuild.
    assert!(env.ok(&["images", "-q", "junk"]).trim().is_empty());
    env.build_ok(
        &ctx,
        "FROM busybox\nRUN echo junk1 > /j1\nRUN echo junk2 > /j2\nRUN echo junk3 > /j3\n",
        "junk:1",
        &[],
    );
    assert_eq!(env.sh("junk:1", "cat /j1 /j3"), "junk1\njunk3\n");
    check_ok(&env);
}

/// `kiln system check` reports a blob whose file was lost (and exits
/// non-zero), and a pull fetches it again: a row without its file is not
/// "present". A lost snapshot no blob can rebuild is reported, and
/// `--repair` drops the image that needed it.
#[test]
fn system_check_reports_lost_files_and_pull_and_repair_recover() {
    let registry = TestRegistry::start();
    let env = Kiln::with_busybox_image();
    let remote = format!("{}/check/bb:1", registry.host());
    env.ok(&["tag", "busybox", &remote]);
    env.ok(&["push", &remote]);
    check_ok(&env);
    let config = env.ok(&["images", "-q", "--no-trunc", "busybox"]);
    let hex = config.trim().trim_start_matches("sha256:").to_string();
    std::fs::remove_file(env.root().join("blobs/sha256").join(&hex)).unwrap();
    let r = env.kiln(&["system", "check"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stdout.contains(&format!("blob sha256:{hex}")), "{r:?}");
    env.ok(&["pull", &remote]);
    check_ok(&env);
    assert_eq!(env.sh("busybox", "echo pulled"), "pulled\n");

    let before = env.entries("snapshots");
    let ctx = env.context(&[]);
    env.build_ok(&ctx, "FROM busybox\nRUN echo x > /x\n", "app:1", &[]);
    let made: Vec<String> = env
        .entries("snapshots")
        .into_iter()
        .filter(|s| !before.contains(s))
        .collect();
    assert_eq!(made.len(), 1, "{made:?}");
    std::fs::remove_dir_all(env.root().join("snapshots").join(&made[0])).unwrap();
    let r = env.kiln(&["system", "check"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stdout.contains(&made[0]), "{r:?}");
    let r = env.kiln(&["system", "check", "--repair"]);
    assert_eq!(r.code, 0, "{r:?}");
    check_ok(&env);
    assert!(env.ok(&["images", "-q", "app"]).trim().is_empty());
    assert_eq!(env.sh("busybox", "echo still"), "still\n");
}

/// Processes whose command line is exactly `argv`.
fn processes_running(argv: &[&str]) -> usize {
    let want: Vec<u8> = argv
        .iter()
        .flat_map(|a| [a.as_bytes(), b"\0"].concat())
        .collect();
    names_in(Path::new("/proc"))
        .iter()
        .filter(|p| p.bytes().all(|b| b.is_ascii_digit()))
        .filter(|p| std::fs::read(format!("/proc/{p}/cmdline")).is_ok_and(|c| c == want))
        .count()
}

/// Regression: a SIGKILLed `kiln run --rm` left `<root>/containers/<id>`
/// with all its writes, and its `--name` taken for good. The container
/// dies with its kiln (PR_SET_PDEATHSIG on its init); the next `kiln run`
/// removes what a dead `--rm` run left and the name is free again.
#[test]
fn a_killed_run_rm_frees_its_dir_and_name() {
    let env = Kiln::with_busybox_image();
    let sync = env.path("sync");
    std::fs::create_dir(&sync).unwrap();
    let volume = format!("{}:/sync", sync.display());
    // A sleep no other process on the machine runs.
    let nap = "4711";
    let script = format!(
        "dd if=/dev/zero of=/big bs=1M count=50 2>/dev/null; touch /sync/written; exec sleep {nap}"
    );
    let mut child = env
        .cmd(&[
            "run", "--rm", "--name", "held", "-v", &volume, "busybox", "sh", "-c", &script,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(env.path("run.err")).unwrap())
        .spawn()
        .unwrap();
    let written = wait_while_running(&mut child, || sync.join("written").exists());
    assert!(
        written,
        "the container ended early: {}",
        std::fs::read_to_string(env.path("run.err")).unwrap()
    );
    let ids = env.containers();
    assert_eq!(ids.len(), 1, "{ids:?}");
    let dir = env.root().join("containers").join(&ids[0]);
    sigkill(&mut child);
    // The container's processes die with their kiln.
    let mut polls = 0;
    while processes_running(&["sleep", nap]) > 0 {
        polls += 1;
        assert!(polls < 5000, "the container outlived its kiln");
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(dir.exists(), "nothing to clean up?");

    assert_eq!(
        env.ok(&["run", "--rm", "--name", "held", "busybox", "echo", "free"]),
        "free\n"
    );
    assert!(!dir.exists(), "the killed run's state dir is still there");
    assert!(env.containers().is_empty(), "{:?}", env.containers());
    assert!(
        env.root()
            .join("containers/names/held")
            .symlink_metadata()
            .is_err(),
        "the name is still taken"
    );
}
