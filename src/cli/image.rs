//! `kiln image ls|rm|inspect|tag|history|import|save|load|prune`: docker's
//! management-command spellings of the image commands.

use super::{history, images, import, inspect, load, rmi, save, table::human_size, tag, CliError};
use crate::cache::Store;
use clap::{Args, Subcommand};
use std::io::{BufRead, Write};
use std::path::Path;

/// Subcommands of `kiln image`.
#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// List images.
    #[command(visible_alias = "list")]
    Ls(images::ImagesArgs),
    /// Remove images.
    #[command(visible_alias = "remove")]
    Rm(rmi::RmiArgs),
    /// Show image details as JSON.
    Inspect(inspect::InspectArgs),
    /// Give an image another name.
    Tag(tag::TagArgs),
    /// Show the steps that made an image.
    History(history::HistoryArgs),
    /// Make an image from a rootfs tarball.
    Import(import::ImportArgs),
    /// Save images to a tar archive.
    Save(save::SaveArgs),
    /// Load images from a tar archive or STDIN.
    Load(load::LoadArgs),
    /// Remove unused images.
    Prune(PruneArgs),
}

/// Flags of `kiln image prune`.
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Remove all images no running container uses, not just untagged ones.
    #[arg(short, long)]
    pub all: bool,
    /// Do not prompt for confirmation.
    #[arg(short, long)]
    pub force: bool,
}

pub fn run(cmd: ImageCommand, root: &Path) -> Result<i32, CliError> {
    match cmd {
        ImageCommand::Ls(a) => images::run(a, root),
        ImageCommand::Rm(a) => rmi::run(a, root),
        ImageCommand::Inspect(a) => inspect::run(a, root),
        ImageCommand::Tag(a) => tag::run(a, root),
        ImageCommand::History(a) => history::run(a, root),
        ImageCommand::Import(a) => import::run(a, root),
        ImageCommand::Save(a) => save::run(a, root),
        ImageCommand::Load(a) => load::run(a, root),
        ImageCommand::Prune(a) => prune(a, root),
    }
}

fn prune(args: PruneArgs, root: &Path) -> Result<i32, CliError> {
    if !args.force {
        let warning = if args.all {
            "WARNING! This will remove all images without at least one container associated to them."
        } else {
            "WARNING! This will remove all dangling images."
        };
        print!("{warning}\nAre you sure you want to continue? [y/N] ");
        let _ = std::io::stdout().flush();
        let mut answer = String::new();
        let _ = std::io::stdin().lock().read_line(&mut answer);
        if !matches!(answer.trim(), "y" | "Y" | "yes" | "Yes") {
            return Ok(0);
        }
    }
    let store = Store::open(root).map_err(CliError::from_error)?;
    // A killed `kiln run --rm` no longer keeps its image "in use".
    crate::container::reap_dead_removals(root);
    let (events, bytes) = store.prune_images(args.all).map_err(CliError::from_error)?;
    if !events.is_empty() {
        println!("Deleted Images:");
        rmi::print_events(&events, true);
        println!();
    }
    println!("Total reclaimed space: {}", human_size(bytes));
    Ok(0)
}
