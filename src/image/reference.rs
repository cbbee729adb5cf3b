//! Image references as Docker parses them (distribution/reference):
//! `busybox` → `docker.io/library/busybox:latest`,
//! `host:port/ns/name:tag`, `name@sha256:…`, `name:tag@sha256:…`.

use super::digest::Digest;
use crate::error_chain::Chain;
use std::fmt;
use std::str::FromStr;

/// The registry that short names resolve to.
pub const DEFAULT_REGISTRY: &str = "docker.io";
/// Docker Hub's namespace for official images (`busybox` → `library/busybox`).
const OFFICIAL_NAMESPACE: &str = "library";
const DEFAULT_TAG: &str = "latest";
/// distribution/reference's limit on the whole name (registry + path).
const NAME_MAX: usize = 255;

/// A fully-qualified image reference: registry, repository path, and a tag
/// and/or digest. Always normalized, so two spellings of one image compare
/// equal (`busybox` == `docker.io/library/busybox:latest`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImageRef {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

/// Why a string is not a valid image reference; the messages follow
/// docker's ("invalid reference format: …").
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReferenceError {
    #[error("invalid reference format {0:?}: empty reference")]
    Empty(String),
    #[error("invalid reference format {0:?}: repository name must be lowercase")]
    Uppercase(String),
    #[error("invalid reference format {0:?}: repository name component {1:?} must be lowercase letters, digits and single separators (. _ __ -)")]
    BadComponent(String, String),
    #[error("invalid reference format {0:?}: invalid tag {1:?} (expected up to 128 of [A-Za-z0-9_.-], not starting with . or -)")]
    BadTag(String, String),
    #[error("invalid reference format {0:?}: invalid registry host {1:?}")]
    BadRegistry(String, String),
    #[error("invalid reference format {0:?}: {1}")]
    BadDigest(String, String),
    #[error("invalid reference format {0:?}: repository name is longer than 255 characters")]
    TooLong(String),
}

impl ImageRef {
    /// Parses and normalizes like `docker pull` does: a missing tag (and no
    /// digest) becomes `latest`.
    pub fn parse(s: &str) -> Result<ImageRef, ReferenceError> {
        let mut r = Self::parse_unnormalized_tag(s)?;
        if r.tag.is_none() && r.digest.is_none() {
            r.tag = Some(DEFAULT_TAG.to_string());
        }
        Ok(r)
    }

    /// Parses without adding the default tag (for `docker images busybox`
    /// style filters and `rmi` by repository).
    pub fn parse_unnormalized_tag(s: &str) -> Result<ImageRef, ReferenceError> {
        let err_ctx = || s.to_string();
        if s.is_empty() {
            return Err(ReferenceError::Empty(err_ctx()));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => {
                let digest = d
                    .parse::<Digest>()
                    .map_err(|e| ReferenceError::BadDigest(err_ctx(), Chain(&e).to_string()))?;
                (r, Some(digest))
            }
            None => (s, None),
        };
        // A tag is the part after the last ':' if no '/' follows it
        // (otherwise that ':' belongs to a registry port).
        let (name, tag) = match rest.rfind(':') {
            Some(i) if !rest[i + 1..].contains('/') => (&rest[..i], Some(&rest[i + 1..])),
            _ => (rest, None),
        };
        if let Some(t) = tag {
            if !valid_tag(t) {
                return Err(ReferenceError::BadTag(err_ctx(), t.to_string()));
            }
        }
        if name.is_empty() {
            return Err(ReferenceError::Empty(err_ctx()));
        }
        if name.len() > NAME_MAX {
            return Err(ReferenceError::TooLong(err_ctx()));
        }
        let (registry, path) = split_registry(name);
        if let Some(reg) = registry {
            if !valid_registry(reg) {
                return Err(ReferenceError::BadRegistry(err_ctx(), reg.to_string()));
            }
        }
        if path.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(ReferenceError::Uppercase(err_ctx()));
        }
        for component in path.split('/') {
            if !valid_component(component) {
                return Err(ReferenceError::BadComponent(
                    err_ctx(),
                    component.to_string(),
                ));
            }
        }
        let registry = match registry {
            None | Some("index.docker.io") | Some("registry-1.docker.io") => {
                DEFAULT_REGISTRY.to_string()
            }
            Some(r) => r.to_string(),
        };
        let repository = if registry == DEFAULT_REGISTRY && !path.contains('/') {
            format!("{OFFICIAL_NAMESPACE}/{path}")
        } else {
            path.to_string()
        };
        Ok(ImageRef {
            registry,
            repository,
            tag: tag.map(str::to_string),
            digest,
        })
    }

    /// Registry host (and port), e.g. `docker.io` or `127.0.0.1:5000`.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// Repository path within the registry, e.g. `library/busybox`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// `registry/repository`, the name `docker images` groups by.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The name as docker shows it: `busybox`, `myns/app`, `host:5000/app`.
    pub fn familiar_name(&self) -> String {
        if self.registry == DEFAULT_REGISTRY {
            match self.repository.strip_prefix("library/") {
                Some(short) if !short.contains('/') => short.to_string(),
                _ => self.repository.clone(),
            }
        } else {
            self.name()
        }
    }

    /// The whole reference as docker prints it (`busybox:latest`,
    /// `host:5000/app:v1@sha256:...`): the familiar name, then `:tag` and
    /// `@digest` when present (distribution/reference `FamiliarString`).
    pub fn familiar(&self) -> String {
        let mut s = self.familiar_name();
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(&d.to_string());
        }
        s
    }

    /// What to ask the registry for: the digest if pinned, else the tag.
    pub fn registry_reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => DEFAULT_TAG.to_string(),
        }
    }

    /// The same repository with another tag and no digest.
    pub fn with_tag(&self, tag: &str) -> ImageRef {
        ImageRef {
            tag: Some(tag.to_string()),
            digest: None,
            ..self.clone()
        }
    }

    /// The same repository pinned to a digest (tag dropped).
    pub fn with_digest(&self, digest: Digest) -> ImageRef {
        ImageRef {
            tag: None,
            digest: Some(digest),
            ..self.clone()
        }
    }
}

/// Splits a leading registry host off a name, by docker's rule: the first
/// component is a host if it contains `.` or `:` or is `localhost`.
fn split_registry(name: &str) -> (Option<&str>, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            (Some(first), rest)
        }
        _ => (None, name),
    }
}

fn valid_registry(host: &str) -> bool {
    let (h, port) = match host.rsplit_once(':') {
        // An IPv6 literal like [::1]:5000 keeps its brackets in the host part.
        Some((h, p)) if !p.contains(']') => (h, Some(p)),
        _ => (host, None),
    };
    if let Some(p) = port {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    if h.starts_with('[') && h.ends_with(']') {
        return h[1..h.len() - 1].parse::<std::net::Ipv6Addr>().is_ok();
    }
    !h.is_empty()
        && h.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// A path component: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !is_alnum(b[0]) || !is_alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !is_alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// A tag: `[\w][\w.-]{0,127}`.
fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.' || c == b'-')
}

impl FromStr for ImageRef {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ImageRef::parse(s)
    }
}

impl fmt::Display for ImageRef {
    /// The canonical form: `docker.io/library/busybox:latest`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, canonical: &str) {
        let r = ImageRef::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(r.to_string(), canonical, "input {input}");
    }

    #[test]
    fn normalizes_like_docker() {
        check("busybox", "docker.io/library/busybox:latest");
        check("busybox:1.36", "docker.io/library/busybox:1.36");
        check("myns/app", "docker.io/myns/app:latest");
        check("docker.io/busybox", "docker.io/library/busybox:latest");
        check(
            "index.docker.io/library/busybox",
            "docker.io/library/busybox:latest",
        );
        check("localhost/app", "localhost/app:latest");
        check("127.0.0.1:5000/a/b/c:v1", "127.0.0.1:5000/a/b/c:v1");
        check(
            "example.com/app_x.y__z-w---q:T_a.g-1",
            "example.com/app_x.y__z-w---q:T_a.g-1",
        );
        check("[::1]:5000/app", "[::1]:5000/app:latest");
        let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        check(
            &format!("busybox@{d}"),
            &format!("docker.io/library/busybox@{d}"),
        );
        check(
            &format!("busybox:1@{d}"),
            &format!("docker.io/library/busybox:1@{d}"),
        );
    }

    #[test]
    fn accessors() {
        let r = ImageRef::parse("127.0.0.1:5000/ns/app").unwrap();
        assert_eq!(r.registry(), "127.0.0.1:5000");
        assert_eq!(r.repository(), "ns/app");
        assert_eq!(r.tag(), Some("latest"));
        assert_eq!(r.registry_reference(), "latest");
        assert_eq!(r.familiar_name(), "127.0.0.1:5000/ns/app");
        assert_eq!(
            ImageRef::parse("busybox").unwrap().familiar_name(),
            "busybox"
        );
        assert_eq!(ImageRef::parse("a/b").unwrap().familiar_name(), "a/b");
    }

    #[test]
    fn rejects_bad_references() {
        for bad in [
            "",
            ":tag",
            "Busybox",
            "bus box",
            "app:",
            "app:-x",
            "a//b",
            "a/-b",
            "app@sha256:xyz",
            "app@",
            "-app",
            "app.",
            "a___b",
            "host:port/app",
            "/app",
        ] {
            assert!(ImageRef::parse(bad).is_err(), "{bad:?} accepted");
        }
        let long = "a".repeat(256);
        assert!(matches!(
            ImageRef::parse(&long),
            Err(ReferenceError::TooLong(_))
        ));
        let e = ImageRef::parse("Busybox").unwrap_err().to_string();
        assert!(e.contains("must be lowercase"), "{e}");
    }
}
