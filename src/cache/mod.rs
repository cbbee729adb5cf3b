//! kiln's local store: content-addressed blobs, unpacked layer snapshots
//! and the metadata database, under the global `--root`.
//!
//! Layout: every path under the root is named by [`StoreLayout`]
//! (`layout.rs`), the store's own (`kiln.db`, `blobs/sha256/<hex>`,
//! `snapshots/<chain-id hex>/`, `tmp/<pid>-<start>-<nonce>/`, `trash/`,
//! `copy-index/`) and those of the modules that keep files in it.
//!
//! **Invariant: nothing is visible before it is complete.** Blobs and
//! snapshots are written in the writer's scratch dir, verified, fsynced and
//! `rename(2)`d into place; an image name is recorded, in one transaction,
//! only after every blob and snapshot it needs is in place.
//!
//! **Invariant: a row precedes its file.** The `blobs`/`snapshots` row is
//! committed (with a lease on it) before the file is renamed into place,
//! and GC deletes rows and renames their files into its trash inside one
//! write transaction, deleting them only after the commit (`trash.rs`).
//! So GC, holding the write lock, may take any file that has no row, never
//! takes what another process holds, and a kill never leaves a row without
//! its file.
//!
//! Concurrency: any number of kiln processes may use a store at once.
//! SQLite serializes writers (`BEGIN IMMEDIATE`, WAL, busy timeout);
//! files are only ever created by rename (first rename wins for snapshots,
//! identical content for blobs). Crash safety: a killed process leaves
//! only its scratch dir (removed by the next process once the owner is
//! dead) and rows held by its lease (dropped as stale, then collected).

mod build_cache;
pub mod cache_prune;
mod check;
mod containers;
mod content;
mod copy_index;
mod db;
mod disk_usage;
mod gc;
mod images;
mod indexes;
pub mod layout;
mod lease;
mod linked_tree;
pub mod remote;
pub mod scratch;
mod snapshot;
mod step_inputs;
mod step_lock;
mod trash;

use crate::error_chain::Chain;
pub use cache_prune::{PrunePolicy, PruneReport};
pub use check::Problem;
pub use containers::ContainerRow;
pub use content::BlobInfo;
pub use copy_index::CopyIndex;
pub use disk_usage::{CacheRecordUsage, LayerUsage};
pub use gc::GcReport;
pub use images::{Image, ImageSummary, RemoveEvent};
pub use indexes::StoredIndex;
pub use layout::StoreLayout;
pub use lease::Lease;
pub use linked_tree::copy_tree;
pub use snapshot::LayerInfo;
pub use step_lock::StepLock;

use crate::image::digest::{Digest, DigestError};
use crate::image::layer::diff::DiffError;
use crate::image::layer::extract::ExtractError;
use crate::image::reference::ReferenceError;
use rusqlite::{Connection, Transaction, TransactionBehavior};
use scratch::{ProcessId, Scratch};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock};

/// Everything that can go wrong in the store. Messages name the blob,
/// layer or image concerned.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {op}")]
    Io {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("store database")]
    Db(#[from] rusqlite::Error),
    #[error("{what}: digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: Digest,
        actual: Digest,
    },
    #[error("{what}: size mismatch: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        what: String,
        expected: u64,
        actual: u64,
    },
    #[error("blob {0} not found in the store")]
    BlobNotFound(Digest),
    #[error("no such image: {0}")]
    ImageNotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("layer {layer}")]
    Extract {
        layer: String,
        #[source]
        source: ExtractError,
    },
    #[error("layer {layer}")]
    Diff {
        layer: String,
        #[source]
        source: DiffError,
    },
    #[error("{what} {digest}: unsupported media type {media_type:?}")]
    UnsupportedMediaType {
        what: &'static str,
        digest: Digest,
        media_type: String,
    },
    #[error("{what} {digest}: {reason}")]
    Invalid {
        what: &'static str,
        digest: Digest,
        reason: String,
    },
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error(transparent)]
    Digest(#[from] DigestError),
}

/// Shorthand for this module's results.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

pub(crate) fn io_err(path: &Path, op: &'static str) -> impl FnOnce(io::Error) -> StoreError {
    let path = path.to_path_buf();
    move |source| StoreError::Io { path, op, source }
}

/// A handle on the store at one root. Cheap to keep for a process's
/// lifetime; `Send + Sync`, so threads may share it.
pub struct Store {
    layout: StoreLayout,
    db: Mutex<Connection>,
    scratch: OnceLock<Scratch>,
    /// This process's lease, created on first write (so read-only commands
    /// like `kiln images` never write).
    own_lease: Mutex<Option<String>>,
    me: ProcessId,
}

impl Store {
    /// Opens (creating if needed) the store at `root`, removes scratch
    /// dirs of dead processes and, if a dead process left a lease behind,
    /// collects what only that lease held.
    pub fn open(root: &Path) -> Result<Store> {
        let layout = StoreLayout::new(root);
        for p in [layout.blobs(), layout.snapshots(), layout.tmp()] {
            std::fs::create_dir_all(&p).map_err(io_err(&p, "creating store directory"))?;
        }
        let db = db::open(&layout.database())?;
        let store = Store {
            layout,
            db: Mutex::new(db),
            scratch: OnceLock::new(),
            own_lease: Mutex::new(None),
            me: ProcessId::current(),
        };
        let tmp = store.layout.tmp();
        scratch::clean_dead(&tmp).map_err(io_err(&tmp, "cleaning dead scratch dirs"))?;
        store.finish_interrupted_sweeps()?;
        if store.drop_stale_leases()? > 0 {
            store.gc()?;
        }
        Ok(store)
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        self.layout.root()
    }

    /// Where everything under the root lives.
    pub fn layout(&self) -> &StoreLayout {
        &self.layout
    }

    /// Where a blob's file lives (it may not exist).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.layout.blob(digest)
    }

    /// Where a snapshot's directory lives (it may not exist).
    pub fn snapshot_path(&self, chain_id: &Digest) -> PathBuf {
        self.layout.snapshot(chain_id)
    }

    /// A fresh path in this process's scratch dir, on the store's
    /// filesystem: the build puts overlay upper/work dirs here so that
    /// [`Store::add_layer_from_dir`] can rename them into the store.
    pub fn scratch_path(&self, what: &str) -> Result<PathBuf> {
        Ok(self.scratch()?.path(what))
    }

    fn scratch(&self) -> Result<&Scratch> {
        if let Some(s) = self.scratch.get() {
            return Ok(s);
        }
        let tmp = self.layout.tmp();
        let s = Scratch::create(&tmp).map_err(io_err(&tmp, "creating scratch dir"))?;
        // A racing thread may have set one first; ours is then dropped
        // (and removed) and theirs used.
        let _ = self.scratch.set(s);
        self.scratch
            .get()
            .ok_or_else(|| StoreError::Conflict("scratch dir vanished".into()))
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves the connection usable
        // (rusqlite rolls back unfinished transactions on drop).
        self.db.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` in an IMMEDIATE (write-locked) transaction and commits.
    fn write<T>(&self, f: impl FnOnce(&Transaction) -> Result<T>) -> Result<T> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }

    /// Runs `f` in a read transaction (a consistent snapshot in WAL mode).
    fn read<T>(&self, f: impl FnOnce(&Transaction) -> Result<T>) -> Result<T> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred)?;
        f(&tx)
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        let lease = self
            .own_lease
            .get_mut()
            .map(|l| l.take())
            .unwrap_or_else(|p| p.into_inner().take());
        if let Some(id) = lease {
            // What only this process held (e.g. a failed pull) is garbage now.
            let held = self.release_lease_id(&id).unwrap_or(0);
            if held > 0 {
                if let Err(e) = self.gc() {
                    tracing::warn!("collecting after releasing lease {id}: {e}", e = Chain(&e));
                }
            }
        }
    }
}

/// Parses a digest stored in the database (written by us, so a failure
/// means a corrupt database).
fn stored_digest(s: String) -> Result<Digest> {
    Ok(s.parse()?)
}

/// fsyncs a directory so that a rename into it is durable.
fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(io_err(dir, "syncing directory"))
}

#[cfg(test)]
mod tests;
