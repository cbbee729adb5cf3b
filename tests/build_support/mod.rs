//! Shared fixture for the `kiln build` tests: a private store holding
//! `busybox:latest` (made with `kiln import` from a rootfs that
//! `busybox --install -s` populated), contexts in temp dirs, and helpers
//! to build, run and inspect images with the real binary.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The kiln binary under test.
pub const KILN: &str = env!("CARGO_BIN_EXE_kiln");

/// A temp dir with a store (`root/`) that has `busybox:latest`; removed
/// on drop (nothing stays mounted: builds unmount their views).
pub struct Kiln {
    pub dir: tempfile::TempDir,
    contexts: std::cell::Cell<u32>,
}

/// What a kiln command printed and returned.
#[derive(Debug)]
pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    fn from(out: Output) -> Ran {
        Ran {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Asserts success; returns stdout.
    #[track_caller]
    pub fn ok(&self) -> &str {
        assert_eq!(
            self.code, 0,
            "kiln failed:\n{}\n{}",
            self.stderr, self.stdout
        );
        &self.stdout
    }

    /// Asserts failure; returns stderr.
    #[track_caller]
    pub fn fails(&self) -> &str {
        assert_ne!(
            self.code, 0,
            "kiln succeeded unexpectedly:\n{}",
            self.stderr
        );
        &self.stderr
    }
}

/// Makes a busybox rootfs at `root`: the binary at /bin/busybox, applet
/// symlinks from `busybox --install -s`, passwd/group with root, nobody
/// and a `tester` user (1000:1000, also in group `extra` 1001).
pub fn busybox_rootfs(root: &Path) {
    let bin = root.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy("/bin/busybox", bin.join("busybox")).unwrap();
    let st = Command::new("/bin/busybox")
        .arg("--install")
        .arg("-s")
        .arg(&bin)
        .status()
        .expect("busybox --install");
    assert!(st.success());
    // --install links to the path busybox was run as (resolved on the
    // host, /usr/bin/busybox on merged-/usr systems): make it resolve.
    let usr_bin = root.join("usr/bin");
    std::fs::create_dir_all(&usr_bin).unwrap();
    if !usr_bin.join("busybox").exists() {
        std::os::unix::fs::symlink("/bin/busybox", usr_bin.join("busybox")).unwrap();
    }
    let etc = root.join("etc");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::write(
        etc.join("passwd"),
        "root:x:0:0:root:/root:/bin/sh\ntester:x:1000:1000::/home/tester:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
    )
    .unwrap();
    std::fs::write(
        etc.join("group"),
        "root:x:0:\ntester:x:1000:\nextra:x:1001:tester\nnogroup:x:65534:\n",
    )
    .unwrap();
    for d in ["root", "tmp", "home/tester"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(root.join("tmp"), std::fs::Permissions::from_mode(0o1777)).unwrap();
    std::os::unix::fs::chown(root.join("home/tester"), Some(1000), Some(1000)).unwrap();
}

impl Kiln {
    /// A fresh store with `busybox:latest` imported.
    pub fn new() -> Kiln {
        let dir = tempfile::Builder::new()
            .prefix("kiln-build-")
            .tempdir()
            .unwrap();
        let k = Kiln {
            dir,
            contexts: std::cell::Cell::new(0),
        };
        let rootfs = k.dir.path().join("busybox-rootfs");
        busybox_rootfs(&rootfs);
        let tar = k.dir.path().join("busybox.tar");
        let st = Command::new("tar")
            .arg("-C")
            .arg(&rootfs)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .status()
            .unwrap();
        assert!(st.success());
        k.kiln(&["import", tar.to_str().unwrap(), "busybox:latest"])
            .ok();
        k
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// `kiln --root <root> args...` with stdin null.
    pub fn kiln(&self, args: &[&str]) -> Ran {
        Ran::from(self.cmd(args).stdin(Stdio::null()).output().unwrap())
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(KILN);
        c.arg("--root").arg(self.root()).args(args);
        c.env_remove("SOURCE_DATE_EPOCH");
        c
    }

    /// A new context directory holding `files` (path, content); a path
    /// ending in `/` is a directory.
    pub fn context(&self, files: &[(&str, &str)]) -> PathBuf {
        let n = self.contexts.get();
        self.contexts.set(n + 1);
        let dir = self.dir.path().join(format!("ctx-{n}"));
        std::fs::create_dir_all(&dir).unwrap();
        for (path, content) in files {
            let p = dir.join(path);
            if path.ends_with('/') {
                std::fs::create_dir_all(&p).unwrap();
                continue;
            }
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, content).unwrap();
        }
        dir
    }

    /// `kiln build --progress plain <flags> <ctx>`.
    pub fn build(&self, ctx: &Path, flags: &[&str]) -> Ran {
        let mut args = vec!["build", "--progress", "plain"];
        args.extend_from_slice(flags);
        let ctx = ctx.to_str().unwrap();
        args.push(ctx);
        self.kiln(&args)
    }

    /// Builds `dockerfile` (written into `ctx`) tagged `tag`; asserts
    /// success and returns the progress output.
    #[track_caller]
    pub fn build_ok(&self, ctx: &Path, dockerfile: &str, tag: &str, flags: &[&str]) -> String {
        std::fs::write(ctx.join("Dockerfile"), dockerfile).unwrap();
        let mut all = vec!["-t", tag];
        all.extend_from_slice(flags);
        let ran = self.build(ctx, &all);
        ran.ok();
        ran.stderr
    }

    /// `kiln run --rm <image> <cmd...>`.
    pub fn run(&self, image: &str, cmd: &[&str]) -> Ran {
        let mut args = vec!["run", "--rm", image];
        args.extend_from_slice(cmd);
        self.kiln(&args)
    }

    /// Runs a shell script in the image and returns its stdout.
    #[track_caller]
    pub fn sh(&self, image: &str, script: &str) -> String {
        self.run(image, &["sh", "-c", script]).ok().to_string()
    }

    /// `kiln inspect --format <format> <image>`, trimmed.
    #[track_caller]
    pub fn inspect(&self, image: &str, format: &str) -> String {
        self.kiln(&["inspect", "--format", format, image])
            .ok()
            .trim()
            .to_string()
    }

    /// The image's config as JSON (`kiln inspect`'s first element).
    #[track_caller]
    pub fn config(&self, image: &str) -> serde_json::Value {
        let out = self.kiln(&["inspect", image]).ok().to_string();
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        v[0].clone()
    }

    /// The image config blob (OCI config JSON, with history).
    #[track_caller]
    pub fn config_blob(&self, image: &str) -> serde_json::Value {
        let id = self.inspect(image, "{{.Id}}");
        let hex = id.strip_prefix("sha256:").unwrap();
        let bytes = std::fs::read(self.root().join("blobs/sha256").join(hex)).unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    /// Each history entry's `created_by` and whether it made a layer,
    /// oldest first.
    #[track_caller]
    pub fn history(&self, image: &str) -> Vec<(String, bool)> {
        self.config_blob(image)["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                (
                    h["created_by"].as_str().unwrap_or_default().to_string(),
                    !h["empty_layer"].as_bool().unwrap_or(false),
                )
            })
            .collect()
    }

    /// The lines of a cache mount's file, by cache id.
    pub fn cache_file(&self, id: &str, file: &str) -> Vec<String> {
        let name: String = id
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"._-".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        std::fs::read_to_string(self.root().join("cache-mounts").join(name).join(file))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

/// The names of the steps a plain progress output shows as CACHED, and
/// those it shows as run (DONE).
pub fn step_states(progress: &str) -> (Vec<String>, Vec<String>) {
    let mut names = std::collections::HashMap::new();
    let (mut cached, mut done) = (Vec::new(), Vec::new());
    for line in progress.lines() {
        let Some(rest) = line.strip_prefix('#') else {
            continue;
        };
        let Some((n, text)) = rest.split_once(' ') else {
            continue;
        };
        if text == "CACHED" {
            cached.push(names.get(n).cloned().unwrap_or_default());
        } else if text.starts_with("DONE ") {
            done.push(names.get(n).cloned().unwrap_or_default());
        } else if text.starts_with('[') && !names.contains_key(n) {
            names.insert(n.to_string(), text.to_string());
        }
    }
    (cached, done)
}
