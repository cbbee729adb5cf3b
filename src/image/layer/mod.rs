//! Layers: the tar format of a filesystem change and its on-disk form.
//!
//! A layer travels as a tar (OCI image-spec `layer.md`) and is kept on disk
//! as a *snapshot* directory in overlayfs's upper-dir format: deletions are
//! 0/0 character devices, opaque directories carry `trusted.overlay.opaque`.
//! [`extract`] turns a tar into a snapshot (OCI whiteouts → overlay form),
//! [`diff`] turns a snapshot back into a deterministic tar (overlay form →
//! OCI whiteouts). Both are pure filesystem code: no store, no database.

pub mod budget;
mod confined;
pub mod diff;
pub mod extract;
pub mod header;
pub mod sparse;

use super::digest::Digest;
use super::oci::media;
use std::io::{self, BufRead, BufReader, Read, Write};

/// Extended attributes of one file: (name, value), sorted by name.
pub type Xattrs = Vec<(Vec<u8>, Vec<u8>)>;

/// Prefix of an OCI whiteout entry (`.wh.name` deletes `name`).
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// An OCI opaque-directory marker: hides everything below from lower layers.
pub const WHITEOUT_OPAQUE: &str = ".wh..wh..opq";
/// overlayfs's opaque-directory xattr (kernel `Documentation/filesystems/overlayfs.rst`).
pub const OVERLAY_OPAQUE_XATTR: &str = "trusted.overlay.opaque";
/// The same inside a user namespace (`userxattr` mount option).
pub const USER_OVERLAY_OPAQUE_XATTR: &str = "user.overlay.opaque";

/// Whether an xattr name belongs to overlayfs itself. These never travel in
/// layer tars: a `trusted.overlay.redirect` or `origin` smuggled into a
/// lower dir would change how the kernel resolves paths in the container.
pub fn is_overlay_xattr(name: &[u8]) -> bool {
    name.starts_with(b"trusted.overlay.") || name.starts_with(b"user.overlay.")
}

/// The OCI chain ID of a layer stack (image-spec `config.md`):
/// `ChainID(L0) = DiffID(L0)`, `ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln))`.
/// It names a snapshot because a layer's meaning depends on what is below.
pub fn chain_id(parent: Option<&Digest>, diff_id: &Digest) -> Digest {
    match parent {
        None => diff_id.clone(),
        Some(p) => Digest::sha256_of(format!("{p} {diff_id}").as_bytes()),
    }
}

/// The chain IDs of a whole stack of diff IDs, bottom to top.
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = chain_id(out.last(), d);
        out.push(next);
    }
    out
}

/// How a layer blob is compressed. Diff IDs are always over the
/// uncompressed tar, so this never changes a layer's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// The OCI layer media type for this compression.
    pub fn oci_media_type(self) -> &'static str {
        match self {
            Compression::None => media::OCI_LAYER,
            Compression::Gzip => media::OCI_LAYER_GZIP,
            Compression::Zstd => media::OCI_LAYER_ZSTD,
        }
    }

    /// Whether `level` is one this compression takes: gzip 0-9 (Go's
    /// `compress/gzip`, 0 storing), zstd 1-22; uncompressed takes any
    /// (BuildKit ignores the level there).
    pub fn check_level(self, level: i32) -> Result<(), String> {
        let range = match self {
            Compression::None => return Ok(()),
            Compression::Gzip => 0..=9,
            Compression::Zstd => 1..=22,
        };
        if range.contains(&level) {
            Ok(())
        } else {
            Err(format!(
                "compression level {level} is out of range for {} ({}-{})",
                self.name(),
                range.start(),
                range.end()
            ))
        }
    }

    /// The name BuildKit's `compression=` option uses.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "uncompressed",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }

    /// The compression a layer media type declares, if it is a layer type.
    pub fn from_media_type(mt: &str) -> Option<Compression> {
        Some(match media::layer_compression(mt)? {
            media::LayerCompression::None => Compression::None,
            media::LayerCompression::Gzip => Compression::Gzip,
            media::LayerCompression::Zstd => Compression::Zstd,
        })
    }

    /// Sniffs the compression from a stream's first bytes (magic numbers
    /// from RFC 1952 and RFC 8878), as `docker import`/`load` do rather
    /// than trusting file names or media types.
    pub fn detect(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }
}

/// A reader that yields the uncompressed tar of `input`, whatever its
/// compression (sniffed). bzip2 and xz are refused with a clear message.
pub fn decompressed(input: impl Read + Send + 'static) -> io::Result<Box<dyn Read + Send>> {
    let mut buffered = BufReader::with_capacity(256 * 1024, input);
    let head = buffered.fill_buf()?;
    if head.starts_with(b"BZh") || head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "bzip2/xz compressed layers are not supported (use gzip, zstd or none)",
        ));
    }
    Ok(match Compression::detect(head) {
        // Multi-member gzip (as pigz and parallel compressors write) is
        // valid per RFC 1952 §2.2 and Go's reader accepts it; so do we.
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(buffered)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(buffered)?),
        Compression::None => Box::new(buffered),
    })
}

/// A compressing writer for layer blobs; call [`Encoder::finish`] to write
/// the trailer and get the inner writer back.
pub enum Encoder<W: Write + Send + 'static> {
    None(W),
    Gzip(ParGzip<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
}

/// gzip level for layer blobs: Go's `gzip.DefaultCompression`, what docker
/// and BuildKit use, so blob sizes are comparable.
const GZIP_LEVEL: u32 = 6;
/// zstd level for layer blobs: the library's default, what BuildKit's
/// `zstd.SpeedDefault` corresponds to.
const ZSTD_LEVEL: i32 = 3;
/// Bytes per parallel gzip block. Without C zlib, gzp cannot prime a block
/// with the previous one's last 32 KiB, so blocks are larger than pigz's
/// 128 KiB to keep the ratio within ~1% of single-stream gzip.
const GZIP_BLOCK: usize = 1 << 20;

/// Parallel gzip (gzp, pigz's scheme) that never panics when dropped
/// unfinished: gzp's own `Drop` unwraps the result of finishing, which
/// fails if the inner writer failed.
pub struct ParGzip<W: Write + Send + 'static>(
    Option<gzp::par::compress::ParCompress<'static, gzp::deflate::Gzip, W>>,
);

impl<W: Write + Send + 'static> ParGzip<W> {
    fn new(inner: W, threads: usize, level: u32) -> io::Result<ParGzip<W>> {
        let enc = gzp::par::compress::ParCompressBuilder::<gzp::deflate::Gzip>::new()
            .num_threads(threads)
            .map_err(gzp_io)?
            .buffer_size(GZIP_BLOCK)
            .map_err(gzp_io)?
            .compression_level(flate2::Compression::new(level))
            .from_writer(inner);
        Ok(ParGzip(Some(enc)))
    }

    fn live(
        &mut self,
    ) -> io::Result<&mut gzp::par::compress::ParCompress<'static, gzp::deflate::Gzip, W>> {
        self.0
            .as_mut()
            .ok_or_else(|| io::Error::other("gzip stream already finished"))
    }

    fn finish(mut self) -> io::Result<W> {
        use gzp::ZWriter;
        // Taken out so that our Drop does not finish it a second time.
        let mut enc = self
            .0
            .take()
            .ok_or_else(|| io::Error::other("gzip stream already finished"))?;
        enc.finish().map_err(gzp_io)
    }
}

impl<W: Write + Send + 'static> Drop for ParGzip<W> {
    fn drop(&mut self) {
        if let Some(mut enc) = self.0.take() {
            use gzp::ZWriter;
            // Joins the worker threads; the error (if any) was already
            // reported by the write that failed.
            let _ = enc.finish();
        }
    }
}

fn gzp_io(e: gzp::GzpError) -> io::Error {
    match e {
        gzp::GzpError::Io(e) => e,
        other => io::Error::other(other),
    }
}

impl<W: Write + Send + 'static> Encoder<W> {
    /// Starts a blob with `compression`. Both compressors use all cores:
    /// zstd through zstdmt, gzip through gzp. The gzip stream is the same
    /// bytes whatever the core count (block boundaries depend only on
    /// gzp's buffer size), so a layer's compressed digest is reproducible.
    pub fn new(inner: W, compression: Compression) -> io::Result<Encoder<W>> {
        Encoder::with_level(inner, compression, None)
    }

    /// [`Encoder::new`] at `level` (gzip 0-9, zstd 1-22; see
    /// [`Compression::check_level`]), the default level for `None`.
    pub fn with_level(
        inner: W,
        compression: Compression,
        level: Option<i32>,
    ) -> io::Result<Encoder<W>> {
        if let Some(l) = level {
            compression
                .check_level(l)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        }
        let workers = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        Ok(match compression {
            Compression::None => Encoder::None(inner),
            Compression::Gzip => Encoder::Gzip(ParGzip::new(
                inner,
                workers,
                level.map_or(GZIP_LEVEL, |l| l as u32),
            )?),
            Compression::Zstd => {
                let mut enc =
                    zstd::stream::write::Encoder::new(inner, level.unwrap_or(ZSTD_LEVEL))?;
                if workers > 1 {
                    enc.multithread(workers as u32)?;
                }
                Encoder::Zstd(enc)
            }
        })
    }

    /// Flushes the compressor's trailer and returns the inner writer.
    pub fn finish(self) -> io::Result<W> {
        match self {
            Encoder::None(w) => Ok(w),
            Encoder::Gzip(e) => e.finish(),
            Encoder::Zstd(e) => e.finish(),
        }
    }
}

impl<W: Write + Send + 'static> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::None(w) => w.write(buf),
            Encoder::Gzip(e) => e.live()?.write(buf),
            Encoder::Zstd(e) => e.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::None(w) => w.flush(),
            Encoder::Gzip(e) => e.live()?.flush(),
            Encoder::Zstd(e) => e.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Digest {
        Digest::sha256_of(s.as_bytes())
    }

    #[test]
    fn chain_id_follows_the_image_spec() {
        let (a, b, c) = (d("a"), d("b"), d("c"));
        let ids = chain_ids(&[a.clone(), b.clone(), c.clone()]);
        assert_eq!(ids[0], a);
        let ab = Digest::sha256_of(format!("{a} {b}").as_bytes());
        assert_eq!(ids[1], ab);
        assert_eq!(ids[2], Digest::sha256_of(format!("{ab} {c}").as_bytes()));
        assert!(chain_ids(&[]).is_empty());
    }

    #[test]
    fn chain_id_known_vector() {
        // Two layers whose diff IDs are the empty-input digest: computed
        // independently with `printf 'sha256:e3b0… sha256:e3b0…' | sha256sum`.
        let e: Digest = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
            .parse()
            .unwrap();
        let want = Digest::sha256_of(format!("{e} {e}").as_bytes());
        assert_eq!(chain_id(Some(&e), &e), want);
    }

    #[test]
    fn every_compression_round_trips_through_detection() {
        for c in [Compression::None, Compression::Gzip, Compression::Zstd] {
            let mut enc = Encoder::new(Vec::new(), c).unwrap();
            enc.write_all(b"ustar payload").unwrap();
            let blob = enc.finish().unwrap();
            assert_eq!(Compression::detect(&blob), c);
            let mut out = Vec::new();
            decompressed(io::Cursor::new(blob))
                .unwrap()
                .read_to_end(&mut out)
                .unwrap();
            assert_eq!(out, b"ustar payload");
        }
    }

    #[test]
    fn parallel_gzip_spans_blocks_and_is_reproducible() {
        // 3.5 blocks of compressible, non-repeating data.
        let data: Vec<u8> = (0..GZIP_BLOCK * 7 / 2)
            .map(|i| ((i * 7919) % 251) as u8 ^ (i >> 12) as u8)
            .collect();
        let gz = |threads: usize| {
            let mut enc = Encoder::Gzip(ParGzip::new(Vec::new(), threads, GZIP_LEVEL).unwrap());
            enc.write_all(&data).unwrap();
            enc.finish().unwrap()
        };
        let blob = gz(4);
        assert_eq!(blob, gz(1), "output depends on the thread count");
        assert!(blob.len() < data.len() / 2, "{} bytes", blob.len());
        // One gzip member: a single-member decoder reads all of it.
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&blob[..])
            .read_to_end(&mut out)
            .unwrap();
        assert!(out == data, "round trip differs");
    }

    #[test]
    fn media_types_map_to_compressions() {
        assert_eq!(
            Compression::from_media_type(media::DOCKER_LAYER_GZIP),
            Some(Compression::Gzip)
        );
        assert_eq!(
            Compression::from_media_type(media::OCI_LAYER),
            Some(Compression::None)
        );
        assert_eq!(Compression::from_media_type("text/plain"), None);
    }
}
