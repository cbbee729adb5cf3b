//! `kiln run IMAGE` end to end: images from the store (imported, built
//! through the Store API, pulled from a real registry) run with docker's
//! rules for the image config, leave the image untouched and nothing
//! behind. Needs root (namespaces, overlay), as the test machines give.

use crate::support;

use kiln::cache::Store;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};
use support::kiln::{host_mounts_under, ran, Kiln, Ran};
use support::registry::TestRegistry;

/// A fresh store with the busybox rootfs imported as `tag` with `changes`
/// (each a Dockerfile instruction for `--change`).
fn with_image(tag: &str, changes: &[&str]) -> Kiln {
    let env = Kiln::new();
    import(&env, tag, changes);
    env
}

fn import(env: &Kiln, tag: &str, changes: &[&str]) {
    let tar = env.path("busybox.tar");
    if !tar.exists() {
        env.busybox_tar("busybox.tar");
    }
    let mut args = vec!["import"];
    for c in changes {
        args.extend(["--change", c]);
    }
    let tar = tar.to_string_lossy().into_owned();
    args.extend([tar.as_str(), tag]);
    env.ok(&args);
}

/// `kiln --root <root> run <args>` with stdin null.
fn run(env: &Kiln, args: &[&str]) -> Ran {
    env.kiln(&[&["run"][..], args].concat())
}

/// Every file under `dir` with its size and mode: what a container must
/// never change in an image's snapshots.
fn tree(dir: &Path) -> BTreeMap<PathBuf, (u64, u32)> {
    use std::os::unix::fs::MetadataExt;
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let m = e.path().symlink_metadata().unwrap();
            out.insert(e.path(), (m.len(), m.mode()));
            if m.is_dir() {
                todo.push(e.path());
            }
        }
    }
    out
}

#[test]
fn runs_a_command_and_the_image_cmd_by_default() {
    let env = with_image("bb", &[r#"CMD ["echo", "from-cmd"]"#]);
    assert_eq!(run(&env, &["--rm", "bb", "echo", "hi"]).ok(), "hi\n");
    assert_eq!(run(&env, &["--rm", "bb"]).ok(), "from-cmd\n");
    // name:tag, short and full IDs find the same image
    let id = env
        .ok(&["images", "-q", "--no-trunc", "bb"])
        .trim()
        .to_string();
    for spec in ["bb:latest", &id, &id[7..19]] {
        assert_eq!(
            run(&env, &["--rm", spec, "echo", "ok"]).ok(),
            "ok\n",
            "{spec}"
        );
    }
}

#[test]
fn entrypoint_and_cmd_combine_like_docker() {
    let env = with_image(
        "ep",
        &[r#"ENTRYPOINT ["echo", "ep"]"#, r#"CMD ["from-cmd"]"#],
    );
    let out = |args: &[&str]| run(&env, args).ok().to_string();
    assert_eq!(out(&["--rm", "ep"]), "ep from-cmd\n");
    assert_eq!(out(&["--rm", "ep", "x", "y"]), "ep x y\n");
    // --entrypoint drops the image's CMD
    assert_eq!(out(&["--rm", "--entrypoint", "/bin/echo", "ep"]), "\n");
    assert_eq!(
        out(&["--rm", "--entrypoint", "/bin/echo", "ep", "a"]),
        "a\n"
    );
    assert_eq!(out(&["--rm", "--entrypoint", "", "ep", "echo", "b"]), "b\n");
    let none = run(&env, &["--rm", "--entrypoint", "", "ep"]);
    assert_eq!(none.code, 125, "{none:?}");
    assert!(none.stderr.contains("No command specified"), "{none:?}");
    assert!(env.containers().is_empty());
}

#[test]
fn env_comes_from_the_image_and_flags_override_it() {
    let env = with_image("e", &[r#"CMD ["sh"]"#, "ENV A=b", "ENV B=img"]);
    let script = "echo $A $B; echo $PATH";
    assert_eq!(
        run(&env, &["--rm", "e", "sh", "-c", script]).ok(),
        "b img\n/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
    );
    let file = env.path("envfile");
    std::fs::write(&file, "B=file\n").unwrap();
    let file = file.to_string_lossy().into_owned();
    assert_eq!(
        run(
            &env,
            &[
                "--rm",
                "-e",
                "A=flag",
                "--env-file",
                &file,
                "e",
                "sh",
                "-c",
                "echo $A $B"
            ]
        )
        .ok(),
        "flag file\n"
    );
    // an image PATH replaces the default
    let env = with_image("p", &["ENV PATH=/bin"]);
    assert_eq!(
        run(&env, &["--rm", "p", "sh", "-c", "echo $PATH"]).ok(),
        "/bin\n"
    );
}

#[test]
fn workdir_and_user_come_from_the_image_unless_overridden() {
    let env = with_image("wu", &["WORKDIR /data", "USER 1000:1001"]);
    let script = "pwd; id -u; id -g";
    assert_eq!(
        run(&env, &["--rm", "wu", "sh", "-c", script]).ok(),
        "/data\n1000\n1001\n"
    );
    assert_eq!(
        run(
            &env,
            &["--rm", "-w", "/tmp", "-u", "0", "wu", "sh", "-c", script]
        )
        .ok(),
        "/tmp\n0\n0\n"
    );
}

#[test]
fn exit_status_is_passed_through() {
    let env = with_image("x", &[]);
    let r = run(&env, &["--rm", "x", "sh", "-c", "exit 42"]);
    assert_eq!(r.code, 42, "{r:?}");
    let r = run(&env, &["--rm", "x", "/no/such/binary"]);
    assert_eq!(r.code, 127, "{r:?}");
}

#[test]
fn writes_stay_in_the_container_and_nothing_is_left_behind() {
    let env = with_image("w", &[]);
    let snapshots = env.root().join("snapshots");
    let before = tree(&snapshots);
    let write = "echo x > /bin/echo-was-here; rm /bin/ls; mkdir /newdir";
    run(&env, &["--rm", "w", "sh", "-c", write]).ok();
    let check =
        "test -e /bin/echo-was-here || test -e /newdir || echo clean; test -e /bin/ls && echo ls";
    assert_eq!(
        run(&env, &["--rm", "w", "sh", "-c", check]).ok(),
        "clean\nls\n"
    );
    // kept (no --rm): the writes live in the container's own state dir
    run(&env, &["w", "sh", "-c", write]).ok();
    assert_eq!(env.containers().len(), 1);
    assert_eq!(tree(&snapshots), before, "an image snapshot changed");
    assert_eq!(
        run(&env, &["--rm", "w", "sh", "-c", check]).ok(),
        "clean\nls\n"
    );
    assert!(host_mounts_under(&env.root()).is_empty());
}

#[test]
fn rm_leaves_no_state_and_no_mounts() {
    let env = with_image("r", &[]);
    for args in [
        &["--rm", "r", "true"][..],
        &["--rm", "r", "sh", "-c", "exit 3"],
        &["--rm", "r", "/no/such/binary"],
    ] {
        run(&env, args);
        assert!(env.containers().is_empty(), "{args:?} left state behind");
        assert!(
            host_mounts_under(&env.root()).is_empty(),
            "{args:?} left mounts"
        );
    }
}

#[test]
fn missing_image_with_pull_never_is_docker_error() {
    let env = with_image("n", &[]);
    let r = run(&env, &["--rm", "--pull", "never", "nothere", "true"]);
    assert_eq!(r.code, 125, "{r:?}");
    assert!(r.stderr.contains("No such image: nothere"), "{r:?}");
    assert!(!r.stderr.contains("Unable to find image"), "{r:?}");
}

/// An image with no layers at all (an empty tar imported) still runs:
/// here a binary bound in from the host.
#[test]
fn image_without_layers_runs_on_an_empty_root() {
    let env = Kiln::new();
    let empty = env.path("empty.tar");
    std::fs::write(&empty, support::archive::write(&[])).unwrap();
    env.ok(&["import", empty.to_str().unwrap(), "scratch-ish"]);
    let r = run(
        &env,
        &[
            "--rm",
            "-v",
            "/bin/busybox:/busybox:ro",
            "scratch-ish",
            "/busybox",
            "echo",
            "hi",
        ],
    );
    assert_eq!(r.ok(), "hi\n");
    let r = run(&env, &["--rm", "scratch-ish"]);
    assert_eq!(r.code, 125, "{r:?}");
    assert!(r.stderr.contains("No command specified"), "{r:?}");
}

/// 200 layers, each adding one file, made through the Store API the way a
/// build commits RUN steps; all of them are visible in the container.
#[test]
fn image_with_200_layers_starts() {
    let env = with_image("base", &[]);
    {
        let store = Store::open(&env.root()).unwrap();
        let base = store.image("base").unwrap();
        let mut layers = base.layers.clone();
        for i in 0..199 {
            let upper = store.scratch_path("upper").unwrap();
            std::fs::create_dir_all(upper.join("layers")).unwrap();
            std::fs::write(upper.join(format!("layers/{i:03}")), i.to_string()).unwrap();
            let parent = layers.last().map(|l| l.chain_id.clone());
            layers.push(store.add_layer_from_dir(&upper, parent.as_ref()).unwrap());
        }
        let mut config = base.config.clone();
        config.rootfs.diff_ids = layers.iter().map(|l| l.diff_id.clone()).collect();
        config.history.clear();
        let name = kiln::image::ImageRef::parse("deep").unwrap();
        let image = store.write_image(&config, &layers, &[name]).unwrap();
        assert_eq!(image.layers.len(), 200);
    }
    let out = run(
        &env,
        &[
            "--rm",
            "deep",
            "sh",
            "-c",
            "ls /layers | wc -l; cat /layers/198",
        ],
    );
    assert_eq!(out.ok(), "199\n198");
}

/// `rmi` while a container runs only removes the name: the lease keeps
/// the layers until the container is gone, then they are collected.
#[test]
fn rmi_during_a_run_keeps_the_layers_until_it_exits() {
    let env = with_image("busy", &[]);
    let sync = env.path("sync");
    std::fs::create_dir(&sync).unwrap();
    let volume = format!("{}:/sync", sync.display());
    let script = "touch /sync/started; while [ ! -e /sync/go ]; do sleep 0.05; done; echo survived";
    let child = env
        .cmd(&["run", "--rm", "-v", &volume, "busy", "sh", "-c", script])
        .stdin(Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !sync.join("started").exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let rmi = env.output(&["rmi", "busy"]);
    std::fs::write(sync.join("go"), b"").unwrap();
    let out: Output = child.wait_with_output().unwrap();
    assert!(rmi.status.success(), "{rmi:?}");
    let r = ran(out);
    assert_eq!(r.ok(), "survived\n");
    assert!(env.ok(&["images", "-q"]).trim().is_empty());
    // Nothing holds the layers now: the next store user collects them.
    drop(Store::open(&env.root()).unwrap());
    assert!(
        env.entries("snapshots").is_empty(),
        "{:?}",
        env.entries("snapshots")
    );
}

/// docker's pull-on-missing: push to a real registry, remove it locally,
/// and `kiln run` pulls it (status on stderr), then runs it.
#[test]
fn a_missing_image_is_pulled_from_its_registry() {
    let registry = TestRegistry::start();
    let env = with_image("bb", &[r#"CMD ["echo", "pulled"]"#]);
    let remote = format!("{}/test/bb", registry.host());
    env.ok(&["tag", "bb", &remote]);
    env.ok(&["push", &remote]);
    env.ok(&["rmi", "bb", &remote]);
    let r = run(&env, &["--rm", &remote]);
    assert_eq!(r.ok(), "pulled\n", "{r:?}");
    assert!(
        r.stderr
            .starts_with(&format!("Unable to find image '{remote}:latest' locally\n")),
        "{r:?}"
    );
    assert!(r.stderr.contains("Pull complete"), "{r:?}");
    // now it is local: no pull
    let r = run(&env, &["--rm", &remote, "echo", "again"]);
    assert_eq!(r.ok(), "again\n");
    assert!(r.stderr.is_empty(), "{r:?}");
    // --pull always asks the registry even so
    let r = run(&env, &["--rm", "--pull", "always", &remote, "echo", "x"]);
    assert_eq!(r.ok(), "x\n");
    assert!(r.stderr.contains("Image is up to date"), "{r:?}");
}
