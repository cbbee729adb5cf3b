//! What `kiln build` is handed, read with bounds: the Dockerfile (a file or
//! stdin) and a context tar on stdin. Nothing here reads without a limit,
//! so `-f /dev/zero` or `- < /dev/urandom` fail fast with the limit named
//! instead of filling memory or disk.

use crate::image::layer::budget::{ExpansionBudget, TooLarge};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// The largest Dockerfile (or `.dockerignore`) read: BuildKit's, 16 MiB
/// (moby/buildkit `frontend/dockerui/readfile.go` `maxFileSize` =
/// containerd `defaults.DefaultMaxRecvMsgSize`, one gRPC message, which a
/// gateway frontend could not read past anyway).
pub const MAX_DOCKERFILE_SIZE: u64 = 16 << 20;

/// How much of stdin is looked at to tell a context tar from a Dockerfile.
const SNIFF_LEN: usize = 512;

/// Why an input could not be read.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// Larger than its limit (BuildKit's wording).
    #[error("{what} exceeds maximum allowed size of {limit} bytes")]
    TooLarge { what: String, limit: u64 },
    #[error("reading {what}")]
    Read {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("unpacking the context from stdin into {}", dir.display())]
    Unpack {
        dir: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Expansion(#[from] TooLarge),
}

/// What stdin held for `kiln build -`.
#[derive(Debug)]
pub enum StdinInput {
    /// A context tar (plain or compressed), unpacked into the given dir.
    Context,
    /// A Dockerfile (and no context).
    Dockerfile(Vec<u8>),
}

/// Reads all of `reader` as `what`, failing once it is longer than `limit`
/// (at most `limit + 1` bytes are ever held).
pub fn read_bounded(reader: impl Read, limit: u64, what: &str) -> Result<Vec<u8>, InputError> {
    let mut data = Vec::new();
    reader
        .take(limit.saturating_add(1))
        .read_to_end(&mut data)
        .map_err(|source| InputError::Read {
            what: what.to_string(),
            source,
        })?;
    if data.len() as u64 > limit {
        return Err(InputError::TooLarge {
            what: what.to_string(),
            limit,
        });
    }
    Ok(data)
}

/// Reads the Dockerfile at `path`, bounded by [`MAX_DOCKERFILE_SIZE`].
pub fn read_dockerfile(path: &Path) -> Result<Vec<u8>, InputError> {
    let what = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|source| InputError::Read {
        what: what.clone(),
        source,
    })?;
    read_bounded(file, MAX_DOCKERFILE_SIZE, &what)
}

/// Reads `kiln build -`'s stdin: a tar (by its first bytes) is streamed
/// into `dir`, never held in memory, its entries charged to `budget`;
/// anything else is the Dockerfile, bounded by [`MAX_DOCKERFILE_SIZE`].
pub fn read_stdin(
    stdin: impl Read + Send + 'static,
    dir: &Path,
    budget: &mut ExpansionBudget,
) -> Result<StdinInput, InputError> {
    let mut stdin = stdin;
    let mut head = Vec::with_capacity(SNIFF_LEN);
    (&mut stdin)
        .take(SNIFF_LEN as u64)
        .read_to_end(&mut head)
        .map_err(|source| InputError::Read {
            what: "stdin".into(),
            source,
        })?;
    let whole = io::Cursor::new(head.clone()).chain(stdin);
    if !is_tar(&head) {
        let data = read_bounded(whole, MAX_DOCKERFILE_SIZE, "Dockerfile from stdin")?;
        return Ok(StdinInput::Dockerfile(data));
    }
    unpack_context(whole, dir, budget)?;
    Ok(StdinInput::Context)
}

/// Unpacks a context tar into `dir` entry by entry (tar-rs `unpack_in`
/// refuses names climbing out of `dir`), charging each entry's logical
/// size plus its header to `budget`. Directories are finished last, as
/// tar-rs `Archive::unpack` does, so a read-only one cannot block what
/// goes inside it.
fn unpack_context(
    reader: impl Read + Send + 'static,
    dir: &Path,
    budget: &mut ExpansionBudget,
) -> Result<(), InputError> {
    const WHAT: &str = "the context tar on stdin";
    let unpack = |source| InputError::Unpack {
        dir: dir.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(unpack)?;
    let reader = crate::image::layer::decompressed(reader).map_err(unpack)?;
    let mut archive = tar::Archive::new(reader);
    let mut directories = Vec::new();
    for entry in archive.entries().map_err(unpack)? {
        let mut entry = entry.map_err(unpack)?;
        budget.charge(entry.size().saturating_add(512), WHAT)?;
        if entry.header().entry_type().is_dir() {
            directories.push(entry);
            continue;
        }
        entry.unpack_in(dir).map_err(unpack)?;
    }
    for mut d in directories {
        d.unpack_in(dir).map_err(unpack)?;
    }
    Ok(())
}

/// Whether `head` (a stream's first bytes) starts a tar, plain or
/// compressed.
pub fn is_tar(head: &[u8]) -> bool {
    let compressed = head.starts_with(&[0x1f, 0x8b])
        || head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
        || head.starts_with(b"BZh")
        || head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]);
    compressed || (head.len() >= 262 && &head[257..262] == b"ustar")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dockerfile_over_the_limit_is_refused_without_reading_it_all() {
        let ok = read_bounded(&b"FROM scratch\n"[..], 13, "Dockerfile").unwrap();
        assert_eq!(ok, b"FROM scratch\n");
        let zero = std::fs::File::open("/dev/zero").unwrap();
        let err = read_bounded(zero, MAX_DOCKERFILE_SIZE, "Dockerfile").unwrap_err();
        assert_eq!(
            err.to_string(),
            "Dockerfile exceeds maximum allowed size of 16777216 bytes"
        );
    }

    #[test]
    fn a_context_tar_past_its_budget_stops_unpacking() {
        let mut b = tar::Builder::new(Vec::new());
        for name in ["a", "b", "c"] {
            let mut h = tar::Header::new_gnu();
            h.set_size(1000);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, name, &[7u8; 1000][..]).unwrap();
        }
        let tar = b.into_inner().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut budget = ExpansionBudget::new(2500);
        let err = read_stdin(io::Cursor::new(tar.clone()), dir.path(), &mut budget).unwrap_err();
        assert!(
            err.to_string()
                .contains("the context tar on stdin expands to more than 2500 bytes"),
            "{err}"
        );
        assert!(!dir.path().join("c").exists());
        let dir = tempfile::tempdir().unwrap();
        let mut budget = ExpansionBudget::new(1 << 20);
        let got = read_stdin(io::Cursor::new(tar), dir.path(), &mut budget).unwrap();
        assert!(matches!(got, StdinInput::Context));
        assert_eq!(std::fs::read(dir.path().join("c")).unwrap(), [7u8; 1000]);
    }
}
