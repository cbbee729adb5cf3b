//! A layer stack seen as one directory on the host, for the steps that
//! read a whole filesystem by path: `COPY --from=stage` sources and
//! `RUN --mount=type=bind,from=stage`; also the writable view of the
//! build context (one "layer": the user's directory) a `rw` bind gets.
//!
//! One read-only layer is used in place (it already is the filesystem).
//! Anything else is an overlayfs mount of the layers with a throwaway
//! upper dir in the store's scratch space, so writes through it (a
//! `rw` bind mount) never reach a snapshot and vanish with the view. The
//! mount lives in the host's mount namespace for as long as the view:
//! copies read it from other threads and containers bind it. It is
//! detached when the view is dropped, and a build killed while one is
//! mounted has it detached by the next store open (`cache::scratch`).

use crate::error_chain::Chain;
use std::path::{Path, PathBuf};

use crate::cache::{Store, StoreError};
use crate::runtime::overlay::{Overlay, OverlayError};

/// Why a view could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("preparing a view of {layers} layer(s) at {path}")]
    Io {
        layers: usize,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Mount(#[from] OverlayError),
}

/// A merged, host-visible view of layers; unmounted and removed on drop.
#[derive(Debug)]
pub struct StackView {
    path: PathBuf,
    /// The scratch dir owning the mount point, upper and work dirs.
    owned: Option<PathBuf>,
    mounted: bool,
}

impl StackView {
    /// A view of `layers` (bottom first). `writable`: writes must not
    /// reach the layers (they land in a throwaway upper dir).
    pub fn new(store: &Store, layers: &[PathBuf], writable: bool) -> Result<StackView, ViewError> {
        if layers.len() == 1 && !writable {
            return Ok(StackView {
                path: layers[0].clone(),
                owned: None,
                mounted: false,
            });
        }
        let dir = store.scratch_path("view")?;
        let io = |path: &Path| {
            let path = path.to_path_buf();
            let layers = layers.len();
            move |source| ViewError::Io {
                layers,
                path,
                source,
            }
        };
        let merged = dir.join("merged");
        std::fs::create_dir_all(&merged).map_err(io(&merged))?;
        let mut view = StackView {
            path: merged.clone(),
            owned: Some(dir.clone()),
            mounted: false,
        };
        if layers.is_empty() {
            // An empty filesystem: a plain directory will do.
            return Ok(view);
        }
        let (upper, work) = (dir.join("upper"), dir.join("work"));
        for d in [&upper, &work] {
            std::fs::create_dir(d).map_err(io(d))?;
        }
        Overlay {
            lowers: layers,
            upper: &upper,
            work: &work,
            // The upper dir is thrown away with the view.
            volatile: true,
        }
        .mount(&merged)?;
        view.mounted = true;
        Ok(view)
    }

    /// The directory showing the merged filesystem.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for StackView {
    fn drop(&mut self) {
        if self.mounted {
            if let Err(e) = nix::mount::umount2(&self.path, nix::mount::MntFlags::MNT_DETACH) {
                tracing::warn!(
                    "unmounting layer view {}: {e}",
                    self.path.display(),
                    e = Chain(&e)
                );
                return;
            }
        }
        if let Some(dir) = &self.owned {
            if let Err(e) = crate::cache::scratch::remove_tree(dir) {
                tracing::warn!("removing layer view {}: {e}", dir.display(), e = Chain(&e));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_merge_layers_and_keep_writes_away_from_them() {
        let t = tempfile::tempdir().unwrap();
        let store = Store::open(&t.path().join("root")).unwrap();
        let (a, b) = (t.path().join("a"), t.path().join("b"));
        std::fs::create_dir_all(a.join("d")).unwrap();
        std::fs::create_dir_all(b.join("d")).unwrap();
        std::fs::write(a.join("d/x"), "a").unwrap();
        std::fs::write(b.join("d/y"), "b").unwrap();
        let one = StackView::new(&store, std::slice::from_ref(&a), false).unwrap();
        assert_eq!(one.path(), a);
        drop(one);
        let view = StackView::new(&store, &[a.clone(), b.clone()], true).unwrap();
        let merged = view.path().to_path_buf();
        assert_eq!(std::fs::read_to_string(merged.join("d/x")).unwrap(), "a");
        assert_eq!(std::fs::read_to_string(merged.join("d/y")).unwrap(), "b");
        std::fs::write(merged.join("d/x"), "changed").unwrap();
        assert_eq!(std::fs::read_to_string(a.join("d/x")).unwrap(), "a");
        drop(view);
        assert!(!merged.exists(), "view removed");
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(!mounts.contains(&merged.display().to_string()));
    }
}
