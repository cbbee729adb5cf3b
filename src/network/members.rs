//! The members of a container's user networks as its `/etc/hosts` and
//! theirs name them, for the `/etc/hosts` refresh a detached container's
//! monitor runs at each start (`container::hosts`). The caller's closure
//! runs under the network state's lock, so no attach or detach edits a
//! member's hosts file meanwhile.

use super::state::{self, Endpoint};
use super::{NetworkError, Subnet, DEFAULT_NETWORK};
use crate::cache::StoreLayout;
use std::net::Ipv4Addr;
use std::path::PathBuf;

/// One member of a network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Its container ID.
    pub container: String,
    /// Its address on this network.
    pub address: Ipv4Addr,
    /// The names the others resolve it by.
    pub names: Vec<String>,
    /// The host file bound over its `/etc/hosts`.
    pub hosts_file: Option<PathBuf>,
}

/// A user network and its members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkMembers {
    /// The network's name.
    pub network: String,
    /// Its subnet.
    pub subnet: Subnet,
    /// Every member, `container` included.
    pub members: Vec<Member>,
}

fn member(e: &Endpoint) -> Member {
    Member {
        container: e.container.clone(),
        address: e.address,
        names: e.names.clone(),
        hosts_file: e.hosts_file.clone(),
    }
}

/// Runs `f` on the user networks `container` is on (the default bridge
/// has no name resolution) with their members, under the state's lock.
pub fn with_members<T>(
    layout: &StoreLayout,
    container: &str,
    f: impl FnOnce(&[NetworkMembers]) -> T,
) -> Result<T, NetworkError> {
    let locked = state::lock(&super::dir(layout))?;
    let nets: Vec<NetworkMembers> = locked
        .state
        .endpoints
        .iter()
        .filter(|e| e.container == container && e.network != DEFAULT_NETWORK)
        .filter_map(|e| {
            let record = locked.state.networks.get(&e.network)?;
            Some(NetworkMembers {
                network: e.network.clone(),
                subnet: record.subnet,
                members: locked.state.members(&e.network).map(member).collect(),
            })
        })
        .collect();
    Ok(f(&nets))
}
