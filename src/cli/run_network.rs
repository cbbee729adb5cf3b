//! `kiln run`'s network flags: `--network`, `-p`, `--add-host`, `--dns`,
//! `--link`, checked as docker checks them (docker/cli
//! `cli/command/container/opts.go`, `parse`), and the container's place on
//! a bridge network ([`crate::network`]) for the length of the run, or
//! handed over to a detached container's monitor.

use super::values::{invalid, FlagError};
use crate::cache::StoreLayout;
use crate::error_chain::Chain;
use crate::network::{self, Attachment, NetworkRequest, PortSpec};
use std::net::IpAddr;
use std::path::Path;

/// The network a `kiln run` container gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// The host's (`--network host`).
    Host,
    /// Loopback only (`--network none`).
    None,
    /// A bridge network: `bridge` (docker's default) or a user network.
    Bridge(String),
    /// Another running container's namespace (`container:NAME`).
    Container(String),
}

impl Choice {
    /// docker's `HostConfig.NetworkMode` for it.
    pub fn mode(&self) -> String {
        match self {
            Choice::Host => "host".into(),
            Choice::None => "none".into(),
            Choice::Bridge(name) => name.clone(),
            Choice::Container(name) => format!("container:{name}"),
        }
    }
}

/// `--network`'s value; without one, docker's default network, `bridge`:
/// docker/cli sends `default` (`cli/command/container/opts.go`, `parse`)
/// and the daemon names it `bridge` on Linux (moby/moby
/// `api/types/container/hostconfig_unix.go`, `NetworkMode.NetworkName`).
/// Builds keep BuildKit's own default for RUN, which this is not.
pub fn choose(network: Option<&str>, publish: &[String]) -> Result<Choice, FlagError> {
    match network {
        None | Some("bridge") | Some("default") => {
            Ok(Choice::Bridge(network::DEFAULT_NETWORK.into()))
        }
        Some("host") => Ok(Choice::Host),
        Some("none") => Ok(Choice::None),
        Some(v) if v.starts_with("container:") => match &v["container:".len()..] {
            "" => Err(invalid("--network", v, "expected container:NAME")),
            name if !publish.is_empty() => Err(FlagError::Usage(format!(
                "conflicting options: port publishing and the container type network mode ({name})"
            ))),
            name => Ok(Choice::Container(name.into())),
        },
        Some("") => Err(invalid(
            "--network",
            "",
            "expected bridge, host, none or a network name",
        )),
        Some(name) => Ok(Choice::Bridge(name.into())),
    }
}

/// `--add-host NAME:IP` (or `NAME=IP`, docker ≥ 25): the name and the
/// address, `host-gateway` kept as given.
pub fn parse_add_host(value: &str) -> Result<(String, String), FlagError> {
    let (name, ip) = value
        .split_once('=')
        .or_else(|| value.split_once(':'))
        .filter(|(n, ip)| !n.is_empty() && !ip.is_empty())
        .ok_or_else(|| invalid("--add-host", value, "expected NAME:IP"))?;
    if ip != "host-gateway" && ip.trim_matches(['[', ']']).parse::<IpAddr>().is_err() {
        return Err(invalid(
            "--add-host",
            value,
            format!("{ip:?} is not an IP address or host-gateway"),
        ));
    }
    Ok((name.into(), ip.trim_matches(['[', ']']).into()))
}

/// `--dns IP`.
fn parse_dns(value: &str) -> Result<String, FlagError> {
    value
        .parse::<IpAddr>()
        .map(|ip| ip.to_string())
        .map_err(|_| invalid("--dns", value, "expected an IP address"))
}

/// `--link NAME[:ALIAS]`.
fn parse_link(value: &str) -> Result<(String, String), FlagError> {
    let (name, alias) = value.split_once(':').unwrap_or((value, value));
    if name.is_empty() || alias.is_empty() {
        return Err(invalid("--link", value, "expected NAME[:ALIAS]"));
    }
    Ok((name.into(), alias.into()))
}

/// The network flags of one `kiln run`.
#[derive(Debug)]
pub struct Flags<'a> {
    /// `--network`.
    pub network: Option<&'a str>,
    /// `-p`.
    pub publish: &'a [String],
    /// `--add-host`.
    pub add_host: &'a [String],
    /// `--dns`.
    pub dns: &'a [String],
    /// `--link`.
    pub link: &'a [String],
}

/// What the container's network files get, and its endpoint (detached
/// when this is dropped, however the run ends).
#[derive(Debug)]
pub struct Joined {
    /// The choice made.
    pub choice: Choice,
    /// `/etc/hosts` lines to add.
    pub hosts: Vec<String>,
    /// `--dns` servers.
    pub nameservers: Vec<String>,
    /// The endpoint on a bridge network.
    pub endpoint: Option<Endpoint>,
    /// With `container:NAME`, that container's init.
    pub join_pid: Option<i32>,
}

/// A container's reserved endpoint; removed on drop unless handed over.
#[derive(Debug)]
pub struct Endpoint {
    layout: StoreLayout,
    id: String,
    /// What the network gave.
    pub attachment: Attachment,
    /// Handed over to a detached container ([`Endpoint::hand_over`]).
    handed_over: bool,
}

impl Endpoint {
    /// Plumbs the container whose init is `pid` (the runtime's network
    /// setup hook).
    pub fn plumb(&self, pid: i32) -> Result<(), network::NetworkError> {
        network::plumb(&self.layout, &self.id, pid)
    }

    /// Hands the endpoint over to a detached container (`run -d`,
    /// `create`): it stays reserved after this process returns, its
    /// monitor plumbs it on each start and `rm` detaches it. On an error
    /// it is released as on drop.
    pub fn hand_over(mut self) -> Result<(), network::NetworkError> {
        network::keep(&self.layout, &self.id)?;
        self.handed_over = true;
        Ok(())
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        if self.handed_over {
            return;
        }
        if let Err(e) = network::detach(&self.layout, &self.id) {
            eprintln!("kiln: {e}", e = Chain(&e));
        }
    }
}

/// Checks the flags and, on a bridge network, reserves container `id`'s
/// address and ports (its `/etc/hosts` will be `state_dir/hosts`).
pub fn join(
    flags: &Flags<'_>,
    root: &Path,
    id: &str,
    names: Vec<String>,
    hostname: &str,
    state_dir: &Path,
) -> Result<Joined, FlagError> {
    let choice = choose(flags.network, flags.publish)?;
    let ports = flags
        .publish
        .iter()
        .map(|p| PortSpec::parse(p).map_err(|e| FlagError::Usage(e.to_string())))
        .collect::<Result<Vec<_>, _>>()?;
    let add_hosts = flags
        .add_host
        .iter()
        .map(|v| parse_add_host(v))
        .collect::<Result<Vec<_>, _>>()?;
    let nameservers = flags
        .dns
        .iter()
        .map(|v| parse_dns(v))
        .collect::<Result<Vec<_>, _>>()?;
    let links = flags
        .link
        .iter()
        .map(|v| parse_link(v))
        .collect::<Result<Vec<_>, _>>()?;
    let mut join_pid = None;
    let endpoint = match &choice {
        Choice::Container(name) => {
            if !links.is_empty() {
                return Err(FlagError::Usage(
                    "conflicting options: --link and the container type network mode".into(),
                ));
            }
            let pid = match network::running_container(&StoreLayout::new(root), name) {
                Ok((_, pid)) => pid,
                Err(e) => running_detached(root, name)
                    .ok_or_else(|| FlagError::Usage(Chain(&e).to_string()))?,
            };
            join_pid = Some(pid);
            None
        }
        Choice::Bridge(name) => {
            let layout = StoreLayout::new(root);
            let mut all_names = names;
            if !all_names.iter().any(|n| n == hostname) {
                all_names.push(hostname.to_string());
            }
            let request = NetworkRequest {
                network: name.clone(),
                names: all_names,
                ports,
                links,
                hosts_file: Some(state_dir.join("hosts")),
            };
            let attachment = network::reserve(&layout, id, &request)
                .map_err(|e| FlagError::Usage(Chain(&e).to_string()))?;
            Some(Endpoint {
                layout,
                id: id.into(),
                attachment,
                handed_over: false,
            })
        }
        _ => {
            if !ports.is_empty() {
                eprintln!("WARNING: Published ports are discarded when using host network mode");
            }
            if !links.is_empty() {
                return Err(FlagError::Usage(
                    "conflicting options: --link needs a bridge network".into(),
                ));
            }
            None
        }
    };
    let nameservers = match (&endpoint, nameservers.is_empty()) {
        (Some(_), true) => {
            bridge_nameservers(&std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default())
        }
        _ => nameservers,
    };
    let mut hosts = Vec::new();
    if let Some(e) = &endpoint {
        // docker lists a bridge container's own address under its
        // hostname, so `hostname -f` and `hostname -i` work.
        hosts.push(format!("{}\t{hostname}", e.attachment.address));
        hosts.extend(e.attachment.hosts.iter().cloned());
    }
    for (name, ip) in add_hosts {
        let ip = match (ip.as_str(), &endpoint) {
            ("host-gateway", Some(e)) => e.attachment.gateway.to_string(),
            ("host-gateway", None) => return Err(invalid(
                "--add-host",
                &format!("{name}:host-gateway"),
                "host-gateway is the bridge's address: it needs --network bridge or a user network",
            )),
            (ip, _) => ip.to_string(),
        };
        hosts.push(format!("{ip}\t{name}"));
    }
    Ok(Joined {
        choice,
        hosts,
        nameservers,
        endpoint,
        join_pid,
    })
}

/// The init of a running detached container not on a kiln network (a
/// bridge one is found through its endpoint), by name or ID prefix, from
/// its row.
fn running_detached(root: &Path, name: &str) -> Option<i32> {
    use crate::container::state;
    let store = crate::cache::Store::open(root).ok()?;
    let row = state::find(&store, name).ok()?;
    if state::Status::parse(&row.state) != state::Status::Running {
        return None;
    }
    state::alive(row.pid).map(|p| p.pid as i32)
}

/// The nameservers a bridge container gets without `--dns`: the host's
/// without loopback ones (unreachable from the container's namespace) and
/// IPv6 ones (kiln's bridges are IPv4 only), 8.8.8.8 and 8.8.4.4 when none
/// is left; empty when the host's file can stay as it is. docker's rule
/// for a network without its internal resolver, which kiln's all are
/// (moby/moby `libnetwork/internal/resolvconf/resolvconf.go`,
/// `TransformForLegacyNw`).
fn bridge_nameservers(host: &str) -> Vec<String> {
    let servers: Vec<&str> = host
        .lines()
        .filter_map(|l| l.strip_prefix("nameserver"))
        .map(str::trim)
        .collect();
    let reachable: Vec<String> = servers
        .iter()
        .filter(|s| {
            !s.parse::<IpAddr>()
                .is_ok_and(|ip| ip.is_loopback() || ip.is_ipv6())
        })
        .map(|s| s.to_string())
        .collect();
    match (reachable.len() == servers.len(), reachable.is_empty()) {
        (true, _) => Vec::new(),
        (false, false) => reachable,
        (false, true) => vec!["8.8.8.8".into(), "8.8.4.4".into()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_network_is_the_default_bridge() {
        assert_eq!(choose(None, &[]).unwrap(), Choice::Bridge("bridge".into()));
        assert_eq!(choose(Some("host"), &[]).unwrap(), Choice::Host);
        assert_eq!(
            choose(None, &["80".into()]).unwrap(),
            Choice::Bridge("bridge".into())
        );
        assert_eq!(choose(Some("none"), &[]).unwrap(), Choice::None);
        assert_eq!(
            choose(Some("mynet"), &[]).unwrap(),
            Choice::Bridge("mynet".into())
        );
        assert_eq!(
            choose(Some("container:web"), &[]).unwrap(),
            Choice::Container("web".into())
        );
        assert!(choose(Some("container:web"), &["80".into()]).is_err());
        assert!(choose(Some("container:"), &[]).is_err());
    }

    #[test]
    fn a_bridge_drops_the_hosts_loopback_nameservers() {
        assert!(bridge_nameservers("nameserver 192.0.2.53\n").is_empty());
        assert_eq!(
            bridge_nameservers(
                "nameserver 127.0.0.53\nnameserver 2001:db8::53\nnameserver 192.0.2.53\n"
            ),
            vec!["192.0.2.53"]
        );
        assert_eq!(
            bridge_nameservers("nameserver 127.0.0.53\noptions edns0\n"),
            vec!["8.8.8.8", "8.8.4.4"]
        );
    }

    #[test]
    fn add_host_takes_docker_forms() {
        assert_eq!(
            parse_add_host("db:192.0.2.7").unwrap(),
            ("db".into(), "192.0.2.7".into())
        );
        assert_eq!(
            parse_add_host("db=host-gateway").unwrap(),
            ("db".into(), "host-gateway".into())
        );
        assert_eq!(
            parse_add_host("v6:[2001:db8::1]").unwrap(),
            ("v6".into(), "2001:db8::1".into())
        );
        for bad in ["db", "db:", ":1.2.3.4", "db:nothost"] {
            let e = parse_add_host(bad).unwrap_err().to_string();
            assert!(e.contains("--add-host"), "{bad}: {e}");
        }
    }
}
