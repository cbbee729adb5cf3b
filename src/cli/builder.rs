//! `kiln builder prune`: forget the build cache (docker's `builder prune`),
//! all of it, or down to `--keep-storage` and `--filter until=`.

use super::CliError;
use crate::cache::{PrunePolicy, Store};
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
    /// Keep at most this much build cache (docker's sizes: 10GB, 512MB),
    /// removing the least recently used records first.
    #[arg(long, value_name = "SIZE")]
    pub keep_storage: Option<String>,
    /// `until=DURATION`: remove only records unused for longer than this
    /// (Go durations: 24h, 1h30m); `unused-for=` is buildx's older name.
    #[arg(long, value_name = "FILTER")]
    pub filter: Vec<String>,
}

impl PruneArgs {
    /// The policy the flags ask for; `None` for a prune of everything.
    fn policy(&self) -> Result<Option<PrunePolicy>, CliError> {
        let mut policy = PrunePolicy::default();
        if let Some(size) = &self.keep_storage {
            let bytes = crate::units::ram_in_bytes(size).ok_or_else(|| {
                CliError(format!(
                    "--keep-storage {size:?}: expected a size such as 10GB or 512MB"
                ))
            })?;
            policy.keep_bytes = Some(bytes);
        }
        for f in &self.filter {
            // buildx reads `until` (and its older name `unused-for`) with
            // time.ParseDuration (docker/buildx `commands/prune.go`,
            // `toBuildkitPruneInfo`); other filters name records by fields
            // kiln's records do not have.
            match f.split_once('=') {
                Some(("until" | "unused-for", v)) => {
                    let d = crate::units::go_duration(v).ok_or_else(|| {
                        CliError(format!(
                            "--filter {f:?}: until expects a duration (e.g. 24h, 1h30m)"
                        ))
                    })?;
                    policy.keep_duration = Some(d);
                }
                _ => {
                    return Err(CliError(format!(
                        "--filter {f:?}: expected until=DURATION (the only filter kiln knows)"
                    )))
                }
            }
        }
        Ok((policy != PrunePolicy::default()).then_some(policy))
    }
}

/// Runs `kiln builder ...`; returns the exit code.
pub fn run(cmd: BuilderCommand, root: &Path) -> Result<i32, CliError> {
    match cmd {
        BuilderCommand::Prune(args) => {
            let policy = args.policy()?;
            let store = Store::open(root).map_err(CliError::from_error)?;
            // Containers of killed `kiln run --rm`s hold leases no more.
            crate::container::reap_dead_removals(root);
            match policy {
                None => {
                    let removed = store.build_cache_prune().map_err(CliError::from_error)?;
                    println!("Deleted build cache records: {removed}");
                    // Git checkouts are build cache too (BuildKit prunes its
                    // git snapshots); those a running build uses stay.
                    let checkouts = crate::exec::git_source::prune(&store).map_err(|e| {
                        CliError(format!(
                            "removing git checkouts: {}",
                            crate::error_chain::Chain(&e)
                        ))
                    })?;
                    if checkouts > 0 {
                        println!("Deleted git checkouts: {checkouts}");
                    }
                }
                Some(policy) => {
                    let report = store
                        .build_cache_prune_with(&policy)
                        .map_err(CliError::from_error)?;
                    println!("Deleted build cache records: {}", report.removed);
                    println!("Build cache kept: {} bytes", report.kept_bytes);
                }
            }
            Ok(0)
        }
    }
}
