//! The OCI image layout (image-spec `image-layout.md`): `oci-layout`,
//! `index.json` and content-addressed `blobs/sha256/<hex>`.
//!
//! Names travel as annotations on `index.json` entries, written the way
//! docker ≥ 25 and containerd do: `io.containerd.image.name` holds the full
//! reference, `org.opencontainers.image.ref.name` the tag (what `umoci`
//! and `skopeo oci:DIR:TAG` look up). An entry may point at an image index
//! (a multi-platform image, possibly nested); loading then picks the
//! manifest for linux on this machine's architecture.

use super::reader::{blob_path, Contents};
use super::{ArchiveError, Plan, SavedImage};
use crate::cache::Store;
use crate::error_chain::Chain;
use crate::image::digest::Digest;
use crate::image::oci::{media, Descriptor, Index, Manifest, Platform};
use crate::image::reference::ImageRef;

/// The `oci-layout` file's content (image-spec v1.0/1.1 layouts).
pub(super) const LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;
/// containerd's annotation for an image's full name.
pub(super) const ANNOTATION_IMAGE_NAME: &str = "io.containerd.image.name";
/// OCI's annotation for a reference name (for kiln, docker: the tag).
pub(super) const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
/// How deep indexes may nest before the archive is considered hostile.
const MAX_NESTING: usize = 8;

/// `index.json`: one entry per name of each saved image (one without
/// annotations for an image saved by ID), pointing at its manifest, then
/// one per name of each multi-platform image, pointing at its index.
pub(super) fn index_json(
    images: &[SavedImage],
    indexes: &[(Descriptor, Vec<ImageRef>)],
) -> Vec<u8> {
    let mut manifests = Vec::new();
    let named = images
        .iter()
        .map(|s| (&s.manifest, &s.tags))
        .chain(indexes.iter().map(|(d, tags)| (d, tags)));
    for (desc, tags) in named {
        if tags.is_empty() {
            manifests.push(desc.clone());
        }
        for t in tags {
            let mut d = desc.clone();
            // The descriptor's own annotations (`kiln build -o
            // annotation-manifest-descriptor.K=V`), then the name's.
            let mut ann = d.annotations.take().unwrap_or_default();
            ann.insert(ANNOTATION_IMAGE_NAME.to_string(), t.to_string());
            if let Some(tag) = t.tag() {
                ann.insert(ANNOTATION_REF_NAME.to_string(), tag.to_string());
            }
            d.annotations = Some(ann);
            manifests.push(d);
        }
    }
    let index = Index {
        schema_version: 2,
        media_type: Some(media::OCI_INDEX.to_string()),
        manifests,
        annotations: None,
        extra: Default::default(),
    };
    // Serializing our own struct cannot fail.
    serde_json::to_vec(&index).unwrap_or_default()
}

/// The images an OCI layout holds: each `index.json` entry resolved to a
/// manifest (through nested indexes), validated and recorded in the store,
/// with the names its annotations give. Entries for the same manifest
/// are merged.
pub(super) fn plan(
    store: &Store,
    contents: &Contents,
) -> Result<(Vec<Plan>, Vec<IndexPlan>), ArchiveError> {
    let index = top_index(
        contents,
        contents.document("index.json").unwrap_or_default(),
    )?;
    let mut plans: Vec<Plan> = Vec::new();
    let mut indexes = Vec::new();
    for (i, desc) in index.manifests.iter().enumerate() {
        let names = names_of(desc);
        let label = match names.first() {
            Some(n) => n.familiar(),
            None => format!("index.json entry {i}"),
        };
        if !names.is_empty() {
            if let Some(index) = whole_index(store, contents, desc, &label)? {
                for (member, _) in &index.members {
                    add_plan(store, contents, &mut plans, member, Vec::new(), &label)?;
                }
                indexes.push(IndexPlan { names, ..index });
                continue;
            }
        }
        add_plan(store, contents, &mut plans, desc, names, &label)?;
    }
    Ok((plans, indexes))
}

/// A multi-platform image an archive names, to be recorded as one
/// (`Store::commit_index`) once its platforms' images are.
pub(super) struct IndexPlan {
    /// The index as in the archive.
    pub bytes: Vec<u8>,
    /// Each platform's manifest and platform, in the index's order.
    pub members: Vec<(Descriptor, Platform)>,
    pub names: Vec<ImageRef>,
}

/// `desc` as a multi-platform image kiln can record whole: an index of
/// image manifests each with a platform (other entries, attestations,
/// kept in the bytes only), all of them in the archive. `None` for
/// anything else (nested indexes, platforms left out), which loads the
/// host's platform only.
fn whole_index(
    store: &Store,
    contents: &Contents,
    desc: &Descriptor,
    label: &str,
) -> Result<Option<IndexPlan>, ArchiveError> {
    if !media::is_index(&desc.media_type) {
        return Ok(None);
    }
    let bytes = read_blob(store, contents, desc, label)?;
    let Ok(index) = serde_json::from_slice::<Index>(&bytes) else {
        return Ok(None);
    };
    let members: Vec<(Descriptor, Platform)> = index
        .manifests
        .iter()
        .filter(|d| media::is_manifest(&d.media_type))
        .filter_map(|d| {
            let p = d.platform.clone()?;
            (p.os != "unknown").then(|| (d.clone(), p))
        })
        .collect();
    let complete = !members.is_empty()
        && index
            .manifests
            .iter()
            .all(|d| !media::is_index(&d.media_type))
        && members
            .iter()
            .all(|(d, _)| contents.has_blob(&d.digest) || store.has_blob(&d.digest));
    Ok(complete.then_some(IndexPlan {
        bytes,
        members,
        names: Vec::new(),
    }))
}

/// Plans the image `desc` leads to (through nested indexes), merging the
/// names of one already planned.
fn add_plan(
    store: &Store,
    contents: &Contents,
    plans: &mut Vec<Plan>,
    desc: &Descriptor,
    names: Vec<ImageRef>,
    label: &str,
) -> Result<(), ArchiveError> {
    let (digest, manifest) = read_manifest(store, contents, desc, label)?;
    if let Some(p) = plans.iter_mut().find(|p| p.manifest_digest == digest) {
        for n in names {
            if !p.names.contains(&n) {
                p.names.push(n);
            }
        }
        return Ok(());
    }
    plans.push(Plan::new(
        store,
        contents,
        digest,
        manifest,
        names,
        label.to_string(),
    )?);
    Ok(())
}

/// `index.json` (`doc`) parsed, after the `oci-layout` file's version
/// is checked.
fn top_index(contents: &Contents, doc: &[u8]) -> Result<Index, ArchiveError> {
    if let Some(layout) = contents.document("oci-layout") {
        check_layout(layout)?;
    }
    serde_json::from_slice(doc).map_err(|source| ArchiveError::Json {
        entry: "index.json".into(),
        source,
    })
}

/// The image manifest `desc` leads to (through indexes, [`select`]):
/// read, recorded in the store and parsed; its digest and content.
fn read_manifest(
    store: &Store,
    contents: &Contents,
    desc: &Descriptor,
    label: &str,
) -> Result<(Digest, Manifest), ArchiveError> {
    let chosen = select(store, contents, desc, label, 0)?;
    let bytes = read_blob(store, contents, &chosen, label)?;
    let info = store
        .ingest_manifest(&bytes, Some(&chosen.media_type))
        .map_err(|source| ArchiveError::Store {
            context: label.to_string(),
            source,
        })?;
    let manifest = serde_json::from_slice(&bytes).map_err(|e| ArchiveError::Entry {
        entry: blob_path(&chosen.digest),
        reason: format!("bad manifest: {e}", e = Chain(&e)),
    })?;
    Ok((info.digest, manifest))
}

/// The one `index.json` entry `pick` names, planned with no names (an
/// OCI layout directory as a named build context, [`super::layout_dir`]).
pub(super) fn plan_picked(
    store: &Store,
    contents: &Contents,
    pick: &super::layout_dir::LayoutPick,
) -> Result<Plan, ArchiveError> {
    use super::layout_dir::LayoutPick;
    let doc = contents
        .document("index.json")
        .ok_or(ArchiveError::NotAnArchive)?;
    let index = top_index(contents, doc)?;
    let matches = |d: &&Descriptor| match pick {
        LayoutPick::Digest(digest) => &d.digest == digest,
        LayoutPick::Tag(tag) => d.annotations.as_ref().is_some_and(|ann| {
            ann.get(ANNOTATION_REF_NAME) == Some(tag)
                || ann
                    .get(ANNOTATION_IMAGE_NAME)
                    .and_then(|n| ImageRef::parse(n).ok())
                    .is_some_and(|r| r.tag() == Some(tag.as_str()))
        }),
    };
    let label = pick.to_string();
    let found: Vec<&Descriptor> = index.manifests.iter().filter(matches).collect();
    let desc = match found.as_slice() {
        [d] => *d,
        [] => {
            return Err(ArchiveError::Invalid {
                image: label,
                reason: "index.json has no such entry".into(),
            })
        }
        _ => {
            return Err(ArchiveError::Invalid {
                image: label,
                reason: "index.json has several such entries; give @DIGEST".into(),
            })
        }
    };
    let (digest, manifest) = read_manifest(store, contents, desc, &label)?;
    Plan::new(store, contents, digest, manifest, Vec::new(), label)
}

fn check_layout(bytes: &[u8]) -> Result<(), ArchiveError> {
    let v: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|source| ArchiveError::Json {
            entry: "oci-layout".into(),
            source,
        })?;
    match v.get("imageLayoutVersion").and_then(|v| v.as_str()) {
        Some(ver) if ver.starts_with("1.") => Ok(()),
        other => Err(ArchiveError::Entry {
            entry: "oci-layout".into(),
            reason: format!("unsupported imageLayoutVersion {other:?} (expected 1.x)"),
        }),
    }
}

/// The names an `index.json` entry gives its image. containerd's full
/// name wins; `ref.name` counts only when it is a full reference (skopeo
/// writes `busybox:latest` there), since a bare tag names no repository.
fn names_of(desc: &Descriptor) -> Vec<ImageRef> {
    let Some(ann) = &desc.annotations else {
        return Vec::new();
    };
    let candidate = ann.get(ANNOTATION_IMAGE_NAME).or_else(|| {
        ann.get(ANNOTATION_REF_NAME)
            .filter(|r| r.contains(':') || r.contains('/'))
    });
    candidate
        .and_then(|n| ImageRef::parse(n).ok())
        .filter(|r| r.tag().is_some() && r.digest().is_none())
        .into_iter()
        .collect()
}

/// Follows `desc` down to an image manifest: an index picks the entry for
/// linux on this architecture (an entry without a platform if none says
/// so); attestation manifests (`unknown/unknown`) never match.
fn select(
    store: &Store,
    contents: &Contents,
    desc: &Descriptor,
    label: &str,
    depth: usize,
) -> Result<Descriptor, ArchiveError> {
    if media::is_manifest(&desc.media_type) {
        return Ok(desc.clone());
    }
    if !media::is_index(&desc.media_type) {
        return Err(ArchiveError::Store {
            context: label.to_string(),
            source: crate::cache::StoreError::UnsupportedMediaType {
                what: "index.json entry",
                digest: desc.digest.clone(),
                media_type: desc.media_type.clone(),
            },
        });
    }
    if depth >= MAX_NESTING {
        return Err(ArchiveError::Entry {
            entry: blob_path(&desc.digest),
            reason: format!("image indexes nested more than {MAX_NESTING} deep"),
        });
    }
    let bytes = read_blob(store, contents, desc, label)?;
    store
        .ingest_manifest(&bytes, Some(&desc.media_type))
        .map_err(|source| ArchiveError::Store {
            context: label.to_string(),
            source,
        })?;
    let index: Index = serde_json::from_slice(&bytes).map_err(|e| ArchiveError::Entry {
        entry: blob_path(&desc.digest),
        reason: format!("bad index: {e}", e = Chain(&e)),
    })?;
    let host = Platform::host();
    let matching = index.manifests.iter().find(|d| match &d.platform {
        Some(p) => p.os == host.os && p.architecture == host.architecture,
        None => false,
    });
    let unplatformed = index.manifests.iter().find(|d| d.platform.is_none());
    match matching.or(unplatformed) {
        Some(d) => select(store, contents, d, label, depth + 1),
        None => Err(ArchiveError::Platform {
            image: label.to_string(),
            index: desc.digest.clone(),
            wanted: host.to_string(),
            available: index
                .manifests
                .iter()
                .filter_map(|d| d.platform.as_ref().map(Platform::to_string))
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// A small blob an entry refers to (manifest, index): from the archive,
/// or from the store if the archive left it out and the store has it.
fn read_blob(
    store: &Store,
    contents: &Contents,
    desc: &Descriptor,
    label: &str,
) -> Result<Vec<u8>, ArchiveError> {
    require_blob(store, contents, &desc.digest, label)?;
    let bytes = store
        .read_blob(&desc.digest)
        .map_err(|source| ArchiveError::Store {
            context: label.to_string(),
            source,
        })?;
    if bytes.len() as u64 != desc.size {
        return Err(ArchiveError::Entry {
            entry: blob_path(&desc.digest),
            reason: format!("size {} but {label} says {} bytes", bytes.len(), desc.size),
        });
    }
    Ok(bytes)
}

/// Fails with the blob's archive path unless the archive (or the store)
/// has it.
pub(super) fn require_blob(
    store: &Store,
    contents: &Contents,
    digest: &Digest,
    referenced_by: &str,
) -> Result<(), ArchiveError> {
    if contents.has_blob(digest) || store.has_blob(digest) {
        return Ok(());
    }
    Err(ArchiveError::Missing {
        entry: blob_path(digest),
        referenced_by: referenced_by.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desc_with(ann: &[(&str, &str)]) -> Descriptor {
        let mut d = Descriptor::new(media::OCI_MANIFEST, Digest::sha256_of(b"m"), 1);
        d.annotations = Some(
            ann.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        d
    }

    fn check_names(ann: &[(&str, &str)], expected: &[&str]) {
        let got: Vec<String> = names_of(&desc_with(ann))
            .iter()
            .map(|r| r.to_string())
            .collect();
        assert_eq!(got, expected, "{ann:?}");
    }

    #[test]
    fn names_come_from_annotations() {
        check_names(
            &[
                (ANNOTATION_IMAGE_NAME, "docker.io/library/busybox:1"),
                (ANNOTATION_REF_NAME, "1"),
            ],
            &["docker.io/library/busybox:1"],
        );
        check_names(
            &[(ANNOTATION_REF_NAME, "busybox:latest")],
            &["docker.io/library/busybox:latest"],
        );
        check_names(
            &[(ANNOTATION_REF_NAME, "example.com/app")],
            &["example.com/app:latest"],
        );
        // A bare tag names no repository.
        check_names(&[(ANNOTATION_REF_NAME, "latest")], &[]);
        check_names(&[(ANNOTATION_REF_NAME, "Not A Ref:x")], &[]);
        check_names(&[], &[]);
    }

    #[test]
    fn index_json_has_one_entry_per_tag() {
        let d = |s: &str| Digest::sha256_of(s.as_bytes());
        let images = [
            SavedImage {
                id: d("c1"),
                tags: vec![
                    ImageRef::parse("busybox:1").unwrap(),
                    ImageRef::parse("localhost:5000/bb:2").unwrap(),
                ],
                layers: vec![],
                diff_ids: vec![],
                manifest: Descriptor::new(media::OCI_MANIFEST, d("m1"), 10),
            },
            SavedImage {
                id: d("c2"),
                tags: vec![],
                layers: vec![],
                diff_ids: vec![],
                manifest: Descriptor::new(media::OCI_MANIFEST, d("m2"), 20),
            },
        ];
        let v: serde_json::Value = serde_json::from_slice(&index_json(&images, &[])).unwrap();
        assert_eq!(v["mediaType"], media::OCI_INDEX);
        let m = v["manifests"].as_array().unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(
            m[0]["annotations"][ANNOTATION_IMAGE_NAME],
            "docker.io/library/busybox:1"
        );
        assert_eq!(m[0]["annotations"][ANNOTATION_REF_NAME], "1");
        assert_eq!(
            m[1]["annotations"][ANNOTATION_IMAGE_NAME],
            "localhost:5000/bb:2"
        );
        assert_eq!(m[1]["digest"], m[0]["digest"]);
        assert!(m[2].get("annotations").is_none());
        assert_eq!(m[2]["size"], 20);
    }

    #[test]
    fn layout_version_must_be_1x() {
        assert!(check_layout(LAYOUT).is_ok());
        let e = check_layout(br#"{"imageLayoutVersion":"2.0.0"}"#).unwrap_err();
        assert!(
            e.to_string().contains("unsupported imageLayoutVersion"),
            "{e}"
        );
        assert!(check_layout(b"nope").is_err());
    }
}
