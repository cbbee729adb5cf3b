//! `kiln rmi [-f] IMAGE...`: untag and delete images like `docker rmi`.

use super::CliError;
use crate::cache::{RemoveEvent, Store};
use crate::error_chain::Chain;
use clap::Args;
use std::path::Path;

/// Flags of `kiln rmi`.
#[derive(Debug, Args)]
pub struct RmiArgs {
    /// Remove an image referenced by several repositories, by ID.
    #[arg(short, long)]
    pub force: bool,
    /// Images to remove (names, IDs or ID prefixes).
    #[arg(required = true)]
    pub images: Vec<String>,
}

/// Prints events as docker does.
pub fn print_events(events: &[RemoveEvent], lowercase: bool) {
    for e in events {
        let (word, what) = match e {
            RemoveEvent::Untagged(n) => ("Untagged", n.clone()),
            RemoveEvent::Deleted(d) => ("Deleted", d.to_string()),
        };
        if lowercase {
            println!("{}: {what}", word.to_lowercase());
        } else {
            println!("{word}: {what}");
        }
    }
}

pub fn run(args: RmiArgs, root: &Path) -> Result<i32, CliError> {
    let store = Store::open(root).map_err(CliError::from_error)?;
    let mut code = 0;
    // Like docker: report each failure and go on with the others.
    for spec in &args.images {
        match store.remove_image(spec, args.force) {
            Ok(events) => print_events(&events, false),
            Err(e) => {
                eprintln!("Error: {e}", e = Chain(&e));
                code = 1;
            }
        }
    }
    Ok(code)
}
