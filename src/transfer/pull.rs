//! `pull`: registry → store.
//!
//! Order of work, chosen so a killed pull never leaves a listed image and
//! the next pull redoes as little as possible:
//! 1. resolve the reference to a linux/amd64 manifest (through an index);
//! 2. download the config, then the layers, [`PARALLEL_DOWNLOADS`] at a
//!    time, each into the resumable ingest dir and then into the store;
//! 3. unpack the layers in order as they arrive (a layer's snapshot needs
//!    its parent's);
//! 4. commit the image and its names in one store transaction.
//!
//! The store collects what a dead process had not committed, but partial
//! and complete downloads stay in the ingest dir (see [`super::ingest`])
//! until the image is committed, so a rerun resumes them.

use super::ingest::Ingest;
use super::parallel::run_bounded;
use super::progress::{ItemProgress, Progress};
use super::sources::BlobSources;
use super::TransferError;
use crate::cache::Store;
use crate::error_chain::Chain;
use crate::image::layer::chain_ids;
use crate::image::oci::{media, Descriptor, ImageConfig, Manifest};
use crate::image::registry::{Platform, RegistryClient};
use crate::image::{Digest, ImageRef};
use std::ops::ControlFlow;

/// Layers downloaded at once: docker's `max-concurrent-downloads` default.
pub const PARALLEL_DOWNLOADS: usize = 3;

/// What a pull did.
#[derive(Debug, Clone)]
pub struct PullReport {
    /// The digest the reference resolved to (the index's if it named one).
    pub digest: Digest,
    /// The image ID (config digest).
    pub id: Digest,
    /// Whether the store already had this image under this name.
    pub up_to_date: bool,
}

/// Pulls `image` into `store` for `platform`, printing docker's lines to
/// `progress`.
pub fn pull(
    store: &Store,
    client: &RegistryClient,
    image: &ImageRef,
    platform: &Platform,
    progress: &Progress,
) -> Result<PullReport, TransferError> {
    let repo = image.repository();
    let reference = image.registry_reference();
    let name = familiar(image);
    // Docker names the repository path here, without the registry.
    progress.println(&format!(
        "{}: Pulling from {repo}",
        image.tag().unwrap_or(&reference)
    ));
    let resolved = client.resolve_manifest(repo, &reference, platform)?;
    let reference_digest = resolved.reference_digest().clone();
    let manifest_bytes = &resolved.image.bytes;
    let manifest: Manifest =
        serde_json::from_slice(manifest_bytes).map_err(|e| TransferError::BadImage {
            image: name.clone(),
            reason: format!("manifest {}: {e}", resolved.image.digest, e = Chain(&e)),
        })?;
    let names: Vec<ImageRef> = image.tag().map(|t| image.with_tag(t)).into_iter().collect();
    let repo_digests = vec![image.with_digest(reference_digest.clone())];

    if let Some(id) = already_pulled(store, image, &resolved.image.digest) {
        store.commit_image(&resolved.image.digest, &names, &repo_digests)?;
        progress.println(&format!("Digest: {reference_digest}"));
        progress.println(&format!("Status: Image is up to date for {name}"));
        return Ok(PullReport {
            digest: reference_digest,
            id,
            up_to_date: true,
        });
    }

    store.ingest_manifest(manifest_bytes, Some(&resolved.image.media_type))?;
    let ingest = Ingest::open(store.root())
        .map_err(|e| TransferError::io(format!("opening {}/ingest", store.root().display()), e))?;
    let config = fetch_config(client, store, image, &manifest)?;
    let layers = Layers::plan(store, &manifest, &config.rootfs.diff_ids, progress)?;
    let ingested = layers.fetch_and_unpack(store, client, image, &ingest)?;

    let committed = store.commit_image(&resolved.image.digest, &names, &repo_digests)?;
    // Only now are the downloads safe in the store for good.
    for d in &ingested {
        if let Ok(f) = ingest.acquire(d) {
            let _ = f.remove();
        }
    }
    progress.items_done();
    progress.println(&format!("Digest: {reference_digest}"));
    progress.println(&format!("Status: Downloaded newer image for {name}"));
    Ok(PullReport {
        digest: reference_digest,
        id: committed.id,
        up_to_date: false,
    })
}

/// The image ID if the store already has `image` under this name at
/// `manifest`: then there is nothing to fetch, only the name to record
/// again. Held (leased) as it is looked up, so a concurrent prune cannot
/// take it before `commit_image` records the name.
fn already_pulled(store: &Store, image: &ImageRef, manifest: &Digest) -> Option<Digest> {
    store
        .hold_image(&image.to_string())
        .ok()
        .filter(|existing| existing.manifest_digest == *manifest)
        .map(|existing| existing.id)
}

/// The image config, fetched (or found in the store), and checked to
/// name one diff ID per layer of `manifest`: the chain IDs of the
/// snapshots come from the diff IDs, the blobs from the manifest.
fn fetch_config(
    client: &RegistryClient,
    store: &Store,
    image: &ImageRef,
    manifest: &Manifest,
) -> Result<ImageConfig, TransferError> {
    let bytes = fetch_small(client, store, image, &manifest.config, "image config")?;
    let config: ImageConfig =
        serde_json::from_slice(&bytes).map_err(|e| TransferError::BadImage {
            image: familiar(image),
            reason: format!("config {}: {e}", manifest.config.digest, e = Chain(&e)),
        })?;
    let diff_ids = &config.rootfs.diff_ids;
    if diff_ids.len() != manifest.layers.len() {
        return Err(TransferError::BadImage {
            image: familiar(image),
            reason: format!(
                "the manifest has {} layers but the config lists {} diff IDs",
                manifest.layers.len(),
                diff_ids.len()
            ),
        });
    }
    Ok(config)
}

/// The layers of one pull and what each still needs.
struct Layers<'a> {
    descriptors: &'a [Descriptor],
    diff_ids: &'a [Digest],
    chains: Vec<Digest>,
    /// Whose snapshot the store has (and this pull now leases): neither
    /// downloaded nor unpacked.
    present: Vec<bool>,
    items: Vec<ItemProgress>,
}

impl<'a> Layers<'a> {
    /// Decides which layers need fetching: those whose snapshot (by chain
    /// ID) is not in the store. Each present one is leased as it is found,
    /// or GC could take it before the commit.
    fn plan(
        store: &Store,
        manifest: &'a Manifest,
        diff_ids: &'a [Digest],
        progress: &Progress,
    ) -> Result<Layers<'a>, TransferError> {
        let descriptors = &manifest.layers[..];
        let chains = chain_ids(diff_ids);
        let items: Vec<_> = descriptors
            .iter()
            .map(|l| progress.item(l.digest.short(), l.size))
            .collect();
        let present: Vec<bool> = chains
            .iter()
            .map(|c| store.hold_existing_snapshot(c))
            .collect::<Result<_, _>>()?;
        for (item, present) in items.iter().zip(&present) {
            if *present {
                item.finish("Already exists");
            } else {
                item.status("Pulling fs layer");
            }
        }
        Ok(Layers {
            descriptors,
            diff_ids,
            chains,
            present,
            items,
        })
    }

    /// Downloads the missing layers [`PARALLEL_DOWNLOADS`] at a time and
    /// unpacks each as soon as it and every layer below it are in (a
    /// snapshot needs its parent's). The first failure, of a download or
    /// an unpack, stops new downloads and is returned once the running ones
    /// end. Returns the blobs that went through the ingest dir.
    fn fetch_and_unpack(
        &self,
        store: &Store,
        client: &RegistryClient,
        image: &ImageRef,
        ingest: &Ingest,
    ) -> Result<Vec<Digest>, TransferError> {
        let sources = BlobSources::open(store.root());
        let count = self.descriptors.len();
        let mut downloaded = vec![false; count];
        let mut next_unpack = 0;
        let mut ingested = Vec::new();
        let mut unpack_error = None;
        let downloads = run_bounded(
            count,
            PARALLEL_DOWNLOADS,
            |i| {
                if self.present[i] {
                    return Ok(());
                }
                let desc = &self.descriptors[i];
                download_layer(store, client, image, desc, ingest, &self.items[i])
                    .inspect(|_| sources.record(&desc.digest, image))
            },
            |i, r| {
                downloaded[i] = r.is_ok();
                while next_unpack < count && downloaded[next_unpack] {
                    let idx = next_unpack;
                    next_unpack += 1;
                    if self.present[idx] {
                        continue;
                    }
                    ingested.push(self.descriptors[idx].digest.clone());
                    if let Err(e) = self.unpack(store, idx) {
                        unpack_error = Some(e);
                        return ControlFlow::Break(());
                    }
                }
                ControlFlow::Continue(())
            },
        );
        if let Some(e) = unpack_error {
            return Err(e);
        }
        downloads.into_result()?;
        Ok(ingested)
    }

    /// Unpacks downloaded layer `idx` onto its parent's snapshot.
    fn unpack(&self, store: &Store, idx: usize) -> Result<(), TransferError> {
        self.items[idx].status("Extracting");
        let parent = idx.checked_sub(1).map(|p| &self.chains[p]);
        store.add_layer_from_blob(&self.descriptors[idx], &self.diff_ids[idx], parent)?;
        self.items[idx].finish("Pull complete");
        Ok(())
    }
}

/// `busybox:latest`, `host:5000/app:v1`: how docker names an image in
/// status lines, by its tag alone when it has both a tag and a digest.
fn familiar(image: &ImageRef) -> String {
    match image.tag() {
        Some(tag) => image.with_tag(tag).familiar(),
        None => image.familiar(),
    }
}

/// Fetches a small blob (the config) into memory and the store.
fn fetch_small(
    client: &RegistryClient,
    store: &Store,
    image: &ImageRef,
    desc: &Descriptor,
    what: &str,
) -> Result<Vec<u8>, TransferError> {
    if store.hold_existing_blob(&desc.digest)?.is_some() {
        return Ok(store.read_blob(&desc.digest)?);
    }
    if !media::is_config(&desc.media_type) {
        return Err(TransferError::BadImage {
            image: familiar(image),
            reason: format!(
                "{what} {} has media type {:?}",
                desc.digest, desc.media_type
            ),
        });
    }
    let mut bytes = Vec::with_capacity(desc.size as usize);
    client.get_blob(
        image.repository(),
        &desc.digest,
        Some(desc.size),
        &mut bytes,
        &mut |_| {},
    )?;
    store.ingest_bytes(&bytes, &format!("{what} of {}", familiar(image)))?;
    Ok(bytes)
}

/// Downloads one layer blob into the ingest dir (resuming what a killed
/// pull left), then into the store.
fn download_layer(
    store: &Store,
    client: &RegistryClient,
    image: &ImageRef,
    desc: &Descriptor,
    ingest: &Ingest,
    item: &ItemProgress,
) -> Result<(), TransferError> {
    if store.hold_existing_blob(&desc.digest)?.is_some() {
        item.status("Download complete");
        return Ok(());
    }
    let mut partial = ingest.acquire(&desc.digest).map_err(|e| {
        TransferError::io(format!("opening partial download of {}", desc.digest), e)
    })?;
    // Another process may have finished this blob while we waited.
    if store.hold_existing_blob(&desc.digest)?.is_some() {
        item.status("Download complete");
        return Ok(());
    }
    item.status("Downloading");
    // The bytes go to the partial file (kept for a resume) and, through a
    // pipe, straight into the store's ingest on another thread, which
    // checks digest and size itself: the blob is written and hashed once
    // more, not copied again after the download.
    let (pipe_out, mut pipe_in) =
        std::io::pipe().map_err(|e| TransferError::io("creating a pipe for the store", e))?;
    widen_pipe(&pipe_in);
    let what = format!("layer {} of {}", desc.digest, familiar(image));
    let (fetched, stored) = std::thread::scope(|s| {
        let ingest =
            s.spawn(|| store.ingest_blob(pipe_out, Some(&desc.digest), Some(desc.size), &what));
        let fetched = client.get_blob_to_file_and(
            image.repository(),
            &desc.digest,
            Some(desc.size),
            partial.file(),
            &mut pipe_in,
            &mut |n| item.set(n),
        );
        // End of stream for the store side (or its early end on failure).
        drop(pipe_in);
        (fetched, ingest.join())
    });
    let stored = stored.map_err(|_| {
        TransferError::io(
            format!("storing {what}"),
            std::io::Error::other("the store thread panicked"),
        )
    })?;
    match (fetched, stored) {
        // The store verified what it got: done, whatever the download
        // side said (e.g. a broken pipe because the blob appeared in the
        // store meanwhile and it stopped reading).
        (_, Ok(_)) => {}
        // A failed download makes the store side fail too; its error is
        // the consequence, the download's the cause.
        (Err(e), Err(_)) => return Err(e.into()),
        (Ok(_), Err(e)) => return Err(e.into()),
    }
    item.status("Download complete");
    Ok(())
}

/// Raises a pipe's buffer from 64 KiB to 1 MiB (fcntl F_SETPIPE_SZ, Linux
/// pipe(7)), so the download and the store rarely wait for each other.
/// Failure only costs speed.
fn widen_pipe(pipe: &std::io::PipeWriter) {
    use std::os::fd::AsFd;
    let _ = nix::fcntl::fcntl(pipe.as_fd(), nix::fcntl::FcntlArg::F_SETPIPE_SZ(1 << 20));
}
