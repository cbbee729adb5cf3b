//! What a container is between kiln processes: its status, how it was
//! made (the JSON in its store row), and the reconciliation that keeps the
//! store true when the process waiting for it is gone.
//!
//! kiln has no daemon. Each running container has one *monitor*: the
//! foreground `kiln run`, or for `run -d`/`start` a re-executed kiln
//! ([`super::monitor`]). The row records the monitor's pid and start time;
//! any later kiln process that finds the monitor gone (killed, or the host
//! rebooted: the boot ID changed) marks the container exited with that
//! reason, kills what is left of it and removes its cgroup
//! ([`reconcile`]). A container's init dies with its monitor
//! (`PR_SET_PDEATHSIG`), so a dead monitor always means a dead container.

use super::reap;
use crate::cache::scratch::{self, ProcessId};
use crate::cache::{ContainerRow, Store, StoreError};
use crate::runtime::ContainerSpec;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// docker's container states (`.State.Status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Made, never started (or its start failed).
    Created,
    /// Its init runs.
    Running,
    /// Waiting for the restart policy's next start.
    Restarting,
    /// Frozen by the cgroup freezer.
    Paused,
    /// Ended.
    Exited,
    /// Half removed.
    Dead,
}

impl Status {
    /// docker's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Restarting => "restarting",
            Status::Paused => "paused",
            Status::Exited => "exited",
            Status::Dead => "dead",
        }
    }

    /// Reads a stored state; anything unknown is `Dead`.
    pub fn parse(s: &str) -> Status {
        match s {
            "created" => Status::Created,
            "running" => Status::Running,
            "restarting" => Status::Restarting,
            "paused" => Status::Paused,
            "exited" => Status::Exited,
            _ => Status::Dead,
        }
    }

    /// Whether a monitor owns the container in this state.
    pub fn is_live(self) -> bool {
        matches!(self, Status::Running | Status::Restarting | Status::Paused)
    }
}

/// `--restart` (docker's policies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum RestartPolicy {
    /// Never restart.
    #[default]
    No,
    /// Restart after a non-zero exit, at most this many times (0: no limit).
    OnFailure(u32),
    /// Restart after every exit.
    Always,
    /// Like `Always`; differs from it only when a daemon restarts, which
    /// kiln has not (see [`super::monitor`]).
    UnlessStopped,
}

impl RestartPolicy {
    /// Parses `--restart` as docker does: the CLI splits `NAME[:COUNT]`
    /// (docker/cli `opts/parse.go` `ParseRestartPolicy`), the daemon checks
    /// the name and that only `on-failure` takes a count (moby
    /// `daemon/container.go` `validateRestartPolicy`); the messages are
    /// theirs.
    pub fn parse(value: &str) -> Result<RestartPolicy, String> {
        if value.is_empty() {
            return Ok(RestartPolicy::No);
        }
        let (name, count) = value.split_once(':').unwrap_or((value, ""));
        if value.contains(':') && name.is_empty() {
            return Err("invalid restart policy format: no policy provided before colon".into());
        }
        let count: Option<i64> = if count.is_empty() {
            None
        } else {
            Some(count.parse().map_err(|_| {
                "invalid restart policy format: maximum retry count must be an integer".to_string()
            })?)
        };
        let policy = match name {
            "no" => RestartPolicy::No,
            "always" => RestartPolicy::Always,
            "unless-stopped" => RestartPolicy::UnlessStopped,
            "on-failure" => {
                let n = count.unwrap_or(0);
                if n < 0 {
                    return Err(
                        "invalid restart policy: maximum retry count cannot be negative".into(),
                    );
                }
                return Ok(RestartPolicy::OnFailure(n.min(u32::MAX as i64) as u32));
            }
            other => {
                return Err(format!(
                    "invalid restart policy: unknown policy '{other}'; use one of 'no', \
                     'always', 'on-failure', or 'unless-stopped'"
                ))
            }
        };
        if count.is_some() {
            return Err(
                "invalid restart policy: maximum retry count can only be used with 'on-failure'"
                    .to_string(),
            );
        }
        Ok(policy)
    }

    /// docker's `.HostConfig.RestartPolicy` (`Name`, `MaximumRetryCount`).
    pub fn docker_name(self) -> (&'static str, u32) {
        match self {
            RestartPolicy::No => ("no", 0),
            RestartPolicy::OnFailure(n) => ("on-failure", n),
            RestartPolicy::Always => ("always", 0),
            RestartPolicy::UnlessStopped => ("unless-stopped", 0),
        }
    }

    /// Whether a run that ended with `exit_code`, after `restarts`
    /// restarts, is started again (moby `restartmanager.ShouldRestart`;
    /// a stop the user asked for never restarts).
    pub fn should_restart(self, exit_code: i32, restarts: u32, stop_requested: bool) -> bool {
        if stop_requested {
            return false;
        }
        match self {
            RestartPolicy::No => false,
            RestartPolicy::Always | RestartPolicy::UnlessStopped => true,
            RestartPolicy::OnFailure(max) => exit_code != 0 && (max == 0 || restarts < max),
        }
    }
}

/// How a container is (re)started: what `kiln run`/`create` decided,
/// stored as its row's `config` JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateConfig {
    /// The runtime spec; an image's layer dirs are looked up again (and
    /// leased) at each start.
    pub spec: ContainerSpec,
    /// `--restart`.
    pub restart: RestartPolicy,
    /// `--rm`: removed when it ends.
    pub auto_remove: bool,
    /// The image's `StopSignal` as a number (SIGTERM when unset).
    pub stop_signal: i32,
    /// The command as the user sees it in `ps` (entrypoint and args).
    pub command: Vec<String>,
    /// `-i` in the background: stdin stays open (and silent) rather than
    /// `/dev/null`, as docker's `-dit` keeps a shell waiting.
    #[serde(default)]
    pub open_stdin: bool,
    /// docker's `StdinOnce`: the container's stdin closes when the first
    /// attached client's input ends (`create -i`; never `run -d -i`).
    #[serde(default)]
    pub stdin_once: bool,
    /// `--memory`, `--cpus`, `--pids-limit`, `--privileged`'s devices…:
    /// the runtime spec does not serialize them (its init never sees
    /// them), so they are kept here and put back at each start.
    #[serde(default)]
    pub resources: crate::runtime::cgroups::Resources,
    /// docker's `HostConfig.NetworkMode`: `bridge`, a user network's
    /// name, `host`, `none` or `container:NAME` (empty in rows older than
    /// it: the runtime spec's network tells).
    #[serde(default)]
    pub network_mode: String,
    /// The `-p` values (host port 0 when none was given), docker's
    /// `HostConfig.PortBindings`.
    #[serde(default)]
    pub port_bindings: Vec<crate::network::PortSpec>,
}

impl CreateConfig {
    /// Reads a row's config.
    pub fn of(row: &ContainerRow) -> Result<CreateConfig, StateError> {
        serde_json::from_str(&row.config).map_err(|source| StateError::Config {
            id: row.id.clone(),
            source,
        })
    }
}

/// Why a container's state could not be read or changed.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A row's config is not what kiln writes.
    #[error("container {id}: its stored config is unreadable")]
    Config {
        /// The container.
        id: String,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// No container has this ID, name or ID prefix (docker's words).
    #[error("No such container: {0}")]
    NoSuchContainer(String),
    /// The request does not fit the container's state.
    #[error("{0}")]
    Conflict(String),
    /// Its endpoints could not be released.
    #[error("detaching the container from its networks")]
    Network(#[from] crate::network::NetworkError),
    /// Removing its files failed.
    #[error("removing {path}")]
    Remove {
        /// What.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// Now, RFC 3339 with nanoseconds (docker's times).
pub fn now() -> String {
    crate::image::timestamp::now_rfc3339()
}

/// This boot's ID: a monitor recorded under another one died with the
/// host (a reboot), not on its own.
pub fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_string())
}

/// A recorded process, if it is still that process (not a reused pid)
/// and not a zombie: a monitor whose parent (the CLI that started it)
/// is gone waits as a zombie until init reaps it, and must count as dead.
pub fn alive(p: Option<(u32, u64)>) -> Option<ProcessId> {
    let (pid, start) = p?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // proc(5): `comm` may hold spaces and parentheses; count after the
    // last `)`: field 3 (state) comes first, field 22 (starttime) 20th.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?;
    let started: u64 = fields.nth(18)?.parse().ok()?;
    (started == start && state != "Z" && state != "X").then_some(ProcessId { pid, start })
}

/// The state dir of container `id` (`<root>/containers/<id>`).
pub fn state_dir(root: &Path, id: &str) -> PathBuf {
    crate::cache::StoreLayout::new(root).containers().join(id)
}

/// The container's log (docker's json-file name and format).
pub fn log_path(root: &Path, id: &str) -> PathBuf {
    state_dir(root, id).join(format!("{id}-json.log"))
}

/// Looks a container up by ID, name or ID prefix.
pub fn find(store: &Store, key: &str) -> Result<ContainerRow, StateError> {
    store
        .find_container(key)?
        .ok_or_else(|| StateError::NoSuchContainer(key.to_string()))
}

/// Brings rows whose monitor is gone up to date: each is marked exited
/// with the reason ("monitor died", or "host rebooted" when the boot ID
/// changed), leftovers of its processes are killed and its cgroup
/// removed; a `--rm` container is then removed. Also finishes the removal
/// of `--rm` runs whose kiln was killed ([`reap::reap_dead_removals`]).
/// Every container command calls this first.
pub fn reconcile(store: &Store) -> Result<(), StateError> {
    reap::reap_dead_removals(store.root());
    let boot = boot_id();
    for row in store.list_containers()? {
        if !Status::parse(&row.state).is_live() || alive(row.monitor).is_some() {
            continue;
        }
        let rebooted = row.boot_id.is_some() && row.boot_id != boot;
        let reason = if rebooted {
            "host rebooted"
        } else {
            "monitor died"
        };
        tracing::info!("container {}: {reason}; marking it exited", row.id);
        if let Some(init) = alive(row.pid) {
            // A frozen init acts on no signal (cgroup v1): thaw it first.
            if Status::parse(&row.state) == Status::Paused {
                let _ = super::freezer::set_frozen(init.pid, false);
            }
            // Its monitor's death should have taken it (PDEATHSIG); a
            // survivor is killed so the container is really gone.
            let _ = rustix::process::kill_process(
                rustix::process::Pid::from_raw(init.pid as i32)
                    .expect("a recorded pid is positive"),
                rustix::process::Signal::KILL,
            );
            // Its cgroup can go only once it is empty.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            while alive(row.pid).is_some() && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
        remove_cgroup(&row.id);
        // Its rules and veth go; its address and ports stay reserved for a
        // `start` (its `rm` releases them).
        if let Err(e) =
            crate::network::unplumb(&crate::cache::StoreLayout::new(store.root()), &row.id)
        {
            tracing::warn!("container {}: {}", row.id, crate::error_chain::Chain(&e));
        }
        let updated = store.update_container(&row.id, |c| {
            if alive(c.monitor).is_some() || !Status::parse(&c.state).is_live() {
                return false; // another process got here first
            }
            c.state = Status::Exited.as_str().into();
            // docker reports 255 for a container found dead on restart
            // (moby daemon/daemon.go `restore`: no exit status known).
            c.exit_code = 255;
            c.reason = reason.into();
            c.finished = now();
            c.pid = None;
            c.monitor = None;
            true
        })?;
        let auto_remove = CreateConfig::of(&row)
            .map(|c| c.auto_remove)
            .unwrap_or(false);
        if auto_remove && updated.is_some() {
            remove(store, &row)?;
        }
    }
    Ok(())
}

/// Removes the cgroup a container's runtime made (named after its ID),
/// if a killed monitor left it; it has no processes left by then.
pub fn remove_cgroup(id: &str) {
    let stale = crate::runtime::cgroups::find_stale(std::time::Duration::ZERO).unwrap_or_default();
    for cg in stale.iter().filter(|c| c.path.ends_with(id)) {
        if let Err(e) = cg.remove() {
            tracing::warn!("{e}");
        }
    }
}

/// Removes a container that no process runs: its state dir (all its
/// writes and its log), its `--name` link, its cgroup, then its row.
pub fn remove(store: &Store, row: &ContainerRow) -> Result<(), StateError> {
    let dir = state_dir(store.root(), &row.id);
    scratch::detach_mounts_under(&dir);
    if dir.exists() {
        scratch::remove_tree(&dir).map_err(|source| StateError::Remove {
            path: dir.clone(),
            source,
        })?;
    }
    let link = store.root().join("containers/names").join(&row.name);
    if std::fs::read_link(&link).is_ok_and(|t| t.as_os_str() == row.id.as_str()) {
        let _ = std::fs::remove_file(&link);
    }
    remove_cgroup(&row.id);
    crate::network::detach(&crate::cache::StoreLayout::new(store.root()), &row.id)?;
    store.delete_container(&row.id)?;
    Ok(())
}

/// A name docker would generate (`adjective_surname`, moby's
/// `pkg/namesgenerator`), from a smaller list; a taken one is retried by
/// the caller.
pub fn generate_name(seed: &str) -> String {
    const LEFT: &[&str] = &[
        "admiring",
        "brave",
        "clever",
        "dazzling",
        "eager",
        "focused",
        "gifted",
        "happy",
        "jolly",
        "keen",
        "loving",
        "modest",
        "nifty",
        "optimistic",
        "quirky",
        "relaxed",
        "serene",
        "tender",
        "upbeat",
        "vibrant",
        "wizardly",
        "zealous",
    ];
    const RIGHT: &[&str] = &[
        "albattani",
        "babbage",
        "curie",
        "darwin",
        "euclid",
        "fermi",
        "galileo",
        "hopper",
        "hypatia",
        "johnson",
        "knuth",
        "lovelace",
        "meitner",
        "noether",
        "pascal",
        "ritchie",
        "shannon",
        "thompson",
        "turing",
        "volta",
        "wozniak",
        "yonath",
    ];
    let n = u64::from_str_radix(&seed[..seed.len().min(12)], 16).unwrap_or(0);
    let left = LEFT[(n % LEFT.len() as u64) as usize];
    let right = RIGHT[((n / LEFT.len() as u64) % RIGHT.len() as u64) as usize];
    format!("{left}_{right}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_policies_parse_like_docker() {
        let ok = |s: &str| RestartPolicy::parse(s).unwrap();
        assert_eq!(ok(""), RestartPolicy::No);
        assert_eq!(ok("no"), RestartPolicy::No);
        assert_eq!(ok("always"), RestartPolicy::Always);
        assert_eq!(ok("unless-stopped"), RestartPolicy::UnlessStopped);
        assert_eq!(ok("on-failure"), RestartPolicy::OnFailure(0));
        assert_eq!(ok("on-failure:2"), RestartPolicy::OnFailure(2));
        let err = |s: &str| RestartPolicy::parse(s).unwrap_err();
        assert!(err("on-failure:x").contains("must be an integer"));
        assert!(err(":3").contains("no policy provided before colon"));
        assert!(err("sometimes").contains("unknown policy 'sometimes'"));
        assert!(err("always:3").contains("only be used with 'on-failure'"));
    }

    #[test]
    fn on_failure_counts_restarts_and_a_stop_ends_every_policy() {
        let p = RestartPolicy::OnFailure(2);
        assert!(p.should_restart(1, 0, false));
        assert!(p.should_restart(1, 1, false));
        assert!(!p.should_restart(1, 2, false));
        assert!(!p.should_restart(0, 0, false));
        assert!(RestartPolicy::Always.should_restart(0, 99, false));
        assert!(!RestartPolicy::Always.should_restart(137, 0, true));
        assert!(!RestartPolicy::No.should_restart(1, 0, false));
    }

    #[test]
    fn alive_means_this_process_not_a_reused_pid() {
        let me = ProcessId::current();
        assert_eq!(alive(Some((me.pid, me.start))), Some(me));
        assert_eq!(alive(Some((me.pid, me.start + 1))), None);
        assert_eq!(alive(None), None);
    }

    #[test]
    fn a_zombie_is_not_alive() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let start = ProcessId::of(pid).unwrap().start;
        // Not reaped yet: a zombie once it has exited.
        while std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|s| !s[s.rfind(')').unwrap() + 1..].trim_start().starts_with('Z'))
        {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(alive(Some((pid, start))), None);
        child.wait().unwrap();
    }

    #[test]
    fn reconcile_tells_a_dead_monitor_from_a_reboot_and_spares_live_ones() {
        let t = tempfile::tempdir().unwrap();
        let store = Store::open(t.path()).unwrap();
        let me = ProcessId::current();
        let dead = Some((me.pid, me.start + 1));
        let row = |id: &str, monitor: Option<(u32, u64)>, boot: Option<String>| ContainerRow {
            id: id.into(),
            name: format!("n{id}"),
            image: "busybox".into(),
            config: "{}".into(),
            state: "running".into(),
            monitor,
            boot_id: boot,
            created: now(),
            ..Default::default()
        };
        store
            .insert_container(&row("a1", dead, Some("an-earlier-boot".into())))
            .unwrap();
        store.insert_container(&row("b2", dead, boot_id())).unwrap();
        store
            .insert_container(&row("c3", Some((me.pid, me.start)), boot_id()))
            .unwrap();
        reconcile(&store).unwrap();
        let got = |id: &str| {
            let r = find(&store, id).unwrap();
            (r.state, r.reason, r.exit_code, r.monitor.is_some())
        };
        assert_eq!(
            got("a1"),
            ("exited".into(), "host rebooted".into(), 255, false)
        );
        assert_eq!(
            got("b2"),
            ("exited".into(), "monitor died".into(), 255, false)
        );
        assert_eq!(got("c3"), ("running".into(), String::new(), 0, true));
    }

    #[test]
    fn generated_names_look_like_docker_ones() {
        let n = generate_name("0123456789abcdef");
        let (l, r) = n.split_once('_').unwrap();
        assert!(!l.is_empty() && !r.is_empty(), "{n}");
    }
}
