//! Manifest media types a registry may answer with, the manifest as
//! fetched, and choosing one platform's manifest from an index.

use super::RegistryError;
use crate::error_chain::Chain;
use crate::image::oci::media::{
    self, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST,
};
use crate::image::oci::Platform;
use crate::image::Digest;

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
        media::is_index(&self.media_type)
    }
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
        if let Some(score) = p.runs_on(wanted) {
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
