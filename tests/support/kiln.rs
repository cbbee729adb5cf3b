//! The kiln binary under test, run against a private store: a temp dir
//! holding the store (`root/`) and whatever the test puts next to it
//! (a busybox `rootfs/`, build contexts, tarballs), removed on drop.
//!
//! Nothing stays mounted in it on the host: `kiln run` and builds unmount
//! their views, and tests that kill kiln check for leftovers themselves.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// The kiln binary under test.
pub const KILN: &str = env!("CARGO_BIN_EXE_kiln");

/// The name every test dir starts with, so a leftover one is easy to
/// trace back to the tests.
pub const TEMP_PREFIX: &str = "kiln-test-";

/// A private store in a temp dir; see the module docs.
pub struct Kiln {
    pub dir: tempfile::TempDir,
    /// Build contexts made so far (each gets its own dir). Atomic so that
    /// a `&Kiln` can be shared by threads running kiln concurrently.
    contexts: AtomicU32,
}

/// What a kiln command printed and returned.
#[derive(Debug)]
pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    /// Asserts success; returns stdout.
    #[track_caller]
    pub fn ok(&self) -> &str {
        assert_eq!(
            self.code, 0,
            "kiln failed with exit code {}\nstderr:\n{}\nstdout:\n{}",
            self.code, self.stderr, self.stdout
        );
        &self.stdout
    }

    /// Asserts failure; returns stderr.
    #[track_caller]
    pub fn fails(&self) -> &str {
        assert_ne!(
            self.code, 0,
            "kiln succeeded unexpectedly\nstderr:\n{}\nstdout:\n{}",
            self.stderr, self.stdout
        );
        &self.stderr
    }

    /// Asserts failure with exit code `code` exactly; returns stderr.
    #[track_caller]
    pub fn fails_with(&self, code: i32) -> &str {
        assert_eq!(
            self.code, code,
            "kiln exited with {} where {code} was expected\nstderr:\n{}\nstdout:\n{}",
            self.code, self.stderr, self.stdout
        );
        &self.stderr
    }
}

/// A finished process's output as a [`Ran`] (exit code -1 when killed by
/// a signal).
pub fn ran(out: Output) -> Ran {
    Ran {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

impl Kiln {
    /// An empty store (kiln creates it on first use).
    pub fn new() -> Kiln {
        Kiln {
            dir: tempfile::Builder::new()
                .prefix(TEMP_PREFIX)
                .tempdir()
                .expect("creating a temp dir for the test store"),
            contexts: AtomicU32::new(0),
        }
    }

    /// An empty store plus the busybox rootfs at [`Kiln::rootfs`], for
    /// `kiln run --rootfs`.
    pub fn with_busybox_rootfs() -> Kiln {
        let k = Kiln::new();
        super::busybox::write_rootfs(&k.rootfs());
        k
    }

    /// A store holding the busybox rootfs imported as `busybox:latest`,
    /// what the build tests start `FROM`.
    pub fn with_busybox_image() -> Kiln {
        let k = Kiln::new();
        k.import_busybox("busybox:latest");
        k
    }

    /// The store (`--root`).
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// `p` inside the temp dir, next to the store.
    pub fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// Where [`Kiln::with_busybox_rootfs`] put the rootfs.
    pub fn rootfs(&self) -> PathBuf {
        self.path("rootfs")
    }

    /// The `kiln --root <root> args...` command line, ready for more. The
    /// host's `SOURCE_DATE_EPOCH`, docker and podman credentials and
    /// registry certificates (certs.d) are kept out so that results depend
    /// on the test alone.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(KILN);
        c.arg("--root").arg(self.root()).args(args);
        c.env_remove("SOURCE_DATE_EPOCH");
        c.env("DOCKER_CONFIG", self.path("no-docker-config"));
        c.env_remove("REGISTRY_AUTH_FILE");
        c.env("XDG_RUNTIME_DIR", self.path("no-xdg-runtime"));
        c.env("XDG_CONFIG_HOME", self.path("no-xdg-config"));
        c.env(kiln::image::registry::CERTS_D_ENV, self.path("no-certs.d"));
        c
    }

    /// Runs `kiln --root <root> args...` with stdin null; raw output, for
    /// binary stdout (`kiln save`).
    pub fn output(&self, args: &[&str]) -> Output {
        self.cmd(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("running {KILN} {args:?}: {e}"))
    }

    /// Runs `kiln --root <root> args...` with stdin null.
    pub fn kiln(&self, args: &[&str]) -> Ran {
        ran(self.output(args))
    }

    /// Runs `kiln --root <root> args...` reading `stdin` (`kiln login
    /// --password-stdin`, `kiln load` from a pipe).
    pub fn kiln_with_stdin(&self, args: &[&str], stdin: &[u8]) -> Ran {
        let mut child = self
            .cmd(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("running {KILN} {args:?}: {e}"));
        let mut pipe = child.stdin.take().unwrap();
        let out = std::thread::scope(|s| {
            // Fed from another thread so that a kiln writing a lot before
            // it reads everything cannot deadlock against this one.
            s.spawn(move || {
                // kiln may exit before reading (a usage error): a broken
                // pipe is its answer, not the test's failure.
                let _ = pipe.write_all(stdin);
            });
            child.wait_with_output()
        });
        ran(out.unwrap_or_else(|e| panic!("waiting for {KILN} {args:?}: {e}")))
    }

    /// Runs kiln and returns stdout, failing the test on a non-zero exit.
    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> String {
        let ran = self.kiln(args);
        assert_eq!(
            ran.code, 0,
            "kiln {args:?} failed with exit code {}\nstderr:\n{}\nstdout:\n{}",
            ran.code, ran.stderr, ran.stdout
        );
        ran.stdout
    }

    /// Runs kiln expecting failure; returns stderr.
    #[track_caller]
    pub fn fails(&self, args: &[&str]) -> String {
        let ran = self.kiln(args);
        assert_ne!(
            ran.code, 0,
            "kiln {args:?} succeeded unexpectedly\nstderr:\n{}\nstdout:\n{}",
            ran.stderr, ran.stdout
        );
        ran.stderr
    }

    /// Entries under `<root>/<sub>` (none if it does not exist).
    pub fn entries(&self, sub: &str) -> Vec<String> {
        match std::fs::read_dir(self.root().join(sub)) {
            Ok(rd) => rd
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    /// The `REPOSITORY:TAG` rows `kiln images` prints, sorted.
    #[track_caller]
    pub fn images_listed(&self) -> Vec<String> {
        let text = self.ok(&["images"]);
        let mut lines = text.lines();
        assert!(
            lines.next().unwrap_or("").starts_with("REPOSITORY"),
            "{text}"
        );
        let mut names: Vec<String> = lines
            .map(|l| {
                let mut cols = l.split_whitespace();
                format!("{}:{}", cols.next().unwrap(), cols.next().unwrap())
            })
            .collect();
        names.sort();
        names
    }

    /// The container state dirs present under `<root>/containers`.
    pub fn containers(&self) -> Vec<String> {
        self.entries("containers")
            .into_iter()
            .filter(|n| n != "names")
            .collect()
    }

    /// The `kiln --root <root> run` command line, ready for more flags.
    pub fn run_command(&self) -> Command {
        self.cmd(&["run"])
    }

    /// Runs `kiln run <flags> --rootfs <rootfs> <cmd...>` with stdin null.
    pub fn run_rootfs(&self, flags: &[&str], cmd: &[&str]) -> Ran {
        let mut c = self.run_command();
        c.args(flags).arg("--rootfs").arg(self.rootfs()).args(cmd);
        c.stdin(Stdio::null());
        ran(c.output().expect("running kiln run"))
    }

    /// Runs a shell script in a `--rm` container on the rootfs.
    pub fn sh_rootfs(&self, script: &str) -> Ran {
        self.run_rootfs(&["--rm"], &["sh", "-c", script])
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

    /// A new context directory holding `files` (path, content); a path
    /// ending in `/` is a directory.
    pub fn context(&self, files: &[(&str, &str)]) -> PathBuf {
        let n = self.contexts.fetch_add(1, Ordering::Relaxed);
        let dir = self.path(&format!("ctx-{n}"));
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

    /// The lines of a cache mount's file, by cache id (the store names
    /// the dir with the id percent-encoded).
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

/// The host's mountinfo lines for mounts at or below `path`: what a test
/// checks is empty once kiln is done with a store.
///
/// Matched on the mount point (field 5, proc(5)) by path components, not
/// on the whole line: a mount's root, source or options may mention the
/// path without being mounted there, and `/tmp/kiln-test-ab` must not
/// claim the mounts of `/tmp/kiln-test-abc`. (Paths with spaces would be
/// octal-escaped there; test dirs have none.)
pub fn host_mounts_under(path: &Path) -> Vec<String> {
    let root = path.to_string_lossy().into_owned();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| {
            l.split(' ').nth(4).is_some_and(|point| {
                point
                    .strip_prefix(root.as_str())
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
            })
        })
        .map(str::to_string)
        .collect()
}

/// Force-removes every container of the store (`rm -f` of each `ps -aq`
/// ID), so no monitor outlives a test, failed or not.
pub fn remove_all_containers(k: &Kiln) {
    let ids = k.kiln(&["ps", "-aq", "--no-trunc"]).stdout;
    for id in ids.lines() {
        let _ = k.kiln(&["rm", "-f", id]);
    }
}

/// A store whose containers are removed when it is dropped
/// ([`remove_all_containers`]); derefs to its [`Kiln`].
pub struct ContainerStore {
    pub k: Kiln,
}

impl Drop for ContainerStore {
    fn drop(&mut self) {
        remove_all_containers(&self.k);
    }
}

impl std::ops::Deref for ContainerStore {
    type Target = Kiln;
    fn deref(&self) -> &Kiln {
        &self.k
    }
}

/// Removes the containers of a borrowed store when dropped.
pub struct RemoveContainersOnDrop<'a>(pub &'a Kiln);

impl Drop for RemoveContainersOnDrop<'_> {
    fn drop(&mut self) {
        remove_all_containers(self.0);
    }
}
