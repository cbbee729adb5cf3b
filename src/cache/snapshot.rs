//! Layers and their snapshots: `<root>/snapshots/<chain-id-hex>/`.
//!
//! A snapshot is one layer unpacked in overlay upper format (see
//! `image::layer`), named by chain ID, shared by every image whose stack
//! has that chain, and usable directly as an overlayfs lower dir. It is
//! built in this process's scratch dir and renamed into place; when two
//! processes extract the same chain at once the first rename wins and the
//! loser discards its copy (the contents are equivalent).

use super::content::BlobFile;
use super::lease::RefKind;
use super::{db, io_err, scratch, sync_dir, Result, Store, StoreError};
use crate::image::digest::{Digest, DigestReader};
use crate::image::layer::diff::{self, DiffOptions};
use crate::image::layer::{chain_id, decompressed, extract, Compression, Encoder};
use crate::image::oci::{media, Descriptor};
use rusqlite::{params, OptionalExtension, Transaction};
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// A layer of an image, as the store knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerInfo {
    /// sha256 of the uncompressed tar (the config's `rootfs.diff_ids`).
    pub diff_id: Digest,
    /// OCI chain ID of the stack up to this layer: names the snapshot.
    pub chain_id: Digest,
    /// Content bytes (regular files, hard links once), docker's layer size.
    pub size: u64,
    /// Length of the uncompressed tar, when known.
    pub tar_size: Option<u64>,
    /// Blobs known to hold this layer, any compression. For layers kiln
    /// made, includes the uncompressed tar (digest = diff ID) even before
    /// it is written: [`Store::open_blob`] produces it on demand.
    pub blobs: Vec<Descriptor>,
}

impl Store {
    /// Unpacks a layer tar (gzip, zstd or plain, sniffed) on top of
    /// `parent` (a chain ID, `None` for a base layer). The diff ID is that
    /// of kiln's canonical tar of the result, so the layer can be
    /// re-exported byte for byte from its snapshot (`import`, `load` of
    /// foreign tars).
    pub fn add_layer_from_tar(
        &self,
        input: impl Read + Send + 'static,
        parent: Option<&Digest>,
    ) -> Result<LayerInfo> {
        let tmp = self.scratch()?.path("extract");
        let result = self.extract_canonical(input, &tmp);
        let (stats, content_size) = match result {
            Ok(s) => s,
            Err(e) => {
                let _ = scratch::remove_tree(&tmp);
                return Err(e);
            }
        };
        let chain = chain_id(parent, &stats.diff_id);
        self.write(|tx| {
            upsert_layer(tx, &stats.diff_id, Some(stats.tar_size), true)?;
            insert_snapshot(tx, &chain, &stats.diff_id, parent, content_size)?;
            self.protect(tx, RefKind::Snapshot, &chain)?;
            self.protect(tx, RefKind::Layer, &stats.diff_id)
        })?;
        self.publish_snapshot(&tmp, &chain)?;
        self.layer_info(&chain)
    }

    fn extract_canonical(
        &self,
        input: impl Read + Send + 'static,
        tmp: &Path,
    ) -> Result<(diff::DiffStats, u64)> {
        let layer = "from tar".to_string();
        std::fs::create_dir(tmp).map_err(io_err(tmp, "creating extraction dir"))?;
        let reader = decompressed(input).map_err(|e| StoreError::Extract {
            layer: layer.clone(),
            source: extract::ExtractError::Read(e),
        })?;
        let stats = extract::extract(reader, tmp).map_err(|source| StoreError::Extract {
            layer: layer.clone(),
            source,
        })?;
        let d = diff::diff_id_of(tmp, DiffOptions::default())
            .map_err(|source| StoreError::Diff { layer, source })?;
        Ok((d, stats.size))
    }

    /// Unpacks a layer blob already in the store (pull, load) on top of
    /// `parent`, checking that its uncompressed content hashes to
    /// `diff_id` as the image config says. Does nothing if the snapshot
    /// exists.
    pub fn add_layer_from_blob(
        &self,
        blob: &Descriptor,
        diff_id: &Digest,
        parent: Option<&Digest>,
    ) -> Result<LayerInfo> {
        // The compression itself is sniffed from the bytes (as docker does);
        // the media type only has to be a layer type.
        if Compression::from_media_type(&blob.media_type).is_none() {
            return Err(StoreError::UnsupportedMediaType {
                what: "layer",
                digest: blob.digest.clone(),
                media_type: blob.media_type.clone(),
            });
        }
        let chain = chain_id(parent, diff_id);
        let record_blob = |tx: &Transaction| -> Result<()> {
            tx.prepare_cached(
                "INSERT OR IGNORE INTO layer_blobs (diff_id, digest, media_type, size) VALUES (?1, ?2, ?3, ?4)")?.execute(
                params![diff_id.to_string(), blob.digest.to_string(), blob.media_type, blob.size as i64],
            )?;
            Ok(())
        };
        if self.hold_existing_snapshot(&chain)? {
            self.write(|tx| {
                upsert_layer(tx, diff_id, None, false)?;
                record_blob(tx)
            })?;
            return self.layer_info(&chain);
        }
        let name = format!("{} (diff ID {diff_id})", blob.digest);
        let path = self.blob_path(&blob.digest);
        let file = File::open(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => StoreError::BlobNotFound(blob.digest.clone()),
            _ => io_err(&path, "opening layer blob")(e),
        })?;
        let tmp = self.scratch()?.path("extract");
        let result = (|| -> Result<(u64, u64)> {
            std::fs::create_dir(&tmp).map_err(io_err(&tmp, "creating extraction dir"))?;
            let ex = |source| StoreError::Extract {
                layer: name.clone(),
                source,
            };
            let reader = decompressed(file).map_err(|e| ex(extract::ExtractError::Read(e)))?;
            let mut hashed = DigestReader::new(reader);
            let stats = extract::extract(&mut hashed, &tmp).map_err(ex)?;
            let (_, actual, tar_size) = hashed.finish();
            if &actual != diff_id {
                return Err(StoreError::DigestMismatch {
                    what: format!("layer {name}: uncompressed content"),
                    expected: diff_id.clone(),
                    actual,
                });
            }
            Ok((stats.size, tar_size))
        })();
        let (size, tar_size) = match result {
            Ok(v) => v,
            Err(e) => {
                let _ = scratch::remove_tree(&tmp);
                return Err(e);
            }
        };
        self.write(|tx| {
            upsert_layer(tx, diff_id, Some(tar_size), false)?;
            record_blob(tx)?;
            insert_snapshot(tx, &chain, diff_id, parent, size)?;
            self.protect(tx, RefKind::Snapshot, &chain)?;
            self.protect(tx, RefKind::Layer, diff_id)
        })?;
        self.publish_snapshot(&tmp, &chain)?;
        self.layer_info(&chain)
    }

    /// Turns a RUN step's overlay upper dir into a snapshot on top of
    /// `parent`: its diff ID is computed by streaming its tar to a hasher,
    /// foreign overlay xattrs (`redirect`, `origin`, `impure`) are removed,
    /// and the directory is renamed into the store (it should live in
    /// [`Store::scratch_path`]; from another filesystem it is copied).
    /// `upper` is gone afterwards.
    pub fn add_layer_from_dir(&self, upper: &Path, parent: Option<&Digest>) -> Result<LayerInfo> {
        let opts = DiffOptions {
            strip_overlay_meta: true,
            ..DiffOptions::default()
        };
        let layer = upper.display().to_string();
        let stats = diff::diff_id_of(upper, opts).map_err(|source| StoreError::Diff {
            layer: layer.clone(),
            source,
        })?;
        let chain = chain_id(parent, &stats.diff_id);
        let content = stats.content_size;
        let have = self.hold_existing_snapshot(&chain)?;
        self.write(|tx| {
            upsert_layer(tx, &stats.diff_id, Some(stats.tar_size), true)?;
            insert_snapshot(tx, &chain, &stats.diff_id, parent, content)?;
            self.protect(tx, RefKind::Snapshot, &chain)?;
            self.protect(tx, RefKind::Layer, &stats.diff_id)
        })?;
        if have {
            scratch::remove_tree(upper).map_err(io_err(upper, "removing upper dir"))?;
        } else if let Err(e) = self.publish_snapshot(upper, &chain) {
            let cross_device = matches!(&e, StoreError::Io { source, .. } if source.raw_os_error() == Some(libc::EXDEV));
            if !cross_device {
                return Err(e);
            }
            // Another filesystem: copy through a tar stream (same format).
            let tmp = self.scratch()?.path("copy");
            std::fs::create_dir(&tmp).map_err(io_err(&tmp, "creating copy dir"))?;
            let (tx_end, rx_end) =
                std::os::unix::net::UnixStream::pair().map_err(io_err(&tmp, "creating pipe"))?;
            let src = upper.to_path_buf();
            let writer =
                std::thread::spawn(move || diff::write_tar(&src, tx_end, opts).map(|_| ()));
            let ex = extract::extract(rx_end, &tmp);
            let wr = writer.join().unwrap_or_else(|_| {
                Err(diff::DiffError::Write(io::Error::other(
                    "tar writer panicked",
                )))
            });
            if let Err(source) = wr {
                let _ = scratch::remove_tree(&tmp);
                return Err(StoreError::Diff { layer, source });
            }
            if let Err(source) = ex {
                let _ = scratch::remove_tree(&tmp);
                return Err(StoreError::Extract { layer, source });
            }
            self.publish_snapshot(&tmp, &chain)?;
            scratch::remove_tree(upper).map_err(io_err(upper, "removing upper dir"))?;
        }
        self.layer_info(&chain)
    }

    /// The same layer (same diff ID, same blobs) on top of `parent`: the
    /// snapshot named by the new chain ID, made from `layer`'s snapshot
    /// with hard links when it does not exist yet (`COPY --link` results
    /// stacked on a new base). `layer`'s snapshot must be held by this
    /// process (a lease or a build cache hit). The new snapshot's row is
    /// committed and leased before its directory is renamed into place.
    pub fn rebase_layer(&self, layer: &LayerInfo, parent: Option<&Digest>) -> Result<LayerInfo> {
        let chain = chain_id(parent, &layer.diff_id);
        if self.hold_existing_snapshot(&chain)? {
            return self.layer_info(&chain);
        }
        let src = self.snapshot_path(&layer.chain_id);
        let tmp = self.scratch()?.path("rebase");
        if let Err(e) = super::linked_tree::link_tree(&src, &tmp) {
            let _ = scratch::remove_tree(&tmp);
            return Err(io_err(&src, "linking snapshot")(e));
        }
        self.write(|tx| {
            upsert_layer(tx, &layer.diff_id, layer.tar_size, false)?;
            insert_snapshot(tx, &chain, &layer.diff_id, parent, layer.size)?;
            self.protect(tx, RefKind::Snapshot, &chain)?;
            self.protect(tx, RefKind::Layer, &layer.diff_id)
        })?;
        self.publish_snapshot(&tmp, &chain)?;
        self.layer_info(&chain)
    }

    /// The snapshot directories of an image whose snapshots the caller
    /// already holds under a lease ([`Store::create_image_lease`]), checked
    /// in one read; `None` if one is missing (then [`Store::snapshot_dirs`]
    /// re-extracts it).
    pub fn existing_snapshot_dirs(&self, image: &super::Image) -> Result<Option<Vec<PathBuf>>> {
        self.read(|tx| {
            let mut out = Vec::with_capacity(image.layers.len());
            for layer in &image.layers {
                let recorded = tx
                    .prepare_cached("SELECT 1 FROM snapshots WHERE chain_id = ?1")?
                    .query_row([layer.chain_id.to_string()], |_| Ok(()))
                    .optional()?
                    .is_some();
                let path = self.snapshot_path(&layer.chain_id);
                if !recorded || !path.is_dir() {
                    return Ok(None);
                }
                out.push(path);
            }
            Ok(Some(out))
        })
    }

    /// The snapshot directories of an image, bottom to top, ready to be
    /// overlay lower dirs (give them to overlayfs top-first). Missing
    /// snapshots are re-extracted from their blobs. This process's lease
    /// keeps them until it exits; a container outliving this process
    /// needs its own lease ([`Store::create_lease`]).
    pub fn snapshot_dirs(&self, image: &super::Image) -> Result<Vec<PathBuf>> {
        let mut out = Vec::with_capacity(image.layers.len());
        let mut parent: Option<Digest> = None;
        for layer in &image.layers {
            if !self.hold_existing_snapshot(&layer.chain_id)? {
                let blob = layer
                    .blobs
                    .iter()
                    .find(|b| self.has_blob(&b.digest))
                    .ok_or_else(|| StoreError::Invalid {
                        what: "image",
                        digest: image.id.clone(),
                        reason: format!(
                            "snapshot of layer {} is missing and no blob holds it",
                            layer.diff_id
                        ),
                    })?;
                self.add_layer_from_blob(blob, &layer.diff_id, parent.as_ref())?;
            }
            out.push(self.snapshot_path(&layer.chain_id));
            parent = Some(layer.chain_id.clone());
        }
        Ok(out)
    }

    /// A blob holding the layer with the given compression, made once and
    /// then reused (save, push). The diff ID is checked while the tar
    /// streams, whatever the source.
    pub fn layer_tar(&self, layer: &LayerInfo, compression: Compression) -> Result<Descriptor> {
        self.layer_tar_copied(layer, compression, None)
    }

    /// [`Store::layer_tar`], also passing the compressed bytes to `copy`
    /// as they are made (an export uploads them while they are written,
    /// instead of reading the blob again afterwards). `copy` gets nothing
    /// when the blob already exists, and is dropped at its first error
    /// without failing the blob; the caller compares what it got with the
    /// returned size.
    pub fn layer_tar_copied(
        &self,
        layer: &LayerInfo,
        compression: Compression,
        copy: Option<Box<dyn io::Write + Send>>,
    ) -> Result<Descriptor> {
        self.layer_tar_made(layer, compression, None, copy)
    }

    /// [`Store::layer_tar`] with a new blob compressed at `level`
    /// (`kiln build -o compression-level=`; the compressor's default for
    /// `None`). A blob already stored in `compression` is reused whatever
    /// level made it, as BuildKit matches blobs by compression type.
    pub fn layer_tar_at_level(
        &self,
        layer: &LayerInfo,
        compression: Compression,
        level: Option<i32>,
    ) -> Result<Descriptor> {
        self.layer_tar_made(layer, compression, level, None)
    }

    fn layer_tar_made(
        &self,
        layer: &LayerInfo,
        compression: Compression,
        level: Option<i32>,
        copy: Option<Box<dyn io::Write + Send>>,
    ) -> Result<Descriptor> {
        for b in &layer.blobs {
            if Compression::from_media_type(&b.media_type) == Some(compression)
                && self.has_blob(&b.digest)
            {
                return Ok(b.clone());
            }
        }
        let canonical = self.read(|tx| {
            Ok(tx
                .prepare_cached("SELECT canonical FROM layers WHERE diff_id = ?1")?
                .query_row([layer.diff_id.to_string()], |r| r.get::<_, bool>(0))
                .optional()?
                .unwrap_or(false))
        })?;
        let name = format!("layer {}", layer.diff_id);
        let out = BlobFile::create(self, "layer")?;
        let tee = Tee {
            inner: out.writer,
            copy,
        };
        let mut enc = Encoder::with_level(tee, compression, level)
            .map_err(io_err(&out.path, "compressing"))?;
        let result = if canonical && self.snapshot_path(&layer.chain_id).is_dir() {
            diff::write_tar(
                &self.snapshot_path(&layer.chain_id),
                &mut enc,
                DiffOptions::default(),
            )
            .map(|(_, s)| s.diff_id)
            .map_err(|source| StoreError::Diff {
                layer: name.clone(),
                source,
            })
        } else {
            let src = layer
                .blobs
                .iter()
                .find(|b| self.has_blob(&b.digest))
                .ok_or_else(|| StoreError::BlobNotFound(layer.diff_id.clone()))?;
            let path = self.blob_path(&src.digest);
            File::open(&path)
                .and_then(decompressed)
                .and_then(|r| {
                    let mut r = DigestReader::new(r);
                    io::copy(&mut r, &mut enc)?;
                    Ok(r.finish().1)
                })
                .map_err(io_err(&path, "recompressing layer"))
        };
        let finished = enc
            .finish()
            .map(|tee| tee.inner)
            .map_err(io_err(&out.path, "compressing"));
        let (actual, writer) = match (result, finished) {
            (Ok(d), Ok(w)) => (d, w),
            (Err(e), _) | (_, Err(e)) => {
                let _ = std::fs::remove_file(&out.path);
                return Err(e);
            }
        };
        if actual != layer.diff_id {
            let _ = std::fs::remove_file(&out.path);
            return Err(StoreError::DigestMismatch {
                what: format!("{name}: regenerated tar"),
                expected: layer.diff_id.clone(),
                actual,
            });
        }
        let info = BlobFile::finish(writer, &out.path)?;
        let desc = Descriptor::new(compression.oci_media_type(), info.digest.clone(), info.size);
        self.write(|tx| {
            tx.prepare_cached(
                "INSERT OR IGNORE INTO layer_blobs (diff_id, digest, media_type, size) VALUES (?1, ?2, ?3, ?4)")?.execute(
                params![layer.diff_id.to_string(), desc.digest.to_string(), desc.media_type, desc.size as i64],
            )?;
            Ok(())
        })?;
        self.publish_blob(&out.path, &info)?;
        Ok(desc)
    }

    /// Writes the canonical uncompressed tar of a layer kiln made, if
    /// `digest` is such a layer's diff ID. Returns whether it did.
    pub(crate) fn materialize_canonical(&self, digest: &Digest) -> Result<bool> {
        let chain: Option<String> = self.read(|tx| {
            Ok(tx
                .prepare_cached(
                    "SELECT s.chain_id FROM layers l JOIN snapshots s ON s.diff_id = l.diff_id
                     WHERE l.diff_id = ?1 AND l.canonical = 1",
                )?
                .query_row([digest.to_string()], |r| r.get(0))
                .optional()?)
        })?;
        let Some(chain) = chain else {
            return Ok(false);
        };
        let chain: Digest = chain.parse()?;
        if !self.snapshot_path(&chain).is_dir() {
            return Ok(false);
        }
        let info = self.layer_info(&chain)?;
        self.layer_tar(&info, Compression::None)?;
        Ok(true)
    }

    /// If the snapshot's row and directory exist, leases it to this
    /// process and returns true: the way to look a snapshot up before
    /// using it (a bare `is_dir` leaves GC a window).
    pub fn hold_existing_snapshot(&self, chain: &Digest) -> Result<bool> {
        let path = self.snapshot_path(chain);
        self.write(|tx| {
            let row = tx
                .prepare_cached("SELECT 1 FROM snapshots WHERE chain_id = ?1")?
                .query_row([chain.to_string()], |_| Ok(()))
                .optional()?;
            if row.is_none() || !path.is_dir() {
                return Ok(false);
            }
            self.protect(tx, RefKind::Snapshot, chain)?;
            Ok(true)
        })
    }

    /// Renames a finished tree into place; if another process got there
    /// first, ours is discarded.
    fn publish_snapshot(&self, tmp: &Path, chain: &Digest) -> Result<()> {
        let dest = self.snapshot_path(chain);
        match std::fs::rename(tmp, &dest) {
            Ok(()) => sync_dir(&self.layout.snapshots()),
            Err(e)
                if e.raw_os_error() == Some(libc::ENOTEMPTY)
                    || e.raw_os_error() == Some(libc::EEXIST) =>
            {
                tracing::debug!("snapshot {chain} appeared concurrently; dropping ours");
                scratch::remove_tree(tmp).map_err(io_err(tmp, "removing duplicate snapshot"))
            }
            Err(e) => Err(io_err(&dest, "moving snapshot into place")(e)),
        }
    }

    /// The store's record of the layer whose snapshot is `chain`.
    pub fn layer_info(&self, chain: &Digest) -> Result<LayerInfo> {
        self.read(|tx| layer_info_tx(tx, chain))
    }
}

pub(crate) fn layer_info_tx(tx: &Transaction, chain: &Digest) -> Result<LayerInfo> {
    let (diff_id, size): (String, i64) = tx
        .prepare_cached("SELECT diff_id, size FROM snapshots WHERE chain_id = ?1")?
        .query_row([chain.to_string()], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?
        .ok_or_else(|| StoreError::Invalid {
            what: "snapshot",
            digest: chain.clone(),
            reason: "not in the store".into(),
        })?;
    let diff_id: Digest = diff_id.parse()?;
    let (tar_size, canonical): (Option<i64>, bool) = tx
        .prepare_cached("SELECT tar_size, canonical FROM layers WHERE diff_id = ?1")?
        .query_row([diff_id.to_string()], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?
        .unwrap_or((None, false));
    let mut blobs = Vec::new();
    let mut st = tx.prepare_cached(
        "SELECT digest, media_type, size FROM layer_blobs WHERE diff_id = ?1 ORDER BY media_type, digest",
    )?;
    let rows = st.query_map([diff_id.to_string()], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)?,
        ))
    })?;
    for row in rows {
        let (d, mt, sz) = row?;
        blobs.push(Descriptor::new(&mt, d.parse()?, sz as u64));
    }
    if canonical && !blobs.iter().any(|b| b.digest == diff_id) {
        if let Some(ts) = tar_size {
            blobs.push(Descriptor::new(
                media::OCI_LAYER,
                diff_id.clone(),
                ts as u64,
            ));
        }
    }
    Ok(LayerInfo {
        diff_id,
        chain_id: chain.clone(),
        size: size as u64,
        tar_size: tar_size.map(|t| t as u64),
        blobs,
    })
}

fn upsert_layer(
    tx: &Transaction,
    diff_id: &Digest,
    tar_size: Option<u64>,
    canonical: bool,
) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO layers (diff_id, tar_size, canonical) VALUES (?1, ?2, ?3)
         ON CONFLICT (diff_id) DO UPDATE SET
            tar_size = COALESCE(layers.tar_size, excluded.tar_size),
            canonical = MAX(layers.canonical, excluded.canonical)",
    )?
    .execute(params![
        diff_id.to_string(),
        tar_size.map(|t| t as i64),
        canonical
    ])?;
    Ok(())
}

fn insert_snapshot(
    tx: &Transaction,
    chain: &Digest,
    diff_id: &Digest,
    parent: Option<&Digest>,
    size: u64,
) -> Result<()> {
    tx.prepare_cached(
        "INSERT OR IGNORE INTO snapshots (chain_id, diff_id, parent, size, added) VALUES (?1, ?2, ?3, ?4, ?5)")?.execute(
        params![
            chain.to_string(),
            diff_id.to_string(),
            parent.map(|p| p.to_string()),
            size as i64,
            db::now()
        ],
    )?;
    Ok(())
}

/// Writes to the blob file and passes what was written on to a copy,
/// which is dropped at its first error: the blob never fails for it.
struct Tee<W> {
    inner: W,
    copy: Option<Box<dyn io::Write + Send>>,
}

impl<W: io::Write> io::Write for Tee<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        if let Some(copy) = &mut self.copy {
            if copy.write_all(&buf[..n]).is_err() {
                self.copy = None;
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
