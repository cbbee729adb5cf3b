//! The HTTP source op (`ADD <url>`): fetches the URL on every build and
//! gives dependents the digest of what came back to key on, so a server
//! that starts serving other bytes makes a new cache key instead of a
//! stale hit (BuildKit's `source/http`).
//!
//! Each URL's last download is kept in the store with its validators:
//!
//! ```text
//! <root>/http/<sha256 of the URL>/lock         flock'ed while fetching
//! <root>/http/<sha256 of the URL>/entry.json   digest, size, ETag, Last-Modified
//! <root>/http/<sha256 of the URL>/<hex>        the body (mode 0600, mtime Last-Modified)
//! ```
//!
//! - With a stored copy the request is conditional (`If-None-Match`, else
//!   `If-Modified-Since`); a `304` reuses the copy: no body, nothing
//!   rewritten. A `200` with the same bytes and date keeps the copy too.
//! - With `--checksum`, a stored copy of that digest is used without a
//!   request (the checksum is the key); otherwise the content is fetched
//!   and must match ("digest mismatch for URL: ... (expected: ...)").
//! - What dependents key on ([`RemoteFile::content_digest`]) is BuildKit's
//!   `formatCacheKey`: file name, content digest and `Last-Modified`
//!   (which becomes the file's mtime); with `--checksum`, name and checksum.
//!
//! **Crash safety:** a body is written in this process's scratch dir,
//! fsynced and renamed into place before the entry naming it is (the same
//! way); a reader ignores an entry whose body is missing or of another
//! size. A kill at any moment leaves the old entry or the new one.

use crate::error_chain::Chain;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use thiserror::Error;

use super::fetch::{self, FetchError, Fetched, Validators};
use crate::cache::Store;
use crate::image::digest::{Algorithm, Digest};
use crate::solver::{canonical, HttpSource};
use crate::source::url::{file_name_for, redact_password};

/// Why an HTTP source failed. URLs in messages have their password hidden
/// ([`redact_password`]).
#[derive(Debug, Error)]
pub enum HttpSourceError {
    /// The request or the download failed.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// `--checksum` is not a sha256 digest.
    #[error("invalid checksum {checksum:?} for {url}: expected sha256:<64 hex digits>")]
    InvalidChecksum { url: String, checksum: String },
    /// The content's digest is not the `--checksum` one (BuildKit's wording).
    #[error("digest mismatch for {url}: {actual} (expected: {expected})")]
    Mismatch {
        url: String,
        expected: Digest,
        actual: Digest,
    },
    /// A `304` naming an ETag other than the stored copy's.
    #[error("{url}: invalid not-modified ETag {etag:?}")]
    NotModified { url: String, etag: Option<String> },
    /// Reading or writing the stored copy failed.
    #[error("{path}: {op}")]
    Io {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: io::Error,
    },
}

fn io_err(path: &Path, op: &'static str) -> impl FnOnce(io::Error) -> HttpSourceError {
    let path = path.to_path_buf();
    move |source| HttpSourceError::Io { path, op, source }
}

/// How a fetch went, for the build log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// `--checksum` matched the stored copy: no request was made.
    Pinned,
    /// The server answered `304`: the stored copy was used.
    NotModified,
    /// The server sent the stored copy's bytes and date again.
    Unchanged,
    /// New content was downloaded and stored.
    Downloaded,
}

/// The file an HTTP source produced, ready to be copied.
#[derive(Debug, Clone)]
pub struct RemoteFile {
    /// The URL it came from.
    pub url: String,
    /// A private link to the stored body, named as the file will be (the
    /// URL path's last element); it stays valid whatever other builds
    /// store for the URL meanwhile.
    pub file: PathBuf,
    /// sha256 of the content.
    pub digest: Digest,
    /// Content length in bytes.
    pub size: u64,
    /// `Last-Modified` as seconds since the epoch (the file's mtime).
    pub mtime: Option<i64>,
    /// `--checksum`, which stands for the content in keys.
    pub checksum: Option<Digest>,
    /// What the fetch did.
    pub outcome: Outcome,
}

impl RemoteFile {
    /// What a dependent's cache key takes from this file: everything of it
    /// a copy can see (name, content, mtime), or with `--checksum` the
    /// name and checksum alone (BuildKit's `formatCacheKey`).
    pub fn content_digest(&self) -> Digest {
        #[derive(serde::Serialize)]
        struct Key<'a> {
            version: &'static str,
            filename: &'a str,
            digest: &'a Digest,
            #[serde(skip_serializing_if = "Option::is_none")]
            mtime: Option<i64>,
        }
        let filename = self
            .file
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default();
        let key = Key {
            version: "kiln.http.v1",
            filename: &filename,
            digest: self.checksum.as_ref().unwrap_or(&self.digest),
            mtime: if self.checksum.is_some() {
                None
            } else {
                self.mtime
            },
        };
        // Strings, a digest and an integer: encoding cannot fail.
        canonical::digest(&key).unwrap_or_else(|_| self.digest.clone())
    }
}

/// What is stored about a URL's last download.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Entry {
    url: String,
    digest: Digest,
    size: u64,
    #[serde(flatten)]
    validators: Validators,
}

impl Entry {
    fn mtime(&self) -> Option<i64> {
        self.validators
            .last_modified
            .as_deref()
            .and_then(fetch::parse_http_date)
    }
}

/// Fetches `source` into `store`'s HTTP cache, conditionally when a copy
/// is stored, and links the result into this process's scratch space.
pub fn fetch(store: &Store, source: &HttpSource) -> Result<RemoteFile, HttpSourceError> {
    let url = source.url.as_str();
    let checksum = match &source.checksum {
        None => None,
        Some(text) => match text.parse::<Digest>() {
            Ok(d) if d.algorithm() == Algorithm::Sha256 => Some(d),
            _ => {
                return Err(HttpSourceError::InvalidChecksum {
                    url: redact_password(url),
                    checksum: text.clone(),
                })
            }
        },
    };
    let dir = store
        .downloads_dir()
        .join(Digest::sha256_of(url.as_bytes()).hex());
    std::fs::create_dir_all(&dir).map_err(io_err(&dir, "creating the download cache"))?;
    // One fetch of a URL at a time, across builds and processes: the
    // entry and the bodies next to it change only under this lock.
    let lock_path = dir.join("lock");
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(io_err(&lock_path, "opening"))?;
    let _lock = Flock::lock(lock, FlockArg::LockExclusive)
        .map_err(|(_, errno)| io_err(&lock_path, "locking")(errno.into()))?;

    let stored = read_entry(&dir, url);
    let scratch = store
        .scratch_path("http")
        .map_err(|e| io_err(&dir, "preparing a download")(io::Error::other(e)))?;
    std::fs::create_dir(&scratch).map_err(io_err(&scratch, "creating"))?;
    let result = fetch_locked(&dir, &scratch, url, stored, checksum.as_ref());
    let _ = crate::cache::scratch::remove_tree(&scratch);
    let (entry, outcome) = result?;
    if let Some(expected) = &checksum {
        if *expected != entry.digest {
            return Err(HttpSourceError::Mismatch {
                url: redact_password(url),
                expected: expected.clone(),
                actual: entry.digest,
            });
        }
    }
    // A hard link of our own: the body another build stores for this URL
    // later replaces the name in the cache, never the file we copy from.
    let out = store
        .scratch_path("download")
        .map_err(|e| io_err(&dir, "preparing a download")(io::Error::other(e)))?;
    std::fs::create_dir(&out).map_err(io_err(&out, "creating"))?;
    let file = out.join(file_name_for(url));
    let body = dir.join(entry.digest.hex());
    std::fs::hard_link(&body, &file).map_err(io_err(&body, "linking the download"))?;
    Ok(RemoteFile {
        url: url.to_string(),
        file,
        mtime: entry.mtime(),
        digest: entry.digest,
        size: entry.size,
        checksum,
        outcome,
    })
}

/// The request and what becomes of its answer, under the URL's lock.
fn fetch_locked(
    dir: &Path,
    scratch: &Path,
    url: &str,
    stored: Option<Entry>,
    checksum: Option<&Digest>,
) -> Result<(Entry, Outcome), HttpSourceError> {
    if let (Some(entry), Some(checksum)) = (&stored, checksum) {
        if entry.digest == *checksum {
            return Ok((entry.clone(), Outcome::Pinned));
        }
    }
    let validators = stored
        .as_ref()
        .map(|e| e.validators.clone())
        .unwrap_or_default();
    let tmp = scratch.join("body");
    match fetch::get(url, &validators, &tmp)? {
        Fetched::NotModified { etag } => match stored {
            Some(entry) if validators.not_modified_matches(etag.as_deref()) => {
                tracing::debug!(
                    url = redact_password(url),
                    "not modified, using the stored copy"
                );
                Ok((entry, Outcome::NotModified))
            }
            _ => Err(HttpSourceError::NotModified {
                url: redact_password(url),
                etag,
            }),
        },
        Fetched::Body {
            download,
            validators,
        } => {
            let entry = Entry {
                url: url.to_string(),
                digest: download.digest,
                size: download.size,
                validators,
            };
            let same_body = stored
                .as_ref()
                .is_some_and(|old| old.digest == entry.digest && old.mtime() == entry.mtime());
            if !same_body {
                let body = dir.join(entry.digest.hex());
                std::fs::rename(&tmp, &body).map_err(io_err(&body, "storing the download"))?;
            }
            if stored.as_ref() != Some(&entry) {
                write_entry(dir, scratch, &entry)?;
                remove_other_bodies(dir, &entry);
            }
            let outcome = if same_body {
                Outcome::Unchanged
            } else {
                Outcome::Downloaded
            };
            Ok((entry, outcome))
        }
    }
}

/// A provenance material for `source`: its URL (any password redacted)
/// and the digest of the body this build read (the `--checksum`, else
/// the stored entry's, which the build's fetch just refreshed).
pub fn material(store: &Store, source: &HttpSource) -> (String, Option<Digest>) {
    let checksum = source
        .checksum
        .as_deref()
        .and_then(|c| c.parse::<Digest>().ok());
    let digest = checksum.or_else(|| {
        let dir = store
            .downloads_dir()
            .join(Digest::sha256_of(source.url.as_bytes()).hex());
        read_entry(&dir, &source.url).map(|e| e.digest)
    });
    (redact_password(&source.url), digest)
}

/// The stored entry for `url`, if it is readable and its body is there
/// with the recorded size (a half-finished replacement never is).
fn read_entry(dir: &Path, url: &str) -> Option<Entry> {
    let path = dir.join("entry.json");
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
        Err(e) => {
            tracing::warn!(path = %path.display(), "cannot read download entry: {e}", e = Chain(&e));
            return None;
        }
    };
    let entry: Entry = match serde_json::from_slice(&bytes) {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(path = %path.display(), "ignoring a corrupt download entry: {e}", e = Chain(&e));
            return None;
        }
    };
    let body = std::fs::metadata(dir.join(entry.digest.hex())).ok()?;
    (entry.url == url && body.is_file() && body.len() == entry.size).then_some(entry)
}

/// Replaces `entry.json` atomically: written and fsynced in scratch,
/// renamed into place, the directory fsynced so the rename is durable.
fn write_entry(dir: &Path, scratch: &Path, entry: &Entry) -> Result<(), HttpSourceError> {
    let tmp = scratch.join("entry.json");
    let json = serde_json::to_vec(entry)
        .map_err(|e| io_err(&tmp, "encoding the download entry")(io::Error::other(e)))?;
    let mut file = File::create(&tmp).map_err(io_err(&tmp, "creating"))?;
    file.write_all(&json).map_err(io_err(&tmp, "writing"))?;
    file.sync_all().map_err(io_err(&tmp, "syncing"))?;
    drop(file);
    let path = dir.join("entry.json");
    std::fs::rename(&tmp, &path).map_err(io_err(&path, "storing the download entry"))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir, "syncing"))
}

/// Removes bodies the entry no longer names (links already taken from
/// them keep their data).
fn remove_other_bodies(dir: &Path, entry: &Entry) {
    let keep = entry.digest.hex();
    let Ok(names) = std::fs::read_dir(dir) else {
        return;
    };
    for name in names.flatten() {
        let name = name.file_name();
        let name = name.to_string_lossy();
        if name != keep && name != "lock" && name != "entry.json" {
            if let Err(e) = std::fs::remove_file(dir.join(name.as_ref())) {
                tracing::warn!(dir = %dir.display(), "cannot remove an old download: {e}", e = Chain(&e));
            }
        }
    }
}

#[cfg(test)]
mod tests;
