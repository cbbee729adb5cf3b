//! Step input summaries: what went into the last recorded result of each
//! build step, by the step's lineage (`solver::explain`), so `kiln build
//! --explain` can say which input of a missed step changed.
//!
//! Like copy indexes these are hints, never a source of truth: one file
//! per lineage, `<root>/step-inputs/<lineage hex>`, replaced whole by
//! rename and not fsynced (a lost one only makes an explanation say "no
//! earlier record"), opaque bytes to the store, bounded by the number of
//! distinct steps rather than of records; `kiln builder prune` removes
//! them with the other hints.

use std::io::Write;

use super::{io_err, Result, Store};
use crate::image::digest::Digest;

/// The largest summary kept: a step's definition plus its inputs' paths
/// and digests; anything bigger is not worth an explanation's disk.
const MAX_SUMMARY: usize = 1 << 20;

impl Store {
    /// The summary last recorded for `lineage`, if any.
    pub fn step_inputs_get(&self, lineage: &Digest) -> Option<Vec<u8>> {
        std::fs::read(self.layout().step_inputs().join(lineage.hex())).ok()
    }

    /// Records `summary` for `lineage`, replacing the earlier one.
    pub fn step_inputs_put(&self, lineage: &Digest, summary: &[u8]) -> Result<()> {
        if summary.len() > MAX_SUMMARY {
            return Ok(());
        }
        let dir = self.layout().step_inputs();
        std::fs::create_dir_all(&dir).map_err(io_err(&dir, "creating step inputs dir"))?;
        let tmp = self.scratch_path("step-inputs")?;
        let mut file = std::fs::File::create(&tmp).map_err(io_err(&tmp, "creating step inputs"))?;
        file.write_all(summary)
            .map_err(io_err(&tmp, "writing step inputs"))?;
        drop(file);
        let dest = dir.join(lineage.hex());
        std::fs::rename(&tmp, &dest).map_err(io_err(&dest, "moving step inputs into place"))
    }

    /// Forgets every summary (`kiln builder prune`). File by file, the
    /// directory kept: a build recording one meanwhile renames into it.
    pub(super) fn step_inputs_clear(&self) -> Result<()> {
        let dir = self.layout().step_inputs();
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io_err(&dir, "listing step inputs")(e)),
        };
        for entry in entries {
            let path = entry.map_err(io_err(&dir, "listing step inputs"))?.path();
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(io_err(&path, "removing step inputs")(e))
                }
                _ => {}
            }
        }
        Ok(())
    }
}
