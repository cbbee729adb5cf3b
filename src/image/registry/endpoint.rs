//! Which URL serves a registry host, and whether it is spoken to in plain
//! HTTP.
//!
//! Docker's rules: loopback registries (`localhost`, `127.0.0.0/8`, `::1`)
//! and those named with `--insecure-registry` are insecure; everything else is
//! HTTPS. Docker first tries HTTPS without verification on insecure hosts;
//! kiln goes straight to plain HTTP, which is what such registries serve in
//! practice (a local `registry:2` has no TLS), unless `--tls-verify` says
//! otherwise ([`Endpoint::with_tls_verify`]).

use std::net::IpAddr;

/// The registry kiln calls `docker.io` is served from this host.
pub const DOCKER_HUB_HOST: &str = "registry-1.docker.io";
/// The name image references use for Docker Hub.
pub const DOCKER_HUB_NAME: &str = "docker.io";

/// Where one registry is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The registry as image references name it (`docker.io`, `host:5000`).
    pub name: String,
    /// `scheme://host[:port]`, no trailing slash.
    pub base_url: String,
    /// Plain HTTP rather than HTTPS.
    pub insecure: bool,
}

impl Endpoint {
    /// Resolves `registry` (as in [`crate::image::ImageRef::registry`]);
    /// `insecure_hosts` entries match either `host:port` exactly or the bare
    /// host (any port), as docker's `--insecure-registry` does.
    pub fn resolve(registry: &str, insecure_hosts: &[String]) -> Endpoint {
        let name = canonical_registry_name(registry);
        let host = if name == DOCKER_HUB_NAME {
            DOCKER_HUB_HOST.to_string()
        } else {
            name.clone()
        };
        let insecure = is_loopback(&host)
            || insecure_hosts.iter().any(|h| {
                let h = canonical_registry_name(h);
                h == name || h == host_without_port(&host)
            });
        let scheme = if insecure { "http" } else { "https" };
        Endpoint {
            base_url: format!("{scheme}://{host}"),
            name,
            insecure,
        }
    }

    /// Applies podman's `--tls-verify`: `Some(true)` makes every registry
    /// HTTPS with verification, loopback and insecure ones included;
    /// `Some(false)` keeps HTTPS but skips verification, and turns an
    /// insecure registry into HTTPS-then-HTTP (docker's own handling of
    /// insecure registries). Returns the endpoint and whether a plain-HTTP
    /// fallback is allowed.
    pub fn with_tls_verify(mut self, tls_verify: Option<bool>) -> (Endpoint, bool) {
        let fallback = self.insecure && tls_verify == Some(false);
        if self.insecure && tls_verify.is_some() {
            self.base_url = format!("https://{}", self.host());
            self.insecure = false;
        }
        (self, fallback)
    }

    /// `host[:port]` as in the URL (`registry-1.docker.io` for Docker Hub):
    /// the name certs.d directories are looked up by.
    pub fn host(&self) -> &str {
        self.base_url
            .split_once("://")
            .map_or(self.base_url.as_str(), |(_, h)| h)
    }

    /// The `/v2/` API root.
    pub fn v2_url(&self) -> String {
        format!("{}/v2/", self.base_url)
    }
}

/// Normalizes the spellings users and docker's config.json use for a
/// registry: `https://index.docker.io/v1/`, `index.docker.io` and
/// `registry-1.docker.io` are all `docker.io`; a scheme and path are
/// dropped (`https://ghcr.io/v2/` → `ghcr.io`).
pub fn canonical_registry_name(s: &str) -> String {
    let s = s.trim();
    let s = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s);
    let host = s.split('/').next().unwrap_or(s).to_ascii_lowercase();
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            DOCKER_HUB_NAME.to_string()
        }
        _ => host,
    }
}

/// `host` without its `:port`, keeping IPv6 brackets (`[::1]:5000` → `[::1]`).
fn host_without_port(host: &str) -> &str {
    match host.rsplit_once(':') {
        Some((h, p)) if !p.contains(']') && p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

/// Docker treats these as insecure without being told: the registry is on
/// this machine, so TLS protects nothing.
fn is_loopback(host: &str) -> bool {
    let h = host_without_port(host);
    if h.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let bare = h.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => v4.is_loopback(),
        Ok(IpAddr::V6(v6)) => v6.is_loopback(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(registry: &str, insecure: &[&str], url: &str) {
        let insecure: Vec<String> = insecure.iter().map(|s| s.to_string()).collect();
        assert_eq!(
            Endpoint::resolve(registry, &insecure).base_url,
            url,
            "{registry}"
        );
    }

    #[test]
    fn picks_scheme_and_host_like_docker() {
        check("docker.io", &[], "https://registry-1.docker.io");
        check("ghcr.io", &[], "https://ghcr.io");
        check("localhost:5000", &[], "http://localhost:5000");
        check("localhost", &[], "http://localhost");
        check("127.0.0.1:5000", &[], "http://127.0.0.1:5000");
        check("127.8.9.10:1", &[], "http://127.8.9.10:1");
        check("[::1]:5000", &[], "http://[::1]:5000");
        check("10.0.0.1:5000", &[], "https://10.0.0.1:5000");
        check("reg.lan:5000", &["reg.lan:5000"], "http://reg.lan:5000");
        check("reg.lan:5000", &["reg.lan"], "http://reg.lan:5000");
        check("reg.lan:5000", &["reg.lan:6000"], "https://reg.lan:5000");
        check("reg.lan", &["http://reg.lan/"], "http://reg.lan");
    }

    #[test]
    fn tls_verify_overrides_the_scheme() {
        let loopback = Endpoint::resolve("127.0.0.1:5000", &[]);
        assert_eq!(loopback.host(), "127.0.0.1:5000");
        let (e, fallback) = loopback.clone().with_tls_verify(None);
        assert_eq!(
            (e.base_url.as_str(), fallback),
            ("http://127.0.0.1:5000", false)
        );
        let (e, fallback) = loopback.clone().with_tls_verify(Some(true));
        assert_eq!(
            (e.base_url.as_str(), fallback),
            ("https://127.0.0.1:5000", false)
        );
        let (e, fallback) = loopback.with_tls_verify(Some(false));
        assert_eq!(
            (e.base_url.as_str(), fallback),
            ("https://127.0.0.1:5000", true)
        );
        assert!(!e.insecure);
        let (e, fallback) = Endpoint::resolve("ghcr.io", &[]).with_tls_verify(Some(false));
        assert_eq!((e.base_url.as_str(), fallback), ("https://ghcr.io", false));
        assert_eq!(Endpoint::resolve("docker.io", &[]).host(), DOCKER_HUB_HOST);
    }

    #[test]
    fn canonical_names() {
        for (input, want) in [
            ("https://index.docker.io/v1/", "docker.io"),
            ("index.docker.io", "docker.io"),
            ("registry-1.docker.io", "docker.io"),
            ("docker.io", "docker.io"),
            ("https://ghcr.io/v2/", "ghcr.io"),
            ("http://127.0.0.1:5000", "127.0.0.1:5000"),
            ("Quay.IO", "quay.io"),
        ] {
            assert_eq!(canonical_registry_name(input), want, "{input}");
        }
    }
}
