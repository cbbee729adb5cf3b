//! The image a container runs from: found in the store the way docker
//! finds it, pulled when missing (`--pull`), and leased for as long as the
//! container lives so that `rmi` and GC cannot take its layers away.

use crate::cache::{Image, Lease, Store, StoreError};
use crate::error_chain::Chain;
use crate::image::registry::{ClientOptions, Platform, RegistryClient, RegistryError};
use crate::image::{ImageRef, ReferenceError};
use crate::transfer::{self, progress::Progress, TransferError};
use std::io::Write;
use std::path::PathBuf;

/// docker's `--pull` policy for `run`/`create`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PullPolicy {
    /// Pull only when the store has no such image (docker's default).
    #[default]
    Missing,
    /// Always ask the registry; a newer image replaces the name.
    Always,
    /// Never pull; a missing image is an error.
    Never,
}

/// Where and how to pull from when the policy asks for it.
pub struct PullSource<'a> {
    /// Registry client settings (credentials, insecure hosts).
    pub options: &'a ClientOptions,
    /// The platform picked from a multi-platform image.
    pub platform: &'a Platform,
    /// Whether the image must be for `platform` (`--platform` given): a
    /// stored image for another one is then refused, never run.
    pub platform_required: bool,
    /// Where the pull's status lines go (`kiln run` uses stderr).
    pub progress: &'a Progress,
}

/// Why the image of a container cannot be had.
#[derive(Debug, thiserror::Error)]
pub enum ImageSourceError {
    /// Not in the store and the policy forbids pulling (docker's wording).
    #[error("No such image: {0}")]
    NotFound(String),
    /// The argument is neither a stored image nor a pullable reference.
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// `--platform` names another platform than the stored image's
    /// (docker's wording: moby daemon/images `GetImage`).
    #[error("image with reference {spec} was found but its platform ({found}) does not match the specified platform ({wanted})")]
    PlatformMismatch {
        spec: String,
        /// The stored image's platform (`linux/amd64`).
        found: String,
        /// The one asked for.
        wanted: String,
    },
    /// The registry client could not be set up.
    #[error("pulling {image}")]
    Registry {
        /// The reference being pulled.
        image: String,
        /// The cause.
        #[source]
        source: Box<RegistryError>,
    },
    /// The pull failed.
    #[error("pulling {image}")]
    Pull {
        /// The reference being pulled.
        image: String,
        /// The cause.
        #[source]
        source: Box<TransferError>,
    },
}

/// Finds `spec` (a name, `name:tag`, `name@digest`, a full or short ID)
/// in the store, pulling it first as `policy` says. `notice` gets
/// docker's `Unable to find image '…' locally` line before a pull.
pub fn find_or_pull(
    store: &Store,
    spec: &str,
    policy: PullPolicy,
    source: &PullSource,
    notice: &mut dyn Write,
) -> Result<Image, ImageSourceError> {
    // Leased as it is found: between this lookup and the use of its
    // layers (a build's unpacking, a container's mount) a concurrent
    // `rmi` or prune may take the name, never the content.
    let local = match store.hold_image(spec) {
        // A multi-platform name: its member for the asked platform.
        Ok(image) if source.platform_required => {
            match index_member(store, spec, source.platform)? {
                Some(member) => Some(member),
                None => Some(image),
            }
        }
        Ok(image) => Some(image),
        Err(StoreError::ImageNotFound(_)) => None,
        // A spec that is no valid reference and matches nothing local.
        Err(StoreError::Reference(e)) => return Err(e.into()),
        Err(e) => return Err(e.into()),
    };
    match (policy, local) {
        (PullPolicy::Never, None) => Err(ImageSourceError::NotFound(spec.to_string())),
        (PullPolicy::Missing | PullPolicy::Never, Some(image)) => {
            if source.platform_required && image_platform(&image).runs_on(source.platform).is_none()
            {
                return Err(ImageSourceError::PlatformMismatch {
                    spec: spec.to_string(),
                    found: image_platform(&image).to_string(),
                    wanted: source.platform.to_string(),
                });
            }
            Ok(image)
        }
        (PullPolicy::Missing, None) => {
            let reference = ImageRef::parse(spec)?;
            let _ = writeln!(
                notice,
                "Unable to find image '{}' locally",
                reference.familiar()
            );
            pull(store, &reference, source)
        }
        (PullPolicy::Always, _) => pull(store, &ImageRef::parse(spec)?, source),
    }
}

/// Makes sure `image`'s binaries run here: nothing for the host's
/// platform, else `binfmt_misc` must hand them to an emulator (kiln
/// registers the system's qemu when it can), as a build's RUN does.
pub fn ensure_runnable(image: &Image) -> Result<(), crate::runtime::binfmt::BinfmtError> {
    let platform = image_platform(image);
    crate::runtime::binfmt::ensure(&platform.to_string(), &platform.architecture).map(|_| ())
}

/// The image of the multi-platform `spec` for `platform`, held; `None`
/// when `spec` names no index or the index has no such platform.
fn index_member(
    store: &Store,
    spec: &str,
    platform: &Platform,
) -> Result<Option<Image>, ImageSourceError> {
    let Ok(name) = ImageRef::parse(spec) else {
        return Ok(None);
    };
    match store.index_member_for(&name, platform)? {
        Some(id) => Ok(Some(store.hold_image(&id.to_string())?)),
        None => Ok(None),
    }
}

/// The platform a stored image's config says it is for (`linux/amd64`
/// when it says nothing, as docker assumes).
pub fn image_platform(image: &Image) -> Platform {
    let c = &image.config;
    if c.architecture.is_empty() {
        return Platform::linux_amd64();
    }
    let os = if c.os.is_empty() {
        "linux"
    } else {
        c.os.as_str()
    };
    Platform::new(os, &c.architecture, c.variant.as_deref())
}

fn pull(
    store: &Store,
    reference: &ImageRef,
    source: &PullSource,
) -> Result<Image, ImageSourceError> {
    let name = reference.familiar();
    let client = RegistryClient::new(reference.registry(), source.options).map_err(|e| {
        ImageSourceError::Registry {
            image: name.clone(),
            source: Box::new(e),
        }
    })?;
    // A pull's commit hands its content from this process's lease to the
    // image record; a prune may remove the record before it is held
    // again, and the next pull then finds it gone and fetches it anew.
    let mut attempts = 0;
    loop {
        let report = transfer::pull(store, &client, reference, source.platform, source.progress)
            .map_err(|e| ImageSourceError::Pull {
                image: name.clone(),
                source: Box::new(e),
            })?;
        attempts += 1;
        match store.hold_image(&report.id.to_string()) {
            Err(StoreError::ImageNotFound(_)) if attempts < 3 => {
                tracing::debug!("{name}: pruned right after its pull; pulling again");
            }
            other => return Ok(other?),
        }
    }
}

/// An image held for one container: its layer directories stay in the
/// store until this is dropped, whatever `rmi` or GC do meanwhile.
pub struct LeasedImage<'s> {
    store: &'s Store,
    lease: Option<Lease>,
    /// The image.
    pub image: Image,
    /// Its snapshot directories, bottom first: the overlay's lower dirs.
    /// Empty for an image without layers (see [`LeasedImage::lowers`]).
    pub layers: Vec<PathBuf>,
}

impl<'s> LeasedImage<'s> {
    /// Leases `image` for this process (the one supervising the
    /// container, for the container's whole life) and gets its layers,
    /// re-extracting any snapshot GC removed.
    ///
    /// The lease is taken before the snapshot directories are looked up,
    /// so a concurrent `rmi` between the lookup and the mount can only
    /// delete the image's name, never the directories the overlay uses.
    pub fn lease(store: &'s Store, image: Image, label: &str) -> Result<Self, StoreError> {
        let lease = store.create_image_lease(label, &image)?;
        let mut held = LeasedImage {
            store,
            lease: Some(lease),
            image,
            layers: Vec::new(),
        };
        // The lease holds the snapshots: a read finds them, unless GC took
        // one before it, which is then re-extracted.
        held.layers = match store.existing_snapshot_dirs(&held.image)? {
            Some(dirs) => dirs,
            None => store.snapshot_dirs(&held.image)?,
        };
        Ok(held)
    }

    /// The overlay's lower dirs. overlayfs needs at least one, so an image
    /// with no layers (an import of an empty tar) runs on `<root>/empty`,
    /// an empty directory kiln never writes into.
    pub fn lowers(&self) -> Result<Vec<PathBuf>, StoreError> {
        if !self.layers.is_empty() {
            return Ok(self.layers.clone());
        }
        let empty = self.store.layout().empty();
        std::fs::create_dir_all(&empty).map_err(|source| StoreError::Io {
            path: empty.clone(),
            op: "creating the empty layer for an image without layers",
            source,
        })?;
        Ok(vec![empty])
    }
}

impl Drop for LeasedImage<'_> {
    fn drop(&mut self) {
        if let Some(lease) = self.lease.take() {
            if let Err(e) = self.store.release_lease(lease) {
                // The lease dies with this process anyway (stale leases
                // are dropped by the next open), so this is only a delay.
                tracing::warn!(
                    "releasing the lease on image {}: {e}",
                    self.image.id,
                    e = Chain(&e)
                );
                return;
            }
            // Removed while it ran (`rmi`): its layers were kept for us
            // only, so collect them now, as docker frees them on exit.
            if matches!(self.store.has_image(&self.image.id), Ok(false)) {
                if let Err(e) = self.store.gc() {
                    tracing::warn!(
                        "collecting image {} after its run: {e}",
                        self.image.id,
                        e = Chain(&e)
                    );
                }
            }
        }
    }
}
