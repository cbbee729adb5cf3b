//! `kiln system df`: docker's disk usage summary (docker/cli
//! `cli/command/system/df.go` and `cli/command/formatter/disk_usage.go`):
//! TYPE / TOTAL / ACTIVE / SIZE / RECLAIMABLE for images, containers,
//! local volumes and build cache, computed from the store.
//!
//! Each snapshot is counted once however many images share it. An image
//! is active when a container (in any state) was made from it, a
//! container when it is running or paused, a volume when a container
//! uses it; reclaimable is what is not active. Build cache counts the
//! snapshots only build cache records hold (those an image holds are in
//! the image line), all reclaimable as `builder prune` would free them.
//! `-v` prints docker's detailed tables instead ([`super::system_df_verbose`]).

use super::table::{human_size_4, Table};
use super::CliError;
use crate::cache::{LayerUsage, Store};
use crate::container::state::{self, Status};
use crate::error_chain::Chain;
use crate::volume::VolumeStore;
use clap::Args;
use std::collections::BTreeSet;
use std::path::Path;

/// Flags of `kiln system df`.
#[derive(Debug, Args)]
pub struct DfArgs {
    /// Show detailed information on space usage.
    #[arg(short, long)]
    pub verbose: bool,
}

/// One line of the summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageLine {
    /// How many there are.
    pub total: usize,
    /// How many are in use.
    pub active: usize,
    /// Bytes they take.
    pub size: u64,
    /// Bytes removing the unused ones would free.
    pub reclaimable: u64,
}

/// The image line: snapshots counted once; those of images in use are
/// not reclaimable.
pub fn images_line(u: &LayerUsage, used_images: &BTreeSet<String>) -> UsageLine {
    let size_of = |chains: &BTreeSet<&String>| chains.iter().filter_map(|c| u.sizes.get(*c)).sum();
    let all: BTreeSet<&String> = u.images.values().flatten().collect();
    let held: BTreeSet<&String> = u
        .images
        .iter()
        .filter(|(id, _)| used_images.contains(*id))
        .flat_map(|(_, chains)| chains)
        .collect();
    let size: u64 = size_of(&all);
    UsageLine {
        total: u.images.len(),
        active: u
            .images
            .keys()
            .filter(|id| used_images.contains(*id))
            .count(),
        size,
        reclaimable: size - size_of(&held),
    }
}

/// The build cache line: what only build cache records hold.
pub fn cache_line(u: &LayerUsage) -> UsageLine {
    let in_images: BTreeSet<&String> = u.images.values().flatten().collect();
    let size = u
        .cache_chains
        .iter()
        .filter(|c| !in_images.contains(c))
        .filter_map(|c| u.sizes.get(c))
        .sum();
    UsageLine {
        total: u.cache_records,
        active: 0,
        size,
        reclaimable: size,
    }
}

/// Bytes of the regular files under `dir` (hard links once; symlinks not
/// followed); missing means 0.
pub(super) fn tree_size(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut seen = BTreeSet::new();
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(m) = std::fs::symlink_metadata(e.path()) else {
                continue;
            };
            if m.is_dir() {
                stack.push(e.path());
            } else if m.is_file() && seen.insert((m.dev(), m.ino())) {
                total += m.len();
            }
        }
    }
    total
}

/// docker's RECLAIMABLE cell: the size and its share of the total.
fn reclaimable_cell(line: &UsageLine, with_percent: bool) -> String {
    if with_percent && line.size > 0 {
        format!(
            "{} ({}%)",
            human_size_4(line.reclaimable),
            line.reclaimable * 100 / line.size
        )
    } else {
        human_size_4(line.reclaimable)
    }
}

/// `kiln system df [-v]`.
pub fn run(a: DfArgs, root: &Path) -> Result<i32, CliError> {
    let fail = |e: &dyn std::error::Error| CliError(format!("Error: {}", Chain(e)));
    let store = Store::open(root).map_err(|e| fail(&e))?;
    state::reconcile(&store).map_err(|e| fail(&e))?;
    let usage = store.layer_usage().map_err(|e| fail(&e))?;
    let rows = store.list_containers().map_err(|e| fail(&e))?;

    let used_images: BTreeSet<String> = rows.iter().filter_map(|r| r.image_id.clone()).collect();
    let mut containers = UsageLine {
        total: rows.len(),
        active: 0,
        size: 0,
        reclaimable: 0,
    };
    for r in &rows {
        let size = tree_size(&state::state_dir(root, &r.id).join("upper"));
        containers.size += size;
        if Status::parse(&r.state).is_live() {
            containers.active += 1;
        } else {
            containers.reclaimable += size;
        }
    }
    let volume_store = VolumeStore::new(root);
    let mut volumes = UsageLine {
        total: 0,
        active: 0,
        size: 0,
        reclaimable: 0,
    };
    let mut volume_rows = Vec::new();
    for v in volume_store.list().map_err(|e| fail(&e))? {
        let size = tree_size(&v.mountpoint);
        let users = volume_store.users(&v.name);
        volumes.total += 1;
        volumes.size += size;
        if users.is_empty() {
            volumes.reclaimable += size;
        } else {
            volumes.active += 1;
        }
        volume_rows.push((v.name, users, size));
    }
    if a.verbose {
        let mut images = store.list_images().map_err(|e| fail(&e))?;
        // Newest first, as `docker images`.
        images.sort_by_key(|i| std::cmp::Reverse(i.added));
        let containers: Vec<_> = rows
            .iter()
            .rev()
            .map(|r| {
                let size = tree_size(&state::state_dir(root, &r.id).join("upper"));
                let mounted = volume_rows
                    .iter()
                    .filter(|(_, users, _)| users.contains(&r.id))
                    .count();
                (r.clone(), size, mounted)
            })
            .collect();
        let volumes: Vec<_> = volume_rows
            .into_iter()
            .map(
                |(name, users, size)| super::system_df_verbose::VolumeUsage {
                    name,
                    links: users.len(),
                    size,
                },
            )
            .collect();
        let cache_size = cache_line(&usage).size;
        print!(
            "{}",
            super::system_df_verbose::render(&usage, &images, &containers, &volumes, cache_size)
        );
        return Ok(0);
    }

    let mut table = Table::new(&["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]);
    for (name, line, percent) in [
        ("Images", images_line(&usage, &used_images), true),
        ("Containers", containers, true),
        ("Local Volumes", volumes, true),
        ("Build Cache", cache_line(&usage), false),
    ] {
        table.row(vec![
            name.to_string(),
            line.total.to_string(),
            line.active.to_string(),
            human_size_4(line.size),
            reclaimable_cell(&line, percent),
        ]);
    }
    print!("{}", table.render());
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage() -> LayerUsage {
        let mut u = LayerUsage::default();
        for (c, s) in [("base", 1000), ("a", 100), ("b", 10), ("tmp", 7)] {
            u.sizes.insert(c.into(), s);
        }
        u.images
            .insert("img-a".into(), ["base", "a"].map(String::from).into());
        u.images
            .insert("img-b".into(), ["base", "b"].map(String::from).into());
        u.cache_records = 2;
        u.cache_chains = ["base", "tmp"].map(String::from).into();
        u
    }

    #[test]
    fn a_layer_shared_by_images_is_counted_once_and_held_layers_are_not_reclaimable() {
        let used = ["img-a".to_string()].into();
        let line = images_line(&usage(), &used);
        assert_eq!(
            line,
            UsageLine {
                total: 2,
                active: 1,
                size: 1110,
                reclaimable: 10
            }
        );
    }

    #[test]
    fn build_cache_counts_only_what_no_image_holds() {
        let line = cache_line(&usage());
        assert_eq!((line.total, line.size, line.reclaimable), (2, 7, 7));
    }

    #[test]
    fn sizes_print_as_go_units_human_size() {
        assert_eq!(human_size_4(0), "0B");
        assert_eq!(human_size_4(212), "212B");
        assert_eq!(human_size_4(16_430_000), "16.43MB");
        assert_eq!(human_size_4(1_500), "1.5kB");
        assert_eq!(human_size_4(4_400_000), "4.4MB");
    }
}
