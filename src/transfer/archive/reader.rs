//! Reading an archive tar: small metadata documents are kept in memory,
//! every other file is streamed into the store as a blob, and links are
//! remembered so that paths can be resolved inside the archive later.
//!
//! The whole tar is read before any image is interpreted because neither
//! format puts its table of contents first (`docker save` writes
//! `manifest.json` last), and stdin cannot be rewound. Nothing is ever
//! written to disk by entry name, so a hostile name cannot land outside
//! the store; such names are still refused, with the entry named.

use super::ArchiveError;
use crate::cache::{BlobInfo, Store, StoreError};
use crate::error_chain::Chain;
use crate::image::digest::Digest;
use std::collections::HashMap;
use std::io::Read;

/// Top-level documents that describe the archive rather than hold content.
const DOCUMENTS: [&str; 4] = ["manifest.json", "index.json", "oci-layout", "repositories"];
/// A metadata document larger than this is not one kiln or docker wrote.
const DOCUMENT_MAX: u64 = 64 << 20;
/// Symlink hops allowed while resolving one path (Linux's MAXSYMLINKS).
const MAX_HOPS: usize = 40;

/// What a path in the archive holds.
#[derive(Debug)]
enum Node {
    Blob(BlobInfo),
    /// A symlink: its target as written, relative to the link's directory
    /// (or to the archive root when absolute, as docker resolves in scope).
    Symlink(String),
    /// A hard link: its target, relative to the archive root.
    Hardlink(String),
}

/// Everything an archive holds, after reading it to the end.
#[derive(Debug, Default)]
pub(super) struct Contents {
    nodes: HashMap<String, Node>,
    documents: HashMap<String, Vec<u8>>,
}

impl Contents {
    /// Reads the (uncompressed) archive tar, ingesting its blobs into
    /// `store`. Blob entries named by digest (`blobs/sha256/<hex>`, a
    /// legacy `<hex>.json` config) are verified against their name.
    pub fn read(store: &Store, input: impl Read) -> Result<Contents, ArchiveError> {
        let mut archive = tar::Archive::new(input);
        let mut contents = Contents::default();
        let entries = archive.entries().map_err(ArchiveError::Read)?;
        for entry in entries {
            let mut entry = entry.map_err(ArchiveError::Read)?;
            let raw = String::from_utf8(entry.path_bytes().into_owned()).map_err(|e| {
                ArchiveError::Entry {
                    entry: String::from_utf8_lossy(e.as_bytes()).into_owned(),
                    reason: "name is not UTF-8".into(),
                }
            })?;
            let kind = entry.header().entry_type();
            if kind.is_pax_global_extensions() {
                continue;
            }
            let path = entry_path(&raw)?;
            let bad = |reason: String| ArchiveError::Entry {
                entry: raw.clone(),
                reason,
            };
            if kind.is_dir() {
                continue;
            }
            if kind.is_symlink() || kind.is_hard_link() {
                let target = entry
                    .link_name_bytes()
                    .map(|t| String::from_utf8_lossy(&t).into_owned())
                    .ok_or_else(|| bad("link without a target".into()))?;
                let node = if kind.is_symlink() {
                    let dir = parent_of(&path);
                    check_in_archive(dir, &target).map_err(|()| {
                        bad(format!("symlink target {target:?} escapes the archive"))
                    })?;
                    Node::Symlink(target)
                } else {
                    check_in_archive("", &target).map_err(|()| {
                        bad(format!("hard link target {target:?} escapes the archive"))
                    })?;
                    Node::Hardlink(target)
                };
                contents.nodes.insert(path, node);
                continue;
            }
            if !(kind.is_file() || kind == tar::EntryType::Continuous) {
                return Err(bad(format!(
                    "unsupported entry type {kind:?} in an image archive"
                )));
            }
            let size = entry.size();
            if DOCUMENTS.contains(&path.as_str()) {
                if size > DOCUMENT_MAX {
                    return Err(bad(format!(
                        "{size} bytes is too large for an archive document"
                    )));
                }
                let mut buf = Vec::with_capacity(size as usize);
                entry.read_to_end(&mut buf).map_err(ArchiveError::Read)?;
                contents.documents.insert(path, buf);
                continue;
            }
            if is_legacy_metadata(&path) {
                continue;
            }
            let expected = digest_named_by(&path).map_err(bad)?;
            let info = store
                .ingest_blob(
                    &mut entry,
                    expected.as_ref(),
                    Some(size),
                    "reading the archive",
                )
                .map_err(|source| match source {
                    StoreError::DigestMismatch {
                        expected, actual, ..
                    } => bad(format!(
                        "digest mismatch: named {expected} but the content hashes to {actual}"
                    )),
                    // The tar's entry reader stops short only at the end of
                    // the input.
                    StoreError::SizeMismatch {
                        expected, actual, ..
                    } => bad(format!(
                        "the archive ends inside this entry ({actual} of {expected} bytes)"
                    )),
                    StoreError::Io {
                        op: "receiving blob",
                        source,
                        ..
                    } => bad(Chain(&source).to_string()),
                    source => ArchiveError::Store {
                        context: format!("archive entry {raw}"),
                        source,
                    },
                })?;
            contents.nodes.insert(path, Node::Blob(info));
        }
        Ok(contents)
    }

    /// A metadata document (`manifest.json`, `index.json`, …), if present.
    pub fn document(&self, name: &str) -> Option<&[u8]> {
        self.documents.get(name).map(Vec::as_slice)
    }

    /// The blob at `path` (links followed), or an error naming the path and
    /// what referred to it.
    pub fn blob_at(&self, path: &str, referenced_by: &str) -> Result<&BlobInfo, ArchiveError> {
        let missing = || ArchiveError::Missing {
            entry: path.to_string(),
            referenced_by: referenced_by.to_string(),
        };
        let resolved = self.resolve(path).map_err(|reason| ArchiveError::Entry {
            entry: path.to_string(),
            reason,
        })?;
        match self.nodes.get(&resolved) {
            Some(Node::Blob(b)) => Ok(b),
            _ => Err(missing()),
        }
    }

    /// Whether the archive has a file for `digest` in the OCI layout.
    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_at(&blob_path(digest), "").is_ok()
    }

    /// Follows symlinks component by component, as docker's
    /// `FollowSymlinkInScope` does on the unpacked archive.
    fn resolve(&self, path: &str) -> Result<String, String> {
        let mut todo: Vec<String> = path.rsplit('/').map(str::to_string).collect();
        let mut done: Vec<String> = Vec::new();
        let mut hops = 0;
        while let Some(c) = todo.pop() {
            match c.as_str() {
                "" | "." => continue,
                ".." => {
                    if done.pop().is_none() {
                        return Err("path escapes the archive".into());
                    }
                    continue;
                }
                _ => done.push(c),
            }
            let here = done.join("/");
            let (target, from_root) = match self.nodes.get(&here) {
                Some(Node::Symlink(t)) => (t, t.starts_with('/')),
                Some(Node::Hardlink(t)) => (t, true),
                _ => continue,
            };
            hops += 1;
            if hops > MAX_HOPS {
                return Err("too many levels of links".into());
            }
            done.pop();
            if from_root {
                done.clear();
            }
            todo.extend(target.rsplit('/').map(str::to_string));
        }
        Ok(done.join("/"))
    }
}

/// Where the OCI layout keeps a blob.
pub(super) fn blob_path(digest: &Digest) -> String {
    format!("blobs/sha256/{}", digest.hex())
}

/// Normalizes an entry name (`./a//b` → `a/b`) and refuses absolute names
/// and `..` components (CWE-22: a docker-archive with `../` names is how
/// path traversal attacks on `docker load` were made).
fn entry_path(raw: &str) -> Result<String, ArchiveError> {
    let bad = |reason: &str| ArchiveError::Entry {
        entry: raw.to_string(),
        reason: reason.to_string(),
    };
    if raw.starts_with('/') {
        return Err(bad("absolute path in an image archive (path traversal)"));
    }
    let mut parts = Vec::new();
    for c in raw.split('/') {
        match c {
            "" | "." => {}
            ".." => return Err(bad("'..' in an entry name (path traversal)")),
            c => parts.push(c),
        }
    }
    if parts.is_empty() {
        return Err(bad("empty path"));
    }
    Ok(parts.join("/"))
}

fn parent_of(path: &str) -> &str {
    path.rsplit_once('/').map(|(d, _)| d).unwrap_or("")
}

/// Checks lexically that `target`, relative to `dir` (or to the root when
/// absolute), stays inside the archive.
fn check_in_archive(dir: &str, target: &str) -> Result<(), ()> {
    let mut depth: usize = if target.starts_with('/') {
        0
    } else {
        dir.split('/').filter(|c| !c.is_empty()).count()
    };
    for c in target.split('/') {
        match c {
            "" | "." => {}
            ".." => depth = depth.checked_sub(1).ok_or(())?,
            _ => depth += 1,
        }
    }
    Ok(())
}

/// docker's legacy per-layer `<v1-id>/json` and `<v1-id>/VERSION`: v1
/// metadata that `manifest.json` never refers to.
fn is_legacy_metadata(path: &str) -> bool {
    match path.split_once('/') {
        Some((dir, name)) => {
            !dir.contains('/') && dir != "blobs" && matches!(name, "json" | "VERSION")
        }
        None => false,
    }
}

/// The digest a blob's path names, if its name is content-addressed:
/// `blobs/<algorithm>/<hex>` (OCI image-layout) or a top-level
/// `<hex>.json` (docker's legacy config file).
fn digest_named_by(path: &str) -> Result<Option<Digest>, String> {
    if let Some(rest) = path.strip_prefix("blobs/") {
        let Some((alg, hex)) = rest.split_once('/') else {
            return Ok(None);
        };
        if hex.contains('/') {
            return Ok(None);
        }
        if alg != "sha256" {
            return Err(format!(
                "unsupported digest algorithm {alg:?} (kiln stores sha256 blobs only)"
            ));
        }
        return format!("sha256:{hex}")
            .parse()
            .map(Some)
            .map_err(|_| "blob name is not a sha256 digest (64 lowercase hex digits)".into());
    }
    if let Some(hex) = path.strip_suffix(".json") {
        if let Ok(d) = format!("sha256:{hex}").parse() {
            return Ok(Some(d));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_entry(raw: &str, expected: Result<&str, &str>) {
        match (entry_path(raw), expected) {
            (Ok(p), Ok(want)) => assert_eq!(p, want, "{raw}"),
            (Err(e), Err(want)) => assert!(e.to_string().contains(want), "{raw}: {e}"),
            (got, want) => panic!("{raw}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn entry_names_are_normalized_and_traversal_refused() {
        check_entry("manifest.json", Ok("manifest.json"));
        check_entry("./blobs//sha256/ab", Ok("blobs/sha256/ab"));
        check_entry("abc/layer.tar", Ok("abc/layer.tar"));
        check_entry("../etc/passwd", Err("path traversal"));
        check_entry("a/../../b", Err("path traversal"));
        check_entry("a/../b", Err("path traversal"));
        check_entry("/etc/passwd", Err("absolute path"));
        check_entry("./", Err("empty path"));
    }

    #[test]
    fn link_targets_must_stay_inside() {
        assert_eq!(check_in_archive("abc", "../def/layer.tar"), Ok(()));
        assert_eq!(check_in_archive("abc", "../../x"), Err(()));
        assert_eq!(check_in_archive("", "../x"), Err(()));
        assert_eq!(check_in_archive("a/b", "/blobs/x"), Ok(()));
        assert_eq!(check_in_archive("a", "/../x"), Err(()));
    }

    #[test]
    fn blob_names_give_digests() {
        let hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let d = |s: &str| digest_named_by(s);
        assert_eq!(
            d(&format!("blobs/sha256/{hex}")).unwrap().unwrap().hex(),
            hex
        );
        assert_eq!(d(&format!("{hex}.json")).unwrap().unwrap().hex(), hex);
        assert_eq!(d("abc/layer.tar").unwrap(), None);
        assert!(d("blobs/sha512/abcd").unwrap_err().contains("sha512"));
        assert!(d("blobs/sha256/XYZ").unwrap_err().contains("not a sha256"));
    }

    #[test]
    fn links_resolve_in_scope() {
        let info = BlobInfo {
            digest: Digest::sha256_of(b"x"),
            size: 1,
        };
        let mut c = Contents::default();
        c.nodes
            .insert("b/layer.tar".into(), Node::Blob(info.clone()));
        c.nodes
            .insert("a/layer.tar".into(), Node::Symlink("../b/layer.tar".into()));
        c.nodes.insert("d".into(), Node::Symlink("b".into()));
        c.nodes
            .insert("h".into(), Node::Hardlink("b/layer.tar".into()));
        c.nodes.insert("loop".into(), Node::Symlink("loop".into()));
        assert_eq!(c.blob_at("a/layer.tar", "t").unwrap(), &info);
        assert_eq!(c.blob_at("d/layer.tar", "t").unwrap(), &info);
        assert_eq!(c.blob_at("h", "t").unwrap(), &info);
        let err = c.blob_at("loop", "manifest.json").unwrap_err().to_string();
        assert!(err.contains("too many levels of links"), "{err}");
        let err = c.blob_at("nope", "manifest.json").unwrap_err().to_string();
        assert!(
            err.contains("nope") && err.contains("manifest.json"),
            "{err}"
        );
    }
}
