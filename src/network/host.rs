//! What kiln's networks share across stores: one host has one `kiln0`,
//! one set of bridges, routes and iptables chains, so the addresses on a
//! bridge and the published host ports are leased host-wide, not per
//! `--root`.
//!
//! The leases live in `/run/kiln/network.json` behind an exclusive
//! `flock` on `/run/kiln/network.lock`, the same lock that serializes
//! subnet choice and bridge creation. `/run` is a tmpfs: it is emptied by
//! a reboot exactly when the bridges, veths and rules are, so a lease never
//! outlives what it stands for by more than a process's life.
//!
//! docker keeps the same facts in one daemon: libnetwork's default IPAM
//! (moby/moby `libnetwork/ipams/defaultipam/allocator.go`,
//! `RequestAddress`/`ReleaseAddress`) hands out each address of a pool
//! once per daemon, and the `bridge` driver (moby/moby
//! `libnetwork/drivers/bridge/bridge_linux.go`, `CreateEndpoint`) plugs
//! the veth into that pool's bridge. kiln has no daemon, so the file under
//! the lock is its IPAM, and every store is a client of it.
//!
//! The rule: a store's leases are a projection of its own endpoints
//! (`<root>/networks/state.json`), rewritten under both locks ([`HostLocked::sync`])
//! whenever that state changes (the store's lock is always taken first).
//! Another store's lease is stale, and reclaimed by whoever allocates
//! next ([`HostLocked::reclaim`]), when
//! - it is not kept and its holder (the reserving kiln, then the
//!   container's init) is dead: a SIGKILLed `kiln run`;
//! - it is kept (a detached container's) but its store no longer lists it:
//!   the store was removed with its containers.

use super::firewall::Rule;
use super::ports::PortSpec;
use super::state::{Holder, State, StateError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fs::File;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

/// Where the host-wide state lives (a tmpfs: it resets on reboot).
pub const RUN_DIR: &str = "/run/kiln";

/// One container's address (and ports) on one bridge, as its store
/// recorded it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lease {
    /// The store's `networks` dir (canonical), which lists the endpoint.
    pub owner: PathBuf,
    /// The container's ID.
    pub container: String,
    /// The bridge interface (host-wide, unlike network names).
    pub bridge: String,
    /// The address on it.
    pub address: Ipv4Addr,
    /// Published ports.
    pub ports: Vec<PortSpec>,
    /// The process that keeps a non-kept lease alive.
    pub holder: Option<Holder>,
    /// A detached container's: only its store's `rm` ends it.
    pub kept: bool,
    /// The host end of its veth (removed when reclaimed).
    pub host_veth: String,
    /// Its firewall rules (removed when reclaimed; each names its
    /// container, so removing them twice never hits another's).
    pub rules: Vec<Rule>,
}

impl Lease {
    /// Whether another store's lease may be taken over (see the module
    /// docs).
    fn is_stale(&self) -> bool {
        if !self.kept {
            return self.holder.is_none_or(|h| !h.is_alive());
        }
        // The owner writes its state by renaming a new file over it, so
        // reading it without its lock sees a whole version.
        let listed = std::fs::read(self.owner.join("state.json"))
            .ok()
            .and_then(|bytes| serde_json::from_slice::<State>(&bytes).ok())
            .is_some_and(|s| {
                s.endpoints
                    .iter()
                    .any(|e| e.container == self.container && e.address == self.address)
            });
        !listed
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Leases {
    leases: Vec<Lease>,
}

/// The host-wide state, locked for this process until dropped.
#[derive(Debug)]
pub struct HostLocked {
    _lock: File,
    path: PathBuf,
    /// Every store's leases.
    pub leases: Vec<Lease>,
}

/// Locks and reads the host-wide state in [`RUN_DIR`].
pub fn lock() -> Result<HostLocked, StateError> {
    lock_in(Path::new(RUN_DIR))
}

/// Locks and reads the host-wide state kept in `dir`.
pub fn lock_in(dir: &Path) -> Result<HostLocked, StateError> {
    let io = |action, path: &Path| {
        let path = path.to_path_buf();
        move |source| StateError::Io {
            action,
            path,
            source,
        }
    };
    std::fs::create_dir_all(dir).map_err(io("create", dir))?;
    let lock = super::state::lock_file(&dir.join("network.lock"))?;
    let path = dir.join("network.json");
    let leases = match std::fs::read(&path) {
        Ok(bytes) => {
            serde_json::from_slice::<Leases>(&bytes)
                .map_err(|source| StateError::Corrupt {
                    path: path.clone(),
                    source,
                })?
                .leases
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(io("read", &path)(e)),
    };
    Ok(HostLocked {
        _lock: lock,
        path,
        leases,
    })
}

impl HostLocked {
    /// Takes the stale leases of stores other than `owner` out (see the
    /// module docs) and returns them: the caller removes what they added.
    pub fn reclaim(&mut self, owner: &Path) -> Vec<Lease> {
        let (stale, live) = std::mem::take(&mut self.leases)
            .into_iter()
            .partition(|l| l.owner != owner && l.is_stale());
        self.leases = live;
        stale
    }

    /// The addresses other stores hold on `bridge`.
    pub fn addresses(&self, owner: &Path, bridge: &str) -> BTreeSet<Ipv4Addr> {
        self.others(owner)
            .filter(|l| l.bridge == bridge)
            .map(|l| l.address)
            .collect()
    }

    /// The host ports other stores publish.
    pub fn ports(&self, owner: &Path) -> Vec<PortSpec> {
        self.others(owner)
            .flat_map(|l| l.ports.iter().copied())
            .collect()
    }

    /// Another store's lease of `address` on `bridge`, if any.
    pub fn holder_of(&self, owner: &Path, bridge: &str, address: Ipv4Addr) -> Option<&Lease> {
        self.leases
            .iter()
            .find(|l| l.owner != owner && l.bridge == bridge && l.address == address)
    }

    fn others<'a>(&'a self, owner: &'a Path) -> impl Iterator<Item = &'a Lease> {
        self.leases.iter().filter(move |l| l.owner != owner)
    }

    /// Replaces `owner`'s leases by one per endpoint of its `state`.
    pub fn sync(&mut self, owner: &Path, state: &State) {
        self.leases.retain(|l| l.owner != owner);
        self.leases.extend(state.endpoints.iter().filter_map(|e| {
            Some(Lease {
                owner: owner.to_path_buf(),
                container: e.container.clone(),
                bridge: state.networks.get(&e.network)?.bridge.clone(),
                address: e.address,
                ports: e.ports.clone(),
                holder: e.holder,
                kept: e.kept,
                host_veth: e.host_veth.clone(),
                rules: e.rules.clone(),
            })
        }));
    }

    /// Writes the leases back (a new file renamed over the old one).
    pub fn save(&self) -> Result<(), StateError> {
        let leases = Leases {
            leases: self.leases.clone(),
        };
        super::state::replace_json(&self.path, &leases)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::state::{Endpoint, NetworkRecord};
    use crate::network::Subnet;

    fn lease(owner: &Path, container: &str, last: u8) -> Lease {
        Lease {
            owner: owner.to_path_buf(),
            container: container.into(),
            bridge: "kiln0".into(),
            address: Ipv4Addr::new(172, 17, 0, last),
            ports: Vec::new(),
            holder: None,
            kept: false,
            host_veth: format!("kvnone{container}"),
            rules: Vec::new(),
        }
    }

    fn endpoint(container: &str, last: u8, kept: bool) -> Endpoint {
        Endpoint {
            container: container.into(),
            network: "bridge".into(),
            address: Ipv4Addr::new(172, 17, 0, last),
            names: Vec::new(),
            host_veth: format!("kvnone{container}"),
            interface: "eth0".into(),
            mac: None,
            ports: Vec::new(),
            hosts_file: None,
            pid: None,
            holder: None,
            kept,
            rules: Vec::new(),
        }
    }

    fn state_with(endpoints: Vec<Endpoint>) -> State {
        let mut state = State::default();
        state.networks.insert(
            "bridge".into(),
            NetworkRecord {
                id: "0".repeat(64),
                bridge: "kiln0".into(),
                subnet: Subnet::parse("172.17.0.0/16").unwrap(),
                created: String::new(),
                rules: Vec::new(),
            },
        );
        state.endpoints = endpoints;
        state
    }

    /// A SIGKILLed run's lease (holder dead) goes; a live process's and
    /// the caller's own stay; a kept one stays while its store lists it.
    #[test]
    fn only_other_stores_dead_leases_are_reclaimed() {
        let run = tempfile::tempdir().unwrap();
        let me = run.path().join("me");
        let other = tempfile::tempdir().unwrap();
        let mut alive = lease(other.path(), "alive", 3);
        alive.holder = Holder::of(std::process::id() as i32);
        let mut kept = lease(other.path(), "kept", 4);
        kept.kept = true;
        let mut orphan = lease(run.path(), "orphan", 5);
        orphan.kept = true;
        std::fs::write(
            other.path().join("state.json"),
            serde_json::to_vec(&state_with(vec![endpoint("kept", 4, true)])).unwrap(),
        )
        .unwrap();
        let mut host = lock_in(run.path()).unwrap();
        host.leases = vec![
            lease(other.path(), "killed", 2),
            alive,
            kept,
            orphan,
            lease(&me, "mine", 6),
        ];
        let gone: Vec<String> = host.reclaim(&me).into_iter().map(|l| l.container).collect();
        assert_eq!(gone, ["killed", "orphan"]);
        let taken = host.addresses(&me, "kiln0");
        assert_eq!(
            taken,
            BTreeSet::from([Ipv4Addr::new(172, 17, 0, 3), Ipv4Addr::new(172, 17, 0, 4)])
        );
    }

    /// A reboot empties `/run`: a new lock starts from nothing, and a
    /// sync rebuilds a store's leases from its endpoints.
    #[test]
    fn sync_projects_a_stores_endpoints_and_survives_a_new_lock() {
        let run = tempfile::tempdir().unwrap();
        let me = run.path().join("me");
        let mut host = lock_in(run.path()).unwrap();
        host.leases = vec![lease(&me, "old", 9)];
        host.sync(&me, &state_with(vec![endpoint("a", 2, false)]));
        host.save().unwrap();
        drop(host);
        let again = lock_in(run.path()).unwrap();
        assert_eq!(again.leases.len(), 1);
        assert_eq!(again.leases[0].container, "a");
        assert_eq!(again.leases[0].bridge, "kiln0");
        drop(again);
        std::fs::remove_file(run.path().join("network.json")).unwrap();
        assert!(lock_in(run.path()).unwrap().leases.is_empty());
    }
}
