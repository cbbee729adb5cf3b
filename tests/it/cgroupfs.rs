//! What a container sees at `/sys/fs/cgroup`, as docker/runc show it:
//! on a pure v2 host the container's own `cgroup2`; on a v1 or hybrid
//! host a tmpfs holding each host hierarchy (read-only, rooted at the
//! container's cgroup through its cgroup namespace) and links for
//! co-mounted controllers. The tests read the host's layout from
//! `/proc/self/mountinfo` and expect what runc would give on it; kiln's
//! own machines are hybrid. Tools such as JVMs read their memory limit
//! from these files.

use crate::support;

use support::kiln::Kiln;

/// The host's cgroup layout, as far as the container's view depends on it.
#[derive(Debug)]
enum HostCgroups {
    /// `/sys/fs/cgroup` is a cgroup2 mount.
    Unified,
    /// The last components of the v1 hierarchies' mount points, in
    /// mountinfo order (`memory`, `cpu,cpuacct`, `systemd`).
    V1(Vec<String>),
}

fn host_cgroups() -> HostCgroups {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").expect("reading mountinfo");
    let mut v1 = Vec::new();
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let mount_point = left.split(' ').nth(4).unwrap_or_default();
        match right.split(' ').next() {
            Some("cgroup2") if mount_point == "/sys/fs/cgroup" => return HostCgroups::Unified,
            Some("cgroup") => {
                let name = mount_point
                    .rsplit('/')
                    .next()
                    .unwrap_or_default()
                    .to_string();
                if !v1.contains(&name) {
                    v1.push(name);
                }
            }
            _ => {}
        }
    }
    assert!(
        !v1.is_empty(),
        "no cgroup hierarchy on this host:\n{mountinfo}"
    );
    HostCgroups::V1(v1)
}

/// What `ls /sys/fs/cgroup` shows in a container on a v1 host: every
/// hierarchy's directory plus a link per controller of a co-mounted one
/// (`cpu -> cpu,cpuacct`) unless a directory has that name.
fn expected_v1_listing(dirs: &[String]) -> Vec<String> {
    let mut names: Vec<String> = dirs.to_vec();
    for dir in dirs.iter().filter(|d| d.contains(',')) {
        for part in dir.split(',') {
            if !names.iter().any(|n| n == part) {
                names.push(part.to_string());
            }
        }
    }
    names.sort();
    names
}

/// The file holding the memory limit, per layout.
fn memory_limit_file(host: &HostCgroups) -> &'static str {
    match host {
        HostCgroups::Unified => "/sys/fs/cgroup/memory.max",
        HostCgroups::V1(_) => "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    }
}

#[test]
fn memory_limit_is_readable_where_jvms_look_for_it() {
    let host = host_cgroups();
    let f = Kiln::with_busybox_rootfs();
    let ran = f.run_rootfs(
        &["--rm", "--memory", "64m"],
        &["cat", memory_limit_file(&host)],
    );
    assert_eq!(ran.ok(), "67108864\n", "{host:?}");
}

#[test]
fn listing_mirrors_the_hosts_hierarchies_and_links() {
    let host = host_cgroups();
    let f = Kiln::with_busybox_rootfs();
    let listing = f.sh_rootfs("ls -1 /sys/fs/cgroup").ok().to_string();
    let names: Vec<String> = listing.lines().map(str::to_string).collect();
    match &host {
        HostCgroups::V1(dirs) => {
            assert_eq!(names, expected_v1_listing(dirs), "host: {dirs:?}");
            // Links point at the co-mounted directory, like runc's.
            for dir in dirs.iter().filter(|d| d.contains(',')) {
                let first = dir.split(',').next().unwrap_or_default();
                let link = f
                    .sh_rootfs(&format!("readlink /sys/fs/cgroup/{first}"))
                    .ok()
                    .to_string();
                assert_eq!(link.trim(), dir.as_str());
            }
        }
        HostCgroups::Unified => {
            assert!(names.iter().any(|n| n == "cgroup.procs"), "{listing}");
        }
    }
}

/// The mount options (field 6 of mountinfo) of each cgroup mount below
/// `/sys/fs/cgroup` in a container run with `flags`, and its tmpfs's.
fn cgroup_mount_options(f: &Kiln, flags: &[&str]) -> Vec<(String, String, String)> {
    let mut all = vec!["--rm"];
    all.extend_from_slice(flags);
    let out = f
        .run_rootfs(&all, &["cat", "/proc/self/mountinfo"])
        .ok()
        .to_string();
    out.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let left: Vec<&str> = left.split(' ').collect();
            let fstype = right.split(' ').next()?;
            let mount_point = *left.get(4)?;
            mount_point.starts_with("/sys/fs/cgroup").then(|| {
                (
                    mount_point.to_string(),
                    fstype.to_string(),
                    left.get(5).copied().unwrap_or_default().to_string(),
                )
            })
        })
        .collect()
}

#[test]
fn hierarchies_are_read_only_unless_privileged() {
    let host = host_cgroups();
    let f = Kiln::with_busybox_rootfs();
    let write = format!("echo 1 > {}", memory_limit_file(&host));
    let ran = f.run_rootfs(&["--rm", "--memory", "64m"], &["sh", "-c", &write]);
    assert!(
        ran.code != 0 && ran.stderr.contains("Read-only file system"),
        "{ran:?}"
    );
    let default = cgroup_mount_options(&f, &[]);
    let privileged = cgroup_mount_options(&f, &["--privileged"]);
    match &host {
        HostCgroups::V1(dirs) => {
            // docker: `/sys/fs/cgroup tmpfs rw,nosuid,nodev,noexec`, then
            // `/sys/fs/cgroup/<dir> cgroup ro,nosuid,nodev,noexec`; kiln
            // also makes the tmpfs read-only (not with --privileged).
            let mut expected = vec![(
                "/sys/fs/cgroup".to_string(),
                "tmpfs".to_string(),
                "ro,nosuid,nodev,noexec,relatime".to_string(),
            )];
            for dir in dirs {
                expected.push((
                    format!("/sys/fs/cgroup/{dir}"),
                    "cgroup".into(),
                    "ro,nosuid,nodev,noexec,relatime".into(),
                ));
            }
            assert_eq!(default, expected);
            for e in &mut expected {
                e.2 = e.2.replacen("ro,", "rw,", 1);
            }
            assert_eq!(privileged, expected);
        }
        HostCgroups::Unified => {
            assert_eq!(default.len(), 1, "{default:?}");
            assert!(default[0].2.starts_with("ro,"), "{default:?}");
            assert!(privileged[0].2.starts_with("rw,"), "{privileged:?}");
        }
    }
}

#[test]
fn the_container_is_the_root_of_its_cgroup_namespace() {
    let f = Kiln::with_busybox_rootfs();
    let out = f.sh_rootfs("cat /proc/self/cgroup").ok().to_string();
    assert!(!out.is_empty());
    for line in out.lines() {
        assert!(line.ends_with(":/"), "{out}");
    }
    // And what is mounted in every hierarchy is that fresh cgroup, with
    // no child cgroups: kiln's own would show `kiln/` with this very
    // container in it, the host's root everyone else's.
    let depth = match host_cgroups() {
        HostCgroups::Unified => 1,
        HostCgroups::V1(_) => 2,
    };
    let children = f
        .sh_rootfs(&format!(
            "find /sys/fs/cgroup -mindepth {depth} -type d; echo end"
        ))
        .ok()
        .to_string();
    assert_eq!(children, "end\n");
}

#[test]
fn build_run_steps_see_the_same_view() {
    let host = host_cgroups();
    let k = Kiln::with_busybox_image();
    let ctx = k.context(&[]);
    k.build_ok(
        &ctx,
        "FROM busybox\nRUN ls -1 /sys/fs/cgroup > /cgroup-listing && cat /proc/self/cgroup > /cgroup-self\n",
        "cgroupfs:1",
        &[],
    );
    let listing = k.sh("cgroupfs:1", "cat /cgroup-listing");
    let names: Vec<String> = listing.lines().map(str::to_string).collect();
    match &host {
        HostCgroups::V1(dirs) => assert_eq!(names, expected_v1_listing(dirs)),
        HostCgroups::Unified => assert!(names.iter().any(|n| n == "cgroup.procs"), "{listing}"),
    }
    let own = k.sh("cgroupfs:1", "cat /cgroup-self");
    assert!(own.lines().all(|l| l.ends_with(":/")), "{own}");
}
