//! Where a finished image goes besides the store: its names, the pushes
//! `--push` / `-o type=image,push=true` / `-o type=registry` ask for, and
//! the keys buildx writes to `--metadata-file`.
//!
//! The names follow buildx: the build's `-t` names replace any `name=`
//! of an image output, and pushing with no name at all is an error
//! before anything runs (docker/buildx `build/opt.go`, `toSolveOpt`:
//! "fill in image exporter names from tags", "tag is needed when pushing
//! to registry"). Pushing reuses `kiln push` ([`crate::transfer::push`]).

use crate::cache::{Image, Store};
use crate::image::registry::{ClientOptions, RegistryClient};
use crate::image::{Digest, ImageRef};
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
        Ok(Publish { names, push })
    }

    /// Pushes `image` (already stored under every name) to each name's
    /// registry, in order; stops at the first failure.
    pub fn push(
        &self,
        store: &Store,
        registry: &ClientOptions,
        progress: &Progress,
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
            let report = transfer::push(store, &client, name, &PushOptions::default(), progress)
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
