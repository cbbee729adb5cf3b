//! Content-addressed blobs: `<root>/blobs/sha256/<hex>`.
//!
//! Ingest streams into a scratch file through a [`DigestWriter`], checks
//! digest and size, fsyncs, commits the `blobs` row (leased to this
//! process), then renames the file into place and fsyncs the directory. A
//! blob whose content does not match its digest is never visible.

use super::lease::RefKind;
use super::{db, io_err, sync_dir, Result, Store, StoreError};
use crate::error_chain::Chain;
use crate::image::digest::{Digest, DigestReader, DigestWriter};
use crate::image::oci::{media, Index, Manifest};
use rusqlite::params;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};

/// A blob as stored: its digest and length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobInfo {
    pub digest: Digest,
    pub size: u64,
}

impl Store {
    /// Whether the blob's file is present (a row alone does not count).
    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// Stores the bytes read from `reader`. With `expected`, a blob already
    /// present is not read again, and content that hashes differently is
    /// refused; with `expected_size`, reading stops with an error as soon
    /// as the stream is longer. `what` names the blob in errors (e.g.
    /// "layer 2 of docker.io/library/busybox:latest").
    pub fn ingest_blob(
        &self,
        reader: impl Read,
        expected: Option<&Digest>,
        expected_size: Option<u64>,
        what: &str,
    ) -> Result<BlobInfo> {
        if let Some(d) = expected {
            if let Some(info) = self.hold_existing_blob(d)? {
                return Ok(info);
            }
        }
        let tmp = self.scratch()?.path("blob");
        let result = self.write_blob_file(&tmp, reader, expected, expected_size, what);
        let info = match result {
            Ok(info) => info,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
        };
        self.publish_blob(&tmp, &info)?;
        Ok(info)
    }

    /// Stores a small blob held in memory (manifests, configs).
    pub fn ingest_bytes(&self, bytes: &[u8], what: &str) -> Result<BlobInfo> {
        let digest = Digest::sha256_of(bytes);
        self.ingest_blob(bytes, Some(&digest), Some(bytes.len() as u64), what)
    }

    /// Validates and stores a manifest or index as pulled or loaded:
    /// `media_type` is what the registry or archive declared (if any); the
    /// document's own `mediaType` must agree, and unknown types are refused
    /// before anything is written.
    pub fn ingest_manifest(&self, bytes: &[u8], media_type: Option<&str>) -> Result<BlobInfo> {
        let digest = Digest::sha256_of(bytes);
        let invalid = |reason: String| StoreError::Invalid {
            what: "manifest",
            digest: digest.clone(),
            reason,
        };
        let doc: serde_json::Value = serde_json::from_slice(bytes)
            .map_err(|e| invalid(format!("not JSON: {e}", e = Chain(&e))))?;
        let inner = doc.get("mediaType").and_then(|v| v.as_str());
        let mt = match (media_type, inner) {
            (Some(a), Some(b)) if a != b => {
                return Err(invalid(format!(
                    "declared media type {a:?} but the document says {b:?}"
                )))
            }
            (Some(a), _) => a.to_string(),
            (None, Some(b)) => b.to_string(),
            // OCI allows omitting mediaType; tell manifest from index by shape.
            (None, None) if doc.get("manifests").is_some() => media::OCI_INDEX.to_string(),
            (None, None) => media::OCI_MANIFEST.to_string(),
        };
        if media::is_manifest(&mt) {
            let m: Manifest = serde_json::from_value(doc)
                .map_err(|e| invalid(format!("bad manifest: {e}", e = Chain(&e))))?;
            if m.schema_version != 2 {
                return Err(invalid(format!(
                    "unsupported schemaVersion {}",
                    m.schema_version
                )));
            }
            if !media::is_config(&m.config.media_type) {
                return Err(StoreError::UnsupportedMediaType {
                    what: "config",
                    digest: m.config.digest.clone(),
                    media_type: m.config.media_type.clone(),
                });
            }
            for l in &m.layers {
                if !media::is_layer(&l.media_type) {
                    return Err(StoreError::UnsupportedMediaType {
                        what: "layer",
                        digest: l.digest.clone(),
                        media_type: l.media_type.clone(),
                    });
                }
            }
        } else if media::is_index(&mt) {
            let _: Index = serde_json::from_value(doc)
                .map_err(|e| invalid(format!("bad index: {e}", e = Chain(&e))))?;
        } else {
            return Err(StoreError::UnsupportedMediaType {
                what: "manifest",
                digest,
                media_type: mt,
            });
        }
        self.ingest_bytes(bytes, &format!("manifest {digest}"))
    }

    /// Opens a blob for reading. A layer kiln made whose uncompressed tar
    /// was never written is produced from its snapshot first.
    pub fn open_blob(&self, digest: &Digest) -> Result<File> {
        let path = self.blob_path(digest);
        match File::open(&path) {
            Ok(f) => return Ok(f),
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Err(io_err(&path, "opening blob")(e))
            }
            Err(_) => {}
        }
        if self.materialize_canonical(digest)? {
            return File::open(&path).map_err(io_err(&path, "opening blob"));
        }
        Err(StoreError::BlobNotFound(digest.clone()))
    }

    /// Reads a whole (small) blob and checks its digest.
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>> {
        let mut buf = Vec::new();
        let path = self.blob_path(digest);
        self.open_blob(digest)?
            .read_to_end(&mut buf)
            .map_err(io_err(&path, "reading blob"))?;
        let actual = Digest::sha256_of(&buf);
        if &actual != digest {
            return Err(StoreError::DigestMismatch {
                what: format!("blob {}", path.display()),
                expected: digest.clone(),
                actual,
            });
        }
        Ok(buf)
    }

    /// Re-hashes a blob on disk; an error says it is corrupt or missing.
    pub fn verify_blob(&self, digest: &Digest) -> Result<()> {
        let path = self.blob_path(digest);
        let file = File::open(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => StoreError::BlobNotFound(digest.clone()),
            _ => io_err(&path, "opening blob")(e),
        })?;
        let mut r = DigestReader::new(file);
        io::copy(&mut r, &mut io::sink()).map_err(io_err(&path, "reading blob"))?;
        let (_, actual, _) = r.finish();
        if &actual != digest {
            return Err(StoreError::DigestMismatch {
                what: format!("blob {}", path.display()),
                expected: digest.clone(),
                actual,
            });
        }
        Ok(())
    }

    /// If the blob's file is present, leases it to this process and
    /// returns it: the way to look a blob up before using it ([`Store::has_blob`]
    /// alone leaves GC a window). A row without its file is not present.
    pub fn hold_existing_blob(&self, digest: &Digest) -> Result<Option<BlobInfo>> {
        let path = self.blob_path(digest);
        self.write(|tx| {
            let Ok(md) = std::fs::metadata(&path) else {
                return Ok(None);
            };
            tx.prepare_cached(
                "INSERT OR IGNORE INTO blobs (digest, size, added) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![digest.to_string(), md.len() as i64, db::now()])?;
            self.protect(tx, RefKind::Blob, digest)?;
            Ok(Some(BlobInfo {
                digest: digest.clone(),
                size: md.len(),
            }))
        })
    }

    fn write_blob_file(
        &self,
        tmp: &std::path::Path,
        reader: impl Read,
        expected: Option<&Digest>,
        expected_size: Option<u64>,
        what: &str,
    ) -> Result<BlobInfo> {
        let file = File::create(tmp).map_err(io_err(tmp, "creating temp blob"))?;
        let mut w = DigestWriter::new(BufWriter::with_capacity(1 << 20, file));
        // Read one byte past the expected size to detect an overlong stream
        // without reading all of it.
        let limit = expected_size.map(|s| s + 1).unwrap_or(u64::MAX);
        io::copy(&mut reader.take(limit), &mut w).map_err(|e| StoreError::Io {
            path: tmp.to_path_buf(),
            op: "receiving blob",
            source: io::Error::new(e.kind(), format!("{what}: {e}", e = Chain(&e))),
        })?;
        let (buf, digest, size) = w.finish();
        let file = buf
            .into_inner()
            .map_err(|e| io_err(tmp, "writing temp blob")(e.into_error()))?;
        if let Some(want) = expected_size {
            if size != want {
                return Err(StoreError::SizeMismatch {
                    what: what.to_string(),
                    expected: want,
                    actual: size,
                });
            }
        }
        if let Some(want) = expected {
            if &digest != want {
                return Err(StoreError::DigestMismatch {
                    what: what.to_string(),
                    expected: want.clone(),
                    actual: digest,
                });
            }
        }
        file.sync_all().map_err(io_err(tmp, "syncing temp blob"))?;
        Ok(BlobInfo { digest, size })
    }

    /// Commits the row (leased), then renames the verified file into place.
    pub(crate) fn publish_blob(&self, tmp: &std::path::Path, info: &BlobInfo) -> Result<()> {
        self.write(|tx| {
            tx.prepare_cached(
                "INSERT OR IGNORE INTO blobs (digest, size, added) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![
                info.digest.to_string(),
                info.size as i64,
                db::now()
            ])?;
            self.protect(tx, RefKind::Blob, &info.digest)
        })?;
        let dest = self.blob_path(&info.digest);
        std::fs::rename(tmp, &dest).map_err(io_err(&dest, "moving blob into place"))?;
        sync_dir(&self.layout.blobs())
    }
}

/// A writer into a new scratch file that becomes a blob once verified.
pub(crate) struct BlobFile {
    pub path: std::path::PathBuf,
    pub writer: DigestWriter<BufWriter<File>>,
}

impl BlobFile {
    pub fn create(store: &Store, what: &str) -> Result<BlobFile> {
        let path = store.scratch()?.path(what);
        let file = File::create(&path).map_err(io_err(&path, "creating temp blob"))?;
        Ok(BlobFile {
            writer: DigestWriter::new(BufWriter::with_capacity(1 << 20, file)),
            path,
        })
    }

    /// Flushes and fsyncs; returns the digest and size.
    pub fn finish(
        writer: DigestWriter<BufWriter<File>>,
        path: &std::path::Path,
    ) -> Result<BlobInfo> {
        let (mut buf, digest, size) = writer.finish();
        buf.flush().map_err(io_err(path, "writing temp blob"))?;
        let file = buf
            .into_inner()
            .map_err(|e| io_err(path, "writing temp blob")(e.into_error()))?;
        file.sync_all().map_err(io_err(path, "syncing temp blob"))?;
        Ok(BlobInfo { digest, size })
    }
}
