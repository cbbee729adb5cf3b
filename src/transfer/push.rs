//! `push`: store → registry.
//!
//! Layers go first (up to [`PARALLEL_UPLOADS`] at a time), each skipped if
//! the repository has it (`HEAD`), mounted if another repository of the
//! same registry is known to have it, uploaded otherwise; then the config;
//! the manifest last, so the registry never holds a manifest whose blobs
//! are missing (it would refuse it anyway). With attached manifests
//! (attestations, [`push_attached`]) each image manifest is put by digest,
//! then each attached manifest's blobs and itself, and the tag names the
//! image index holding them all, put last.

use super::attached::{nothing, Attach, Attached};
use super::parallel::run_bounded;
use super::progress::{ItemProgress, Progress};
use super::sources::BlobSources;
use super::TransferError;
use crate::cache::{Image, Store, StoredIndex};
use crate::error_chain::Chain;
use crate::image::layer::Compression;
use crate::image::oci::{image_index, media, Descriptor, Manifest, Platform};
use crate::image::registry::RegistryClient;
use crate::image::{Digest, ImageRef};
use std::io::Cursor;
use std::ops::ControlFlow;

/// Layers uploaded at once (docker's default is 5; kiln's machines are
/// small and a local registry is disk-bound).
pub const PARALLEL_UPLOADS: usize = 3;

/// How to push.
#[derive(Debug, Clone, Default)]
pub struct PushOptions {
    /// Recompress layers that are not already in this compression. `None`
    /// keeps compressed layers as they are and gzips uncompressed ones
    /// (docker's behaviour), so a pulled image pushes back unchanged.
    pub compression: Option<Compression>,
}

/// What a push did.
#[derive(Debug, Clone)]
pub struct PushReport {
    /// The manifest's digest, as the registry now serves it.
    pub digest: Digest,
    /// The manifest's size in bytes.
    pub size: u64,
    /// The manifest's media type (OCI or Docker schema 2).
    pub media_type: String,
}

/// Pushes the stored image named `image` to its registry: its one
/// manifest, or, when the name names a multi-platform index, every
/// platform's manifest (by digest) and then the index under the tag, as
/// `docker push` of a multi-platform image does.
pub fn push(
    store: &Store,
    client: &RegistryClient,
    image: &ImageRef,
    options: &PushOptions,
    progress: &Progress,
) -> Result<PushReport, TransferError> {
    push_attached(store, client, image, options, progress, &nothing)
}

/// [`push`], with the manifests `attach` makes for each image manifest as
/// pushed (its digest may differ from the stored one when layers are
/// compressed on the way); with any, the tag names an image index of the
/// image manifests and them, and the report describes that index.
pub fn push_attached(
    store: &Store,
    client: &RegistryClient,
    image: &ImageRef,
    options: &PushOptions,
    progress: &Progress,
    attach: Attach<'_>,
) -> Result<PushReport, TransferError> {
    progress.println(&format!(
        "The push refers to repository [{}]",
        image.familiar_name()
    ));
    if let Some(index) = store.index_named(image)? {
        return push_index(store, client, image, &index, options, progress, attach);
    }
    // Held as found: a concurrent prune cannot take what is being pushed.
    let stored = store.hold_image(&image.to_string())?;
    let tag = image.registry_reference();
    let pushed = push_manifest(
        store,
        client,
        image,
        &stored,
        Some(tag.clone()),
        options,
        progress,
        attach,
    )?;
    if pushed.attached.is_empty() {
        return Ok(pushed.report);
    }
    let platform = pushed
        .platform
        .clone()
        .unwrap_or_else(Platform::linux_amd64);
    put_index(
        client,
        image,
        &[(pushed.descriptor(), platform)],
        &pushed.attached,
        progress,
    )
}

/// Pushes each platform's image of `index` by digest (with what `attach`
/// makes for it), then an index over what was pushed (assembled by
/// `image_index::assemble`, so recompressed manifests are named by their
/// new digests) under `image`'s tag.
fn push_index(
    store: &Store,
    client: &RegistryClient,
    image: &ImageRef,
    index: &StoredIndex,
    options: &PushOptions,
    progress: &Progress,
    attach: Attach<'_>,
) -> Result<PushReport, TransferError> {
    let mut manifests = Vec::with_capacity(index.members.len());
    let mut attached = Vec::new();
    for (id, desc) in index.members.iter().zip(&index.index.manifests) {
        let stored = store.hold_image(&id.to_string())?;
        let pushed = push_manifest(
            store, client, image, &stored, None, options, progress, attach,
        )?;
        let platform = desc
            .platform
            .clone()
            .ok_or_else(|| TransferError::BadImage {
                image: index.digest.to_string(),
                reason: format!("index entry {} has no platform", desc.digest),
            })?;
        manifests.push((pushed.descriptor(), platform));
        attached.extend(pushed.attached);
    }
    // Descriptors after the platforms' in the stored index go as they are.
    let mut extra =
        index.index.manifests[index.members.len().min(index.index.manifests.len())..].to_vec();
    extra.extend(attached);
    put_index(client, image, &manifests, &extra, progress)
}

/// Puts the index of `manifests` then `extra` under `image`'s tag.
fn put_index(
    client: &RegistryClient,
    image: &ImageRef,
    manifests: &[(Descriptor, Platform)],
    extra: &[Descriptor],
    progress: &Progress,
) -> Result<PushReport, TransferError> {
    let assembled = image_index::assemble(manifests, extra);
    let bytes = image_index::to_bytes(&assembled);
    let tag = image.registry_reference();
    let digest = client.put_manifest(image.repository(), &tag, media::OCI_INDEX, &bytes)?;
    tracing::debug!(repo = %image.repository(), %digest, "pushed an index");
    progress.println(&format!("{tag}: digest: {digest} size: {}", bytes.len()));
    Ok(PushReport {
        digest,
        size: bytes.len() as u64,
        media_type: media::OCI_INDEX.to_string(),
    })
}

/// One image manifest pushed: where it went, its platform (from its
/// config) and the descriptors of the manifests attached to it.
struct PushedManifest {
    report: PushReport,
    platform: Option<Platform>,
    attached: Vec<Descriptor>,
}

impl PushedManifest {
    fn descriptor(&self) -> Descriptor {
        Descriptor::new(
            &self.report.media_type,
            self.report.digest.clone(),
            self.report.size,
        )
    }
}

/// Pushes the manifests `attached` to `image`'s repository by digest, each
/// after its blobs; returns their index entries.
fn push_attached_manifests(
    client: &RegistryClient,
    image: &ImageRef,
    attached: &[Attached],
) -> Result<Vec<Descriptor>, TransferError> {
    let repo = image.repository();
    for a in attached {
        for (d, bytes) in &a.blobs {
            if client.blob_exists(repo, &d.digest)?.is_none() {
                client.push_blob(
                    repo,
                    &d.digest,
                    bytes.len() as u64,
                    &mut Cursor::new(bytes),
                    &mut |_| {},
                )?;
            }
        }
        client.put_manifest(
            repo,
            &a.descriptor.digest.to_string(),
            &a.descriptor.media_type,
            &a.manifest,
        )?;
    }
    Ok(attached.iter().map(|a| a.descriptor.clone()).collect())
}

/// Pushes `stored`'s layers, config and manifest to `image`'s repository,
/// the manifest under `tag`, or under its digest when `None` or when
/// `attach` attaches anything (then pushed after it: the tag is the
/// caller's, for the index).
#[allow(clippy::too_many_arguments)]
fn push_manifest(
    store: &Store,
    client: &RegistryClient,
    image: &ImageRef,
    stored: &Image,
    tag: Option<String>,
    options: &PushOptions,
    progress: &Progress,
    attach: Attach<'_>,
) -> Result<PushedManifest, TransferError> {
    let repo = image.repository();
    let registry = image.registry();
    let (manifest_bytes, media_type, layers) = manifest_for_push(store, stored, options)?;
    let sources = BlobSources::open(store.root());

    let items: Vec<ItemProgress> = layers
        .iter()
        .map(|l| {
            let item = progress.item(l.digest.short(), l.size);
            item.status("Preparing");
            item
        })
        .collect();
    let uploads = run_bounded(
        layers.len(),
        PARALLEL_UPLOADS,
        |i| {
            push_blob(store, client, &sources, image, &layers[i], &items[i])
                .inspect(|_| sources.record(&layers[i].digest, image))
        },
        |_, _| ControlFlow::Continue(()),
    );
    uploads.into_result()?;

    let config = &stored.manifest.config;
    if client.blob_exists(repo, &config.digest)?.is_none() {
        let bytes = store.read_blob(&config.digest)?;
        client.push_blob(
            repo,
            &config.digest,
            bytes.len() as u64,
            &mut Cursor::new(bytes),
            &mut |_| {},
        )?;
    }
    progress.items_done();
    let digest = Digest::sha256_of(&manifest_bytes);
    let c = &stored.config;
    let platform = (!c.os.is_empty() && !c.architecture.is_empty())
        .then(|| Platform::new(&c.os, &c.architecture, c.variant.as_deref()));
    let mut desc = Descriptor::new(&media_type, digest.clone(), manifest_bytes.len() as u64);
    desc.platform = platform.clone();
    let attached = attach(&desc);
    let tag = match tag {
        Some(t) if attached.is_empty() => t,
        _ => digest.to_string(),
    };
    let digest = client.put_manifest(repo, &tag, &media_type, &manifest_bytes)?;
    tracing::debug!(%registry, %repo, %digest, "pushed");
    progress.println(&format!(
        "{tag}: digest: {digest} size: {}",
        manifest_bytes.len()
    ));
    let attached = push_attached_manifests(client, image, &attached)?;
    Ok(PushedManifest {
        report: PushReport {
            digest,
            size: manifest_bytes.len() as u64,
            media_type,
        },
        platform,
        attached,
    })
}

/// The manifest to push and its layer descriptors: the stored manifest
/// byte for byte when its layers already have the wanted compression
/// (the digest stays what it was when pulled), else a new OCI manifest
/// over recompressed layer blobs (the config, and so the image ID, does
/// not change: diff IDs are over uncompressed tars).
fn manifest_for_push(
    store: &Store,
    image: &Image,
    options: &PushOptions,
) -> Result<(Vec<u8>, String, Vec<Descriptor>), TransferError> {
    let mut changed = false;
    let mut layers = Vec::with_capacity(image.manifest.layers.len());
    for (desc, info) in image.manifest.layers.iter().zip(&image.layers) {
        let have = Compression::from_media_type(&desc.media_type);
        let want = match options.compression {
            Some(c) => c,
            None if have == Some(Compression::None) => Compression::Gzip,
            None => have.unwrap_or(Compression::Gzip),
        };
        if have == Some(want) && store.has_blob(&desc.digest) {
            layers.push(desc.clone());
        } else {
            let made = store.layer_tar(info, want)?;
            changed |= made.digest != desc.digest || made.media_type != desc.media_type;
            layers.push(made);
        }
    }
    if !changed {
        let bytes = store.read_blob(&image.manifest_digest)?;
        return Ok((bytes, image.manifest_media_type.clone(), layers));
    }
    let mut config = image.manifest.config.clone();
    if config.media_type == media::DOCKER_CONFIG {
        // An OCI manifest names its config with the OCI type; the JSON is
        // the same (image-spec config.md is docker's v1.2 format).
        config.media_type = media::OCI_CONFIG.to_string();
    }
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(media::OCI_MANIFEST.to_string()),
        config,
        layers: layers.clone(),
        annotations: image.manifest.annotations.clone(),
        extra: Default::default(),
    };
    let bytes = serde_json::to_vec(&manifest).map_err(|e| TransferError::BadImage {
        image: image.id.to_string(),
        reason: format!("serializing manifest: {e}", e = Chain(&e)),
    })?;
    // Keep it, so the image can later be found by this digest too.
    store.ingest_bytes(&bytes, "pushed manifest")?;
    Ok((bytes, media::OCI_MANIFEST.to_string(), layers))
}

/// Gets one layer blob into the repository: already there, mounted, or
/// uploaded.
fn push_blob(
    store: &Store,
    client: &RegistryClient,
    sources: &BlobSources,
    image: &ImageRef,
    desc: &Descriptor,
    item: &ItemProgress,
) -> Result<(), TransferError> {
    let repo = image.repository();
    if client.blob_exists(repo, &desc.digest)?.is_some() {
        item.finish("Layer already exists");
        return Ok(());
    }
    let session = match sources.mount_source(&desc.digest, image.registry(), repo) {
        Some(from) => match client.mount_blob(repo, &desc.digest, &from)? {
            None => {
                item.finish(&format!("Mounted from {from}"));
                return Ok(());
            }
            Some(session) => session,
        },
        None => client.start_upload(repo)?,
    };
    item.status("Pushing");
    let mut file = store.open_blob(&desc.digest)?;
    client.upload_blob(session, &desc.digest, desc.size, &mut file, &mut |n| {
        item.set(n)
    })?;
    item.finish("Pushed");
    Ok(())
}
