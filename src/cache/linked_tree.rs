//! A tree recreated under another name: with hard links (`cp -al`,
//! [`link_tree`]), or copied ([`copy_tree`], for the `--output type=local`
//! export and a cache mount's `from=` seed, which leave the store).
//!
//! Linking is how one layer's content is published as a second snapshot
//! (the same diff on another parent, see [`super::Store::rebase_layer`])
//! without copying file data.
//!
//! Sharing inodes between snapshots is safe because snapshots are never
//! written once published: overlayfs only reads its lower dirs (writes go
//! to the upper dir, copy-up creates new inodes), and GC removes a
//! snapshot by unlinking, which leaves the other names intact. A layer's
//! own hard links stay hard links of one inode in the copy, so its tar
//! (and diff ID) is the same byte for byte.
//!
//! Directories cannot be hard-linked: they are created anew with the
//! source's owner, mode, extended attributes (overlayfs' opaque marker
//! included, it is part of the layer) and times, times last since adding
//! entries changes them. A non-directory whose inode has reached the
//! filesystem's link limit (`EMLINK`, e.g. the whiteout inode overlayfs
//! shares) is recreated instead: data copied, device numbers kept.

use crate::error_chain::Chain;
use rayon::prelude::*;
use std::fs::Metadata;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

/// Recreates the tree at `src` (a directory) at `dst`, which must not
/// exist, linking every non-directory. On error `dst` is left partly
/// written for the caller to remove.
pub(super) fn link_tree(src: &Path, dst: &Path) -> io::Result<()> {
    let md = std::fs::symlink_metadata(src).map_err(|e| at(src, "lstat", e))?;
    if !md.is_dir() {
        return Err(at(
            src,
            "linking a snapshot",
            io::Error::from(io::ErrorKind::NotADirectory),
        ));
    }
    link_dir(src, dst, &md)
}

fn link_dir(src: &Path, dst: &Path, md: &Metadata) -> io::Result<()> {
    std::fs::create_dir(dst).map_err(|e| at(dst, "creating directory", e))?;
    let entries: Vec<_> = std::fs::read_dir(src)
        .map_err(|e| at(src, "reading directory", e))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<_>>()
        .map_err(|e| at(src, "reading directory", e))?;
    entries.par_iter().try_for_each(|name| {
        let (from, to) = (src.join(name), dst.join(name));
        let md = std::fs::symlink_metadata(&from).map_err(|e| at(&from, "lstat", e))?;
        if md.is_dir() {
            return link_dir(&from, &to, &md);
        }
        match std::fs::hard_link(&from, &to) {
            Ok(()) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EMLINK) => {
                recreate(&from, &to, &md, Xattrs::Copy)
            }
            Err(e) => Err(at(&to, "hard-linking", e)),
        }
    })?;
    set_attrs(src, dst, md, Xattrs::Copy)
}

/// Copies the contents of the directory `src` into the directory `dst`
/// (`cp -a` minus hard links and xattrs): files, directories, symlinks,
/// fifos and devices, with owners, modes and times, directory times last.
/// An existing entry of `dst` is replaced unless both are directories,
/// which merge. Hard links become separate files, and extended attributes
/// are left behind: the destinations are the user's directories and fresh
/// cache dirs, where a store layer's xattrs (overlayfs' opaque marker)
/// would mean nothing or could not be set.
pub fn copy_tree(src: &Path, dst: &Path) -> io::Result<()> {
    for entry in std::fs::read_dir(src).map_err(|e| at(src, "reading directory", e))? {
        let entry = entry.map_err(|e| at(src, "reading directory", e))?;
        let (from, to) = (entry.path(), dst.join(entry.file_name()));
        let md = std::fs::symlink_metadata(&from).map_err(|e| at(&from, "lstat", e))?;
        let both_dirs = md.is_dir() && std::fs::symlink_metadata(&to).is_ok_and(|m| m.is_dir());
        if !both_dirs && std::fs::symlink_metadata(&to).is_ok() {
            super::scratch::remove_tree(&to).map_err(|e| at(&to, "replacing", e))?;
        }
        if md.is_dir() {
            if !both_dirs {
                std::fs::create_dir(&to).map_err(|e| at(&to, "creating directory", e))?;
            }
            copy_tree(&from, &to)?;
            set_attrs(&from, &to, &md, Xattrs::Skip)?;
        } else {
            recreate(&from, &to, &md, Xattrs::Skip)?;
        }
    }
    Ok(())
}

/// Whether a recreated entry takes its source's extended attributes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Xattrs {
    Copy,
    Skip,
}

/// A copy of a non-directory whose inode cannot take another link.
fn recreate(src: &Path, dst: &Path, md: &Metadata, xattrs: Xattrs) -> io::Result<()> {
    let ft = md.file_type();
    if ft.is_file() {
        std::fs::copy(src, dst).map_err(|e| at(dst, "copying", e))?;
    } else if ft.is_symlink() {
        let target = std::fs::read_link(src).map_err(|e| at(src, "reading symlink", e))?;
        std::os::unix::fs::symlink(target, dst).map_err(|e| at(dst, "creating symlink", e))?;
    } else if ft.is_socket() {
        // Layers never hold sockets (the tar writer skips them).
        return Ok(());
    } else {
        rustix::fs::mknodat(
            rustix::fs::CWD,
            dst,
            rustix::fs::FileType::from_raw_mode(md.mode()),
            rustix::fs::Mode::from_raw_mode(md.mode()),
            md.rdev(),
        )
        .map_err(|e| at(dst, "creating device node", e.into()))?;
    }
    set_attrs(src, dst, md, xattrs)
}

/// Owner before mode (chown clears set-id bits), xattrs, times last; a
/// symlink's mode is not its own to set.
fn set_attrs(src: &Path, dst: &Path, md: &Metadata, xattrs: Xattrs) -> io::Result<()> {
    std::os::unix::fs::lchown(dst, Some(md.uid()), Some(md.gid()))
        .map_err(|e| at(dst, "chown", e))?;
    if !md.file_type().is_symlink() {
        std::fs::set_permissions(dst, std::fs::Permissions::from_mode(md.mode() & 0o7777))
            .map_err(|e| at(dst, "chmod", e))?;
    }
    if xattrs == Xattrs::Copy {
        copy_xattrs(src, dst)?;
    }
    set_times(dst, md)
}

/// Every extended attribute, overlayfs' own included: the copy is the
/// same layer, opaque directories and all.
fn copy_xattrs(src: &Path, dst: &Path) -> io::Result<()> {
    let names = match xattr::list(src) {
        Ok(names) => names,
        Err(e) if e.raw_os_error() == Some(libc::ENOTSUP) => return Ok(()),
        Err(e) => return Err(at(src, "listing xattrs", e)),
    };
    for name in names {
        if let Some(value) = xattr::get(src, &name).map_err(|e| at(src, "reading xattr", e))? {
            xattr::set(dst, &name, &value).map_err(|e| at(dst, "setting xattr", e))?;
        }
    }
    Ok(())
}

fn set_times(dst: &Path, md: &Metadata) -> io::Result<()> {
    let times = rustix::fs::Timestamps {
        last_access: rustix::fs::Timespec {
            tv_sec: md.atime(),
            tv_nsec: md.atime_nsec() as _,
        },
        last_modification: rustix::fs::Timespec {
            tv_sec: md.mtime(),
            tv_nsec: md.mtime_nsec() as _,
        },
    };
    rustix::fs::utimensat(
        rustix::fs::CWD,
        dst,
        &times,
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )
    .map_err(|e| at(dst, "setting times", e.into()))
}

/// The error with the path and what was being done, for the store's
/// `Io` error (which names the snapshot).
fn at(path: &Path, op: &str, e: io::Error) -> io::Error {
    io::Error::new(
        e.kind(),
        format!("{}: {op}: {e}", path.display(), e = Chain(&e)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::layer::diff::{diff_id_of, DiffOptions};

    #[test]
    fn linked_tree_has_the_same_diff_and_shares_inodes() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("src");
        std::fs::create_dir_all(src.join("d/e")).unwrap();
        std::fs::write(src.join("d/f"), "data").unwrap();
        std::fs::hard_link(src.join("d/f"), src.join("d/g")).unwrap();
        std::os::unix::fs::symlink("f", src.join("d/link")).unwrap();
        nix::sys::stat::mknod(
            &src.join("d/gone"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::empty(),
            0,
        )
        .unwrap();
        std::fs::set_permissions(src.join("d/e"), std::fs::Permissions::from_mode(0o700)).unwrap();
        std::os::unix::fs::lchown(src.join("d/e"), Some(12), Some(34)).unwrap();
        // trusted.* needs CAP_SYS_ADMIN; the suite runs as root.
        xattr::set(src.join("d/e"), "trusted.overlay.opaque", b"y").unwrap();
        let md = std::fs::metadata(src.join("d/e")).unwrap();
        // Fix the times last (writing entries changes a directory's).
        let old = std::fs::metadata(src.join("d/f")).unwrap();
        set_times(&src.join("d"), &old).unwrap();

        let dst = t.path().join("dst");
        link_tree(&src, &dst).unwrap();
        let opts = DiffOptions::default();
        assert_eq!(
            diff_id_of(&src, opts).unwrap().diff_id,
            diff_id_of(&dst, opts).unwrap().diff_id
        );
        let ino = |p: &Path| std::fs::symlink_metadata(p).unwrap().ino();
        assert_eq!(ino(&src.join("d/f")), ino(&dst.join("d/f")));
        assert_eq!(ino(&dst.join("d/f")), ino(&dst.join("d/g")));
        let e = std::fs::metadata(dst.join("d/e")).unwrap();
        assert_eq!(
            (e.mode() & 0o7777, e.uid(), e.gid()),
            (md.mode() & 0o7777, 12, 34)
        );
        assert_eq!(
            xattr::get(dst.join("d/e"), "trusted.overlay.opaque").unwrap(),
            Some(b"y".to_vec())
        );
        assert_eq!(
            std::fs::metadata(dst.join("d")).unwrap().mtime(),
            old.mtime()
        );
        assert!(
            link_tree(&src, &dst).is_err(),
            "the destination must be new"
        );
    }

    #[test]
    fn copied_trees_keep_metadata_and_merge_into_the_destination() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("src");
        std::fs::create_dir_all(src.join("d")).unwrap();
        std::fs::write(src.join("d/f"), "data").unwrap();
        std::fs::hard_link(src.join("d/f"), src.join("d/g")).unwrap();
        std::os::unix::fs::symlink("f", src.join("d/link")).unwrap();
        nix::unistd::mkfifo(
            &src.join("fifo"),
            nix::sys::stat::Mode::from_bits_truncate(0o640),
        )
        .unwrap();
        std::fs::set_permissions(src.join("d/f"), std::fs::Permissions::from_mode(0o4750)).unwrap();
        std::os::unix::fs::lchown(src.join("d"), Some(12), Some(34)).unwrap();
        let old = std::fs::metadata(src.join("d/f")).unwrap();
        set_times(&src.join("d"), &old).unwrap();
        let dst = t.path().join("dst");
        std::fs::create_dir_all(dst.join("d")).unwrap();
        std::fs::write(dst.join("d/kept"), "mine").unwrap();
        std::fs::create_dir(dst.join("fifo")).unwrap();

        copy_tree(&src, &dst).unwrap();
        let md = |p: &str| std::fs::symlink_metadata(dst.join(p)).unwrap();
        assert_eq!(std::fs::read_to_string(dst.join("d/kept")).unwrap(), "mine");
        assert_eq!(std::fs::read_to_string(dst.join("d/g")).unwrap(), "data");
        assert_ne!(md("d/f").ino(), md("d/g").ino());
        assert_eq!(md("d/f").mode() & 0o7777, 0o4750);
        assert_eq!((md("d").uid(), md("d").gid()), (12, 34));
        assert_eq!(md("d").mtime(), old.mtime());
        assert_eq!(
            std::fs::read_link(dst.join("d/link")).unwrap(),
            Path::new("f")
        );
        assert!(md("fifo").file_type().is_fifo());
        assert_eq!(md("fifo").mode() & 0o7777, 0o640);
    }

    #[test]
    fn files_past_the_link_limit_are_recreated() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("src");
        std::fs::create_dir(&src).unwrap();
        std::fs::write(src.join("f"), "data").unwrap();
        std::fs::set_permissions(src.join("f"), std::fs::Permissions::from_mode(0o4755)).unwrap();
        std::os::unix::fs::symlink("f", src.join("l")).unwrap();
        let dst = t.path().join("dst");
        std::fs::create_dir(&dst).unwrap();
        for name in ["f", "l"] {
            let md = std::fs::symlink_metadata(src.join(name)).unwrap();
            recreate(&src.join(name), &dst.join(name), &md, Xattrs::Copy).unwrap();
        }
        let f = std::fs::metadata(dst.join("f")).unwrap();
        assert_eq!(f.mode() & 0o7777, 0o4755);
        assert_ne!(f.ino(), std::fs::metadata(src.join("f")).unwrap().ino());
        assert_eq!(std::fs::read_to_string(dst.join("f")).unwrap(), "data");
        assert_eq!(std::fs::read_link(dst.join("l")).unwrap(), Path::new("f"));
    }
}
