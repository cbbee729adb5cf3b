//! A detached container's names on its user networks after a (re)start:
//! its `/etc/hosts` is written afresh from its stored spec at each start
//! (the members as they were when it was created), and its address may
//! not be the one the others recorded. So, once its endpoint is plumbed
//! and before its command runs, the monitor rewrites:
//! - in every other member's hosts file, the address of the lines naming
//!   it (docker before embedded DNS: moby `libnetwork/etchosts`
//!   `Update`, "update all IP addresses where hostname matches", called
//!   by `sandbox.updateParentHosts` for a restarted container's links);
//! - in its own, the members' lines: each current member at its current
//!   address (added if missing), and lines for addresses on its networks
//!   that no current member has any more dropped (members removed while
//!   it was stopped).
//!
//! A line "names" a member when one of its names is one of the member's
//! (`etchosts.Update` matches the first name; any name here, so that a
//! `--link` line, `ADDRESS\tALIAS TARGET`, follows its target too). Files
//! are rewritten in place (the same inode: it is bind-mounted into the
//! container).
//! Limit: an `--add-host` line whose address is inside one of the
//! container's user networks and names no member is dropped as stale.

use crate::cache::StoreLayout;
use crate::network::members::{Member, NetworkMembers};
use crate::network::NetworkError;
use std::net::Ipv4Addr;
use std::path::Path;

/// `(address, names)` of a hosts line, if it is one.
fn parse(line: &str) -> Option<(&str, &str)> {
    let (addr, names) = line.split_once('\t')?;
    Some((addr, names))
}

/// Whether a line's names include one of the member's: its own line, or
/// a `--link` line (`ADDRESS\tALIAS TARGET`).
fn names(member: &Member, line_names: &str) -> bool {
    line_names
        .split_whitespace()
        .any(|n| member.names.iter().any(|m| m == n))
}

/// The line naming `member` (`ADDRESS\tNAMES`, as the network module
/// writes them).
fn line(member: &Member) -> String {
    format!("{}\t{}", member.address, member.names.join(" "))
}

/// Rewrites the address of the lines naming `member`.
pub fn set_address(text: &str, member: &Member) -> String {
    text.lines()
        .map(|l| match parse(l) {
            Some((addr, line_names))
                if names(member, line_names) && addr != member.address.to_string() =>
            {
                format!("{}{}\n", member.address, &l[addr.len()..])
            }
            _ => format!("{l}\n"),
        })
        .collect()
}

/// The container's own file brought up to date with its networks'
/// members (see the module doc).
pub fn own_file(text: &str, id: &str, nets: &[NetworkMembers]) -> String {
    let members: Vec<&Member> = nets.iter().flat_map(|n| &n.members).collect();
    let in_subnets = |addr: &str| {
        addr.parse::<Ipv4Addr>()
            .is_ok_and(|a| nets.iter().any(|n| n.subnet.contains(a)))
    };
    let mut out = String::new();
    let mut named: Vec<&str> = Vec::new();
    for l in text.lines() {
        match parse(l) {
            Some((addr, line_names)) => match members.iter().find(|m| names(m, line_names)) {
                Some(m) => {
                    named.push(m.container.as_str());
                    out.push_str(&format!("{}{}\n", m.address, &l[addr.len()..]));
                }
                None if in_subnets(addr) => {} // a member that is gone
                None => out.push_str(&format!("{l}\n")),
            },
            None => out.push_str(&format!("{l}\n")),
        }
    }
    for n in nets {
        for m in n.members.iter().filter(|m| m.container != id) {
            if !named.contains(&m.container.as_str()) {
                named.push(m.container.as_str());
                out.push_str(&line(m));
                out.push('\n');
            }
        }
    }
    out
}

/// Applies `edit` to the file at `path` in place; a missing file (a
/// container being removed) is skipped.
fn rewrite(path: &Path, edit: impl FnOnce(&str) -> String) -> Result<(), NetworkError> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(());
    };
    let new = edit(&text);
    if new != text {
        std::fs::write(path, new).map_err(|source| NetworkError::Hosts {
            path: path.to_path_buf(),
            source,
        })?;
    }
    Ok(())
}

/// The refresh for container `id`, just plumbed (see the module doc).
pub fn refresh(layout: &StoreLayout, id: &str) -> Result<(), NetworkError> {
    crate::network::members::with_members(layout, id, |nets| {
        let mut own_file_path = None;
        for net in nets {
            let Some(me) = net.members.iter().find(|m| m.container == id) else {
                continue;
            };
            own_file_path = own_file_path.or(me.hosts_file.clone());
            for other in net.members.iter().filter(|m| m.container != id) {
                if let Some(file) = &other.hosts_file {
                    rewrite(file, |t| set_address(t, me))?;
                }
            }
        }
        if let Some(file) = own_file_path {
            rewrite(&file, |t| own_file(t, id, nets))?;
        }
        Ok(())
    })?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(id: &str, addr: &str, names: &[&str]) -> Member {
        Member {
            container: id.into(),
            address: addr.parse().unwrap(),
            names: names.iter().map(|s| s.to_string()).collect(),
            hosts_file: None,
        }
    }

    #[test]
    fn a_members_new_address_replaces_the_old_in_lines_naming_it() {
        let text = "127.0.0.1\tlocalhost\n10.89.0.2\tweb aaa\n10.89.0.9\tdb\n10.89.0.2\tw web\n";
        let web = m("a", "10.89.0.5", &["web", "aaa"]);
        assert_eq!(
            set_address(text, &web),
            "127.0.0.1\tlocalhost\n10.89.0.5\tweb aaa\n10.89.0.9\tdb\n10.89.0.5\tw web\n"
        );
    }

    #[test]
    fn the_own_file_gets_current_members_and_loses_gone_ones() {
        let nets = [NetworkMembers {
            network: "n".into(),
            subnet: crate::network::Subnet::parse("10.89.0.0/24").unwrap(),
            members: vec![
                m("me", "10.89.0.4", &["me", "c0ffee"]),
                m("db", "10.89.0.7", &["db"]),
                m("new", "10.89.0.8", &["cache"]),
            ],
        }];
        // Written from the spec at creation: its old address, a member
        // since removed, `db` at an old address, an --add-host outside.
        let text = "127.0.0.1\tlocalhost\n10.89.0.2\tc0ffee\n10.89.0.3\tgone\n\
                    10.89.0.6\tdb\n192.168.1.1\tgateway\n";
        assert_eq!(
            own_file(text, "me", &nets),
            "127.0.0.1\tlocalhost\n10.89.0.4\tc0ffee\n10.89.0.7\tdb\n\
             192.168.1.1\tgateway\n10.89.0.8\tcache\n"
        );
    }
}
