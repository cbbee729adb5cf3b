//! Container rows: what `kiln run`/`kiln create` made, for every later
//! kiln process to list, inspect and act on (the `containers` table, v4).
//!
//! The store keeps rows as plain data; what the states mean, how a dead
//! monitor is told from a live one and what is cleaned is
//! `crate::container::state`'s business. Every change is one
//! read-modify-write in an IMMEDIATE transaction ([`Store::update_container`]),
//! so a monitor recording an exit and a `kiln stop` asking for one never
//! lose each other's writes.

use super::{Result, Store, StoreError};
use rusqlite::{params, OptionalExtension, Row, Transaction};

/// One row of the `containers` table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerRow {
    /// 64 hex digits.
    pub id: String,
    /// Unique; docker generates one when `--name` is not given.
    pub name: String,
    /// The image as the user named it (or `--rootfs DIR`).
    pub image: String,
    /// The image's ID (config digest); none for `--rootfs`.
    pub image_id: Option<String>,
    /// JSON the container is started from.
    pub config: String,
    /// created, running, restarting, paused, exited, dead.
    pub state: String,
    /// The container's init (host pid) and its start time, while running.
    pub pid: Option<(u32, u64)>,
    /// The process that waits for the init, while one does.
    pub monitor: Option<(u32, u64)>,
    /// `/proc/sys/kernel/random/boot_id` when the monitor was recorded.
    pub boot_id: Option<String>,
    /// docker's exit code (128 + signal when killed).
    pub exit_code: i32,
    /// How the last run ended, in words ("exited", "killed by signal 9",
    /// "monitor died", "host rebooted").
    pub reason: String,
    /// Why the last start failed (inspect's `.State.Error`).
    pub error: String,
    /// The OOM killer ended the last run.
    pub oom_killed: bool,
    /// Restarts made by the restart policy.
    pub restart_count: u32,
    /// `stop`/`kill`/`rm -f` asked for the end: no restart follows.
    pub stop_requested: bool,
    /// RFC 3339 times; `started`/`finished` empty until they happen.
    pub created: String,
    /// See `created`.
    pub started: String,
    /// See `created`.
    pub finished: String,
}

const COLUMNS: &str = "id, name, image, image_id, config, state, pid, pid_start, monitor_pid, \
    monitor_start, boot_id, exit_code, reason, error, oom_killed, restart_count, stop_requested, \
    created, started, finished";

fn pair(a: Option<i64>, b: Option<i64>) -> Option<(u32, u64)> {
    Some((a? as u32, b? as u64))
}

fn from_row(r: &Row) -> rusqlite::Result<ContainerRow> {
    Ok(ContainerRow {
        id: r.get(0)?,
        name: r.get(1)?,
        image: r.get(2)?,
        image_id: r.get(3)?,
        config: r.get(4)?,
        state: r.get(5)?,
        pid: pair(r.get(6)?, r.get(7)?),
        monitor: pair(r.get(8)?, r.get(9)?),
        boot_id: r.get(10)?,
        exit_code: r.get(11)?,
        reason: r.get(12)?,
        error: r.get(13)?,
        oom_killed: r.get(14)?,
        restart_count: r.get(15)?,
        stop_requested: r.get(16)?,
        created: r.get(17)?,
        started: r.get(18)?,
        finished: r.get(19)?,
    })
}

fn get(tx: &Transaction, id: &str) -> Result<Option<ContainerRow>> {
    Ok(tx
        .prepare_cached(&format!("SELECT {COLUMNS} FROM containers WHERE id = ?1"))?
        .query_row([id], from_row)
        .optional()?)
}

fn name_conflict(name: &str, tx: &Transaction) -> Result<StoreError> {
    let owner: String = tx
        .prepare_cached("SELECT id FROM containers WHERE name = ?1")?
        .query_row([name], |r| r.get(0))?;
    // docker's wording (daemon/names.go `reserveName`).
    Ok(StoreError::Conflict(format!(
        "Conflict. The container name \"/{name}\" is already in use by container \"{owner}\". \
         You have to remove (or rename) that container to be able to reuse that name."
    )))
}

fn put(tx: &Transaction, c: &ContainerRow) -> Result<()> {
    let taken: bool = tx
        .prepare_cached("SELECT EXISTS(SELECT 1 FROM containers WHERE name = ?1 AND id != ?2)")?
        .query_row(params![c.name, c.id], |r| r.get(0))?;
    if taken {
        return Err(name_conflict(&c.name, tx)?);
    }
    tx.prepare_cached(&format!(
        "INSERT OR REPLACE INTO containers ({COLUMNS}) VALUES \
         (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)"
    ))?
    .execute(params![
        c.id,
        c.name,
        c.image,
        c.image_id,
        c.config,
        c.state,
        c.pid.map(|p| p.0),
        c.pid.map(|p| p.1 as i64),
        c.monitor.map(|p| p.0),
        c.monitor.map(|p| p.1 as i64),
        c.boot_id,
        c.exit_code,
        c.reason,
        c.error,
        c.oom_killed,
        c.restart_count,
        c.stop_requested,
        c.created,
        c.started,
        c.finished,
    ])?;
    Ok(())
}

impl Store {
    /// Records a new container; [`StoreError::Conflict`] (docker's text)
    /// when its name is taken.
    pub fn insert_container(&self, row: &ContainerRow) -> Result<()> {
        self.write(|tx| {
            if get(tx, &row.id)?.is_some() {
                return Err(StoreError::Conflict(format!(
                    "container {} already exists",
                    row.id
                )));
            }
            put(tx, row)
        })
    }

    /// Every container, oldest first.
    pub fn list_containers(&self) -> Result<Vec<ContainerRow>> {
        self.read(|tx| {
            let mut stmt = tx.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM containers ORDER BY created, id"
            ))?;
            let rows = stmt.query_map([], from_row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    /// The container docker would pick for `key`: a full ID, a name (with
    /// or without docker's leading `/`), or a unique ID prefix. `Ok(None)`
    /// when nothing matches; a prefix of several IDs is an error.
    pub fn find_container(&self, key: &str) -> Result<Option<ContainerRow>> {
        let key = key.strip_prefix('/').unwrap_or(key);
        self.read(|tx| {
            if let Some(c) = get(tx, key)? {
                return Ok(Some(c));
            }
            let by_name = tx
                .prepare_cached(&format!("SELECT {COLUMNS} FROM containers WHERE name = ?1"))?
                .query_row([key], from_row)
                .optional()?;
            if by_name.is_some() || key.is_empty() || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Ok(by_name);
            }
            let mut stmt = tx.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM containers WHERE substr(id, 1, length(?1)) = ?1 LIMIT 2"
            ))?;
            let mut found = stmt
                .query_map([key], from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            match found.len() {
                0 => Ok(None),
                1 => Ok(found.pop()),
                // docker's wording (daemon/container.go `GetContainer`).
                _ => Err(StoreError::Conflict(format!(
                    "multiple IDs found with provided prefix: {key}"
                ))),
            }
        })
    }

    /// Applies `change` to container `id` in one write transaction and
    /// returns the row as written; `Ok(None)` when the row is gone.
    /// `change` returns false to leave the row as it was.
    pub fn update_container(
        &self,
        id: &str,
        change: impl FnOnce(&mut ContainerRow) -> bool,
    ) -> Result<Option<ContainerRow>> {
        self.write(|tx| {
            let Some(mut row) = get(tx, id)? else {
                return Ok(None);
            };
            if change(&mut row) {
                row.id = id.to_string();
                put(tx, &row)?;
            }
            Ok(Some(row))
        })
    }

    /// Forgets container `id` (its name is free again); true if it was
    /// there.
    pub fn delete_container(&self, id: &str) -> Result<bool> {
        self.write(|tx| {
            Ok(tx
                .prepare_cached("DELETE FROM containers WHERE id = ?1")?
                .execute([id])?
                > 0)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, name: &str) -> ContainerRow {
        ContainerRow {
            id: id.into(),
            name: name.into(),
            image: "busybox".into(),
            config: "{}".into(),
            state: "created".into(),
            created: "2026-12-07T00:00:00Z".into(),
            ..Default::default()
        }
    }

    #[test]
    fn names_are_unique_until_the_row_goes() {
        let t = tempfile::tempdir().unwrap();
        let store = Store::open(t.path()).unwrap();
        store.insert_container(&row("aa11", "web")).unwrap();
        let err = store.insert_container(&row("bb22", "web")).unwrap_err();
        assert!(
            err.to_string()
                .contains("The container name \"/web\" is already in use by container \"aa11\""),
            "{err}"
        );
        assert!(store.delete_container("aa11").unwrap());
        store.insert_container(&row("bb22", "web")).unwrap();
    }

    #[test]
    fn finds_by_id_name_and_unique_prefix() {
        let t = tempfile::tempdir().unwrap();
        let store = Store::open(t.path()).unwrap();
        store.insert_container(&row("abc123", "one")).unwrap();
        store.insert_container(&row("abd456", "two")).unwrap();
        let id = |k: &str| store.find_container(k).unwrap().map(|c| c.id);
        assert_eq!(id("abc123").as_deref(), Some("abc123"));
        assert_eq!(id("two").as_deref(), Some("abd456"));
        assert_eq!(id("/one").as_deref(), Some("abc123"));
        assert_eq!(id("abc").as_deref(), Some("abc123"));
        assert_eq!(id("ff"), None);
        assert!(store.find_container("ab").is_err());
    }

    #[test]
    fn updates_keep_other_fields_and_rename_checks_conflicts() {
        let t = tempfile::tempdir().unwrap();
        let store = Store::open(t.path()).unwrap();
        store.insert_container(&row("aa", "one")).unwrap();
        store.insert_container(&row("bb", "two")).unwrap();
        let r = store
            .update_container("aa", |c| {
                c.state = "running".into();
                c.pid = Some((42, 7));
                true
            })
            .unwrap()
            .unwrap();
        assert_eq!(
            (r.state.as_str(), r.pid, r.name.as_str()),
            ("running", Some((42, 7)), "one")
        );
        let renamed = store.update_container("aa", |c| {
            c.name = "two".into();
            true
        });
        assert!(renamed.is_err());
        assert_eq!(
            store.find_container("one").unwrap().unwrap().pid,
            Some((42, 7))
        );
        assert!(store.update_container("zz", |_| true).unwrap().is_none());
    }
}
