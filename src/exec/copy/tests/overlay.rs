//! The layer stacked on the parent with the real overlayfs: what a
//! container would see.
//!
//! overlayfs rules the layer relies on (Documentation/filesystems/
//! overlayfs.rst): a non-directory in an upper layer hides a lower
//! directory of the same name entirely; a directory over a lower
//! non-directory is shown alone; a directory over a directory merges. So a
//! COPY/ADD layer needs no whiteouts or opaque directories to replace a
//! type.

use std::path::{Path, PathBuf};

use crate::exec::fixture::{list, spec, tar_bytes, Fixture, TarEntry};

/// A read-only overlay mount of `layers` (top first), unmounted on drop.
struct Overlay {
    target: PathBuf,
}

impl Overlay {
    fn mount(layers: &[&Path], target: &Path) -> Overlay {
        std::fs::create_dir_all(target).expect("mkdir target");
        let lower: Vec<String> = layers.iter().map(|p| p.display().to_string()).collect();
        // Explicit off: other hosts may default these on (KERNEL-NOTES).
        let data = format!("lowerdir={},redirect_dir=off,metacopy=off", lower.join(":"));
        nix::mount::mount(
            Some("overlay"),
            target,
            Some("overlay"),
            nix::mount::MsFlags::MS_RDONLY,
            Some(data.as_str()),
        )
        .expect("mount overlay (needs root)");
        Overlay {
            target: target.to_path_buf(),
        }
    }
}

impl Drop for Overlay {
    fn drop(&mut self) {
        if let Err(e) = nix::mount::umount2(&self.target, nix::mount::MntFlags::MNT_DETACH) {
            eprintln!("cannot unmount {}: {e}", self.target.display());
        }
    }
}

#[test]
fn merged_view_shows_replaced_types_and_merged_directories() {
    let f = Fixture::new();
    // Parent: a directory that becomes a file, a file that becomes a
    // directory, and a directory that gets one more file.
    f.parent_file("opt/tool/old-bin", "old");
    f.parent_file("opt/data", "was a file");
    f.parent_file("etc/keep.conf", "keep");
    std::fs::write(
        f.context.join("bundle.tar"),
        tar_bytes(&[
            TarEntry::File("tool", "now a file", 0o755),
            TarEntry::Dir("data", 0o755),
            TarEntry::File("data/inside", "in dir", 0o644),
        ]),
    )
    .expect("write tar");
    let mut add = spec(&["bundle.tar"], "/opt/");
    add.is_add = true;
    f.run(&add).expect("add");
    f.file("new.conf", "new");
    f.run(&spec(&["new.conf"], "/etc/")).expect("copy");

    let mnt = f.layer.parent().expect("tmp").join("merged");
    let _overlay = Overlay::mount(&[&f.layer, &f.parent], &mnt);
    let merged: Vec<String> = list(&mnt)
        .into_iter()
        .map(|l| l.split(' ').take(2).collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        merged,
        [
            "d /etc",
            "d /opt",
            "d /opt/data",
            "f /etc/keep.conf",
            "f /etc/new.conf",
            "f /opt/data/inside",
            "f /opt/tool",
        ],
    );
    assert_eq!(
        std::fs::read_to_string(mnt.join("etc/keep.conf")).expect("read"),
        "keep"
    );
    assert_eq!(
        std::fs::read_to_string(mnt.join("opt/data/inside")).expect("read"),
        "in dir"
    );
    assert_eq!(
        std::fs::read_to_string(mnt.join("opt/tool")).expect("read"),
        "now a file"
    );
    assert!(
        !mnt.join("opt/tool/old-bin").exists(),
        "the lower directory is hidden"
    );
}
