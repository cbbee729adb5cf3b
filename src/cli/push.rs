//! `kiln push REF [--compression gzip|zstd]`: upload a stored image.

use super::CliError;
use super::RegistryFlags;
use crate::cache::Store;
use crate::error_chain::Chain;
use crate::image::layer::Compression;
use crate::image::registry::RegistryClient;
use crate::image::ImageRef;
use crate::transfer::{self, progress::Progress, PushOptions};
use clap::{Args, ValueEnum};
use std::path::Path;

/// Flags of `kiln push`.
#[derive(Debug, Args)]
pub struct PushArgs {
    /// Recompress layers to this format (default: keep compressed layers,
    /// gzip uncompressed ones, as docker does).
    #[arg(long, value_enum)]
    pub compression: Option<PushCompression>,
    /// Image name, as tagged in the store, e.g. `127.0.0.1:5000/app:v1`.
    pub image: String,
}

/// Layer compressions a push can produce.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PushCompression {
    Gzip,
    Zstd,
}

pub fn run(args: PushArgs, root: &Path, registry: &RegistryFlags) -> Result<i32, CliError> {
    let image = ImageRef::parse(&args.image).map_err(CliError::from_error)?;
    let store = Store::open(root).map_err(CliError::from_error)?;
    let options = registry.options(root)?;
    let client = RegistryClient::new(image.registry(), &options).map_err(CliError::from_error)?;
    let push_options = PushOptions {
        compression: args.compression.map(|c| match c {
            PushCompression::Gzip => Compression::Gzip,
            PushCompression::Zstd => Compression::Zstd,
        }),
    };
    transfer::push(
        &store,
        &client,
        &image,
        &push_options,
        &Progress::for_stdout(),
    )
    .map_err(|e| CliError(format!("pushing {image}: {e}", e = Chain(&e))))?;
    Ok(0)
}
