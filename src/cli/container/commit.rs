//! `kiln commit`, docker's flags and output (docker/cli
//! `cli/command/container/commit.go`): prints the new image's ID.

use super::report;
use crate::cache::Store;
use crate::cli::CliError;
use crate::container::commit::{self, CommitOptions};
use crate::error_chain::Chain;
use crate::image::reference::ImageRef;
use clap::Args;
use std::path::Path;

/// Flags of `kiln commit`.
#[derive(Debug, Args)]
pub struct CommitArgs {
    /// Author (e.g. "Jane <jane@example.com>").
    #[arg(short, long)]
    pub author: Option<String>,
    /// Apply a Dockerfile instruction to the image's config.
    #[arg(short, long = "change", value_name = "INSTR")]
    pub change: Vec<String>,
    /// Commit message.
    #[arg(short, long)]
    pub message: Option<String>,
    /// Pause the container during commit (`--pause=false` to not).
    #[arg(
        short,
        long,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        default_value = "true",
        action = clap::ArgAction::Set,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub pause: bool,
    /// The container.
    pub container: String,
    /// The new image's name.
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub name: Option<String>,
}

/// `kiln commit`.
pub fn commit(a: CommitArgs, root: &Path) -> Result<i32, CliError> {
    let name = match a.name.as_deref().map(ImageRef::parse).transpose() {
        Ok(n) => n,
        Err(e) => return Ok(report(Chain(&e))),
    };
    let store = Store::open(root).map_err(|e| CliError(format!("Error: {}", Chain(&e))))?;
    let opts = CommitOptions {
        changes: a.change,
        message: a.message,
        author: a.author,
        pause: a.pause,
        name,
    };
    match commit::commit(&store, &a.container, &opts) {
        Ok(image) => {
            println!("{}", image.id);
            Ok(0)
        }
        Err(e) => Ok(report(Chain(&e))),
    }
}
