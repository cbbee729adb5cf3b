//! `kiln tag SOURCE TARGET`: another name for an image.

use super::CliError;
use crate::cache::Store;
use crate::image::reference::ImageRef;
use clap::Args;
use std::path::Path;

/// Arguments of `kiln tag`.
#[derive(Debug, Args)]
pub struct TagArgs {
    /// Image to tag (name, ID or ID prefix).
    pub source: String,
    /// New name, `[REGISTRY/]REPOSITORY[:TAG]`.
    pub target: String,
}

pub fn run(args: TagArgs, root: &Path) -> Result<i32, CliError> {
    let target = ImageRef::parse(&args.target).map_err(CliError::from_error)?;
    let store = Store::open(root).map_err(CliError::from_error)?;
    store
        .tag(&args.source, &target)
        .map_err(CliError::from_error)?;
    Ok(0)
}
