//! Where this process's cgroups are: which cgroup version is mounted where
//! (`/proc/self/mountinfo`) and which cgroup the process is in for each
//! hierarchy (`/proc/self/cgroup`).
//!
//! Three layouts exist in the wild: legacy v1 (one hierarchy per controller
//! or controller group), hybrid (v1 controllers plus an empty v2 hierarchy,
//! usually at `/sys/fs/cgroup/unified`, seen on kiln's own machines) and
//! pure v2 (one hierarchy at `/sys/fs/cgroup`). Hybrid is treated as v1:
//! its v2 hierarchy has no controllers to limit anything with.

use std::path::{Path, PathBuf};

/// The cgroup version in use for resource controllers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupMode {
    /// cgroup v1 only.
    Legacy,
    /// v1 controllers plus a controller-less v2 hierarchy.
    Hybrid,
    /// cgroup v2 only.
    Unified,
}

/// One mounted v1 hierarchy and this process's place in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct V1Hierarchy {
    /// Controllers bound to it, e.g. `["cpu", "cpuacct"]`.
    pub controllers: Vec<String>,
    /// Host directory of the process's own cgroup in this hierarchy.
    pub own_dir: PathBuf,
}

/// The resolved layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Layout {
    /// v1 or hybrid: one directory per hierarchy.
    V1 {
        mode: CgroupMode,
        hierarchies: Vec<V1Hierarchy>,
    },
    /// v2: one directory for every controller.
    V2 { own_dir: PathBuf },
}

/// A cgroup mount from mountinfo: its mount point, the cgroup path of its
/// root (not `/` when a subtree is bind-mounted, as in containers), the
/// filesystem type and the super options (v1 controllers).
#[derive(Debug)]
struct CgroupMount {
    mount_point: PathBuf,
    root: String,
    fstype: String,
    super_options: Vec<String>,
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)))
            .map(|d| d.iter().fold(0u32, |v, b| v * 8 + u32::from(b - b'0')))
            .and_then(|v| u8::try_from(v).ok());
        if let (b'\\', Some(value)) = (bytes[i], octal) {
            out.push(value);
            i += 4;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_mountinfo(text: &str) -> Vec<CgroupMount> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let left: Vec<&str> = left.split(' ').collect();
            let mut right = right.split(' ');
            let fstype = right.next()?;
            if fstype != "cgroup" && fstype != "cgroup2" {
                return None;
            }
            let _source = right.next()?;
            let super_options = right.next().unwrap_or("");
            Some(CgroupMount {
                root: unescape(left.get(3)?),
                mount_point: PathBuf::from(unescape(left.get(4)?)),
                fstype: fstype.to_string(),
                super_options: super_options.split(',').map(str::to_string).collect(),
            })
        })
        .collect()
}

/// `(controllers, path)` per line of /proc/self/cgroup; the v2 line has no
/// controllers.
fn parse_proc_cgroup(text: &str) -> Vec<(Vec<String>, String)> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let _id = parts.next()?;
            let controllers = parts.next()?;
            let path = parts.next()?;
            let controllers = controllers
                .split(',')
                .filter(|c| !c.is_empty())
                .map(str::to_string)
                .collect();
            Some((controllers, path.to_string()))
        })
        .collect()
}

/// The host directory of `cgroup_path` under a mount whose root is `root`.
fn dir_under(mount: &CgroupMount, cgroup_path: &str) -> PathBuf {
    let relative = if mount.root == "/" {
        cgroup_path
    } else {
        // Outside the mounted subtree (cgroup namespaces show paths relative
        // to the namespace root, which is the mount root): use as is.
        cgroup_path
            .strip_prefix(mount.root.as_str())
            .unwrap_or(cgroup_path)
    };
    mount.mount_point.join(relative.trim_start_matches('/'))
}

/// Works out the layout from the text of `/proc/self/mountinfo` and
/// `/proc/self/cgroup`; `None` if no cgroup hierarchy with a place for
/// this process is mounted.
pub(super) fn resolve(mountinfo: &str, proc_cgroup: &str) -> Option<Layout> {
    let mounts = parse_mountinfo(mountinfo);
    let memberships = parse_proc_cgroup(proc_cgroup);
    let known = [
        "cpu", "cpuacct", "cpuset", "memory", "pids", "blkio", "devices", "freezer",
    ];
    let mut hierarchies = Vec::new();
    for mount in mounts.iter().filter(|m| m.fstype == "cgroup") {
        let controllers: Vec<String> = mount
            .super_options
            .iter()
            .filter(|o| known.contains(&o.as_str()) || is_other_controller(o))
            .cloned()
            .collect();
        if controllers.is_empty() {
            continue; // named hierarchies such as name=systemd
        }
        let Some((_, path)) = memberships.iter().find(|(c, _)| {
            let mut a = c.clone();
            let mut b = controllers.clone();
            a.sort();
            b.sort();
            a == b
        }) else {
            continue;
        };
        if hierarchies
            .iter()
            .any(|h: &V1Hierarchy| h.controllers == controllers)
        {
            continue; // the same hierarchy mounted twice
        }
        hierarchies.push(V1Hierarchy {
            controllers,
            own_dir: dir_under(mount, path),
        });
    }
    let v2_path = memberships
        .iter()
        .find(|(c, _)| c.is_empty())
        .map(|(_, p)| p.as_str());
    let v2_mount = mounts.iter().find(|m| m.fstype == "cgroup2");
    if !hierarchies.is_empty() {
        let mode = if v2_mount.is_some() {
            CgroupMode::Hybrid
        } else {
            CgroupMode::Legacy
        };
        return Some(Layout::V1 { mode, hierarchies });
    }
    Some(Layout::V2 {
        own_dir: dir_under(v2_mount?, v2_path?),
    })
}

/// v1 mount options that name controllers beyond the common ones
/// (`net_cls`, `net_prio`, `perf_event`, `hugetlb`, `rdma`, `misc`), as
/// opposed to mount flags (`rw`, `relatime`, `name=...`).
fn is_other_controller(option: &str) -> bool {
    matches!(
        option,
        "net_cls" | "net_prio" | "perf_event" | "hugetlb" | "rdma" | "misc"
    )
}

impl Layout {
    /// The user-facing mode.
    pub(super) fn mode(&self) -> CgroupMode {
        match self {
            Layout::V1 { mode, .. } => *mode,
            Layout::V2 { .. } => CgroupMode::Unified,
        }
    }

    /// v1: the own directory of the hierarchy holding `controller`.
    pub(super) fn v1_dir(&self, controller: &str) -> Option<&Path> {
        match self {
            Layout::V1 { hierarchies, .. } => hierarchies
                .iter()
                .find(|h| h.controllers.iter().any(|c| c == controller))
                .map(|h| h.own_dir.as_path()),
            Layout::V2 { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID_MOUNTINFO: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const HYBRID_CGROUP: &str = "\
9:name=systemd:/
8:pids:/
4:memory:/process_api/d944
2:cpuacct:/
1:cpu:/
0::/
";

    #[test]
    fn hybrid_layout_uses_each_controllers_own_path() {
        let layout = resolve(HYBRID_MOUNTINFO, HYBRID_CGROUP).expect("layout");
        assert_eq!(layout.mode(), CgroupMode::Hybrid);
        assert_eq!(
            layout.v1_dir("memory"),
            Some(Path::new("/sys/fs/cgroup/memory/process_api/d944"))
        );
        assert_eq!(layout.v1_dir("cpu"), Some(Path::new("/sys/fs/cgroup/cpu")));
        assert_eq!(
            layout.v1_dir("pids"),
            Some(Path::new("/sys/fs/cgroup/pids"))
        );
        assert_eq!(layout.v1_dir("systemd"), None);
    }

    #[test]
    fn comounted_legacy_controllers_share_a_directory() {
        let mountinfo = "\
25 24 0:22 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
26 24 0:23 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
";
        let cgroup = "3:cpuacct,cpu:/user.slice\n2:memory:/user.slice\n";
        let layout = resolve(mountinfo, cgroup).expect("layout");
        assert_eq!(layout.mode(), CgroupMode::Legacy);
        assert_eq!(
            layout.v1_dir("cpu"),
            Some(Path::new("/sys/fs/cgroup/cpu,cpuacct/user.slice"))
        );
        assert_eq!(layout.v1_dir("pids"), None);
    }

    #[test]
    fn unified_layout_has_one_directory() {
        let mountinfo = "30 24 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n";
        let cgroup = "0::/user.slice/user-0.slice/session-3.scope\n";
        assert_eq!(
            resolve(mountinfo, cgroup),
            Some(Layout::V2 {
                own_dir: PathBuf::from("/sys/fs/cgroup/user.slice/user-0.slice/session-3.scope")
            })
        );
    }

    #[test]
    fn bind_mounted_subtrees_strip_the_mount_root() {
        // Inside a container without a cgroup namespace: the mount shows the
        // container's subtree, /proc/self/cgroup the full path.
        let mountinfo = "30 24 0:26 /docker/abc /sys/fs/cgroup ro - cgroup2 cgroup2 rw\n";
        let cgroup = "0::/docker/abc/inner\n";
        assert_eq!(
            resolve(mountinfo, cgroup),
            Some(Layout::V2 {
                own_dir: PathBuf::from("/sys/fs/cgroup/inner")
            })
        );
    }

    #[test]
    fn escaped_mount_points_are_unescaped() {
        assert_eq!(unescape("/a\\040b"), "/a b");
        assert_eq!(unescape("/plain"), "/plain");
        assert_eq!(unescape("/trailing\\"), "/trailing\\");
    }

    #[test]
    fn no_cgroup_mounts_means_no_layout() {
        assert_eq!(
            resolve("31 23 0:28 / /tmp rw - tmpfs tmpfs rw\n", "0::/\n"),
            None
        );
    }
}
