//! Manifests that travel with an image in an image index without being a
//! platform of it (BuildKit's attestation manifests), and the index that
//! puts them after the image's manifests.
//!
//! [`image_index`] is the one place a push or an OCI export assembles an
//! index from platform manifests plus extra descriptors, in BuildKit's
//! order: "attached to the root image index object … after all the
//! original runnable manifests" (moby/buildkit
//! `docs/attestations/attestation-storage.md`; `exporter/containerimage/
//! writer.go`, `Commit`, appends `attestationManifests` last).

use crate::image::oci::{media, Descriptor, Index};
use crate::image::Digest;

/// A manifest attached to an image: its index entry, its bytes and the
/// blobs it refers to (all small, held in memory).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attached {
    pub descriptor: Descriptor,
    pub manifest: Vec<u8>,
    pub blobs: Vec<(Descriptor, Vec<u8>)>,
}

/// What a push or an export attaches to the image manifest it wrote (and
/// is given the descriptor of): nothing by default.
pub type Attach<'a> = &'a dyn Fn(&Descriptor) -> Vec<Attached>;

/// No attachments.
pub fn nothing(_: &Descriptor) -> Vec<Attached> {
    Vec::new()
}

/// An OCI image index of `manifests` (each with its platform) followed by
/// `extra`; its bytes (two-space indented, as BuildKit's `MarshalIndent`)
/// and descriptor.
pub fn image_index(manifests: &[Descriptor], extra: &[Descriptor]) -> (Vec<u8>, Descriptor) {
    let index = Index {
        schema_version: 2,
        media_type: Some(media::OCI_INDEX.to_string()),
        manifests: manifests.iter().chain(extra).cloned().collect(),
        annotations: None,
        extra: Default::default(),
    };
    // Serializing our own struct cannot fail.
    let bytes = serde_json::to_vec_pretty(&index).unwrap_or_default();
    let desc = Descriptor::new(
        media::OCI_INDEX,
        Digest::sha256_of(&bytes),
        bytes.len() as u64,
    );
    (bytes, desc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_descriptors_follow_the_platform_manifests() {
        let m = Descriptor::new(media::OCI_MANIFEST, Digest::sha256_of(b"m"), 1);
        let a = Descriptor::new(media::OCI_MANIFEST, Digest::sha256_of(b"a"), 2);
        let (bytes, desc) = image_index(std::slice::from_ref(&m), std::slice::from_ref(&a));
        let index: Index = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(index.manifests, vec![m, a]);
        assert_eq!(desc.digest, Digest::sha256_of(&bytes));
        assert_eq!(desc.media_type, media::OCI_INDEX);
    }
}
