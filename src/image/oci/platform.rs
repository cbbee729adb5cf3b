//! The platform an image is for (image-spec `image-index.md`'s `platform`
//! object), as the one type the registry client, the archive reader, the
//! image config and the solver's image sources share.
//!
//! Its rules are containerd's (`containerd/platforms`), which BuildKit and
//! docker both use: the spelling `os/arch[/variant]` (`platforms.go`
//! `Parse`/`Format`), the normalization of architecture and variant
//! (`database.go` `normalizeArch`/`normalizeOS`, applied by `Normalize`),
//! and which images run on a host (`compare.go` `Only`: an older variant
//! of a family runs on a newer one).

use serde::{Deserialize, Serialize};
use std::fmt;
use thiserror::Error;

use super::Extra;

/// An OS, architecture and variant (`linux/arm64/v8`), with the OCI JSON
/// shape: `architecture`, `os`, `os.version`, `os.features`, `variant`,
/// and any other member kept in `extra` (so an index read and written back
/// keeps its bytes' meaning).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    /// The OS version (Windows' `10.0.17763.1`); linux images leave it out.
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    /// Required OS features (Windows' `win32k`).
    #[serde(
        rename = "os.features",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_features: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// A `--platform` value that is not `os/arch[/variant]`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid platform {spec:?}: expected os/arch[/variant], e.g. linux/arm64/v8")]
pub struct PlatformError {
    /// The value as given.
    pub spec: String,
}

impl std::hash::Hash for Platform {
    /// The fields a platform is told apart by; `extra` (JSON values, which
    /// cannot be hashed) only ever distinguishes what `Eq` does too.
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.os.hash(state);
        self.architecture.hash(state);
        self.variant.hash(state);
        self.os_version.hash(state);
        self.os_features.hash(state);
    }
}

impl Platform {
    /// A platform with no OS version, features or extra members.
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Platform {
        Platform {
            architecture: architecture.to_string(),
            os: os.to_string(),
            os_version: None,
            os_features: None,
            variant: variant.map(str::to_string),
            extra: Extra::new(),
        }
    }

    /// `linux/amd64`.
    pub fn linux_amd64() -> Platform {
        Platform::new("linux", "amd64", None)
    }

    /// The machine kiln runs on: linux and the host's architecture.
    pub fn host() -> Platform {
        Platform::new("linux", host_architecture(), None)
    }

    /// Parses `os/arch[/variant]` (`linux/arm64/v8`), lower-cased but not
    /// normalized, so that messages repeat what the user wrote; matching
    /// normalizes. containerd's `Parse` also takes a lone `os` or `arch`;
    /// kiln's flags have always asked for both.
    pub fn parse(spec: &str) -> Result<Platform, PlatformError> {
        let err = || PlatformError {
            spec: spec.to_string(),
        };
        let parts: Vec<&str> = spec.split('/').collect();
        if !(2..=3).contains(&parts.len()) || parts.iter().any(|p| p.is_empty()) {
            return Err(err());
        }
        let lower = |s: &str| s.to_ascii_lowercase();
        Ok(Platform::new(
            &lower(parts[0]),
            &lower(parts[1]),
            parts.get(2).map(|v| lower(v)).as_deref(),
        ))
    }

    /// containerd's `Normalize`: OS and architecture lower-cased, `macos`
    /// is `darwin`, architecture aliases resolved and each family's default
    /// variant spelled one way (`normalizeArch` in containerd/platforms
    /// `database.go`): `x86_64`/`x86-64` are amd64 (whose `v1` is no
    /// variant), `aarch64` is arm64 (whose `8`/`v8`/`v8.0` is no variant,
    /// `9`/`9.0`/`v9.0` is `v9`), `i386` is 386, `armhf` is arm/v7, `armel`
    /// arm/v6, and arm's variants are `v5`..`v8` (none meaning `v7`).
    pub fn normalized(&self) -> Platform {
        let os = match self.os.to_ascii_lowercase().as_str() {
            "" => "linux".to_string(),
            "macos" => "darwin".to_string(),
            os => os.to_string(),
        };
        let arch = self.architecture.to_ascii_lowercase();
        let variant = self
            .variant
            .as_deref()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let (arch, variant) = match arch.as_str() {
            "i386" => ("386".to_string(), String::new()),
            "x86_64" | "x86-64" | "amd64" => {
                let v = if variant == "v1" {
                    String::new()
                } else {
                    variant
                };
                ("amd64".to_string(), v)
            }
            "aarch64" | "arm64" => {
                let v = match variant.as_str() {
                    "8" | "v8" | "v8.0" => String::new(),
                    "9" | "9.0" | "v9.0" => "v9".to_string(),
                    _ => variant,
                };
                ("arm64".to_string(), v)
            }
            "armhf" => ("arm".to_string(), "v7".to_string()),
            "armel" => ("arm".to_string(), "v6".to_string()),
            "arm" => {
                let v = match variant.as_str() {
                    "" | "7" => "v7".to_string(),
                    "5" | "6" | "8" => format!("v{variant}"),
                    _ => variant,
                };
                ("arm".to_string(), v)
            }
            _ => (arch, variant),
        };
        Platform {
            architecture: arch,
            os,
            variant: (!variant.is_empty()).then_some(variant),
            ..self.clone()
        }
    }

    /// How well an image for `self` runs on `host`: `None` if it cannot,
    /// else higher is better (an exact variant beats an older compatible
    /// one). As containerd's `Only` matcher: the OS and normalized
    /// architecture must be equal; within the amd64 (levels v1–v4), arm64
    /// (v8, v9, ...) and arm (v5–v8) families any level up to the host's
    /// runs; other variants must be equal.
    pub fn runs_on(&self, host: &Platform) -> Option<u32> {
        let (image, host) = (self.normalized(), host.normalized());
        if image.os != host.os || image.architecture != host.architecture {
            return None;
        }
        match (image.level(), host.level()) {
            (Some(l), Some(h)) if l <= h => Some(l),
            (Some(_), Some(_)) => None,
            _ if image.variant == host.variant => Some(0),
            _ => None,
        }
    }

    /// The variant's level within a leveled family (of a normalized
    /// platform): amd64's none is v1, arm64's none v8; `None` for a variant
    /// that is not `v<N>` or an architecture without levels.
    fn level(&self) -> Option<u32> {
        let default = match self.architecture.as_str() {
            "amd64" => 1,
            "arm64" => 8,
            "arm" => 7,
            _ => return None,
        };
        match self.variant.as_deref() {
            None => Some(default),
            Some(v) => v.strip_prefix('v').and_then(|n| n.parse().ok()),
        }
    }
}

/// containerd's `Format`: `os/arch`, then `/variant` when there is one.
impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        match &self.variant {
            Some(v) if !v.is_empty() => write!(f, "/{v}"),
            _ => Ok(()),
        }
    }
}

/// The OCI architecture name of the machine kiln runs on (Go's GOARCH
/// spelling, which OCI adopted).
pub fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        "loongarch64" => "loong64",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn normalizes(spec: &str, expected: &str) {
        let p = Platform::parse(spec).expect("valid platform");
        assert_eq!(p.normalized().to_string(), expected, "{spec}");
    }

    /// Per containerd/platforms `database.go` `normalizeArch`/`normalizeOS`.
    #[test]
    fn normalizes_like_containerd() {
        normalizes("linux/x86_64", "linux/amd64");
        normalizes("linux/x86-64/v1", "linux/amd64");
        normalizes("linux/amd64/v3", "linux/amd64/v3");
        normalizes("linux/aarch64", "linux/arm64");
        normalizes("linux/arm64/v8", "linux/arm64");
        normalizes("linux/arm64/8", "linux/arm64");
        normalizes("linux/arm64/v8.0", "linux/arm64");
        normalizes("linux/aarch64/9.0", "linux/arm64/v9");
        normalizes("linux/arm64/v8.2", "linux/arm64/v8.2");
        normalizes("linux/arm", "linux/arm/v7");
        normalizes("linux/arm/6", "linux/arm/v6");
        normalizes("linux/armhf", "linux/arm/v7");
        normalizes("linux/armel", "linux/arm/v6");
        normalizes("linux/i386", "linux/386");
        normalizes("MacOS/ARM64", "darwin/arm64");
        normalizes("windows/s390x", "windows/s390x");
    }

    #[test]
    fn parse_asks_for_os_and_architecture() {
        for bad in [
            "",
            "linux",
            "linux/",
            "/amd64",
            "linux/amd64/",
            "a/b/c/d",
            "linux//v7",
        ] {
            let e = Platform::parse(bad).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!(
                    "invalid platform {bad:?}: expected os/arch[/variant], e.g. linux/arm64/v8"
                )
            );
        }
        assert_eq!(
            Platform::parse("Linux/ARM64/V8").unwrap(),
            Platform::new("linux", "arm64", Some("v8"))
        );
    }

    #[test]
    fn json_has_the_oci_shape_and_keeps_unknown_members() {
        let text = r#"{"architecture":"amd64","os":"windows","os.version":"10.0.17763.1","os.features":["win32k"],"variant":"v2","x-vendor":1}"#;
        let p: Platform = serde_json::from_str(text).unwrap();
        assert_eq!(p.os_version.as_deref(), Some("10.0.17763.1"));
        assert_eq!(p.os_features, Some(vec!["win32k".to_string()]));
        assert_eq!(p.to_string(), "windows/amd64/v2");
        assert_eq!(serde_json::to_string(&p).unwrap(), text);
        assert_eq!(
            serde_json::to_string(&Platform::linux_amd64()).unwrap(),
            r#"{"architecture":"amd64","os":"linux"}"#
        );
    }

    #[test]
    fn older_variants_of_a_family_run_on_newer_hosts() {
        let p = |s| Platform::parse(s).unwrap();
        assert_eq!(p("linux/amd64/v2").runs_on(&p("linux/amd64/v3")), Some(2));
        assert_eq!(p("linux/amd64/v3").runs_on(&p("linux/amd64")), None);
        assert_eq!(p("linux/arm/v6").runs_on(&p("linux/armhf")), Some(6));
        assert_eq!(p("linux/arm64/v9").runs_on(&p("linux/aarch64")), None);
        assert_eq!(p("linux/riscv64/x").runs_on(&p("linux/riscv64")), None);
        assert_eq!(p("linux/amd64").runs_on(&p("windows/amd64")), None);
    }
}
