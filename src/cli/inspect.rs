//! `kiln inspect [--format TEMPLATE] IMAGE...`: docker's image JSON.

use super::template::Template;
use super::CliError;
use crate::cache::Store;
use crate::describe::inspect::{to_json, view};
use clap::Args;
use std::path::Path;

/// Flags of `kiln inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Format the output with a Go template (subset: fields, json, index,
    /// join, len, upper, lower).
    #[arg(short, long)]
    pub format: Option<String>,
    /// Images to inspect (names, IDs or ID prefixes).
    #[arg(required = true)]
    pub images: Vec<String>,
}

pub fn run(args: InspectArgs, root: &Path) -> Result<i32, CliError> {
    let template = match &args.format {
        Some(f) => Some(Template::parse(f).map_err(CliError::from_error)?),
        None => None,
    };
    let store = Store::open(root).map_err(CliError::from_error)?;
    let mut views = Vec::new();
    let mut code = 0;
    for spec in &args.images {
        match store.image(spec) {
            Ok(img) => views.push(view(&img)),
            Err(crate::cache::StoreError::ImageNotFound(_)) => {
                eprintln!("Error: No such object: {spec}");
                code = 1;
            }
            Err(e) => return Err(CliError::from_error(e)),
        }
    }
    match template {
        None => println!("{}", to_json(&views)),
        Some(t) => {
            for v in &views {
                let data = serde_json::to_value(v).map_err(CliError::from_error)?;
                println!("{}", t.render(&data).map_err(CliError::from_error)?);
            }
        }
    }
    Ok(code)
}
