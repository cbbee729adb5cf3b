//! The docker-archive format: `manifest.json` (a list of `{Config,
//! RepoTags, Layers}` whose members are paths inside the tar) and the
//! legacy `repositories` file.
//!
//! Docker ≥ 25 writes these next to an OCI image layout, naming blobs
//! `blobs/sha256/<hex>`; older docker and skopeo name them `<hex>.json`
//! and `<v1-id>/layer.tar` (shared layers as symlinks). Loading follows the
//! paths whatever they are, as moby's `tarexport` does, so all of these
//! load; saving writes docker ≥ 25's layout.

use super::reader::{blob_path, Contents};
use super::{ArchiveError, Plan, SavedImage};
use crate::cache::Store;
use crate::error_chain::Chain;
use crate::image::digest::Digest;
use crate::image::layer::Compression;
use crate::image::oci::{media, Descriptor, Manifest};
use crate::image::reference::ImageRef;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Read;

/// One image in `manifest.json` (moby `image/tarexport.manifestItem`).
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ManifestItem {
    config: String,
    /// `null` for an image saved by ID, as docker writes it.
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    parent: Option<String>,
    /// Foreign (non-distributable) layers' original descriptors; kept when
    /// read only so that such archives parse.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    layer_sources: Option<BTreeMap<String, serde_json::Value>>,
}

/// `manifest.json` for the saved images, in save order.
pub(super) fn manifest_json(images: &[SavedImage]) -> Vec<u8> {
    let items: Vec<ManifestItem> = images
        .iter()
        .map(|s| ManifestItem {
            config: blob_path(&s.id),
            repo_tags: (!s.tags.is_empty())
                .then(|| s.tags.iter().map(ImageRef::familiar).collect()),
            layers: s.layers.iter().map(|l| blob_path(&l.digest)).collect(),
            parent: None,
            layer_sources: None,
        })
        .collect();
    to_json_line(&items)
}

/// The legacy `repositories` file: familiar name → tag → top layer, which
/// docker < 1.10 read instead of `manifest.json`. `None` when no saved
/// image has a tag and a layer (docker then omits the file).
pub(super) fn repositories(images: &[SavedImage]) -> Option<Vec<u8>> {
    let mut repos: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for s in images {
        let Some(top) = s.diff_ids.last() else {
            continue;
        };
        for t in &s.tags {
            if let Some(tag) = t.tag() {
                repos
                    .entry(t.familiar_name())
                    .or_default()
                    .insert(tag.to_string(), top.hex().to_string());
            }
        }
    }
    (!repos.is_empty()).then(|| to_json_line(&repos))
}

/// JSON followed by a newline, as Go's `json.Encoder` writes the files.
fn to_json_line<T: Serialize>(v: &T) -> Vec<u8> {
    // Serializing plain strings and maps cannot fail.
    let mut out = serde_json::to_vec(v).unwrap_or_default();
    out.push(b'\n');
    out
}

/// The images a docker-archive holds: each `manifest.json` entry's config
/// and layers located (links followed), an OCI manifest recorded for it
/// in the store (layer media types from the blobs' actual compression,
/// which docker sniffs the same way), and its `RepoTags` parsed.
pub(super) fn plan(store: &Store, contents: &Contents) -> Result<Vec<Plan>, ArchiveError> {
    let doc = contents.document("manifest.json").unwrap_or_default();
    let items: Option<Vec<ManifestItem>> =
        serde_json::from_slice(doc).map_err(|source| ArchiveError::Json {
            entry: "manifest.json".into(),
            source,
        })?;
    // moby: "a nil manifest usually indicates a bug, so don't just
    // silently fail"; `[]` is a valid empty archive.
    let items = items.ok_or_else(|| ArchiveError::Entry {
        entry: "manifest.json".into(),
        reason: "manifest cannot be null (but can be [])".into(),
    })?;
    let mut plans = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let mut names = Vec::new();
        for t in item.repo_tags.iter().flatten() {
            names.push(parse_repo_tag(t)?);
        }
        let label = match names.first() {
            Some(n) => n.familiar(),
            None => format!("manifest.json entry {i}"),
        };
        let config = contents.blob_at(&item.config, &format!("the Config of {label}"))?;
        let mut layers = Vec::with_capacity(item.layers.len());
        for (j, path) in item.layers.iter().enumerate() {
            let blob = contents.blob_at(path, &format!("layer {j} of {label}"))?;
            let compression = sniff(store, &blob.digest)?;
            layers.push(Descriptor::new(
                compression.oci_media_type(),
                blob.digest.clone(),
                blob.size,
            ));
        }
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(media::OCI_MANIFEST.to_string()),
            config: Descriptor::new(media::OCI_CONFIG, config.digest.clone(), config.size),
            layers,
            annotations: None,
            extra: Default::default(),
        };
        // Serializing our own struct cannot fail.
        let bytes = serde_json::to_vec(&manifest).unwrap_or_default();
        let info = store
            .ingest_manifest(&bytes, Some(media::OCI_MANIFEST))
            .map_err(|source| ArchiveError::Store {
                context: label.clone(),
                source,
            })?;
        plans.push(Plan::new(
            store,
            contents,
            info.digest,
            manifest,
            names,
            label,
        )?);
    }
    Ok(plans)
}

/// A `RepoTags` member: must name a tag (moby refuses bare names too).
fn parse_repo_tag(t: &str) -> Result<ImageRef, ArchiveError> {
    let bad = |reason: String| ArchiveError::Entry {
        entry: "manifest.json".into(),
        reason,
    };
    let r = ImageRef::parse_unnormalized_tag(t).map_err(|e| bad(Chain(&e).to_string()))?;
    if r.tag().is_none() || r.digest().is_some() {
        return Err(bad(format!("invalid tag {t:?} in RepoTags")));
    }
    Ok(r)
}

/// The compression of a blob in the store, from its first bytes.
fn sniff(store: &Store, digest: &Digest) -> Result<Compression, ArchiveError> {
    let store_err = |source| ArchiveError::Store {
        context: format!("layer blob {digest}"),
        source,
    };
    let mut head = [0u8; 8];
    let mut f = store.open_blob(digest).map_err(store_err)?;
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) => {
                return Err(store_err(crate::cache::StoreError::Io {
                    path: store.blob_path(digest),
                    op: "reading blob",
                    source: e,
                }))
            }
        }
    }
    Ok(Compression::detect(&head[..n]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn saved(tags: &[&str], layers: usize) -> SavedImage {
        let d = |s: String| Digest::sha256_of(s.as_bytes());
        SavedImage {
            id: d("config".into()),
            tags: tags.iter().map(|t| ImageRef::parse(t).unwrap()).collect(),
            layers: (0..layers)
                .map(|i| Descriptor::new(media::OCI_LAYER, d(format!("l{i}")), 1))
                .collect(),
            diff_ids: (0..layers).map(|i| d(format!("l{i}"))).collect(),
            manifest: Descriptor::new(media::OCI_MANIFEST, d("m".into()), 1),
        }
    }

    #[test]
    fn manifest_json_uses_familiar_tags_and_blob_paths() {
        let s = [
            saved(&["busybox:1", "localhost:5000/x/y:2"], 2),
            saved(&[], 1),
        ];
        let v: serde_json::Value = serde_json::from_slice(&manifest_json(&s)).unwrap();
        assert_eq!(
            v[0]["RepoTags"],
            serde_json::json!(["busybox:1", "localhost:5000/x/y:2"])
        );
        assert_eq!(v[0]["Config"], blob_path(&s[0].id));
        assert_eq!(v[0]["Layers"][1], blob_path(&s[0].layers[1].digest));
        assert!(v[1]["RepoTags"].is_null());
        assert!(v[0].get("Parent").is_none());
    }

    #[test]
    fn repositories_map_names_to_the_top_layer() {
        let s = [
            saved(&["busybox:1", "busybox:2"], 2),
            saved(&["empty:1"], 0),
        ];
        let v: serde_json::Value = serde_json::from_slice(&repositories(&s).unwrap()).unwrap();
        let top = s[0].diff_ids[1].hex();
        assert_eq!(v, serde_json::json!({"busybox": {"1": top, "2": top}}));
        assert!(repositories(&[saved(&[], 1)]).is_none());
    }

    #[test]
    fn repo_tags_need_a_tag() {
        assert!(parse_repo_tag("busybox:1").is_ok());
        let e = parse_repo_tag("busybox").unwrap_err().to_string();
        assert!(e.contains("invalid tag \"busybox\""), "{e}");
        let e = parse_repo_tag("Bad:1").unwrap_err().to_string();
        assert!(
            e.contains("manifest.json") && e.contains("lowercase"),
            "{e}"
        );
    }
}
