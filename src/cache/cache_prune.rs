//! Pruning the build cache to a size and an age (`kiln builder prune
//! --keep-storage SIZE --filter until=DURATION`, and the store's own cap
//! applied after each build): which records go, least recently used
//! first.
//!
//! BuildKit's rule (moby/buildkit `cache/manager.go`, `cacheManager.prune`,
//! with buildx turning `until=` into `KeepDuration`, docker/buildx
//! `commands/prune.go`): records used within the duration are kept; the
//! others go oldest-used first until the cache's size is at most the
//! limit (all of them without a limit). The size counted is what pruning
//! could free: the snapshots build cache records hold that no image
//! holds, each counted once however many records share it.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use rusqlite::params;

use super::{Result, Store};

/// What a prune keeps; the default keeps nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PrunePolicy {
    /// Keep at most this many bytes of build cache (`--keep-storage`).
    pub keep_bytes: Option<u64>,
    /// Keep records used within this long (`--filter until=`).
    pub keep_duration: Option<Duration>,
}

// The store's settings file (`StoreLayout::settings`) holds the automatic
// cap: `{"gc": {"keepStorage": "10GB", "keepDuration": "168h"}}` (sizes as
// `--keep-storage`, durations as `until=`; docker's daemon.json spells its
// builder cap `builder.gc.defaultKeepStorage`).

/// Why the store's config has no usable cap.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}")]
    Read {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not valid JSON")]
    Json {
        path: std::path::PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path}: gc.{key} is {value}: expected {expected}")]
    Value {
        path: std::path::PathBuf,
        key: &'static str,
        value: String,
        expected: &'static str,
    },
}

impl PrunePolicy {
    /// The cap in `<root>/config.json`'s `gc` object, if it sets one.
    pub fn from_config(root: &std::path::Path) -> std::result::Result<Option<Self>, ConfigError> {
        let path = super::StoreLayout::new(root).settings();
        let text = match std::fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(ConfigError::Read { path, source }),
        };
        let json: serde_json::Value =
            serde_json::from_slice(&text).map_err(|source| ConfigError::Json {
                path: path.clone(),
                source,
            })?;
        let Some(gc) = json.get("gc") else {
            return Ok(None);
        };
        let field =
            |key: &'static str, expected: &'static str, parse: &dyn Fn(&str) -> bool| match gc
                .get(key)
            {
                None => Ok(None),
                Some(serde_json::Value::String(v)) if parse(v) => Ok(Some(v.clone())),
                Some(other) => Err(ConfigError::Value {
                    path: path.clone(),
                    key,
                    value: other.to_string(),
                    expected,
                }),
            };
        let keep_bytes = field("keepStorage", "a size such as \"10GB\"", &|v| {
            crate::units::ram_in_bytes(v).is_some()
        })?
        .and_then(|v| crate::units::ram_in_bytes(&v));
        let keep_duration = field("keepDuration", "a duration such as \"48h\"", &|v| {
            crate::units::go_duration(v).is_some()
        })?
        .and_then(|v| crate::units::go_duration(&v));
        if keep_bytes.is_none() && keep_duration.is_none() {
            return Ok(None);
        }
        Ok(Some(PrunePolicy {
            keep_bytes,
            keep_duration,
        }))
    }
}

/// What a prune did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Records removed.
    pub removed: usize,
    /// The build cache's size (as [`PrunePolicy::keep_bytes`] counts it)
    /// after the prune.
    pub kept_bytes: u64,
}

/// A build cache record as a prune sees it.
#[derive(Debug, Clone)]
struct Record {
    key: String,
    /// Last used, Unix seconds.
    used: i64,
    chains: Vec<String>,
}

/// The keys to remove from `records` under `policy` at `now`, and the
/// size left. `sizes` are the snapshots' content sizes; `pinned` the
/// snapshots images hold (never counted).
fn choose(
    mut records: Vec<Record>,
    sizes: &HashMap<String, u64>,
    pinned: &HashSet<String>,
    policy: &PrunePolicy,
    now: i64,
) -> (Vec<String>, u64) {
    records.sort_by(|a, b| a.used.cmp(&b.used).then_with(|| a.key.cmp(&b.key)));
    let mut holders: HashMap<&str, usize> = HashMap::new();
    for r in &records {
        for c in &r.chains {
            *holders.entry(c.as_str()).or_default() += 1;
        }
    }
    let size = |c: &str| {
        if pinned.contains(c) {
            0
        } else {
            sizes.get(c).copied().unwrap_or(0)
        }
    };
    let mut total: u64 = holders.keys().map(|c| size(c)).sum();
    let cutoff = policy
        .keep_duration
        .map(|d| now.saturating_sub(d.as_secs() as i64));
    let mut removed = Vec::new();
    for r in &records {
        if cutoff.is_some_and(|cutoff| r.used >= cutoff) {
            continue;
        }
        if policy.keep_bytes.is_some_and(|keep| total <= keep) {
            break;
        }
        for c in &r.chains {
            let n = holders.get_mut(c.as_str()).expect("counted above");
            *n -= 1;
            if *n == 0 {
                total -= size(c);
            }
        }
        removed.push(r.key.clone());
    }
    (removed, total)
}

impl Store {
    /// Removes the build cache records `policy` does not keep (in one
    /// transaction), then collects what only they held.
    pub fn build_cache_prune_with(&self, policy: &PrunePolicy) -> Result<PruneReport> {
        let report = self.write(|tx| {
            let mut records: HashMap<String, Record> = HashMap::new();
            let mut st = tx.prepare_cached("SELECT key, used FROM build_cache")?;
            for row in st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
                let (key, used) = row?;
                let chains = Vec::new();
                records.insert(key.clone(), Record { key, used, chains });
            }
            let mut st = tx.prepare_cached(
                "SELECT key, chain_id FROM build_cache_layers ORDER BY key, position",
            )?;
            for row in st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))? {
                let (key, chain) = row?;
                if let Some(r) = records.get_mut(&key) {
                    r.chains.push(chain);
                }
            }
            let mut sizes = HashMap::new();
            let mut st = tx.prepare_cached(
                "SELECT chain_id, size FROM snapshots WHERE chain_id IN \
                 (SELECT chain_id FROM build_cache_layers)",
            )?;
            for row in st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
                let (chain, size) = row?;
                sizes.insert(chain, size.max(0) as u64);
            }
            let mut pinned = HashSet::new();
            let mut st = tx.prepare_cached("SELECT DISTINCT chain_id FROM image_layers")?;
            for row in st.query_map([], |r| r.get::<_, String>(0))? {
                pinned.insert(row?);
            }
            let (removed, kept_bytes) = choose(
                records.into_values().collect(),
                &sizes,
                &pinned,
                policy,
                super::db::now(),
            );
            let mut delete = tx.prepare_cached("DELETE FROM build_cache WHERE key = ?1")?;
            for key in &removed {
                delete.execute(params![key])?;
            }
            Ok(PruneReport {
                removed: removed.len(),
                kept_bytes,
            })
        })?;
        if report.removed > 0 {
            self.gc()?;
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(key: &str, used: i64, chains: &[&str]) -> Record {
        Record {
            key: key.into(),
            used,
            chains: chains.iter().map(|c| c.to_string()).collect(),
        }
    }

    fn sizes(pairs: &[(&str, u64)]) -> HashMap<String, u64> {
        pairs.iter().map(|(c, s)| (c.to_string(), *s)).collect()
    }

    #[test]
    fn keep_storage_removes_least_recently_used_first() {
        let records = vec![
            rec("new", 300, &["base", "c"]),
            rec("old", 100, &["base", "a"]),
            rec("mid", 200, &["base", "b"]),
        ];
        let s = sizes(&[("base", 10), ("a", 100), ("b", 100), ("c", 100)]);
        let pinned: HashSet<String> = ["base".to_string()].into();
        let policy = PrunePolicy {
            keep_bytes: Some(150),
            keep_duration: None,
        };
        let (removed, kept) = choose(records, &s, &pinned, &policy, 1000);
        assert_eq!(removed, vec!["old", "mid"]);
        assert_eq!(kept, 100);
    }

    #[test]
    fn shared_snapshots_count_once_and_free_only_with_their_last_record() {
        let records = vec![rec("a", 1, &["x", "y"]), rec("b", 2, &["x"])];
        let s = sizes(&[("x", 50), ("y", 10)]);
        let policy = PrunePolicy {
            keep_bytes: Some(50),
            keep_duration: None,
        };
        let (removed, kept) = choose(records, &s, &HashSet::new(), &policy, 10);
        assert_eq!((removed, kept), (vec!["a".to_string()], 50));
    }

    #[test]
    fn until_keeps_records_used_within_the_duration() {
        let records = vec![rec("old", 100, &["a"]), rec("recent", 950, &["b"])];
        let s = sizes(&[("a", 1), ("b", 1)]);
        let policy = PrunePolicy {
            keep_bytes: None,
            keep_duration: Some(Duration::from_secs(100)),
        };
        let (removed, kept) = choose(records, &s, &HashSet::new(), &policy, 1000);
        assert_eq!((removed, kept), (vec!["old".to_string()], 1));
        // Both limits: only old records are candidates, and only as many
        // as the size needs.
        let records = vec![
            rec("a", 1, &["a"]),
            rec("b", 2, &["b"]),
            rec("c", 999, &["c"]),
        ];
        let s = sizes(&[("a", 10), ("b", 10), ("c", 10)]);
        let policy = PrunePolicy {
            keep_bytes: Some(20),
            keep_duration: Some(Duration::from_secs(100)),
        };
        let (removed, _) = choose(records, &s, &HashSet::new(), &policy, 1000);
        assert_eq!(removed, vec!["a"]);
    }

    #[test]
    fn the_cap_comes_from_the_stores_config() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(PrunePolicy::from_config(dir.path()).unwrap(), None);
        let cfg = super::super::StoreLayout::new(dir.path()).settings();
        std::fs::write(&cfg, r#"{"insecure-registries": []}"#).unwrap();
        assert_eq!(PrunePolicy::from_config(dir.path()).unwrap(), None);
        std::fs::write(
            &cfg,
            r#"{"gc": {"keepStorage": "10GB", "keepDuration": "48h"}}"#,
        )
        .unwrap();
        assert_eq!(
            PrunePolicy::from_config(dir.path()).unwrap(),
            Some(PrunePolicy {
                keep_bytes: Some(10 << 30),
                keep_duration: Some(Duration::from_secs(48 * 3600)),
            })
        );
        std::fs::write(&cfg, r#"{"gc": {"keepStorage": "lots"}}"#).unwrap();
        let e = PrunePolicy::from_config(dir.path())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("gc.keepStorage") && e.contains("\"lots\""),
            "{e}"
        );
        std::fs::write(&cfg, "{").unwrap();
        assert!(PrunePolicy::from_config(dir.path()).is_err());
    }

    #[test]
    fn no_limit_removes_everything() {
        let records = vec![rec("a", 1, &["a"]), rec("b", 2, &["b"])];
        let (removed, kept) = choose(
            records,
            &sizes(&[("a", 1)]),
            &HashSet::new(),
            &PrunePolicy::default(),
            5,
        );
        assert_eq!((removed.len(), kept), (2, 0));
    }
}
