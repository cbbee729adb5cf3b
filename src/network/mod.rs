//! Container networks for `kiln run`: docker's bridge driver without a
//! daemon.
//!
//! A network is a Linux bridge with an IPv4 subnet (the default one,
//! `bridge`, is the interface `kiln0`, made on first use; user networks
//! from `kiln network create` get `kiln-<id>`). A container joins it through
//! a veth pair whose peer is moved into the container's network namespace
//! (`eth0`, an address from the network's allocator, the default route via
//! the bridge's address). Outbound traffic is masqueraded and published
//! ports are DNAT rules, all in kiln's own iptables chains (see
//! [`firewall`]). Names on a user network resolve through `/etc/hosts`:
//! every member's file lists the others and is rewritten in place (the
//! bind-mounted inode) when a member joins or leaves; kiln has no embedded
//! DNS server (docker's 127.0.0.11), so `nslookup` of a member name does
//! not work, `getaddrinfo` (ping, wget, curl) does.
//!
//! Everything attached is recorded under `<root>/networks/` ([`state`])
//! before it is made, so [`detach`] works from any later process (a
//! monitor, `rm`, a reconcile after a crash), and is idempotent.
//!
//! The API for container lifecycles:
//! - [`reserve`]: allocate an address and the published ports for a
//!   container (before it starts: its `/etc/hosts` needs the address); the
//!   returned [`Attachment`] lists the `/etc/hosts` lines it should get;
//! - [`plumb`]: once its init exists, make the veth, move it into the
//!   init's network namespace and add the port rules;
//! - [`attach`]: both at once (for `network connect` of a running one);
//! - [`detach`]: remove its rules and interfaces and free its address
//!   and ports, reading what from the persisted state.
//!
//! - [`prune`]: remove the endpoints whose holder (the reserving process,
//!   then the container's init) is dead, as a lifecycle's reconcile after
//!   a killed monitor or a reboot; [`reserve`] does it first too;
//! - [`running_container`]: the init pid of a container on a network
//!   (`--network container:NAME`).
//!
//! Networks: [`create`], [`remove`], [`list`], [`inspect`]; [`connect`] and
//! [`disconnect`] for a running container.
//!
//! Addresses and published ports are leased host-wide ([`host`]): stores
//! (`--root`s) share `kiln0` and the host's ports, so every allocation
//! also sees the others' leases, under one lock in `/run/kiln/`.
//!
//! Known limits: IPv4 only; no port ranges.

pub mod command;
pub mod firewall;
pub mod host;
pub mod members;
pub mod ports;
pub mod state;
pub mod subnet;

mod bridge;
mod hosts;

pub use ports::{PortSpec, PortSpecError, Protocol};
pub use subnet::Subnet;

use crate::cache::StoreLayout;
use command::CommandError;
use host::HostLocked;
use state::{Endpoint, Locked, NetworkRecord, StateError};
use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::path::PathBuf;

/// The default network's name (docker's).
pub const DEFAULT_NETWORK: &str = "bridge";
/// The default network's bridge interface (docker: `docker0`).
pub const DEFAULT_BRIDGE: &str = "kiln0";

/// Why a network operation failed.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// The persisted state.
    #[error(transparent)]
    State(#[from] StateError),
    /// `ip` or `iptables`.
    #[error(transparent)]
    Command(#[from] CommandError),
    /// A `--subnet`.
    #[error(transparent)]
    Subnet(#[from] subnet::SubnetError),
    /// docker: "network foo not found".
    #[error("network {0} not found")]
    NotFound(String),
    /// docker: "network with name foo already exists".
    #[error("network with name {0} already exists")]
    Exists(String),
    /// `bridge`, `host` and `none` are docker's and cannot be made or removed.
    #[error("{0} is a pre-defined network and cannot be created or removed")]
    Predefined(String),
    /// A network name that is not a docker name.
    #[error("invalid network name {0:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")]
    BadName(String),
    /// docker's "Pool overlaps with other one on this address space".
    #[error("invalid subnet {subnet}: pool overlaps with {other} (a route of the host or another network)")]
    Overlaps {
        /// The subnet asked for.
        subnet: Subnet,
        /// What it collides with.
        other: Subnet,
    },
    /// Every candidate subnet collides with something.
    #[error("could not find an available, non-overlapping IPv4 address pool for the network; give one with --subnet")]
    NoSubnet,
    /// The network has no address left.
    #[error("no available IPv4 addresses on network {0}")]
    Exhausted(String),
    /// A kept endpoint's address went to another store's container while
    /// the host rebooted, or its bridge was made again on another subnet.
    #[error("address {address} of this container on network {network} is no longer its own (taken by another kiln store's container or outside the bridge's subnet {subnet} since a reboot): remove the container and create it again")]
    AddressLost {
        /// The recorded address.
        address: Ipv4Addr,
        /// The network.
        network: String,
        /// The bridge's subnet now.
        subnet: Subnet,
    },
    /// A removal while containers use it (docker's message).
    #[error("error while removing network: network {0} has active endpoints")]
    InUse(String),
    /// Another kiln container publishes the port.
    #[error("Bind for {ip}:{port} failed: port is already allocated")]
    PortAllocated {
        /// The host address.
        ip: Ipv4Addr,
        /// The host port.
        port: u16,
    },
    /// Something else on the host listens there (docker's message with
    /// its proxy).
    #[error("driver failed programming external connectivity on endpoint {endpoint}: listen {proto}4 {ip}:{port}: bind: address already in use")]
    PortInUse {
        /// The container's name.
        endpoint: String,
        /// `tcp` or `udp`.
        proto: &'static str,
        /// The host address.
        ip: Ipv4Addr,
        /// The host port.
        port: u16,
    },
    /// The port could not be checked or chosen.
    #[error("failed to reserve host port {ip}:{port}")]
    PortCheck {
        /// The host address.
        ip: Ipv4Addr,
        /// The host port.
        port: u16,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// `--link` or `connect` of a container the networks do not know.
    #[error("no such container on a network: {0}")]
    NoContainer(String),
    /// `connect` of a container already on the network (docker's words).
    #[error("endpoint with name {name} already exists in network {network}")]
    AlreadyConnected {
        /// The container.
        name: String,
        /// The network.
        network: String,
    },
    /// `/etc/hosts` of a member could not be updated.
    #[error("failed to update {path}")]
    Hosts {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// What a container asks of its network.
#[derive(Debug, Clone, Default)]
pub struct NetworkRequest {
    /// The network's name ([`DEFAULT_NETWORK`] or a user network).
    pub network: String,
    /// Names the other members resolve it by (its `--name`, its hostname).
    pub names: Vec<String>,
    /// `-p` values.
    pub ports: Vec<PortSpec>,
    /// `--link NAME[:ALIAS]`: a container on a network and the alias it
    /// gets in this one's `/etc/hosts`.
    pub links: Vec<(String, String)>,
    /// The host file bound over its `/etc/hosts` (kept up to date on a
    /// user network).
    pub hosts_file: Option<PathBuf>,
}

/// What [`reserve`] gave a container.
#[derive(Debug, Clone)]
pub struct Attachment {
    /// The network's name.
    pub network: String,
    /// The bridge interface.
    pub bridge: String,
    /// The container's address.
    pub address: Ipv4Addr,
    /// The subnet (its prefix is the address's).
    pub subnet: Subnet,
    /// The bridge's address: the default route, and docker's
    /// `host-gateway`.
    pub gateway: Ipv4Addr,
    /// Published ports, host port 0 replaced by the one chosen.
    pub ports: Vec<PortSpec>,
    /// `/etc/hosts` lines for the other members and the links
    /// (`ADDRESS\tNAMES`).
    pub hosts: Vec<String>,
}

fn dir(layout: &StoreLayout) -> PathBuf {
    layout.networks()
}

/// docker's network name rule (`[a-zA-Z0-9][a-zA-Z0-9_.-]+`).
fn check_name(name: &str) -> Result<(), NetworkError> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if !ok {
        return Err(NetworkError::BadName(name.into()));
    }
    if ["bridge", "host", "none"].contains(&name) {
        return Err(NetworkError::Predefined(name.into()));
    }
    Ok(())
}

/// Creates a user network `name` (docker `network create [--subnet]`): its
/// bridge, address and rules; a subnet is chosen when `subnet` is `None`.
pub fn create(
    layout: &StoreLayout,
    name: &str,
    subnet: Option<Subnet>,
) -> Result<NetworkRecord, NetworkError> {
    check_name(name)?;
    let mut locked = state::lock(&dir(layout))?;
    if locked.state.networks.contains_key(name) {
        return Err(NetworkError::Exists(name.into()));
    }
    let id = bridge::new_id()?;
    let host = host::lock()?;
    let record = bridge::create(&locked, &host, &format!("kiln-{}", &id[..10]), id, subnet)?;
    drop(host);
    locked.state.networks.insert(name.into(), record.clone());
    if let Err(e) = locked.save() {
        bridge::destroy(&record);
        return Err(e.into());
    }
    Ok(record)
}

/// Removes user network `name`: its rules and bridge (docker `network rm`).
pub fn remove(layout: &StoreLayout, name: &str) -> Result<(), NetworkError> {
    if name == DEFAULT_NETWORK || name == "host" || name == "none" {
        return Err(NetworkError::Predefined(name.into()));
    }
    let mut locked = state::lock(&dir(layout))?;
    let key = find_network(&locked, name)?;
    if locked.state.members(&key).next().is_some() {
        return Err(NetworkError::InUse(name.into()));
    }
    let record = locked.state.networks.remove(&key).expect("found above");
    locked.save()?;
    bridge::destroy(&record);
    Ok(())
}

/// The network named `name` or whose ID starts with it.
fn find_network(locked: &Locked, name: &str) -> Result<String, NetworkError> {
    if locked.state.networks.contains_key(name) {
        return Ok(name.into());
    }
    locked
        .state
        .networks
        .iter()
        .find(|(_, r)| !name.is_empty() && r.id.starts_with(name))
        .map(|(n, _)| n.clone())
        .ok_or_else(|| NetworkError::NotFound(name.into()))
}

/// Every network (by name) with its members, for `network ls`/`inspect`.
pub fn list(
    layout: &StoreLayout,
) -> Result<Vec<(String, NetworkRecord, Vec<Endpoint>)>, NetworkError> {
    let locked = state::lock(&dir(layout))?;
    Ok(locked
        .state
        .networks
        .iter()
        .map(|(n, r)| {
            (
                n.clone(),
                r.clone(),
                locked.state.members(n).cloned().collect(),
            )
        })
        .collect())
}

/// One network by name or ID prefix, with its members.
pub fn inspect(
    layout: &StoreLayout,
    name: &str,
) -> Result<(String, NetworkRecord, Vec<Endpoint>), NetworkError> {
    let locked = state::lock(&dir(layout))?;
    let key = find_network(&locked, name)?;
    let record = locked.state.networks[&key].clone();
    let members = locked.state.members(&key).cloned().collect();
    Ok((key, record, members))
}

/// Allocates `container`'s address and ports on `request.network` (the
/// default network is made on first use) and records the endpoint; nothing
/// is plumbed yet ([`plumb`]). Undone by [`detach`].
pub fn reserve(
    layout: &StoreLayout,
    container: &str,
    request: &NetworkRequest,
) -> Result<Attachment, NetworkError> {
    let mut locked = state::lock(&dir(layout))?;
    remove_stale(&mut locked);
    let mut host = host::lock()?;
    for lease in host.reclaim(locked.dir()) {
        tracing::debug!(container = %lease.container, address = %lease.address, "reclaiming a dead container's lease");
        firewall::remove(&lease.rules);
        bridge::remove_veth(&lease.host_veth);
    }
    let attachment = reserve_locked(&mut locked, &host, container, request);
    // Saved either way: the stale endpoints and leases are gone.
    save_with(&locked, &mut host)?;
    attachment
}

/// Saves the store's state and, under the host-wide lock, its leases
/// (the host's first: a kiln killed between the two leaves a lease whose
/// holder is dead, which the next allocation reclaims).
fn save_with(locked: &Locked, host: &mut HostLocked) -> Result<(), NetworkError> {
    host.sync(locked.dir(), &locked.state);
    host.save()?;
    locked.save()?;
    Ok(())
}

/// [`save_with`], taking the host-wide lock.
fn save(locked: &Locked) -> Result<(), NetworkError> {
    save_with(locked, &mut host::lock()?)
}

fn reserve_locked(
    locked: &mut Locked,
    host: &HostLocked,
    container: &str,
    request: &NetworkRequest,
) -> Result<Attachment, NetworkError> {
    let key = if request.network == DEFAULT_NETWORK {
        // kiln0 is the host's: another store may have made it (again,
        // after a reboot) on another subnet than this store recorded.
        let recorded = locked.state.networks.get(DEFAULT_NETWORK).map(|r| r.subnet);
        let live = bridge::live_subnet(DEFAULT_BRIDGE);
        if recorded.is_none() || (live.is_some() && live != recorded) {
            let record = bridge::adopt_or_create_default(locked, host)?;
            let record = match locked.state.networks.get(DEFAULT_NETWORK) {
                Some(old) => NetworkRecord {
                    id: old.id.clone(),
                    created: old.created.clone(),
                    ..record
                },
                None => record,
            };
            locked.state.networks.insert(DEFAULT_NETWORK.into(), record);
        }
        DEFAULT_NETWORK.to_string()
    } else {
        find_network(locked, &request.network)?
    };
    let record = locked.state.networks[&key].clone();
    if locked
        .state
        .endpoints
        .iter()
        .any(|e| e.container == container && e.network == key)
    {
        return Err(NetworkError::AlreadyConnected {
            name: request
                .names
                .first()
                .cloned()
                .unwrap_or_else(|| container.into()),
            network: key,
        });
    }
    let mut taken: BTreeSet<Ipv4Addr> = locked.state.members(&key).map(|e| e.address).collect();
    taken.extend(host.addresses(locked.dir(), &record.bridge));
    let address = record
        .subnet
        .next_free(&taken)
        .ok_or_else(|| NetworkError::Exhausted(key.clone()))?;
    let endpoint_name = request
        .names
        .first()
        .map(String::as_str)
        .unwrap_or(container);
    let mut published: Vec<PortSpec> = locked
        .state
        .endpoints
        .iter()
        .flat_map(|e| e.ports.iter().copied())
        .collect();
    published.extend(host.ports(locked.dir()));
    let ports = request
        .ports
        .iter()
        .map(|p| reserve_port(&published, endpoint_name, p))
        .collect::<Result<Vec<_>, _>>()?;
    let mut hosts = Vec::new();
    // Default bridge members do not resolve each other (docker: no DNS on
    // the default network; only --link).
    if key != DEFAULT_NETWORK {
        hosts.extend(locked.state.members(&key).map(hosts::line));
    }
    for (target, alias) in &request.links {
        let linked = locked
            .state
            .endpoints
            .iter()
            .find(|e| {
                e.names.iter().any(|n| n == target) || e.container.starts_with(target.as_str())
            })
            .ok_or_else(|| NetworkError::NoContainer(target.clone()))?;
        hosts.push(format!("{}\t{alias} {target}", linked.address));
    }
    let ordinal = locked
        .state
        .endpoints
        .iter()
        .filter(|e| e.container == container)
        .count();
    let endpoint = Endpoint {
        container: container.into(),
        network: key.clone(),
        address,
        names: request.names.clone(),
        host_veth: bridge::veth_name(container, &record.id),
        interface: format!("eth{ordinal}"),
        mac: Some(bridge::random_mac()?),
        ports: ports.clone(),
        hosts_file: request.hosts_file.clone(),
        pid: None,
        holder: state::Holder::of(std::process::id() as i32),
        kept: false,
        rules: Vec::new(),
    };
    if key != DEFAULT_NETWORK {
        let line = hosts::line(&endpoint);
        for member in locked.state.members(&key) {
            if let Some(file) = &member.hosts_file {
                hosts::append(file, &line)?;
            }
        }
    }
    locked.state.endpoints.push(endpoint);
    Ok(Attachment {
        network: key,
        bridge: record.bridge.clone(),
        address,
        subnet: record.subnet,
        gateway: record.subnet.gateway(),
        ports,
        hosts,
    })
}

/// Checks a published port against other kiln containers' (`published`,
/// every store's) and the host's sockets, and picks a free one for host
/// port 0.
fn reserve_port(
    published: &[PortSpec],
    endpoint: &str,
    port: &PortSpec,
) -> Result<PortSpec, NetworkError> {
    let clash = |p: &PortSpec| {
        p.protocol == port.protocol
            && p.host_port == port.host_port
            && (p.host_ip.is_unspecified()
                || port.host_ip.is_unspecified()
                || p.host_ip == port.host_ip)
    };
    if port.host_port != 0 && published.iter().any(clash) {
        return Err(NetworkError::PortAllocated {
            ip: port.host_ip,
            port: port.host_port,
        });
    }
    // A bind tells whether something on the host holds the port: with
    // DNAT the container would silently take its traffic (docker's proxy
    // fails the same way when it binds).
    let addr = std::net::SocketAddr::from((port.host_ip, port.host_port));
    let bound = match port.protocol {
        Protocol::Tcp => std::net::TcpListener::bind(addr).and_then(|l| l.local_addr()),
        Protocol::Udp => std::net::UdpSocket::bind(addr).and_then(|s| s.local_addr()),
    };
    match bound {
        Ok(local) => Ok(PortSpec {
            host_port: local.port(),
            ..*port
        }),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => Err(NetworkError::PortInUse {
            endpoint: endpoint.into(),
            proto: port.protocol.name(),
            ip: port.host_ip,
            port: port.host_port,
        }),
        Err(source) => Err(NetworkError::PortCheck {
            ip: port.host_ip,
            port: port.host_port,
            source,
        }),
    }
}

/// Plumbs every reserved, not yet plumbed endpoint of `container` into the
/// network namespace of `pid` (its init, in kiln's pid namespace): the
/// veth pair, the address and route, the port rules.
pub fn plumb(layout: &StoreLayout, container: &str, pid: i32) -> Result<(), NetworkError> {
    let mut locked = state::lock(&dir(layout))?;
    let netns = command::netns_of(pid)?;
    for i in 0..locked.state.endpoints.len() {
        let e = &locked.state.endpoints[i];
        if e.container != container || e.pid.is_some() {
            continue;
        }
        let record = locked.state.networks[&e.network].clone();
        bridge::ensure(&record)?;
        let mut host = host::lock()?;
        for lease in host.reclaim(locked.dir()) {
            firewall::remove(&lease.rules);
            bridge::remove_veth(&lease.host_veth);
        }
        // A kept endpoint's address was leased before a reboot emptied
        // the leases: it is checked again before it is used.
        if !record.subnet.contains(e.address)
            || host
                .holder_of(locked.dir(), &record.bridge, e.address)
                .is_some()
        {
            return Err(NetworkError::AddressLost {
                address: e.address,
                network: e.network.clone(),
                subnet: record.subnet,
            });
        }
        // Recorded first: a failure below leaves what detach must remove.
        let rules: Vec<firewall::Rule> = e
            .ports
            .iter()
            .map(|p| firewall::port_rule(&record.bridge, container, e.address, p))
            .collect();
        locked.state.endpoints[i].pid = Some(pid);
        locked.state.endpoints[i].holder = state::Holder::of(pid);
        locked.state.endpoints[i].rules = rules.clone();
        save_with(&locked, &mut host)?;
        drop(host);
        let e = &locked.state.endpoints[i];
        bridge::plumb_veth(&record, e, &netns)?;
        firewall::add(&rules)?;
    }
    Ok(())
}

/// Removes what [`plumb`] added for `container` (its port rules and host
/// veth) but keeps its reservation (address, ports, names): a detached
/// container between two runs, or whose monitor died. Works again.
pub fn unplumb(layout: &StoreLayout, container: &str) -> Result<(), NetworkError> {
    let mut locked = state::lock(&dir(layout))?;
    for e in locked
        .state
        .endpoints
        .iter_mut()
        .filter(|e| e.container == container && e.pid.is_some())
    {
        firewall::remove(&e.rules);
        bridge::remove_veth(&e.host_veth);
        e.rules.clear();
        e.pid = None;
    }
    save(&locked)?;
    Ok(())
}

/// Hands `container`'s endpoints over to its row: they are no longer
/// released when the reserving process or the init dies, only by
/// [`detach`] (a detached container's monitor plumbs them on each start).
pub fn keep(layout: &StoreLayout, container: &str) -> Result<(), NetworkError> {
    let mut locked = state::lock(&dir(layout))?;
    for e in locked
        .state
        .endpoints
        .iter_mut()
        .filter(|e| e.container == container)
    {
        e.kept = true;
    }
    save(&locked)?;
    Ok(())
}

/// Whether `container` has endpoints reserved (its monitor must plumb
/// them before the command runs).
pub fn is_reserved(layout: &StoreLayout, container: &str) -> Result<bool, NetworkError> {
    let locked = state::lock(&dir(layout))?;
    Ok(locked
        .state
        .endpoints
        .iter()
        .any(|e| e.container == container))
}

/// [`reserve`] and [`plumb`]: joins the running container whose init is
/// `pid` to a network.
pub fn attach(
    layout: &StoreLayout,
    container: &str,
    request: &NetworkRequest,
    pid: i32,
) -> Result<Attachment, NetworkError> {
    let attachment = reserve(layout, container, request)?;
    if let Err(e) = plumb(layout, container, pid) {
        let _ = detach_from(layout, container, Some(&attachment.network));
        return Err(e);
    }
    Ok(attachment)
}

/// Removes `container` from every network: its port rules, its host veth
/// (the peer goes with it), its lines in the other members' `/etc/hosts`;
/// frees its address and ports. Works from any process, and again.
pub fn detach(layout: &StoreLayout, container: &str) -> Result<(), NetworkError> {
    detach_from(layout, container, None)
}

fn detach_from(
    layout: &StoreLayout,
    container: &str,
    network: Option<&str>,
) -> Result<(), NetworkError> {
    let mut locked = state::lock(&dir(layout))?;
    release(&mut locked, |e| {
        e.container == container && network.is_none_or(|n| n == e.network)
    });
    save(&locked)?;
    Ok(())
}

/// Removes the endpoints whose holder died (a `kiln run` killed with
/// SIGKILL, a crashed monitor, a reboot: its container is gone too), as
/// [`detach`] would have; called before each reservation and by
/// [`prune`].
fn remove_stale(locked: &mut Locked) -> usize {
    release(locked, |e| {
        !e.kept && e.holder.is_none_or(|h| !h.is_alive())
    })
}

/// [`remove_stale`] on its own (`kiln network prune`, a lifecycle's
/// reconcile); returns how many endpoints went.
pub fn prune(layout: &StoreLayout) -> Result<usize, NetworkError> {
    let mut locked = state::lock(&dir(layout))?;
    let n = remove_stale(&mut locked);
    save(&locked)?;
    Ok(n)
}

/// Removes every user network no container uses (docker `network prune`:
/// moby/moby `daemon/prune.go`, `localNetworksPrune`, skips the
/// predefined networks and those with endpoints); stale endpoints go
/// first; `selected` narrows them (`system prune --filter`). A stopped
/// detached container keeps its endpoint, so its
/// network stays, as `network rm` refuses it. Returns the names removed.
pub fn prune_networks(
    layout: &StoreLayout,
    selected: impl Fn(&NetworkRecord) -> bool,
) -> Result<Vec<String>, NetworkError> {
    let mut locked = state::lock(&dir(layout))?;
    remove_stale(&mut locked);
    let unused: Vec<String> = locked
        .state
        .networks
        .iter()
        .filter(|(n, record)| {
            n.as_str() != DEFAULT_NETWORK
                && locked.state.members(n).next().is_none()
                && selected(record)
        })
        .map(|(n, _)| n)
        .cloned()
        .collect();
    let records: Vec<NetworkRecord> = unused
        .iter()
        .filter_map(|n| locked.state.networks.remove(n))
        .collect();
    save(&locked)?;
    for record in &records {
        bridge::destroy(record);
    }
    Ok(unused)
}

/// `container`'s endpoints with their networks (name and record), for
/// `inspect`'s `NetworkSettings`.
pub fn endpoints_of(
    layout: &StoreLayout,
    container: &str,
) -> Result<Vec<(String, NetworkRecord, Endpoint)>, NetworkError> {
    let locked = state::lock(&dir(layout))?;
    Ok(locked
        .state
        .endpoints
        .iter()
        .filter(|e| e.container == container)
        .filter_map(|e| {
            let record = locked.state.networks.get(&e.network)?;
            Some((e.network.clone(), record.clone(), e.clone()))
        })
        .collect())
}

/// Takes the endpoints `which` picks out of the state and removes what
/// they added (the caller saves).
fn release(locked: &mut Locked, which: impl Fn(&Endpoint) -> bool) -> usize {
    let (gone, kept): (Vec<Endpoint>, Vec<Endpoint>) = std::mem::take(&mut locked.state.endpoints)
        .into_iter()
        .partition(|e| which(e));
    locked.state.endpoints = kept;
    for e in &gone {
        firewall::remove(&e.rules);
        bridge::remove_veth(&e.host_veth);
        if e.network == DEFAULT_NETWORK {
            continue;
        }
        // Each forgets the other: the members this one, and this one (a
        // disconnect from a running container) the members.
        let line = hosts::line(e);
        for member in locked.state.members(&e.network) {
            let pairs = [
                (member.hosts_file.as_ref(), &line),
                (e.hosts_file.as_ref(), &hosts::line(member)),
            ];
            for (file, line) in pairs {
                if let Some(file) = file {
                    if let Err(err) = hosts::remove_line(file, line) {
                        tracing::debug!("{err}", err = crate::error_chain::Chain(&err));
                    }
                }
            }
        }
    }
    gone.len()
}

/// The ID and init pid of a running container on a kiln network, by name
/// or ID prefix (`--network container:NAME` joins its namespace).
pub fn running_container(layout: &StoreLayout, name: &str) -> Result<(String, i32), NetworkError> {
    let locked = state::lock(&dir(layout))?;
    locked
        .state
        .endpoints
        .iter()
        .filter(|e| e.holder.is_some_and(|h| h.is_alive()))
        .find(|e| {
            !name.is_empty() && (e.names.iter().any(|n| n == name) || e.container.starts_with(name))
        })
        .and_then(|e| Some((e.container.clone(), e.pid?)))
        .ok_or_else(|| NetworkError::NoContainer(name.into()))
}

/// Connects the running container `container` (by name or ID prefix, as
/// its endpoints know it) to `network` (docker `network connect`): the
/// other members' names are appended to its `/etc/hosts`.
pub fn connect(layout: &StoreLayout, network: &str, container: &str) -> Result<(), NetworkError> {
    let (id, names, hosts_file, pid) = {
        let locked = state::lock(&dir(layout))?;
        let e = locked
            .state
            .endpoints
            .iter()
            .find(|e| {
                e.pid.is_some()
                    && (e.names.iter().any(|n| n == container)
                        || e.container.starts_with(container))
            })
            .ok_or_else(|| NetworkError::NoContainer(container.into()))?;
        (
            e.container.clone(),
            e.names.clone(),
            e.hosts_file.clone(),
            e.pid.expect("filtered"),
        )
    };
    let request = NetworkRequest {
        network: network.into(),
        names,
        hosts_file: hosts_file.clone(),
        ..NetworkRequest::default()
    };
    let attachment = attach(layout, &id, &request, pid)?;
    if let Some(file) = hosts_file {
        for line in &attachment.hosts {
            hosts::append(&file, line)?;
        }
    }
    Ok(())
}

/// Disconnects `container` (name or ID prefix) from `network` (docker
/// `network disconnect`).
pub fn disconnect(
    layout: &StoreLayout,
    network: &str,
    container: &str,
) -> Result<(), NetworkError> {
    let (id, key) = {
        let locked = state::lock(&dir(layout))?;
        let key = find_network(&locked, network)?;
        let e = locked
            .state
            .members(&key)
            .find(|e| e.names.iter().any(|n| n == container) || e.container.starts_with(container))
            .ok_or_else(|| NetworkError::NoContainer(container.into()))?;
        (e.container.clone(), key)
    };
    detach_from(layout, &id, Some(&key))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(container: &str, kept: bool) -> Endpoint {
        Endpoint {
            container: container.into(),
            network: DEFAULT_NETWORK.into(),
            address: Ipv4Addr::new(172, 17, 0, 2),
            names: vec![container.into()],
            // No such link: releasing it runs nothing.
            host_veth: format!("kvnone{container}"),
            interface: "eth0".into(),
            mac: None,
            ports: vec![PortSpec::parse("127.0.0.1:8080:80").unwrap()],
            hosts_file: None,
            pid: None,
            holder: None,
            kept,
            rules: Vec::new(),
        }
    }

    /// A stopped detached container has no live process, yet its address
    /// and ports stay its own until `rm`.
    #[test]
    fn a_kept_endpoint_is_never_stale() {
        let dir = tempfile::tempdir().unwrap();
        let mut locked = state::lock(dir.path()).unwrap();
        locked.state.endpoints = vec![endpoint("gone", false), endpoint("stopped", true)];
        assert_eq!(remove_stale(&mut locked), 1);
        let left: Vec<&str> = locked
            .state
            .endpoints
            .iter()
            .map(|e| e.container.as_str())
            .collect();
        assert_eq!(left, ["stopped"]);
    }
}
