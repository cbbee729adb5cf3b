//! The one busybox root filesystem the tests run things in, made from the
//! host's busybox-static: as a directory (`kiln run --rootfs`), a tar
//! (`kiln import`, the store API) or an image in a test store.

use super::archive::tar_dir;
use super::kiln::Kiln;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Makes a busybox rootfs at `root`:
/// - /bin/busybox and a symlink `bin/<applet> -> busybox` for each applet
///   (what `busybox --install -s` makes, but relative, so the links
///   resolve inside the rootfs and on the host alike, whatever path the
///   host's busybox has);
/// - /etc/passwd and /etc/group with root, nobody and a `tester` user
///   (1000:1000, also in group `extra` 1001), /etc/hostname (`kiln`);
/// - /root, /tmp (1777), /mnt and /home/tester (owned by 1000:1000).
pub fn write_rootfs(root: &Path) {
    let bin = root.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy("/bin/busybox", bin.join("busybox"))
        .expect("copying /bin/busybox (install busybox-static)");
    let list = Command::new("/bin/busybox")
        .arg("--list")
        .output()
        .expect("running busybox --list");
    assert!(list.status.success(), "busybox --list failed: {list:?}");
    for applet in String::from_utf8(list.stdout).unwrap().lines() {
        if applet != "busybox" {
            std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
        }
    }
    let etc = root.join("etc");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::write(
        etc.join("passwd"),
        "root:x:0:0:root:/root:/bin/sh\n\
         tester:x:1000:1000:Test User:/home/tester:/bin/sh\n\
         nobody:x:65534:65534:nobody:/:/bin/false\n",
    )
    .unwrap();
    std::fs::write(
        etc.join("group"),
        "root:x:0:\ntester:x:1000:\nextra:x:1001:tester\nnogroup:x:65534:\n",
    )
    .unwrap();
    std::fs::write(etc.join("hostname"), b"kiln\n").unwrap();
    for d in ["root", "tmp", "mnt", "home/tester"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::set_permissions(root.join("tmp"), std::fs::Permissions::from_mode(0o1777)).unwrap();
    std::os::unix::fs::chown(root.join("home/tester"), Some(1000), Some(1000)).unwrap();
}

impl Kiln {
    /// The busybox rootfs as a tarball at `<dir>/<name>` (its tree kept
    /// at `<dir>/<name>.rootfs`).
    pub fn busybox_tar(&self, name: &str) -> PathBuf {
        let rootfs = self.path(&format!("{name}.rootfs"));
        write_rootfs(&rootfs);
        let tar = self.path(name);
        tar_dir(&rootfs, &tar);
        tar
    }

    /// Imports the busybox rootfs into the store as `tag` (the tarball is
    /// made once per store).
    #[track_caller]
    pub fn import_busybox(&self, tag: &str) {
        let mut tar = self.path("busybox.tar");
        if !tar.exists() {
            tar = self.busybox_tar("busybox.tar");
        }
        self.ok(&["import", tar.to_str().unwrap(), tag]);
    }
}
