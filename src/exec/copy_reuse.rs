//! Incremental COPY: when a COPY from the build context runs again because
//! some of its files changed, the files that did not change are
//! hard-linked from the previous run's snapshot instead of copied.
//!
//! Changing one file of a 430 MB context changes the COPY's cache key, and
//! without this the whole layer is written again (BuildKit does the same).
//! Snapshots are immutable (overlayfs copies a lower file up before any
//! change; nothing else writes them), so a link to one is as good as a
//! copy. A file is linked only if the previous run recorded the same
//! content digest for the same layer path (`cache::CopyIndex`) and the
//! earlier file has exactly the owner, mode, size and mtime the copy would
//! give it, with no xattrs on either side; anything else is copied. The
//! tar of a layer does not depend on how its files were made, so the
//! layer's diff ID is the same either way.
//!
//! The previous run is found by the COPY's "lineage": the digest of its
//! definition, without the content it read.

use crate::error_chain::Chain;
use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::context::LocalContext;
use super::tree::{FileFacts, Reuse};
use crate::cache::{CopyIndex, Store};
use crate::image::Digest;
use crate::solver::CopyFiles;

/// The earlier copy a COPY may link from, and what this run copies.
pub struct CopyReuse {
    lineage: Digest,
    context: Arc<LocalContext>,
    /// The directory the context's files are read from.
    source_root: PathBuf,
    previous: Option<(CopyIndex, PathBuf)>,
    written: Mutex<HashMap<String, Digest>>,
    linked: AtomicU64,
}

impl CopyReuse {
    /// Reuse for `copy` reading `context` through `source_root`, with the
    /// previous run's index if the store has a usable one.
    pub fn new(
        store: &Store,
        copy: &CopyFiles,
        context: Arc<LocalContext>,
        source_root: PathBuf,
    ) -> CopyReuse {
        let lineage = lineage(copy);
        let previous = store.copy_index_get(&lineage);
        CopyReuse {
            lineage,
            context,
            source_root,
            previous,
            written: Mutex::new(HashMap::new()),
            linked: AtomicU64::new(0),
        }
    }

    /// How many files were linked rather than copied.
    pub fn linked(&self) -> u64 {
        self.linked.load(Ordering::Relaxed)
    }

    /// Records what this run wrote into the snapshot `chain_id`, for the
    /// next run. Failing to record only costs speed, so it is logged.
    pub fn save(self, store: &Store, chain_id: &Digest) {
        let files = self.written.into_inner().unwrap_or_else(|p| p.into_inner());
        let index = CopyIndex {
            chain_id: Some(chain_id.clone()),
            files,
        };
        if let Err(e) = store.copy_index_put(&self.lineage, &index) {
            tracing::warn!("recording copy index: {e}", e = Chain(&e));
        }
    }

    /// The content digest of `src` if it is a context file.
    fn source_digest(&self, src: &Path) -> Option<Digest> {
        let rel = src.strip_prefix(&self.source_root).ok()?;
        self.context.file_digest(rel.to_str()?)
    }

    fn note(&self, rel: &Path, digest: Digest) {
        if let (Some(rel), Ok(mut written)) = (rel.to_str(), self.written.lock()) {
            written.insert(rel.to_string(), digest);
        }
    }
}

impl Reuse for CopyReuse {
    fn link_unchanged(&self, src: &Path, rel: &Path, dst: &Path, facts: &FileFacts) -> bool {
        let Some((index, snapshot)) = &self.previous else {
            return false;
        };
        let Some(key) = rel.to_str() else {
            return false;
        };
        let Some(recorded) = index.files.get(key) else {
            return false;
        };
        let Some(digest) = self.source_digest(src) else {
            return false;
        };
        if *recorded != digest {
            return false;
        }
        let earlier = snapshot.join(rel);
        let Ok(md) = std::fs::symlink_metadata(&earlier) else {
            return false;
        };
        let same = md.is_file()
            && md.uid() == facts.uid
            && md.gid() == facts.gid
            && md.mode() & 0o7777 == facts.mode
            && md.size() == facts.size
            && md.mtime() == facts.mtime.sec
            && md.mtime_nsec() == facts.mtime.nsec
            && no_xattrs(src)
            && no_xattrs(&earlier);
        if !same || std::fs::hard_link(&earlier, dst).is_err() {
            return false;
        }
        self.note(rel, digest);
        self.linked.fetch_add(1, Ordering::Relaxed);
        true
    }

    fn copied(&self, src: &Path, rel: &Path) {
        if let Some(digest) = self.source_digest(src) {
            self.note(rel, digest);
        }
    }
}

/// What identifies "the same COPY" across builds: its definition.
fn lineage(copy: &CopyFiles) -> Digest {
    let mut bytes = b"kiln.copy-lineage.v1\0".to_vec();
    bytes.extend(serde_json::to_vec(copy).unwrap_or_default());
    Digest::sha256_of(&bytes)
}

fn no_xattrs(path: &Path) -> bool {
    xattr::list(path).is_ok_and(|mut names| names.next().is_none())
}
