//! `kiln import FILE|- [REPOSITORY[:TAG]]`: a rootfs tarball becomes an image.

use super::CliError;
use crate::cache::Store;
use crate::error_chain::Chain;
use crate::image::oci::Platform;
use crate::image::reference::ImageRef;
use crate::transfer::import::{import, ImportOptions};
use clap::Args;
use std::path::Path;

/// Flags of `kiln import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Apply a Dockerfile instruction to the image config (CMD, ENTRYPOINT,
    /// ENV, EXPOSE, LABEL, USER, VOLUME, WORKDIR).
    #[arg(short = 'c', long = "change", value_name = "INSTRUCTION")]
    pub changes: Vec<String>,
    /// Commit message for the imported image.
    #[arg(short, long)]
    pub message: Option<String>,
    /// The platform the image is for (os/arch[/variant]); the host's by
    /// default.
    #[arg(long)]
    pub platform: Option<String>,
    /// The tarball (gzip, zstd or plain), or `-` for stdin.
    pub file: String,
    /// Name to give the image.
    pub name: Option<String>,
}

pub fn run(args: ImportArgs, root: &Path) -> Result<i32, CliError> {
    if args.file.starts_with("http://") || args.file.starts_with("https://") {
        return Err(CliError(
            "importing from a URL is not supported; download the file first".into(),
        ));
    }
    let names = match &args.name {
        Some(n) => vec![ImageRef::parse(n).map_err(CliError::from_error)?],
        None => Vec::new(),
    };
    let platform = match args.platform.as_deref() {
        None => None,
        Some(p) => Some(
            Platform::parse(p)
                .map_err(|e| CliError(format!("--platform: {e}")))?
                .normalized(),
        ),
    };
    let store = Store::open(root).map_err(CliError::from_error)?;
    let opts = ImportOptions {
        platform,
        changes: args.changes,
        message: args.message,
        // docker's CLI streams a file to the daemon, which records "-".
        source: "-".into(),
    };
    let image = if args.file == "-" {
        import(&store, std::io::stdin(), &names, &opts)
    } else {
        let f = std::fs::File::open(&args.file)
            .map_err(|e| CliError(format!("open {}: {e}", args.file, e = Chain(&e))))?;
        import(&store, f, &names, &opts)
    }
    .map_err(CliError::from_error)?;
    println!("{}", image.id);
    Ok(0)
}
