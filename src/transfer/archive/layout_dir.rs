//! One image of an OCI image layout *directory* (`--build-context
//! NAME=oci-layout://PATH[:TAG|@DIGEST]`, buildx's `build/opt.go`: the tag
//! defaults to `latest`), loaded into the store without a name.
//!
//! The directory is streamed as a tar through the archive reader, so its
//! blobs are verified against their digests exactly as `kiln load` does,
//! and nothing of the directory is written. The image is recorded only by
//! the repo digest the caller gives (`NAME@sha256:…`), which is how the
//! build then finds it; it has no tag, so `image prune` may remove it.

use super::{oci, unpack_layers, ArchiveError};
use crate::cache::{Image, Store};
use crate::image::digest::Digest;
use crate::image::reference::ImageRef;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Which image of a layout's `index.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayoutPick {
    /// The entry whose `org.opencontainers.image.ref.name` is the tag (or
    /// whose `io.containerd.image.name` has it).
    Tag(String),
    /// The entry with this manifest (or index) digest.
    Digest(Digest),
}

impl std::fmt::Display for LayoutPick {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LayoutPick::Tag(t) => write!(f, "tag {t:?}"),
            LayoutPick::Digest(d) => write!(f, "digest {d}"),
        }
    }
}

/// Loads the image `pick` names from the layout at `dir` and records it
/// under `repo_digest(manifest digest)` only.
pub fn load_layout_dir(
    store: &Store,
    dir: &Path,
    pick: &LayoutPick,
    repo_digest: impl FnOnce(&Digest) -> Option<ImageRef>,
) -> Result<Image, ArchiveError> {
    let files = layout_files(dir).map_err(ArchiveError::Read)?;
    let (reader, writer) = io::pipe().map_err(ArchiveError::Read)?;
    let root = dir.to_path_buf();
    // The writer ends (and the reader sees EOF) when the thread is done;
    // a reader that stops early makes the writes fail and the thread end.
    let feeder = std::thread::spawn(move || write_tar(writer, &root, &files));
    let contents = super::reader::Contents::read(store, reader);
    let fed = feeder
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("tar writer panicked")));
    let contents = contents?;
    fed.map_err(ArchiveError::Read)?;
    let plan = oci::plan_picked(store, &contents, pick)?;
    unpack_layers(store, std::slice::from_ref(&plan))?;
    let digests: Vec<ImageRef> = repo_digest(&plan.manifest_digest).into_iter().collect();
    store
        .commit_image(&plan.manifest_digest, &[], &digests)
        .map_err(|source| ArchiveError::Store {
            context: format!("recording {}", plan.label),
            source,
        })
}

/// The layout's files by their name in the layout: `oci-layout`,
/// `index.json` and `blobs/<algorithm>/<hex>`.
fn layout_files(dir: &Path) -> io::Result<Vec<(String, PathBuf)>> {
    let mut files = Vec::new();
    for name in ["oci-layout", "index.json"] {
        let p = dir.join(name);
        if p.is_file() {
            files.push((name.to_string(), p));
        }
    }
    let blobs = dir.join("blobs");
    if blobs.is_dir() {
        for alg in std::fs::read_dir(&blobs)? {
            let alg = alg?;
            if !alg.file_type()?.is_dir() {
                continue;
            }
            for blob in std::fs::read_dir(alg.path())? {
                let blob = blob?;
                let name = format!(
                    "blobs/{}/{}",
                    alg.file_name().to_string_lossy(),
                    blob.file_name().to_string_lossy()
                );
                files.push((name, blob.path()));
            }
        }
    }
    Ok(files)
}

fn write_tar(writer: impl Write, root: &Path, files: &[(String, PathBuf)]) -> io::Result<()> {
    let mut tar = tar::Builder::new(writer);
    for (name, path) in files {
        tar.append_path_with_name(path, name)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", root.join(name).display())))?;
    }
    tar.finish()
}
