//! Image archives: `save` writes images from the store as a tar, `load`
//! reads one back, in docker-archive or OCI image layout form.
//!
//! Saving streams: layer blobs come from the store ([`Store::layer_tar`]
//! makes and caches the requested compression once) and go straight into
//! the output tar. The docker format is what docker ≥ 25 writes: an OCI
//! layout *plus* `manifest.json` and `repositories`, so `docker load`
//! (old and new), `skopeo … docker-archive:` and OCI tools all read it.
//!
//! Loading reads the whole tar first (neither format puts its table of
//! contents first), ingesting each blob with digest verification, then
//! works out the images, unpacks all their layers (in parallel), and
//! only then records the images and their names. A broken archive
//! therefore leaves no image listed; what it did ingest belongs to this
//! process's lease and is collected when the store is dropped.

pub mod destination;
mod docker;
pub mod layout_dir;
mod manifest_options;
mod oci;
mod reader;
mod writer;

use crate::cache::{Image, Store, StoreError, StoredIndex};
use crate::error_chain::Chain;
use crate::image::digest::Digest;
use crate::image::layer::{chain_id, decompressed, Compression};
use crate::image::oci::{image_index, media, Descriptor, ImageConfig, Manifest, Platform};
use crate::image::reference::ImageRef;
use crate::image::timestamp::parse_rfc3339;
use rayon::prelude::*;
use reader::{blob_path, Contents};
use std::collections::HashSet;
use std::io::{self, Read, Write};
use writer::TarWriter;

pub use manifest_options::ManifestOptions;

/// Why a save or load failed. Messages name the archive entry, blob or
/// image concerned.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("reading the archive")]
    Read(#[source] io::Error),
    #[error("writing the archive")]
    Write(#[source] io::Error),
    #[error("archive entry {entry}: {reason}")]
    Entry { entry: String, reason: String },
    #[error("archive entry {entry} is missing (referenced by {referenced_by})")]
    Missing {
        entry: String,
        referenced_by: String,
    },
    #[error("archive entry {entry}: invalid JSON")]
    Json {
        entry: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{context}")]
    Store {
        context: String,
        #[source]
        source: StoreError,
    },
    #[error(
        "not an image archive: it has neither manifest.json (docker) nor index.json (OCI layout)"
    )]
    NotAnArchive,
    #[error("{image}: index {index} has no image for {wanted} (it has: {available})")]
    Platform {
        image: String,
        index: Digest,
        wanted: String,
        available: String,
    },
    #[error("{image}: {reason}")]
    Invalid { image: String, reason: String },
}

/// Which archive layout `save` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// docker-archive as docker ≥ 25 writes it (OCI layout + manifest.json).
    Docker,
    /// A plain OCI image layout (oci-layout, index.json, blobs).
    Oci,
}

/// How `save` writes its archive.
#[derive(Debug, Clone)]
pub struct SaveOptions {
    pub format: Format,
    /// Compression of the layer blobs (docker writes them uncompressed).
    pub compression: Compression,
    /// Levels, media types, annotations (`kiln build -o` options).
    pub manifest: ManifestOptions,
}

impl Default for SaveOptions {
    fn default() -> Self {
        SaveOptions {
            format: Format::Docker,
            compression: Compression::None,
            manifest: ManifestOptions::default(),
        }
    }
}

/// What `save` wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaveReport {
    /// Images written (each once, whatever the number of names).
    pub images: usize,
    /// Blob files written (shared layers count once).
    pub blobs: usize,
    /// Total archive size.
    pub bytes: u64,
}

/// An image `load` recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedImage {
    /// The image ID (config digest).
    pub id: Digest,
    /// The names it was given.
    pub names: Vec<ImageRef>,
    /// Names that pointed at another image before (name, old image ID):
    /// docker reports these as renamed to the empty string.
    pub replaced: Vec<(ImageRef, Digest)>,
}

/// An image as written into an archive.
#[derive(Clone)]
struct SavedImage {
    id: Digest,
    tags: Vec<ImageRef>,
    manifest: Descriptor,
    layers: Vec<Descriptor>,
    diff_ids: Vec<Digest>,
}

/// An image found in an archive, validated, not yet recorded.
struct Plan {
    manifest_digest: Digest,
    config_digest: Digest,
    diff_ids: Vec<Digest>,
    layers: Vec<Descriptor>,
    names: Vec<ImageRef>,
    /// How errors name the image: its first name or its place in the index.
    label: String,
}

impl Plan {
    /// Checks that the manifest's config and layers are there (in the
    /// archive or already in the store), that the config parses, is for
    /// linux and lists one diff ID per layer.
    fn new(
        store: &Store,
        contents: &Contents,
        manifest_digest: Digest,
        manifest: Manifest,
        names: Vec<ImageRef>,
        label: String,
    ) -> Result<Plan, ArchiveError> {
        let invalid = |reason: String| ArchiveError::Invalid {
            image: label.clone(),
            reason,
        };
        let cfg = &manifest.config;
        oci::require_blob(
            store,
            contents,
            &cfg.digest,
            &format!("the config of {label}"),
        )?;
        let bytes = store
            .read_blob(&cfg.digest)
            .map_err(|source| ArchiveError::Store {
                context: label.clone(),
                source,
            })?;
        let config: ImageConfig = serde_json::from_slice(&bytes).map_err(|e| {
            invalid(format!(
                "config {} is not a valid image config: {e}",
                blob_path(&cfg.digest),
                e = Chain(&e)
            ))
        })?;
        if !config.os.is_empty() && config.os != "linux" {
            return Err(invalid(format!(
                "cannot load a {} image on linux",
                config.os
            )));
        }
        let diff_ids = config.rootfs.diff_ids;
        if diff_ids.len() != manifest.layers.len() {
            return Err(invalid(format!(
                "invalid manifest, layers length mismatch: {} layers but the config lists {} diff IDs",
                manifest.layers.len(),
                diff_ids.len()
            )));
        }
        for (i, l) in manifest.layers.iter().enumerate() {
            let what = format!("layer {i} of {label}");
            oci::require_blob(store, contents, &l.digest, &what)?;
            let actual = std::fs::metadata(store.blob_path(&l.digest))
                .map(|m| m.len())
                .unwrap_or(l.size);
            if actual != l.size {
                return Err(ArchiveError::Entry {
                    entry: blob_path(&l.digest),
                    reason: format!("{actual} bytes but {what} says {}", l.size),
                });
            }
        }
        Ok(Plan {
            manifest_digest,
            config_digest: cfg.digest.clone(),
            diff_ids,
            layers: manifest.layers,
            names,
            label,
        })
    }
}

/// Writes the images `specs` name (as `docker save` takes them: a name
/// with a tag, a bare repository name for all its tags, an ID or ID
/// prefix) to `out` as one archive. Shared layers are written once.
pub fn save(
    store: &Store,
    specs: &[String],
    opts: &SaveOptions,
    out: impl Write,
) -> Result<SaveReport, ArchiveError> {
    save_attached(store, specs, opts, out, &super::attached::nothing)
}

/// [`save`], with the manifests `attach` makes for each image manifest
/// written (BuildKit's attestation manifests): an image with any is named
/// in `index.json` by an image index of its manifest and them, written
/// as a blob, as BuildKit's OCI exporter does (moby/buildkit
/// `exporter/oci/export.go` exports the image writer's index).
pub fn save_attached(
    store: &Store,
    specs: &[String],
    opts: &SaveOptions,
    out: impl Write,
    attach: super::attached::Attach<'_>,
) -> Result<SaveReport, ArchiveError> {
    let targets = resolve_targets(store, specs)?;
    let mut w = TarWriter::new(out);
    w.file("oci-layout", oci::LAYOUT, 0)?;
    w.dir("blobs")?;
    w.dir("blobs/sha256")?;
    let mut saved = Vec::with_capacity(targets.len());
    let mut indexes = Vec::new();
    // What manifest.json lists: a multi-platform name there names its
    // host image only (it has no place for an index; docker 25's classic
    // store saves the one image a tag names), index.json the index.
    let mut listed = Vec::with_capacity(targets.len());
    for (image, tags) in targets {
        let (index_tags, image_tags) = split_index_tags(store, tags)?;
        let only_indexes = image_tags.is_empty() && !index_tags.is_empty();
        for (index, tags) in index_tags {
            let (desc, members) = write_index(store, &mut w, &index, opts, attach)?;
            if let Some(host) = members.into_iter().find(|m| m.id == image.id) {
                listed.push(SavedImage {
                    tags: tags.clone(),
                    ..host
                });
            }
            indexes.push((desc, tags));
        }
        if only_indexes {
            continue;
        }
        let mut one = write_image(store, &mut w, image, image_tags, opts)?;
        listed.push(one.clone());
        let attached = attach(&one.manifest);
        if !attached.is_empty() {
            let platform = one
                .manifest
                .platform
                .clone()
                .unwrap_or_else(Platform::linux_amd64);
            let extra = write_attached(&mut w, &attached)?;
            one.manifest = write_index_blob(&mut w, &[(one.manifest.clone(), platform)], &extra)?;
        }
        saved.push(one);
    }
    w.file("index.json", &oci::index_json(&saved, &indexes), 0)?;
    if opts.format == Format::Docker {
        w.file("manifest.json", &docker::manifest_json(&listed), 0)?;
        if let Some(repos) = docker::repositories(&listed) {
            w.file("repositories", &repos, 0)?;
        }
    }
    w.finish()?;
    let report = SaveReport {
        images: saved.len(),
        blobs: w.blobs,
        bytes: w.bytes,
    };
    tracing::debug!(?report, "archive written");
    Ok(report)
}

/// `tags` split into those naming a multi-platform index (grouped by
/// index) and the others.
#[allow(clippy::type_complexity)]
fn split_index_tags(
    store: &Store,
    tags: Vec<ImageRef>,
) -> Result<(Vec<(StoredIndex, Vec<ImageRef>)>, Vec<ImageRef>), ArchiveError> {
    let mut indexes: Vec<(StoredIndex, Vec<ImageRef>)> = Vec::new();
    let mut plain = Vec::new();
    for t in tags {
        let found = store
            .index_named(&t)
            .map_err(|source| ArchiveError::Store {
                context: format!("saving {}", t.familiar()),
                source,
            })?;
        match found {
            Some(index) => match indexes.iter_mut().find(|(i, _)| i.digest == index.digest) {
                Some((_, names)) => names.push(t),
                None => indexes.push((index, vec![t])),
            },
            None => plain.push(t),
        }
    }
    Ok((indexes, plain))
}

/// Writes each platform image of `index` and an index over them
/// (`image_index::assemble`, so its manifests are those in the archive);
/// returns the index's descriptor and the images written.
fn write_index(
    store: &Store,
    w: &mut TarWriter<impl Write>,
    index: &StoredIndex,
    opts: &SaveOptions,
    attach: super::attached::Attach<'_>,
) -> Result<(Descriptor, Vec<SavedImage>), ArchiveError> {
    let mut members = Vec::with_capacity(index.members.len());
    let mut manifests = Vec::with_capacity(index.members.len());
    let mut attached = Vec::new();
    for id in &index.members {
        let image = store
            .hold_image(&id.to_string())
            .map_err(|source| ArchiveError::Store {
                context: format!("saving index {}", index.digest),
                source,
            })?;
        let saved = write_image(store, w, image, Vec::new(), opts)?;
        let platform = saved
            .manifest
            .platform
            .clone()
            .unwrap_or_else(Platform::linux_amd64);
        manifests.push((saved.manifest.clone(), platform));
        attached.extend(attach(&saved.manifest));
        members.push(saved);
    }
    let mut extra =
        index.index.manifests[index.members.len().min(index.index.manifests.len())..].to_vec();
    extra.extend(write_attached(w, &attached)?);
    let desc = write_index_blob(w, &manifests, &extra)?;
    Ok((desc, members))
}

/// Writes the index of `manifests` then `extra` as a blob; its descriptor.
fn write_index_blob(
    w: &mut TarWriter<impl Write>,
    manifests: &[(Descriptor, Platform)],
    extra: &[Descriptor],
) -> Result<Descriptor, ArchiveError> {
    let bytes = image_index::to_bytes(&image_index::assemble(manifests, extra));
    let desc = Descriptor::new(
        media::OCI_INDEX,
        Digest::sha256_of(&bytes),
        bytes.len() as u64,
    );
    w.file(&blob_path(&desc.digest), &bytes, 0)?;
    Ok(desc)
}

/// Resolves save arguments to images and the tags each is saved under,
/// in order of first mention, with moby's rules: `name:tag` saves that
/// tag, a bare `name` every tag of the repository, an ID (or digest
/// reference) the image with no tag.
fn resolve_targets(
    store: &Store,
    specs: &[String],
) -> Result<Vec<(Image, Vec<ImageRef>)>, ArchiveError> {
    let mut out: Vec<(Image, Vec<ImageRef>)> = Vec::new();
    let mut add = |image: Image, tag: Option<ImageRef>| {
        let i = match out.iter().position(|(im, _)| im.id == image.id) {
            Some(i) => i,
            None => {
                out.push((image, Vec::new()));
                out.len() - 1
            }
        };
        if let Some(t) = tag {
            if !out[i].1.contains(&t) {
                out[i].1.push(t);
            }
        }
    };
    // Held as found: a concurrent prune cannot take what is being saved.
    let lookup = |spec: &str| {
        store
            .hold_image(spec)
            .map_err(|source| ArchiveError::Store {
                context: "saving".into(),
                source,
            })
    };
    for spec in specs {
        let parsed = if spec.starts_with("sha256:") {
            None
        } else {
            ImageRef::parse_unnormalized_tag(spec).ok()
        };
        match parsed {
            Some(r) if r.digest().is_none() && r.tag().is_some() => {
                add(lookup(spec)?, Some(r));
            }
            Some(r) if r.digest().is_none() => {
                let mut tagged: Vec<(Digest, ImageRef)> = Vec::new();
                let listing = store.list_images().map_err(|source| ArchiveError::Store {
                    context: "saving".into(),
                    source,
                })?;
                for s in listing {
                    for n in s.names.iter().filter(|n| n.name() == r.name()) {
                        tagged.push((s.id.clone(), n.clone()));
                    }
                }
                if tagged.is_empty() {
                    // Not a repository: an ID prefix, as docker tries next.
                    add(lookup(spec)?, None);
                }
                tagged.sort_by(|a, b| a.1.cmp(&b.1));
                for (id, n) in tagged {
                    add(lookup(&id.to_string())?, Some(n));
                }
            }
            _ => add(lookup(spec)?, None),
        }
    }
    Ok(out)
}

/// Writes one image's layers (in the requested compression), config and
/// a fresh OCI manifest. The manifest is rebuilt rather than copied so
/// that it always matches the blobs in the archive; for an image kiln
/// made and saved uncompressed it is byte-identical to the stored one.
fn write_image(
    store: &Store,
    w: &mut TarWriter<impl Write>,
    image: Image,
    tags: Vec<ImageRef>,
    opts: &SaveOptions,
) -> Result<SavedImage, ArchiveError> {
    let how = &opts.manifest;
    let label = match tags.first() {
        Some(t) => t.familiar(),
        None => image.id.to_string(),
    };
    let store_err = |source| ArchiveError::Store {
        context: format!("saving {label}"),
        source,
    };
    // docker stamps an image's blobs with its creation time.
    let mtime = image
        .config
        .created
        .as_deref()
        .and_then(parse_rfc3339)
        .unwrap_or(0)
        .max(0) as u64;
    let mut layers = Vec::with_capacity(image.layers.len());
    for l in &image.layers {
        let blob = how
            .layer_blob(store, l, opts.compression)
            .map_err(store_err)?;
        let desc = Descriptor::new(&blob.media_type, blob.digest, blob.size);
        w.blob(store, &blob_path(&desc.digest), &desc, mtime)?;
        layers.push(desc);
    }
    let config_bytes = store.read_blob(&image.id).map_err(store_err)?;
    w.file(&blob_path(&image.id), &config_bytes, mtime)?;
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(how.manifest_media_type().to_string()),
        config: Descriptor::new(
            how.config_media_type(),
            image.id.clone(),
            config_bytes.len() as u64,
        ),
        layers: layers.clone(),
        annotations: ManifestOptions::annotations(&how.manifest_annotations),
        extra: Default::default(),
    };
    // Serializing our own struct cannot fail.
    let manifest_bytes = serde_json::to_vec(&manifest).unwrap_or_default();
    let manifest_digest = Digest::sha256_of(&manifest_bytes);
    w.file(&blob_path(&manifest_digest), &manifest_bytes, mtime)?;
    let mut desc = Descriptor::new(
        how.manifest_media_type(),
        manifest_digest,
        manifest_bytes.len() as u64,
    );
    desc.annotations = ManifestOptions::annotations(&how.descriptor_annotations);
    let c = &image.config;
    if !c.architecture.is_empty() && !c.os.is_empty() {
        desc.platform = Some(Platform::new(&c.os, &c.architecture, c.variant.as_deref()));
    }
    Ok(SavedImage {
        diff_ids: image.layers.iter().map(|l| l.diff_id.clone()).collect(),
        id: image.id,
        tags,
        manifest: desc,
        layers,
    })
}

/// Writes the blobs and manifests of `attached`; returns their index
/// entries.
fn write_attached(
    w: &mut TarWriter<impl Write>,
    attached: &[super::Attached],
) -> Result<Vec<Descriptor>, ArchiveError> {
    for a in attached {
        for (d, bytes) in &a.blobs {
            w.file(&blob_path(&d.digest), bytes, 0)?;
        }
        w.file(&blob_path(&a.descriptor.digest), &a.manifest, 0)?;
    }
    Ok(attached.iter().map(|a| a.descriptor.clone()).collect())
}

/// Loads every image in the archive read from `input` (plain, gzip or
/// zstd; docker-archive of any age or OCI layout) and names them. On
/// error nothing is named or listed.
pub fn load(
    store: &Store,
    input: impl Read + Send + 'static,
) -> Result<Vec<LoadedImage>, ArchiveError> {
    let tar = decompressed(input).map_err(ArchiveError::Read)?;
    let contents = Contents::read(store, tar)?;
    // moby reads manifest.json when there is one, even next to index.json
    // (docker ≥ 25 writes both): it carries the familiar RepoTags.
    let (plans, indexes) = if contents.document("manifest.json").is_some() {
        (docker::plan(store, &contents)?, Vec::new())
    } else if contents.document("index.json").is_some() {
        oci::plan(store, &contents)?
    } else {
        return Err(ArchiveError::NotAnArchive);
    };
    unpack_layers(store, &plans)?;
    let mut loaded = Vec::with_capacity(plans.len());
    // A multi-platform image's platforms are reported as the index.
    let members: HashSet<&Digest> = indexes
        .iter()
        .flat_map(|i| i.members.iter().map(|(d, _)| &d.digest))
        .collect();
    for p in &plans {
        let mut replaced = Vec::new();
        for n in &p.names {
            if let Ok(old) = store.image(&n.to_string()) {
                if old.id != p.config_digest {
                    replaced.push((n.clone(), old.id));
                }
            }
        }
        let image = store
            .commit_image(&p.manifest_digest, &p.names, &[])
            .map_err(|source| ArchiveError::Store {
                context: format!("recording {}", p.label),
                source,
            })?;
        if p.names.is_empty() && members.contains(&p.manifest_digest) {
            continue;
        }
        loaded.push(LoadedImage {
            id: image.id,
            names: p.names.clone(),
            replaced,
        });
    }
    for index in indexes {
        loaded.push(record_index(store, &plans, index)?);
    }
    Ok(loaded)
}

/// Names a loaded multi-platform image: its index over the platforms'
/// images just recorded, the names pointing at the host's (else the
/// first) for single-image commands.
fn record_index(
    store: &Store,
    plans: &[Plan],
    index: oci::IndexPlan,
) -> Result<LoadedImage, ArchiveError> {
    let label = index
        .names
        .first()
        .map(ImageRef::familiar)
        .unwrap_or_default();
    let mut members = Vec::with_capacity(index.members.len());
    for (desc, _) in &index.members {
        let plan = plans
            .iter()
            .find(|p| p.manifest_digest == desc.digest)
            .ok_or_else(|| ArchiveError::Invalid {
                image: label.clone(),
                reason: format!("index entry {} was not loaded", desc.digest),
            })?;
        members.push(plan.config_digest.clone());
    }
    let host = Platform::host();
    let default = index
        .members
        .iter()
        .position(|(_, p)| p.runs_on(&host).is_some())
        .unwrap_or(0);
    let mut replaced = Vec::new();
    for n in &index.names {
        if let Ok(old) = store.image(&n.to_string()) {
            if old.id != members[default] {
                replaced.push((n.clone(), old.id));
            }
        }
    }
    store
        .commit_index(&index.bytes, &members, &members[default], &index.names)
        .map_err(|source| ArchiveError::Store {
            context: format!("recording {label}"),
            source,
        })?;
    Ok(LoadedImage {
        id: members[default].clone(),
        names: index.names,
        replaced,
    })
}

/// Unpacks every layer of every planned image into its snapshot, in
/// parallel: a layer's snapshot depends only on its own tar (the parent
/// only names it), so the order does not matter. Each layer's content is
/// checked against its diff ID as it unpacks.
fn unpack_layers(store: &Store, plans: &[Plan]) -> Result<(), ArchiveError> {
    struct Job<'a> {
        desc: &'a Descriptor,
        diff_id: &'a Digest,
        parent: Option<Digest>,
        what: String,
    }
    let mut seen = HashSet::new();
    let mut jobs = Vec::new();
    for p in plans {
        let mut parent: Option<Digest> = None;
        for (i, (desc, diff_id)) in p.layers.iter().zip(&p.diff_ids).enumerate() {
            let chain = chain_id(parent.as_ref(), diff_id);
            if seen.insert(chain.clone()) {
                jobs.push(Job {
                    desc,
                    diff_id,
                    parent: parent.clone(),
                    what: format!("{}: layer {i} ({})", p.label, blob_path(&desc.digest)),
                });
            }
            parent = Some(chain);
        }
    }
    jobs.par_iter().try_for_each(|j| {
        store
            .add_layer_from_blob(j.desc, j.diff_id, j.parent.as_ref())
            .map(|_| ())
            .map_err(|source| ArchiveError::Store {
                context: j.what.clone(),
                source,
            })
    })
}
