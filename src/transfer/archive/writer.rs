//! Writing an archive tar as a stream: each entry's header, then its bytes
//! straight from the store file, so the archive exists nowhere but in the
//! output. Blobs are re-hashed while they stream: a store file damaged on
//! disk fails the save instead of travelling as a corrupt image.

use super::ArchiveError;
use crate::cache::{Store, StoreError};
use crate::image::digest::{Digest, DigestWriter};
use crate::image::oci::Descriptor;
use std::collections::HashSet;
use std::io::{self, Read, Write};

/// tar block size (POSIX ustar).
const BLOCK: usize = 512;

/// A tar being written to `out`; each path is written once.
pub(super) struct TarWriter<W: Write> {
    out: W,
    written: HashSet<String>,
    /// Bytes written so far (headers, content, padding).
    pub bytes: u64,
    /// Blob entries written.
    pub blobs: usize,
}

impl<W: Write> TarWriter<W> {
    pub fn new(out: W) -> TarWriter<W> {
        TarWriter {
            out,
            written: HashSet::new(),
            bytes: 0,
            blobs: 0,
        }
    }

    /// A directory entry (`blobs/`), as `docker save` writes them, so that
    /// tools extracting the tar get the layout's directories with sane
    /// modes. Timestamps are 0: the archive's bytes depend only on content.
    pub fn dir(&mut self, path: &str) -> Result<(), ArchiveError> {
        // POSIX tar marks directory names with a trailing slash.
        let path = format!("{}/", path.trim_end_matches('/'));
        if !self.written.insert(path.clone()) {
            return Ok(());
        }
        let h = header(&path, 0, 0o755, 0, tar::EntryType::Directory)?;
        self.put(h.as_bytes())
    }

    /// A small file held in memory (index.json, manifest.json, …).
    pub fn file(&mut self, path: &str, bytes: &[u8], mtime: u64) -> Result<(), ArchiveError> {
        if !self.written.insert(path.to_string()) {
            return Ok(());
        }
        let h = header(
            path,
            bytes.len() as u64,
            0o644,
            mtime,
            tar::EntryType::Regular,
        )?;
        self.put(h.as_bytes())?;
        self.put(bytes)?;
        if path.starts_with("blobs/") {
            self.blobs += 1;
        }
        self.pad(bytes.len() as u64)
    }

    /// A blob from the store at `path`, unless that path was already
    /// written (a layer shared by several images goes in once).
    pub fn blob(
        &mut self,
        store: &Store,
        path: &str,
        desc: &Descriptor,
        mtime: u64,
    ) -> Result<(), ArchiveError> {
        if self.written.contains(path) {
            return Ok(());
        }
        let store_err = |source| ArchiveError::Store {
            context: format!("saving blob {}", desc.digest),
            source,
        };
        let mut file = store.open_blob(&desc.digest).map_err(store_err)?;
        let blob_path = store.blob_path(&desc.digest);
        let read_err = |e: io::Error| {
            store_err(StoreError::Io {
                path: blob_path.clone(),
                op: "reading blob",
                source: e,
            })
        };
        let len = file.metadata().map_err(read_err)?.len();
        if len != desc.size {
            return Err(store_err(StoreError::SizeMismatch {
                what: format!("blob {} in the store", desc.digest),
                expected: desc.size,
                actual: len,
            }));
        }
        let h = header(path, len, 0o644, mtime, tar::EntryType::Regular)?;
        self.put(h.as_bytes())?;
        let mut hashed = DigestWriter::new(io::sink());
        let mut buf = vec![0u8; 1 << 20];
        let mut left = len;
        while left > 0 {
            let want = buf.len().min(left as usize);
            let n = file.read(&mut buf[..want]).map_err(read_err)?;
            if n == 0 {
                return Err(read_err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("blob shrank while being saved ({left} bytes missing)"),
                )));
            }
            // Writing to a sink cannot fail.
            let _ = hashed.write_all(&buf[..n]);
            self.put(&buf[..n])?;
            left -= n as u64;
        }
        let (_, actual, _) = hashed.finish();
        check_digest(&desc.digest, actual).map_err(store_err)?;
        self.pad(len)?;
        self.written.insert(path.to_string());
        self.blobs += 1;
        Ok(())
    }

    /// Writes the end-of-archive marker (two zero blocks) and flushes.
    pub fn finish(&mut self) -> Result<(), ArchiveError> {
        self.put(&[0u8; 2 * BLOCK])?;
        self.out.flush().map_err(ArchiveError::Write)
    }

    /// The output, once finished.
    #[cfg(test)]
    pub fn into_inner(self) -> W {
        self.out
    }

    fn put(&mut self, bytes: &[u8]) -> Result<(), ArchiveError> {
        self.out.write_all(bytes).map_err(ArchiveError::Write)?;
        self.bytes += bytes.len() as u64;
        Ok(())
    }

    fn pad(&mut self, len: u64) -> Result<(), ArchiveError> {
        let rem = (len % BLOCK as u64) as usize;
        if rem != 0 {
            self.put(&[0u8; BLOCK][..BLOCK - rem])?;
        }
        Ok(())
    }
}

fn check_digest(expected: &Digest, actual: Digest) -> Result<(), StoreError> {
    if &actual != expected {
        return Err(StoreError::DigestMismatch {
            what: format!("blob {expected} in the store"),
            expected: expected.clone(),
            actual,
        });
    }
    Ok(())
}

/// A ustar header owned by root, as `docker save` writes them.
fn header(
    path: &str,
    size: u64,
    mode: u32,
    mtime: u64,
    kind: tar::EntryType,
) -> Result<tar::Header, ArchiveError> {
    let mut h = tar::Header::new_ustar();
    h.set_path(path).map_err(|e| ArchiveError::Entry {
        entry: path.to_string(),
        reason: e.to_string(),
    })?;
    h.set_size(size);
    h.set_mode(mode);
    h.set_mtime(mtime);
    h.set_uid(0);
    h.set_gid(0);
    h.set_entry_type(kind);
    h.set_cksum();
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_tar_reads_back_with_padding_and_dedup() {
        let mut w = TarWriter::new(Vec::new());
        w.dir("blobs").unwrap();
        w.dir("blobs/").unwrap();
        w.file("oci-layout", b"{\"imageLayoutVersion\":\"1.0.0\"}", 0)
            .unwrap();
        w.file("index.json", &[b'x'; 513], 7).unwrap();
        w.file("index.json", b"again", 7).unwrap();
        w.finish().unwrap();
        let bytes = w.bytes;
        let out = w.into_inner();
        assert_eq!(out.len() as u64, bytes);
        assert_eq!(out.len() % BLOCK, 0);
        let mut a = tar::Archive::new(&out[..]);
        let names: Vec<(String, u64, u64)> = a
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    e.path().unwrap().display().to_string(),
                    h.size().unwrap(),
                    h.mtime().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            names,
            vec![
                ("blobs/".to_string(), 0, 0),
                ("oci-layout".to_string(), 30, 0),
                ("index.json".to_string(), 513, 7),
            ]
        );
    }
}
