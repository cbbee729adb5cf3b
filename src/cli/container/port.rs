//! `kiln port CONTAINER [PRIVATE_PORT[/PROTO]]`: the container's published
//! ports as recorded on its network endpoints (the same records that the
//! NAT rules were made from), in docker's format.
//!
//! docker/cli `cli/command/container/port.go` (`runPort`): without a port
//! every binding prints as `80/tcp -> 127.0.0.1:8080`; with one (protocol
//! `tcp` when omitted) only `127.0.0.1:8080`; lines sorted; a port that
//! is not published is an error (status 1).

use super::report;
use crate::cache::{Store, StoreLayout};
use crate::cli::CliError;
use crate::container::state;
use crate::error_chain::Chain;
use crate::network::{self, PortSpec};
use clap::Args;
use std::path::Path;

/// Flags of `kiln port`.
#[derive(Debug, Args)]
pub struct PortArgs {
    /// The container.
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    /// Only this container port (`80`, `80/tcp`, `53/udp`).
    #[arg(value_name = "PRIVATE_PORT[/PROTO]")]
    pub port: Option<String>,
}

/// One binding as `port` shows it: (container port, protocol, host side).
fn binding(p: &PortSpec) -> (u16, &'static str, String) {
    (
        p.container_port,
        p.protocol.name(),
        format!("{}:{}", p.host_ip, p.host_port),
    )
}

/// The lines `port` prints for `bindings`, or `None` when `wanted` names a
/// port that is not published. `wanted` is the user's `PORT[/PROTO]`.
fn lines(bindings: &[PortSpec], wanted: Option<(u16, &str)>) -> Option<Vec<String>> {
    let mut all: Vec<_> = bindings.iter().map(binding).collect();
    // docker sorts the printed lines in natural order; sorting the
    // numbers first gives the same order for IPv4 bindings.
    all.sort();
    all.dedup();
    match wanted {
        None => Some(
            all.into_iter()
                .map(|(port, proto, host)| format!("{port}/{proto} -> {host}"))
                .collect(),
        ),
        Some((port, proto)) => {
            let found: Vec<String> = all
                .into_iter()
                .filter(|(p, pr, _)| *p == port && *pr == proto)
                .map(|(_, _, host)| host)
                .collect();
            (!found.is_empty()).then_some(found)
        }
    }
}

/// Parses `PORT[/PROTO]` as docker does (protocol `tcp` when omitted).
fn parse_wanted(value: &str) -> Result<(u16, &str), String> {
    let (port, proto) = value.split_once('/').unwrap_or((value, "tcp"));
    let proto = if proto.is_empty() { "tcp" } else { proto };
    match port.parse::<u16>() {
        Ok(p) => Ok((p, proto)),
        Err(e) => Err(format!(
            "invalid port {port:?} in {value:?}: expected PRIVATE_PORT[/PROTO] ({e})"
        )),
    }
}

/// `kiln port`.
pub fn run(a: PortArgs, root: &Path) -> Result<i32, CliError> {
    let wanted = match a.port.as_deref().map(parse_wanted).transpose() {
        Ok(w) => w,
        Err(message) => return Ok(report(message)),
    };
    let store = Store::open(root).map_err(|e| CliError(format!("Error: {}", Chain(&e))))?;
    if let Err(e) = state::reconcile(&store) {
        return Ok(report(Chain(&e).to_string()));
    }
    let row = match state::find(&store, &a.container) {
        Ok(row) => row,
        Err(e) => return Ok(report(e)),
    };
    let bindings: Vec<PortSpec> = network::list(&StoreLayout::new(root))
        .map_err(|e| CliError(format!("Error: {}", Chain(&e))))?
        .into_iter()
        .flat_map(|(_, _, members)| members)
        .filter(|e| e.container == row.id)
        .flat_map(|e| e.ports)
        .collect();
    match lines(&bindings, wanted) {
        Some(lines) => {
            for l in lines {
                println!("{l}");
            }
            Ok(0)
        }
        None => Ok(report(format!(
            "No public port '{}' published for {}",
            a.port.unwrap_or_default(),
            a.container
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::Protocol;
    use std::net::Ipv4Addr;

    fn spec(host_port: u16, container_port: u16, protocol: Protocol) -> PortSpec {
        PortSpec {
            host_ip: Ipv4Addr::LOCALHOST,
            host_port,
            container_port,
            protocol,
        }
    }

    #[test]
    fn every_binding_prints_as_port_proto_arrow_host_sorted_by_port() {
        let b = [
            spec(8443, 443, Protocol::Tcp),
            spec(8080, 80, Protocol::Tcp),
            spec(5353, 53, Protocol::Udp),
        ];
        assert_eq!(
            lines(&b, None).unwrap(),
            [
                "53/udp -> 127.0.0.1:5353",
                "80/tcp -> 127.0.0.1:8080",
                "443/tcp -> 127.0.0.1:8443"
            ]
        );
    }

    #[test]
    fn one_port_prints_only_the_host_side_and_the_protocol_defaults_to_tcp() {
        let b = [spec(8080, 80, Protocol::Tcp), spec(5353, 80, Protocol::Udp)];
        assert_eq!(
            lines(&b, Some(parse_wanted("80").unwrap())).unwrap(),
            ["127.0.0.1:8080"]
        );
        assert_eq!(
            lines(&b, Some(parse_wanted("80/udp").unwrap())).unwrap(),
            ["127.0.0.1:5353"]
        );
        assert_eq!(lines(&b, Some(parse_wanted("81").unwrap())), None);
    }

    #[test]
    fn a_port_that_is_not_a_number_is_refused_with_what_was_expected() {
        let e = parse_wanted("http/tcp").unwrap_err();
        assert!(
            e.contains("\"http\"") && e.contains("PRIVATE_PORT[/PROTO]"),
            "{e}"
        );
    }
}
