//! Where a remote cache lives: a registry ref, or an OCI image layout
//! directory (`oci-layout`, `index.json`, `blobs/sha256/`), and the few
//! operations import and export need of either: read the description,
//! bring one blob into the store (verified), write blobs and, last, the
//! manifest.

use std::fs::File;
use std::io::{Cursor, Read, Write};
use std::path::{Path, PathBuf};

use super::description::{Description, INLINE_CONFIG_KEY, MAX_SIZE, MEDIA_TYPE};
use super::RemoteCacheError;
use crate::cache::Store;
use crate::image::oci::{media, Descriptor, Index, Manifest};
use crate::image::registry::{ClientOptions, RegistryClient};
use crate::image::{Digest, ImageRef};

type Result<T, E = RemoteCacheError> = std::result::Result<T, E>;

/// A cache's place.
pub enum Location {
    Registry {
        client: Box<RegistryClient>,
        reference: ImageRef,
    },
    /// An OCI image layout directory.
    Local(PathBuf),
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Registry { reference, .. } => write!(f, "{reference}"),
            Location::Local(dir) => write!(f, "{}", dir.display()),
        }
    }
}

/// A description as read, with the manifest it came in (an inline cache's
/// manifest is the image's).
pub struct ReadDescription {
    pub description: Description,
    /// Whether it came inside an image config.
    pub inline: bool,
    /// The digest of the manifest it came from.
    pub manifest: Digest,
}

impl Location {
    /// The registry ref `reference`, reached with `options`.
    pub fn registry(reference: &ImageRef, options: &ClientOptions) -> Result<Location> {
        Ok(Location::Registry {
            client: Box::new(RegistryClient::new(reference.registry(), options)?),
            reference: reference.clone(),
        })
    }

    /// Reads and checks the description (for an image with an inline
    /// cache, the one in its config, with the image's layers as blobs).
    pub fn read(&self) -> Result<ReadDescription> {
        let (manifest_bytes, manifest_digest) = match self {
            Location::Registry { client, reference } => {
                let platform = crate::image::registry::Platform::host();
                let image = client
                    .resolve_manifest(
                        reference.repository(),
                        &reference.registry_reference(),
                        &platform,
                    )?
                    .image;
                (image.bytes, image.digest)
            }
            Location::Local(dir) => {
                let index_path = dir.join("index.json");
                let bytes = read_bounded(&index_path, MAX_SIZE)?;
                let index: Index =
                    serde_json::from_slice(&bytes).map_err(|e| RemoteCacheError::Layout {
                        path: index_path.clone(),
                        reason: format!("not an OCI index: {e}"),
                    })?;
                let desc = index
                    .manifests
                    .iter()
                    .find(|m| media::is_manifest(&m.media_type))
                    .ok_or_else(|| RemoteCacheError::Layout {
                        path: index_path,
                        reason: "lists no image manifest".into(),
                    })?;
                (self.read_small(desc)?, desc.digest.clone())
            }
        };
        let manifest: Manifest = serde_json::from_slice(&manifest_bytes)
            .map_err(|e| RemoteCacheError::NotACache(format!("(manifest unreadable: {e})")))?;
        let config = &manifest.config;
        if config.media_type == MEDIA_TYPE {
            let bytes = self.read_small(config)?;
            return Ok(ReadDescription {
                description: Description::decode(&bytes, None)?,
                inline: false,
                manifest: manifest_digest,
            });
        }
        if !media::is_config(&config.media_type) {
            return Err(RemoteCacheError::NotACache(config.media_type.clone()));
        }
        // An image: its config may carry an inline cache.
        let bytes = self.read_small(config)?;
        let v: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|_| RemoteCacheError::NoInlineCache)?;
        let Some(inline) = v.get(INLINE_CONFIG_KEY) else {
            return Err(RemoteCacheError::NoInlineCache);
        };
        let diff_ids: Vec<Digest> = v["rootfs"]["diff_ids"]
            .as_array()
            .map(|a| a.iter().filter_map(|d| d.as_str()?.parse().ok()).collect())
            .unwrap_or_default();
        let mut description = Description::from_value(inline, &diff_ids)?;
        // The image's layers are the inline cache's blobs.
        for (diff, blob) in diff_ids.iter().zip(&manifest.layers) {
            description
                .layers
                .entry(diff.clone())
                .or_insert_with(|| blob.clone());
        }
        Ok(ReadDescription {
            description,
            inline: true,
            manifest: manifest_digest,
        })
    }

    /// A small blob (manifest, description, config), digest checked.
    fn read_small(&self, desc: &Descriptor) -> Result<Vec<u8>> {
        if desc.size > MAX_SIZE {
            return Err(RemoteCacheError::TooLarge {
                what: format!("blob {}", desc.digest),
                size: desc.size,
                limit: MAX_SIZE,
            });
        }
        let bytes = match self {
            Location::Registry { client, reference } => {
                let mut out = Vec::new();
                client.get_blob(
                    reference.repository(),
                    &desc.digest,
                    Some(desc.size),
                    &mut out,
                    &mut |_| {},
                )?;
                out
            }
            Location::Local(dir) => read_bounded(&blob_path(dir, &desc.digest), MAX_SIZE)?,
        };
        let actual = Digest::sha256_of(&bytes);
        if actual != desc.digest {
            return Err(RemoteCacheError::Store(
                crate::cache::StoreError::DigestMismatch {
                    what: format!("blob {} in {self}", desc.digest),
                    expected: desc.digest.clone(),
                    actual,
                },
            ));
        }
        Ok(bytes)
    }

    /// Brings a layer blob into the store, verified against its digest and
    /// size before it is published; returns the bytes transferred.
    pub fn fetch_blob(&self, store: &Store, desc: &Descriptor) -> Result<u64> {
        let what = format!("cache layer {} from {self}", desc.digest);
        match self {
            Location::Registry { client, reference } => {
                let tmp = store.scratch_path("cache-blob")?;
                let result = (|| -> Result<u64> {
                    let mut file = File::options()
                        .create_new(true)
                        .read(true)
                        .write(true)
                        .open(&tmp)
                        .map_err(io_err(&tmp, "creating download file"))?;
                    let n = client.get_blob_to_file(
                        reference.repository(),
                        &desc.digest,
                        Some(desc.size),
                        &mut file,
                        &mut |_| {},
                    )?;
                    let file = File::open(&tmp).map_err(io_err(&tmp, "reopening download"))?;
                    store.ingest_blob(file, Some(&desc.digest), Some(desc.size), &what)?;
                    Ok(n)
                })();
                let _ = std::fs::remove_file(&tmp);
                result
            }
            Location::Local(dir) => {
                let path = blob_path(dir, &desc.digest);
                let file = File::open(&path).map_err(io_err(&path, "opening cache blob"))?;
                store.ingest_blob(file, Some(&desc.digest), Some(desc.size), &what)?;
                Ok(desc.size)
            }
        }
    }

    /// Whether the cache's place already holds the blob.
    pub fn has_blob(&self, desc: &Descriptor) -> Result<bool> {
        match self {
            Location::Registry { client, reference } => Ok(client
                .blob_exists(reference.repository(), &desc.digest)?
                .is_some()),
            Location::Local(dir) => Ok(blob_path(dir, &desc.digest).is_file()),
        }
    }

    /// Copies a store blob to the cache's place, unless it is there.
    pub fn put_store_blob(&self, store: &Store, desc: &Descriptor) -> Result<()> {
        if self.has_blob(desc)? {
            return Ok(());
        }
        let mut file = store.open_blob(&desc.digest)?;
        match self {
            Location::Registry { client, reference } => Ok(client.push_blob(
                reference.repository(),
                &desc.digest,
                desc.size,
                &mut file,
                &mut |_| {},
            )?),
            Location::Local(dir) => write_file_atomically(&blob_path(dir, &desc.digest), &mut file),
        }
    }

    /// Writes a small blob held in memory (the description).
    pub fn put_bytes(&self, bytes: &[u8]) -> Result<Descriptor> {
        let desc = Descriptor::new(MEDIA_TYPE, Digest::sha256_of(bytes), bytes.len() as u64);
        if self.has_blob(&desc)? {
            return Ok(desc);
        }
        match self {
            Location::Registry { client, reference } => client.push_blob(
                reference.repository(),
                &desc.digest,
                desc.size,
                &mut Cursor::new(bytes),
                &mut |_| {},
            )?,
            Location::Local(dir) => {
                write_file_atomically(&blob_path(dir, &desc.digest), &mut Cursor::new(bytes))?
            }
        }
        Ok(desc)
    }

    /// Publishes the manifest (its blobs are all in place): the tag in a
    /// registry; in a directory the manifest blob, then `oci-layout`, then
    /// `index.json`, renamed into place last.
    pub fn put_manifest(&self, bytes: &[u8]) -> Result<Digest> {
        match self {
            Location::Registry { client, reference } => Ok(client.put_manifest(
                reference.repository(),
                &reference.registry_reference(),
                media::OCI_MANIFEST,
                bytes,
            )?),
            Location::Local(dir) => {
                let digest = Digest::sha256_of(bytes);
                write_file_atomically(&blob_path(dir, &digest), &mut Cursor::new(bytes))?;
                write_file_atomically(
                    &dir.join("oci-layout"),
                    &mut Cursor::new(br#"{"imageLayoutVersion":"1.0.0"}"#),
                )?;
                let index = Index {
                    schema_version: 2,
                    media_type: Some(media::OCI_INDEX.into()),
                    manifests: vec![Descriptor::new(
                        media::OCI_MANIFEST,
                        digest.clone(),
                        bytes.len() as u64,
                    )],
                    annotations: None,
                    extra: Default::default(),
                };
                let index = serde_json::to_vec(&index).expect("an index serializes");
                write_file_atomically(&dir.join("index.json"), &mut Cursor::new(index))?;
                Ok(digest)
            }
        }
    }
}

fn io_err(path: &Path, op: &'static str) -> impl FnOnce(std::io::Error) -> RemoteCacheError {
    let path = path.to_path_buf();
    move |source| RemoteCacheError::Io { path, op, source }
}

fn blob_path(dir: &Path, digest: &Digest) -> PathBuf {
    dir.join("blobs/sha256").join(digest.hex())
}

/// Reads a file of at most `limit` bytes.
fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>> {
    let file = File::open(path).map_err(io_err(path, "opening"))?;
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(io_err(path, "reading"))?;
    if bytes.len() as u64 > limit {
        return Err(RemoteCacheError::TooLarge {
            what: path.display().to_string(),
            size: bytes.len() as u64,
            limit,
        });
    }
    Ok(bytes)
}

/// Writes `path` through a temporary file in its directory, synced and
/// renamed, so a reader sees the old file or the whole new one.
fn write_file_atomically(path: &Path, content: &mut dyn Read) -> Result<()> {
    let dir = path.parent().expect("layout paths have a parent");
    std::fs::create_dir_all(dir).map_err(io_err(dir, "creating directory"))?;
    let tmp = dir.join(format!(
        ".tmp-{}-{}",
        std::process::id(),
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file")
    ));
    let result = (|| -> std::io::Result<()> {
        let mut f = File::create(&tmp)?;
        std::io::copy(content, &mut f)?;
        f.flush()?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(io_err(path, "writing")(e));
    }
    Ok(())
}
