//! The solver's [`CacheStore`] for real builds: step results in the
//! store's build cache table, kept across builds and processes.
//!
//! It also remembers every result it saw during this build (hits and
//! fresh records), which tells the build which steps added a layer, keeps
//! what went into each fresh record (`<root>/step-inputs/`), and with
//! `--explain` says why each step missed (`solver::explain`).
//!
//! Records imported with `--cache-from` answer after the local ones: a
//! step is cached if either has it, and an imported result becomes a
//! local record (its layers fetched) only when the solver takes it.

use crate::error_chain::Chain;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::cache::remote::{Imports, RemoteResult};
use serde::{Deserialize, Serialize};

use crate::cache::Store;
use crate::exec::{Artifact, Rootfs};
use crate::image::timestamp::now_rfc3339;
use crate::image::Digest;
use crate::solver::executor::Claim;
use crate::solver::explain::{first_difference, StepInputs};
use crate::solver::{CacheKey, CacheStore};

/// Step results by cache key, persisted in the store.
pub struct BuildCache {
    store: Arc<Store>,
    seen: Mutex<HashMap<CacheKey, Rootfs>>,
    /// When results recorded by this build were made.
    made: Mutex<HashMap<CacheKey, String>>,
    /// `--cache-from` records.
    imports: Arc<Imports>,
    /// What went into each key of this build, with the step's lineage.
    inputs: Mutex<HashMap<CacheKey, (Digest, StepInputs)>>,
    /// `--explain`: why each missed step missed, by step name.
    explain: Option<Mutex<Vec<(String, String)>>>,
    /// Which build this is, for "the same step": see [`BuildCache::scoped`].
    scope: String,
    /// Whether the target's result may stay in its imported cache: see
    /// [`BuildCache::deferring_target`].
    defer_target: bool,
    /// Targets taken that way, by key.
    remote: Mutex<HashMap<CacheKey, RemoteResult>>,
}

/// What `<root>/step-inputs/<lineage hex>` holds: the last recorded key
/// of the step and what went into it.
#[derive(Serialize, Deserialize)]
struct Recorded {
    key: Digest,
    inputs: StepInputs,
}

impl BuildCache {
    /// A cache over `store`'s build cache records.
    pub fn new(store: Arc<Store>, imports: Arc<Imports>) -> BuildCache {
        BuildCache {
            store,
            seen: Mutex::new(HashMap::new()),
            made: Mutex::new(HashMap::new()),
            imports,
            inputs: Mutex::new(HashMap::new()),
            explain: None,
            scope: String::new(),
            defer_target: false,
            remote: Mutex::new(HashMap::new()),
        }
    }

    /// The build only pushes its result (no local image, no local
    /// output, no cache export), so a target result found only in an
    /// imported cache is not fetched: the solver gets its layers as the
    /// cache's blobs, and the build pushes them from there
    /// ([`BuildCache::remote_result`]).
    pub fn deferring_target(mut self) -> BuildCache {
        self.defer_target = true;
        self
    }

    /// The imported result `key` was taken as, not fetched (see
    /// [`BuildCache::deferring_target`]).
    pub fn remote_result(&self, key: &CacheKey) -> Option<RemoteResult> {
        self.remote.lock().ok()?.get(key).cloned()
    }

    /// Steps are "the same" only within builds of one `scope` (the
    /// context and Dockerfile): two projects sharing a store each have a
    /// step 2 of their first stage, and one must not explain the other's.
    pub fn scoped(mut self, scope: String) -> BuildCache {
        self.scope = scope;
        self
    }

    /// The step lineage within this build's scope.
    fn scoped_lineage(&self, lineage: &Digest) -> Digest {
        Digest::sha256_of(format!("{}\0{lineage}", self.scope).as_bytes())
    }

    /// Also says why each step missed ([`BuildCache::explanations`]).
    pub fn explaining(mut self) -> BuildCache {
        self.explain = Some(Mutex::new(Vec::new()));
        self
    }

    /// `step name: why it missed`, for each step that missed, by name.
    pub fn explanations(&self) -> Vec<String> {
        let Some(explain) = &self.explain else {
            return Vec::new();
        };
        let mut lines: Vec<String> = explain
            .lock()
            .map(|e| {
                e.iter()
                    .map(|(step, why)| format!("{step}: {why}"))
                    .collect()
            })
            .unwrap_or_default();
        lines.sort();
        lines
    }

    /// Why the step with `inputs` missed, against the last record of its
    /// lineage.
    fn why_missed(&self, lineage: &Digest, inputs: &StepInputs) -> String {
        let Some(bytes) = self.store.step_inputs_get(lineage) else {
            return "no earlier record of this step".into();
        };
        match serde_json::from_slice::<Recorded>(&bytes) {
            Ok(last) => first_difference(&last.inputs, inputs),
            Err(_) => "no readable earlier record of this step".into(),
        }
    }

    /// How many layers the result under `key` has (from this build, or
    /// as recorded in the store, read without leasing anything).
    pub fn layer_count(&self, key: &CacheKey) -> Option<usize> {
        if let Some(r) = self.seen.lock().ok().and_then(|s| s.get(key).cloned()) {
            return Some(r.layers.len());
        }
        match self.store.build_cache_chains(key.digest()) {
            Ok(Some(chains)) => Some(chains.len()),
            Ok(None) => self.imports.layer_count(key.digest()),
            Err(e) => {
                tracing::warn!("build cache read {key}: {e}", e = Chain(&e));
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
            Ok(Some(t)) => Some(t),
            Ok(None) => self.imports.created(key.digest()),
            Err(e) => {
                tracing::warn!("build cache read {key}: {e}", e = Chain(&e));
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
            Ok(Some(_)) => true,
            Ok(None) => self.imports.contains(key.digest()),
            Err(e) => {
                tracing::warn!("build cache read {key}: {e}", e = Chain(&e));
                false
            }
        }
    }

    fn lookup(&self, key: &CacheKey) -> Option<Artifact> {
        let got = match self.store.build_cache_get(key.digest()) {
            Ok(None) => Ok(self.imports.materialize(&self.store, key.digest())),
            other => other,
        };
        match got {
            Ok(Some(layers)) => {
                let rootfs = Rootfs::new(layers);
                self.remember(key, &rootfs);
                Some(Artifact::Rootfs(rootfs))
            }
            Ok(None) => None,
            Err(e) => {
                tracing::warn!("build cache lookup {key}: {e}", e = Chain(&e));
                None
            }
        }
    }

    /// With [`BuildCache::deferring_target`], a result that only an
    /// imported cache has is handed over as that cache's blobs; a local
    /// record always wins, and anything else is [`CacheStore::lookup`].
    fn lookup_target(&self, key: &CacheKey) -> Option<Artifact> {
        if !self.defer_target || !matches!(self.store.build_cache_chains(key.digest()), Ok(None)) {
            return self.lookup(key);
        }
        let Some(remote) = self.imports.remote(key.digest()) else {
            return self.lookup(key);
        };
        let rootfs = Rootfs::new(remote.layer_infos());
        self.remember(key, &rootfs);
        if let Ok(mut r) = self.remote.lock() {
            r.insert(key.clone(), remote);
        }
        Some(Artifact::Rootfs(rootfs))
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

    fn note_inputs(&self, key: &CacheKey, lineage: &Digest, inputs: &StepInputs, cached: bool) {
        let lineage = &self.scoped_lineage(lineage);
        if let (Some(explain), false) = (&self.explain, cached) {
            let why = self.why_missed(lineage, inputs);
            if let Ok(mut e) = explain.lock() {
                e.push((inputs.name.clone(), why));
            }
        }
        if let Ok(mut all) = self.inputs.lock() {
            all.insert(key.clone(), (lineage.clone(), inputs.clone()));
        }
    }

    fn record(&self, key: &CacheKey, output: &Artifact) {
        // Contexts are never recorded: their key does not cover content.
        let Artifact::Rootfs(rootfs) = output else {
            return;
        };
        let noted = self.inputs.lock().ok().and_then(|i| i.get(key).cloned());
        if let Some((lineage, inputs)) = noted {
            let recorded = Recorded {
                key: key.digest().clone(),
                inputs,
            };
            let bytes = serde_json::to_vec(&recorded).unwrap_or_default();
            if let Err(e) = self.store.step_inputs_put(&lineage, &bytes) {
                tracing::debug!("step inputs {key}: {e}");
            }
        }
        self.remember(key, rootfs);
        let created = now_rfc3339();
        if let Ok(mut made) = self.made.lock() {
            made.insert(key.clone(), created.clone());
        }
        if let Err(e) = self
            .store
            .build_cache_put(key.digest(), &rootfs.chain_ids(), &created)
        {
            tracing::warn!("build cache record {key}: {e}", e = Chain(&e));
        }
    }
}
