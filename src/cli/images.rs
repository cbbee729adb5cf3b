//! `kiln images [REPOSITORY[:TAG]]`: list local images like `docker images`.

use super::table::{ago, human_size, Table};
use super::CliError;
use crate::cache::{ImageSummary, Store};
use crate::image::reference::ImageRef;
use clap::Args;
use std::path::Path;

/// Flags of `kiln images`.
#[derive(Debug, Args)]
pub struct ImagesArgs {
    /// Show all images (kiln keeps no intermediate images; accepted for
    /// compatibility).
    #[arg(short, long)]
    pub all: bool,
    /// Show digests.
    #[arg(long)]
    pub digests: bool,
    /// Only show image IDs.
    #[arg(short, long)]
    pub quiet: bool,
    /// Don't truncate output.
    #[arg(long)]
    pub no_trunc: bool,
    /// Only images of this repository (and tag).
    pub reference: Option<String>,
}

/// One output row.
struct Row {
    repo: String,
    tag: String,
    digest: String,
    id: String,
    created: String,
    size: String,
}

fn rows(img: &ImageSummary, no_trunc: bool, filter: Option<&ImageRef>) -> Vec<Row> {
    let id = if no_trunc {
        img.id.to_string()
    } else {
        img.id.short().to_string()
    };
    let base = |repo: String, tag: String, digest: String| Row {
        repo,
        tag,
        digest,
        id: id.clone(),
        created: ago(img.created.as_deref()),
        size: human_size(img.size),
    };
    let digest_for = |name: &str| {
        img.repo_digests
            .iter()
            .find(|d| d.name() == name)
            .and_then(|d| d.digest())
            .map(|d| d.to_string())
            .unwrap_or_else(|| "<none>".into())
    };
    let matches = |r: &ImageRef| match filter {
        None => true,
        Some(f) => f.name() == r.name() && f.tag().is_none_or(|t| r.tag() == Some(t)),
    };
    let mut out = Vec::new();
    for n in img.names.iter().filter(|r| matches(r)) {
        out.push(base(
            n.familiar_name(),
            n.tag().unwrap_or("<none>").to_string(),
            digest_for(&n.name()),
        ));
    }
    if img.names.is_empty() && filter.is_none() {
        if img.repo_digests.is_empty() {
            out.push(base("<none>".into(), "<none>".into(), "<none>".into()));
        }
        for d in &img.repo_digests {
            out.push(base(
                d.familiar_name(),
                "<none>".into(),
                digest_for(&d.name()),
            ));
        }
    }
    out
}

pub fn run(args: ImagesArgs, root: &Path) -> Result<i32, CliError> {
    let filter = match &args.reference {
        Some(r) => Some(ImageRef::parse_unnormalized_tag(r).map_err(CliError::from_error)?),
        None => None,
    };
    let store = Store::open(root).map_err(CliError::from_error)?;
    let images = store.list_images().map_err(CliError::from_error)?;
    let all: Vec<Row> = images
        .iter()
        .flat_map(|i| rows(i, args.no_trunc, filter.as_ref()))
        .collect();
    if args.quiet {
        let mut seen = Vec::new();
        for r in all {
            if !seen.contains(&r.id) {
                println!("{}", r.id);
                seen.push(r.id);
            }
        }
        return Ok(0);
    }
    let mut headers = vec!["REPOSITORY", "TAG"];
    if args.digests {
        headers.push("DIGEST");
    }
    headers.extend(["IMAGE ID", "CREATED", "SIZE"]);
    let mut t = Table::new(&headers);
    for r in all {
        let mut cells = vec![r.repo, r.tag];
        if args.digests {
            cells.push(r.digest);
        }
        cells.extend([r.id, r.created, r.size]);
        t.row(cells);
    }
    print!("{}", t.render());
    Ok(0)
}
