//! `--cache-to`: the build's step results, described and written where
//! the cache lives.
//!
//! [`describe`] turns build cache records into a [`Description`]; each
//! layer's compressed blob comes from the store's per-diff-ID blob cache
//! (`Store::layer_tar`), so a layer the pushed image also has is the same
//! blob, compressed once. [`export`] then merges with what the ref already
//! holds (so parallel builders of different branches do not evict each
//! other; at worst the last writer wins, never a broken ref), writes the
//! blobs, then the description, then the manifest last: a ref never names
//! half a cache.

use std::collections::{BTreeMap, BTreeSet};

use super::description::{Description, Record, MEDIA_TYPE};
use super::location::Location;
use super::RemoteCacheError;
use crate::cache::{LayerInfo, Store};
use crate::image::layer::Compression;
use crate::image::oci::{media, Descriptor, Manifest};
use crate::image::Digest;

/// A `--cache-to` that failed.
#[derive(Debug, thiserror::Error)]
#[error("exporting the build cache to {target}")]
pub struct ExportError {
    pub target: String,
    #[source]
    pub source: Box<RemoteCacheError>,
}

/// What an export wrote.
#[derive(Debug, Clone)]
pub struct ExportReport {
    /// Records in the exported description (this build's and kept ones).
    pub records: usize,
    /// The cache manifest's digest.
    pub manifest: Digest,
}

/// Compressions run at once: a cold export of big layers is bound by
/// compression, and each layer is independent.
const PARALLEL_COMPRESSIONS: usize = 4;

/// The records of `keys` as this store holds them (keys without a record,
/// such as context loads, are skipped), or else as `imported` has them
/// (a step this build found in a `--cache-from` cache but never took).
/// With `compression`, every layer gets a blob in it (made once per diff
/// ID and kept) and a record whose snapshots are not all here is left out;
/// without, the layers are named by diff ID only (an inline cache's blobs
/// are the image's). A blob made for a registry `upload_to` is uploaded
/// there while it is made ([`super::stream`]).
pub fn describe(
    store: &Store,
    keys: &[Digest],
    compression: Option<Blobs>,
    upload_to: Option<&Location>,
    imported: &dyn Fn(&Digest) -> Option<Record>,
) -> Result<Description, RemoteCacheError> {
    let mut description = Description::new();
    let mut layers: BTreeMap<Digest, LayerInfo> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    for key in keys {
        if !seen.insert(key.clone()) {
            continue;
        }
        // A local record: its layers leased in one transaction (each
        // write transaction costs an fsync, and max mode has many keys).
        if let (Some(infos), Some(created)) =
            (store.build_cache_get(key)?, store.build_cache_created(key)?)
        {
            let diffs = infos.iter().map(|i| i.diff_id.clone()).collect();
            for info in infos {
                layers.entry(info.diff_id.clone()).or_insert(info);
            }
            description.records.push(Record {
                key: key.clone(),
                created,
                layers: diffs,
            });
            continue;
        }
        // An imported record nothing took: its layers are here if the
        // steps above it were taken, and an inline cache needs none.
        let Some(record) = imported(key) else {
            continue;
        };
        let mut infos = Vec::new();
        for chain in crate::image::layer::chain_ids(&record.layers) {
            if !store.hold_existing_snapshot(&chain)? {
                infos.clear();
                break;
            }
            infos.push(store.layer_info(&chain)?);
        }
        if infos.len() == record.layers.len() {
            for info in infos {
                layers.entry(info.diff_id.clone()).or_insert(info);
            }
        } else if compression.is_some() {
            continue;
        }
        description.records.push(record);
    }
    if let Some(blobs) = compression {
        description.layers = compress_all(store, layers.into_values().collect(), blobs, upload_to)?;
    }
    Ok(description)
}

/// Adds cache mount directories to `description`: each `(id, dir)` as
/// one layer made from a copy of the directory (the store's own
/// directory is never touched), with its blob in `compression`.
pub fn add_mounts(
    store: &Store,
    description: &mut Description,
    mounts: &[(String, std::path::PathBuf)],
    compression: Compression,
) -> Result<(), RemoteCacheError> {
    for (id, dir) in mounts {
        let copy = store.scratch_path("cache-mount-export")?;
        let io = |op| {
            let path = copy.clone();
            move |source| RemoteCacheError::Io { path, op, source }
        };
        std::fs::create_dir(&copy).map_err(io("creating a cache mount copy"))?;
        crate::cache::copy_tree(dir, &copy).map_err(io("copying a cache mount"))?;
        let layer = store.add_layer_from_dir(&copy, None)?;
        let blob = store.layer_tar(&layer, compression)?;
        description.layers.insert(layer.diff_id.clone(), blob);
        description.mounts.push(super::description::MountRecord {
            id: id.clone(),
            created: crate::image::timestamp::now_rfc3339(),
            layer: layer.diff_id,
        });
    }
    Ok(())
}

/// Which layer blobs an export writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Blobs {
    /// The compression of blobs it makes.
    pub compression: Compression,
    /// Whether every blob must be in `compression`; else a blob the store
    /// already has in another compression is reused (see
    /// [`super::ExportOptions::compression_given`]).
    pub forced: bool,
}

/// The blob of each layer, a few at a time.
fn compress_all(
    store: &Store,
    layers: Vec<LayerInfo>,
    blobs: Blobs,
    upload_to: Option<&Location>,
) -> Result<BTreeMap<Digest, Descriptor>, RemoteCacheError> {
    let registry = match upload_to {
        Some(Location::Registry { client, reference }) => Some((&**client, reference.repository())),
        _ => None,
    };
    let compression = blobs.compression;
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..PARALLEL_COMPRESSIONS.min(layers.len()) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let Some(layer) = layers.get(i) else { break };
                let existing = if blobs.forced {
                    None
                } else {
                    existing_compressed(store, layer, compression)
                };
                let made = layer.blobs.iter().any(|b| {
                    Compression::from_media_type(&b.media_type) == Some(compression)
                        && store.has_blob(&b.digest)
                });
                let r = match (existing, registry) {
                    (Some(blob), _) => Ok(blob),
                    (None, Some((client, repository))) if !made => {
                        super::stream::compress_and_upload(
                            store,
                            client,
                            repository,
                            layer,
                            compression,
                        )
                    }
                    (None, _) => store.layer_tar(layer, compression),
                };
                if let Ok(mut out) = results.lock() {
                    out.push((layer.diff_id.clone(), r));
                }
            });
        }
    });
    let mut out = BTreeMap::new();
    for (diff, r) in results.into_inner().unwrap_or_else(|p| p.into_inner()) {
        out.insert(diff, r?);
    }
    Ok(out)
}

/// A compressed blob the store already has for `layer`: one in
/// `compression` first, else one in any other compression. Compressing a
/// big layer again is most of a cold export's time, and BuildKit's
/// exporters likewise reuse a blob of another compression unless told
/// `force-compression=true` (moby/buildkit `util/compression/
/// compression.go`, `Config.Force`); an uncompressed tar is never reused.
fn existing_compressed(
    store: &Store,
    layer: &LayerInfo,
    compression: Compression,
) -> Option<Descriptor> {
    let compressed = |b: &&Descriptor| {
        matches!(
            Compression::from_media_type(&b.media_type),
            Some(c) if c != Compression::None
        ) && store.has_blob(&b.digest)
    };
    let wanted = layer
        .blobs
        .iter()
        .filter(compressed)
        .find(|b| Compression::from_media_type(&b.media_type) == Some(compression));
    wanted
        .or_else(|| layer.blobs.iter().find(compressed))
        .cloned()
}

/// Times an export checks, after writing, that a concurrent export to
/// the same ref did not drop its records (and merges and writes again).
const WRITE_ATTEMPTS: u32 = 3;

/// How long after writing an export reads the ref back: long enough for
/// a concurrent writer that read the ref before ours landed to have
/// written. Such a writer takes about as long from its read to its write
/// as this export did (same registry, same description size), so the
/// pause is twice that plus a margin, capped: tens of milliseconds on a
/// near registry, where a fixed 0.3 s was most of a small export.
fn settle(read_to_write: std::time::Duration) -> std::time::Duration {
    const MARGIN: std::time::Duration = std::time::Duration::from_millis(20);
    const MAX: std::time::Duration = std::time::Duration::from_millis(300);
    (read_to_write * 2 + MARGIN).min(MAX)
}

/// Writes `description` and its blobs to `location`, merged with the
/// cache already there (this build's records win; the newest
/// [`super::description::MAX_RECORDS`] are kept). What is there but cannot
/// be read is replaced.
///
/// A registry has no compare-and-swap, so two builders exporting to one
/// ref at once could each write a merge that lacks the other's records.
/// The ref is read just before the manifest is written, and once more
/// after a pause ([`settle`]): if a concurrent export replaced ours with one that
/// lacks this build's records, they are merged in and written again (a
/// few times at most). At worst the last writer wins; the ref always
/// names a whole cache, since its blobs are written before it.
pub fn export(
    store: &Store,
    location: &Location,
    description: Description,
) -> Result<ExportReport, RemoteCacheError> {
    let ours: Vec<Descriptor> = description.layers.values().cloned().collect();
    let own_keys: Vec<Digest> = description.records.iter().map(|r| r.key.clone()).collect();
    // All of this build's blobs: its records are the newest, so a merge
    // keeps them.
    for blob in &ours {
        location.put_store_blob(store, blob)?;
    }
    tracing::debug!(cache = %location, blobs = ours.len(), "layer blobs written");
    let mut read_at = std::time::Instant::now();
    let mut merged = merge_with_current(location, description.clone(), &ours);
    for attempt in 1..=WRITE_ATTEMPTS {
        let digest = write_manifest(location, &merged)?;
        std::thread::sleep(settle(read_at.elapsed()));
        let now = location.read().ok();
        let lost = match &now {
            Some(now) if now.manifest != digest && !now.inline => {
                let have: BTreeSet<&Digest> =
                    now.description.records.iter().map(|r| &r.key).collect();
                own_keys.iter().any(|k| !have.contains(k))
            }
            _ => false,
        };
        if !lost || attempt == WRITE_ATTEMPTS {
            return Ok(ExportReport {
                records: merged.records.len(),
                manifest: digest,
            });
        }
        tracing::debug!(cache = %location, attempt, "a concurrent export dropped ours; merging again");
        read_at = std::time::Instant::now();
        merged = merge_with_current(location, description.clone(), &ours);
    }
    unreachable!("the last attempt returns")
}

/// `description` merged with what `location` holds now (nothing, if that
/// cannot be read); `ours` are the blobs this export writes.
fn merge_with_current(
    location: &Location,
    mut description: Description,
    ours: &[Descriptor],
) -> Description {
    match location.read() {
        Ok(old) if !old.inline => {
            description.merge_older(old.description, |blob| {
                ours.iter().any(|b| b.digest == blob.digest)
                    || location.has_blob(blob).unwrap_or(false)
            });
        }
        Ok(_) => tracing::debug!(cache = %location, "replacing an image with a cache"),
        Err(e) => tracing::debug!(cache = %location, "nothing to merge with: {e}"),
    }
    description
}

/// Writes the description blob, then the manifest naming it and the
/// layer blobs (already in place).
fn write_manifest(
    location: &Location,
    description: &Description,
) -> Result<Digest, RemoteCacheError> {
    let config = location.put_bytes(&description.encode())?;
    debug_assert_eq!(config.media_type, MEDIA_TYPE);
    let mut layers: Vec<Descriptor> = description.layers.values().cloned().collect();
    layers.sort_by(|a, b| a.digest.cmp(&b.digest));
    layers.dedup_by(|a, b| a.digest == b.digest);
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(media::OCI_MANIFEST.to_string()),
        config,
        layers,
        annotations: None,
        extra: Default::default(),
    };
    let bytes = serde_json::to_vec(&manifest).expect("a manifest serializes");
    location.put_manifest(&bytes)
}
