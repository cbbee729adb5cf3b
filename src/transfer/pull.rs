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
use super::progress::Progress;
use super::sources::BlobSources;
use super::TransferError;
use crate::cache::Store;
use crate::error_chain::Chain;
use crate::image::layer::chain_ids;
use crate::image::oci::{media, Descriptor, ImageConfig, Manifest};
use crate::image::registry::{Platform, RegistryClient};
use crate::image::{Digest, ImageRef};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;

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

    // Already here under this name? Then there is nothing to fetch.
    // Held (leased) as it is looked up, so a concurrent prune cannot take
    // it before `commit_image` records the name again.
    if let Ok(existing) = store.hold_image(&image.to_string()) {
        if existing.manifest_digest == resolved.image.digest {
            store.commit_image(&resolved.image.digest, &names, &repo_digests)?;
            progress.println(&format!("Digest: {reference_digest}"));
            progress.println(&format!("Status: Image is up to date for {name}"));
            return Ok(PullReport {
                digest: reference_digest,
                id: existing.id,
                up_to_date: true,
            });
        }
    }

    store.ingest_manifest(manifest_bytes, Some(&resolved.image.media_type))?;
    let ingest = Ingest::open(store.root())
        .map_err(|e| TransferError::io(format!("opening {}/ingest", store.root().display()), e))?;
    let sources = BlobSources::open(store.root());

    let config_bytes = fetch_small(client, store, image, &manifest.config, "image config")?;
    let config: ImageConfig =
        serde_json::from_slice(&config_bytes).map_err(|e| TransferError::BadImage {
            image: name.clone(),
            reason: format!("config {}: {e}", manifest.config.digest, e = Chain(&e)),
        })?;
    let diff_ids = &config.rootfs.diff_ids;
    if diff_ids.len() != manifest.layers.len() {
        return Err(TransferError::BadImage {
            image: name.clone(),
            reason: format!(
                "the manifest has {} layers but the config lists {} diff IDs",
                manifest.layers.len(),
                diff_ids.len()
            ),
        });
    }
    let chains = chain_ids(diff_ids);

    let layers = &manifest.layers;
    let items: Vec<_> = layers
        .iter()
        .map(|l| progress.item(l.digest.short(), l.size))
        .collect();
    // Layers whose snapshot exists need neither download nor unpacking.
    // Each is leased as it is found, or GC could take it before the commit.
    let present: Vec<bool> = chains
        .iter()
        .map(|c| store.hold_existing_snapshot(c))
        .collect::<Result<_, _>>()?;
    for (i, item) in items.iter().enumerate() {
        if present[i] {
            item.finish("Already exists");
        } else {
            item.status("Pulling fs layer");
        }
    }

    let next = AtomicUsize::new(0);
    let cancel = AtomicBool::new(false);
    let mut finished: Vec<Option<Result<(), TransferError>>> =
        (0..layers.len()).map(|_| None).collect();
    let mut ingested: Vec<Digest> = Vec::new();
    let unpack_result = std::thread::scope(|s| -> Result<(), TransferError> {
        let (tx, rx) = mpsc::channel::<(usize, Result<(), TransferError>)>();
        for _ in 0..PARALLEL_DOWNLOADS.min(layers.len()) {
            let tx = tx.clone();
            let (next, cancel, items, present) = (&next, &cancel, &items, &present);
            let (ingest, sources) = (&ingest, &sources);
            s.spawn(move || loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= layers.len() || cancel.load(Ordering::SeqCst) {
                    break;
                }
                let r = if present[i] {
                    Ok(())
                } else {
                    download_layer(store, client, image, &layers[i], ingest, &items[i])
                        .inspect(|_| sources.record(&layers[i].digest, image))
                };
                if tx.send((i, r)).is_err() {
                    break;
                }
            });
        }
        drop(tx);
        let mut next_unpack = 0;
        for (i, r) in rx {
            finished[i] = Some(r);
            while next_unpack < layers.len() {
                let Some(r) = finished[next_unpack].take() else {
                    break;
                };
                if let Err(e) = r {
                    cancel.store(true, Ordering::SeqCst);
                    return Err(e);
                }
                let idx = next_unpack;
                next_unpack += 1;
                if present[idx] {
                    continue;
                }
                ingested.push(layers[idx].digest.clone());
                items[idx].status("Extracting");
                let parent = idx.checked_sub(1).map(|p| &chains[p]);
                if let Err(e) = store.add_layer_from_blob(&layers[idx], &diff_ids[idx], parent) {
                    cancel.store(true, Ordering::SeqCst);
                    return Err(e.into());
                }
                items[idx].finish("Pull complete");
            }
        }
        Ok(())
    });
    unpack_result?;

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
    item: &super::progress::ItemProgress,
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
