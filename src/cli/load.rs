//! `kiln load [-i FILE] [-q]`: load images from a docker-archive or OCI
//! layout tar (plain or compressed), like `docker load`.

use super::CliError;
use crate::cache::Store;
use crate::error_chain::Chain;
use crate::transfer::archive::load;
use clap::Args;
use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};

/// Flags of `kiln load`.
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Read from tar archive file, instead of STDIN.
    #[arg(short, long, value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Suppress the load progress.
    #[arg(short, long)]
    pub quiet: bool,
}

pub fn run(args: LoadArgs, root: &Path) -> Result<i32, CliError> {
    let input: Box<dyn Read + Send> = match &args.input {
        Some(p) => Box::new(
            std::fs::File::open(p)
                .map_err(|e| CliError(format!("open {}: {e}", p.display(), e = Chain(&e))))?,
        ),
        None => {
            let stdin = std::io::stdin();
            // docker's wording: nothing was piped in.
            if stdin.is_terminal() {
                return Err(CliError(
                    "requested load from stdin, but stdin is empty".into(),
                ));
            }
            Box::new(stdin)
        }
    };
    let store = Store::open(root).map_err(CliError::from_error)?;
    let progress = (!args.quiet && std::io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} Loading {bytes} ({bytes_per_sec})")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        bar
    });
    let input: Box<dyn Read + Send> = match &progress {
        Some(bar) => Box::new(bar.wrap_read(input)),
        None => input,
    };
    let result = load(&store, input);
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    let loaded = result.map_err(CliError::from_error)?;
    for image in &loaded {
        for (name, old) in &image.replaced {
            println!(
                "The image {} already exists, renaming the old one with ID {old} to empty string",
                name.familiar()
            );
        }
        if image.names.is_empty() {
            println!("Loaded image ID: {}", image.id);
        }
        for name in &image.names {
            println!("Loaded image: {}", name.familiar());
        }
    }
    Ok(0)
}
