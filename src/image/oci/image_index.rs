//! The one place a multi-platform image's index is assembled, for the
//! store, `kiln push` and archives alike: BuildKit's exporter
//! (moby/buildkit `exporter/containerimage/writer.go`, `Commit`) writes an
//! OCI index (`schemaVersion` 2, `mediaType` set) listing each platform's
//! manifest with its `platform`, in the order the platforms were asked
//! for, then any other descriptors (attestation manifests) after them.

use super::{media, Descriptor, Extra, Index, Platform};

/// An OCI image index over `manifests` (each given its platform) followed
/// by `extra` descriptors as they are (e.g. attestation manifests, whose
/// platform is `unknown/unknown`).
pub fn assemble(manifests: &[(Descriptor, Platform)], extra: &[Descriptor]) -> Index {
    let mut all: Vec<Descriptor> = manifests
        .iter()
        .map(|(d, p)| Descriptor {
            platform: Some(p.clone()),
            ..d.clone()
        })
        .collect();
    all.extend(extra.iter().cloned());
    Index {
        schema_version: 2,
        media_type: Some(media::OCI_INDEX.to_string()),
        manifests: all,
        annotations: None,
        extra: Extra::new(),
    }
}

/// The index's bytes as stored and pushed (serde's member order, no
/// whitespace: one digest per index).
pub fn to_bytes(index: &Index) -> Vec<u8> {
    serde_json::to_vec(index).expect("an index always serializes")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::Digest;

    #[test]
    fn platform_manifests_come_first_with_their_platform_then_extras() {
        let d = |s: &str| Descriptor::new(media::OCI_MANIFEST, Digest::sha256_of(s.as_bytes()), 1);
        let arm = Platform::new("linux", "arm64", None);
        let index = assemble(
            &[(d("amd"), Platform::linux_amd64()), (d("arm"), arm.clone())],
            &[d("attestation")],
        );
        let json: serde_json::Value = serde_json::from_slice(&to_bytes(&index)).unwrap();
        assert_eq!(json["mediaType"], media::OCI_INDEX);
        assert_eq!(json["schemaVersion"], 2);
        assert_eq!(json["manifests"][0]["platform"]["architecture"], "amd64");
        assert_eq!(json["manifests"][1]["platform"]["architecture"], "arm64");
        assert!(json["manifests"][2].get("platform").is_none());
    }
}
