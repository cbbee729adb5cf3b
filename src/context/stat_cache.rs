//! Remembering file content digests between builds, keyed by what stat
//! says, so an unchanged context is only stat'ed, never re-read.
//!
//! A record is reused only when size, mtime, ctime, inode and device all
//! match. ctime cannot be set from user space, so `touch -d` or a tool
//! restoring mtimes still invalidates the record. To avoid git's "racy
//! clean" problem (a write landing in the same timestamp tick as the stat),
//! the digester records only files whose timestamps are older than the
//! moment it started reading (see `digest.rs`).
//!
//! The store's database lives on another branch; this cache stays a
//! standalone file per context directory, `<root>/context-cache/<hash>`,
//! replaced atomically (temp file + rename) so a crash never leaves a torn
//! file, and ignored (with a warning) if it is unreadable or corrupt.

use crate::error_chain::Chain;
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::RwLock;

/// The stat fields that must be unchanged for a cached digest to be reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FileStamp {
    pub size: u64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    pub ino: u64,
    pub dev: u64,
}

/// Where content digests (sha256 of file bytes) are remembered.
pub trait FileDigestCache: Send + Sync {
    /// The digest recorded for `path` if its stamp still matches.
    fn get(&self, path: &str, stamp: &FileStamp) -> Option<[u8; 32]>;
    /// Records the digest of `path` as of `stamp`.
    fn put(&self, path: &str, stamp: FileStamp, digest: [u8; 32]);
}

/// Remembers nothing: every digest reads the file.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoDigestCache;

impl FileDigestCache for NoDigestCache {
    fn get(&self, _: &str, _: &FileStamp) -> Option<[u8; 32]> {
        None
    }
    fn put(&self, _: &str, _: FileStamp, _: [u8; 32]) {}
}

/// Why the cache file could not be written.
#[derive(Debug, thiserror::Error)]
pub enum StatCacheError {
    #[error("cannot write context digest cache {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// First bytes of the file; a different format version reads as empty.
const MAGIC: &[u8; 16] = b"kiln-ctxcache-v1";

#[derive(Clone, Copy)]
struct Record {
    stamp: FileStamp,
    digest: [u8; 32],
}

/// The persistent cache for one context directory.
pub struct StatCacheFile {
    path: PathBuf,
    // Read-mostly: every file of every build looks up, few insert.
    state: RwLock<State>,
}

#[derive(Default)]
struct State {
    records: HashMap<String, Record>,
    dirty: bool,
}

impl StatCacheFile {
    /// Opens the cache kept in `cache_dir` (the store's `context-cache/`,
    /// `cache::StoreLayout::context_cache`) for the context at
    /// `context_dir` (one file per canonical context path).
    pub fn open(cache_dir: &Path, context_dir: &Path) -> StatCacheFile {
        let canonical = fs::canonicalize(context_dir).unwrap_or_else(|_| context_dir.to_path_buf());
        let name = hex::encode(Sha256::digest(canonical.as_os_str().as_encoded_bytes()));
        StatCacheFile::load(cache_dir.join(name))
    }

    /// Loads the cache file at `path`; a missing file is an empty cache.
    pub fn load(path: PathBuf) -> StatCacheFile {
        let records = match fs::read(&path) {
            Ok(bytes) => decode(&bytes).unwrap_or_else(|| {
                tracing::warn!(path = %path.display(), "ignoring corrupt context digest cache");
                HashMap::new()
            }),
            Err(err) if err.kind() == io::ErrorKind::NotFound => HashMap::new(),
            Err(err) => {
                tracing::warn!(path = %path.display(), "cannot read context digest cache: {err}", err = Chain(&err));
                HashMap::new()
            }
        };
        StatCacheFile {
            path,
            state: RwLock::new(State {
                records,
                dirty: false,
            }),
        }
    }

    /// The cache file's location.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.state.read().map(|s| s.records.len()).unwrap_or(0)
    }

    /// Whether there are no records.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops records for paths `keep` rejects (files gone from the context).
    pub fn retain(&self, keep: impl Fn(&str) -> bool) {
        if let Ok(mut state) = self.state.write() {
            let before = state.records.len();
            state.records.retain(|path, _| keep(path));
            if state.records.len() != before {
                state.dirty = true;
            }
        }
    }

    /// Writes the cache if anything changed since it was loaded.
    pub fn save(&self) -> Result<(), StatCacheError> {
        let Ok(mut state) = self.state.write() else {
            return Ok(());
        };
        if !state.dirty {
            return Ok(());
        }
        let err = |source| StatCacheError::Write {
            path: self.path.clone(),
            source,
        };
        let dir = self.path.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir).map_err(err)?;
        // A unique temporary name per process: two builds of one context
        // may save at once; the last rename wins, both files are whole.
        let tmp = self
            .path
            .with_extension(format!("tmp-{}", std::process::id()));
        let written = fs::File::create(&tmp).and_then(|mut f| f.write_all(&encode(&state.records)));
        if let Err(e) = written.and_then(|()| fs::rename(&tmp, &self.path)) {
            let _ = fs::remove_file(&tmp);
            return Err(err(e));
        }
        state.dirty = false;
        Ok(())
    }
}

impl FileDigestCache for StatCacheFile {
    fn get(&self, path: &str, stamp: &FileStamp) -> Option<[u8; 32]> {
        let state = self.state.read().ok()?;
        let record = state.records.get(path)?;
        (record.stamp == *stamp).then_some(record.digest)
    }

    fn put(&self, path: &str, stamp: FileStamp, digest: [u8; 32]) {
        if let Ok(mut state) = self.state.write() {
            state
                .records
                .insert(path.to_string(), Record { stamp, digest });
            state.dirty = true;
        }
    }
}

/// Layout: MAGIC, then per record: u32 path length, path, size, mtime,
/// ctime, ino, dev (8 bytes each, little endian), 32-byte digest.
fn encode(records: &HashMap<String, Record>) -> Vec<u8> {
    let mut out = Vec::with_capacity(MAGIC.len() + records.len() * 112);
    out.extend_from_slice(MAGIC);
    for (path, r) in records {
        out.extend_from_slice(&(path.len() as u32).to_le_bytes());
        out.extend_from_slice(path.as_bytes());
        out.extend_from_slice(&r.stamp.size.to_le_bytes());
        out.extend_from_slice(&r.stamp.mtime_ns.to_le_bytes());
        out.extend_from_slice(&r.stamp.ctime_ns.to_le_bytes());
        out.extend_from_slice(&r.stamp.ino.to_le_bytes());
        out.extend_from_slice(&r.stamp.dev.to_le_bytes());
        out.extend_from_slice(&r.digest);
    }
    out
}

fn decode(bytes: &[u8]) -> Option<HashMap<String, Record>> {
    let mut rest = bytes.strip_prefix(MAGIC.as_slice())?;
    let mut records = HashMap::new();
    fn take<'a>(rest: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        if rest.len() < n {
            return None;
        }
        let (head, tail) = rest.split_at(n);
        *rest = tail;
        Some(head)
    }
    fn u64_of(rest: &mut &[u8]) -> Option<u64> {
        Some(u64::from_le_bytes(take(rest, 8)?.try_into().ok()?))
    }
    while !rest.is_empty() {
        let len = u32::from_le_bytes(take(&mut rest, 4)?.try_into().ok()?) as usize;
        let path = std::str::from_utf8(take(&mut rest, len)?).ok()?.to_string();
        let stamp = FileStamp {
            size: u64_of(&mut rest)?,
            mtime_ns: u64_of(&mut rest)? as i64,
            ctime_ns: u64_of(&mut rest)? as i64,
            ino: u64_of(&mut rest)?,
            dev: u64_of(&mut rest)?,
        };
        let digest: [u8; 32] = take(&mut rest, 32)?.try_into().ok()?;
        records.insert(path, Record { stamp, digest });
    }
    Some(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(size: u64) -> FileStamp {
        FileStamp {
            size,
            mtime_ns: 1,
            ctime_ns: 2,
            ino: 3,
            dev: 4,
        }
    }

    #[test]
    fn records_survive_a_save_and_reload_and_need_a_matching_stamp() {
        let root = tempfile::tempdir().unwrap();
        let ctx = tempfile::tempdir().unwrap();
        let dir = root.path().join("context-cache");
        let cache = StatCacheFile::open(&dir, ctx.path());
        cache.put("a/b.txt", stamp(5), [7; 32]);
        cache.save().unwrap();
        assert!(cache.path().starts_with(root.path().join("context-cache")));

        let again = StatCacheFile::open(&dir, ctx.path());
        assert_eq!(again.get("a/b.txt", &stamp(5)), Some([7; 32]));
        assert_eq!(again.get("a/b.txt", &stamp(6)), None);
        assert_eq!(again.get("other", &stamp(5)), None);

        again.retain(|p| p != "a/b.txt");
        again.save().unwrap();
        assert!(StatCacheFile::open(root.path(), ctx.path()).is_empty());
    }

    #[test]
    fn a_corrupt_file_reads_as_an_empty_cache() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("cache");
        let cache = StatCacheFile::load(path.clone());
        cache.put("x", stamp(1), [1; 32]);
        cache.save().unwrap();
        let mut bytes = fs::read(&path).unwrap();
        bytes.truncate(bytes.len() - 3);
        fs::write(&path, &bytes).unwrap();
        assert!(StatCacheFile::load(path.clone()).is_empty());
        fs::write(&path, b"something else entirely").unwrap();
        assert!(StatCacheFile::load(path).is_empty());
    }
}
