//! `kiln builder prune`: forget the build cache (docker's `builder prune`).

use super::CliError;
use crate::cache::Store;
use clap::{Args, Subcommand};
use std::path::Path;

/// `kiln builder` subcommands.
#[derive(Debug, Subcommand)]
pub enum BuilderCommand {
    /// Remove the build cache (step results kept for later builds).
    Prune(PruneArgs),
}

/// Flags of `kiln builder prune`.
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Do not ask for confirmation (kiln never asks; accepted for docker's
    /// command lines).
    #[arg(short, long)]
    pub force: bool,
}

/// Runs `kiln builder ...`; returns the exit code.
pub fn run(cmd: BuilderCommand, root: &Path) -> Result<i32, CliError> {
    match cmd {
        BuilderCommand::Prune(_) => {
            let store = Store::open(root).map_err(CliError::from_error)?;
            // Containers of killed `kiln run --rm`s hold leases no more.
            crate::container::reap_dead_removals(root);
            let removed = store.build_cache_prune().map_err(CliError::from_error)?;
            println!("Deleted build cache records: {removed}");
            Ok(0)
        }
    }
}
