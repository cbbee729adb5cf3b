//! Base images for a build, found in the store.
//!
//! The lowering asks for each `FROM` image while it runs; the answer pins
//! the image op to the manifest digest, and the executor later unpacks
//! exactly that image. Pulling is not available in this build of kiln, so
//! a missing image (or `--pull`) is an error naming what to do instead.

use std::sync::Mutex;

use crate::cache::{Image, Store, StoreError};
use crate::frontend::dockerfile::{ImageResolver, ResolvedImage};
use crate::image::reference::ImageRef;
use crate::solver::Platform;

/// Resolves base images against the store and remembers them.
pub struct StoreImages<'a> {
    store: &'a Store,
    pull: bool,
    found: Mutex<Vec<Image>>,
}

impl<'a> StoreImages<'a> {
    /// A resolver over `store`; `pull` asks for a registry check first.
    pub fn new(store: &'a Store, pull: bool) -> StoreImages<'a> {
        StoreImages {
            store,
            pull,
            found: Mutex::new(Vec::new()),
        }
    }

    /// Every image resolved so far.
    pub fn into_images(self) -> Vec<Image> {
        self.found.into_inner().unwrap_or_else(|p| p.into_inner())
    }
}

impl ImageResolver for StoreImages<'_> {
    fn resolve(&self, reference: &ImageRef, platform: &Platform) -> Result<ResolvedImage, String> {
        if self.pull {
            return Err(format!(
                "{reference}: --pull is not supported yet (kiln cannot reach registries in this build)"
            ));
        }
        let spec = reference.to_string();
        let image = match self.store.image(&spec) {
            Ok(image) => image,
            Err(StoreError::ImageNotFound(_)) => {
                return Err(format!(
                    "{}: image not found in the store, and pulling is not supported yet \
                     (use kiln import or kiln load first)",
                    crate::cache::familiar(reference)
                ))
            }
            Err(e) => return Err(format!("{reference}: {e}")),
        };
        let arch = &image.config.architecture;
        if !arch.is_empty() && (arch != &platform.architecture || image.config.os != platform.os) {
            return Err(format!(
                "{reference}: image is for {}/{arch}, kiln builds for {platform}",
                image.config.os
            ));
        }
        let resolved = ResolvedImage {
            reference: reference.with_digest(image.manifest_digest.clone()),
            config: image.config.clone(),
        };
        if let Ok(mut found) = self.found.lock() {
            found.push(image);
        }
        Ok(resolved)
    }
}
