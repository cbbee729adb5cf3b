//! A step's result: a root filesystem as a stack of store snapshots, and
//! how a step's new layer directory is added on top of one.
//!
//! Every committed directory adds a layer, an empty one too: BuildKit
//! snapshots each exec and file op's output and its differ writes an empty
//! diff as an empty tar (1024 zero bytes, diff ID `sha256:5f70bf18...`),
//! which the image exporter keeps like any other layer (moby/buildkit
//! `cache/blobs.go` `computeBlobChain`, `exporter/containerimage/writer.go`
//! `normalizeLayersAndHistory`, which only reconciles the frontend's
//! `empty_layer` flags with the layer count). With `SOURCE_DATE_EPOCH`
//! every mtime is clamped to the epoch first, so a rebuild of the same
//! content gives the same layer, byte for byte.

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

    /// The diff ID of an empty tar (two zero blocks), what BuildKit's
    /// image has for a step that changed nothing.
    const EMPTY_TAR_DIFF_ID: &str =
        "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef";

    #[test]
    fn empty_dirs_add_the_empty_layer_and_epochs_make_layers_reproducible() {
        let t = tempfile::tempdir().unwrap();
        let store = Store::open(t.path()).unwrap();
        let base = Rootfs::default();
        let mut below = base.clone();
        // Twice: the same diff ID at two places of one stack.
        for n in 1..=2 {
            let empty = store.scratch_path("l").unwrap();
            std::fs::create_dir(&empty).unwrap();
            below = below.commit(&store, &empty, None).unwrap();
            assert_eq!(below.layers.len(), n);
            assert_eq!(below.layers[n - 1].diff_id.to_string(), EMPTY_TAR_DIFF_ID);
        }
        assert_ne!(below.layers[0].chain_id, below.layers[1].chain_id);
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
