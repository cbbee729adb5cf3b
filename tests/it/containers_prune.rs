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

/// Regression: `wait` on a detached `--rm` container printed 0 once the
/// monitor had removed the row, whatever the exit code.
#[test]
fn wait_on_a_detached_rm_container_returns_its_real_exit_code() {
    let k = store();
    let id = k
        .ok(&[
            "run",
            "-d",
            "--rm",
            "--name",
            "brief",
            "busybox",
            "sh",
            "-c",
            "while [ ! -e /tmp/go ]; do sleep 0.1; done; exit 3",
        ])
        .trim()
        .to_string();
    let waiter = k
        .cmd(&["wait", "brief"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The waiter has registered (its monitor keeps the row for it).
    let waiters = k.root().join("containers").join(&id).join("waiters");
    crate::run_network::wait_for("wait to register", || {
        std::fs::read_dir(&waiters).is_ok_and(|mut d| d.next().is_some())
    });
    k.ok(&["exec", "brief", "touch", "/tmp/go"]);
    let out = waiter.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "3\n", "{out:?}");
    assert_eq!(out.status.code(), Some(0));
    // Then it is removed.
    crate::run_network::wait_for("the --rm container to go", || {
        !k.root().join("containers").join(&id).exists()
    });
    let r = k.kiln(&["wait", "brief"]);
    assert!(r.fails_with(1).contains("No such container: brief"));
}

#[test]
fn container_prune_reports_the_space_of_the_removed_containers_writes() {
    let k = store();
    k.ok(&[
        "run",
        "--name",
        "w1",
        "busybox",
        "sh",
        "-c",
        "head -c 5000 /dev/zero > /big",
    ]);
    k.ok(&[
        "run",
        "--name",
        "w2",
        "busybox",
        "sh",
        "-c",
        "head -c 3000 /dev/zero > /big",
    ]);
    k.ok(&["create", "--name", "fresh", "busybox", "true"]);
    // --filter until=: w1 and w2, not the container created after them.
    let created = k.ok(&["inspect", "--format", "{{.Created}}", "w2"]);
    let until = format!("until={}", created.trim());
    let out = k.ok(&["container", "prune", "-f", "--filter", &until]);
    assert!(out.ends_with("\nTotal reclaimed space: 8kB\n"), "{out}");
    assert_eq!(out.lines().filter(|l| l.len() == 64).count(), 2, "{out}");
    assert_eq!(names(&k), ["fresh"]);
    let out = k.ok(&["container", "prune", "-f"]);
    assert!(out.ends_with("\nTotal reclaimed space: 0B\n"), "{out}");
    assert!(names(&k).is_empty());
    let r = k.kiln(&["container", "prune", "-f", "--filter", "status=exited"]);
    assert!(r.fails_with(125).contains("invalid filter 'status'"));
}
