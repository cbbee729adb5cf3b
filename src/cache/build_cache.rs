//! The persistent build cache: a build step's result (a root filesystem,
//! as a stack of snapshots) by its cache key, kept across builds.
//!
//! A record's snapshots are GC roots (see `gc.rs`), so a hit can be used
//! directly as overlay lower dirs; a record whose snapshot went missing
//! anyway (a store edited by hand) is dropped and reported as a miss.
//! Records are only ever replaced whole, in one transaction.

use super::lease::RefKind;
use super::snapshot::layer_info_tx;
use super::{db, Result, Store};
use crate::image::digest::Digest;
use crate::image::timestamp::format_rfc3339;
use rusqlite::{params, OptionalExtension, Transaction};

/// The chain IDs recorded under `key`, bottom to top.
fn chains_tx(tx: &Transaction, key: &Digest) -> Result<Option<Vec<Digest>>> {
    let exists = tx
        .prepare_cached("SELECT 1 FROM build_cache WHERE key = ?1")?
        .query_row([key.to_string()], |_| Ok(()))
        .optional()?;
    if exists.is_none() {
        return Ok(None);
    }
    let mut st = tx.prepare_cached(
        "SELECT chain_id FROM build_cache_layers WHERE key = ?1 ORDER BY position",
    )?;
    let rows = st
        .query_map([key.to_string()], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.iter()
        .map(|c| c.parse().map_err(Into::into))
        .collect::<Result<Vec<Digest>>>()
        .map(Some)
}

impl Store {
    /// The chain IDs (bottom to top) recorded under `key`, read only: no
    /// lease is taken and missing snapshots are not noticed, so this says
    /// what is recorded, not what is usable ([`Store::build_cache_get`]).
    pub fn build_cache_chains(&self, key: &Digest) -> Result<Option<Vec<Digest>>> {
        self.read(|tx| chains_tx(tx, key))
    }

    /// The root filesystem recorded under `key`, bottom to top, with every
    /// snapshot leased by this process; `None` if nothing usable is recorded.
    /// One transaction: a fully cached build takes one result, and each
    /// write transaction costs an fsync.
    pub fn build_cache_get(&self, key: &Digest) -> Result<Option<Vec<super::LayerInfo>>> {
        self.write(|tx| {
            let Some(chains) = chains_tx(tx, key)? else {
                return Ok(None);
            };
            let mut layers = Vec::with_capacity(chains.len());
            for chain in &chains {
                let recorded = tx
                    .prepare_cached("SELECT 1 FROM snapshots WHERE chain_id = ?1")?
                    .query_row([chain.to_string()], |_| Ok(()))
                    .optional()?
                    .is_some();
                if !recorded || !self.snapshot_path(chain).is_dir() {
                    tracing::warn!(
                        "build cache entry {key}: snapshot {chain} is missing; dropping it"
                    );
                    tx.prepare_cached("DELETE FROM build_cache WHERE key = ?1")?
                        .execute([key.to_string()])?;
                    return Ok(None);
                }
                self.protect(tx, RefKind::Snapshot, chain)?;
                layers.push(layer_info_tx(tx, chain)?);
            }
            tx.prepare_cached("UPDATE build_cache SET used = ?2 WHERE key = ?1")?
                .execute(params![key.to_string(), db::now()])?;
            Ok(Some(layers))
        })
    }

    /// When the result under `key` was made (RFC 3339), as recorded; a
    /// record from before the `created` column gives its `added` second.
    pub fn build_cache_created(&self, key: &Digest) -> Result<Option<String>> {
        self.read(|tx| {
            let row = tx
                .prepare_cached("SELECT created, added FROM build_cache WHERE key = ?1")?
                .query_row([key.to_string()], |r| {
                    Ok((r.get::<_, Option<String>>(0)?, r.get::<_, i64>(1)?))
                })
                .optional()?;
            Ok(row.map(|(created, added)| created.unwrap_or_else(|| format_rfc3339(added, 0))))
        })
    }

    /// Records `chains` (bottom to top) as the result of `key`, made at
    /// `created` (RFC 3339), replacing any earlier record.
    pub fn build_cache_put(&self, key: &Digest, chains: &[Digest], created: &str) -> Result<()> {
        self.write(|tx| {
            let now = db::now();
            tx.prepare_cached("DELETE FROM build_cache WHERE key = ?1")?
                .execute([key.to_string()])?;
            tx.prepare_cached(
                "INSERT INTO build_cache (key, added, used, created) VALUES (?1, ?2, ?2, ?3)",
            )?
            .execute(params![key.to_string(), now, created])?;
            for (i, chain) in chains.iter().enumerate() {
                tx.prepare_cached(
                    "INSERT INTO build_cache_layers (key, position, chain_id) VALUES (?1, ?2, ?3)",
                )?
                .execute(params![key.to_string(), i as i64, chain.to_string()])?;
            }
            Ok(())
        })
    }

    /// Forgets every build cache record, copy index and stored download
    /// (`kiln builder prune`), then collects what only they kept; returns how many records there were.
    pub fn build_cache_prune(&self) -> Result<usize> {
        let n = self.write(|tx| Ok(tx.prepare_cached("DELETE FROM build_cache")?.execute([])?))?;
        self.build_hints_clear()?;
        self.gc()?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use crate::cache::Store;
    use crate::image::digest::Digest;

    #[test]
    fn records_survive_reopen_and_gc_and_go_with_prune() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let upper = store.scratch_path("upper").unwrap();
        std::fs::create_dir(&upper).unwrap();
        std::fs::write(upper.join("f"), "x").unwrap();
        let layer = store.add_layer_from_dir(&upper, None).unwrap();
        let key = Digest::sha256_of(b"step");
        assert!(store.build_cache_get(&key).unwrap().is_none());
        store
            .build_cache_put(
                &key,
                std::slice::from_ref(&layer.chain_id),
                "2026-01-02T03:04:05.123456789Z",
            )
            .unwrap();
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        store.gc().unwrap();
        let got = store.build_cache_get(&key).unwrap().expect("hit");
        assert_eq!(
            store.build_cache_created(&key).unwrap().as_deref(),
            Some("2026-01-02T03:04:05.123456789Z"),
            "the time a step made its result survives, to the nanosecond"
        );
        assert_eq!(got[0].chain_id, layer.chain_id);
        assert!(store.snapshot_path(&layer.chain_id).join("f").is_file());
        assert_eq!(store.build_cache_prune().unwrap(), 1);
        assert_eq!(store.build_cache_created(&key).unwrap(), None);
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        store.gc().unwrap();
        assert!(store.build_cache_get(&key).unwrap().is_none());
        assert!(!store.snapshot_path(&layer.chain_id).exists());
    }

    /// A store made before `build_cache.created` existed keeps its records:
    /// the migration only adds the column, and their time is their `added`.
    #[test]
    fn records_from_before_the_created_column_read_their_added_second() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kiln.db");
        let conn = rusqlite::Connection::open(&path).unwrap();
        for sql in &crate::cache::db::MIGRATIONS[..2] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", 2).unwrap();
        conn.execute(
            "INSERT INTO build_cache (key, added, used) VALUES (?1, 1700000000, 1700000000)",
            [Digest::sha256_of(b"old").to_string()],
        )
        .unwrap();
        drop(conn);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(
            store
                .build_cache_created(&Digest::sha256_of(b"old"))
                .unwrap()
                .as_deref(),
            Some("2023-11-14T22:13:20Z")
        );
    }
}
