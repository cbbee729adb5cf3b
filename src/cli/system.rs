//! `kiln system df` (in [`super::system_df`]) and `kiln system check [--repair]`: is the store's database in agreement
//! with its files? (kiln's own command: docker has no equivalent, its
//! daemon owns the store.)

use super::CliError;
use crate::cache::Store;
use clap::{Args, Subcommand};
use std::path::Path;

/// `kiln system` subcommands.
#[derive(Debug, Subcommand)]
pub enum SystemCommand {
    /// Check the store: rows against files, blob digests, snapshots.
    Check(CheckArgs),
    /// Show disk usage: images, containers, local volumes, build cache.
    Df(super::system_df::DfArgs),
    /// Remove stopped containers, unused networks, dangling images and
    /// build cache (and with --volumes anonymous volumes).
    Prune(super::system_prune::PruneArgs),
}

/// Flags of `kiln system check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Drop records whose files are gone (and what depends on them) and
    /// remove files nothing records.
    #[arg(long)]
    pub repair: bool,
}

/// Runs `kiln system ...`; returns the exit code: 0 when the store is
/// sound (after repairing, with `--repair`), 1 when something is wrong.
pub fn run(cmd: SystemCommand, root: &Path) -> Result<i32, CliError> {
    match cmd {
        SystemCommand::Df(a) => super::system_df::run(a, root),
        SystemCommand::Prune(a) => super::system_prune::run(a, root),
        SystemCommand::Check(a) => {
            let store = Store::open(root).map_err(CliError::from_error)?;
            crate::container::reap_dead_removals(root);
            let found = if a.repair {
                store.repair()
            } else {
                store.check()
            }
            .map_err(CliError::from_error)?;
            for p in &found {
                println!("{p}");
            }
            if found.is_empty() {
                println!("store {}: ok", root.display());
                return Ok(0);
            }
            if !a.repair {
                println!(
                    "{} problem(s); `kiln system check --repair` fixes them",
                    found.len()
                );
                return Ok(1);
            }
            let left = store.check().map_err(CliError::from_error)?;
            for p in &left {
                println!("still wrong: {p}");
            }
            if left.is_empty() {
                println!("repaired {} problem(s)", found.len());
                Ok(0)
            } else {
                Ok(1)
            }
        }
    }
}
