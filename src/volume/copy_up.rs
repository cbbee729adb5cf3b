//! docker's copy-up: a volume mounted where the image has files starts
//! with a copy of them, owner and mode of the directory included, but only
//! while the volume is empty (moby/moby `container/container_unix.go`,
//! `CopyImagePathContent` → `copyExistingContents`: nothing when the
//! volume's directory has entries, else continuity's `fs.CopyDir`, which
//! also gives the volume's root the image directory's owner and mode).
//! `nocopy` turns it off (the caller's choice). Differs from docker in one
//! point: extended attributes are not copied ([`crate::cache::copy_tree`]
//! leaves them, as for the other copies that leave the store).
//!
//! The image's view at the mount point is the overlay of its layers, so
//! it is mounted: on a thread of its own that first enters a private
//! mount namespace (`unshare(CLONE_NEWNS)`, allowed per thread because it
//! unshares the thread's `fs_struct`), so the overlay never shows in the
//! host's mount table and goes away with the thread, even if kiln is
//! killed mid-copy. The path is resolved inside the merged tree like
//! securejoin ([`crate::fs::path_in_root`]): an image's symlink cannot make
//! kiln copy host files.

use crate::error_chain::Chain;
use crate::runtime::overlay::Overlay;
use nix::mount::MsFlags;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The lock file beside a volume's `_data` held while copying into it.
const COPY_LOCK: &str = "copy.lock";

/// Why the image's files could not be copied into a volume.
#[derive(Debug, thiserror::Error)]
pub enum CopyUpError {
    /// The overlay of the image's layers could not be mounted.
    #[error("failed to mount the image's layers")]
    Overlay(#[source] crate::runtime::overlay::OverlayError),
    /// Reading the image or writing the volume failed.
    #[error("failed to copy the image's {path} into volume {}", volume.display())]
    Copy {
        /// The path in the image.
        path: String,
        /// The volume's data dir.
        volume: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The private mount namespace could not be made.
    #[error("failed to make a private mount namespace for the copy")]
    Namespace(#[source] io::Error),
}

/// Copies what the image made of `lowers` (bottom first) has at `path`
/// into the volume directory `data` if `data` is empty; `scratch` is an
/// empty dir kiln may use (for the overlay's upper, work and mount
/// point). Returns whether anything was copied.
pub fn copy_image_path(
    lowers: &[PathBuf],
    scratch: &Path,
    path: &str,
    data: &Path,
) -> Result<bool, CopyUpError> {
    let copy_err = |source: io::Error| CopyUpError::Copy {
        path: path.to_string(),
        volume: data.to_path_buf(),
        source,
    };
    // Two containers starting on one new volume take turns: the second
    // finds it full and copies nothing (a lock file next to `_data`,
    // released when this returns or kiln dies).
    let lock_path = data.with_file_name(COPY_LOCK);
    let lock = std::fs::File::create(&lock_path).map_err(copy_err)?;
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)
        .map_err(|e| copy_err(e.into()))?;
    if !is_empty_dir(data).map_err(copy_err)? {
        return Ok(false);
    }
    std::thread::scope(|s| {
        s.spawn(|| copy_in_private_namespace(lowers, scratch, path, data))
            .join()
            .unwrap_or_else(|_| Err(copy_err(io::Error::other("the copy thread panicked"))))
    })
}

fn is_empty_dir(dir: &Path) -> io::Result<bool> {
    Ok(std::fs::read_dir(dir)?.next().is_none())
}

/// Runs on a thread of its own: its mount namespace dies with it.
fn copy_in_private_namespace(
    lowers: &[PathBuf],
    scratch: &Path,
    path: &str,
    data: &Path,
) -> Result<bool, CopyUpError> {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
        .map_err(|e| CopyUpError::Namespace(e.into()))?;
    // Nothing mounted here may reach the host's namespace (a shared root
    // would propagate it).
    nix::mount::mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| CopyUpError::Namespace(e.into()))?;
    let copy_err = |source: io::Error| CopyUpError::Copy {
        path: path.to_string(),
        volume: data.to_path_buf(),
        source,
    };
    let (upper, work, merged) = (
        scratch.join("upper"),
        scratch.join("work"),
        scratch.join("merged"),
    );
    for d in [&upper, &work, &merged] {
        std::fs::create_dir_all(d).map_err(copy_err)?;
    }
    Overlay {
        lowers,
        upper: &upper,
        work: &work,
        volatile: true,
    }
    .mount(&merged)
    .map_err(CopyUpError::Overlay)?;
    let source =
        crate::fs::path_in_root::resolve_in_root(&merged, Path::new(path)).map_err(copy_err)?;
    let md = match std::fs::symlink_metadata(&source) {
        Ok(md) => md,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(copy_err(e)),
    };
    // docker copies directories; a file at the mount point makes the bind
    // of a directory fail later, with its own error.
    if !md.is_dir() {
        return Ok(false);
    }
    crate::cache::copy_tree(&source, data).map_err(copy_err)?;
    // As `fs.CopyDir` does: the volume's root takes the image dir's owner
    // and mode.
    std::os::unix::fs::chown(data, Some(md.uid()), Some(md.gid())).map_err(copy_err)?;
    std::fs::set_permissions(data, std::fs::Permissions::from_mode(md.mode() & 0o7777))
        .map_err(copy_err)?;
    tracing::debug!("copied the image's {path} into {}", data.display());
    // The overlay goes with this thread's namespace; unmount anyway so
    // the scratch dir can be removed at once.
    if let Err(e) = nix::mount::umount2(&merged, nix::mount::MntFlags::MNT_DETACH) {
        tracing::debug!(
            "unmounting {}: {}",
            merged.display(),
            Chain(&io::Error::from(e))
        );
    }
    Ok(true)
}
