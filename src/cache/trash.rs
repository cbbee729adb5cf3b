//! The sweep's trash: `<root>/trash/<sweep>/`, where GC moves the files of
//! the rows it deletes, so that the rows are gone *before* any file is.
//!
//! Order of a sweep (see `gc.rs`):
//! 1. inside the write transaction: delete the rows, `rename(2)` their
//!    files into a fresh `<root>/trash/<sweep>/` (cheap, and no other
//!    process can look a file up meanwhile: lookups that lease take the
//!    write lock too);
//! 2. commit;
//! 3. rename `<sweep>/` to `<sweep>.doomed`, then delete it.
//!
//! A kill at any point leaves a consistent store plus a trash dir:
//! - before the commit, the rows are still there and their files are in a
//!   plain `<sweep>/` dir: [`Store::finish_sweeps`] puts back every file
//!   whose row exists (the transaction rolled back) and deletes the rest;
//! - after the commit, the rows are gone: a plain dir holds only files
//!   nobody references (or that were re-added meanwhile, then put back
//!   whole: nothing in a plain dir was ever partly deleted), a `.doomed`
//!   dir is deleted outright.
//!
//! This is containerd's order too (`containerd/containerd`,
//! `core/metadata/db.go`, `DB.GarbageCollect`: the metadata is removed in
//! one bolt `Update`, and only after it commits do `cleanupContent` and
//! `cleanupSnapshotter` delete what the committed metadata no longer
//! lists); the trash dir stands in for its in-memory dirty flags, so a
//! kill mid-removal is finished by the next process instead of leaking.

use super::{io_err, scratch, Result, Store};
use crate::error_chain::Chain;
use rusqlite::{OptionalExtension, Transaction};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Test-only: milliseconds to sleep before each removal in step 3, so an
/// integration test can SIGKILL a sweep after its commit and before its
/// files are gone. Read only here; never set it outside tests.
pub const TEST_UNLINK_DELAY_ENV: &str = "KILN_TEST_GC_UNLINK_DELAY_MS";

const DOOMED: &str = ".doomed";

/// What a trash entry was, by its name's prefix.
enum Entry<'a> {
    Blob(&'a str),
    Snapshot(&'a str),
}

fn parse(name: &str) -> Option<Entry<'_>> {
    if let Some(hex) = name.strip_prefix("blob-") {
        Some(Entry::Blob(hex))
    } else {
        name.strip_prefix("snapshot-").map(Entry::Snapshot)
    }
}

/// One sweep's trash dir, created inside the sweep's transaction.
pub(crate) struct Sweep {
    dir: PathBuf,
}

impl Sweep {
    /// A fresh, empty trash dir for one sweep.
    pub fn create(store: &Store) -> Result<Sweep> {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let trash = store.layout.trash();
        std::fs::create_dir_all(&trash).map_err(io_err(&trash, "creating trash dir"))?;
        let dir = trash.join(format!(
            "{}-{}-{}",
            store.me.pid,
            store.me.start,
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir(&dir).map_err(io_err(&dir, "creating trash dir"))?;
        Ok(Sweep { dir })
    }

    /// Moves the blob file with hex digest `hex` here; false if absent.
    pub fn take_blob(&self, from: &Path, hex: &str) -> Result<bool> {
        self.take(from, &format!("blob-{hex}"))
    }

    /// Moves the snapshot dir with chain ID hex `hex` here; false if absent.
    pub fn take_snapshot(&self, from: &Path, hex: &str) -> Result<bool> {
        self.take(from, &format!("snapshot-{hex}"))
    }

    fn take(&self, from: &Path, name: &str) -> Result<bool> {
        match std::fs::rename(from, self.dir.join(name)) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_err(from, "moving to the trash")(e)),
        }
    }

    /// Step 3, after the commit: marks the dir doomed and deletes it.
    pub fn empty(self) -> Result<()> {
        let doomed = self.dir.with_file_name(format!(
            "{}{DOOMED}",
            self.dir
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("sweep")
        ));
        match std::fs::rename(&self.dir, &doomed) {
            Ok(()) => {
                remove_slowly(&doomed);
                Ok(())
            }
            // Another process finished it for us (`finish_sweeps`).
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(&self.dir, "marking the trash doomed")(e)),
        }
    }
}

/// Deletes a doomed trash dir entry by entry (honouring the test-only
/// delay), then the dir.
fn remove_slowly(dir: &Path) {
    let delay = std::env::var(TEST_UNLINK_DELAY_ENV)
        .ok()
        .and_then(|v| v.parse::<u64>().ok());
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if let Some(ms) = delay {
                std::thread::sleep(std::time::Duration::from_millis(ms));
            }
            let p = e.path();
            // Another process may be finishing the same dir: whatever is
            // left is found again by the next `finish_sweeps`.
            match scratch::remove_tree(&p) {
                Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                    tracing::warn!("removing trashed {}: {err}", p.display(), err = Chain(&err))
                }
                _ => {}
            }
        }
    }
    if let Err(err) = std::fs::remove_dir(dir) {
        if err.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(
                "removing trash dir {}: {err}",
                dir.display(),
                err = Chain(&err)
            );
        }
    }
}

impl Store {
    /// Whether an earlier sweep left something in `<root>/trash`.
    pub(crate) fn has_trash(&self) -> bool {
        std::fs::read_dir(self.layout.trash())
            .map(|mut d| d.next().is_some())
            .unwrap_or(false)
    }

    /// Finishes interrupted sweeps, under the write lock (`tx`): files
    /// whose row still exists go back, the rest is returned for deletion
    /// after the commit (as doomed dirs).
    pub(crate) fn finish_sweeps(&self, tx: &Transaction) -> Result<Vec<PathBuf>> {
        let trash = self.layout.trash();
        let Ok(dirs) = std::fs::read_dir(&trash) else {
            return Ok(Vec::new());
        };
        let mut doomed = Vec::new();
        for d in dirs.flatten() {
            let path = d.path();
            let name = d.file_name().to_string_lossy().into_owned();
            if !name.ends_with(DOOMED) {
                self.restore_live(tx, &path)?;
            }
            doomed.push(path);
        }
        Ok(doomed)
    }

    /// Puts back every entry of an uncommitted (or just committed) sweep
    /// whose row exists and whose place is free.
    fn restore_live(&self, tx: &Transaction, dir: &Path) -> Result<()> {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Ok(());
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let (table, column, dest) = match parse(&name) {
                Some(Entry::Blob(hex)) => ("blobs", "digest", self.layout.blobs().join(hex)),
                Some(Entry::Snapshot(hex)) => {
                    ("snapshots", "chain_id", self.layout.snapshots().join(hex))
                }
                None => continue,
            };
            let hex = dest.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let row = tx
                .prepare_cached(&format!("SELECT 1 FROM {table} WHERE {column} = ?1"))?
                .query_row([format!("sha256:{hex}")], |_| Ok(()))
                .optional()?;
            if row.is_some() && std::fs::symlink_metadata(&dest).is_err() {
                tracing::info!("restoring {} from an interrupted sweep", dest.display());
                match std::fs::rename(e.path(), &dest) {
                    // Its sweep (alive, committed) just marked it doomed:
                    // then the row is a newer writer's, who brings the file.
                    Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                    other => other.map_err(io_err(&dest, "restoring from trash"))?,
                }
            }
        }
        Ok(())
    }

    /// Deletes trash dirs [`Store::finish_sweeps`] returned (after commit).
    pub(crate) fn remove_trash(&self, dirs: Vec<PathBuf>) -> Result<()> {
        for d in dirs {
            let name = d.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let doomed = if name.ends_with(DOOMED) {
                d.clone()
            } else {
                let to = d.with_file_name(format!("{name}{DOOMED}"));
                match std::fs::rename(&d, &to) {
                    Ok(()) => to,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(io_err(&d, "marking the trash doomed")(e)),
                }
            };
            remove_slowly(&doomed);
        }
        Ok(())
    }
}
