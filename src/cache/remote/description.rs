//! The cache description: what a remote cache holds, as one JSON blob.
//!
//! It maps cache keys to results: a result is the chain of layer diff IDs
//! (bottom to top) a step's root filesystem is made of, with the time the
//! step made it (an imported step keeps it, so the image history and the
//! image ID do not change). Each layer's compressed blob is listed once,
//! by diff ID. Keys are portable (digests of op definitions and input
//! contents, no host paths, mtimes or compression), so a description made
//! on one machine is valid on any other.
//!
//! A description read from outside is checked whole before any record is
//! used: known version, parseable digests, every layer of every record
//! described (or, inline, in the image), bounded size.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::image::oci::Descriptor;
use crate::image::Digest;

/// The media type of a description blob (the cache manifest's config).
pub const MEDIA_TYPE: &str = crate::image::oci::media::KILN_CACHE_V1;
/// The description's format version.
pub const VERSION: u32 = 1;
/// The image config key an inline cache travels under (BuildKit uses
/// `moby.buildkit.cache.v0`, moby/buildkit `exporter/containerimage/
/// writer.go`; kiln's records are its own, so the key is too).
pub const INLINE_CONFIG_KEY: &str = "kiln.cache.v1";
/// Descriptions larger than this are refused unread: 2,000 records of a
/// dozen layers are well under 4 MiB.
pub const MAX_SIZE: u64 = 16 * 1024 * 1024;
/// Records kept when a description is merged with what a ref already
/// holds; the oldest go first.
pub const MAX_RECORDS: usize = 2000;

/// A whole description.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Description {
    pub version: u32,
    /// Sorted by key, so the same records give the same bytes.
    pub records: Vec<Record>,
    /// Compressed blob of each layer, by diff ID. Empty inline: there the
    /// image's own layers are the blobs.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub layers: BTreeMap<Digest, Descriptor>,
    /// `RUN --mount=type=cache` directories, by cache id (`cache-mounts=true`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<MountRecord>,
}

/// One step's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The step's cache key.
    pub key: Digest,
    /// When the step made the result (RFC 3339).
    pub created: String,
    /// Diff IDs of the result's layers, bottom to top.
    pub layers: Vec<Digest>,
}

/// A cache mount's content, one layer per id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountRecord {
    /// The mount's cache id (as `RUN --mount=type=cache,id=` names it).
    pub id: String,
    /// When it was exported (RFC 3339).
    pub created: String,
    /// The diff ID of the layer holding the directory's content.
    pub layer: Digest,
}

/// Why a description cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DescriptionError {
    #[error("cache description is not valid JSON")]
    Json(#[source] serde_json::Error),
    #[error("cache description version {0} (kiln reads version {VERSION})")]
    Version(u32),
    #[error("record {key} names layer {layer}, which the cache does not describe")]
    UnknownLayer { key: Digest, layer: Digest },
    #[error("cache mount {id:?} names layer {layer}, which the cache does not describe")]
    UnknownMountLayer { id: String, layer: Digest },
    #[error("layer {0} is described with a media type that is not a layer's")]
    NotALayer(Digest),
    #[error("record {key} was made at {created:?}, which is not an RFC 3339 time")]
    BadTime { key: Digest, created: String },
}

impl Description {
    /// An empty description of the current version.
    pub fn new() -> Description {
        Description {
            version: VERSION,
            ..Description::default()
        }
    }

    /// The canonical bytes: records sorted by key, mounts by id.
    pub fn encode(&self) -> Vec<u8> {
        let mut d = self.clone();
        d.records.sort_by(|a, b| a.key.cmp(&b.key));
        d.records.dedup_by(|a, b| a.key == b.key);
        d.mounts.sort_by(|a, b| a.id.cmp(&b.id));
        serde_json::to_vec(&d).expect("a description always serializes")
    }

    /// Reads and checks a description; `inline_layers` are the diff IDs of
    /// the image an inline description came in (its records' layers must
    /// be among them), `None` for a standalone one.
    pub fn decode(
        bytes: &[u8],
        inline_layers: Option<&[Digest]>,
    ) -> Result<Description, DescriptionError> {
        let d: Description = serde_json::from_slice(bytes).map_err(DescriptionError::Json)?;
        d.check(inline_layers)?;
        Ok(d)
    }

    /// Reads a description held as JSON inside an image config.
    pub fn from_value(
        v: &serde_json::Value,
        inline_layers: &[Digest],
    ) -> Result<Description, DescriptionError> {
        let d: Description = serde_json::from_value(v.clone()).map_err(DescriptionError::Json)?;
        d.check(Some(inline_layers))?;
        Ok(d)
    }

    fn check(&self, inline_layers: Option<&[Digest]>) -> Result<(), DescriptionError> {
        if self.version != VERSION {
            return Err(DescriptionError::Version(self.version));
        }
        for (diff, desc) in &self.layers {
            if crate::image::layer::Compression::from_media_type(&desc.media_type).is_none() {
                return Err(DescriptionError::NotALayer(diff.clone()));
            }
        }
        let known = |l: &Digest| match inline_layers {
            Some(image) => image.contains(l),
            None => self.layers.contains_key(l),
        };
        for r in &self.records {
            // The time goes into image histories: it must be one.
            if crate::image::timestamp::parse_rfc3339_nanos(&r.created).is_none() {
                return Err(DescriptionError::BadTime {
                    key: r.key.clone(),
                    created: r.created.clone(),
                });
            }
            if let Some(l) = r.layers.iter().find(|l| !known(l)) {
                return Err(DescriptionError::UnknownLayer {
                    key: r.key.clone(),
                    layer: l.clone(),
                });
            }
        }
        for m in &self.mounts {
            if !self.layers.contains_key(&m.layer) {
                return Err(DescriptionError::UnknownMountLayer {
                    id: m.id.clone(),
                    layer: m.layer.clone(),
                });
            }
        }
        Ok(())
    }

    /// Adds `older`'s records and mounts that this description lacks
    /// (this one's win), then keeps the newest [`MAX_RECORDS`] records and
    /// only the layers still named. `keep_layer` says whether an older
    /// record's layer blob is still where the cache lives (a registry may
    /// have collected it); records that lost one are dropped.
    pub fn merge_older(&mut self, older: Description, keep_layer: impl Fn(&Descriptor) -> bool) {
        let mine: BTreeSet<Digest> = self.records.iter().map(|r| r.key.clone()).collect();
        let usable = |layers: &[Digest], this: &Description| {
            layers.iter().all(|l| {
                this.layers.contains_key(l) || older.layers.get(l).is_some_and(&keep_layer)
            })
        };
        let mut added = Vec::new();
        for r in &older.records {
            if !mine.contains(&r.key) && usable(&r.layers, self) {
                added.push(r.clone());
            }
        }
        let ids: BTreeSet<String> = self.mounts.iter().map(|m| m.id.clone()).collect();
        let mut mounts = Vec::new();
        for m in &older.mounts {
            if !ids.contains(&m.id) && usable(std::slice::from_ref(&m.layer), self) {
                mounts.push(m.clone());
            }
        }
        self.records.extend(added);
        self.mounts.extend(mounts);
        // Newest first (RFC 3339 in UTC sorts as text), then cut.
        self.records
            .sort_by(|a, b| b.created.cmp(&a.created).then(a.key.cmp(&b.key)));
        self.records.truncate(MAX_RECORDS);
        for (diff, desc) in older.layers {
            self.layers.entry(diff).or_insert(desc);
        }
        let named: BTreeSet<&Digest> = self
            .records
            .iter()
            .flat_map(|r| &r.layers)
            .chain(self.mounts.iter().map(|m| &m.layer))
            .collect();
        let named: BTreeSet<Digest> = named.into_iter().cloned().collect();
        self.layers.retain(|d, _| named.contains(d));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Digest {
        Digest::sha256_of(s.as_bytes())
    }

    fn layer(s: &str) -> Descriptor {
        Descriptor::new(
            crate::image::oci::media::OCI_LAYER_GZIP,
            d(&format!("blob-{s}")),
            10,
        )
    }

    fn record(key: &str, created: &str, layers: &[&str]) -> Record {
        Record {
            key: d(key),
            created: created.into(),
            layers: layers.iter().map(|l| d(l)).collect(),
        }
    }

    fn description(records: Vec<Record>, layers: &[&str]) -> Description {
        Description {
            version: VERSION,
            records,
            layers: layers.iter().map(|l| (d(l), layer(l))).collect(),
            mounts: Vec::new(),
        }
    }

    #[test]
    fn encode_then_decode_is_the_same_description() {
        let desc = description(
            vec![
                record("b", "2026-01-01T00:00:00Z", &["l1", "l2"]),
                record("a", "2026-01-02T00:00:00Z", &["l1"]),
            ],
            &["l1", "l2"],
        );
        let bytes = desc.encode();
        let back = Description::decode(&bytes, None).unwrap();
        assert!(
            back.records[0].key < back.records[1].key,
            "records are sorted by key"
        );
        assert_eq!(back.encode(), bytes, "the encoding is canonical");
        assert_eq!(back.layers, desc.layers);
    }

    #[test]
    fn truncated_wrong_version_and_dangling_layers_are_refused() {
        let t = "2026-01-01T00:00:00Z";
        let bytes = description(vec![record("a", t, &["l1"])], &["l1"]).encode();
        let e = Description::decode(&bytes[..bytes.len() - 3], None).unwrap_err();
        assert!(matches!(e, DescriptionError::Json(_)), "{e}");
        let mut v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        v["version"] = 2.into();
        let e = Description::decode(&serde_json::to_vec(&v).unwrap(), None).unwrap_err();
        assert!(e.to_string().contains("version 2"), "{e}");
        let dangling = description(vec![record("a", t, &["l1", "gone"])], &["l1"]).encode();
        let e = Description::decode(&dangling, None).unwrap_err();
        assert!(matches!(e, DescriptionError::UnknownLayer { .. }), "{e}");
        // Inline, the image's diff IDs are the known layers.
        let inline = description(vec![record("a", t, &["l1"])], &[]).encode();
        assert!(Description::decode(&inline, Some(&[d("l1")])).is_ok());
        assert!(Description::decode(&inline, Some(&[d("l2")])).is_err());
        let untimed = description(vec![record("a", "yesterday", &["l1"])], &["l1"]).encode();
        let e = Description::decode(&untimed, None).unwrap_err();
        assert!(e.to_string().contains("not an RFC 3339 time"), "{e}");
    }

    #[test]
    fn merge_keeps_both_builds_records_and_drops_the_oldest_past_the_bound() {
        let mut mine = description(vec![record("a", "2026-01-03T00:00:00Z", &["l1"])], &["l1"]);
        let theirs = description(
            vec![
                record("a", "2026-01-01T00:00:00Z", &["old"]),
                record("b", "2026-01-02T00:00:00Z", &["l2"]),
                record("c", "2026-01-02T00:00:00Z", &["collected"]),
            ],
            &["old", "l2", "collected"],
        );
        let collected = layer("collected").digest;
        mine.merge_older(theirs, |b| b.digest != collected);
        let keys: Vec<_> = mine.records.iter().map(|r| r.key.clone()).collect();
        assert_eq!(keys, [d("a"), d("b")], "ours wins for a; c lost its blob");
        assert_eq!(mine.records[0].layers, [d("l1")]);
        assert_eq!(
            mine.layers.keys().cloned().collect::<Vec<_>>().len(),
            2,
            "only named layers stay"
        );

        let many: Vec<Record> = (0..MAX_RECORDS + 5)
            .map(|i| {
                record(
                    &format!("k{i}"),
                    &format!("2026-01-01T00:00:00.{i:06}Z"),
                    &[],
                )
            })
            .collect();
        let mut mine = description(vec![record("new", "2027-01-01T00:00:00Z", &[])], &[]);
        mine.merge_older(description(many, &[]), |_| true);
        assert_eq!(mine.records.len(), MAX_RECORDS);
        assert_eq!(mine.records[0].key, d("new"), "the newest is kept");
        let kept = |k: &str| mine.records.iter().any(|r| r.key == d(k));
        assert!(!kept("k0") && !kept("k5"), "the six oldest go");
        assert!(kept("k6") && kept(&format!("k{}", MAX_RECORDS + 4)));
    }
}
