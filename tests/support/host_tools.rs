//! Images holding host programs: the busybox rootfs plus some of the
//! host's dynamically linked binaries (`/usr/bin/git`, `/usr/bin/ssh`)
//! with the libraries `ldd` says they load, at the same paths, imported
//! with `kiln import` as [`Kiln::with_busybox_image`] imports busybox.
//! Tests get real clients inside a build without any registry.

use super::archive::tar_dir;
use super::busybox::write_rootfs;
use super::kiln::Kiln;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The absolute paths `ldd binary` lists (the loader included).
fn ldd_closure(binary: &str) -> BTreeSet<PathBuf> {
    let out = Command::new("ldd")
        .arg(binary)
        .output()
        .unwrap_or_else(|e| panic!("running ldd {binary}: {e}"));
    assert!(out.status.success(), "ldd {binary}: {out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .flat_map(|l| l.split_whitespace())
        .filter(|w| w.starts_with('/'))
        .map(PathBuf::from)
        .collect()
}

/// Copies host file `path` (its content, symlinks followed) to the same
/// path under `root`, keeping its mode.
fn copy_into(root: &Path, path: &Path) {
    let dest = root.join(path.strip_prefix("/").unwrap());
    std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
    std::fs::copy(path, &dest).unwrap_or_else(|e| panic!("copying {}: {e}", path.display()));
}

impl Kiln {
    /// Imports as `tag` the busybox rootfs plus the host `binaries` and
    /// their `ldd` closure. `links` are symlinks to make (`(link,
    /// target)`, both absolute in the image), e.g. git's exec path.
    #[track_caller]
    pub fn import_host_tools(&self, tag: &str, binaries: &[&str], links: &[(&str, &str)]) {
        let root = self.path(&format!("{}.rootfs", tag.replace([':', '/'], "_")));
        write_rootfs(&root);
        let mut files = BTreeSet::new();
        for b in binaries {
            files.insert(PathBuf::from(b));
            files.extend(ldd_closure(b));
        }
        for f in &files {
            copy_into(&root, f);
        }
        for (link, target) in links {
            let at = root.join(link.trim_start_matches('/'));
            std::fs::create_dir_all(at.parent().unwrap()).unwrap();
            std::os::unix::fs::symlink(target, at).unwrap();
        }
        let tar = self.path(&format!("{}.tar", tag.replace([':', '/'], "_")));
        tar_dir(&root, &tar);
        self.ok(&["import", tar.to_str().unwrap(), tag]);
    }
}
