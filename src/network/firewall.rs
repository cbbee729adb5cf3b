//! kiln's iptables rules: NAT for a bridge's outbound traffic and DNAT for
//! published ports, all in kiln's own chains so that removing a network or
//! a container removes exactly what it added.
//!
//! The rules follow docker's with its userland proxy disabled (moby/moby
//! `integration/network/bridge/iptablesdoc/generated/usernet-portmap-noproxy.md`
//! and `usernet-portmap-lo.md`): `nat PREROUTING` and `nat OUTPUT` jump to
//! `KILN` for local destinations (OUTPUT without docker-proxy's
//! `! -d 127.0.0.0/8`, so `-p 127.0.0.1:8080:80` is reached from the host
//! through DNAT alone), `KILN` holds one DNAT per published port,
//! `KILN-POSTROUTING` masquerades the subnet leaving by another interface
//! and, for loopback-sourced connections DNAT'd onto the bridge, the
//! local source (the kernel routes a 127.0.0.1-sourced packet onto the
//! bridge only with `route_localnet=1` on it, which docker also sets
//! without its proxy). `filter FORWARD` jumps to `KILN-FORWARD`,
//! which accepts the bridge's traffic in case the host's policy drops.

use super::command::{self, CommandError};
use super::ports::PortSpec;
use super::subnet::Subnet;
use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;

/// kiln's DNAT chain (nat table).
pub const CHAIN_NAT: &str = "KILN";
/// kiln's masquerading chain (nat table).
pub const CHAIN_POSTROUTING: &str = "KILN-POSTROUTING";
/// kiln's forwarding chain (filter table).
pub const CHAIN_FORWARD: &str = "KILN-FORWARD";

/// One rule kiln appended and must delete again, exactly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    /// `nat` or `filter`.
    pub table: String,
    /// The chain it is in.
    pub chain: String,
    /// The match and target, as iptables arguments.
    pub args: Vec<String>,
}

impl Rule {
    fn new(table: &str, chain: &str, args: &str) -> Rule {
        Rule {
            table: table.into(),
            chain: chain.into(),
            args: args.split_whitespace().map(String::from).collect(),
        }
    }

    fn call(&self, op: &str) -> Result<(), CommandError> {
        let mut args = vec!["-t", &self.table, op, &self.chain];
        args.extend(self.args.iter().map(String::as_str));
        command::iptables(&args)
    }
}

/// Makes kiln's chains and the jumps to them from the built-in chains, if
/// missing (they stay, empty, like docker's).
pub fn ensure_chains() -> Result<(), CommandError> {
    let jumps = [
        (
            "nat",
            CHAIN_NAT,
            "PREROUTING",
            "-m addrtype --dst-type LOCAL -j KILN",
        ),
        (
            "nat",
            CHAIN_NAT,
            "OUTPUT",
            "-m addrtype --dst-type LOCAL -j KILN",
        ),
        (
            "nat",
            CHAIN_POSTROUTING,
            "POSTROUTING",
            "-j KILN-POSTROUTING",
        ),
        ("filter", CHAIN_FORWARD, "FORWARD", "-j KILN-FORWARD"),
    ];
    for (table, chain, from, jump) in jumps {
        match command::iptables(&["-t", table, "-N", chain]) {
            Err(CommandError::Failed { stderr, .. }) if stderr.contains("exists") => {}
            other => other?,
        }
        let rule = Rule::new(table, from, jump);
        if rule.call("-C").is_err() {
            rule.call("-A")?;
        }
    }
    Ok(())
}

/// A bridge's own rules: masquerade what its subnet sends elsewhere and
/// what the host sends to it from a local (loopback) address; forward its
/// traffic.
pub fn network_rules(bridge: &str, subnet: &Subnet) -> Vec<Rule> {
    vec![
        Rule::new(
            "nat",
            CHAIN_POSTROUTING,
            &format!("-s {subnet} ! -o {bridge} -j MASQUERADE"),
        ),
        Rule::new(
            "nat",
            CHAIN_POSTROUTING,
            &format!("-o {bridge} -m addrtype --src-type LOCAL -j MASQUERADE"),
        ),
        Rule::new("filter", CHAIN_FORWARD, &format!("-i {bridge} -j ACCEPT")),
        Rule::new("filter", CHAIN_FORWARD, &format!("-o {bridge} -j ACCEPT")),
    ]
}

/// The DNAT rule of one published port of `container` at `address`. It
/// carries the container's ID as a comment, so it is unique: deleting it
/// again (its store's cleanup after another store reclaimed the address)
/// can never delete an identical rule of the address's next holder.
pub fn port_rule(bridge: &str, container: &str, address: Ipv4Addr, port: &PortSpec) -> Rule {
    let dest = if port.host_ip.is_unspecified() {
        String::new()
    } else {
        format!("-d {}/32 ", port.host_ip)
    };
    Rule::new(
        "nat",
        CHAIN_NAT,
        &format!(
            "{dest}! -i {bridge} -p {proto} -m {proto} --dport {host} -m comment --comment kiln:{id} -j DNAT --to-destination {address}:{container_port}",
            proto = port.protocol.name(),
            host = port.host_port,
            id = &container[..container.len().min(12)],
            container_port = port.container_port,
        ),
    )
}

/// Appends `rules`; on a failure the ones already added are deleted again.
pub fn add(rules: &[Rule]) -> Result<(), CommandError> {
    for (i, rule) in rules.iter().enumerate() {
        if let Err(e) = rule.call("-A") {
            remove(&rules[..i]);
            return Err(e);
        }
    }
    Ok(())
}

/// Deletes `rules`; one already gone is not an error (removal is
/// idempotent), others are logged.
pub fn remove(rules: &[Rule]) {
    for rule in rules {
        if let Err(e) = rule.call("-D") {
            tracing::debug!(
                "iptables rule already gone or not removable: {e}",
                e = crate::error_chain::Chain(&e)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loopback_port_is_dnat_to_the_container_from_outside_the_bridge() {
        let port = PortSpec::parse("127.0.0.1:8080:80").unwrap();
        let rule = port_rule(
            "kiln0",
            "0123456789abcdef",
            Ipv4Addr::new(172, 17, 0, 2),
            &port,
        );
        assert_eq!(
            (rule.table.as_str(), rule.chain.as_str(), rule.args.join(" ")),
            (
                "nat",
                "KILN",
                "-d 127.0.0.1/32 ! -i kiln0 -p tcp -m tcp --dport 8080 -m comment --comment kiln:0123456789ab -j DNAT --to-destination 172.17.0.2:80".to_string()
            )
        );
        let any = PortSpec::parse("53:5353/udp").unwrap();
        assert!(port_rule("kiln0", "c", Ipv4Addr::new(172, 17, 0, 2), &any)
            .args
            .join(" ")
            .starts_with("! -i kiln0 -p udp -m udp --dport 53 "));
    }

    #[test]
    fn every_network_rule_names_its_bridge_and_sits_in_a_kiln_chain() {
        let rules = network_rules("kiln-ab12", &Subnet::parse("10.89.3.0/24").unwrap());
        for r in &rules {
            assert!(r.chain.starts_with("KILN"), "{r:?}");
            assert!(r.args.iter().any(|a| a == "kiln-ab12"), "{r:?}");
        }
    }
}
