//! Package URLs (github.com/package-url/purl-spec): how attestations name
//! images (`pkg:docker/...`) and packages (`pkg:deb/...`, `pkg:npm/...`).
//!
//! Escaping follows packageurl-go's `ToString`, which BuildKit and syft use:
//! namespace segments, name and version path-escaped (Go's `url.PathEscape`
//! but `@` too, so a scoped npm package reads `pkg:npm/%40babel/core`),
//! qualifier values query-escaped but for `:` (`linux%2Famd64`, and a
//! digest stays `sha256:...` as in BuildKit's `TestRefToPURL`), qualifiers
//! sorted by key.

use crate::image::oci::Platform;
use crate::image::ImageRef;

/// A package URL being assembled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Purl {
    pub kind: String,
    pub namespace: Vec<String>,
    pub name: String,
    pub version: Option<String>,
    pub qualifiers: Vec<(String, String)>,
}

impl Purl {
    /// `pkg:KIND/NAME@VERSION` without namespace or qualifiers.
    pub fn new(kind: &str, name: &str, version: Option<&str>) -> Purl {
        Purl {
            kind: kind.to_string(),
            namespace: Vec::new(),
            name: name.to_string(),
            version: version.filter(|v| !v.is_empty()).map(str::to_string),
            qualifiers: Vec::new(),
        }
    }

    /// The same with a namespace (`debian`, `@scope`).
    pub fn in_namespace(mut self, namespace: &str) -> Purl {
        self.namespace = namespace
            .split('/')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        self
    }

    /// Adds a qualifier unless its value is empty.
    pub fn with(mut self, key: &str, value: &str) -> Purl {
        if !value.is_empty() {
            self.qualifiers.push((key.to_string(), value.to_string()));
        }
        self
    }
}

impl std::fmt::Display for Purl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pkg:{}/", self.kind)?;
        for ns in &self.namespace {
            write!(f, "{}/", path_escape(ns))?;
        }
        f.write_str(&path_escape(&self.name))?;
        if let Some(v) = &self.version {
            write!(f, "@{}", path_escape(v))?;
        }
        let mut q = self.qualifiers.clone();
        q.sort();
        for (i, (k, v)) in q.iter().enumerate() {
            let sep = if i == 0 { '?' } else { '&' };
            write!(f, "{sep}{k}={}", query_escape(v))?;
        }
        Ok(())
    }
}

/// An image reference as BuildKit names it in attestations (moby/buildkit
/// `util/purl/image.go`, `RefToPURL`): the familiar name split into
/// namespace and name, the tag as version (`latest` when there is none and
/// no digest), the digest and the platform as qualifiers.
pub fn image(reference: &ImageRef, platform: Option<&Platform>) -> String {
    let familiar = reference.familiar_name();
    let (ns, name) = match familiar.rsplit_once('/') {
        Some((ns, name)) => (ns.to_string(), name.to_string()),
        None => (String::new(), familiar.clone()),
    };
    let version = match (reference.tag(), reference.digest()) {
        (Some(t), _) => Some(t.to_string()),
        (None, Some(_)) => None,
        (None, None) => Some("latest".to_string()),
    };
    let mut p = Purl::new("docker", &name, version.as_deref());
    p.namespace = ns
        .split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if let Some(d) = reference.digest() {
        p = p.with("digest", &d.to_string());
    }
    if let Some(pl) = platform {
        p = p.with("platform", &pl.normalized().to_string());
    }
    p.to_string()
}

/// Everything but unreserved characters and `$&+:=` is `%XX`.
fn path_escape(s: &str) -> String {
    let keep = |c: u8| {
        c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'-' | b'_' | b'.' | b'~' | b'$' | b'&' | b'+' | b':' | b'='
            )
    };
    escape(s, keep, false)
}

/// Go's `url.QueryEscape` (space as `+`), `:` kept.
fn query_escape(s: &str) -> String {
    let keep = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'~' | b':');
    escape(s, keep, true)
}

fn escape(s: &str, keep: impl Fn(u8) -> bool, space_plus: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if keep(b) {
            out.push(b as char);
        } else if b == b' ' && space_plus {
            out.push('+');
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> ImageRef {
        ImageRef::parse(s).unwrap()
    }

    /// moby/buildkit `util/purl/image_test.go`, `TestRefToPURL`.
    #[test]
    fn image_purls_match_buildkit() {
        assert_eq!(image(&r("alpine"), None), "pkg:docker/alpine@latest");
        assert_eq!(
            image(&r("library/alpine:3.15"), None),
            "pkg:docker/alpine@3.15"
        );
        assert_eq!(image(&r("user/test:v2"), None), "pkg:docker/user/test@v2");
        assert_eq!(
            image(&r("ghcr.io/foo/bar"), None),
            "pkg:docker/ghcr.io/foo/bar@latest"
        );
        let p = Platform::linux_amd64();
        assert_eq!(
            image(&r("busybox"), Some(&p)),
            "pkg:docker/busybox@latest?platform=linux%2Famd64"
        );
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            image(&r(&format!("busybox@{d}")), Some(&p)),
            format!("pkg:docker/busybox?digest={d}&platform=linux%2Famd64")
        );
    }

    #[test]
    fn package_purls_escape_like_packageurl_go() {
        let p = Purl::new("deb", "libc6", Some("2.36-9+deb12u4"))
            .in_namespace("debian")
            .with("distro", "debian-12")
            .with("arch", "amd64");
        assert_eq!(
            p.to_string(),
            "pkg:deb/debian/libc6@2.36-9+deb12u4?arch=amd64&distro=debian-12"
        );
        let p = Purl::new("npm", "core", Some("7.0.0")).in_namespace("@babel");
        assert_eq!(p.to_string(), "pkg:npm/%40babel/core@7.0.0");
        let p = Purl::new("deb", "x", Some("1:2 3/4"));
        assert_eq!(p.to_string(), "pkg:deb/x@1:2%203%2F4");
    }
}
