//! Leases: what a live process is using, so GC leaves it alone.
//!
//! A lease belongs to a process (pid + start time). It is stale once that
//! process is gone, whether it exited or was killed, and stale leases are
//! dropped by the next `Store::open` or GC. Each `Store` has its own
//! process lease, taken on first write, that covers everything it ingests
//! or extracts until an image references it. The runtime takes an explicit
//! lease for a running container (owned by the container's supervising
//! process) with [`Store::create_image_lease`] (or [`Store::create_lease`] +
//! [`Store::lease_image`]).

use super::scratch::ProcessId;
use super::{db, Image, Result, Store, StoreError};
use crate::image::digest::Digest;
use rusqlite::{params, OptionalExtension, Transaction};

/// A lease held in the store; release it with [`Store::release_lease`]
/// (or let its owner process exit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    id: String,
}

impl Lease {
    /// The lease's ID as stored.
    pub fn id(&self) -> &str {
        &self.id
    }
}

/// What a lease can hold.
#[derive(Debug, Clone, Copy)]
pub(crate) enum RefKind {
    Blob,
    Snapshot,
    Layer,
}

impl RefKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            RefKind::Blob => "blob",
            RefKind::Snapshot => "snapshot",
            RefKind::Layer => "layer",
        }
    }
}

fn new_lease_id(owner: ProcessId) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{}-{}-{nanos:x}", owner.pid, owner.start)
}

fn insert_lease(tx: &Transaction, owner: ProcessId, label: &str) -> Result<String> {
    let id = new_lease_id(owner);
    tx.prepare_cached(
        "INSERT INTO leases (id, pid, pid_start, label, added) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![id, owner.pid, owner.start as i64, label, db::now()])?;
    Ok(id)
}

impl Store {
    /// Takes a lease owned by process `pid` (this process if `None`); it
    /// lasts until released or until that process is gone.
    pub fn create_lease(&self, pid: Option<u32>, label: &str) -> Result<Lease> {
        let owner = match pid {
            None => self.me,
            Some(p) => ProcessId::of(p).ok_or_else(|| {
                StoreError::Conflict(format!("lease owner pid {p} is not running"))
            })?,
        };
        let id = self.write(|tx| insert_lease(tx, owner, label))?;
        Ok(Lease { id })
    }

    /// Takes a lease owned by this process holding every snapshot and blob
    /// of `image`, in one transaction (`kiln run`: one fsync, not two).
    pub fn create_image_lease(&self, label: &str, image: &Image) -> Result<Lease> {
        let id = self.write(|tx| {
            let id = insert_lease(tx, self.me, label)?;
            add_image_refs(tx, &id, image)?;
            Ok(id)
        })?;
        Ok(Lease { id })
    }

    /// Protects every snapshot and blob of `image` under `lease`.
    pub fn lease_image(&self, lease: &Lease, image: &Image) -> Result<()> {
        self.write(|tx| {
            add_image_refs(tx, &lease.id, image)?;
            Ok(())
        })
    }

    /// Drops a lease; what only it held is collected by the next GC.
    pub fn release_lease(&self, lease: Lease) -> Result<()> {
        self.release_lease_id(&lease.id).map(|_| ())
    }

    /// Deletes a lease; returns how many refs it held.
    pub(crate) fn release_lease_id(&self, id: &str) -> Result<usize> {
        self.write(|tx| {
            let n: usize = tx
                .prepare_cached("SELECT COUNT(*) FROM lease_refs WHERE lease_id = ?1")?
                .query_row([id], |r| r.get(0))?;
            tx.prepare_cached("DELETE FROM leases WHERE id = ?1")?
                .execute([id])?;
            Ok(n)
        })
    }

    /// This process's lease ID, taking the lease on first use.
    pub(crate) fn own_lease(&self, tx: &Transaction) -> Result<String> {
        let mut guard = self.own_lease.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(id) = guard.as_ref() {
            // The row may be gone if another process wrongly judged us dead
            // (pid namespaces); recreate it rather than hold nothing.
            let exists = tx
                .prepare_cached("SELECT 1 FROM leases WHERE id = ?1")?
                .query_row([id], |_| Ok(()))
                .optional()?
                .is_some();
            if exists {
                return Ok(id.clone());
            }
        }
        let id = insert_lease(tx, self.me, "process")?;
        *guard = Some(id.clone());
        Ok(id)
    }

    /// Records, inside `tx`, that this process holds `key`.
    pub(crate) fn protect(&self, tx: &Transaction, kind: RefKind, key: &Digest) -> Result<()> {
        let lease = self.own_lease(tx)?;
        tx.prepare_cached(
            "INSERT OR IGNORE INTO lease_refs (lease_id, kind, key) VALUES (?1, ?2, ?3)",
        )?
        .execute(params![lease, kind.as_str(), key.to_string()])?;
        Ok(())
    }

    /// Drops this process's refs on `keys` (an image now holds them): the
    /// process lease covers work in progress, not committed images, so a
    /// long-running process can still free what it made and then removed.
    pub(crate) fn unprotect(&self, tx: &Transaction, keys: &[Digest]) -> Result<()> {
        let guard = self.own_lease.lock().unwrap_or_else(|p| p.into_inner());
        let Some(lease) = guard.as_ref() else {
            return Ok(());
        };
        let mut st =
            tx.prepare_cached("DELETE FROM lease_refs WHERE lease_id = ?1 AND key = ?2")?;
        for k in keys {
            st.execute(params![lease, k.to_string()])?;
        }
        Ok(())
    }

    /// Deletes leases whose owner process is gone; returns how many.
    pub(crate) fn drop_stale_leases(&self) -> Result<usize> {
        let leases: Vec<(String, u32, i64)> = self.read(|tx| {
            let mut st = tx.prepare_cached("SELECT id, pid, pid_start FROM leases")?;
            let rows = st
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })?;
        let stale: Vec<String> = leases
            .into_iter()
            .filter(|(_, pid, start)| {
                !ProcessId {
                    pid: *pid,
                    start: *start as u64,
                }
                .is_alive()
            })
            .map(|(id, _, _)| id)
            .collect();
        if stale.is_empty() {
            return Ok(0);
        }
        tracing::debug!("dropping {} stale lease(s)", stale.len());
        self.write(|tx| {
            for id in &stale {
                tx.prepare_cached("DELETE FROM leases WHERE id = ?1")?
                    .execute([id])?;
            }
            Ok(stale.len())
        })
    }
}

/// Adds refs for all of an image's resources to a lease.
fn add_image_refs(tx: &Transaction, lease: &str, image: &Image) -> Result<()> {
    let add = |kind: RefKind, key: &Digest| -> Result<()> {
        tx.prepare_cached(
            "INSERT OR IGNORE INTO lease_refs (lease_id, kind, key) VALUES (?1, ?2, ?3)",
        )?
        .execute(params![lease, kind.as_str(), key.to_string()])?;
        Ok(())
    };
    add(RefKind::Blob, &image.manifest_digest)?;
    add(RefKind::Blob, &image.id)?;
    for l in &image.layers {
        add(RefKind::Snapshot, &l.chain_id)?;
        add(RefKind::Layer, &l.diff_id)?;
        for b in &l.blobs {
            add(RefKind::Blob, &b.digest)?;
        }
    }
    Ok(())
}
