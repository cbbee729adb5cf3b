//! Base images for a build: found in the store, pulled when missing (or
//! always, with `--pull`), as `kiln run` gets its image.
//!
//! The lowering asks for each `FROM` image while it runs; the answer pins
//! the image op to the manifest digest, and the executor later unpacks
//! exactly that image.

use crate::error_chain::Chain;
use std::sync::Mutex;

use crate::cache::{Image, Store};
use crate::container::{find_or_pull, image_platform, ImageSourceError, PullPolicy, PullSource};
use crate::frontend::dockerfile::{ImageResolver, ResolvedImage};
use crate::image::reference::ImageRef;
use crate::image::registry::ClientOptions;
use crate::solver::Platform;
use crate::transfer::progress::Progress;

/// Resolves base images against the store and remembers them.
pub struct StoreImages<'a> {
    store: &'a Store,
    pull: bool,
    registry: &'a ClientOptions,
    found: Mutex<Vec<Image>>,
    /// Each reference as the Dockerfile named it, with the manifest digest
    /// it resolved to (a provenance's materials).
    asked: Mutex<Vec<(ImageRef, crate::image::Digest)>>,
}

impl<'a> StoreImages<'a> {
    /// A resolver over `store`; `pull` asks the registry even for images
    /// the store has.
    pub fn new(store: &'a Store, pull: bool, registry: &'a ClientOptions) -> StoreImages<'a> {
        StoreImages {
            store,
            pull,
            registry,
            found: Mutex::new(Vec::new()),
            asked: Mutex::new(Vec::new()),
        }
    }

    /// The references resolved so far, as named, with their digests.
    pub fn requested(&self) -> Vec<(ImageRef, crate::image::Digest)> {
        self.asked.lock().map(|a| a.clone()).unwrap_or_default()
    }

    /// Every image resolved so far.
    pub fn into_images(self) -> Vec<Image> {
        self.found.into_inner().unwrap_or_else(|p| p.into_inner())
    }
}

impl ImageResolver for StoreImages<'_> {
    fn resolve(&self, reference: &ImageRef, platform: &Platform) -> Result<ResolvedImage, String> {
        let policy = if self.pull {
            PullPolicy::Always
        } else {
            PullPolicy::Missing
        };
        let source = PullSource {
            options: self.registry,
            platform,
            platform_required: true,
            progress: &Progress::for_stderr(),
        };
        let spec = reference.to_string();
        let found = find_or_pull(self.store, &spec, policy, &source, &mut std::io::stderr());
        // A stored image for another platform is not used: the one for
        // this platform is pulled, as BuildKit resolves every base image
        // for its stage's platform (and a tag in kiln's store names one
        // platform's image, as in docker's classic store).
        let found = match found {
            Err(ImageSourceError::PlatformMismatch { found, .. }) => {
                tracing::info!("{reference}: the stored image is for {found}; pulling {platform}");
                find_or_pull(
                    self.store,
                    &spec,
                    PullPolicy::Always,
                    &source,
                    &mut std::io::stderr(),
                )
            }
            other => other,
        };
        let image = found.map_err(|e| format!("{}: {e}", reference.familiar(), e = Chain(&e)))?;
        let got = image_platform(&image);
        if got.runs_on(platform).is_none() {
            return Err(format!(
                "{reference}: image is for {got}, the stage is for {platform}"
            ));
        }
        let resolved = ResolvedImage {
            reference: reference.with_digest(image.manifest_digest.clone()),
            config: image.config.clone(),
        };
        if let Ok(mut asked) = self.asked.lock() {
            asked.push((reference.clone(), image.manifest_digest.clone()));
        }
        if let Ok(mut found) = self.found.lock() {
            found.push(image);
        }
        Ok(resolved)
    }
}
