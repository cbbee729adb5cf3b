//! A network's bridge and a container's veth pair, on the host.
//!
//! A subnet is chosen (or a `--subnet` checked) against the host's routes
//! and the store's other networks while holding the host-wide lock
//! ([`super::host`]): two kiln stores creating networks at once would
//! otherwise both take the first free subnet before either bridge routes it.

use super::command::{self, CommandError};
use super::firewall;
use super::host::{self, HostLocked};
use super::state::{Endpoint, Locked, NetworkRecord};
use super::subnet::{self, Subnet};
use super::{NetworkError, DEFAULT_BRIDGE};
use sha2::{Digest, Sha256};
use std::os::fd::OwnedFd;

/// A fresh network ID: 64 random hex digits, like docker's.
pub fn new_id() -> Result<String, NetworkError> {
    let mut bytes = [0u8; 32];
    let mut filled = 0;
    while filled < bytes.len() {
        match rustix::rand::getrandom(&mut bytes[filled..], rustix::rand::GetRandomFlags::empty()) {
            Ok(n) => filled += n,
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => {
                return Err(NetworkError::Command(CommandError::Spawn {
                    program: "getrandom".into(),
                    source: e.into(),
                }))
            }
        }
    }
    Ok(hex::encode(bytes))
}

/// The host end of a container's veth on a network: `kv` and 11 hex
/// digits (interface names have at most 15 characters).
pub fn veth_name(container: &str, network_id: &str) -> String {
    let digest = Sha256::digest(format!("{container}/{network_id}").as_bytes());
    format!("kv{}", &hex::encode(digest)[..11])
}

/// Picks `wanted` (checked) or the first candidate that overlaps neither a
/// host route nor another network of the store.
fn choose_subnet(locked: &Locked, wanted: Option<Subnet>) -> Result<Subnet, NetworkError> {
    let mut used: Vec<Subnet> = subnet::host_routes().into_iter().map(|(_, s)| s).collect();
    used.extend(locked.state.networks.values().map(|r| r.subnet));
    if let Some(subnet) = wanted {
        return match used.iter().find(|u| u.overlaps(&subnet)) {
            Some(other) => Err(NetworkError::Overlaps {
                subnet,
                other: *other,
            }),
            None => Ok(subnet),
        };
    }
    subnet::candidates()
        .find(|c| !used.iter().any(|u| u.overlaps(c)))
        .ok_or(NetworkError::NoSubnet)
}

/// Creates bridge `name` on a chosen subnet, with its rules (under the
/// host-wide lock `_host`).
pub fn create(
    locked: &Locked,
    _host: &HostLocked,
    name: &str,
    id: String,
    wanted: Option<Subnet>,
) -> Result<NetworkRecord, NetworkError> {
    let subnet = choose_subnet(locked, wanted)?;
    let record = NetworkRecord {
        id,
        bridge: name.into(),
        rules: firewall::network_rules(name, &subnet),
        subnet,
        created: crate::image::timestamp::now_rfc3339(),
    };
    if let Err(e) = bring_up(&record) {
        destroy(&record);
        return Err(e);
    }
    Ok(record)
}

/// The default network: `kiln0` as another store already made it (its
/// subnet read from its route), or made now (under the host-wide lock).
pub fn adopt_or_create_default(
    locked: &Locked,
    host: &HostLocked,
) -> Result<NetworkRecord, NetworkError> {
    match live_subnet(DEFAULT_BRIDGE) {
        Some(subnet) => Ok(NetworkRecord {
            id: new_id()?,
            bridge: DEFAULT_BRIDGE.into(),
            rules: firewall::network_rules(DEFAULT_BRIDGE, &subnet),
            subnet,
            created: crate::image::timestamp::now_rfc3339(),
        }),
        None => create(locked, host, DEFAULT_BRIDGE, new_id()?, None),
    }
}

fn exists(bridge: &str) -> bool {
    std::path::Path::new("/sys/class/net").join(bridge).exists()
}

/// The subnet `bridge` routes now, if it exists and has one.
pub fn live_subnet(bridge: &str) -> Option<Subnet> {
    subnet::host_routes()
        .into_iter()
        .find(|(iface, _)| iface == bridge)
        .map(|(_, s)| s)
}

/// Makes the bridge and its rules again after a reboot took them; its
/// subnet is checked against the host's routes first (another store or
/// program may have taken it since), like a new network's.
pub fn ensure(record: &NetworkRecord) -> Result<(), NetworkError> {
    if exists(&record.bridge) {
        return Ok(());
    }
    let _host = host::lock()?;
    if exists(&record.bridge) {
        return Ok(());
    }
    if let Some((_, other)) = subnet::host_routes()
        .into_iter()
        .find(|(_, s)| s.overlaps(&record.subnet))
    {
        return Err(NetworkError::Overlaps {
            subnet: record.subnet,
            other,
        });
    }
    firewall::remove(&record.rules);
    bring_up(record)
}

fn bring_up(record: &NetworkRecord) -> Result<(), NetworkError> {
    let b = &record.bridge;
    command::ip_batch(
        &[
            format!("link add {b} type bridge"),
            format!(
                "addr add {}/{} dev {b}",
                record.subnet.gateway(),
                record.subnet.prefix
            ),
            format!("link set {b} up"),
        ],
        None,
    )?;
    // Loopback-sourced packets DNAT'd to the bridge (`-p 127.0.0.1:...`)
    // are dropped as martians without route_localnet; outbound NAT needs
    // forwarding (docker enables it host-wide too).
    for (knob, value) in [
        (format!("/proc/sys/net/ipv4/conf/{b}/route_localnet"), "1"),
        ("/proc/sys/net/ipv4/ip_forward".to_string(), "1"),
    ] {
        std::fs::write(&knob, value).map_err(|source| {
            NetworkError::Command(CommandError::Spawn {
                program: format!("write {knob}"),
                source,
            })
        })?;
    }
    firewall::ensure_chains()?;
    firewall::add(&record.rules)?;
    Ok(())
}

/// Removes a network's rules and bridge; what is already gone is skipped.
pub fn destroy(record: &NetworkRecord) {
    firewall::remove(&record.rules);
    remove_veth(&record.bridge);
}

/// Creates `endpoint`'s veth pair, its host end on the bridge and its
/// peer made directly inside `netns` under its final name with its MAC
/// address, then configures the peer (the address; the default route on
/// the first interface). Two `ip` processes: creating the peer in the
/// namespace saves moving and renaming it, which cost a third of a
/// container's network setup (an RCU grace period per move).
pub fn plumb_veth(
    record: &NetworkRecord,
    endpoint: &Endpoint,
    netns: &OwnedFd,
) -> Result<(), NetworkError> {
    let host = &endpoint.host_veth;
    let eth = &endpoint.interface;
    let pid = endpoint.pid.expect("plumbed endpoints have a pid");
    let mac = match &endpoint.mac {
        Some(mac) => format!(" address {mac}"),
        None => String::new(),
    };
    command::ip_batch(
        &[
            format!("link add {host} type veth peer name {eth}{mac} netns {pid}"),
            format!("link set {host} master {} up", record.bridge),
        ],
        None,
    )?;
    let mut inside = vec![
        format!(
            "addr add {}/{} dev {eth}",
            endpoint.address, record.subnet.prefix
        ),
        format!("link set {eth} up"),
    ];
    if eth == "eth0" {
        inside.push(format!("route add default via {}", record.subnet.gateway()));
    }
    command::ip_batch(&inside, Some(netns))?;
    Ok(())
}

/// A random, locally administered unicast MAC address for a container's
/// interface. docker ≥ 28 draws one too rather than deriving it from the
/// IPv4 address, so a recycled address never meets a neighbour cache's
/// stale entry for the old MAC (moby/moby#48808,
/// `libnetwork/drivers/bridge/bridge_linux.go`, `CreateEndpoint`).
pub fn random_mac() -> Result<String, NetworkError> {
    let mut bytes = [0u8; 6];
    rustix::rand::getrandom(&mut bytes, rustix::rand::GetRandomFlags::empty()).map_err(|e| {
        NetworkError::Command(CommandError::Spawn {
            program: "getrandom".into(),
            source: e.into(),
        })
    })?;
    bytes[0] = (bytes[0] & 0xfe) | 0x02;
    Ok(bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":"))
}

/// Deletes an interface (a veth's peer goes with it); one already gone is
/// fine.
pub fn remove_veth(name: &str) {
    if !exists(name) {
        return;
    }
    if let Err(e) = command::ip_batch(&[format!("link del {name}")], None) {
        tracing::debug!("{e}", e = crate::error_chain::Chain(&e));
    }
}
