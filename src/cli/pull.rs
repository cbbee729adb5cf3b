//! `kiln pull REF`: fetch an image from its registry into the store.

use super::CliError;
use super::RegistryFlags;
use crate::cache::Store;
use crate::error_chain::Chain;
use crate::image::registry::{Platform, RegistryClient};
use crate::image::ImageRef;
use crate::transfer::{self, progress::Progress};
use clap::Args;
use std::path::Path;

/// Flags of `kiln pull`.
#[derive(Debug, Args)]
pub struct PullArgs {
    /// Platform to pick from a multi-platform image (os/arch[/variant]);
    /// the host's by default.
    #[arg(long)]
    pub platform: Option<String>,
    /// Image reference, e.g. `busybox`, `127.0.0.1:5000/app:v1`, `app@sha256:…`.
    pub image: String,
}

pub fn run(args: PullArgs, root: &Path, registry: &RegistryFlags) -> Result<i32, CliError> {
    let image = ImageRef::parse(&args.image).map_err(CliError::from_error)?;
    let platform = match args.platform.as_deref() {
        None => Platform::host(),
        Some(p) => Platform::parse(p)
            .map_err(|_| {
                CliError(format!(
                    "invalid --platform {p:?}: expected os/arch[/variant]"
                ))
            })?
            .normalized(),
    };
    let explicit = ImageRef::parse_unnormalized_tag(&args.image).map_err(CliError::from_error)?;
    if explicit.tag().is_none() && explicit.digest().is_none() {
        println!("Using default tag: latest");
    }
    let store = Store::open(root).map_err(CliError::from_error)?;
    let options = registry.options(root)?;
    let client = RegistryClient::new(image.registry(), &options).map_err(CliError::from_error)?;
    transfer::pull(&store, &client, &image, &platform, &Progress::for_stdout())
        .map_err(|e| CliError(format!("pulling {image}: {e}", e = Chain(&e))))?;
    println!("{image}");
    Ok(0)
}
