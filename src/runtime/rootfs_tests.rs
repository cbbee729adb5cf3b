//! Unit tests of the mount plan: which mounts a spec produces, in order,
//! without needing root.

use super::*;
use crate::runtime::spec::{MountSpec, Network, NetworkFiles, ProcessSpec, RootfsSpec};

fn spec() -> ContainerSpec {
    ContainerSpec {
        id: "0".repeat(64),
        rootfs: RootfsSpec {
            lowers: vec![],
            state_dir: PathBuf::from("/state"),
            readonly: false,
            volatile: false,
        },
        process: ProcessSpec {
            args: vec!["true".into()],
            env: vec![],
            cwd: "/".into(),
            user: String::new(),
            additional_gids: vec![],
            terminal: false,
            console_size: None,
            rlimits: vec![],
            no_new_privs: true,
        },
        hostname: "h".into(),
        mounts: vec![],
        network: Network::Host,
        masked_paths: vec![],
        readonly_paths: vec![],
        readonly_sysfs: true,
        network_files: NetworkFiles::Docker,
        network_extras: Default::default(),
        init: false,
        capabilities: crate::runtime::caps::docker_default_caps(),
        seccomp: true,
        resources: Default::default(),
    }
}

fn targets(steps: &[Step]) -> Vec<String> {
    steps
        .iter()
        .map(|s| match s {
            Step::Fs { fstype, target, .. } => format!("{fstype}:{target}"),
            Step::Devices => "devices".into(),
            Step::Symlink { link, target } => format!("{link}->{target}"),
            Step::Bind {
                target, readonly, ..
            } => format!("bind{}:{target}", if *readonly { "-ro" } else { "" }),
        })
        .collect()
}

fn check(spec: &ContainerSpec, expected: &[&str]) {
    assert_eq!(targets(&plan(spec)), expected);
}

const STANDARD: &[&str] = &[
    "proc:/proc",
    "tmpfs:/dev",
    "devpts:/dev/pts",
    "sysfs:/sys",
    "mqueue:/dev/mqueue",
    "tmpfs:/dev/shm",
    "devices",
];

#[test]
fn default_plan_is_docker_like() {
    let mut expected = STANDARD.to_vec();
    expected.extend([
        "bind:/etc/hosts",
        "bind:/etc/hostname",
        "bind:/etc/resolv.conf",
    ]);
    check(&spec(), &expected);
}

#[test]
fn user_mounts_come_last_in_order() {
    let mut s = spec();
    s.network_files = NetworkFiles::Own;
    s.mounts = vec![
        MountSpec {
            destination: "/data".into(),
            kind: MountKind::Bind {
                source: "/host".into(),
                readonly: true,
            },
        },
        MountSpec {
            destination: "/tmp".into(),
            kind: MountKind::Tmpfs {
                options: String::new(),
            },
        },
    ];
    let mut expected = STANDARD.to_vec();
    expected.extend(["bind-ro:/data", "tmpfs:/tmp"]);
    check(&s, &expected);
}

#[test]
fn tmpfs_flag_words_become_mount_flags_with_no_defaults_added() {
    let mut s = spec();
    s.mounts = vec![MountSpec {
        destination: "/t".into(),
        kind: MountKind::Tmpfs {
            options: "nosuid,ro,size=1048576".into(),
        },
    }];
    let last = plan(&s).pop().unwrap();
    assert_eq!(
        last,
        Step::Fs {
            fstype: "tmpfs",
            target: "/t".into(),
            flags: MsFlags::MS_NOSUID | MsFlags::MS_RDONLY,
            data: "size=1048576".into(),
        }
    );
}

#[test]
fn cgroup2_host_gets_a_late_cgroup_mount_and_sysfs_flags_follow_privilege() {
    let mut s = spec();
    let v2 = &Host {
        cgroup2: true,
        cgroup_v1: vec![],
    };
    assert_eq!(targets(&late_steps(&s, v2)), ["cgroup2:/sys/fs/cgroup"]);
    assert!(late_steps(&s, &Host::default()).is_empty());
    let ro = |steps: Vec<Step>, fs: &str| {
        steps.iter().any(|st| {
            matches!(st, Step::Fs { fstype, flags, .. }
                if *fstype == fs && flags.contains(MsFlags::MS_RDONLY))
        })
    };
    assert!(ro(plan(&s), "sysfs") && ro(late_steps(&s, v2), "cgroup2"));
    s.readonly_sysfs = false;
    assert!(!ro(plan(&s), "sysfs") && !ro(late_steps(&s, v2), "cgroup2"));
}

#[test]
fn network_files_follow_readonly_rootfs() {
    let mut s = spec();
    s.rootfs.readonly = true;
    let plan = plan(&s);
    let hosts = plan
        .iter()
        .find(|st| matches!(st, Step::Bind { target, .. } if target == "/etc/hosts"));
    assert_eq!(
        hosts,
        Some(&Step::Bind {
            source: PathBuf::from("/state/hosts"),
            target: "/etc/hosts".into(),
            readonly: true
        })
    );
}

#[test]
fn a_build_sandbox_gets_read_only_hosts_and_resolv_conf_and_no_hostname_file() {
    let mut s = spec();
    s.network_files = NetworkFiles::Sandbox;
    let binds: Vec<(String, bool)> = plan(&s)
        .iter()
        .filter_map(|st| match st {
            Step::Bind {
                target, readonly, ..
            } if target.starts_with("/etc/") => Some((target.clone(), *readonly)),
            _ => None,
        })
        .collect();
    assert_eq!(
        binds,
        [
            ("/etc/hosts".to_string(), true),
            ("/etc/resolv.conf".to_string(), true)
        ]
    );
}

fn v1_host(mounts: &[(&str, &str)]) -> Host {
    Host {
        cgroup2: false,
        cgroup_v1: mounts
            .iter()
            .map(|(dir_name, options)| crate::runtime::cgroups::V1Mount {
                dir_name: dir_name.to_string(),
                options: options.to_string(),
            })
            .collect(),
    }
}

/// One check for the v1 `/sys/fs/cgroup` plan: each step as
/// `fstype:target[options]` or `link->target`.
fn check_v1(host: &Host, expected: &[&str]) {
    let got: Vec<String> = late_steps(&spec(), host)
        .iter()
        .map(|s| match s {
            Step::Fs {
                fstype,
                target,
                data,
                ..
            } => format!("{fstype}:{target}[{data}]"),
            other => targets(std::slice::from_ref(other)).remove(0),
        })
        .collect();
    assert_eq!(got, expected);
}

#[test]
fn v1_host_gets_a_tmpfs_with_each_hierarchy_and_links_for_comounted_ones() {
    check_v1(
        &v1_host(&[
            ("cpu,cpuacct", "cpu,cpuacct"),
            ("memory", "memory"),
            ("net_cls,net_prio", "net_cls,net_prio"),
            ("systemd", "name=systemd"),
        ]),
        &[
            "tmpfs:/sys/fs/cgroup[mode=755]",
            "cgroup:/sys/fs/cgroup/cpu,cpuacct[cpu,cpuacct]",
            "cgroup:/sys/fs/cgroup/memory[memory]",
            "cgroup:/sys/fs/cgroup/net_cls,net_prio[net_cls,net_prio]",
            "cgroup:/sys/fs/cgroup/systemd[name=systemd]",
            "/sys/fs/cgroup/cpu->cpu,cpuacct",
            "/sys/fs/cgroup/cpuacct->cpu,cpuacct",
            "/sys/fs/cgroup/net_cls->net_cls,net_prio",
            "/sys/fs/cgroup/net_prio->net_cls,net_prio",
        ],
    );
}

#[test]
fn v1_links_never_shadow_a_mounted_directory() {
    // Hosts that mount `cpu` and `cpuacct` apart (kiln's machines) get no
    // links; a host with both a `cpu,cpuacct` dir and a separate `cpu`
    // name keeps the directory.
    check_v1(
        &v1_host(&[("cpu", "cpu"), ("cpuacct", "cpuacct")]),
        &[
            "tmpfs:/sys/fs/cgroup[mode=755]",
            "cgroup:/sys/fs/cgroup/cpu[cpu]",
            "cgroup:/sys/fs/cgroup/cpuacct[cpuacct]",
        ],
    );
    check_v1(
        &v1_host(&[("cpu,cpuacct", "cpu,cpuacct"), ("cpu", "name=cpu")]),
        &[
            "tmpfs:/sys/fs/cgroup[mode=755]",
            "cgroup:/sys/fs/cgroup/cpu,cpuacct[cpu,cpuacct]",
            "cgroup:/sys/fs/cgroup/cpu[name=cpu]",
            "/sys/fs/cgroup/cpuacct->cpu,cpuacct",
        ],
    );
}

#[test]
fn v1_hierarchies_are_read_only_unless_privileged_and_the_tmpfs_stays_writable() {
    let host = v1_host(&[("memory", "memory")]);
    let flags_of = |s: &ContainerSpec, fs: &str| -> Vec<MsFlags> {
        late_steps(s, &host)
            .into_iter()
            .filter_map(|st| match st {
                Step::Fs { fstype, flags, .. } if fstype == fs => Some(flags),
                _ => None,
            })
            .collect()
    };
    let mut s = spec();
    let nne = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    assert_eq!(flags_of(&s, "cgroup"), [nne | MsFlags::MS_RDONLY]);
    assert_eq!(flags_of(&s, "tmpfs"), [nne]);
    s.readonly_sysfs = false;
    assert_eq!(flags_of(&s, "cgroup"), [nne]);
}
