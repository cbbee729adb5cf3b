//! `kiln system df -v`: docker's four detailed tables (docker/cli
//! `cli/command/formatter/disk_usage.go`, `verboseWriteTable`): images
//! with their shared and unique sizes, containers with what they wrote,
//! local volumes with how many containers use them, and the build cache
//! records.
//!
//! An image's SIZE is its snapshots' sizes; SHARED SIZE what of it other
//! images hold too, UNIQUE SIZE the rest (so SIZE = SHARED + UNIQUE).
//! A build cache record's SIZE is its own (top) snapshot, SHARED whether
//! an image or another record holds that snapshot too.
//!
//! Differs from docker: BuildKit's CACHE TYPE is `regular` for every kiln
//! record (kiln records only step results) and kiln keeps no use count,
//! so USAGE is `N/A`.

use super::container::ps_fields;
use super::table::{ago, human_size, human_size_4, Table};
use crate::cache::{ContainerRow, ImageSummary, LayerUsage};
use crate::image::timestamp::format_rfc3339;
use std::collections::BTreeMap;
use std::fmt::Write;

/// A volume as the table shows it: name, users, bytes.
pub struct VolumeUsage {
    /// Its name.
    pub name: String,
    /// How many containers use it.
    pub links: usize,
    /// Bytes under its `_data`.
    pub size: u64,
}

/// How many times each snapshot is held (by images, then by records).
fn holders(u: &LayerUsage) -> BTreeMap<&str, usize> {
    let mut n: BTreeMap<&str, usize> = BTreeMap::new();
    for c in u.images.values().flatten() {
        *n.entry(c).or_default() += 1;
    }
    n
}

fn when(secs: i64) -> String {
    ago(Some(&format_rfc3339(secs, 0)))
}

/// The four sections; `containers` with the bytes each wrote.
pub fn render(
    u: &LayerUsage,
    images: &[ImageSummary],
    containers: &[(ContainerRow, u64, usize)],
    volumes: &[VolumeUsage],
    cache_size: u64,
) -> String {
    let mut out = String::from("Images space usage:\n\n");
    let mut t = Table::new(&[
        "REPOSITORY",
        "TAG",
        "IMAGE ID",
        "CREATED",
        "SIZE",
        "SHARED SIZE",
        "UNIQUE SIZE",
        "CONTAINERS",
    ]);
    let in_images = holders(u);
    for i in images {
        let id = i.id.to_string();
        let chains = u.images.get(&id).cloned().unwrap_or_default();
        let size_of = |shared: bool| -> u64 {
            chains
                .iter()
                .filter(|c| (in_images.get(c.as_str()).copied().unwrap_or(0) > 1) == shared)
                .filter_map(|c| u.sizes.get(c))
                .sum()
        };
        let (shared, unique) = (size_of(true), size_of(false));
        // docker shows the first tag only, `<none>` for an untagged image.
        let (repo, tag) = match i.names.iter().find(|n| n.tag().is_some()) {
            Some(n) => (n.familiar_name(), n.tag().unwrap_or("<none>").to_string()),
            None => ("<none>".to_string(), "<none>".to_string()),
        };
        let users = containers
            .iter()
            .filter(|(r, _, _)| r.image_id.as_deref() == Some(id.as_str()))
            .count();
        t.row(vec![
            repo,
            tag,
            id.trim_start_matches("sha256:").chars().take(12).collect(),
            ago(i.created.as_deref()),
            human_size(shared + unique),
            human_size(shared),
            human_size(unique),
            users.to_string(),
        ]);
    }
    out.push_str(&t.render());

    out.push_str("\nContainers space usage:\n\n");
    let mut t = Table::new(&[
        "CONTAINER ID",
        "IMAGE",
        "COMMAND",
        "LOCAL VOLUMES",
        "SIZE",
        "CREATED",
        "STATUS",
        "NAMES",
    ]);
    for (row, size, volumes) in containers {
        let f = ps_fields(row, true);
        let cell = |k: &str| f[k].as_str().unwrap_or_default().to_string();
        t.row(vec![
            cell("ID"),
            cell("Image"),
            cell("Command"),
            volumes.to_string(),
            human_size(*size),
            cell("RunningFor"),
            cell("Status"),
            cell("Names"),
        ]);
    }
    out.push_str(&t.render());

    out.push_str("\nLocal Volumes space usage:\n\n");
    let mut t = Table::new(&["VOLUME NAME", "LINKS", "SIZE"]);
    for v in volumes {
        t.row(vec![
            v.name.clone(),
            v.links.to_string(),
            human_size_4(v.size),
        ]);
    }
    out.push_str(&t.render());

    let _ = write!(out, "\nBuild cache usage: {}\n\n", human_size_4(cache_size));
    let mut t = Table::new(&[
        "CACHE ID",
        "CACHE TYPE",
        "SIZE",
        "CREATED",
        "LAST USED",
        "USAGE",
        "SHARED",
    ]);
    let mut held = in_images;
    for r in &u.cache {
        for c in &r.chains {
            *held.entry(c).or_default() += 1;
        }
    }
    for r in &u.cache {
        let top = r.chains.last().map(String::as_str).unwrap_or_default();
        t.row(vec![
            r.key
                .trim_start_matches("sha256:")
                .chars()
                .take(12)
                .collect(),
            "regular".into(),
            human_size(u.sizes.get(top).copied().unwrap_or(0)),
            when(r.added),
            when(r.used),
            "N/A".into(),
            (held.get(top).copied().unwrap_or(0) > 1).to_string(),
        ]);
    }
    out.push_str(&t.render());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::CacheRecordUsage;

    #[test]
    fn shared_and_unique_sizes_add_up_and_shared_records_say_so() {
        let mut u = LayerUsage::default();
        for (c, s) in [("base", 1000), ("a", 100), ("b", 10)] {
            u.sizes.insert(c.into(), s);
        }
        let id = "sha256:".to_string() + &"ab".repeat(32);
        u.images
            .insert(id.clone(), ["base", "a"].map(String::from).into());
        u.images
            .insert("sha256:other".into(), ["base"].map(String::from).into());
        u.cache.push(CacheRecordUsage {
            key: "sha256:".to_string() + &"cd".repeat(32),
            added: 0,
            used: 0,
            chains: vec!["base".into(), "b".into()],
        });
        let image = ImageSummary {
            id: id.parse().unwrap(),
            names: vec!["busybox:latest".parse().unwrap()],
            repo_digests: vec![],
            created: None,
            size: 0,
            added: 0,
        };
        let out = render(&u, &[image], &[], &[], 10);
        let line = |start: &str| -> Vec<String> {
            out.lines()
                .find(|l| l.starts_with(start))
                .unwrap_or_else(|| panic!("{start}: {out}"))
                .split("   ")
                .map(|c| c.trim().to_string())
                .filter(|c| !c.is_empty())
                .collect()
        };
        assert_eq!(
            line("busybox"),
            [
                "busybox",
                "latest",
                "abababababab",
                "N/A",
                "1.1kB",
                "1kB",
                "100B",
                "0"
            ]
        );
        let record = line("cdcdcdcdcdcd");
        assert_eq!(
            [&record[..3], &record[5..]].concat(),
            ["cdcdcdcdcdcd", "regular", "10B", "N/A", "false"]
        );
        assert!(out.contains("\nBuild cache usage: 10B\n\n"), "{out}");
    }
}
