//! `kiln history IMAGE`: the steps that made an image.

use super::table::{ago, ellipsis, human_size, Table};
use super::CliError;
use crate::cache::Store;
use crate::describe::history::rows;
use clap::Args;
use std::path::Path;

/// Flags of `kiln history`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Don't truncate output.
    #[arg(long)]
    pub no_trunc: bool,
    /// Only show image IDs.
    #[arg(short, long)]
    pub quiet: bool,
    /// The image (name, ID or ID prefix).
    pub image: String,
}

/// docker truncates CREATED BY to this many characters.
const CREATED_BY_WIDTH: usize = 45;

pub fn run(args: HistoryArgs, root: &Path) -> Result<i32, CliError> {
    let store = Store::open(root).map_err(CliError::from_error)?;
    let image = store.image(&args.image).map_err(CliError::from_error)?;
    let id = |r: &crate::describe::history::HistoryRow| match &r.id {
        Some(d) if args.no_trunc => d.to_string(),
        Some(d) => d.short().to_string(),
        None => "<missing>".into(),
    };
    if args.quiet {
        for r in rows(&image) {
            println!("{}", id(&r));
        }
        return Ok(0);
    }
    let mut t = Table::new(&["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"]);
    for r in rows(&image) {
        let by = r.created_by.replace('\t', " ");
        let by = if args.no_trunc {
            by
        } else {
            ellipsis(&by, CREATED_BY_WIDTH)
        };
        t.row(vec![
            id(&r),
            ago(r.created.as_deref()),
            by,
            human_size(r.size),
            r.comment.clone(),
        ]);
    }
    print!("{}", t.render());
    Ok(0)
}
