//! Build attestations, as BuildKit makes them for `--provenance` and
//! `--sbom`: in-toto statements ([`statement`]) whose predicates are a SLSA
//! provenance ([`provenance`]) or an SPDX SBOM of the result's root
//! filesystem ([`sbom`]), attached to an image as an attestation manifest
//! ([`manifest`]) or written as files next to an exported filesystem.
//!
//! This module only makes documents: it is handed what the build knows
//! ([`provenance::BuildFacts`]) and a root directory to scan, and never
//! touches the store, a registry or an archive (`build` wires it in).

pub mod manifest;
pub mod provenance;
pub mod purl;
pub mod sbom;
pub mod spec;
pub mod statement;

use std::path::Path;

pub use spec::{AttestOptions, ProvenanceMode, ProvenanceOptions, SbomOptions, SpecError};
pub use statement::{Predicate, Statement, Subject};

use crate::image::oci::Platform;
use crate::image::{Digest, ImageRef};

/// The SBOM predicate of the root filesystem at `root`, for an image
/// named `name`, dated `created` (RFC 3339). BuildKit's core scan is
/// named `sbom`, hence the file name `sbom.spdx.json` (moby/buildkit
/// `frontend/attestations/sbom/sbom.go`, `CoreSBOMName`, and the
/// `<scan>.spdx.json` files of `docs/attestations/sbom-protocol.md`).
pub fn sbom_predicate(root: &Path, name: &str, created: &str) -> Predicate {
    let packages = sbom::scan(root);
    tracing::debug!(packages = packages.len(), "sbom scanned");
    Predicate {
        predicate_type: statement::PREDICATE_SPDX.to_string(),
        body: sbom::spdx::document(&packages, name, created),
        file_name: "sbom.spdx.json".to_string(),
    }
}

/// The subjects of statements about an image manifest: one per name, the
/// name as a package URL with the platform (moby/buildkit
/// `exporter/containerimage/writer.go`, `Commit`: `defaultSubjects` from
/// `purl.RefToPURL`), or `_` for an image without a name.
pub fn image_subjects(manifest: &Digest, names: &[ImageRef], platform: &Platform) -> Vec<Subject> {
    if names.is_empty() {
        return vec![Subject::new("_", manifest)];
    }
    names
        .iter()
        .map(|n| Subject::new(&purl::image(n, Some(platform)), manifest))
        .collect()
}

/// The attestation manifest of `predicates` about the image manifest
/// `manifest` named `names`.
pub fn attach(
    predicates: &[Predicate],
    manifest: &Digest,
    names: &[ImageRef],
    platform: &Platform,
) -> manifest::AttestationManifest {
    let subjects = image_subjects(manifest, names, platform);
    let statements: Vec<Statement> = predicates
        .iter()
        .map(|p| p.about(subjects.clone()))
        .collect();
    manifest::assemble(manifest, &statements)
}
