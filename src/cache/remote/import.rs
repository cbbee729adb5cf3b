//! `--cache-from`: imported records the solver can hit on, fetched lazily.
//!
//! [`Imports::load`] reads each cache's description (nothing else) before
//! the build. The build cache then answers "is this step cached?" from the
//! local records and these; only when a result is taken
//! ([`Imports::materialize`]) are the layer blobs its snapshots lack
//! fetched, verified, unpacked and recorded locally, so a step that is
//! never taken (one below another cached step) costs no transfer.
//!
//! A cache that cannot be read, or whose blob turns out missing or wrong,
//! is dropped whole with one warning naming it and the reason, and the
//! build goes on without it, as in BuildKit: an importer that failed to
//! load is a `lazyCacheManager` whose `Query` finds nothing (moby/buildkit
//! `solver/llbsolver/bridge.go`, `llbBridge.loadResult` waits for the
//! importers but drops their errors).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use super::description::{Description, Record};
use super::location::Location;
use super::spec::CacheFrom;
use super::RemoteCacheError;
use crate::cache::{LayerInfo, Store};
use crate::error_chain::Chain;
use crate::image::layer::chain_id;
use crate::image::oci::Descriptor;
use crate::image::registry::ClientOptions;
use crate::image::{Digest, ImageRef};

/// An imported result as blobs where its cache lives, not fetched: what
/// a build that only pushes its result needs (see [`Imports::remote`]).
#[derive(Debug, Clone)]
pub struct RemoteResult {
    /// The registry repository holding the blobs; `None` for a directory
    /// cache (its blobs can only be pushed by reading them).
    pub cache: Option<ImageRef>,
    /// Each layer's diff ID and blob, bottom to top.
    pub layers: Vec<(Digest, Descriptor)>,
}

impl RemoteResult {
    /// The layers as the solver passes results around. Nothing of them is
    /// in the store: no snapshot, no blob; the size is the blob's (the
    /// content size is unknown until unpacked).
    pub fn layer_infos(&self) -> Vec<LayerInfo> {
        let diffs: Vec<Digest> = self.layers.iter().map(|(d, _)| d.clone()).collect();
        crate::image::layer::chain_ids(&diffs)
            .into_iter()
            .zip(&self.layers)
            .map(|(chain_id, (diff_id, blob))| LayerInfo {
                diff_id: diff_id.clone(),
                chain_id,
                size: blob.size,
                tar_size: None,
                blobs: vec![blob.clone()],
            })
            .collect()
    }

    /// The layer blobs, bottom to top.
    pub fn blobs(&self) -> Vec<Descriptor> {
        self.layers.iter().map(|(_, b)| b.clone()).collect()
    }
}

/// One imported cache.
struct Source {
    location: Location,
    description: Description,
    /// Set once something in it proved unusable: its records are gone.
    broken: AtomicBool,
}

/// Every `--cache-from` cache of a build.
#[derive(Default)]
pub struct Imports {
    sources: Vec<Source>,
    /// Where each key's record is: (source, record); the first cache
    /// named wins, as buildx tries its importers in order.
    by_key: HashMap<Digest, (usize, usize)>,
    fetched_bytes: AtomicU64,
    fetched_blobs: AtomicU64,
    /// Warnings given, in order (each also printed once).
    warnings: Mutex<Vec<String>>,
}

impl Imports {
    /// Reads the description of each cache; one that cannot be read is
    /// left out with a warning.
    pub fn load(froms: &[CacheFrom], options: &ClientOptions) -> Imports {
        let mut imports = Imports::default();
        for from in froms {
            let read = (|| -> Result<_, RemoteCacheError> {
                let location = match from {
                    CacheFrom::Registry(r) => Location::registry(r, options)?,
                    CacheFrom::Local(dir) => Location::Local(dir.clone()),
                };
                let read = location.read()?;
                Ok((location, read))
            })();
            match read {
                Ok((location, read)) => {
                    tracing::debug!(
                        cache = %location,
                        records = read.description.records.len(),
                        inline = read.inline,
                        "cache imported"
                    );
                    imports.add(location, read.description);
                }
                Err(e) => imports.warn(&from.to_string(), &e),
            }
        }
        imports
    }

    fn add(&mut self, location: Location, description: Description) {
        let n = self.sources.len();
        for (i, r) in description.records.iter().enumerate() {
            self.by_key.entry(r.key.clone()).or_insert((n, i));
        }
        self.sources.push(Source {
            location,
            description,
            broken: AtomicBool::new(false),
        });
    }

    fn warn(&self, name: &str, err: &dyn std::error::Error) {
        let line = format!(
            "WARNING: cache import from {name} failed, building without it: {}",
            Chain(err)
        );
        eprintln!("{line}");
        if let Ok(mut w) = self.warnings.lock() {
            w.push(line);
        }
    }

    /// The warnings given so far.
    pub fn warnings(&self) -> Vec<String> {
        self.warnings.lock().map(|w| w.clone()).unwrap_or_default()
    }

    /// Whether nothing was imported.
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    fn record(&self, key: &Digest) -> Option<(&Source, &Record)> {
        let (s, r) = *self.by_key.get(key)?;
        let source = &self.sources[s];
        if source.broken.load(Ordering::SeqCst) {
            return None;
        }
        Some((source, &source.description.records[r]))
    }

    /// Whether a usable imported record has `key`.
    pub fn contains(&self, key: &Digest) -> bool {
        self.record(key).is_some()
    }

    /// The imported record under `key`, if its cache is still usable.
    pub fn record_of(&self, key: &Digest) -> Option<Record> {
        self.record(key).map(|(_, r)| r.clone())
    }

    /// When the imported result under `key` was made.
    pub fn created(&self, key: &Digest) -> Option<String> {
        self.record(key).map(|(_, r)| r.created.clone())
    }

    /// How many layers the imported result under `key` has.
    pub fn layer_count(&self, key: &Digest) -> Option<usize> {
        self.record(key).map(|(_, r)| r.layers.len())
    }

    /// Bytes and blobs fetched so far.
    pub fn fetched(&self) -> (u64, u64) {
        (
            self.fetched_bytes.load(Ordering::SeqCst),
            self.fetched_blobs.load(Ordering::SeqCst),
        )
    }

    /// The imported result under `key` as blobs where its cache lives,
    /// fetching nothing; `None` if no usable record has it, or a layer's
    /// blob is not described (an inline cache's are the image's).
    pub fn remote(&self, key: &Digest) -> Option<RemoteResult> {
        let (source, record) = self.record(key)?;
        let layers = record
            .layers
            .iter()
            .map(|d| Some((d.clone(), source.description.layers.get(d)?.clone())))
            .collect::<Option<Vec<_>>>()?;
        let cache = match &source.location {
            Location::Registry { reference, .. } => Some(reference.clone()),
            Location::Local(_) => None,
        };
        Some(RemoteResult { cache, layers })
    }

    /// Makes the imported result under `key` a local build cache record:
    /// the snapshots it lacks are fetched (verified) and unpacked, then the
    /// record is written with the time the step made it. Returns the
    /// result's layers, leased; `None` (after a warning, dropping that
    /// cache) if it cannot be had.
    pub fn materialize(&self, store: &Store, key: &Digest) -> Option<Vec<LayerInfo>> {
        let (source, record) = self.record(key)?;
        let result = (|| -> Result<Option<Vec<LayerInfo>>, RemoteCacheError> {
            let mut parent: Option<Digest> = None;
            let mut chains = Vec::with_capacity(record.layers.len());
            for diff in &record.layers {
                let chain = chain_id(parent.as_ref(), diff);
                if !store.hold_existing_snapshot(&chain)? {
                    let blob = source
                        .description
                        .layers
                        .get(diff)
                        .ok_or_else(|| RemoteCacheError::MissingLayer(diff.clone()))?;
                    if store.hold_existing_blob(&blob.digest)?.is_none() {
                        let n = source.location.fetch_blob(store, blob)?;
                        self.fetched_bytes.fetch_add(n, Ordering::SeqCst);
                        self.fetched_blobs.fetch_add(1, Ordering::SeqCst);
                    }
                    store.add_layer_from_blob(blob, diff, parent.as_ref())?;
                }
                chains.push(chain.clone());
                parent = Some(chain);
            }
            store.build_cache_put(key, &chains, &record.created)?;
            Ok(store.build_cache_get(key)?)
        })();
        match result {
            Ok(layers) => layers,
            Err(e) => {
                // Only the first failure warns: the cache is dropped whole.
                if !source.broken.swap(true, Ordering::SeqCst) {
                    self.warn(&source.location.to_string(), &e);
                }
                None
            }
        }
    }

    /// Fills the new, empty cache mount directory `dir` with the content
    /// an imported cache holds for `id` (its layer fetched, verified and
    /// unpacked first). Returns whether it did; on failure `dir` is left
    /// empty and that cache is dropped with a warning.
    pub fn restore_mount(&self, store: &Store, id: &str, dir: &std::path::Path) -> bool {
        let found = self
            .sources
            .iter()
            .filter(|s| !s.broken.load(Ordering::SeqCst))
            .find_map(|s| Some((s, s.description.mounts.iter().find(|m| m.id == id)?)));
        let Some((source, mount)) = found else {
            return false;
        };
        let result = (|| -> Result<(), RemoteCacheError> {
            let blob = source
                .description
                .layers
                .get(&mount.layer)
                .ok_or_else(|| RemoteCacheError::MissingLayer(mount.layer.clone()))?;
            let chain = chain_id(None, &mount.layer);
            if !store.hold_existing_snapshot(&chain)? {
                if store.hold_existing_blob(&blob.digest)?.is_none() {
                    let n = source.location.fetch_blob(store, blob)?;
                    self.fetched_bytes.fetch_add(n, Ordering::SeqCst);
                    self.fetched_blobs.fetch_add(1, Ordering::SeqCst);
                }
                store.add_layer_from_blob(blob, &mount.layer, None)?;
            }
            let snapshot = store.snapshot_path(&chain);
            crate::cache::copy_tree(&snapshot, dir).map_err(|source| RemoteCacheError::Io {
                path: snapshot.clone(),
                op: "copying a cache mount out of its layer",
                source,
            })
        })();
        match result {
            Ok(()) => true,
            Err(e) => {
                if let Ok(entries) = std::fs::read_dir(dir) {
                    for e in entries.flatten() {
                        let _ = crate::cache::scratch::remove_tree(&e.path());
                    }
                }
                if !source.broken.swap(true, Ordering::SeqCst) {
                    self.warn(&source.location.to_string(), &e);
                }
                false
            }
        }
    }
}
