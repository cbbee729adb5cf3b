//! Where a finished image goes besides the store: its names, the pushes
//! `--push` / `-o type=image,push=true` / `-o type=registry` ask for, and
//! the keys buildx writes to `--metadata-file`.
//!
//! The names follow buildx: the build's `-t` names replace any `name=`
//! of an image output, and pushing with no name at all is an error
//! before anything runs (docker/buildx `build/opt.go`, `toSolveOpt`:
//! "fill in image exporter names from tags", "tag is needed when pushing
//! to registry"). Pushing reuses `kiln push` ([`crate::transfer::push`]).

use crate::cache::remote::RemoteResult;
use crate::cache::{Image, Store};
use crate::image::oci::{media, Descriptor, Manifest};
use crate::image::registry::{ClientOptions, RegistryClient, RegistryError};
use crate::image::{Digest, ImageRef};
use crate::transfer::attached::Attach;
use crate::transfer::progress::Progress;
use crate::transfer::{self, PushOptions, TransferError};

use super::export::{Export, ImageOutput};

/// What the image outputs of a build ask for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Publish {
    /// Every name the image gets in the store.
    pub names: Vec<ImageRef>,
    /// Whether those names are pushed.
    pub push: bool,
    /// The manifest's annotations, from every image output.
    pub annotations: std::collections::BTreeMap<String, String>,
}

/// Why naming or pushing the result failed.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// BuildKit's words (docker/buildx `build/opt.go`).
    #[error("tag is needed when pushing to registry (give -t NAME or -o type=registry,name=NAME)")]
    NoName,
    #[error("failed to push {name}")]
    Push {
        name: String,
        #[source]
        source: Box<TransferError>,
    },
    #[error("failed to push {name}: connecting to its registry")]
    Client {
        name: String,
        #[source]
        source: Box<crate::image::registry::RegistryError>,
    },
    #[error("failed to push {name}")]
    Registry {
        name: String,
        #[source]
        source: Box<RegistryError>,
    },
    #[error("reading the manifest of {id}")]
    Manifest {
        id: String,
        #[source]
        source: Box<crate::cache::StoreError>,
    },
}

/// The manifest a build's result is known by: the pushed one when it was
/// pushed (a push may compress layers the store keeps uncompressed, so
/// its digest is the one a registry serves), else the stored one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestDescriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
}

impl Publish {
    /// The names and push flag from `-t` and the `--output`s; an error
    /// when a push has no name to push to.
    pub fn plan(tags: &[ImageRef], exports: &[Export]) -> Result<Publish, PublishError> {
        let outputs: Vec<&ImageOutput> = exports
            .iter()
            .filter_map(|e| match e {
                Export::Image(o) => Some(o),
                _ => None,
            })
            .collect();
        let push = outputs.iter().any(|o| o.push);
        let mut names = tags.to_vec();
        if names.is_empty() {
            for name in outputs.iter().flat_map(|o| &o.names) {
                if !names.contains(name) {
                    names.push(name.clone());
                }
            }
        }
        if push && names.is_empty() {
            return Err(PublishError::NoName);
        }
        let annotations = outputs
            .iter()
            .flat_map(|o| o.annotations.iter())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Ok(Publish {
            names,
            push,
            annotations,
        })
    }

    /// Pushes `image` (already stored under every name) to each name's
    /// registry, in order, with what `attach` adds to its manifest (the
    /// attestations); stops at the first failure.
    pub fn push(
        &self,
        store: &Store,
        registry: &ClientOptions,
        progress: &Progress,
        attach: Attach<'_>,
    ) -> Result<Option<ManifestDescriptor>, PublishError> {
        if !self.push {
            return Ok(None);
        }
        let mut pushed = None;
        for name in &self.names {
            let client = RegistryClient::new(name.registry(), registry).map_err(|source| {
                PublishError::Client {
                    name: name.to_string(),
                    source: Box::new(source),
                }
            })?;
            let report = transfer::push_attached(
                store,
                &client,
                name,
                &PushOptions::default(),
                progress,
                attach,
            )
            .map_err(|source| PublishError::Push {
                name: name.to_string(),
                source: Box::new(source),
            })?;
            // Every name gets the same bytes (layer compression is
            // deterministic), so the first push describes them all.
            pushed.get_or_insert(ManifestDescriptor {
                media_type: report.media_type,
                digest: report.digest,
                size: report.size,
            });
        }
        Ok(pushed)
    }
}

impl Publish {
    /// Pushes an image whose layers are the blobs of an imported cache
    /// without their bytes passing through here: each layer is already in
    /// the target repository (`HEAD`) or mounted from the cache's
    /// repository of the same registry (the distribution spec's
    /// cross-repository mount, as `kiln push` does from `blob-sources`);
    /// then the config, the manifest last. `Ok(None)` when some layer can
    /// be had neither way (a directory cache, another registry, a declined
    /// mount): the caller fetches the layers and pushes as usual. Nothing
    /// is written to the store.
    pub fn push_remote(
        &self,
        config: &[u8],
        remote: &RemoteResult,
        registry: &ClientOptions,
        progress: &Progress,
    ) -> Result<Option<ManifestDescriptor>, PublishError> {
        let Some(cache) = &remote.cache else {
            return Ok(None);
        };
        let config_desc = Descriptor::new(
            media::OCI_CONFIG,
            Digest::sha256_of(config),
            config.len() as u64,
        );
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(media::OCI_MANIFEST.to_string()),
            config: config_desc.clone(),
            layers: remote.blobs(),
            annotations: (!self.annotations.is_empty()).then(|| self.annotations.clone()),
            extra: Default::default(),
        };
        let bytes = serde_json::to_vec(&manifest).expect("a manifest serializes");
        let mut pushed = None;
        for name in &self.names {
            if name.registry() != cache.registry() {
                return Ok(None);
            }
            let err = |source| PublishError::Registry {
                name: name.to_string(),
                source: Box::new(source),
            };
            let client = RegistryClient::new(name.registry(), registry).map_err(|source| {
                PublishError::Client {
                    name: name.to_string(),
                    source: Box::new(source),
                }
            })?;
            let repo = name.repository();
            progress.println(&format!(
                "The push refers to repository [{}]",
                name.familiar_name()
            ));
            for layer in &manifest.layers {
                if client
                    .blob_exists(repo, &layer.digest)
                    .map_err(err)?
                    .is_some()
                {
                    progress.println(&format!("{}: Layer already exists", layer.digest.short()));
                    continue;
                }
                let declined = client
                    .mount_blob(repo, &layer.digest, cache.repository())
                    .map_err(err)?;
                if declined.is_some() {
                    tracing::debug!(%name, blob = %layer.digest, "mount declined; fetching the layers");
                    return Ok(None);
                }
                progress.println(&format!(
                    "{}: Mounted from {}",
                    layer.digest.short(),
                    cache.repository()
                ));
            }
            if client
                .blob_exists(repo, &config_desc.digest)
                .map_err(err)?
                .is_none()
            {
                client
                    .push_blob(
                        repo,
                        &config_desc.digest,
                        config_desc.size,
                        &mut std::io::Cursor::new(config),
                        &mut |_| {},
                    )
                    .map_err(err)?;
            }
            let tag = name.registry_reference();
            let digest = client
                .put_manifest(repo, &tag, media::OCI_MANIFEST, &bytes)
                .map_err(err)?;
            progress.println(&format!("{tag}: digest: {digest} size: {}", bytes.len()));
            pushed.get_or_insert(ManifestDescriptor {
                media_type: media::OCI_MANIFEST.to_string(),
                digest,
                size: bytes.len() as u64,
            });
        }
        Ok(pushed)
    }
}

/// The stored image's own manifest.
pub fn stored_manifest(store: &Store, image: &Image) -> Result<ManifestDescriptor, PublishError> {
    let bytes =
        store
            .read_blob(&image.manifest_digest)
            .map_err(|source| PublishError::Manifest {
                id: image.id.to_string(),
                source: Box::new(source),
            })?;
    Ok(ManifestDescriptor {
        media_type: image.manifest_media_type.clone(),
        digest: image.manifest_digest.clone(),
        size: bytes.len() as u64,
    })
}

/// buildx's `--metadata-file` contents: the image exporter's response
/// keys (moby/buildkit `exporter/containerimage/exptypes/types.go`:
/// `containerimage.digest`, `containerimage.config.digest`,
/// `containerimage.descriptor`; `image.name` from
/// `exporter/containerimage/export.go`, `imageExporterInstance.Export`,
/// the names joined by commas), with the descriptor decoded to JSON as
/// buildx writes it (docker/buildx `commands/build.go`,
/// `decodeExporterResponse`).
pub fn metadata(
    config_digest: &Digest,
    manifest: &ManifestDescriptor,
    names: &[ImageRef],
) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    m.insert(
        "containerimage.config.digest".into(),
        config_digest.to_string().into(),
    );
    m.insert(
        "containerimage.digest".into(),
        manifest.digest.to_string().into(),
    );
    m.insert(
        "containerimage.descriptor".into(),
        serde_json::json!({
            "mediaType": manifest.media_type,
            "digest": manifest.digest.to_string(),
            "size": manifest.size,
        }),
    );
    if !names.is_empty() {
        let joined: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        m.insert("image.name".into(), joined.join(",").into());
    }
    serde_json::Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> ImageRef {
        ImageRef::parse(s).unwrap()
    }

    fn out(s: &str) -> Export {
        s.parse().unwrap()
    }

    #[test]
    fn tags_replace_output_names_as_buildx_does() {
        let p = Publish::plan(&[r("a")], &[out("type=registry,name=b")]).unwrap();
        assert_eq!(p.names, vec![r("a")]);
        assert!(p.push);
        let p = Publish::plan(&[], &[out("type=image,name=b,push=true")]).unwrap();
        assert_eq!(p.names, vec![r("b")]);
        let p = Publish::plan(&[r("a")], &[out("type=local,dest=x")]).unwrap();
        assert!(!p.push);
    }

    #[test]
    fn push_without_a_name_is_refused() {
        let e = Publish::plan(&[], &[out("type=registry")]).unwrap_err();
        assert!(e.to_string().contains("tag is needed"), "{e}");
        assert!(Publish::plan(&[], &[out("type=image")]).is_ok());
    }

    #[test]
    fn metadata_has_buildx_keys() {
        let d = |c: char| -> Digest {
            format!("sha256:{}", c.to_string().repeat(64))
                .parse()
                .unwrap()
        };
        let m = metadata(
            &d('a'),
            &ManifestDescriptor {
                media_type: "application/vnd.oci.image.manifest.v1+json".into(),
                digest: d('b'),
                size: 42,
            },
            &[r("x"), r("y:1")],
        );
        assert_eq!(m["containerimage.config.digest"], d('a').to_string());
        assert_eq!(m["containerimage.digest"], d('b').to_string());
        assert_eq!(m["containerimage.descriptor"]["size"], 42);
        assert_eq!(
            m["image.name"],
            "docker.io/library/x:latest,docker.io/library/y:1"
        );
    }
}
