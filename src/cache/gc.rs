//! Garbage collection: mark and sweep inside one write transaction.
//!
//! Roots are image records, build cache records and live leases. Live snapshots are those an
//! image lists or a lease holds; live layers those of live snapshots or
//! leased; live blobs are image manifests and configs, blobs of live
//! layers, and leased blobs. Everything else is deleted: rows first, then,
//! still holding the write lock, blob files are unlinked and snapshot
//! dirs renamed into this process's scratch dir, and finally (after
//! commit) the renamed trees are removed. Files that have no row at all
//! are orphans (a row always precedes its file) and go too.
//!
//! Mark-and-sweep rather than reference counts: a count that a crash left
//! wrong would leak or, worse, free a shared layer; a sweep recomputes the
//! truth from the image and lease tables every time, and the tables are
//! small (one row per image, layer and blob).

use super::lease::RefKind;
use super::{io_err, scratch, Result, Store};
use crate::image::digest::Digest;
use rusqlite::{params, Transaction};
use std::collections::HashSet;
use std::path::PathBuf;

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
        let trash_dir = self.scratch()?.path("trash");
        let mut trash: Vec<PathBuf> = Vec::new();
        let report = self.write(|tx| {
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
                    UNION SELECT digest FROM layer_blobs
                    UNION SELECT key FROM lease_refs WHERE kind = ?1)",
                params![blob],
            )?;
            for (digest, size) in &dead_blobs {
                tx.prepare_cached("DELETE FROM blobs WHERE digest = ?1")?
                    .execute([digest])?;
                let d: Digest = digest.parse()?;
                let path = self.blob_path(&d);
                if path.exists() {
                    report.bytes += *size as u64;
                }
                remove_file(&path)?;
                report.blobs.push(d);
            }
            // Orphans: files without rows (e.g. a crash between the sweep's
            // commit and its unlink, or a store edited by hand).
            let known_blobs: HashSet<String> =
                collect::<(String,)>(tx, "SELECT digest FROM blobs", [])?
                    .into_iter()
                    .map(|(d,)| d)
                    .collect();
            let blob_dir = self.root.join("blobs/sha256");
            for name in list_dir(&blob_dir)? {
                if !known_blobs.contains(&format!("sha256:{name}")) {
                    tracing::debug!("removing orphan blob {name}");
                    remove_file(&blob_dir.join(&name))?;
                }
            }
            let known_snaps: HashSet<String> =
                collect::<(String,)>(tx, "SELECT chain_id FROM snapshots", [])?
                    .into_iter()
                    .map(|(d,)| d)
                    .collect();
            let snap_dir = self.root.join("snapshots");
            std::fs::create_dir_all(&trash_dir)
                .map_err(io_err(&trash_dir, "creating trash dir"))?;
            for name in list_dir(&snap_dir)? {
                if known_snaps.contains(&format!("sha256:{name}")) {
                    continue;
                }
                let from = snap_dir.join(&name);
                let to = trash_dir.join(&name);
                match std::fs::rename(&from, &to) {
                    Ok(()) => trash.push(to),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io_err(&from, "moving snapshot to trash")(e)),
                }
            }
            Ok(report)
        })?;
        // Outside the lock: deleting big trees takes time, and the trash
        // is in our scratch dir, so a crash here leaves nothing behind
        // that the next open does not clean.
        for t in trash {
            scratch::remove_tree(&t).map_err(io_err(&t, "removing snapshot"))?;
        }
        let _ = std::fs::remove_dir(&trash_dir);
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

fn list_dir(dir: &std::path::Path) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).map_err(io_err(dir, "listing"))? {
        let e = e.map_err(io_err(dir, "listing"))?;
        if let Some(n) = e.file_name().to_str() {
            out.push(n.to_string());
        }
    }
    Ok(out)
}

fn remove_file(path: &std::path::Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(path, "removing blob")(e)),
    }
}
