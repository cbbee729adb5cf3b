//! Garbage collection: mark and sweep inside one write transaction.
//!
//! Roots are image records, build cache records and live leases. Live snapshots are those an
//! image lists or a lease holds; live layers those of live snapshots or
//! leased; live blobs are image manifests and configs, blobs of live
//! layers, and leased blobs. Everything else is deleted: rows first, and,
//! still holding the write lock, their files are renamed into a trash dir
//! (`trash.rs`); only after the commit are the files deleted, so a kill
//! never leaves a row whose file is gone, and the next sweep or store open
//! finishes what a killed sweep left. Files that have no row at all are
//! orphans (a row always precedes its file) and go too.
//!
//! Mark-and-sweep rather than reference counts: a count that a crash left
//! wrong would leak or, worse, free a shared layer; a sweep recomputes the
//! truth from the image and lease tables every time, and the tables are
//! small (one row per image, layer and blob).

use super::lease::RefKind;
use super::trash::Sweep;
use super::{io_err, Result, Store};
use crate::image::digest::Digest;
use rusqlite::{params, Transaction};
use std::collections::HashSet;

/// What a collection removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    pub blobs: Vec<Digest>,
    /// Chain IDs of removed snapshots.
    pub snapshots: Vec<Digest>,
    /// Bytes freed (blob sizes plus snapshot content sizes).
    pub bytes: u64,
}

const LIVE_SNAPSHOTS: &str = "
    SELECT chain_id FROM image_layers
    UNION SELECT chain_id FROM build_cache_layers
    UNION SELECT key FROM lease_refs WHERE kind = ?1";

const LIVE_LAYERS: &str = "
    SELECT diff_id FROM image_layers
    UNION SELECT diff_id FROM snapshots WHERE chain_id IN (SELECT chain_id FROM image_layers)
    UNION SELECT diff_id FROM snapshots WHERE chain_id IN (SELECT chain_id FROM build_cache_layers)
    UNION SELECT s.diff_id FROM snapshots s JOIN lease_refs r ON r.kind = ?1 AND r.key = s.chain_id
    UNION SELECT key FROM lease_refs WHERE kind = ?2";

impl Store {
    /// Drops stale leases and removes everything no image or live lease
    /// needs.
    pub fn gc(&self) -> Result<GcReport> {
        self.drop_stale_leases()?;
        let swept = self.write(|tx| {
            // An interrupted sweep is finished first, under the same lock,
            // so what it left is decided against committed rows.
            let leftovers = self.finish_sweeps(tx)?;
            let sweep = Sweep::create(self)?;
            let mut report = GcReport::default();
            let snap = RefKind::Snapshot.as_str();
            let layer = RefKind::Layer.as_str();
            let blob = RefKind::Blob.as_str();

            let dead_snapshots: Vec<(String, i64)> = collect(
                tx,
                &format!(
                    "SELECT chain_id, size FROM snapshots WHERE chain_id NOT IN ({LIVE_SNAPSHOTS})"
                ),
                params![snap],
            )?;
            for (chain, size) in &dead_snapshots {
                tx.prepare_cached("DELETE FROM snapshots WHERE chain_id = ?1")?
                    .execute([chain])?;
                report.snapshots.push(chain.parse()?);
                report.bytes += *size as u64;
            }
            tx.execute(
                &format!("DELETE FROM layer_blobs WHERE diff_id NOT IN ({LIVE_LAYERS})"),
                params![snap, layer],
            )?;
            tx.execute(
                &format!("DELETE FROM layers WHERE diff_id NOT IN ({LIVE_LAYERS})"),
                params![snap, layer],
            )?;
            let dead_blobs: Vec<(String, i64)> = collect(
                tx,
                "SELECT digest, size FROM blobs WHERE digest NOT IN (
                    SELECT manifest_digest FROM images
                    UNION SELECT id FROM images
                    UNION SELECT digest FROM image_indexes
                    UNION SELECT digest FROM layer_blobs
                    UNION SELECT key FROM lease_refs WHERE kind = ?1)",
                params![blob],
            )?;
            for (digest, size) in &dead_blobs {
                tx.prepare_cached("DELETE FROM blobs WHERE digest = ?1")?
                    .execute([digest])?;
                let d: Digest = digest.parse()?;
                if sweep.take_blob(&self.blob_path(&d), d.hex())? {
                    report.bytes += *size as u64;
                }
                report.blobs.push(d);
            }
            // Orphans: files without rows (a store edited by hand, or one
            // written by a kiln that unlinked before committing).
            let known_blobs: HashSet<String> =
                collect::<(String,)>(tx, "SELECT digest FROM blobs", [])?
                    .into_iter()
                    .map(|(d,)| d)
                    .collect();
            let blob_dir = self.layout.blobs();
            for name in list_dir(&blob_dir)? {
                if !known_blobs.contains(&format!("sha256:{name}")) {
                    tracing::debug!("removing orphan blob {name}");
                    sweep.take_blob(&blob_dir.join(&name), &name)?;
                }
            }
            let known_snaps: HashSet<String> =
                collect::<(String,)>(tx, "SELECT chain_id FROM snapshots", [])?
                    .into_iter()
                    .map(|(d,)| d)
                    .collect();
            let snap_dir = self.layout.snapshots();
            for name in list_dir(&snap_dir)? {
                if !known_snaps.contains(&format!("sha256:{name}")) {
                    sweep.take_snapshot(&snap_dir.join(&name), &name)?;
                }
            }
            Ok((report, sweep, leftovers))
        });
        let (report, sweep, leftovers) = match swept {
            Ok(v) => v,
            Err(e) => {
                // Rolled back: put back what this sweep had moved.
                if let Err(e2) = self.finish_interrupted_sweeps() {
                    tracing::warn!("restoring after a failed sweep: {e2}");
                }
                return Err(e);
            }
        };
        // Only now, the rows being gone for good, do files go (outside the
        // lock: deleting big trees takes time). A kill from here on leaves
        // the trash dir, which the next sweep or store open finishes.
        sweep.empty()?;
        self.remove_trash(leftovers)?;
        if !report.blobs.is_empty() || !report.snapshots.is_empty() {
            tracing::debug!(
                "gc removed {} blob(s), {} snapshot(s), {} bytes",
                report.blobs.len(),
                report.snapshots.len(),
                report.bytes
            );
        }
        Ok(report)
    }

    /// Finishes sweeps a killed process left in `<root>/trash` (run by
    /// [`Store::open`]; a no-op, without taking the write lock, when the
    /// trash is empty).
    pub(crate) fn finish_interrupted_sweeps(&self) -> Result<()> {
        if !self.has_trash() {
            return Ok(());
        }
        let leftovers = self.write(|tx| self.finish_sweeps(tx))?;
        self.remove_trash(leftovers)
    }
}

fn collect<T: FromRow>(tx: &Transaction, sql: &str, p: impl rusqlite::Params) -> Result<Vec<T>> {
    let mut st = tx.prepare_cached(sql)?;
    let rows = st
        .query_map(p, T::from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

trait FromRow: Sized {
    fn from_row(r: &rusqlite::Row) -> rusqlite::Result<Self>;
}

impl FromRow for (String,) {
    fn from_row(r: &rusqlite::Row) -> rusqlite::Result<Self> {
        Ok((r.get(0)?,))
    }
}

impl FromRow for (String, i64) {
    fn from_row(r: &rusqlite::Row) -> rusqlite::Result<Self> {
        Ok((r.get(0)?, r.get(1)?))
    }
}

pub(super) fn list_dir(dir: &std::path::Path) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).map_err(io_err(dir, "listing"))? {
        let e = e.map_err(io_err(dir, "listing"))?;
        if let Some(n) = e.file_name().to_str() {
            out.push(n.to_string());
        }
    }
    Ok(out)
}
