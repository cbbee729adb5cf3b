//! Where blobs came from, so a push can ask the registry to mount a blob
//! from another repository instead of uploading it again (distribution
//! spec "Mounting a blob from another repository").
//!
//! `<root>/blob-sources/<hex>` lists `registry/repository` lines, one per
//! repository the blob was pulled from or pushed to. It is a hint: a
//! mount the registry declines falls back to an upload, so a stale or
//! lost line costs only bandwidth.

use crate::cache::StoreLayout;
use crate::error_chain::Chain;
use crate::image::{Digest, ImageRef};
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The blob-source hints of a store root.
pub struct BlobSources {
    dir: PathBuf,
}

impl BlobSources {
    pub fn open(root: &Path) -> BlobSources {
        BlobSources {
            dir: StoreLayout::new(root).blob_sources(),
        }
    }

    /// Notes that `digest` is in `image`'s repository. Failures are only
    /// logged: the hint is an optimization.
    pub fn record(&self, digest: &Digest, image: &ImageRef) {
        let line = format!("{}/{}", image.registry(), image.repository());
        if self.repositories(digest).contains(&line) {
            return;
        }
        let result = fs::create_dir_all(&self.dir).and_then(|_| {
            let mut f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.dir.join(digest.hex()))?;
            // One write(2) of a short line with O_APPEND: concurrent
            // writers do not interleave.
            f.write_all(format!("{line}\n").as_bytes())
        });
        if let Err(e) = result {
            tracing::debug!(%digest, "recording blob source: {e}", e = Chain(&e));
        }
    }

    /// Another repository of `registry` known to hold `digest`, other
    /// than `repository`.
    pub fn mount_source(
        &self,
        digest: &Digest,
        registry: &str,
        repository: &str,
    ) -> Option<String> {
        let prefix = format!("{registry}/");
        self.repositories(digest)
            .into_iter()
            .filter_map(|l| l.strip_prefix(&prefix).map(str::to_string))
            .find(|r| r != repository)
    }

    fn repositories(&self, digest: &Digest) -> Vec<String> {
        fs::read_to_string(self.dir.join(digest.hex()))
            .map(|t| t.lines().map(str::to_string).collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_repositories_per_registry() {
        let root = tempfile::tempdir().unwrap();
        let s = BlobSources::open(root.path());
        let d = Digest::sha256_of(b"x");
        assert_eq!(s.mount_source(&d, "r:1", "a/b"), None);
        s.record(&d, &ImageRef::parse("r:1/a/b").unwrap());
        s.record(&d, &ImageRef::parse("r:1/a/b:v2").unwrap());
        s.record(&d, &ImageRef::parse("other:2/c").unwrap());
        assert_eq!(s.mount_source(&d, "r:1", "a/b"), None);
        assert_eq!(s.mount_source(&d, "r:1", "x/y").as_deref(), Some("a/b"));
        assert_eq!(s.mount_source(&d, "other:2", "x").as_deref(), Some("c"));
        let lines = fs::read_to_string(root.path().join("blob-sources").join(d.hex())).unwrap();
        assert_eq!(lines.lines().count(), 2);
    }
}
