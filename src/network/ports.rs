//! docker's `-p`/`--publish` syntax: `[IP:][HOST_PORT:]CONTAINER_PORT[/PROTO]`
//! (docker/go-connections `nat.ParsePortSpec`): a missing IP means every
//! address of the host (0.0.0.0), a missing host port an ephemeral one.

use std::net::Ipv4Addr;

/// The transport a port is published for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// TCP (the default).
    Tcp,
    /// UDP.
    Udp,
}

impl Protocol {
    /// The name iptables and docker use.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

/// One `-p` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PortSpec {
    /// The host address to publish on (0.0.0.0: all of them).
    pub host_ip: Ipv4Addr,
    /// The host port; 0 picks a free one when the container starts.
    pub host_port: u16,
    /// The container's port.
    pub container_port: u16,
    /// The transport.
    pub protocol: Protocol,
}

/// Why a `-p` value was refused; the message says what was expected.
#[derive(Debug, thiserror::Error)]
#[error("invalid value {value:?} for --publish: {reason} (expected [IP:][HOST_PORT:]CONTAINER_PORT[/tcp|udp])")]
pub struct PortSpecError {
    /// The value given.
    pub value: String,
    /// What is wrong with it.
    pub reason: String,
}

impl PortSpec {
    /// Parses one `-p` value.
    pub fn parse(value: &str) -> Result<PortSpec, PortSpecError> {
        let err = |reason: String| PortSpecError {
            value: value.to_string(),
            reason,
        };
        let (rest, protocol) = match value.rsplit_once('/') {
            Some((rest, "tcp")) => (rest, Protocol::Tcp),
            Some((rest, "udp")) => (rest, Protocol::Udp),
            Some((_, proto)) => return Err(err(format!("invalid proto: {proto}"))),
            None => (value, Protocol::Tcp),
        };
        let parts: Vec<&str> = rest.split(':').collect();
        let (ip, host, container) = match parts.as_slice() {
            [c] => ("", "", *c),
            [h, c] => ("", *h, *c),
            [ip, h, c] => (*ip, *h, *c),
            _ => {
                return Err(err(
                    "too many colons (IPv6 addresses are not supported)".into()
                ))
            }
        };
        let port = |text: &str, what: &str| -> Result<u16, PortSpecError> {
            if text.contains('-') {
                return Err(err(format!("port ranges are not supported: {text}")));
            }
            match text.parse::<u16>() {
                Ok(p) if p > 0 => Ok(p),
                _ => Err(err(format!("invalid {what}: {text:?}"))),
            }
        };
        if container.is_empty() {
            return Err(err("no port specified".into()));
        }
        Ok(PortSpec {
            host_ip: match ip {
                "" => Ipv4Addr::UNSPECIFIED,
                ip => ip
                    .parse()
                    .map_err(|_| err(format!("invalid IP address: {ip}")))?,
            },
            host_port: match host {
                "" => 0,
                h => port(h, "hostPort")?,
            },
            container_port: port(container, "containerPort")?,
            protocol,
        })
    }
}

/// docker's spelling of a published port (`docker port`, errors):
/// `127.0.0.1:8080->80/tcp`.
impl std::fmt::Display for PortSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}->{}/{}",
            self.host_ip,
            self.host_port,
            self.container_port,
            self.protocol.name()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(value: &str, ip: [u8; 4], host: u16, container: u16, protocol: Protocol) {
        assert_eq!(
            PortSpec::parse(value).unwrap(),
            PortSpec {
                host_ip: Ipv4Addr::from(ip),
                host_port: host,
                container_port: container,
                protocol
            },
            "{value}"
        );
    }

    #[test]
    fn docker_forms() {
        ok("80", [0; 4], 0, 80, Protocol::Tcp);
        ok("8080:80", [0; 4], 8080, 80, Protocol::Tcp);
        ok("127.0.0.1:8080:80", [127, 0, 0, 1], 8080, 80, Protocol::Tcp);
        ok("127.0.0.1::80/udp", [127, 0, 0, 1], 0, 80, Protocol::Udp);
        ok("53:53/udp", [0; 4], 53, 53, Protocol::Udp);
    }

    #[test]
    fn bad_values_say_what_is_wrong() {
        for (value, says) in [
            ("", "no port specified"),
            ("8080:", "no port specified"),
            ("x:80", "invalid hostPort"),
            ("80:70000", "invalid containerPort"),
            ("1.2.3:80:80", "invalid IP address"),
            ("80/sctp", "invalid proto: sctp"),
            ("8000-8010:80", "port ranges"),
            ("::1:80:80", "too many colons"),
        ] {
            let e = PortSpec::parse(value).unwrap_err().to_string();
            assert!(e.contains(says) && e.contains("--publish"), "{value}: {e}");
        }
    }
}
