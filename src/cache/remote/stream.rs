//! A layer blob uploaded to the cache's registry while it is being made.
//!
//! A cold export used to compress a layer into the store's blob cache and
//! then read the blob again to upload it: two passes over the biggest
//! thing the export moves. Here the compressed bytes go to the store's
//! blob file and, through a bounded channel, to an upload thread that
//! sends them as `PATCH` chunks as they come; the final `PUT ?digest=`
//! follows once the blob's digest is known. That is the distribution
//! spec's chunked upload (opencontainers/distribution-spec `spec.md`,
//! "Pushing a blob in chunks"), and what BuildKit's exporter gets by
//! streaming its compressed layer into containerd's content writer
//! (moby/buildkit `util/push/push.go`, `Push`, through
//! `remotes.PushContent` and `content.Copy`).
//!
//! The upload is an optimisation only: if it fails or is incomplete, the
//! blob is still in the store and [`super::export::export`] uploads it
//! the ordinary way (it checks the registry first, so a streamed blob is
//! not sent twice).

use std::io::{self, Write};
use std::sync::mpsc::{sync_channel, SyncSender};

use crate::cache::{LayerInfo, Store};
use crate::image::layer::Compression;
use crate::image::oci::Descriptor;
use crate::image::registry::{RegistryClient, RegistryError};

/// The layer's blob in `compression`, made by the store (and kept in its
/// blob cache) while its bytes are uploaded to `repository`.
pub fn compress_and_upload(
    store: &Store,
    client: &RegistryClient,
    repository: &str,
    layer: &LayerInfo,
    compression: Compression,
) -> crate::cache::Result<Descriptor> {
    let session = match client.start_upload(repository) {
        Ok(session) => session,
        Err(e) => {
            tracing::debug!(layer = %layer.diff_id, "no streamed upload: {}", crate::error_chain::Chain(&e));
            return store.layer_tar(layer, compression);
        }
    };
    // One chunk being filled, one queued, one being sent: compression
    // never waits for the network unless the network is the slower.
    let (tx, rx) = sync_channel::<Vec<u8>>(1);
    let chunk = usize::try_from(client.chunk_size).unwrap_or(usize::MAX);
    std::thread::scope(|s| {
        let uploader = s.spawn(move || {
            let mut session = session;
            let mut sent = 0u64;
            for bytes in rx {
                client.upload_chunk(&mut session, sent, &bytes)?;
                sent += bytes.len() as u64;
            }
            Ok::<_, RegistryError>((session, sent))
        });
        let copy = Box::new(Chunks {
            buf: Vec::new(),
            chunk,
            tx,
        });
        let blob = store.layer_tar_copied(layer, compression, Some(copy));
        let upload = uploader
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        let desc = blob?;
        let closed = match upload {
            Ok((session, sent)) if sent == desc.size => client.finish_upload(session, &desc.digest),
            Ok((_, sent)) => {
                tracing::debug!(layer = %layer.diff_id, sent, size = desc.size, "streamed upload incomplete");
                return Ok(desc);
            }
            Err(e) => Err(e),
        };
        match closed {
            Ok(()) => tracing::debug!(blob = %desc.digest, "layer blob uploaded while compressed"),
            Err(e) => {
                tracing::debug!(blob = %desc.digest, "streamed upload failed, uploading again: {}", crate::error_chain::Chain(&e))
            }
        }
        Ok(desc)
    })
}

/// Cuts the bytes written into chunks of `chunk` bytes for the upload
/// thread; the rest goes when dropped. A closed channel (the upload
/// failed) is an error, so the store stops copying.
struct Chunks {
    buf: Vec<u8>,
    chunk: usize,
    tx: SyncSender<Vec<u8>>,
}

impl Chunks {
    fn send(&mut self) -> io::Result<()> {
        let bytes = std::mem::take(&mut self.buf);
        self.tx
            .send(bytes)
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "upload stopped"))
    }
}

impl Write for Chunks {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.buf.capacity() == 0 {
            self.buf.reserve(self.chunk.min(64 << 20));
        }
        let n = buf.len().min(self.chunk - self.buf.len());
        self.buf.extend_from_slice(&buf[..n]);
        if self.buf.len() >= self.chunk {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for Chunks {
    fn drop(&mut self) {
        if !self.buf.is_empty() {
            let _ = self.send();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_cut_at_the_chunk_size_and_the_rest_goes_when_dropped() {
        let (tx, rx) = sync_channel(8);
        let mut chunks = Chunks {
            buf: Vec::new(),
            chunk: 4,
            tx,
        };
        chunks.write_all(b"abcdefghij").unwrap();
        drop(chunks);
        let got: Vec<Vec<u8>> = rx.into_iter().collect();
        assert_eq!(got, [b"abcd".to_vec(), b"efgh".to_vec(), b"ij".to_vec()]);
    }

    #[test]
    fn a_stopped_upload_is_a_write_error() {
        let (tx, rx) = sync_channel(8);
        drop(rx);
        let mut chunks = Chunks {
            buf: Vec::new(),
            chunk: 2,
            tx,
        };
        assert!(chunks.write_all(b"abc").is_err());
    }
}
