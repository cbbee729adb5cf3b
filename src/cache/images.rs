//! Images in the store: records keyed by config digest (docker's image
//! ID), the name index (tags and repo digests), lookup, tag, remove, prune.

use super::lease::RefKind;
use super::snapshot::layer_info_tx;
use super::{db, stored_digest, LayerInfo, Result, Store, StoreError};
use crate::error_chain::Chain;
use crate::image::digest::Digest;
use crate::image::layer::{chain_id, chain_ids};
use crate::image::oci::{media, Descriptor, ImageConfig, Manifest};
use crate::image::reference::ImageRef;
use rusqlite::{params, OptionalExtension, Transaction};

/// An image as stored, with everything needed to run, save or push it.
#[derive(Debug, Clone)]
pub struct Image {
    /// The config digest: docker's image ID.
    pub id: Digest,
    pub manifest_digest: Digest,
    pub manifest_media_type: String,
    pub manifest: Manifest,
    pub config: ImageConfig,
    /// Bottom to top.
    pub layers: Vec<LayerInfo>,
    /// Tagged names, sorted.
    pub names: Vec<ImageRef>,
    /// `repo@sha256:…` references, sorted.
    pub repo_digests: Vec<ImageRef>,
    /// Sum of the layers' content sizes.
    pub size: u64,
    /// When the image was recorded (or last re-committed), Unix seconds.
    pub added: i64,
}

/// One image in a listing: what `kiln images` shows.
#[derive(Debug, Clone)]
pub struct ImageSummary {
    pub id: Digest,
    pub names: Vec<ImageRef>,
    pub repo_digests: Vec<ImageRef>,
    /// The config's `created` (RFC 3339), if any.
    pub created: Option<String>,
    pub size: u64,
    pub added: i64,
}

/// What `rmi`/`prune` did, in docker's wording (`Untagged:`/`Deleted:`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoveEvent {
    /// A name (familiar form) was removed.
    Untagged(String),
    /// An image (by ID) or a layer (by chain ID) was deleted.
    Deleted(Digest),
}

/// How a user's image argument matched.
enum Match {
    Name(String),
    RepoDigest(String),
    Id,
}

impl Store {
    /// Records an image whose manifest and config blobs are in the store,
    /// and points `names` (tags) and `repo_digests` (`repo@digest`) at it,
    /// all in one transaction, after checking that every snapshot exists
    /// (extracting from layer blobs where needed). A name already pointing
    /// elsewhere moves; the old image stays, untagged if it was its last.
    pub fn commit_image(
        &self,
        manifest_digest: &Digest,
        names: &[ImageRef],
        repo_digests: &[ImageRef],
    ) -> Result<Image> {
        let bytes = self.read_blob(manifest_digest)?;
        let invalid = |reason: String| StoreError::Invalid {
            what: "manifest",
            digest: manifest_digest.clone(),
            reason,
        };
        let manifest: Manifest = serde_json::from_slice(&bytes)
            .map_err(|e| invalid(format!("bad manifest: {e}", e = Chain(&e))))?;
        let mt = manifest
            .media_type
            .clone()
            .unwrap_or_else(|| media::OCI_MANIFEST.to_string());
        if !media::is_manifest(&mt) {
            return Err(StoreError::UnsupportedMediaType {
                what: "manifest",
                digest: manifest_digest.clone(),
                media_type: mt,
            });
        }
        let config_bytes = self.read_blob(&manifest.config.digest)?;
        let config: ImageConfig =
            serde_json::from_slice(&config_bytes).map_err(|e| StoreError::Invalid {
                what: "config",
                digest: manifest.config.digest.clone(),
                reason: format!("bad image config: {e}", e = Chain(&e)),
            })?;
        let diff_ids = &config.rootfs.diff_ids;
        if diff_ids.len() != manifest.layers.len() {
            return Err(invalid(format!(
                "{} layers but the config lists {} diff IDs",
                manifest.layers.len(),
                diff_ids.len()
            )));
        }
        for r in names {
            if r.tag().is_none() || r.digest().is_some() {
                return Err(StoreError::Conflict(format!(
                    "image name {r} must have a tag and no digest"
                )));
            }
        }
        // Snapshots first (outside the transaction: extraction is slow).
        let chains = chain_ids(diff_ids);
        let mut parent: Option<&Digest> = None;
        for (i, (desc, diff_id)) in manifest.layers.iter().zip(diff_ids).enumerate() {
            let chain = chain_id(parent, diff_id);
            // Held, not just looked at: GC must not take it before the
            // image row below refers to it.
            if !self.hold_existing_snapshot(&chain)? {
                if !self.has_blob(&desc.digest) {
                    return Err(invalid(format!(
                        "layer {i} ({diff_id}): no snapshot and blob {} is not in the store",
                        desc.digest
                    )));
                }
                self.add_layer_from_blob(desc, diff_id, parent)?;
            }
            parent = Some(&chains[i]);
        }
        let id = manifest.config.digest.clone();
        let rows = self.write(|tx| {
            for d in [manifest_digest, &id] {
                if !self.has_blob(d) {
                    return Err(StoreError::BlobNotFound(d.clone()));
                }
            }
            let mut size = 0u64;
            for (i, chain) in chains.iter().enumerate() {
                if !self.snapshot_path(chain).is_dir() {
                    return Err(invalid(format!("layer {i}: snapshot {chain} vanished")));
                }
                size += layer_info_tx(tx, chain)?.size;
                let desc = &manifest.layers[i];
                if self.has_blob(&desc.digest) || desc.digest == diff_ids[i] {
                    tx.prepare_cached(
                        "INSERT OR IGNORE INTO layer_blobs (diff_id, digest, media_type, size) VALUES (?1, ?2, ?3, ?4)")?.execute(
                        params![diff_ids[i].to_string(), desc.digest.to_string(), desc.media_type, desc.size as i64],
                    )?;
                }
            }
            let now = db::now();
            tx.prepare_cached(
                "INSERT INTO images (id, manifest_digest, manifest_media_type, created, size, added)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (id) DO UPDATE SET manifest_digest = excluded.manifest_digest,
                   manifest_media_type = excluded.manifest_media_type, added = excluded.added")?.execute(
                params![id.to_string(), manifest_digest.to_string(), mt, config.created, size as i64, now],
            )?;
            tx.prepare_cached("DELETE FROM image_layers WHERE image_id = ?1")?.execute( [id.to_string()])?;
            for (i, (diff_id, chain)) in diff_ids.iter().zip(&chains).enumerate() {
                tx.prepare_cached(
                    "INSERT INTO image_layers (image_id, position, diff_id, chain_id) VALUES (?1, ?2, ?3, ?4)")?.execute(
                    params![id.to_string(), i as i64, diff_id.to_string(), chain.to_string()],
                )?;
            }
            for r in names {
                tx.prepare_cached(
                    "INSERT INTO names (name, image_id, added) VALUES (?1, ?2, ?3)
                     ON CONFLICT (name) DO UPDATE SET image_id = excluded.image_id, added = excluded.added")?.execute(
                    params![r.to_string(), id.to_string(), now],
                )?;
            }
            for r in repo_digests {
                let r = match r.digest() {
                    Some(d) => r.with_digest(d.clone()),
                    None => r.with_digest(manifest_digest.clone()),
                };
                tx.prepare_cached(
                    "INSERT INTO repo_digests (name, image_id) VALUES (?1, ?2)
                     ON CONFLICT (name) DO UPDATE SET image_id = excluded.image_id")?.execute(
                    params![r.to_string(), id.to_string()],
                )?;
            }
            let mut keys = vec![manifest_digest.clone(), id.clone()];
            keys.extend(chains.iter().cloned());
            keys.extend(diff_ids.iter().cloned());
            keys.extend(manifest.layers.iter().map(|l| l.digest.clone()));
            self.unprotect(tx, &keys)?;
            image_rows(tx, &id)
        })?;
        // Built from this transaction's rows and the documents parsed
        // above, not re-read: a prune may take the image (and, no longer
        // leased by us, its blobs) as soon as the commit is done.
        Ok(rows.into_image(id, manifest, config))
    }

    /// Records an image kiln made (import, build): serializes `config`,
    /// writes a manifest whose layers are the uncompressed tars of
    /// `layers` (produced on demand from the snapshots; push and save
    /// pick their own compression with [`Store::layer_tar`]), and commits.
    pub fn write_image(
        &self,
        config: &ImageConfig,
        layers: &[LayerInfo],
        names: &[ImageRef],
    ) -> Result<Image> {
        self.write_annotated_image(config, layers, names, &Default::default())
    }

    /// [`Store::write_image`] with `annotations` in the manifest (`kiln
    /// build --annotation`; a push sends them on). The image ID, the
    /// config's digest, does not change with them.
    pub fn write_annotated_image(
        &self,
        config: &ImageConfig,
        layers: &[LayerInfo],
        names: &[ImageRef],
        annotations: &std::collections::BTreeMap<String, String>,
    ) -> Result<Image> {
        let config_bytes = config.to_buildkit_json().map_err(|e| {
            StoreError::Conflict(format!("serializing image config: {e}", e = Chain(&e)))
        })?;
        let config_blob = self.ingest_bytes(&config_bytes, "image config")?;
        let mut descs = Vec::with_capacity(layers.len());
        for l in layers {
            let d = l
                .blobs
                .iter()
                .find(|b| b.digest == l.diff_id)
                .or_else(|| l.blobs.first())
                .cloned()
                .ok_or_else(|| StoreError::Invalid {
                    what: "layer",
                    digest: l.diff_id.clone(),
                    reason: "no blob or canonical tar known".into(),
                })?;
            descs.push(d);
        }
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(media::OCI_MANIFEST.to_string()),
            config: Descriptor::new(media::OCI_CONFIG, config_blob.digest, config_blob.size),
            layers: descs,
            annotations: (!annotations.is_empty()).then(|| annotations.clone()),
            extra: Default::default(),
        };
        let bytes = serde_json::to_vec(&manifest).map_err(|e| {
            StoreError::Conflict(format!("serializing manifest: {e}", e = Chain(&e)))
        })?;
        let m = self.ingest_bytes(&bytes, "image manifest")?;
        self.commit_image(&m.digest, names, &[])
    }

    /// Finds an image the way docker does: a name (`busybox`,
    /// `busybox:1.36`), a repo digest (`busybox@sha256:…`), a full ID
    /// (`sha256:…`) or a unique ID prefix.
    pub fn image(&self, spec: &str) -> Result<Image> {
        let id = self.read(|tx| resolve(tx, spec).map(|(id, _)| id))?;
        self.image_by_id(&id)
    }

    /// Whether an image with this ID (config digest) is recorded: one read,
    /// no blob opened.
    pub fn has_image(&self, id: &Digest) -> Result<bool> {
        self.read(|tx| {
            Ok(tx
                .prepare_cached("SELECT 1 FROM images WHERE id = ?1")?
                .query_row([id.to_string()], |_| Ok(()))
                .optional()?
                .is_some())
        })
    }

    /// The image with this ID (config digest).
    pub fn image_by_id(&self, id: &Digest) -> Result<Image> {
        let rows = self.read(|tx| image_rows(tx, id))?;
        self.image_from_rows(id, rows)
    }

    /// Finds an image as [`Store::image`] does and, in the same write
    /// transaction, leases everything it refers to (manifest, config,
    /// layers, snapshots, blobs) to this process, so that no `rmi`,
    /// prune or GC can take it between this lookup and its use (a
    /// build's `FROM`, `kiln run`, a pull finding it present).
    ///
    /// BuildKit does the same with containerd leases: a solve runs under a
    /// lease (`moby/buildkit`, `solver/llbsolver/solver.go`, `Solver.Solve`
    /// takes `leaseutil.WithLease`), and the image source pins what it
    /// resolves into that lease before using it
    /// (`source/containerimage/pull.go`).
    pub fn hold_image(&self, spec: &str) -> Result<Image> {
        let (id, rows) = self.write(|tx| {
            let (id, _) = resolve(tx, spec)?;
            let rows = image_rows(tx, &id)?;
            self.protect(tx, RefKind::Blob, &rows.manifest_digest)?;
            self.protect(tx, RefKind::Blob, &id)?;
            for l in &rows.layers {
                self.protect(tx, RefKind::Snapshot, &l.chain_id)?;
                self.protect(tx, RefKind::Layer, &l.diff_id)?;
                for b in &l.blobs {
                    self.protect(tx, RefKind::Blob, &b.digest)?;
                }
            }
            Ok((id, rows))
        })?;
        self.image_from_rows(&id, rows)
    }

    fn image_from_rows(&self, id: &Digest, rows: ImageRows) -> Result<Image> {
        let manifest_digest = rows.manifest_digest.clone();
        let manifest: Manifest = serde_json::from_slice(&self.read_blob(&manifest_digest)?)
            .map_err(|e| StoreError::Invalid {
                what: "manifest",
                digest: manifest_digest.clone(),
                reason: Chain(&e).to_string(),
            })?;
        let config: ImageConfig =
            serde_json::from_slice(&self.read_blob(id)?).map_err(|e| StoreError::Invalid {
                what: "config",
                digest: id.clone(),
                reason: Chain(&e).to_string(),
            })?;
        Ok(rows.into_image(id.clone(), manifest, config))
    }

    /// Every image, newest first (by config `created`, then by record time).
    pub fn list_images(&self) -> Result<Vec<ImageSummary>> {
        let mut out = self.read(|tx| {
            // A multi-platform name's other platforms are not listed on
            // their own: docker 25 shows such an image as one line.
            let mut st = tx.prepare_cached(
                "SELECT i.id, i.created, i.size, i.added FROM images i
                 WHERE EXISTS (SELECT 1 FROM names n WHERE n.image_id = i.id)
                    OR NOT EXISTS (SELECT 1 FROM image_index_members m JOIN image_indexes x ON x.digest = m.digest
                                   WHERE m.image_id = i.id)",
            )?;
            let rows = st
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, Option<String>>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, i64>(3)?,
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            let mut out = Vec::with_capacity(rows.len());
            for (id, created, size, added) in rows {
                let id = stored_digest(id)?;
                out.push(ImageSummary {
                    names: refs_of(tx, "names", &id)?,
                    repo_digests: refs_of(tx, "repo_digests", &id)?,
                    id,
                    created,
                    size: size as u64,
                    added,
                });
            }
            Ok(out)
        })?;
        out.sort_by(|a, b| {
            let ka = crate::image::timestamp::parse_rfc3339(a.created.as_deref().unwrap_or(""))
                .unwrap_or(a.added);
            let kb = crate::image::timestamp::parse_rfc3339(b.created.as_deref().unwrap_or(""))
                .unwrap_or(b.added);
            kb.cmp(&ka).then_with(|| a.id.cmp(&b.id))
        });
        Ok(out)
    }

    /// Points `dst` at the image `src` names (docker tag).
    pub fn tag(&self, src: &str, dst: &ImageRef) -> Result<()> {
        if dst.digest().is_some() {
            return Err(StoreError::Conflict(
                "refusing to create a tag with a digest reference".into(),
            ));
        }
        self.write(|tx| {
            let (id, _) = resolve(tx, src)?;
            tx.prepare_cached(
                "INSERT INTO names (name, image_id, added) VALUES (?1, ?2, ?3)
                 ON CONFLICT (name) DO UPDATE SET image_id = excluded.image_id, added = excluded.added")?.execute(
                params![dst.to_string(), id.to_string(), db::now()],
            )?;
            Ok(())
        })
    }

    /// docker rmi: untags `spec`; deletes the image when no name is left
    /// (by ID: all names go, refused without `force` if they span several
    /// repositories); then collects layers no other image uses and
    /// reports them as `Deleted` too, top layer first.
    pub fn remove_image(&self, spec: &str, force: bool) -> Result<Vec<RemoveEvent>> {
        // A multi-platform name's other platforms go with it when nothing
        // else names them (docker 25 removes the whole image).
        let members = match ImageRef::parse(spec) {
            Ok(r) if r.digest().is_none() => {
                self.index_named(&r)?.map(|i| i.members).unwrap_or_default()
            }
            _ => Vec::new(),
        };
        let mut events = self.remove_one_image(spec, force)?;
        for id in members {
            if self.unreferenced_member(&id)? {
                events.extend(self.remove_one_image(&id.to_string(), false)?);
            }
        }
        Ok(events)
    }

    /// Whether the image `id` (a former index member) is still stored,
    /// with no name and in no named index.
    fn unreferenced_member(&self, id: &Digest) -> Result<bool> {
        self.read(|tx| {
            let referenced: Option<i64> = tx
                .prepare_cached(
                    "SELECT 1 FROM images i WHERE i.id = ?1 AND (
                        EXISTS (SELECT 1 FROM names n WHERE n.image_id = i.id)
                        OR EXISTS (SELECT 1 FROM image_index_members m JOIN image_indexes x ON x.digest = m.digest
                                   WHERE m.image_id = i.id))",
                )?
                .query_row([id.to_string()], |r| r.get(0))
                .optional()?;
            let stored: Option<i64> = tx
                .prepare_cached("SELECT 1 FROM images WHERE id = ?1")?
                .query_row([id.to_string()], |r| r.get(0))
                .optional()?;
            Ok(stored.is_some() && referenced.is_none())
        })
    }

    /// `remove_image` of one image, its platforms aside.
    fn remove_one_image(&self, spec: &str, force: bool) -> Result<Vec<RemoveEvent>> {
        let (mut events, deleted) = self.write(|tx| {
            let (id, how) = resolve(tx, spec)?;
            let names = refs_of(tx, "names", &id)?;
            let digests = refs_of(tx, "repo_digests", &id)?;
            let mut ev = Vec::new();
            let untag = |tx: &Transaction, table: &str, r: &ImageRef, ev: &mut Vec<RemoveEvent>| -> Result<()> {
                tx.execute(&format!("DELETE FROM {table} WHERE name = ?1"), [r.to_string()])?;
                ev.push(RemoveEvent::Untagged(r.familiar()));
                Ok(())
            };
            match how {
                Match::Name(n) => {
                    if let Some(r) = names.iter().find(|r| r.to_string() == n) {
                        untag(tx, "names", r, &mut ev)?;
                    }
                    if names.len() > 1 {
                        return Ok((ev, None));
                    }
                    // Only digest references left: docker drops them too.
                    for r in &digests {
                        untag(tx, "repo_digests", r, &mut ev)?;
                    }
                }
                Match::RepoDigest(n) => {
                    if let Some(r) = digests.iter().find(|r| r.to_string() == n) {
                        untag(tx, "repo_digests", r, &mut ev)?;
                    }
                    if !names.is_empty() || digests.len() > 1 {
                        return Ok((ev, None));
                    }
                }
                Match::Id => {
                    let mut repos: Vec<String> = names.iter().map(|r| r.name()).collect();
                    repos.dedup();
                    if repos.len() > 1 && !force {
                        return Err(StoreError::Conflict(format!(
                            "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
                            id.short()
                        )));
                    }
                    for r in &names {
                        untag(tx, "names", r, &mut ev)?;
                    }
                    for r in &digests {
                        untag(tx, "repo_digests", r, &mut ev)?;
                    }
                }
            }
            let chains = image_chains(tx, &id)?;
            tx.prepare_cached("DELETE FROM images WHERE id = ?1")?.execute( [id.to_string()])?;
            ev.push(RemoveEvent::Deleted(id));
            Ok((ev, Some(chains)))
        })?;
        if let Some(chains) = deleted {
            let report = self.gc()?;
            for c in chains.iter().rev() {
                if report.snapshots.contains(c) {
                    events.push(RemoveEvent::Deleted(c.clone()));
                }
            }
        }
        Ok(events)
    }

    /// docker image prune: removes untagged images (all images with `all`)
    /// that no live lease (e.g. a running container) holds. Returns the
    /// events and the bytes reclaimed.
    pub fn prune_images(&self, all: bool) -> Result<(Vec<RemoveEvent>, u64)> {
        self.prune_images_among(all, None)
    }

    /// [`Store::prune_images`] of only the images in `among` (their IDs,
    /// what a prune's `--filter` let through); `None` for all of them.
    pub fn prune_images_among(
        &self,
        all: bool,
        among: Option<&std::collections::BTreeSet<String>>,
    ) -> Result<(Vec<RemoveEvent>, u64)> {
        let mut events = Vec::new();
        self.write(|tx| {
            let mut st = tx.prepare_cached(
                "SELECT i.id FROM images i WHERE (?1 OR NOT EXISTS (SELECT 1 FROM names n WHERE n.image_id = i.id))
                 AND NOT EXISTS (SELECT 1 FROM image_index_members m JOIN image_indexes x ON x.digest = m.digest
                                 WHERE m.image_id = i.id)
                 AND NOT EXISTS (SELECT 1 FROM image_layers l JOIN lease_refs r ON r.kind = ?2 AND r.key = l.chain_id
                                 WHERE l.image_id = i.id)
                 ORDER BY i.added",
            )?;
            let ids = st
                .query_map(params![all, RefKind::Snapshot.as_str()], |r| r.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()?;
            for id in ids {
                if among.is_some_and(|among| !among.contains(&id)) {
                    continue;
                }
                let id = stored_digest(id)?;
                for table in ["names", "repo_digests"] {
                    for r in refs_of(tx, table, &id)? {
                        events.push(RemoveEvent::Untagged(r.familiar()));
                    }
                }
                tx.prepare_cached("DELETE FROM images WHERE id = ?1")?.execute( [id.to_string()])?;
                events.push(RemoveEvent::Deleted(id));
            }
            Ok(())
        })?;
        let report = self.gc()?;
        for c in &report.snapshots {
            events.push(RemoveEvent::Deleted(c.clone()));
        }
        Ok((events, report.bytes))
    }
}

/// An image's rows, read in one transaction.
struct ImageRows {
    manifest_digest: Digest,
    media_type: String,
    size: i64,
    added: i64,
    layers: Vec<LayerInfo>,
    names: Vec<ImageRef>,
    repo_digests: Vec<ImageRef>,
}

impl ImageRows {
    /// The image these rows describe, with its parsed documents.
    fn into_image(self, id: Digest, manifest: Manifest, config: ImageConfig) -> Image {
        Image {
            id,
            manifest_digest: self.manifest_digest,
            manifest_media_type: self.media_type,
            manifest,
            config,
            layers: self.layers,
            names: self.names,
            repo_digests: self.repo_digests,
            size: self.size as u64,
            added: self.added,
        }
    }
}

fn image_rows(tx: &Transaction, id: &Digest) -> Result<ImageRows> {
    let row: Option<(String, String, i64, i64)> = tx
        .prepare_cached(
            "SELECT manifest_digest, manifest_media_type, size, added FROM images WHERE id = ?1",
        )?
        .query_row([id.to_string()], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .optional()?;
    let (md, media_type, size, added) =
        row.ok_or_else(|| StoreError::ImageNotFound(id.to_string()))?;
    let mut layers = Vec::new();
    for c in image_chains(tx, id)? {
        layers.push(layer_info_tx(tx, &c)?);
    }
    Ok(ImageRows {
        manifest_digest: stored_digest(md)?,
        media_type,
        size,
        added,
        layers,
        names: refs_of(tx, "names", id)?,
        repo_digests: refs_of(tx, "repo_digests", id)?,
    })
}

fn image_chains(tx: &Transaction, id: &Digest) -> Result<Vec<Digest>> {
    let mut st = tx.prepare_cached(
        "SELECT chain_id FROM image_layers WHERE image_id = ?1 ORDER BY position",
    )?;
    let rows = st
        .query_map([id.to_string()], |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    rows.into_iter().map(stored_digest).collect()
}

/// The names in `table` ("names" or "repo_digests") pointing at `id`.
fn refs_of(tx: &Transaction, table: &str, id: &Digest) -> Result<Vec<ImageRef>> {
    let mut st = tx.prepare_cached(&format!(
        "SELECT name FROM {table} WHERE image_id = ?1 ORDER BY name"
    ))?;
    let rows = st
        .query_map([id.to_string()], |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    rows.iter()
        .map(|n| ImageRef::parse_unnormalized_tag(n).map_err(StoreError::from))
        .collect()
}

/// Resolves a user's image argument to an image ID.
fn resolve(tx: &Transaction, spec: &str) -> Result<(Digest, Match)> {
    let lookup = |table: &str, key: &str| -> Result<Option<Digest>> {
        let id: Option<String> = tx
            .query_row(
                &format!("SELECT image_id FROM {table} WHERE name = ?1"),
                [key],
                |r| r.get(0),
            )
            .optional()?;
        id.map(stored_digest).transpose()
    };
    if spec.starts_with("sha256:") {
        let d: Digest = spec.parse()?;
        let hit = tx
            .prepare_cached("SELECT 1 FROM images WHERE id = ?1")?
            .query_row([d.to_string()], |_| Ok(()))
            .optional()?;
        return match hit {
            Some(()) => Ok((d, Match::Id)),
            None => Err(StoreError::ImageNotFound(spec.to_string())),
        };
    }
    if let Ok(r) = ImageRef::parse(spec) {
        if let Some(d) = r.digest() {
            let key = r.with_digest(d.clone()).to_string();
            if let Some(id) = lookup("repo_digests", &key)? {
                return Ok((id, Match::RepoDigest(key)));
            }
        } else if let Some(id) = lookup("names", &r.to_string())? {
            return Ok((id, Match::Name(r.to_string())));
        }
    }
    if !spec.is_empty()
        && spec.len() <= 64
        && spec
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        let mut st =
            tx.prepare_cached("SELECT id FROM images WHERE substr(id, 8, ?1) = ?2 LIMIT 2")?;
        let ids = st
            .query_map(params![spec.len() as i64, spec], |r| r.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        match ids.len() {
            1 => return Ok((stored_digest(ids[0].clone())?, Match::Id)),
            0 => {}
            _ => {
                return Err(StoreError::Conflict(format!(
                    "image ID prefix {spec} is ambiguous"
                )))
            }
        }
    }
    Err(StoreError::ImageNotFound(spec.to_string()))
}
