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
    /// Controllers bound to it as `/proc/self/cgroup` names them, e.g.
    /// `["cpu", "cpuacct"]`, or `["name=systemd"]` for a named hierarchy
    /// (no controller, only process grouping).
    pub controllers: Vec<String>,
    /// Where the host mounted it, e.g. `/sys/fs/cgroup/cpu,cpuacct`.
    pub mount_point: PathBuf,
    /// Host directory of the process's own cgroup in this hierarchy.
    pub own_dir: PathBuf,
}

impl V1Hierarchy {
    /// Whether it has a resource controller (not only a `name=`).
    fn has_controller(&self) -> bool {
        self.controllers.iter().any(|c| !c.starts_with("name="))
    }
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
///
/// A v1 mount belongs to the `/proc/self/cgroup` line whose controllers
/// are exactly the mount's super options that name a controller (runc's
/// `GetCgroupMounts` does the same): mount flags such as `rw`, `xattr` or
/// `release_agent=` never appear in `/proc/self/cgroup`. Named
/// hierarchies (`name=systemd`) are included: a container gets a cgroup in
/// each, as with runc. A hierarchy mounted twice counts once (the first
/// mount, as in mountinfo order).
pub(super) fn resolve(mountinfo: &str, proc_cgroup: &str) -> Option<Layout> {
    let mounts = parse_mountinfo(mountinfo);
    let memberships = parse_proc_cgroup(proc_cgroup);
    let mut hierarchies: Vec<V1Hierarchy> = Vec::new();
    for mount in mounts.iter().filter(|m| m.fstype == "cgroup") {
        let mut named: Vec<&str> = mount
            .super_options
            .iter()
            .map(String::as_str)
            .filter(|o| memberships.iter().any(|(c, _)| c.iter().any(|c| c == o)))
            .collect();
        named.sort_unstable();
        let Some((controllers, path)) = memberships.iter().find(|(c, _)| {
            let mut c: Vec<&str> = c.iter().map(String::as_str).collect();
            c.sort_unstable();
            !c.is_empty() && c == named
        }) else {
            continue;
        };
        if hierarchies.iter().any(|h| &h.controllers == controllers) {
            continue; // the same hierarchy mounted twice
        }
        hierarchies.push(V1Hierarchy {
            controllers: controllers.clone(),
            mount_point: mount.mount_point.clone(),
            own_dir: dir_under(mount, path),
        });
    }
    let v2_path = memberships
        .iter()
        .find(|(c, _)| c.is_empty())
        .map(|(_, p)| p.as_str());
    let v2_mount = mounts.iter().find(|m| m.fstype == "cgroup2");
    // Only named v1 hierarchies (a v2 host that also mounts name=systemd
    // for old containers) do not make a v1 layout: nothing to limit with.
    if hierarchies.iter().any(V1Hierarchy::has_controller) {
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

impl Layout {
    /// The user-facing mode.
    pub(super) fn mode(&self) -> CgroupMode {
        match self {
            Layout::V1 { mode, .. } => *mode,
            Layout::V2 { .. } => CgroupMode::Unified,
        }
    }

    /// v1: every hierarchy (empty on v2).
    pub(super) fn hierarchies(&self) -> &[V1Hierarchy] {
        match self {
            Layout::V1 { hierarchies, .. } => hierarchies,
            Layout::V2 { .. } => &[],
        }
    }

    /// What a container's `/sys/fs/cgroup` mirrors on a v1 or hybrid host:
    /// each hierarchy under the last component of its host mount point
    /// (runc uses `filepath.Base(mountpoint)`), in mountinfo order. A
    /// second hierarchy whose mount point has the same last component
    /// would be hidden under the first, so it is left out. The v2
    /// hierarchy of a hybrid host is not mirrored: runc (1.1) does not
    /// mount it either, and it holds no controllers there.
    pub(super) fn v1_mounts(&self) -> Vec<super::V1Mount> {
        let mut out: Vec<super::V1Mount> = Vec::new();
        for h in self.hierarchies() {
            let Some(dir_name) = h.mount_point.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if out.iter().any(|m| m.dir_name == dir_name) {
                continue;
            }
            out.push(super::V1Mount {
                dir_name: dir_name.to_string(),
                options: h.controllers.join(","),
            });
        }
        out
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

    /// One check for the mirror plan: mountinfo and /proc/self/cgroup in,
    /// `dir_name=options` per hierarchy out.
    fn check_mounts(mountinfo: &str, proc_cgroup: &str, expected: &[&str]) {
        let got: Vec<String> = resolve(mountinfo, proc_cgroup)
            .map(|l| l.v1_mounts())
            .unwrap_or_default()
            .into_iter()
            .map(|m| format!("{}={}", m.dir_name, m.options))
            .collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn hybrid_host_mirrors_every_v1_hierarchy_but_not_unified() {
        check_mounts(
            HYBRID_MOUNTINFO,
            HYBRID_CGROUP,
            &[
                "cpu=cpu",
                "cpuacct=cpuacct",
                "memory=memory",
                "pids=pids",
                "systemd=name=systemd",
            ],
        );
    }

    #[test]
    fn comounted_and_extra_controllers_and_mount_flags() {
        // A classic systemd host: co-mounted pairs, xattr/release_agent
        // options that are not controllers, a bind mount of the same
        // hierarchy elsewhere (counted once).
        let mountinfo = "\
25 24 0:22 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,release_agent=/x,name=systemd
26 24 0:23 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
27 24 0:24 / /sys/fs/cgroup/net_cls,net_prio rw - cgroup cgroup rw,net_cls,net_prio
28 24 0:25 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
29 24 0:26 / /sys/fs/cgroup/rdma rw - cgroup cgroup rw,rdma
30 24 0:25 / /mnt/again rw - cgroup cgroup rw,memory
";
        let cgroup = "\
12:rdma:/
5:memory:/user.slice
4:net_cls,net_prio:/
3:cpu,cpuacct:/user.slice
1:name=systemd:/user.slice/session-1.scope
0::/user.slice/session-1.scope
";
        check_mounts(
            mountinfo,
            cgroup,
            &[
                "systemd=name=systemd",
                "cpu,cpuacct=cpu,cpuacct",
                "net_cls,net_prio=net_cls,net_prio",
                "memory=memory",
                "rdma=rdma",
            ],
        );
        let layout = resolve(mountinfo, cgroup).expect("layout");
        assert_eq!(
            layout.hierarchies()[0].own_dir,
            Path::new("/sys/fs/cgroup/systemd/user.slice/session-1.scope")
        );
    }

    #[test]
    fn named_v1_hierarchy_on_a_v2_host_keeps_the_v2_layout() {
        let mountinfo = "\
30 24 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate
31 24 0:27 / /run/systemd-v1 rw - cgroup cgroup rw,name=systemd
";
        let cgroup = "1:name=systemd:/\n0::/user.slice\n";
        assert_eq!(
            resolve(mountinfo, cgroup),
            Some(Layout::V2 {
                own_dir: PathBuf::from("/sys/fs/cgroup/user.slice")
            })
        );
        check_mounts(mountinfo, cgroup, &[]);
    }
}
