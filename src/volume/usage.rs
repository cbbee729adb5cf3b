//! What a container mounts from the host, recorded in its own state dir
//! (`<root>/containers/<id>/volumes.json`): the volumes (so `volume rm`
//! can tell one in use, and `rm -v`/`--rm` can remove the anonymous ones)
//! and the binds (so `--volumes-from` repeats both, as docker's
//! `daemon/volumes.go` `registerMountPoints` does).
//!
//! The record lives and dies with the state dir: a container removed by
//! any path (its `--rm`, the reaper of a killed `--rm`, a future
//! `kiln rm`) stops using its volumes without telling this module.

use serde::{Deserialize, Serialize};
use std::io;
use std::path::{Path, PathBuf};

const RECORD: &str = "volumes.json";

/// Where container `state_dir` keeps its record.
pub fn record_path(state_dir: &Path) -> PathBuf {
    state_dir.join(RECORD)
}

/// Where one recorded mount comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "Type", rename_all = "lowercase")]
pub enum MountSource {
    /// A volume of the store.
    Volume {
        /// Its name.
        #[serde(rename = "Name")]
        name: String,
        /// Made for this container (`VOLUME`, `-v /path`).
        #[serde(rename = "Anonymous")]
        anonymous: bool,
    },
    /// A host path.
    Bind {
        /// The host path.
        #[serde(rename = "Source")]
        source: PathBuf,
    },
}

/// One mount of a container's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachedVolume {
    /// Where it is mounted in the container.
    #[serde(rename = "Destination")]
    pub destination: String,
    /// Mounted read-only.
    #[serde(rename = "ReadOnly")]
    pub readonly: bool,
    /// What is mounted.
    #[serde(flatten)]
    pub source: MountSource,
}

/// Everything container's record holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerVolumes {
    /// The volume and bind mounts, in mount order (tmpfs are not kept:
    /// docker's `--volumes-from` does not repeat them).
    #[serde(rename = "Mounts")]
    pub mounts: Vec<AttachedVolume>,
}

impl ContainerVolumes {
    /// The record of container `state_dir`, if it has one that reads.
    pub fn read(state_dir: &Path) -> Option<ContainerVolumes> {
        let text = std::fs::read(record_path(state_dir)).ok()?;
        match serde_json::from_slice(&text) {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::warn!(
                    "ignoring unreadable {}: {e}",
                    record_path(state_dir).display()
                );
                None
            }
        }
    }

    /// Writes the record (whole, by rename).
    pub fn write(&self, state_dir: &Path) -> io::Result<()> {
        let tmp = state_dir.join(format!("{RECORD}.tmp"));
        std::fs::write(&tmp, serde_json::to_vec(self).expect("a record serializes"))?;
        std::fs::rename(&tmp, record_path(state_dir))
    }

    /// The names of the volumes it mounts.
    pub fn volume_names(&self) -> impl Iterator<Item = &str> {
        self.mounts.iter().filter_map(|m| match &m.source {
            MountSource::Volume { name, .. } => Some(name.as_str()),
            MountSource::Bind { .. } => None,
        })
    }

    /// The names of the anonymous volumes it mounts.
    pub fn anonymous_names(&self) -> impl Iterator<Item = &str> {
        self.mounts.iter().filter_map(|m| match &m.source {
            MountSource::Volume {
                name,
                anonymous: true,
            } => Some(name.as_str()),
            _ => None,
        })
    }
}
