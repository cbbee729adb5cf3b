//! A container's identity and its directory on the host.
//!
//! Layout of a state dir (the caller chooses where; `kiln run` uses
//! `<root>/containers/<id>/`):
//!
//! ```text
//! upper/        the container's writes (what a build step snapshots)
//! work/         overlayfs scratch space
//! rootfs/       merged mount point — mounted only in the container's
//!               mount namespace, so it is empty seen from the host
//! empty/        lower layer for a container without layers
//! hosts hostname resolv.conf   bind-mounted over /etc/*
//! ```

use super::spec::{ContainerSpec, Network, NetworkFiles};
use std::path::Path;

/// Why the state dir could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Creating a directory or writing a file failed.
    #[error("failed to prepare {path}")]
    Io {
        /// The path.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// No randomness for an id.
    #[error("failed to generate a container id")]
    Random(#[source] std::io::Error),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StateError + '_ {
    move |source| StateError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// A fresh container id: 64 random hex digits, like docker's.
pub fn new_container_id() -> Result<String, StateError> {
    let mut bytes = [0u8; 32];
    let mut filled = 0;
    while filled < bytes.len() {
        match rustix::rand::getrandom(&mut bytes[filled..], rustix::rand::GetRandomFlags::empty()) {
            Ok(n) => filled += n,
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(StateError::Random(e.into())),
        }
    }
    Ok(hex::encode(bytes))
}

/// The default hostname for a container: the id's first 12 hex digits.
pub fn short_id(id: &str) -> &str {
    &id[..id.len().min(12)]
}

/// Creates the state dir's subdirectories and network files for `spec`.
pub fn prepare(spec: &ContainerSpec) -> Result<(), StateError> {
    let root = &spec.rootfs;
    for dir in [root.upper_dir(), root.work_dir(), root.merged_dir()] {
        std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
    }
    if root.lowers.is_empty() {
        let empty = root.state_dir.join("empty");
        std::fs::create_dir_all(&empty).map_err(io_err(&empty))?;
    }
    match spec.network_files {
        NetworkFiles::Own => {}
        NetworkFiles::Docker => {
            write(
                &root.state_dir.join("hostname"),
                &format!("{}\n", spec.hostname),
            )?;
            let mut hosts = format!("{}{}", hosts(spec.network), own_name(&spec.hostname));
            for line in &spec.network_extras.hosts {
                hosts.push_str(line);
                hosts.push('\n');
            }
            write(&root.state_dir.join("hosts"), &hosts)?;
            let resolv = resolv_conf(spec.network);
            let resolv = match spec.network_extras.nameservers.as_slice() {
                [] => resolv,
                servers => with_nameservers(&resolv, servers),
            };
            write(&root.state_dir.join("resolv.conf"), &resolv)?;
        }
        NetworkFiles::Sandbox => {
            // BuildKit appends the ExecOp's extra hosts after its own lines
            // (moby/buildkit `executor/oci/hosts.go`, `makeHostsFile`).
            let mut hosts = sandbox_hosts(&spec.hostname);
            for line in &spec.network_extras.hosts {
                hosts.push_str(line);
                hosts.push('\n');
            }
            write(&root.state_dir.join("hosts"), &hosts)?;
            write(
                &root.state_dir.join("resolv.conf"),
                &resolv_conf(spec.network),
            )?;
        }
    }
    Ok(())
}

/// The files [`prepare`] writes for `files`, by name under `/etc`.
pub fn network_file_names(files: NetworkFiles) -> &'static [&'static str] {
    match files {
        NetworkFiles::Own => &[],
        NetworkFiles::Docker => &["hosts", "hostname", "resolv.conf"],
        NetworkFiles::Sandbox => &["hosts", "resolv.conf"],
    }
}

/// BuildKit's `/etc/hosts` for RUN (executor/oci `initHostsFile`), whatever
/// the network.
fn sandbox_hosts(hostname: &str) -> String {
    format!("127.0.0.1\tlocalhost {hostname}\n::1\tlocalhost ip6-localhost ip6-loopback\n")
}

fn write(path: &Path, contents: &str) -> Result<(), StateError> {
    std::fs::write(path, contents).map_err(io_err(path))
}

/// `/etc/hosts`: the host's with `--network host` (docker copies it), the
/// loopback names otherwise.
fn hosts(network: Network) -> String {
    const LOOPBACK: &str = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
        fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n";
    match network {
        Network::Host => {
            std::fs::read_to_string("/etc/hosts").unwrap_or_else(|_| LOOPBACK.to_string())
        }
        Network::None | Network::Slirp | Network::Join(_) => LOOPBACK.to_string(),
    }
}

/// The container's own name in its `/etc/hosts`, so `hostname -f` and
/// anything resolving the hostname works (docker adds `IP hostname` for
/// each network; kiln's networks have only loopback, and Debian's
/// address for a name without one, 127.0.1.1, is on it).
fn own_name(hostname: &str) -> String {
    format!("127.0.1.1\t{hostname}\n")
}

/// `/etc/resolv.conf`: copied from the host, as docker does; an empty file
/// when the host has none. Behind slirp4netns the host's nameservers may
/// be loopback addresses the namespace cannot reach: slirp's own DNS
/// forwarder (10.0.2.3) resolves through the host instead.
fn resolv_conf(network: Network) -> String {
    match network {
        Network::Slirp => format!("nameserver {}\n", super::slirp::DNS),
        Network::Host | Network::None | Network::Join(_) => {
            std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default()
        }
    }
}

/// docker's `--dns`: `servers` replace the nameservers of `resolv`, its
/// `search` and `options` lines stay (moby `libnetwork/resolvconf`,
/// `Build`).
fn with_nameservers(resolv: &str, servers: &[String]) -> String {
    let mut out: String = servers
        .iter()
        .map(|s| format!("nameserver {s}\n"))
        .collect();
    for line in resolv.lines() {
        let word = line.split_whitespace().next().unwrap_or_default();
        if word == "search" || word == "options" {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Removes a state dir; nothing is mounted in it on the host side.
pub fn remove(state_dir: &Path) -> Result<(), StateError> {
    match std::fs::remove_dir_all(state_dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_err(state_dir)(e)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_64_hex_and_differ() {
        let a = new_container_id().unwrap();
        let b = new_container_id().unwrap();
        assert_eq!(a.len(), 64);
        assert!(a
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(a, b);
        assert_eq!(short_id(&a), &a[..12]);
    }

    #[test]
    fn sandbox_hosts_names_the_hostname_on_loopback() {
        assert_eq!(
            sandbox_hosts("buildkitsandbox"),
            "127.0.0.1\tlocalhost buildkitsandbox\n::1\tlocalhost ip6-localhost ip6-loopback\n"
        );
    }

    #[test]
    fn dns_replaces_the_nameservers_and_keeps_search_and_options() {
        let host = "# comment\nnameserver 127.0.0.53\nsearch example.org\noptions ndots:2\n";
        assert_eq!(
            with_nameservers(host, &["192.0.2.53".to_string(), "192.0.2.54".to_string()]),
            "nameserver 192.0.2.53\nnameserver 192.0.2.54\nsearch example.org\noptions ndots:2\n"
        );
    }

    #[test]
    fn none_network_hosts_has_only_loopback() {
        let h = hosts(Network::None);
        assert!(h.starts_with("127.0.0.1\tlocalhost\n"));
        assert_eq!(h.lines().count(), 6);
    }
}
