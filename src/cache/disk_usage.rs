//! What `system df` needs from the database in one consistent read: each
//! snapshot's size once, which snapshots each image and the build cache
//! hold. Sizes are counted per snapshot (chain ID), so a layer shared by
//! images is counted once (docker's `system df` counts shared size once).

use super::{Result, Store};
use std::collections::{BTreeMap, BTreeSet};

/// The store's layers and who holds them.
#[derive(Debug, Default, Clone)]
pub struct LayerUsage {
    /// Size of each snapshot, by chain ID.
    pub sizes: BTreeMap<String, u64>,
    /// Each image's snapshots, by image ID.
    pub images: BTreeMap<String, BTreeSet<String>>,
    /// How many build cache records there are.
    pub cache_records: usize,
    /// The snapshots build cache records hold.
    pub cache_chains: BTreeSet<String>,
    /// Each build cache record (`system df -v`), oldest first.
    pub cache: Vec<CacheRecordUsage>,
}

/// One build cache record as `system df -v` lists it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CacheRecordUsage {
    /// Its cache key.
    pub key: String,
    /// When it was recorded and last used (Unix seconds).
    pub added: i64,
    /// See `added`.
    pub used: i64,
    /// Its snapshots, bottom to top (the top one is the step's own).
    pub chains: Vec<String>,
}

impl Store {
    /// Reads [`LayerUsage`] in one read transaction.
    pub fn layer_usage(&self) -> Result<LayerUsage> {
        self.read(|tx| {
            let mut u = LayerUsage::default();
            let mut st = tx.prepare_cached("SELECT chain_id, size FROM snapshots")?;
            for row in st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
                let (chain, size) = row?;
                u.sizes.insert(chain, size.max(0) as u64);
            }
            let mut st = tx.prepare_cached("SELECT id FROM images")?;
            for row in st.query_map([], |r| r.get::<_, String>(0))? {
                u.images.entry(row?).or_default();
            }
            let mut st = tx.prepare_cached("SELECT image_id, chain_id FROM image_layers")?;
            for row in st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))? {
                let (image, chain) = row?;
                u.images.entry(image).or_default().insert(chain);
            }
            u.cache_records = tx.query_row("SELECT COUNT(*) FROM build_cache", [], |r| {
                r.get::<_, i64>(0)
            })? as usize;
            let mut st = tx.prepare_cached("SELECT DISTINCT chain_id FROM build_cache_layers")?;
            for row in st.query_map([], |r| r.get::<_, String>(0))? {
                u.cache_chains.insert(row?);
            }
            let mut st =
                tx.prepare_cached("SELECT key, added, used FROM build_cache ORDER BY added, key")?;
            for row in st.query_map([], |r| {
                Ok(CacheRecordUsage {
                    key: r.get(0)?,
                    added: r.get(1)?,
                    used: r.get(2)?,
                    chains: Vec::new(),
                })
            })? {
                u.cache.push(row?);
            }
            let mut st = tx.prepare_cached(
                "SELECT key, chain_id FROM build_cache_layers ORDER BY key, position",
            )?;
            let mut chains: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for row in st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))? {
                let (key, chain) = row?;
                chains.entry(key).or_default().push(chain);
            }
            for record in &mut u.cache {
                record.chains = chains.remove(&record.key).unwrap_or_default();
            }
            Ok(u)
        })
    }
}
