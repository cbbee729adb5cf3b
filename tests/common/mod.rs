//! Helpers shared by the integration tests: run the real binary against a
//! private `--root`, build rootfs and hostile tarballs.
#![allow(dead_code)]

pub mod archive;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A private store root plus a scratch area, removed on drop.
pub struct Env {
    pub dir: tempfile::TempDir,
}

impl Env {
    pub fn new() -> Env {
        Env {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    pub fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// Runs `kiln --root <root> args...`.
    pub fn kiln(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("running kiln")
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_kiln"));
        c.arg("--root").arg(self.root()).args(args);
        c
    }

    /// Runs kiln and returns stdout, failing the test on a non-zero exit.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.kiln(args);
        assert!(
            out.status.success(),
            "kiln {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stdout).expect("utf-8 output")
    }

    /// Runs kiln expecting failure; returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.kiln(args);
        assert!(
            !out.status.success(),
            "kiln {args:?} succeeded unexpectedly"
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// Entries under `<root>/<sub>`.
    pub fn entries(&self, sub: &str) -> Vec<String> {
        match std::fs::read_dir(self.root().join(sub)) {
            Ok(rd) => rd
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    /// A busybox rootfs tarball (made from /bin/busybox and its applet
    /// list, relative symlinks) at `<dir>/<name>`.
    pub fn busybox_tar(&self, name: &str) -> PathBuf {
        let rootfs = self.path(&format!("{name}.rootfs"));
        std::fs::create_dir_all(rootfs.join("bin")).unwrap();
        std::fs::create_dir_all(rootfs.join("etc")).unwrap();
        std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).expect("/bin/busybox");
        let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
        for applet in String::from_utf8_lossy(&list.stdout).lines() {
            if applet != "busybox" {
                std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
            }
        }
        std::fs::write(rootfs.join("etc/hostname"), b"kiln\n").unwrap();
        let tar = self.path(name);
        tar_dir(&rootfs, &tar);
        tar
    }
}

/// `tar -C dir -cf out .` with GNU tar.
pub fn tar_dir(dir: &Path, out: &Path) {
    let st = Command::new("tar")
        .arg("-C")
        .arg(dir)
        .arg("-cf")
        .arg(out)
        .arg(".")
        .status()
        .expect("tar");
    assert!(st.success());
}

/// One entry of a hand-made (possibly hostile) tar.
pub enum Entry<'a> {
    File(&'a str, &'a [u8]),
    Dir(&'a str),
    Symlink(&'a str, &'a str),
    Hardlink(&'a str, &'a str),
}

/// Builds a tar with names copied verbatim (no sanitizing).
pub fn raw_tar(entries: &[Entry]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_ustar();
        h.set_mtime(1_700_000_000);
        h.set_size(0);
        let (name, data): (&str, &[u8]) = match *e {
            Entry::File(n, d) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                h.set_size(d.len() as u64);
                (n, d)
            }
            Entry::Dir(n) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                (n, &[])
            }
            Entry::Symlink(n, t) | Entry::Hardlink(n, t) => {
                let sym = matches!(e, Entry::Symlink(..));
                h.set_entry_type(if sym {
                    tar::EntryType::Symlink
                } else {
                    tar::EntryType::Link
                });
                h.set_mode(0o777);
                h.set_link_name_literal(t).unwrap();
                (n, &[])
            }
        };
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_cksum();
        b.append(&h, data).unwrap();
    }
    b.into_inner().unwrap()
}
