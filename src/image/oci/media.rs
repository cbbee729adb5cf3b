//! Every OCI and Docker media type kiln reads or writes, in one table, and
//! the questions asked of them (manifest? index? config? layer?). Nothing
//! else in the tree spells an `application/vnd.oci.*` or
//! `application/vnd.docker.*` string.
//!
//! Names and values are image-spec's `media-types.md` and docker's
//! distribution `manifest/schema2` / `manifest/manifestlist` constants.

/// OCI image manifest (image-spec `manifest.md`).
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index (image-spec `image-index.md`).
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image config (image-spec `config.md`).
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// An uncompressed OCI layer tar.
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
/// A gzip-compressed OCI layer tar.
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// A zstd-compressed OCI layer tar.
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
/// OCI's deprecated non-distributable layers (image-spec keeps them
/// readable): unpacked like any layer.
pub const OCI_LAYER_NONDISTRIBUTABLE: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar";
/// [`OCI_LAYER_NONDISTRIBUTABLE`], gzip-compressed.
pub const OCI_LAYER_NONDISTRIBUTABLE_GZIP: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
/// [`OCI_LAYER_NONDISTRIBUTABLE`], zstd-compressed.
pub const OCI_LAYER_NONDISTRIBUTABLE_ZSTD: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd";
/// Docker image manifest v2, schema 2.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list (schema 2's index).
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker's signed schema 1 manifest: never read (registries convert to it
/// only when a client accepts nothing newer), named so errors can say so.
pub const DOCKER_MANIFEST_SCHEMA1_SIGNED: &str =
    "application/vnd.docker.distribution.manifest.v1+prettyjws";
/// Docker image config.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// An uncompressed Docker layer tar.
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
/// A gzip-compressed Docker layer tar.
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// Docker's foreign (Windows) layers are accepted as plain gzip tars.
pub const DOCKER_LAYER_FOREIGN_GZIP: &str =
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";

/// kiln's build cache description (`--cache-to`): the config blob of a
/// cache manifest (`cache::remote::description`).
pub const KILN_CACHE_V1: &str = "application/vnd.kiln.cache.v1+json";

/// Whether `mt` names an image manifest (OCI or Docker schema 2).
pub fn is_manifest(mt: &str) -> bool {
    mt == OCI_MANIFEST || mt == DOCKER_MANIFEST
}

/// Whether `mt` names a multi-platform index (OCI index or Docker list).
pub fn is_index(mt: &str) -> bool {
    mt == OCI_INDEX || mt == DOCKER_MANIFEST_LIST
}

/// Whether `mt` names an image config kiln understands.
pub fn is_config(mt: &str) -> bool {
    mt == OCI_CONFIG || mt == DOCKER_CONFIG
}

/// Whether `mt` names a layer tar kiln can unpack (any compression).
pub fn is_layer(mt: &str) -> bool {
    matches!(
        mt,
        OCI_LAYER
            | OCI_LAYER_GZIP
            | OCI_LAYER_ZSTD
            | DOCKER_LAYER
            | DOCKER_LAYER_GZIP
            | DOCKER_LAYER_FOREIGN_GZIP
            | OCI_LAYER_NONDISTRIBUTABLE
            | OCI_LAYER_NONDISTRIBUTABLE_GZIP
            | OCI_LAYER_NONDISTRIBUTABLE_ZSTD
    )
}

/// How a layer media type says its blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerCompression {
    /// A plain tar.
    None,
    /// `+gzip` (OCI) or `.tar.gzip` (Docker).
    Gzip,
    /// `+zstd`.
    Zstd,
}

/// The compression a layer media type declares; `None` if `mt` is not a
/// layer type (see [`is_layer`]).
pub fn layer_compression(mt: &str) -> Option<LayerCompression> {
    if !is_layer(mt) {
        return None;
    }
    Some(if mt.ends_with("gzip") {
        LayerCompression::Gzip
    } else if mt.ends_with("zstd") {
        LayerCompression::Zstd
    } else {
        LayerCompression::None
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_types_name_their_compression() {
        assert_eq!(
            layer_compression(DOCKER_LAYER_GZIP),
            Some(LayerCompression::Gzip)
        );
        assert_eq!(
            layer_compression(OCI_LAYER_NONDISTRIBUTABLE_ZSTD),
            Some(LayerCompression::Zstd)
        );
        assert_eq!(layer_compression(OCI_LAYER), Some(LayerCompression::None));
        assert_eq!(layer_compression(OCI_CONFIG), None);
        assert!(is_index(DOCKER_MANIFEST_LIST) && !is_index(OCI_MANIFEST));
        assert!(!is_manifest(DOCKER_MANIFEST_SCHEMA1_SIGNED));
    }
}
