//! A RUN's upper dir cut down to what BuildKit's overlay differ records,
//! so kiln's RUN layer holds the same entries as BuildKit's.
//!
//! overlayfs copies a file up on any open for writing, `chmod`, `chown`,
//! `touch -a`, ... even when nothing ends up different, and copies up
//! every directory above a write. BuildKit does not take the upper dir as
//! the layer: moby/buildkit `util/overlay/overlay_linux.go` (`Changes`)
//! walks it and compares each entry that also exists in the base with
//! `sameDirent` (containerd/continuity `fs/path.go` `sameFile` semantics):
//!
//! - same inode, or the same `st_mode`, uid, gid, rdev and
//!   `security.capability` xattr, and for non-directories also the same
//!   size and mtime seconds; when both mtimes have zero nanoseconds (a file
//!   unpacked from a tar) a symlink's target or a regular file's bytes
//!   decide (size 0: same), otherwise the nanoseconds must match too;
//! - a directory's mtime never counts, so a directory copied up only
//!   because something below it changed is not recorded itself; the tar
//!   writer (containerd `archive/tar.go`, `ChangeWriter.includeParents`)
//!   then adds it as the parent of what changed, with the upper dir's
//!   metadata, and leaves it out when nothing below it changed;
//! - a whiteout of a path the base does not have is skipped
//!   (`checkDelete`), and an opaque directory the base does not have is an
//!   ordinary new directory (`checkOpaque`).
//!
//! [`drop_unchanged`] applies that rule to the upper dir itself (kiln's
//! snapshot *is* the upper dir, and its tar is written from it), so what
//! stays is exactly what BuildKit's tar would hold.
//!
//! An opaque directory the base has (`rm -rf d && mkdir d`) is walked
//! against the base (`fs.Changes`, same comparison): kiln turns it into a
//! plain directory with a whiteout for each base entry it lacks and then
//! prunes it like the rest, so its tar has BuildKit's `.wh.` entries and no
//! `.wh..wh..opq`. Where whiteouts cannot be made it stays opaque and whole.

use crate::error_chain::Chain;
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::attrs::get_xattr;
use super::parent_fs::ParentFs;

/// The overlay xattrs that mark a directory opaque (the `user.` one in a
/// user namespace).
const OPAQUE_XATTRS: [&str; 2] = ["trusted.overlay.opaque", "user.overlay.opaque"];

/// Reading or trimming the upper dir failed.
#[derive(Debug, thiserror::Error)]
#[error("{op} {}", path.display())]
pub struct UpperDiffError {
    path: PathBuf,
    op: &'static str,
    #[source]
    source: io::Error,
}

fn fail<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> UpperDiffError + 'a {
    move |source| UpperDiffError {
        path: path.to_path_buf(),
        op,
        source,
    }
}

/// Removes from `upper` every entry BuildKit's overlay differ would not
/// write into the layer, comparing with `base` (the run's lower layers as
/// overlay merges them).
pub fn drop_unchanged(upper: &Path, base: &dyn ParentFs) -> Result<(), UpperDiffError> {
    prune_dir(upper, Path::new(""), base, true).map(|_| ())
}

/// Prunes the children of `rel`; whether anything stays below it.
/// `in_base`: whether the base has an entry at `rel`; when it has none,
/// nothing below it is in the base either, and the (often thousands of)
/// new entries need no lookup through every lower layer.
fn prune_dir(
    upper: &Path,
    rel: &Path,
    base: &dyn ParentFs,
    in_base: bool,
) -> Result<bool, UpperDiffError> {
    let dir = upper.join(rel);
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&dir).map_err(fail("reading", &dir))? {
        names.push(entry.map_err(fail("reading", &dir))?.file_name());
    }
    let mut kept_any = false;
    for name in names {
        let rel = rel.join(&name);
        let host = upper.join(&rel);
        let md = std::fs::symlink_metadata(&host).map_err(fail("lstat", &host))?;
        let lower = if in_base {
            base.locate(&rel)
                .map_err(fail("looking up in the base", &host))?
        } else {
            None
        };
        let keep = if md.file_type().is_char_device() && md.rdev() == 0 {
            // A whiteout: only worth keeping when it hides something.
            lower.is_some()
        } else {
            let same = match &lower {
                Some(l) => same_dirent(l, &host, &md).map_err(fail("comparing", &host))?,
                None => false,
            };
            if md.is_dir() && is_opaque(&host).map_err(fail("reading xattrs of", &host))? {
                if lower.is_none() {
                    // Nothing below to hide: a plain new directory.
                    clear_opaque(&host)?;
                    prune_dir(upper, &rel, base, false)?;
                    true
                } else if flatten_opaque(upper, &rel, base) {
                    prune_dir(upper, &rel, base, true)? || !same
                } else {
                    true
                }
            } else if md.is_dir() {
                prune_dir(upper, &rel, base, lower.is_some())? || !same
            } else {
                !same
            }
        };
        if keep {
            kept_any = true;
        } else if md.is_dir() {
            std::fs::remove_dir(&host).map_err(fail("removing", &host))?;
        } else {
            std::fs::remove_file(&host).map_err(fail("removing", &host))?;
        }
    }
    Ok(kept_any)
}

/// Turns the opaque directory `rel`, which the base has too, into a plain
/// one with a whiteout for each base entry it does not have (in its
/// subdirectories too, which the base's then merge with), so that
/// [`prune_dir`] can compare it entry by entry: BuildKit's `Changes` walks
/// such a directory against the base (continuity `fs.Changes`) and writes
/// deletions, never an opaque marker. `false` (the directory left opaque
/// and whole) when a whiteout cannot be made, e.g. without `CAP_MKNOD`.
fn flatten_opaque(upper: &Path, rel: &Path, base: &dyn ParentFs) -> bool {
    let mut made = Vec::new();
    let host = upper.join(rel);
    let done = hide_base_entries(upper, rel, base, &mut made).and_then(|()| clear_opaque(&host));
    match done {
        Ok(()) => true,
        Err(e) => {
            tracing::debug!("keeping {} opaque: {e}", host.display(), e = Chain(&e));
            for w in made {
                let _ = std::fs::remove_file(w);
            }
            false
        }
    }
}

/// Whiteouts in `upper/rel` for what the base lists there and the upper
/// dir lacks, recursively through directories both have.
fn hide_base_entries(
    upper: &Path,
    rel: &Path,
    base: &dyn ParentFs,
    made: &mut Vec<PathBuf>,
) -> Result<(), UpperDiffError> {
    let dir = upper.join(rel);
    let Some(names) = base.list(rel).map_err(fail("listing the base's", &dir))? else {
        return Ok(());
    };
    for name in names {
        let host = dir.join(&name);
        match std::fs::symlink_metadata(&host) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                nix::sys::stat::mknod(
                    &host,
                    nix::sys::stat::SFlag::S_IFCHR,
                    nix::sys::stat::Mode::empty(),
                    0,
                )
                .map_err(|e| fail("making a whiteout", &host)(e.into()))?;
                made.push(host);
            }
            Ok(md) if md.is_dir() => hide_base_entries(upper, &rel.join(&name), base, made)?,
            Ok(_) => {}
            Err(e) => return Err(fail("lstat", &host)(e)),
        }
    }
    Ok(())
}

fn clear_opaque(dir: &Path) -> Result<(), UpperDiffError> {
    for name in OPAQUE_XATTRS {
        match rustix::fs::lremovexattr(dir, name) {
            Ok(()) | Err(rustix::io::Errno::NODATA) => {}
            Err(e) => return Err(fail("removing xattr of", dir)(e.into())),
        }
    }
    Ok(())
}

fn is_opaque(path: &Path) -> io::Result<bool> {
    for name in OPAQUE_XATTRS {
        if get_xattr(path, name)?.as_deref() == Some(b"y") {
            return Ok(true);
        }
    }
    Ok(false)
}

/// BuildKit's `sameDirent`: whether the base's entry at `lower` and the
/// upper dir's at `upper` (lstat `up`) are the same for the layer.
fn same_dirent(lower: &Path, upper: &Path, up: &std::fs::Metadata) -> io::Result<bool> {
    let low = std::fs::symlink_metadata(lower)?;
    if low.dev() == up.dev() && low.ino() == up.ino() {
        return Ok(true);
    }
    if low.mode() != up.mode()
        || low.uid() != up.uid()
        || low.gid() != up.gid()
        || low.rdev() != up.rdev()
    {
        return Ok(false);
    }
    if get_xattr(lower, "security.capability")? != get_xattr(upper, "security.capability")? {
        return Ok(false);
    }
    if up.is_dir() {
        return Ok(true);
    }
    if low.size() != up.size() || low.mtime() != up.mtime() {
        return Ok(false);
    }
    if low.mtime_nsec() == 0 && up.mtime_nsec() == 0 {
        // Both may have lost their nanoseconds in a tar: look inside.
        if up.file_type().is_symlink() {
            return Ok(std::fs::read_link(lower)? == std::fs::read_link(upper)?);
        }
        if up.size() == 0 {
            return Ok(true);
        }
        return same_content(lower, upper, up.size());
    }
    Ok(low.mtime_nsec() == up.mtime_nsec())
}

/// Whether two files of `size` bytes (both checked to have it) hold the
/// same bytes.
fn same_content(a: &Path, b: &Path, size: u64) -> io::Result<bool> {
    let (mut fa, mut fb) = (std::fs::File::open(a)?, std::fs::File::open(b)?);
    let (mut ba, mut bb) = (vec![0u8; 32 * 1024], vec![0u8; 32 * 1024]);
    let mut left = size;
    while left > 0 {
        let n = left.min(ba.len() as u64) as usize;
        fa.read_exact(&mut ba[..n])?;
        fb.read_exact(&mut bb[..n])?;
        if ba[..n] != bb[..n] {
            return Ok(false);
        }
        left -= n as u64;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::attrs::{set_times, set_xattr, Time};
    use crate::exec::parent_fs::LayerStack;
    use std::os::unix::fs::PermissionsExt;

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    /// Copies `rel` from `lower` to `upper` as overlay's copy-up does:
    /// same bytes, mode, owner and times (nanoseconds included).
    fn copy_up(lower: &Path, upper: &Path, rel: &str) {
        let (src, dst) = (lower.join(rel), upper.join(rel));
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        let md = std::fs::symlink_metadata(&src).unwrap();
        if md.is_dir() {
            std::fs::create_dir(&dst).unwrap();
        } else {
            std::fs::copy(&src, &dst).unwrap();
        }
        std::fs::set_permissions(&dst, md.permissions()).unwrap();
        let t = |sec, nsec| Time { sec, nsec };
        set_times(
            &dst,
            t(md.atime(), md.atime_nsec()),
            t(md.mtime(), md.mtime_nsec()),
        )
        .unwrap();
    }

    fn listing(dir: &Path, prefix: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut names: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        for name in names {
            let rel = format!("{prefix}{name}");
            let p = dir.join(&name);
            if std::fs::symlink_metadata(&p).unwrap().is_dir() {
                out.push(format!("{rel}/"));
                out.extend(listing(&p, &format!("{rel}/")));
            } else {
                out.push(rel);
            }
        }
        out
    }

    #[test]
    fn copied_up_entries_that_equal_the_base_are_dropped_with_their_empty_parents() {
        let t = tempfile::tempdir().unwrap();
        let (lower, upper) = (t.path().join("lower"), t.path().join("upper"));
        for f in [
            "etc/.pwd.lock",
            "etc/passwd",
            "etc/same",
            "etc/big",
            "srv/a/x",
        ] {
            write(&lower.join(f), if f.ends_with("lock") { "" } else { f });
        }
        // A tar-unpacked file: whole-second mtime.
        let whole = Time {
            sec: 1_600_000_000,
            nsec: 0,
        };
        set_times(&lower.join("etc/big"), whole, whole).unwrap();
        std::os::unix::fs::symlink("passwd", lower.join("etc/link")).unwrap();
        for rel in [
            "etc",
            "etc/.pwd.lock",
            "etc/same",
            "etc/big",
            "etc/passwd",
            "srv",
            "srv/a",
        ] {
            copy_up(&lower, &upper, rel);
        }
        copy_up(&lower, &upper, "srv/a/x");
        // Real changes: new content, a chmod, a new file, a new empty dir.
        std::fs::write(upper.join("etc/passwd"), "changed").unwrap();
        std::fs::set_permissions(
            upper.join("srv/a/x"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        write(&upper.join("home/new"), "n");
        std::fs::create_dir(upper.join("made")).unwrap();
        drop_unchanged(&upper, &LayerStack::new(vec![lower.clone()])).unwrap();
        assert_eq!(
            listing(&upper, ""),
            [
                "etc/",
                "etc/passwd",
                "home/",
                "home/new",
                "made/",
                "srv/",
                "srv/a/",
                "srv/a/x"
            ]
        );
    }

    #[test]
    fn same_size_and_whole_second_mtime_compare_contents() {
        let t = tempfile::tempdir().unwrap();
        let (lower, upper) = (t.path().join("lower"), t.path().join("upper"));
        write(&lower.join("same"), "abc");
        write(&lower.join("other"), "abc");
        write(&upper.join("same"), "abc");
        write(&upper.join("other"), "xyz");
        let whole = Time {
            sec: 1_600_000_000,
            nsec: 0,
        };
        for f in ["same", "other"] {
            set_times(&lower.join(f), whole, whole).unwrap();
            set_times(&upper.join(f), whole, whole).unwrap();
        }
        drop_unchanged(&upper, &LayerStack::new(vec![lower])).unwrap();
        assert_eq!(listing(&upper, ""), ["other"]);
    }

    fn is_whiteout(path: &Path) -> bool {
        let md = std::fs::symlink_metadata(path).unwrap();
        md.file_type().is_char_device() && md.rdev() == 0
    }

    #[test]
    fn an_opaque_dir_the_base_has_becomes_its_diff_against_the_base() {
        let t = tempfile::tempdir().unwrap();
        let (lower, upper) = (t.path().join("lower"), t.path().join("upper"));
        for f in ["d/a", "d/b", "d/c/x", "d/c/y"] {
            write(&lower.join(f), f);
        }
        // rm -rf d && mkdir -p d/c && restore d/a and d/c/y as they were,
        // then add d/new: overlay made d opaque.
        std::fs::create_dir_all(upper.join("d/c")).unwrap();
        for rel in ["d/a", "d/c/y"] {
            copy_up(&lower, &upper, rel);
        }
        write(&upper.join("d/new"), "n");
        set_xattr(&upper.join("d"), b"trusted.overlay.opaque", b"y").unwrap();
        drop_unchanged(&upper, &LayerStack::new(vec![lower])).unwrap();
        // BuildKit: d/ and d/c/ as parents, deletions of b and c/x, the
        // new file; a and c/y unchanged.
        assert_eq!(listing(&upper, ""), ["d/", "d/b", "d/c/", "d/c/x", "d/new"]);
        assert!(is_whiteout(&upper.join("d/b")) && is_whiteout(&upper.join("d/c/x")));
        assert!(!is_opaque(&upper.join("d")).unwrap());
    }

    #[test]
    fn whiteouts_of_nothing_and_opaque_marks_of_new_dirs_go() {
        let t = tempfile::tempdir().unwrap();
        let (lower, upper) = (t.path().join("lower"), t.path().join("upper"));
        write(&lower.join("old"), "o");
        std::fs::create_dir_all(&upper).unwrap();
        for name in ["old", "never"] {
            nix::sys::stat::mknod(
                &upper.join(name),
                nix::sys::stat::SFlag::S_IFCHR,
                nix::sys::stat::Mode::empty(),
                0,
            )
            .expect("mknod whiteout (needs root)");
        }
        write(&upper.join("fresh/f"), "f");
        set_xattr(&upper.join("fresh"), b"trusted.overlay.opaque", b"y").unwrap();
        drop_unchanged(&upper, &LayerStack::new(vec![lower])).unwrap();
        assert_eq!(listing(&upper, ""), ["fresh/", "fresh/f", "old"]);
        assert!(!is_opaque(&upper.join("fresh")).unwrap());
    }
}
