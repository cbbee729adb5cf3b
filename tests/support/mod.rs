//! Shared fixtures for tests that drive the real `kiln` binary: a busybox
//! root filesystem in a temp dir and a runner for `kiln run`.
//!
//! These tests need root (namespaces, mounts), which the test machines give.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The kiln binary under test.
pub const KILN: &str = env!("CARGO_BIN_EXE_kiln");

/// A temp dir holding a busybox rootfs (`rootfs/`) and a kiln store
/// (`root/`); removed on drop. Nothing is ever mounted in it on the host.
pub struct Fixture {
    pub dir: tempfile::TempDir,
}

/// What a `kiln run` printed and returned.
#[derive(Debug)]
pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    /// Asserts success and returns stdout.
    #[track_caller]
    pub fn ok(&self) -> &str {
        assert_eq!(self.code, 0, "kiln run failed: {self:?}");
        &self.stdout
    }
}

impl Fixture {
    /// Builds the rootfs: busybox and its applets in /bin (what `busybox
    /// --install -s` makes, with links that resolve inside the rootfs),
    /// /etc/passwd and /etc/group with a test user `tester` (1000:1000, also
    /// in group `extra` 1001) and a directory for /home/tester.
    pub fn new() -> Fixture {
        let dir = tempfile::Builder::new()
            .prefix("kiln-test-")
            .tempdir()
            .unwrap();
        make_rootfs(&dir.path().join("rootfs"));
        std::fs::create_dir(dir.path().join("root")).unwrap();
        Fixture { dir }
    }

    pub fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// The `kiln --root <root> run` command line, ready for more flags.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(KILN);
        cmd.arg("--root").arg(self.root()).arg("run");
        cmd
    }

    /// Runs `kiln run <flags> --rootfs <rootfs> <cmd...>` with stdin null.
    pub fn run(&self, flags: &[&str], cmd: &[&str]) -> Ran {
        let mut c = self.command();
        c.args(flags).arg("--rootfs").arg(self.rootfs()).args(cmd);
        c.stdin(Stdio::null());
        ran(c.output().unwrap())
    }

    /// Runs a shell script in a `--rm` container.
    pub fn sh(&self, script: &str) -> Ran {
        self.run(&["--rm"], &["sh", "-c", script])
    }

    /// The state dirs present under `<root>/containers`.
    pub fn containers(&self) -> Vec<String> {
        match std::fs::read_dir(self.root().join("containers")) {
            Err(_) => Vec::new(),
            Ok(rd) => rd
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n != "names")
                .collect(),
        }
    }
}

pub fn ran(out: Output) -> Ran {
    Ran {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

pub fn make_rootfs(root: &Path) {
    let bin = root.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy("/bin/busybox", bin.join("busybox")).unwrap();
    let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
    for applet in String::from_utf8(list.stdout).unwrap().lines() {
        if applet != "busybox" {
            std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
        }
    }
    let etc = root.join("etc");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::write(
        etc.join("passwd"),
        "root:x:0:0:root:/root:/bin/sh\ntester:x:1000:1000:Test User:/home/tester:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(
        etc.join("group"),
        "root:x:0:\ntester:x:1000:\nextra:x:1001:tester\n",
    )
    .unwrap();
    for d in ["root", "home/tester", "tmp", "mnt"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
}

/// Lines of the host's mountinfo that mention `path`.
pub fn host_mounts_under(path: &Path) -> Vec<String> {
    let needle = path.to_string_lossy().into_owned();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(&needle))
        .map(str::to_string)
        .collect()
}
