//! What kiln's networks hold, persisted under `<root>/networks/` so that
//! any later kiln process can detach a container another one attached:
//! `state.json` (networks, and each container's endpoint with its address,
//! ports, interface and rules) changed only under an exclusive `flock` on
//! `lock`, written to a temporary file and renamed.

use super::firewall::Rule;
use super::ports::PortSpec;
use super::subnet::Subnet;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::File;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

/// Why the state could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// A file operation failed.
    #[error("failed to {action} {path}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// `state.json` is not kiln's.
    #[error("{path} is not a kiln network state file")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
}

/// One network: a bridge with its subnet.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NetworkRecord {
    /// 64 hex digits, like docker's network IDs.
    pub id: String,
    /// The bridge interface.
    pub bridge: String,
    /// Its subnet; the bridge has the first address.
    pub subnet: Subnet,
    /// When it was made (RFC 3339).
    pub created: String,
    /// The firewall rules the bridge owns (removed with the network).
    pub rules: Vec<Rule>,
}

/// One container's place on one network.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Endpoint {
    /// The container's ID.
    pub container: String,
    /// The network's name.
    pub network: String,
    /// Its address (allocated while the endpoint exists).
    pub address: Ipv4Addr,
    /// The names other members resolve it by (its name, its hostname).
    pub names: Vec<String>,
    /// The host end of its veth pair.
    pub host_veth: String,
    /// Its interface inside the container (`eth0`, ...).
    pub interface: String,
    /// That interface's MAC address (none in states older than it: the
    /// kernel's random one).
    #[serde(default)]
    pub mac: Option<String>,
    /// Published ports (host port 0 already replaced by the one chosen).
    pub ports: Vec<PortSpec>,
    /// The host file bound over the container's `/etc/hosts`, updated as
    /// members come and go.
    pub hosts_file: Option<PathBuf>,
    /// The container's init once its namespace is plumbed.
    pub pid: Option<i32>,
    /// Who keeps the endpoint alive: the reserving process until it is
    /// plumbed, then the container's init; when it is dead the endpoint
    /// is stale and the next kiln to lock the state removes it (unless
    /// [`Endpoint::kept`]).
    #[serde(default)]
    pub holder: Option<Holder>,
    /// Handed over to a detached container's row ([`super::keep`]): it
    /// outlives every process (the container is stopped and started
    /// again), so it is never stale; only `detach` (`rm`) releases it.
    #[serde(default)]
    pub kept: bool,
    /// The rules added for it (removed on detach).
    pub rules: Vec<Rule>,
}

/// A process, told apart from a later one with its pid by its start
/// time (`/proc/<pid>/stat` field 22).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// Its pid (kiln's pid namespace).
    pub pid: i32,
    /// Its start time, in clock ticks after boot.
    pub start: u64,
}

impl Holder {
    /// `pid` as it is now, if it exists.
    pub fn of(pid: i32) -> Option<Holder> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The command name may hold spaces and parentheses: count after
        // the last `)`.
        let after: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
        // A zombie (a killed kiln's container init, not yet reaped by its
        // new parent) holds nothing any more.
        if matches!(after.first(), Some(&"Z") | Some(&"X")) {
            return None;
        }
        let start = after.get(19)?.parse().ok()?;
        Some(Holder { pid, start })
    }

    /// The process is still the one recorded.
    pub fn is_alive(&self) -> bool {
        Holder::of(self.pid) == Some(*self)
    }
}

/// Everything persisted.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct State {
    /// Networks by name (`bridge` is the default one).
    pub networks: BTreeMap<String, NetworkRecord>,
    /// Every container's endpoints.
    pub endpoints: Vec<Endpoint>,
}

impl State {
    /// The endpoints of `network`.
    pub fn members<'a>(&'a self, network: &'a str) -> impl Iterator<Item = &'a Endpoint> {
        self.endpoints.iter().filter(move |e| e.network == network)
    }
}

/// The state, locked for this process until dropped.
#[derive(Debug)]
pub struct Locked {
    _lock: File,
    dir: PathBuf,
    path: PathBuf,
    /// What the file holds; [`Locked::save`] writes it back.
    pub state: State,
}

/// Locks `dir`'s state (waiting for another kiln) and reads it.
pub fn lock(dir: &Path) -> Result<Locked, StateError> {
    let io = |action, path: &Path| {
        let path = path.to_path_buf();
        move |source| StateError::Io {
            action,
            path,
            source,
        }
    };
    std::fs::create_dir_all(dir).map_err(io("create", dir))?;
    // Canonical: it names the store in the host-wide leases.
    let dir = &std::fs::canonicalize(dir).map_err(io("resolve", dir))?;
    let lock = lock_file(&dir.join("lock"))?;
    let path = dir.join("state.json");
    let state = match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| StateError::Corrupt {
            path: path.clone(),
            source,
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => State::default(),
        Err(e) => return Err(io("read", &path)(e)),
    };
    Ok(Locked {
        _lock: lock,
        dir: dir.clone(),
        path,
        state,
    })
}

impl Locked {
    /// The store's `networks` dir, canonical: its name in the host-wide
    /// leases ([`super::host`]).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes the state back (a new file renamed over the old one).
    pub fn save(&self) -> Result<(), StateError> {
        replace_json(&self.path, &self.state)
    }
}

/// Opens (creating) `path` and holds an exclusive `flock` on it until the
/// returned file is dropped: the network state's and the host-wide
/// leases' one lock each.
pub(super) fn lock_file(path: &Path) -> Result<File, StateError> {
    let io = |action: &'static str| {
        move |source| StateError::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    };
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(io("open"))?;
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)
        .map_err(|e| io("lock")(e.into()))?;
    Ok(lock)
}

/// Writes `value` as JSON to `path` through a new file renamed over the
/// old one, so a reader (or a kill) never sees half a file.
pub(super) fn replace_json(path: &Path, value: &impl Serialize) -> Result<(), StateError> {
    let tmp = path.with_extension("json.tmp");
    let bytes = serde_json::to_vec_pretty(value).expect("network state serializes");
    std::fs::write(&tmp, bytes).map_err(|source| StateError::Io {
        action: "write",
        path: tmp.clone(),
        source,
    })?;
    std::fs::rename(&tmp, path).map_err(|source| StateError::Io {
        action: "replace",
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_survives_a_save_and_a_new_lock() {
        let dir = tempfile::tempdir().unwrap();
        let mut locked = lock(dir.path()).unwrap();
        locked.state.endpoints.push(Endpoint {
            container: "c".into(),
            network: "bridge".into(),
            address: Ipv4Addr::new(172, 17, 0, 2),
            names: vec!["web".into()],
            host_veth: "kv1".into(),
            interface: "eth0".into(),
            mac: None,
            ports: vec![PortSpec::parse("127.0.0.1:8080:80").unwrap()],
            hosts_file: None,
            pid: Some(1),
            holder: Holder::of(std::process::id() as i32),
            kept: false,
            rules: Vec::new(),
        });
        locked.save().unwrap();
        drop(locked);
        let again = lock(dir.path()).unwrap();
        assert_eq!(again.state.members("bridge").count(), 1);
        assert_eq!(again.state.endpoints[0].ports[0].host_port, 8080);
        assert!(again.state.endpoints[0].holder.unwrap().is_alive());
    }

    #[test]
    fn a_holder_with_another_start_time_is_dead() {
        let me = Holder::of(std::process::id() as i32).unwrap();
        assert!(me.is_alive());
        let reused = Holder {
            start: me.start + 1,
            ..me
        };
        assert!(!reused.is_alive());
    }
}
