//! Copy indexes: what the last run of a COPY from the build context wrote,
//! by source content, so that its next run (after a context change) can
//! hard-link the files that did not change from the earlier snapshot
//! instead of copying them again (`crate::exec::copy_reuse`).
//!
//! An index is a hint, never a source of truth: it lives in
//! `<root>/copy-index/<lineage hex>`, is replaced whole by rename, carries
//! a checksum of itself (a torn or foreign file reads as no index), and
//! names its snapshot by chain ID, which must still exist and is leased
//! before anything links to it. Snapshots are immutable, so a file linked
//! from one is as good as a copy; the caller also compares owner, mode,
//! size and mtime before linking. `kiln builder prune` removes them all.

use crate::error_chain::Chain;
use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{io_err, Result, Store};
use crate::image::digest::Digest;

/// The files one COPY wrote into the snapshot `chain_id`: layer-relative
/// path → content digest of the context file it was copied from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyIndex {
    pub chain_id: Option<Digest>,
    pub files: HashMap<String, Digest>,
}

impl Store {
    /// The directory of stored `ADD <url>` downloads, one subdirectory per
    /// URL, owned by `exec::http_source`; `kiln builder prune` empties it.
    pub fn downloads_dir(&self) -> PathBuf {
        self.layout.http_downloads()
    }

    /// The index recorded for `lineage`, with its snapshot's directory,
    /// leased by this process; `None` if there is none or it is unusable.
    pub fn copy_index_get(&self, lineage: &Digest) -> Option<(CopyIndex, PathBuf)> {
        let path = self.layout.copy_indexes().join(lineage.hex());
        let bytes = std::fs::read(&path).ok()?;
        let index = decode(&bytes)?;
        let chain = index.chain_id.clone()?;
        match self.hold_existing_snapshot(&chain) {
            Ok(true) => {
                let dir = self.snapshot_path(&chain);
                Some((index, dir))
            }
            Ok(false) => None,
            Err(e) => {
                tracing::debug!("copy index {lineage}: {e}", e = Chain(&e));
                None
            }
        }
    }

    /// Records `index` for `lineage`, replacing the earlier one. Not
    /// fsynced: losing an index costs one slower copy, and a torn one fails
    /// its checksum.
    pub fn copy_index_put(&self, lineage: &Digest, index: &CopyIndex) -> Result<()> {
        let dir = self.layout.copy_indexes();
        std::fs::create_dir_all(&dir).map_err(io_err(&dir, "creating copy index dir"))?;
        let tmp = self.scratch_path("copy-index")?;
        let mut file = std::fs::File::create(&tmp).map_err(io_err(&tmp, "creating copy index"))?;
        file.write_all(&encode(index))
            .map_err(io_err(&tmp, "writing copy index"))?;
        drop(file);
        let dest = dir.join(lineage.hex());
        std::fs::rename(&tmp, &dest).map_err(io_err(&dest, "moving copy index into place"))
    }

    /// Forgets every copy index and stored `ADD <url>` download (`kiln
    /// builder prune`): both only spare work on a later build. A build
    /// downloading the same URL at that moment may fail to store it.
    pub(super) fn build_hints_clear(&self) -> Result<()> {
        self.step_inputs_clear()?;
        for dir in [self.layout.copy_indexes(), self.downloads_dir()] {
            match super::scratch::remove_tree(&dir) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(io_err(&dir, "removing build cache hints")(e))
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// JSON, then a newline and the sha256 of the JSON.
fn encode(index: &CopyIndex) -> Vec<u8> {
    let mut out = serde_json::to_vec(index).unwrap_or_default();
    let sum = Digest::sha256_of(&out);
    out.push(b'\n');
    out.extend_from_slice(sum.to_string().as_bytes());
    out
}

fn decode(bytes: &[u8]) -> Option<CopyIndex> {
    let split = bytes.iter().rposition(|&b| b == b'\n')?;
    let (json, sum) = (&bytes[..split], &bytes[split + 1..]);
    let sum: Digest = std::str::from_utf8(sum).ok()?.parse().ok()?;
    if Digest::sha256_of(json) != sum {
        return None;
    }
    serde_json::from_slice(json).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> CopyIndex {
        let mut files = HashMap::new();
        files.insert("src/a".to_string(), Digest::sha256_of(b"a"));
        CopyIndex {
            chain_id: Some(Digest::sha256_of(b"chain")),
            files,
        }
    }

    #[test]
    fn round_trips_and_refuses_torn_or_altered_files() {
        let bytes = encode(&sample());
        assert_eq!(decode(&bytes), Some(sample()));
        assert_eq!(decode(&bytes[..bytes.len() - 1]), None);
        assert_eq!(decode(&bytes[..bytes.len() / 2]), None);
        let mut altered = bytes.clone();
        altered[5] ^= 1;
        assert_eq!(decode(&altered), None);
        assert_eq!(decode(b""), None);
    }

    #[test]
    fn an_index_whose_snapshot_is_gone_is_no_index() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let lineage = Digest::sha256_of(b"copy op");
        store.copy_index_put(&lineage, &sample()).unwrap();
        assert!(store.copy_index_get(&lineage).is_none());

        let upper = store.scratch_path("upper").unwrap();
        std::fs::create_dir(&upper).unwrap();
        std::fs::write(upper.join("a"), "a").unwrap();
        let layer = store.add_layer_from_dir(&upper, None).unwrap();
        let index = CopyIndex {
            chain_id: Some(layer.chain_id.clone()),
            ..sample()
        };
        store.copy_index_put(&lineage, &index).unwrap();
        let (got, snapshot) = store.copy_index_get(&lineage).expect("index");
        assert_eq!(got, index);
        assert!(snapshot.join("a").is_file());

        std::fs::create_dir_all(dir.path().join("http/x")).unwrap();
        store.build_hints_clear().unwrap();
        assert!(!dir.path().join("http").exists());
        assert!(store.copy_index_get(&lineage).is_none());
    }
}
