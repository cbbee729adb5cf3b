//! `kiln save [-o FILE] [--format docker|oci] [--compression …] IMAGE...`:
//! write images to a tar archive, like `docker save`.

use super::CliError;
use crate::cache::Store;
use crate::error_chain::Chain;
use crate::image::layer::Compression;
use crate::transfer::archive::{destination, save, Format, SaveOptions};
use clap::{Args, ValueEnum};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

/// Flags of `kiln save`.
#[derive(Debug, Args)]
pub struct SaveArgs {
    /// Write to a file, instead of STDOUT.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Archive layout: docker (what `docker load` and docker-archive: read;
    /// also an OCI layout) or oci (an OCI image layout only).
    #[arg(long, value_enum, default_value_t = FormatArg::Docker)]
    pub format: FormatArg,
    /// Compression of the layers inside the archive.
    #[arg(long, value_enum, default_value_t = CompressionArg::None)]
    pub compression: CompressionArg,
    /// Images to save (name:tag, repository for all its tags, or ID).
    #[arg(required = true)]
    pub images: Vec<String>,
}

/// `--format` values.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FormatArg {
    Docker,
    Oci,
}

/// `--compression` values.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum CompressionArg {
    None,
    Gzip,
    Zstd,
}

pub fn run(args: SaveArgs, root: &Path) -> Result<i32, CliError> {
    let opts = SaveOptions {
        format: match args.format {
            FormatArg::Docker => Format::Docker,
            FormatArg::Oci => Format::Oci,
        },
        compression: match args.compression {
            CompressionArg::None => Compression::None,
            CompressionArg::Gzip => Compression::Gzip,
            CompressionArg::Zstd => Compression::Zstd,
        },
        ..SaveOptions::default()
    };
    match &args.output {
        None => {
            let stdout = std::io::stdout();
            // docker's check, word for word: a tar on a terminal is noise.
            if stdout.is_terminal() {
                return Err(CliError(
                    "cowardly refusing to save to a terminal. Use the -o flag or redirect".into(),
                ));
            }
            let store = Store::open(root).map_err(CliError::from_error)?;
            let out = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
            save(&store, &args.images, &opts, out).map_err(CliError::from_error)?;
        }
        Some(path) => save_to_file(root, &args.images, &opts, path)?,
    }
    Ok(0)
}

/// Writes the archive to a temporary file next to `path` and renames it
/// into place once complete (as docker's CLI does), so a failed save never
/// leaves a truncated archive under the requested name; a FIFO or a
/// character device is written in place, never replaced
/// ([`destination::open_in_place`]).
fn save_to_file(
    root: &Path,
    images: &[String],
    opts: &SaveOptions,
    path: &Path,
) -> Result<(), CliError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        return Err(CliError(format!(
            "failed to save image: invalid output path: directory {:?} does not exist",
            dir.display().to_string()
        )));
    }
    let in_place = destination::open_in_place(path).map_err(|e| {
        CliError(format!(
            "failed to save image: {}: {e}",
            path.display(),
            e = Chain(&e)
        ))
    })?;
    let store = Store::open(root).map_err(CliError::from_error)?;
    if let Some(file) = in_place {
        let out = std::io::BufWriter::with_capacity(1 << 20, file);
        save(&store, images, opts, out).map_err(CliError::from_error)?;
        return Ok(());
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "archive".into());
    let tmp = dir.join(format!(".{name}.kiln-save-{}", std::process::id()));
    let result = (|| -> Result<(), CliError> {
        let file = std::fs::File::create(&tmp).map_err(|e| {
            CliError(format!(
                "failed to save image: {}: {e}",
                tmp.display(),
                e = Chain(&e)
            ))
        })?;
        let out = std::io::BufWriter::with_capacity(1 << 20, file);
        save(&store, images, opts, out).map_err(CliError::from_error)?;
        std::fs::rename(&tmp, path).map_err(|e| {
            CliError(format!(
                "failed to save image: {}: {e}",
                path.display(),
                e = Chain(&e)
            ))
        })
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
