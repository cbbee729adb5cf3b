//! The attestation manifest: the statements about one image manifest,
//! stored as an image manifest beside it in an index (moby/buildkit
//! `docs/attestations/attestation-storage.md`; `exporter/containerimage/
//! writer.go`, `commitAttestationsManifest` and `attestationsConfig`).
//!
//! Each statement is one layer (`application/vnd.in-toto+json`, annotated
//! `in-toto.io/predicate-type`); the config is an `unknown/unknown` image
//! config whose diff IDs are the layers' digests; the manifest's index
//! entry has platform `unknown/unknown` (so no runtime ever picks it) and
//! the annotations `vnd.docker.reference.type: attestation-manifest` and
//! `vnd.docker.reference.digest: <the image manifest's digest>`.

use std::collections::BTreeMap;

use super::statement::Statement;
use crate::image::oci::{media, Descriptor, Manifest, Platform};
use crate::image::Digest;

/// An in-toto statement layer's media type.
pub const MEDIA_IN_TOTO: &str = "application/vnd.in-toto+json";
/// The layer annotation naming the statement's predicate type.
pub const ANNOTATION_PREDICATE_TYPE: &str = "in-toto.io/predicate-type";
/// The index entry annotation saying what the manifest is.
pub const ANNOTATION_REFERENCE_TYPE: &str = "vnd.docker.reference.type";
/// The index entry annotation naming the manifest it is about.
pub const ANNOTATION_REFERENCE_DIGEST: &str = "vnd.docker.reference.digest";
/// [`ANNOTATION_REFERENCE_TYPE`]'s value.
pub const REFERENCE_TYPE_ATTESTATION: &str = "attestation-manifest";

/// An attestation manifest ready to be written: its index entry, its own
/// bytes and the blobs it refers to (the config, then each statement).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttestationManifest {
    /// The index entry: platform `unknown/unknown`, reference annotations.
    pub descriptor: Descriptor,
    pub manifest: Vec<u8>,
    /// `(descriptor, bytes)` of the config and the statement layers.
    pub blobs: Vec<(Descriptor, Vec<u8>)>,
}

/// The platform of attestation manifests.
pub fn unknown_platform() -> Platform {
    Platform::new("unknown", "unknown", None)
}

/// Assembles the attestation manifest of `statements` about the image
/// manifest `subject`.
pub fn assemble(subject: &Digest, statements: &[Statement]) -> AttestationManifest {
    let mut blobs = Vec::with_capacity(statements.len() + 1);
    let mut layers = Vec::with_capacity(statements.len());
    for s in statements {
        // Compact, as Go's `json.Marshal` writes a statement.
        let bytes = serde_json::to_vec(s).unwrap_or_default();
        let mut d = Descriptor::new(MEDIA_IN_TOTO, Digest::sha256_of(&bytes), bytes.len() as u64);
        let mut ann = BTreeMap::new();
        ann.insert(
            ANNOTATION_PREDICATE_TYPE.to_string(),
            s.predicate_type.clone(),
        );
        d.annotations = Some(ann);
        layers.push(d.clone());
        blobs.push((d, bytes));
    }
    let config = config_json(&layers);
    let config_desc = Descriptor::new(
        media::OCI_CONFIG,
        Digest::sha256_of(&config),
        config.len() as u64,
    );
    blobs.insert(0, (config_desc.clone(), config));
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(media::OCI_MANIFEST.to_string()),
        config: config_desc,
        layers,
        annotations: None,
        extra: Default::default(),
    };
    // Indented by two spaces, as BuildKit's `json.MarshalIndent`.
    let bytes = serde_json::to_vec_pretty(&manifest).unwrap_or_default();
    let mut descriptor = Descriptor::new(
        media::OCI_MANIFEST,
        Digest::sha256_of(&bytes),
        bytes.len() as u64,
    );
    let mut ann = BTreeMap::new();
    ann.insert(ANNOTATION_REFERENCE_DIGEST.to_string(), subject.to_string());
    ann.insert(
        ANNOTATION_REFERENCE_TYPE.to_string(),
        REFERENCE_TYPE_ATTESTATION.to_string(),
    );
    descriptor.annotations = Some(ann);
    descriptor.platform = Some(unknown_platform());
    AttestationManifest {
        descriptor,
        manifest: bytes,
        blobs,
    }
}

/// BuildKit's `attestationsConfig`: an `unknown/unknown` image config whose
/// diff IDs are the statement layers' digests (they are uncompressed).
fn config_json(layers: &[Descriptor]) -> Vec<u8> {
    let diff_ids: Vec<String> = layers.iter().map(|l| l.digest.to_string()).collect();
    let v = serde_json::json!({
        "architecture": "unknown",
        "os": "unknown",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    // Keys in Go's struct order, not serde_json's (sorted) map order.
    format!(
        "{{\"architecture\":\"unknown\",\"os\":\"unknown\",\"config\":{{}},\"rootfs\":{}}}",
        v["rootfs"]
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::super::statement::{Subject, PREDICATE_SPDX};
    use super::*;

    #[test]
    fn attestation_manifest_has_buildkit_shape() {
        let image = Digest::sha256_of(b"image manifest");
        let st = Statement::new(
            PREDICATE_SPDX,
            vec![Subject::new("pkg:docker/x@latest", &image)],
            serde_json::json!({"spdxVersion": "SPDX-2.3"}),
        );
        let a = assemble(&image, &[st]);
        let ann = a.descriptor.annotations.as_ref().unwrap();
        assert_eq!(ann[ANNOTATION_REFERENCE_TYPE], "attestation-manifest");
        assert_eq!(ann[ANNOTATION_REFERENCE_DIGEST], image.to_string());
        assert_eq!(a.descriptor.platform.as_ref().unwrap().os, "unknown");
        assert_eq!(a.descriptor.digest, Digest::sha256_of(&a.manifest));
        let m: Manifest = serde_json::from_slice(&a.manifest).unwrap();
        assert_eq!(m.layers.len(), 1);
        assert_eq!(m.layers[0].media_type, MEDIA_IN_TOTO);
        assert_eq!(
            m.layers[0].annotations.as_ref().unwrap()[ANNOTATION_PREDICATE_TYPE],
            PREDICATE_SPDX
        );
        let config: serde_json::Value = serde_json::from_slice(&a.blobs[0].1).unwrap();
        assert_eq!(config["architecture"], "unknown");
        assert_eq!(
            config["rootfs"]["diff_ids"][0],
            m.layers[0].digest.to_string()
        );
        for (d, bytes) in &a.blobs {
            assert_eq!(d.digest, Digest::sha256_of(bytes));
        }
        let stmt: serde_json::Value = serde_json::from_slice(&a.blobs[1].1).unwrap();
        assert_eq!(stmt["_type"], "https://in-toto.io/Statement/v1");
        assert_eq!(stmt["subject"][0]["digest"]["sha256"], image.hex());
    }
}
