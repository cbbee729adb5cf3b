//! kill -9 at any moment and concurrent kiln processes leave a consistent
//! store: no half-written image is ever listed, temp files of dead
//! processes are gone after the next command, and a retry succeeds.

use crate::support;
use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use support::archive::tar_dir;
use support::kiln::Kiln;

/// 200 files of 1 MiB of xorshift noise (incompressible, cheap to make).
fn big_tree(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let mut x: u64 = 0x9e3779b97f4a7c15;
    let mut buf = vec![0u8; 1 << 20];
    for i in 0..200 {
        for chunk in buf.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes());
        }
        std::fs::write(dir.join(format!("f{i:03}")), &buf).unwrap();
    }
}

/// Bytes under `dir`, recursively.
fn du(dir: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.filter_map(Result::ok)
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => du(&e.path()),
            _ => e.metadata().map(|m| m.len()).unwrap_or(0),
        })
        .sum()
}

fn sigkill(child: &mut std::process::Child) {
    // Only the child this test started, by pid.
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
    let _ = child.wait();
}

/// After a kill: the image is either fully there or absent, and the next
/// command leaves no temp files behind.
fn check_consistent(env: &Kiln) {
    let listed = env.ok(&["images", "-q", "big"]);
    if !listed.trim().is_empty() {
        let json = env.ok(&["inspect", "big:1"]);
        assert!(json.contains("\"RootFS\""), "{json}");
        assert_eq!(env.entries("snapshots").len(), 1);
    }
    assert!(
        env.entries("tmp").is_empty(),
        "stray temp files: {:?}",
        env.entries("tmp")
    );
}

#[test]
fn sigkill_during_import_then_retry() {
    let env = Kiln::new();
    big_tree(&env.path("big"));
    let tar = env.path("big.tar");
    tar_dir(&env.path("big"), &tar);
    let tar_bytes = std::fs::read(&tar).unwrap();
    env.ok(&["images"]);

    // 1. Deterministic: the importer is blocked on a half-sent stdin.
    let mut child = env
        .cmd(&["import", "-", "big:1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&tar_bytes[..tar_bytes.len() / 2]).unwrap();
    stdin.flush().unwrap();
    while du(&env.root().join("tmp")) < 50 << 20 {
        std::thread::sleep(Duration::from_millis(5));
    }
    sigkill(&mut child);
    drop(stdin);
    assert!(
        !env.entries("tmp").is_empty(),
        "the killed import left no scratch dir?"
    );
    check_consistent(&env);
    assert_eq!(env.ok(&["images", "-q"]), "", "half-written image listed");
    assert!(env.entries("snapshots").is_empty());

    // 2. Kills at later, racier moments (after extraction, around the
    //    snapshot rename and the commit): whatever moment it lands on,
    //    the store must stay consistent.
    let moments: [&dyn Fn(&Kiln) -> bool; 3] = [
        &|e: &Kiln| du(&e.root().join("tmp")) > 150 << 20,
        &|e: &Kiln| !e.entries("snapshots").is_empty(),
        &|e: &Kiln| !e.entries("blobs/sha256").is_empty(),
    ];
    for reached in moments {
        let mut child = env
            .cmd(&["import", tar.to_str().unwrap(), "big:1"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        while !reached(&env) {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        sigkill(&mut child);
        check_consistent(&env);
        let _ = env.output(&["rmi", "big:1"]);
        check_consistent(&env);
    }

    // 3. A retry succeeds and leaves exactly one image's worth of data.
    let id = env.ok(&["import", tar.to_str().unwrap(), "big:1"]);
    assert_eq!(env.ok(&["images", "-q", "--no-trunc"]), id);
    assert_eq!(env.entries("snapshots").len(), 1);
    assert_eq!(
        env.entries("blobs/sha256").len(),
        2,
        "config + manifest only"
    );
    assert!(env.entries("tmp").is_empty());
}

#[test]
fn concurrent_processes_import_and_tag() {
    let env = Kiln::new();
    let bb = env.busybox_tar("bb.tar");
    let small = env.path("small");
    std::fs::create_dir_all(small.join("etc")).unwrap();
    std::fs::write(small.join("etc/motd"), b"hi").unwrap();
    let small_tar = env.path("small.tar");
    tar_dir(&small, &small_tar);
    let base = env.ok(&["import", small_tar.to_str().unwrap(), "base:1"]);

    std::thread::scope(|s| {
        let mut handles = Vec::new();
        // Two processes import the same tarball at once (same snapshot:
        // the first rename wins), one imports another.
        for (file, name) in [(&bb, "bb:a"), (&bb, "bb:b"), (&small_tar, "small:x")] {
            let env = &env;
            handles.push(s.spawn(move || env.ok(&["import", file.to_str().unwrap(), name])));
        }
        // Meanwhile another process keeps tagging and listing.
        let env2 = &env;
        handles.push(s.spawn(move || {
            for i in 0..10 {
                env2.ok(&["tag", "base:1", &format!("base:t{i}")]);
                env2.ok(&["images"]);
            }
            String::new()
        }));
        for h in handles {
            h.join().unwrap();
        }
    });
    let images = env.ok(&["images"]);
    for want in [
        "bb           a",
        "bb           b",
        "small        x",
        "base         1",
        "base         t9",
    ] {
        assert!(images.contains(want), "{want:?} missing from\n{images}");
    }
    assert_eq!(env.ok(&["images", "-q", "--no-trunc", "base:t5"]), base);
    // busybox layer shared by bb:a and bb:b, plus the small tree (same
    // content as base:1, so shared too).
    assert_eq!(
        env.entries("snapshots").len(),
        2,
        "{:?}",
        env.entries("snapshots")
    );
    assert!(env.entries("tmp").is_empty(), "{:?}", env.entries("tmp"));
}
