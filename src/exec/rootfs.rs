//! A step's result: a root filesystem as a stack of store snapshots, and
//! how a step's new layer directory is added on top of one.
//!
//! A layer directory that ends up empty adds no layer (BuildKit exports
//! no layer for a step that changed nothing); with `SOURCE_DATE_EPOCH`
//! every mtime in it is clamped to the epoch first, so a rebuild of the
//! same content gives the same layer, byte for byte.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::cache::{LayerInfo, Store, StoreError};
use crate::image::Digest;

/// A root filesystem: layers bottom to top (empty: `scratch`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rootfs {
    /// The layers, bottom to top.
    pub layers: Arc<Vec<LayerInfo>>,
}

impl Rootfs {
    /// A root filesystem of `layers`.
    pub fn new(layers: Vec<LayerInfo>) -> Rootfs {
        Rootfs {
            layers: Arc::new(layers),
        }
    }

    /// The snapshot directories, bottom first (overlay lower dirs).
    pub fn dirs(&self, store: &Store) -> Vec<PathBuf> {
        self.layers
            .iter()
            .map(|l| store.snapshot_path(&l.chain_id))
            .collect()
    }

    /// The chain ID of the top layer.
    pub fn top(&self) -> Option<&Digest> {
        self.layers.last().map(|l| &l.chain_id)
    }

    /// The chain IDs, bottom first.
    pub fn chain_ids(&self) -> Vec<Digest> {
        self.layers.iter().map(|l| l.chain_id.clone()).collect()
    }

    /// Adds the layer directory `dir` on top (it is consumed: moved into
    /// the store or removed). `epoch` clamps mtimes first.
    pub fn commit(
        &self,
        store: &Store,
        dir: &Path,
        epoch: Option<i64>,
    ) -> Result<Rootfs, StoreError> {
        let io = |op: &'static str| {
            let path = dir.to_path_buf();
            move |source| StoreError::Io { path, op, source }
        };
        let empty = std::fs::read_dir(dir)
            .map_err(io("reading layer dir"))?
            .next()
            .is_none();
        if empty {
            crate::cache::scratch::remove_tree(dir).map_err(io("removing empty layer dir"))?;
            return Ok(self.clone());
        }
        if let Some(epoch) = epoch {
            clamp_mtimes(dir, epoch).map_err(io("clamping mtimes"))?;
        }
        let info = store.add_layer_from_dir(dir, self.top())?;
        let mut layers = (*self.layers).clone();
        layers.push(info);
        Ok(Rootfs::new(layers))
    }
}

/// Sets every mtime (and atime) later than `epoch` to `epoch`, symlinks
/// included, without following them (`SOURCE_DATE_EPOCH` semantics).
pub fn clamp_mtimes(dir: &Path, epoch: i64) -> std::io::Result<()> {
    let md = std::fs::symlink_metadata(dir)?;
    if md.is_dir() {
        for entry in std::fs::read_dir(dir)? {
            clamp_mtimes(&entry?.path(), epoch)?;
        }
    }
    if md.mtime() > epoch {
        let t = crate::exec::attrs::Time {
            sec: epoch,
            nsec: 0,
        };
        crate::exec::attrs::set_times(dir, t, t)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_dirs_add_no_layer_and_epochs_make_layers_reproducible() {
        let t = tempfile::tempdir().unwrap();
        let store = Store::open(t.path()).unwrap();
        let base = Rootfs::default();
        let empty = store.scratch_path("l").unwrap();
        std::fs::create_dir(&empty).unwrap();
        assert_eq!(base.commit(&store, &empty, None).unwrap(), base);
        assert!(!empty.exists());
        // Two trees made at different times (nanosecond mtimes differ).
        let mut ids = Vec::new();
        for _ in 0..2 {
            let dir = store.scratch_path("l").unwrap();
            std::fs::create_dir_all(dir.join("d")).unwrap();
            std::fs::write(dir.join("d/f"), "same").unwrap();
            std::os::unix::fs::symlink("f", dir.join("d/link")).unwrap();
            let next = base.commit(&store, &dir, Some(1_000_000)).unwrap();
            assert_eq!(next.layers.len(), 1);
            ids.push(next.layers[0].diff_id.clone());
        }
        assert_eq!(ids[0], ids[1]);
    }
}
