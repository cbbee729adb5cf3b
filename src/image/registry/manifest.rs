//! Manifest media types a registry may answer with, the manifest as
//! fetched, and choosing one platform's manifest from an index.

use super::RegistryError;
use crate::error_chain::Chain;
use crate::image::Digest;
use std::fmt;

/// OCI image manifest (image-spec `manifest.md`).
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index (image-spec `image-index.md`).
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker image manifest v2, schema 2.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list (schema 2's index).
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// Everything kiln reads, sent as `Accept` so registries do not fall back
/// to converting to schema 1.
pub const ACCEPTED: [&str; 4] = [
    OCI_INDEX,
    DOCKER_MANIFEST_LIST,
    OCI_MANIFEST,
    DOCKER_MANIFEST,
];

/// Manifests larger than this are refused, as containerd does: a real
/// manifest is a few KiB, and the body is held in memory.
pub const MAX_MANIFEST_SIZE: u64 = 4 * 1024 * 1024;

/// A manifest exactly as the registry sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedManifest {
    /// The bytes; their sha256 is `digest`, so they must be stored unchanged.
    pub bytes: Vec<u8>,
    /// One of [`ACCEPTED`].
    pub media_type: String,
    pub digest: Digest,
}

impl FetchedManifest {
    /// An index or manifest list, to be narrowed with [`select_platform`].
    pub fn is_index(&self) -> bool {
        is_index(&self.media_type)
    }
}

/// Whether `media_type` names an index or manifest list.
pub fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_MANIFEST_LIST
}

/// Whether kiln can read manifests of this media type.
pub fn is_supported(media_type: &str) -> bool {
    ACCEPTED.contains(&media_type)
}

/// The media type of a manifest whose `Content-Type` was missing or
/// generic: its `mediaType` field, else its shape (OCI makes the field
/// optional; `manifests` means an index, `layers` a manifest).
pub(crate) fn sniff_media_type(bytes: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    if let Some(mt) = v.get("mediaType").and_then(|m| m.as_str()) {
        return Some(mt.to_string());
    }
    if v.get("manifests").is_some() {
        Some(OCI_INDEX.to_string())
    } else if v.get("layers").is_some() {
        Some(OCI_MANIFEST.to_string())
    } else {
        None
    }
}

/// An OS/architecture/variant triple, as in an index's `platform`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    #[serde(default)]
    pub variant: Option<String>,
}

impl Platform {
    /// What kiln runs: linux/amd64.
    pub fn linux_amd64() -> Platform {
        Platform {
            os: "linux".into(),
            architecture: "amd64".into(),
            variant: None,
        }
    }

    /// Parses `os/arch[/variant]`, e.g. `linux/arm64/v8`.
    pub fn parse(s: &str) -> Option<Platform> {
        let mut parts = s.split('/');
        let os = parts.next().filter(|p| !p.is_empty())?;
        let arch = parts.next().filter(|p| !p.is_empty())?;
        let variant = parts.next().filter(|p| !p.is_empty());
        if parts.next().is_some() {
            return None;
        }
        Some(Platform {
            os: os.to_ascii_lowercase(),
            architecture: arch.to_ascii_lowercase(),
            variant: variant.map(str::to_ascii_lowercase),
        })
    }

    /// Architecture and variant as containerd normalizes them
    /// (`x86_64` → amd64, `aarch64` → arm64, `armhf` → arm/v7), with the
    /// variant's compatibility level: amd64 microarchitecture levels v1–v4
    /// (none = v1), arm64 v8+ (none = v8), arm v5–v7 (none = v7).
    fn normalized(&self) -> (String, String, Option<u32>) {
        let arch = self.architecture.to_ascii_lowercase();
        let variant = self
            .variant
            .clone()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let (arch, variant) = match arch.as_str() {
            "x86_64" | "x86-64" => ("amd64".to_string(), variant),
            "aarch64" => ("arm64".to_string(), variant),
            "armhf" => ("arm".to_string(), "v7".to_string()),
            "armel" => ("arm".to_string(), "v6".to_string()),
            "i386" | "i686" => ("386".to_string(), variant),
            _ => (arch, variant),
        };
        let default = match arch.as_str() {
            "amd64" => Some(1),
            "arm64" => Some(8),
            "arm" => Some(7),
            _ => None,
        };
        let level = default.and_then(|d| {
            if variant.is_empty() {
                Some(d)
            } else {
                variant.strip_prefix('v').and_then(|n| n.parse().ok())
            }
        });
        (arch, variant, level)
    }

    /// How well an image for `self` runs on `host`: `None` if it cannot,
    /// else higher is better (an exact variant beats an older compatible
    /// one). Rules follow containerd's platform matcher.
    fn score_on(&self, host: &Platform) -> Option<u32> {
        if !self.os.eq_ignore_ascii_case(&host.os) {
            return None;
        }
        let (arch, variant, level) = self.normalized();
        let (host_arch, host_variant, host_level) = host.normalized();
        if arch != host_arch {
            return None;
        }
        match (level, host_level) {
            // Leveled families: any level up to the host's runs.
            (Some(l), Some(h)) if l <= h => Some(l),
            (Some(_), Some(_)) => None,
            // Unknown variants must be equal.
            _ if variant == host_variant => Some(0),
            _ => None,
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        match &self.variant {
            Some(v) if !v.is_empty() => write!(f, "/{v}"),
            _ => Ok(()),
        }
    }
}

/// One entry of an index: the manifest to fetch next.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IndexEntry {
    #[serde(default)]
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default)]
    pub platform: Option<Platform>,
}

/// Chooses from an index (OCI index or Docker manifest list) the manifest
/// that runs best on `wanted`; among equals the first listed wins, as the
/// image-spec says indexes are ordered by preference.
pub fn select_platform(index: &[u8], wanted: &Platform) -> Result<IndexEntry, RegistryError> {
    #[derive(serde::Deserialize)]
    struct Index {
        #[serde(default)]
        manifests: Vec<IndexEntry>,
    }
    let index: Index = serde_json::from_slice(index)
        .map_err(|e| RegistryError::BadIndex(Chain(&e).to_string()))?;
    let mut best: Option<(u32, &IndexEntry)> = None;
    for entry in &index.manifests {
        let Some(p) = &entry.platform else { continue };
        if let Some(score) = p.score_on(wanted) {
            if best.is_none_or(|(s, _)| score > s) {
                best = Some((score, entry));
            }
        }
    }
    match best {
        Some((_, e)) => Ok(e.clone()),
        None => {
            let available: Vec<String> = index
                .manifests
                .iter()
                .filter_map(|e| e.platform.as_ref().map(|p| p.to_string()))
                .collect();
            Err(RegistryError::NoMatchingPlatform {
                wanted: wanted.to_string(),
                available: if available.is_empty() {
                    "no platforms".into()
                } else {
                    available.join(", ")
                },
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds an index of `platforms` (digest i = entry i) and checks which
    /// entry `wanted` selects (`None` = error).
    fn check(platforms: &[&str], wanted: &str, want: Option<usize>) {
        let entries: Vec<String> = platforms
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let mut parts = p.split('/');
                let os = parts.next().unwrap();
                let arch = parts.next().unwrap();
                let variant = parts
                    .next()
                    .map(|v| format!(r#","variant":"{v}""#))
                    .unwrap_or_default();
                format!(
                    r#"{{"mediaType":"{OCI_MANIFEST}","digest":"sha256:{i:064x}","size":1,"platform":{{"os":"{os}","architecture":"{arch}"{variant}}}}}"#
                )
            })
            .collect();
        let index = format!(
            r#"{{"schemaVersion":2,"manifests":[{}]}}"#,
            entries.join(",")
        );
        let got = select_platform(index.as_bytes(), &Platform::parse(wanted).unwrap());
        let got = got.ok().map(|e| {
            let hex = e.digest.hex().to_string();
            usize::from_str_radix(&hex, 16).unwrap()
        });
        assert_eq!(got, want, "{platforms:?} for {wanted}");
    }

    #[test]
    fn selects_platforms_like_containerd() {
        check(&["linux/arm64", "linux/amd64"], "linux/amd64", Some(1));
        check(&["linux/amd64/v3", "linux/amd64"], "linux/amd64", Some(1));
        check(
            &["linux/amd64/v2", "linux/amd64"],
            "linux/amd64/v3",
            Some(0),
        );
        check(&["linux/amd64/v1"], "linux/amd64", Some(0));
        check(&["linux/x86_64"], "linux/amd64", Some(0));
        check(&["linux/arm/v6", "linux/arm/v7"], "linux/arm/v7", Some(1));
        check(&["linux/arm/v6"], "linux/arm", Some(0));
        check(&["linux/arm/v7"], "linux/arm/v6", None);
        check(&["linux/arm64/v8"], "linux/arm64", Some(0));
        check(&["linux/arm64"], "linux/aarch64/v8", Some(0));
        check(&["windows/amd64", "unknown/unknown"], "linux/amd64", None);
        check(&["linux/amd64", "linux/amd64"], "linux/amd64", Some(0));
        check(&["linux/s390x"], "linux/s390x", Some(0));
        check(&["linux/riscv64/x"], "linux/riscv64", None);
    }

    #[test]
    fn error_lists_what_is_there() {
        let index = format!(
            r#"{{"manifests":[{{"digest":"sha256:{}","size":1,"platform":{{"os":"linux","architecture":"arm64","variant":"v8"}}}}]}}"#,
            "a".repeat(64)
        );
        let e = select_platform(index.as_bytes(), &Platform::linux_amd64()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "no image for linux/amd64 in the index (it has: linux/arm64/v8)"
        );
        assert!(select_platform(b"[]", &Platform::linux_amd64()).is_err());
    }

    #[test]
    fn sniffs_media_types() {
        assert_eq!(
            sniff_media_type(br#"{"mediaType":"x/y"}"#).as_deref(),
            Some("x/y")
        );
        assert_eq!(
            sniff_media_type(br#"{"manifests":[]}"#).as_deref(),
            Some(OCI_INDEX)
        );
        assert_eq!(
            sniff_media_type(br#"{"layers":[]}"#).as_deref(),
            Some(OCI_MANIFEST)
        );
        assert_eq!(sniff_media_type(b"{}"), None);
    }
}
