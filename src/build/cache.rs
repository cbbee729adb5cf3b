//! The solver's [`CacheStore`] for real builds: step results in the
//! store's build cache table, kept across builds and processes.
//!
//! It also remembers every result it saw during this build (hits and
//! fresh records), which tells the build which steps added a layer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::cache::Store;
use crate::exec::{Artifact, Rootfs};
use crate::image::timestamp::now_rfc3339;
use crate::solver::executor::Claim;
use crate::solver::{CacheKey, CacheStore};

/// Step results by cache key, persisted in the store.
pub struct BuildCache {
    store: Arc<Store>,
    seen: Mutex<HashMap<CacheKey, Rootfs>>,
    /// When results recorded by this build were made.
    made: Mutex<HashMap<CacheKey, String>>,
}

impl BuildCache {
    /// A cache over `store`'s build cache records.
    pub fn new(store: Arc<Store>) -> BuildCache {
        BuildCache {
            store,
            seen: Mutex::new(HashMap::new()),
            made: Mutex::new(HashMap::new()),
        }
    }

    /// How many layers the result under `key` has (from this build, or
    /// as recorded in the store, read without leasing anything).
    pub fn layer_count(&self, key: &CacheKey) -> Option<usize> {
        if let Some(r) = self.seen.lock().ok().and_then(|s| s.get(key).cloned()) {
            return Some(r.layers.len());
        }
        match self.store.build_cache_chains(key.digest()) {
            Ok(chains) => chains.map(|c| c.len()),
            Err(e) => {
                tracing::warn!("build cache read {key}: {e}");
                None
            }
        }
    }

    /// When the result under `key` was made (RFC 3339): by this build, or
    /// as recorded by the one that made it. The image history shows it, as
    /// BuildKit's exporter shows a layer's cache ref creation time, so an
    /// unchanged step keeps its time.
    pub fn created(&self, key: &CacheKey) -> Option<String> {
        if let Some(t) = self.made.lock().ok().and_then(|m| m.get(key).cloned()) {
            return Some(t);
        }
        match self.store.build_cache_created(key.digest()) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!("build cache read {key}: {e}");
                None
            }
        }
    }

    fn remember(&self, key: &CacheKey, rootfs: &Rootfs) {
        if let Ok(mut seen) = self.seen.lock() {
            seen.insert(key.clone(), rootfs.clone());
        }
    }
}

impl CacheStore<Artifact> for BuildCache {
    fn contains(&self, key: &CacheKey) -> bool {
        match self.store.build_cache_chains(key.digest()) {
            Ok(chains) => chains.is_some(),
            Err(e) => {
                tracing::warn!("build cache read {key}: {e}");
                false
            }
        }
    }

    fn lookup(&self, key: &CacheKey) -> Option<Artifact> {
        match self.store.build_cache_get(key.digest()) {
            Ok(Some(layers)) => {
                let rootfs = Rootfs::new(layers);
                self.remember(key, &rootfs);
                Some(Artifact::Rootfs(rootfs))
            }
            Ok(None) => None,
            Err(e) => {
                tracing::warn!("build cache lookup {key}: {e}");
                None
            }
        }
    }

    /// Kiln processes on one store meet on its step locks
    /// (`<root>/locks/<key hex>`, see `cache::step_lock`).
    fn try_claim(&self, key: &CacheKey) -> Claim {
        match self.store.try_lock_step(key.digest()) {
            Ok(Some(lock)) => Claim::Held(Box::new(lock)),
            Ok(None) => Claim::Busy,
            Err(e) => {
                // Only an optimization: the step runs unshared.
                tracing::warn!("step lock {key}: {e}");
                Claim::Unshared
            }
        }
    }

    fn record(&self, key: &CacheKey, output: &Artifact) {
        // Contexts are never recorded: their key does not cover content.
        let Artifact::Rootfs(rootfs) = output else {
            return;
        };
        self.remember(key, rootfs);
        let created = now_rfc3339();
        if let Ok(mut made) = self.made.lock() {
            made.insert(key.clone(), created.clone());
        }
        if let Err(e) = self
            .store
            .build_cache_put(key.digest(), &rootfs.chain_ids(), &created)
        {
            tracing::warn!("build cache record {key}: {e}");
        }
    }
}
