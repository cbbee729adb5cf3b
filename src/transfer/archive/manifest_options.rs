//! How an archive writes each image's layers and manifest beyond the
//! compression: what `kiln build -o type=oci|docker` takes from BuildKit's
//! image exporter options (moby/buildkit `exporter/containerimage/opts.go`
//! and `util/compression`: `compression-level`, `force-compression`,
//! `oci-mediatypes`; `exptypes/annotations.go`: manifest and manifest
//! descriptor annotations). `kiln save` keeps the defaults: the asked
//! compression for every layer, OCI media types, no annotations.

use std::collections::BTreeMap;

use crate::cache::{LayerInfo, Store, StoreError};
use crate::image::layer::Compression;
use crate::image::oci::{media, Descriptor};

/// The options; [`Default`] is `kiln save`'s behaviour.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ManifestOptions {
    /// Keep a layer's existing compressed blob whatever its compression
    /// (BuildKit's rule unless `force-compression=true`: a gzip base layer
    /// stays gzip in a zstd export). A layer kiln holds only as its
    /// uncompressed tar (its own layers, an imported rootfs) has no such
    /// blob and is compressed as asked: where BuildKit always keeps a
    /// compressed blob per layer, kiln's canonical form is the tar.
    pub keep_compressed: bool,
    /// The level new blobs are compressed at (`compression-level`); the
    /// compressor's default when `None`. A blob already stored in the
    /// asked compression is reused whatever its level, as BuildKit
    /// matches blobs by compression type.
    pub compression_level: Option<i32>,
    /// Docker's media types for the manifest, config and layers
    /// (`oci-mediatypes=false`).
    pub docker_media_types: bool,
    /// Annotations of the image manifest (`annotation.K`,
    /// `annotation-manifest.K`, `--annotation K=V`).
    pub manifest_annotations: BTreeMap<String, String>,
    /// Annotations of the manifest's descriptor in the layout's
    /// `index.json` (`annotation-manifest-descriptor.K`).
    pub descriptor_annotations: BTreeMap<String, String>,
}

impl ManifestOptions {
    /// The blob a layer is written as, for `compression` asked.
    pub(super) fn layer_blob(
        &self,
        store: &Store,
        layer: &LayerInfo,
        compression: Compression,
    ) -> Result<Descriptor, StoreError> {
        if self.keep_compressed {
            let stored = |wanted: &dyn Fn(Compression) -> bool| {
                layer.blobs.iter().find(|b| {
                    Compression::from_media_type(&b.media_type).is_some_and(wanted)
                        && store.has_blob(&b.digest)
                })
            };
            if let Some(b) =
                stored(&|c| c == compression).or_else(|| stored(&|c| c != Compression::None))
            {
                return Ok(self.typed(b.clone()));
            }
        }
        let blob = store.layer_tar_at_level(layer, compression, self.compression_level)?;
        Ok(self.typed(blob))
    }

    /// `desc` with the media type this archive uses for its compression.
    fn typed(&self, mut desc: Descriptor) -> Descriptor {
        let compression = Compression::from_media_type(&desc.media_type);
        desc.media_type = match (self.docker_media_types, compression) {
            (true, Some(Compression::None)) => media::DOCKER_LAYER.to_string(),
            (true, Some(Compression::Gzip)) => media::DOCKER_LAYER_GZIP.to_string(),
            // Docker has no zstd layer type: the caller turns OCI types on
            // for a zstd export (BuildKit's `EnableOCITypes`); a reused
            // zstd blob in a Docker-typed export keeps the OCI type.
            (_, Some(c)) => c.oci_media_type().to_string(),
            (_, None) => desc.media_type,
        };
        desc
    }

    /// The manifest's media type.
    pub(super) fn manifest_media_type(&self) -> &'static str {
        if self.docker_media_types {
            media::DOCKER_MANIFEST
        } else {
            media::OCI_MANIFEST
        }
    }

    /// The config's media type.
    pub(super) fn config_media_type(&self) -> &'static str {
        if self.docker_media_types {
            media::DOCKER_CONFIG
        } else {
            media::OCI_CONFIG
        }
    }

    /// `map` as a manifest's or descriptor's `annotations` (none when empty).
    pub(super) fn annotations(map: &BTreeMap<String, String>) -> Option<BTreeMap<String, String>> {
        (!map.is_empty()).then(|| map.clone())
    }
}
