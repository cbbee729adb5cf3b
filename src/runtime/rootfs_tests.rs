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
fn cgroup2_host_gets_a_late_cgroup_mount_and_sysfs_flags_follow_privilege() {
    let mut s = spec();
    let v2 = Host { cgroup2: true };
    assert_eq!(targets(&late_steps(&s, v2)), ["cgroup2:/sys/fs/cgroup"]);
    assert!(late_steps(&s, Host { cgroup2: false }).is_empty());
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
