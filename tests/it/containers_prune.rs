//! `system df -v` (docker/cli `formatter/disk_usage.go`,
//! `verboseWriteTable`), `system prune --filter` (moby `daemon/prune.go`,
//! docker/cli `system/prune.go`) and what `container prune` reclaims.

use crate::support;
use support::kiln::{ContainerStore, Kiln};

/// Container names, sorted.
fn names(k: &Kiln) -> Vec<String> {
    let mut v: Vec<String> = k
        .ok(&["ps", "-a", "--format", "{{.Names}}"])
        .lines()
        .map(String::from)
        .collect();
    v.sort();
    v
}

fn store() -> ContainerStore {
    ContainerStore {
        k: Kiln::with_busybox_image(),
    }
}

/// The cells of the line of `section` that starts with `first`.
fn cells(out: &str, section: &str, first: &str) -> Vec<String> {
    let body = &out[out
        .find(section)
        .unwrap_or_else(|| panic!("{section}: {out}"))..];
    let line = body
        .lines()
        .find(|l| l.starts_with(first))
        .unwrap_or_else(|| panic!("{first} in {section}: {out}"));
    line.split("   ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(String::from)
        .collect()
}

#[test]
fn system_df_verbose_lists_images_containers_volumes_and_build_cache() {
    let k = store();
    k.ok(&[
        "run",
        "-d",
        "--name",
        "writer",
        "-v",
        "spare:/data",
        "busybox",
        "sh",
        "-c",
        "head -c 5000 /dev/zero > /big; head -c 2000 /dev/zero > /data/f",
    ]);
    assert_eq!(k.ok(&["wait", "writer"]).trim(), "0");
    let out = k.ok(&["system", "df", "-v"]);
    let headers: Vec<&str> = out
        .lines()
        .filter(|l| l.ends_with(':') || l.starts_with("Build cache usage:"))
        .collect();
    assert_eq!(
        headers,
        [
            "Images space usage:",
            "Containers space usage:",
            "Local Volumes space usage:",
            "Build cache usage: 0B"
        ],
        "{out}"
    );
    let image = cells(&out, "Images space usage:", "busybox");
    assert_eq!(image[1], "latest", "{out}");
    // SIZE = SHARED + UNIQUE: busybox shares no layer here.
    assert_eq!(
        (image[5].as_str(), image[6] == image[4]),
        ("0B", true),
        "{out}"
    );
    assert_eq!(image[7], "1", "one container: {out}");
    let id = k.ok(&["inspect", "--format", "{{.Id}}", "writer"]);
    let container = cells(&out, "Containers space usage:", &id[..12]);
    assert_eq!(container[1], "busybox", "{out}");
    assert_eq!(container[3], "1", "LOCAL VOLUMES: {out}");
    assert_eq!(container[4], "5kB", "what it wrote: {out}");
    assert!(container[6].starts_with("Exited (0)"), "{out}");
    assert_eq!(container.last().unwrap(), "writer", "{out}");
    assert_eq!(
        cells(&out, "Local Volumes space usage:", "spare"),
        ["spare", "1", "2kB"]
    );
    // No build cache here: the header alone.
    assert_eq!(
        out.lines()
            .last()
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["CACHE", "ID", "CACHE", "TYPE", "SIZE", "CREATED", "LAST", "USED", "USAGE", "SHARED"],
        "{out}"
    );
}

#[test]
fn system_prune_filters_by_until_and_labels_like_docker() {
    let k = store();
    let ctx = k.context(&[]);
    k.build_ok(&ctx, "FROM busybox\nLABEL keep=yes\n", "labeled", &[]);
    k.ok(&["create", "--name", "first", "busybox", "true"]);
    let first = k.ok(&["inspect", "--format", "{{.Created}}", "first"]);
    k.ok(&["create", "--name", "second", "busybox", "true"]);
    k.ok(&["create", "--name", "tagged", "labeled", "true"]);

    // until: only what was created at or before the time.
    let until = format!("until={}", first.trim());
    let out = k.ok(&["system", "prune", "-f", "--filter", &until]);
    assert!(out.contains("Deleted Containers:"), "{out}");
    assert_eq!(names(&k), ["second", "tagged"], "{out}");

    // label!=: what lacks the label (the container's labels are its
    // image's); label=: what has it.
    k.ok(&["system", "prune", "-f", "--filter", "label!=keep"]);
    assert_eq!(names(&k), ["tagged"]);
    k.ok(&["system", "prune", "-f", "--filter", "label=keep=no"]);
    assert_eq!(names(&k), ["tagged"]);
    k.ok(&["system", "prune", "-f", "--filter", "label=keep=yes"]);
    assert!(names(&k).is_empty());
    // Images: `-a` with a label filter removes only the labeled image.
    let out = k.ok(&["system", "prune", "-a", "-f", "--filter", "label=keep"]);
    assert!(out.contains("untagged: labeled:latest"), "{out}");
    assert!(
        k.images_listed().iter().any(|i| i.starts_with("busybox")),
        "{:?}",
        k.images_listed()
    );

    let r = k.kiln(&["system", "prune", "-f", "--volumes", "--filter", "until=1h"]);
    assert!(r
        .fails_with(125)
        .contains(r#"The "until" filter is not supported with "--volumes""#));
    let r = k.kiln(&["system", "prune", "-f", "--filter", "dangling=true"]);
    assert!(r.fails_with(125).contains("invalid filter 'dangling'"));
    let r = k.kiln(&["system", "prune", "-f", "--filter", "until=someday"]);
    assert!(
        r.fails_with(125).contains("--filter \"until=someday\""),
        "{}",
        r.stderr
    );
}
