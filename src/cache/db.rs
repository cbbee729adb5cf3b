//! The store's metadata database: SQLite in WAL mode at `<root>/kiln.db`.
//!
//! Why SQLite: many kiln processes share one store with no daemon; SQLite
//! gives them atomic multi-row transactions and a cross-process write lock
//! (readers never block in WAL mode), and survives SIGKILL at any point.
//! Every write uses `BEGIN IMMEDIATE` so two writers queue on the lock
//! (up to `busy_timeout`) instead of failing when upgrading a read lock.
//! `synchronous=FULL`: a committed image survives power loss too.
//!
//! The schema version is `PRAGMA user_version`; [`MIGRATIONS`] holds one
//! SQL batch per version, applied in order inside one transaction.

use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use std::path::Path;
use std::time::Duration;

/// How long a writer waits for another process's transaction.
const BUSY_TIMEOUT: Duration = Duration::from_secs(120);

/// Schema migrations; index `i` brings the schema from version `i` to `i+1`.
///
/// Tables (v1):
/// - `blobs`: every file in `blobs/sha256/`. The row is committed *before*
///   the file is renamed into place, so GC may treat a file without a row
///   as garbage; a row whose file is missing just means "not present".
/// - `layers`: a diff ID and its uncompressed tar size; `canonical=1` when
///   kiln's own tar of the snapshot reproduces the diff ID (layers kiln
///   made), so that tar can be regenerated at any time.
/// - `layer_blobs`: compressed (or not) blobs known to hold a layer.
/// - `snapshots`: unpacked layers in `snapshots/<chain-id-hex>/`, with the
///   parent chain ID and content size. Same row-before-rename rule.
/// - `images`: keyed by config digest (docker's image ID), with the
///   manifest digest, creation time and size; `image_layers` lists each
///   image's layers bottom to top.
/// - `names` (tagged references → image) and `repo_digests`
///   (`repo@sha256:…` → image).
/// - `leases` and `lease_refs`: resources held by live processes (a build,
///   a running container, an import in progress), which GC keeps.
///
/// Tables (v2):
/// - `build_cache`: results of build steps by cache key (see
///   `solver::key`), kept across builds; `build_cache_layers` lists each
///   result's root filesystem, bottom to top, by chain ID. Those snapshots
///   are GC roots like an image's, so a cache hit never finds them gone.
///
/// Tables (v3, additive):
/// - `build_cache.created`: when the step made the result (RFC 3339 with
///   nanoseconds), the time its image history entry shows, as BuildKit's
///   exporter takes a layer's time from its cache ref. Rows from before
///   v3 have NULL and fall back to `added` (whole seconds).
///
/// Tables (v4, additive):
/// - `containers`: every container `kiln run`/`kiln create` made, until
///   `kiln rm` (see `crate::container::state`). `name` is unique (docker's
///   name conflict); `config` is the JSON the container is (re)started
///   from; `pid`/`pid_start` identify its init and `monitor_pid`/
///   `monitor_start` the process that waits for it (a detached
///   container's monitor, or the `kiln run` in the foreground), so a later
///   process can tell a live container from one whose monitor died;
///   `boot_id` tells a rebooted host. Times are RFC 3339 with nanoseconds.
pub const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE blobs (
    digest TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    added INTEGER NOT NULL
);
CREATE TABLE layers (
    diff_id TEXT PRIMARY KEY,
    tar_size INTEGER,
    canonical INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE layer_blobs (
    diff_id TEXT NOT NULL,
    digest TEXT NOT NULL,
    media_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    PRIMARY KEY (diff_id, digest)
);
CREATE INDEX layer_blobs_digest ON layer_blobs (digest);
CREATE TABLE snapshots (
    chain_id TEXT PRIMARY KEY,
    diff_id TEXT NOT NULL,
    parent TEXT,
    size INTEGER NOT NULL,
    added INTEGER NOT NULL
);
CREATE TABLE images (
    id TEXT PRIMARY KEY,
    manifest_digest TEXT NOT NULL,
    manifest_media_type TEXT NOT NULL,
    created TEXT,
    size INTEGER NOT NULL,
    added INTEGER NOT NULL
);
CREATE TABLE image_layers (
    image_id TEXT NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    diff_id TEXT NOT NULL,
    chain_id TEXT NOT NULL,
    PRIMARY KEY (image_id, position)
);
CREATE INDEX image_layers_chain ON image_layers (chain_id);
CREATE TABLE names (
    name TEXT PRIMARY KEY,
    image_id TEXT NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    added INTEGER NOT NULL
);
CREATE INDEX names_image ON names (image_id);
CREATE TABLE repo_digests (
    name TEXT PRIMARY KEY,
    image_id TEXT NOT NULL REFERENCES images (id) ON DELETE CASCADE
);
CREATE TABLE leases (
    id TEXT PRIMARY KEY,
    pid INTEGER NOT NULL,
    pid_start INTEGER NOT NULL,
    label TEXT NOT NULL,
    added INTEGER NOT NULL
);
CREATE TABLE lease_refs (
    lease_id TEXT NOT NULL REFERENCES leases (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    PRIMARY KEY (lease_id, kind, key)
);
CREATE INDEX lease_refs_key ON lease_refs (kind, key);
"#,
    r#"
CREATE TABLE build_cache (
    key TEXT PRIMARY KEY,
    added INTEGER NOT NULL,
    used INTEGER NOT NULL
);
CREATE TABLE build_cache_layers (
    key TEXT NOT NULL REFERENCES build_cache (key) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    chain_id TEXT NOT NULL,
    PRIMARY KEY (key, position)
);
CREATE INDEX build_cache_layers_chain ON build_cache_layers (chain_id);
"#,
    r#"
ALTER TABLE build_cache ADD COLUMN created TEXT;
"#,
    r#"
CREATE TABLE containers (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    image TEXT NOT NULL,
    image_id TEXT,
    config TEXT NOT NULL,
    state TEXT NOT NULL,
    pid INTEGER,
    pid_start INTEGER,
    monitor_pid INTEGER,
    monitor_start INTEGER,
    boot_id TEXT,
    exit_code INTEGER NOT NULL DEFAULT 0,
    reason TEXT NOT NULL DEFAULT '',
    error TEXT NOT NULL DEFAULT '',
    oom_killed INTEGER NOT NULL DEFAULT 0,
    restart_count INTEGER NOT NULL DEFAULT 0,
    stop_requested INTEGER NOT NULL DEFAULT 0,
    created TEXT NOT NULL,
    started TEXT NOT NULL DEFAULT '',
    finished TEXT NOT NULL DEFAULT ''
);
"#,
    // Multi-platform images: a name may also name an OCI index (its blob)
    // over stored per-platform images. A name that moves or goes loses
    // its index (the triggers), so `names` stays the one truth of what a
    // tag runs.
    r#"
CREATE TABLE image_indexes (
    name TEXT PRIMARY KEY,
    digest TEXT NOT NULL,
    added INTEGER NOT NULL
);
CREATE TABLE image_index_members (
    digest TEXT NOT NULL,
    position INTEGER NOT NULL,
    image_id TEXT NOT NULL,
    PRIMARY KEY (digest, position)
);
CREATE INDEX image_index_members_image ON image_index_members (image_id);
CREATE TRIGGER names_update_drops_index AFTER UPDATE OF image_id ON names
    WHEN OLD.image_id IS NOT NEW.image_id
    BEGIN DELETE FROM image_indexes WHERE name = OLD.name; END;
CREATE TRIGGER names_delete_drops_index AFTER DELETE ON names
    BEGIN DELETE FROM image_indexes WHERE name = OLD.name; END;
"#,
];

/// Opens (creating and migrating) the database at `path`.
pub fn open(path: &Path) -> rusqlite::Result<Connection> {
    let mut conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // journal_mode needs the write lock the first time; busy_timeout above
    // makes concurrent first opens wait rather than fail.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Every kiln command is a short process: by default the last one to
    // close would checkpoint the WAL into the database (two more fsyncs on
    // every command). Committed transactions are already durable in the
    // WAL, and SQLite checkpoints on its own once the WAL grows.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)?;
    // The price: each new process re-reads the whole WAL to rebuild its
    // index (about 0.35 ms per MB here), so keep the WAL to 1 MB (SQLite's
    // default lets it grow to 4 MB before checkpointing).
    conn.pragma_update(None, "wal_autocheckpoint", 256)?;
    // The store's queries are a fixed set; keep them all prepared.
    conn.set_prepared_statement_cache_capacity(64);
    migrate(&mut conn)?;
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let version: usize = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version >= MIGRATIONS.len() {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // Re-read under the write lock: another process may have migrated.
    let version: usize = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i + 1)?;
    }
    tx.commit()
}

/// Seconds since the epoch, for `added` columns.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_once_and_reopens() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("kiln.db");
        let c = open(&p).unwrap();
        let v: usize = c
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, MIGRATIONS.len());
        let mode: String = c
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        drop(c);
        open(&p).unwrap();
    }
}
