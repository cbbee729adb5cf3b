//! `kiln system check`: the store's rows against its files.
//!
//! What is checked: every blob row has its file and the file hashes to its
//! digest; every file has its row; every snapshot row has its directory
//! and its parent's row; every image has its manifest and config and, for
//! each layer, a snapshot or a blob to extract it from; every build cache
//! record has its snapshots. Rows that no image or build cache record
//! refers to are work in progress (a row is committed before its file
//! appears) or garbage for the next GC, and are not judged.
//!
//! Repair drops rows whose files are gone, and what depends on them
//! (images, build cache records, child snapshots); then a GC removes the
//! files nothing refers to any more (orphans, corrupt blobs).

use super::lease::RefKind;
use super::{Result, Store};
use crate::image::digest::Digest;
use rusqlite::{params, OptionalExtension, Transaction};
use std::collections::HashSet;

/// One inconsistency found in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// A blob row whose file is missing.
    MissingBlob(Digest),
    /// A blob file whose content does not hash to its name.
    CorruptBlob(Digest),
    /// A file in `blobs/sha256` without a row.
    OrphanBlob(String),
    /// A snapshot row whose directory is missing.
    MissingSnapshot(Digest),
    /// A snapshot whose parent has no row.
    MissingParent { chain: Digest, parent: Digest },
    /// A directory in `snapshots/` without a row.
    OrphanSnapshot(String),
    /// An image missing its manifest or config, or a layer it cannot get.
    BrokenImage { id: Digest, reason: String },
    /// A build cache record whose snapshot is gone.
    BrokenCacheRecord { key: Digest, chain: Digest },
    /// What a killed sweep left in `<root>/trash`.
    UnfinishedSweep,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::MissingBlob(d) => write!(f, "blob {d}: recorded but its file is missing"),
            Problem::CorruptBlob(d) => write!(f, "blob {d}: content does not match its digest"),
            Problem::OrphanBlob(n) => write!(f, "blob file {n}: not recorded"),
            Problem::MissingSnapshot(c) => {
                write!(f, "snapshot {c}: recorded but its directory is missing")
            }
            Problem::MissingParent { chain, parent } => {
                write!(f, "snapshot {chain}: parent {parent} is not recorded")
            }
            Problem::OrphanSnapshot(n) => write!(f, "snapshot directory {n}: not recorded"),
            Problem::BrokenImage { id, reason } => write!(f, "image {id}: {reason}"),
            Problem::BrokenCacheRecord { key, chain } => {
                write!(f, "build cache record {key}: snapshot {chain} is missing")
            }
            Problem::UnfinishedSweep => write!(f, "trash: an interrupted garbage collection"),
        }
    }
}

fn strings(tx: &Transaction, sql: &str, p: impl rusqlite::Params) -> Result<Vec<String>> {
    let mut st = tx.prepare_cached(sql)?;
    let rows = st
        .query_map(p, |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

fn pairs(tx: &Transaction, sql: &str) -> Result<Vec<(String, Option<String>)>> {
    let mut st = tx.prepare_cached(sql)?;
    let rows = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

impl Store {
    /// Finds every inconsistency between rows and files (hashing every
    /// blob). An empty list means the store is sound.
    pub fn check(&self) -> Result<Vec<Problem>> {
        self.drop_stale_leases()?;
        let mut problems = Vec::new();
        if self.has_trash() {
            problems.push(Problem::UnfinishedSweep);
        }
        // One read transaction: a consistent view of the rows. Files are
        // only ever added after their row and removed after their row
        // (GC), so a file checked against an older view may only be new.
        self.read(|tx| {
            let leased: HashSet<String> = strings(tx, "SELECT key FROM lease_refs", [])?
                .into_iter()
                .collect();
            // Rows nothing refers to are garbage whatever their files (a
            // writer killed between its row and its rename leaves one):
            // GC's business, not a defect.
            let used_blobs: HashSet<String> = strings(
                tx,
                "SELECT manifest_digest FROM images UNION SELECT id FROM images
                 UNION SELECT digest FROM layer_blobs",
                [],
            )?
            .into_iter()
            .collect();
            let rooted: HashSet<String> = strings(
                tx,
                "SELECT chain_id FROM image_layers UNION SELECT chain_id FROM build_cache_layers",
                [],
            )?
            .into_iter()
            .collect();
            let blobs = strings(tx, "SELECT digest FROM blobs", [])?;
            let blob_rows: HashSet<String> = blobs.iter().cloned().collect();
            for d in &blobs {
                let digest: Digest = d.parse()?;
                match self.verify_blob(&digest) {
                    Ok(()) => {}
                    Err(super::StoreError::BlobNotFound(_))
                        if leased.contains(d) || !used_blobs.contains(d) => {}
                    Err(super::StoreError::BlobNotFound(_)) => {
                        problems.push(Problem::MissingBlob(digest))
                    }
                    Err(super::StoreError::DigestMismatch { .. }) => {
                        problems.push(Problem::CorruptBlob(digest))
                    }
                    Err(e) => return Err(e),
                }
            }
            for name in super::gc::list_dir(&self.layout.blobs())? {
                if !blob_rows.contains(&format!("sha256:{name}")) {
                    problems.push(Problem::OrphanBlob(name));
                }
            }
            let snaps = pairs(tx, "SELECT chain_id, parent FROM snapshots")?;
            let snap_rows: HashSet<String> = snaps.iter().map(|(c, _)| c.clone()).collect();
            let mut present = HashSet::new();
            for (chain, parent) in &snaps {
                let c: Digest = chain.parse()?;
                if self.snapshot_path(&c).is_dir() {
                    present.insert(chain.clone());
                } else if rooted.contains(chain) {
                    problems.push(Problem::MissingSnapshot(c.clone()));
                }
                if let Some(p) = parent {
                    if !snap_rows.contains(p) && rooted.contains(chain) {
                        problems.push(Problem::MissingParent {
                            chain: c,
                            parent: p.parse()?,
                        });
                    }
                }
            }
            for name in super::gc::list_dir(&self.layout.snapshots())? {
                if !snap_rows.contains(&format!("sha256:{name}")) {
                    problems.push(Problem::OrphanSnapshot(name));
                }
            }
            let good_blob = |d: &str| {
                blob_rows.contains(d) && {
                    let digest: std::result::Result<Digest, _> = d.parse();
                    digest.is_ok_and(|d| self.has_blob(&d))
                }
            };
            for (id, manifest) in pairs(tx, "SELECT id, manifest_digest FROM images")? {
                let image: Digest = id.parse()?;
                for (what, d) in [("config", Some(id.clone())), ("manifest", manifest)] {
                    let d = d.unwrap_or_default();
                    if !good_blob(&d) {
                        problems.push(Problem::BrokenImage {
                            id: image.clone(),
                            reason: format!("{what} blob {d} is missing"),
                        });
                    }
                }
                for (chain, diff_id) in image_layers(tx, &id)? {
                    if present.contains(&chain) {
                        continue;
                    }
                    if !snap_rows.contains(&chain) {
                        problems.push(Problem::BrokenImage {
                            id: image.clone(),
                            reason: format!("layer {diff_id}: snapshot {chain} is not recorded"),
                        });
                        continue;
                    }
                    let canonical = tx
                        .prepare_cached("SELECT canonical FROM layers WHERE diff_id = ?1")?
                        .query_row([&diff_id], |r| r.get::<_, bool>(0))
                        .optional()?
                        .unwrap_or(false);
                    let from_blob = strings(
                        tx,
                        "SELECT digest FROM layer_blobs WHERE diff_id = ?1",
                        [&diff_id],
                    )?
                    .iter()
                    .any(|d| good_blob(d));
                    if canonical || !from_blob {
                        problems.push(Problem::BrokenImage {
                            id: image.clone(),
                            reason: format!("layer {diff_id}: snapshot {chain} is missing"),
                        });
                    }
                }
            }
            for (key, chain) in pairs(tx, "SELECT key, chain_id FROM build_cache_layers")? {
                let chain = chain.unwrap_or_default();
                if !present.contains(&chain) {
                    problems.push(Problem::BrokenCacheRecord {
                        key: key.parse()?,
                        chain: chain.parse()?,
                    });
                }
            }
            Ok(())
        })?;
        Ok(problems)
    }

    /// Repairs what [`Store::check`] found: drops rows whose files are
    /// gone and everything depending on them, then collects garbage
    /// (orphans, corrupt blobs, an interrupted sweep). Returns the problems
    /// found before repairing.
    pub fn repair(&self) -> Result<Vec<Problem>> {
        let problems = self.check()?;
        self.write(|tx| {
            for p in &problems {
                match p {
                    Problem::MissingBlob(d) | Problem::CorruptBlob(d) => drop_blob(tx, d)?,
                    Problem::MissingSnapshot(c) => drop_snapshot(tx, c)?,
                    Problem::MissingParent { chain, .. } => drop_snapshot(tx, chain)?,
                    Problem::BrokenImage { id, .. } => {
                        tx.prepare_cached("DELETE FROM images WHERE id = ?1")?
                            .execute([id.to_string()])?;
                    }
                    Problem::BrokenCacheRecord { key, .. } => {
                        tx.prepare_cached("DELETE FROM build_cache WHERE key = ?1")?
                            .execute([key.to_string()])?;
                    }
                    Problem::OrphanBlob(_)
                    | Problem::OrphanSnapshot(_)
                    | Problem::UnfinishedSweep => {}
                }
            }
            Ok(())
        })?;
        // Dropping a row may break what depends on it (an image whose only
        // layer blob was corrupt): repeat until nothing more is found.
        let again = self.check()?;
        let broken_again = again.iter().any(|p| {
            !matches!(
                p,
                Problem::OrphanBlob(_) | Problem::OrphanSnapshot(_) | Problem::UnfinishedSweep
            )
        });
        if broken_again {
            self.repair()?;
        }
        self.gc()?;
        Ok(problems)
    }
}

fn image_layers(tx: &Transaction, id: &str) -> Result<Vec<(String, String)>> {
    let mut st = tx.prepare_cached(
        "SELECT chain_id, diff_id FROM image_layers WHERE image_id = ?1 ORDER BY position",
    )?;
    let rows = st
        .query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Forgets a blob: its row, the layers' claims that it holds them, and
/// images whose manifest or config it is. A corrupt file left behind has
/// no row any more, so the next GC takes it as an orphan.
fn drop_blob(tx: &Transaction, d: &Digest) -> Result<()> {
    let d = d.to_string();
    tx.prepare_cached("DELETE FROM blobs WHERE digest = ?1")?
        .execute([&d])?;
    tx.prepare_cached("DELETE FROM layer_blobs WHERE digest = ?1")?
        .execute([&d])?;
    tx.prepare_cached("DELETE FROM images WHERE id = ?1 OR manifest_digest = ?1")?
        .execute([&d])?;
    Ok(())
}

/// Forgets a snapshot and every snapshot stacked on it, and the images,
/// build cache records and leases that name them.
fn drop_snapshot(tx: &Transaction, chain: &Digest) -> Result<()> {
    let mut todo = vec![chain.to_string()];
    while let Some(c) = todo.pop() {
        todo.extend(strings(
            tx,
            "SELECT chain_id FROM snapshots WHERE parent = ?1",
            [&c],
        )?);
        tx.prepare_cached("DELETE FROM snapshots WHERE chain_id = ?1")?
            .execute([&c])?;
        tx.prepare_cached(
            "DELETE FROM images WHERE id IN (SELECT image_id FROM image_layers WHERE chain_id = ?1)",
        )?
        .execute([&c])?;
        tx.prepare_cached(
            "DELETE FROM build_cache WHERE key IN (SELECT key FROM build_cache_layers WHERE chain_id = ?1)",
        )?
        .execute([&c])?;
        tx.prepare_cached("DELETE FROM lease_refs WHERE kind = ?1 AND key = ?2")?
            .execute(params![RefKind::Snapshot.as_str(), c])?;
    }
    Ok(())
}
