//! `kiln system prune [-a] [--volumes] [-f]`: the prunes of each kind in
//! docker's order (docker/cli `cli/command/system/prune.go`, `runPrune`):
//! stopped containers, networks no container uses, with `--volumes`
//! anonymous volumes no container uses, dangling images (with `-a` every
//! image no container uses), then the build cache; docker's "Deleted …"
//! sections and "Total reclaimed space".
//!
//! `--filter` is docker's (see [`super::prune_filter`]), applied to each
//! kind: a container's labels are its image's (docker merges the image's
//! labels into the container's config), networks have none; `until` with
//! `--volumes` is refused as docker/cli `runPrune` refuses it; a label
//! filter keeps the build cache (its records have no labels), `until`
//! keeps records used since then (moby `builder-next` turns it into
//! BuildKit's keep-duration).
//!
//! Differs from docker: build cache records have no IDs to list, so their
//! count is printed; without `-f` the warning is shown and an answer other
//! than `y` cancels (status 0, as `kiln image prune`).

use super::prune_filter::PruneFilter;
use super::system_df::tree_size;
use super::table::human_size_4;
use super::CliError;
use crate::cache::{Store, StoreLayout};
use crate::container::state::{self, Status};
use crate::error_chain::Chain;
use crate::volume::VolumeStore;
use clap::Args;
use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::Path;

/// Flags of `kiln system prune`.
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Remove every unused image, not only dangling ones.
    #[arg(short, long)]
    pub all: bool,
    /// Prune anonymous volumes too.
    #[arg(long)]
    pub volumes: bool,
    /// Do not prompt for confirmation.
    #[arg(short, long)]
    pub force: bool,
    /// Provide filter values (`until=24h`, `label=KEY[=VALUE]`,
    /// `label!=KEY[=VALUE]`).
    #[arg(long, value_name = "FILTER")]
    pub filter: Vec<String>,
}

/// docker's warning, one line per kind that will go.
fn warning(a: &PruneArgs) -> String {
    let mut w = String::from(
        "WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n",
    );
    if a.volumes {
        w.push_str("  - all anonymous volumes not used by at least one container\n");
    }
    w.push_str(if a.all {
        "  - all images without at least one container associated to them\n  - all build cache\n"
    } else {
        "  - all dangling images\n  - unused build cache\n"
    });
    if !a.filter.is_empty() {
        w.push_str("\n  Items to be pruned will be filtered with:\n");
        for f in &a.filter {
            w.push_str(&format!("  - {f}\n"));
        }
    }
    w
}

fn section(title: &str, lines: &[String]) {
    if !lines.is_empty() {
        println!("{title}:");
        for l in lines {
            println!("{l}");
        }
        println!();
    }
}

fn snapshot_bytes(store: &Store) -> Result<u64, CliError> {
    let u = store.layer_usage().map_err(CliError::from_error)?;
    Ok(u.sizes.values().sum())
}

/// `kiln system prune`.
pub fn run(a: PruneArgs, root: &Path) -> Result<i32, CliError> {
    let now = super::prune_filter::unix_now();
    let filter = match PruneFilter::parse(&a.filter, now) {
        Ok(f) => f,
        Err(e) => return Ok(super::usage_error(&e)),
    };
    if a.volumes && filter.until.is_some() {
        return Ok(super::usage_error(
            "ERROR: The \"until\" filter is not supported with \"--volumes\"",
        ));
    }
    if !a.force {
        print!("{}\nAre you sure you want to continue? [y/N] ", warning(&a));
        let _ = std::io::stdout().flush();
        let mut answer = String::new();
        let _ = std::io::stdin().lock().read_line(&mut answer);
        if !matches!(answer.trim(), "y" | "Y" | "yes" | "Yes") {
            return Ok(0);
        }
    }
    let fail = |e: &dyn std::error::Error| CliError(format!("Error: {}", Chain(e)));
    let store = Store::open(root).map_err(|e| fail(&e))?;
    state::reconcile(&store).map_err(|e| fail(&e))?;
    let snapshots_before = snapshot_bytes(&store)?;

    // What each stopped container wrote, measured before it goes.
    let written: BTreeMap<String, u64> = store
        .list_containers()
        .map_err(|e| fail(&e))?
        .into_iter()
        .filter(|r| !Status::parse(&r.state).is_live())
        .map(|r| {
            let size = tree_size(&state::state_dir(root, &r.id).join("upper"));
            (r.id, size)
        })
        .collect();
    let containers = crate::container::lifecycle::prune_where(&store, |r| {
        super::prune_filter::container_allowed(&filter, &store, r)
    })
    .map_err(|e| fail(&e))?;
    let mut reclaimed: u64 = containers.iter().filter_map(|id| written.get(id)).sum();
    section("Deleted Containers", &containers);

    let layout = StoreLayout::new(root);
    // docker's network prune: stale endpoints, then every user-defined
    // network no container is on and the filter selects (the default
    // bridge is never removed).
    let gone = crate::network::prune_networks(&layout, |record| {
        filter.allows(Some(&record.created), &BTreeMap::new())
    })
    .map_err(|e| fail(&e))?;
    section("Deleted Networks", &gone);

    if a.volumes {
        let (removed, bytes) = VolumeStore::new(root)
            .prune(false, |v| filter.allows(None, &v.labels))
            .map_err(|e| fail(&e))?;
        reclaimed += bytes;
        section("Deleted Volumes", &removed);
    }

    crate::container::reap_dead_removals(root);
    let among = if filter.is_empty() {
        None
    } else {
        let images = store.list_images().map_err(|e| fail(&e))?;
        Some(
            images
                .iter()
                .map(|i| i.id.to_string())
                .filter(|id| {
                    let (created, labels) = super::prune_filter::image_facts(&store, id);
                    filter.allows(created.as_deref(), &labels)
                })
                .collect(),
        )
    };
    let (events, _) = store
        .prune_images_among(a.all, among.as_ref())
        .map_err(|e| fail(&e))?;
    if !events.is_empty() {
        println!("Deleted Images:");
        super::rmi::print_events(&events, true);
        println!();
    }

    let records = if filter.has_labels() {
        0
    } else if let Some(until) = filter.until {
        let keep = std::time::Duration::from_secs(now.0.saturating_sub(until.0).max(0) as u64);
        let policy = crate::cache::PrunePolicy {
            keep_bytes: None,
            keep_duration: Some(keep),
        };
        store
            .build_cache_prune_with(&policy)
            .map_err(|e| fail(&e))?
            .removed
    } else {
        store.build_cache_prune().map_err(|e| fail(&e))?
    };
    if records > 0 {
        println!("Deleted build cache records: {records}");
        println!();
    }
    // Images and build cache share snapshots: what both prunes freed is
    // what the store's snapshots shrank by, each counted once.
    reclaimed += snapshots_before.saturating_sub(snapshot_bytes(&store)?);
    println!("Total reclaimed space: {}", human_size_4(reclaimed));
    Ok(0)
}
