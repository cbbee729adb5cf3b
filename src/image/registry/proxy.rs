//! Which proxy, if any, a registry request goes through: Go's rules
//! (golang.org/x/net `http/httpproxy/proxy.go`, `Config.ProxyFunc`,
//! `useProxy` and `parse`), which docker, containerd and podman all follow.
//!
//! - `HTTPS_PROXY` for `https://` URLs, `HTTP_PROXY` for `http://`
//!   (upper case first, then lower case); a proxy without a scheme is
//!   `http://`.
//! - Never for `localhost` or a loopback IP, whatever the variables say.
//! - Not for hosts matched by `NO_PROXY`: `*` (everything), an IP, a CIDR
//!   (`10.0.0.0/8`), a domain (`example.com` matches it and its
//!   subdomains), `.example.com` / `*.example.com` (subdomains only), each
//!   optionally with `:PORT`.
//!
//! ureq reads the variables itself, but with one proxy for both schemes and
//! a `NO_PROXY` without IPs, CIDRs, ports or the loopback rule (so
//! `HTTP_PROXY` broke `127.0.0.1` registries); kiln decides here and hands
//! ureq the answer per request.

use std::net::IpAddr;

/// The proxy variables, read once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxyEnv {
    pub http_proxy: Option<String>,
    pub https_proxy: Option<String>,
    pub no_proxy: String,
}

impl ProxyEnv {
    /// From the process environment.
    pub fn from_env() -> ProxyEnv {
        Self::from_lookup(&|k| std::env::var(k).ok())
    }

    /// From any variable lookup (tests).
    pub fn from_lookup(env: &dyn Fn(&str) -> Option<String>) -> ProxyEnv {
        let get = |upper: &str, lower: &str| {
            env(upper)
                .filter(|v| !v.is_empty())
                .or_else(|| env(lower).filter(|v| !v.is_empty()))
        };
        ProxyEnv {
            http_proxy: get("HTTP_PROXY", "http_proxy"),
            https_proxy: get("HTTPS_PROXY", "https_proxy"),
            no_proxy: get("NO_PROXY", "no_proxy").unwrap_or_default(),
        }
    }

    /// The proxy URL for a request to `scheme://host[:port]`, with
    /// `http://` added to a bare `host:port` proxy; `None` for direct.
    pub fn proxy_for(&self, scheme: &str, host: &str, port: Option<u16>) -> Option<String> {
        let (proxy, default_port) = match scheme {
            "https" => (self.https_proxy.as_deref()?, 443),
            "http" => (self.http_proxy.as_deref()?, 80),
            _ => return None,
        };
        if !self.use_proxy(host, port.unwrap_or(default_port)) {
            return None;
        }
        Some(if proxy.contains("://") {
            proxy.to_string()
        } else {
            format!("http://{proxy}")
        })
    }

    /// Go's `useProxy`: false for loopback and `NO_PROXY` matches.
    fn use_proxy(&self, host: &str, port: u16) -> bool {
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        if host == "localhost" {
            return false;
        }
        let ip = host.parse::<IpAddr>().ok();
        if ip.is_some_and(|ip| ip.is_loopback()) {
            return false;
        }
        !self
            .no_proxy
            .split(',')
            .filter_map(NoProxyEntry::parse)
            .any(|e| e.matches(&host, port, ip))
    }
}

/// One `NO_PROXY` entry.
#[derive(Debug, PartialEq)]
enum NoProxyEntry {
    All,
    Cidr {
        net: IpAddr,
        prefix: u8,
    },
    Ip {
        ip: IpAddr,
        port: Option<u16>,
    },
    /// `suffix` starts with `.`; `exact` also matches the bare domain.
    Domain {
        suffix: String,
        exact: bool,
        port: Option<u16>,
    },
}

impl NoProxyEntry {
    fn parse(raw: &str) -> Option<NoProxyEntry> {
        let p = raw.trim().to_ascii_lowercase();
        if p.is_empty() {
            return None;
        }
        if p == "*" {
            return Some(NoProxyEntry::All);
        }
        if let Some((addr, bits)) = p.split_once('/') {
            let net = addr.parse::<IpAddr>().ok()?;
            let prefix = bits.parse::<u8>().ok()?;
            let max = if net.is_ipv4() { 32 } else { 128 };
            return (prefix <= max).then_some(NoProxyEntry::Cidr { net, prefix });
        }
        // A bare IPv6 address has colons but no port.
        if let Ok(ip) = p.parse::<IpAddr>() {
            return Some(NoProxyEntry::Ip { ip, port: None });
        }
        let (host, port) = split_port(&p)?;
        if host.is_empty() {
            // ":80": no host part; Go ignores the entry.
            return None;
        }
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Some(NoProxyEntry::Ip { ip, port });
        }
        let host = host.strip_prefix('*').unwrap_or(host);
        let (suffix, exact) = match host.strip_prefix('.') {
            Some(_) => (host.to_string(), false),
            None => (format!(".{host}"), true),
        };
        Some(NoProxyEntry::Domain {
            suffix,
            exact,
            port,
        })
    }

    fn matches(&self, host: &str, port: u16, ip: Option<IpAddr>) -> bool {
        let port_ok = |want: &Option<u16>| want.is_none_or(|w| w == port);
        match self {
            NoProxyEntry::All => true,
            NoProxyEntry::Cidr { net, prefix } => ip.is_some_and(|ip| in_cidr(ip, *net, *prefix)),
            NoProxyEntry::Ip { ip: want, port: p } => ip == Some(*want) && port_ok(p),
            NoProxyEntry::Domain {
                suffix,
                exact,
                port: p,
            } => {
                (host.ends_with(suffix.as_str()) || (*exact && host == &suffix[1..])) && port_ok(p)
            }
        }
    }
}

/// `host:port`, `[v6]:port` or `host` → (host, port); `None` for a port
/// that is not a number.
fn split_port(s: &str) -> Option<(&str, Option<u16>)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (h, after) = rest.split_once(']')?;
        return match after.strip_prefix(':') {
            Some(p) => Some((h, Some(p.parse().ok()?))),
            None if after.is_empty() => Some((h, None)),
            None => None,
        };
    }
    match s.rsplit_once(':') {
        Some((h, p)) => Some((h, Some(p.parse().ok()?))),
        None => Some((s, None)),
    }
}

fn in_cidr(ip: IpAddr, net: IpAddr, prefix: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(no_proxy: &str) -> ProxyEnv {
        ProxyEnv {
            http_proxy: Some("http://hproxy:3128".into()),
            https_proxy: Some("sproxy:3128".into()),
            no_proxy: no_proxy.into(),
        }
    }

    /// `url` as (scheme, host, port) goes through `want` (None: direct).
    fn check(no_proxy: &str, scheme: &str, host: &str, port: Option<u16>, want: Option<&str>) {
        assert_eq!(
            env(no_proxy).proxy_for(scheme, host, port).as_deref(),
            want,
            "NO_PROXY={no_proxy:?} {scheme}://{host}:{port:?}"
        );
    }

    const H: Option<&str> = Some("http://hproxy:3128");
    const S: Option<&str> = Some("http://sproxy:3128");

    #[test]
    fn scheme_picks_the_variable_and_loopback_is_never_proxied() {
        check("", "https", "ghcr.io", None, S);
        check("", "http", "reg.lan", Some(5000), H);
        for host in [
            "127.0.0.1",
            "127.8.9.10",
            "localhost",
            "LocalHost",
            "[::1]",
            "::1",
        ] {
            check("", "http", host, Some(5000), None);
            check("", "https", host, None, None);
        }
        assert_eq!(
            ProxyEnv::default().proxy_for("https", "ghcr.io", None),
            None
        );
    }

    #[test]
    fn no_proxy_follows_go() {
        // Domains: the name and its subdomains; a leading dot or `*.`:
        // subdomains only.
        check("example.com", "https", "example.com", None, None);
        check("example.com", "https", "a.b.example.com", None, None);
        check("example.com", "https", "notexample.com", None, S);
        check(".example.com", "https", "example.com", None, S);
        check(".example.com", "https", "a.example.com", None, None);
        check("*.example.com", "https", "example.com", None, S);
        check("*.example.com", "https", "a.example.com", None, None);
        check(" Example.COM ", "https", "example.com", None, None);
        // Ports: only that port, with the scheme's default.
        check("example.com:5000", "https", "example.com", Some(5000), None);
        check("example.com:5000", "https", "example.com", None, S);
        check("example.com:443", "https", "example.com", None, None);
        // IPs and CIDRs.
        check("10.1.2.3", "https", "10.1.2.3", Some(5000), None);
        check("10.1.2.3:5000", "https", "10.1.2.3", Some(5001), S);
        check("10.0.0.0/8", "https", "10.200.0.1", None, None);
        check("10.0.0.0/8", "https", "11.0.0.1", None, S);
        check("10.0.0.0/8", "https", "ten.example", None, S);
        check("fd00::/8", "https", "[fd12::1]", None, None);
        check("fd12::1", "https", "[fd12::1]", None, None);
        check("[fd12::1]:5000", "https", "[fd12::1]", Some(5000), None);
        // Everything; lists; garbage entries are skipped.
        check("*", "https", "ghcr.io", None, None);
        check("a.lan,,ghcr.io", "https", "ghcr.io", None, None);
        check(":80,host:notaport,1.2.3.0/99", "https", "ghcr.io", None, S);
    }

    #[test]
    fn upper_case_wins_and_empty_is_unset() {
        let vars = [
            ("HTTPS_PROXY", ""),
            ("https_proxy", "lower:1"),
            ("HTTP_PROXY", "UPPER:2"),
            ("http_proxy", "lower:2"),
            ("no_proxy", "x.lan"),
        ];
        let e = ProxyEnv::from_lookup(&|k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        });
        assert_eq!(e.https_proxy.as_deref(), Some("lower:1"));
        assert_eq!(e.http_proxy.as_deref(), Some("UPPER:2"));
        assert_eq!(e.no_proxy, "x.lan");
    }
}
