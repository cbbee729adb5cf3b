//! `kiln inspect [--format TEMPLATE] NAME...`: docker's JSON of each
//! container or image (containers first, as docker looks them up).

use super::template::Template;
use super::CliError;
use crate::cache::Store;
use crate::describe::inspect::view;
use clap::Args;
use std::path::Path;

/// Flags of `kiln inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Format the output with a Go template (subset: fields, json, index,
    /// join, len, upper, lower).
    #[arg(short, long)]
    pub format: Option<String>,
    /// Containers or images to inspect (names, IDs or ID prefixes).
    #[arg(required = true)]
    pub images: Vec<String>,
}

pub fn run(args: InspectArgs, root: &Path) -> Result<i32, CliError> {
    let template = match &args.format {
        Some(f) => Some(Template::parse(f).map_err(CliError::from_error)?),
        None => None,
    };
    let store = Store::open(root).map_err(CliError::from_error)?;
    let _ = crate::container::state::reconcile(&store);
    let mut values = Vec::new();
    let mut code = 0;
    for spec in &args.images {
        if let Ok(Some(row)) = store.find_container(spec) {
            values.push(Item::Container(super::container::inspect::view(root, &row)));
            continue;
        }
        match store.image(spec) {
            Ok(img) => values.push(Item::Image(Box::new(view(&img)))),
            Err(crate::cache::StoreError::ImageNotFound(_)) => {
                eprintln!("Error: No such object: {spec}");
                code = 1;
            }
            Err(e) => return Err(CliError::from_error(e)),
        }
    }
    match template {
        None => println!("{}", super::container::inspect::to_json(&values)),
        Some(t) => {
            for v in &values {
                let data = serde_json::to_value(v).map_err(CliError::from_error)?;
                println!("{}", t.render(&data).map_err(CliError::from_error)?);
            }
        }
    }
    Ok(code)
}

/// One inspected object; serialized as the object itself, so an image
/// keeps its fields in docker's order.
#[derive(serde::Serialize)]
#[serde(untagged)]
enum Item {
    Container(serde_json::Value),
    Image(Box<crate::describe::inspect::InspectView>),
}
