//! The build context as copies and bind mounts see it when
//! `.dockerignore` hides some of it: exactly the kept entries, made
//! without touching a single inode of the user's tree.
//!
//! The view is an overlayfs mount whose bottom layer is the context
//! directory itself and whose top layer holds a whiteout for each entry
//! the scan did not keep (ignored, or a device, FIFO or socket, which are
//! never sent as context) plus the directories that contain them, with
//! the context's own modes, owners and times (the topmost copy of a
//! directory gives the merged one its attributes). Reading through an
//! overlay never writes to a lower layer, and its throwaway upper dir
//! takes any write.
//!
//! Why not hard links (what kiln did first): `link(2)` changes the
//! user's files' ctime and link count. ctime is part of the stat stamp
//! the context digest cache trusts, so every build that made a mirror
//! threw the next build's cache away: the no-change rebuild after a
//! build re-read the whole context (issue 9, defect 4). Links remain
//! the fallback where the overlay cannot be mounted (a context on a
//! filesystem overlayfs refuses as a lower layer, or one that contains
//! the store, which overlayfs refuses as overlapping).

use crate::error_chain::Chain;
use std::ffi::OsStr;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::context::scan::{name_bytes, name_string, ContextTree, Entry, EntryKind};
use crate::exec::attrs::{set_times, Time};
use crate::runtime::overlay::Overlay;

/// A directory showing exactly the scanned entries of a context.
#[derive(Debug)]
pub struct FilteredView {
    root: PathBuf,
    /// The overlay mount point, when the view is one (unmounted on drop).
    mounted: Option<PathBuf>,
}

impl FilteredView {
    /// Makes the view of `tree` in the fresh directory `dir` (created).
    pub fn new(tree: &ContextTree, dir: &Path) -> std::io::Result<FilteredView> {
        std::fs::create_dir_all(dir)?;
        match overlay_view(tree, dir) {
            Ok(merged) => Ok(FilteredView {
                root: merged.clone(),
                mounted: Some(merged),
            }),
            Err(e) => {
                tracing::debug!(
                    "build context {}: no overlay view ({e}); linking a mirror",
                    tree.root().display(),
                    e = Chain(&e)
                );
                let mirror = dir.join("mirror");
                link_mirror(tree, &mirror)?;
                Ok(FilteredView {
                    root: mirror,
                    mounted: None,
                })
            }
        }
    }

    /// The directory to read the context from.
    pub fn path(&self) -> &Path {
        &self.root
    }
}

impl Drop for FilteredView {
    fn drop(&mut self) {
        if let Some(merged) = &self.mounted {
            if let Err(e) = nix::mount::umount2(merged.as_path(), nix::mount::MntFlags::MNT_DETACH)
            {
                tracing::warn!(
                    "unmounting the context view {}: {e}",
                    merged.display(),
                    e = Chain(&e)
                );
            }
        }
    }
}

/// Mounts the overlay view under `dir`; returns its mount point.
fn overlay_view(tree: &ContextTree, dir: &Path) -> std::io::Result<PathBuf> {
    let hide = dir.join("hide");
    let (upper, work, merged) = (dir.join("upper"), dir.join("work"), dir.join("merged"));
    for d in [&hide, &upper, &work, &merged] {
        std::fs::create_dir(d)?;
    }
    write_hiding_layer(tree, &hide)?;
    let lowers = [tree.root().to_path_buf(), hide];
    Overlay {
        lowers: &lowers,
        upper: &upper,
        work: &work,
        volatile: true,
    }
    .mount(&merged)
    .map_err(std::io::Error::other)?;
    Ok(merged)
}

/// Fills `layer` (an empty directory) with a whiteout for every entry of
/// the context's kept directories that the scan did not keep.
fn write_hiding_layer(tree: &ContextTree, layer: &Path) -> std::io::Result<()> {
    let entries = tree.entries();
    // Directories that got a whiteout, so their attributes are the context's.
    let mut touched: Vec<(&str, PathBuf)> = Vec::new();
    let dirs = std::iter::once("").chain(
        entries
            .iter()
            .filter(|e| e.kind == EntryKind::Dir)
            .map(|e| e.path.as_str()),
    );
    for rel in dirs {
        let host = tree.host_path(rel);
        let mut made = false;
        for child in std::fs::read_dir(&host)? {
            let name = child?.file_name();
            if is_kept(tree, rel, &name) {
                continue;
            }
            let dir_in_layer = if rel.is_empty() {
                layer.to_path_buf()
            } else {
                layer.join(name_bytes(rel))
            };
            if !made {
                std::fs::create_dir_all(&dir_in_layer)?;
                touched.push((rel, dir_in_layer.clone()));
                made = true;
            }
            nix::sys::stat::mknod(
                &dir_in_layer.join(&name),
                nix::sys::stat::SFlag::S_IFCHR,
                nix::sys::stat::Mode::empty(),
                nix::sys::stat::makedev(0, 0),
            )?;
        }
    }
    // Parents of touched directories were created along the way: give
    // every directory in the layer its context twin's attributes, deepest
    // first (setting a child's times changes its parent's mtime).
    let mut all: Vec<String> = Vec::new();
    for (rel, _) in &touched {
        let mut p = *rel;
        loop {
            all.push(p.to_string());
            match p.rfind('/') {
                Some(i) => p = &p[..i],
                None if !p.is_empty() => p = "",
                None => break,
            }
        }
    }
    all.sort();
    all.dedup();
    for rel in all.iter().rev() {
        let in_layer = if rel.is_empty() {
            layer.to_path_buf()
        } else {
            layer.join(name_bytes(rel))
        };
        match tree.find(rel).map(|i| &entries[i]) {
            Some(e) => copy_dir_attrs(&in_layer, e.mode, e.uid, e.gid, e.mtime_ns)?,
            None => {
                let md = std::fs::metadata(tree.root())?;
                let mtime = md.mtime() * 1_000_000_000 + md.mtime_nsec();
                copy_dir_attrs(&in_layer, md.mode() & 0o7777, md.uid(), md.gid(), mtime)?;
            }
        }
    }
    Ok(())
}

/// Whether `dir/name` is a kept entry of a kind the context sends.
fn is_kept(tree: &ContextTree, dir: &str, name: &OsStr) -> bool {
    // Names that are not UTF-8 are in the tree in their string form.
    let name = name_string(name);
    let rel = if dir.is_empty() {
        name
    } else {
        format!("{dir}/{name}")
    };
    tree.find(&rel).is_some_and(|i| sent(&tree.entries()[i]))
}

/// Devices, FIFOs and sockets are not sent as build context.
fn sent(e: &Entry) -> bool {
    matches!(
        e.kind,
        EntryKind::File | EntryKind::Dir | EntryKind::Symlink
    )
}

fn copy_dir_attrs(
    path: &Path,
    mode: u32,
    uid: u32,
    gid: u32,
    mtime_ns: i64,
) -> std::io::Result<()> {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    let t = entry_time(mtime_ns);
    set_times(path, t, t)
}

/// The fallback: a tree of hard links to the kept files (symlinks and
/// directories recreated with their times), at `out`.
fn link_mirror(tree: &ContextTree, out: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(out)?;
    let mut dirs = Vec::new();
    for e in tree.entries() {
        let src = tree.host_path(&e.path);
        let dst = out.join(name_bytes(&e.path));
        match e.kind {
            EntryKind::Dir => {
                std::fs::create_dir(&dst)?;
                std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(e.mode))?;
                dirs.push((dst.clone(), e.mtime_ns));
            }
            // Another filesystem: copy instead (keeping the mtime the
            // copy gives the layer).
            EntryKind::File if std::fs::hard_link(&src, &dst).is_err() => {
                std::fs::copy(&src, &dst)?;
                let t = entry_time(e.mtime_ns);
                set_times(&dst, t, t)?;
            }
            EntryKind::File => {}
            EntryKind::Symlink => {
                let target = e.link_target.as_deref().unwrap_or_default();
                std::os::unix::fs::symlink(name_bytes(target), &dst)?;
                // A new link has the current time; COPY keeps the
                // source's (as BuildKit does).
                let t = entry_time(e.mtime_ns);
                set_times(&dst, t, t)?;
            }
            _ => {}
        }
        if e.kind != EntryKind::File && sent(e) {
            let _ = std::os::unix::fs::lchown(&dst, Some(e.uid), Some(e.gid));
        }
    }
    // Directory times last: creating entries changed them.
    for (dir, mtime_ns) in dirs.into_iter().rev() {
        let t = entry_time(mtime_ns);
        let _ = set_times(&dir, t, t);
    }
    if let Ok(root) = std::fs::metadata(tree.root()) {
        let _ =
            std::fs::set_permissions(out, std::fs::Permissions::from_mode(root.mode() & 0o7777));
    }
    Ok(())
}

/// A scanned entry's mtime as a settable time.
pub(super) fn entry_time(mtime_ns: i64) -> Time {
    Time {
        sec: mtime_ns.div_euclid(1_000_000_000),
        nsec: mtime_ns.rem_euclid(1_000_000_000),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::scan::{scan, ExcludeFn};

    fn old() -> Time {
        Time {
            sec: 1_000_000,
            nsec: 5,
        }
    }

    /// A context with `d/` (0750, an old mtime) holding a kept and an
    /// ignored file, a kept symlink and an ignored top-level file.
    fn context(root: &Path) -> ContextTree {
        std::fs::create_dir_all(root.join("d")).unwrap();
        std::fs::write(root.join("d/keep"), "k").unwrap();
        std::fs::write(root.join("d/x.log"), "x").unwrap();
        std::fs::write(root.join("top.log"), "t").unwrap();
        std::os::unix::fs::symlink("d/keep", root.join("link")).unwrap();
        std::fs::set_permissions(root.join("d"), std::fs::Permissions::from_mode(0o750)).unwrap();
        for p in ["link", "d"] {
            set_times(&root.join(p), old(), old()).unwrap();
        }
        scan(root, &ExcludeFn(|p: &str| p.ends_with(".log"))).unwrap()
    }

    fn check_shows_only_kept_entries(view: &Path) {
        assert_eq!(std::fs::read_to_string(view.join("d/keep")).unwrap(), "k");
        assert!(!view.join("d/x.log").exists());
        assert!(!view.join("top.log").exists());
        let d = std::fs::metadata(view.join("d")).unwrap();
        assert_eq!(d.mode() & 0o7777, 0o750);
        for p in ["link", "d"] {
            let md = std::fs::symlink_metadata(view.join(p)).unwrap();
            assert_eq!(
                (md.mtime(), md.mtime_nsec()),
                (old().sec, old().nsec),
                "{p}"
            );
        }
    }

    #[test]
    fn the_overlay_view_hides_ignored_entries_and_keeps_directory_attributes() {
        let t = tempfile::tempdir().unwrap();
        let tree = context(&t.path().join("ctx"));
        let view = FilteredView::new(&tree, &t.path().join("view")).unwrap();
        assert!(
            view.mounted.is_some(),
            "expected an overlay here (root, overlayfs)"
        );
        check_shows_only_kept_entries(view.path());
    }

    #[test]
    fn the_link_mirror_fallback_shows_the_same() {
        let t = tempfile::tempdir().unwrap();
        let tree = context(&t.path().join("ctx"));
        let out = t.path().join("mirror");
        link_mirror(&tree, &out).unwrap();
        check_shows_only_kept_entries(&out);
    }
}
