use super::*;
use crate::runtime::child_probe::run_in_child;

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// One resolution case: flags in, capability names (short) out.
fn check(add: &[&str], drop: &[&str], privileged: bool, expected: &[&str]) {
    let got = resolve_caps(&strings(add), &strings(drop), privileged)
        .unwrap_or_else(|e| panic!("add={add:?} drop={drop:?}: {e}"));
    let got: Vec<&str> = got.iter().map(|c| c.short_name()).collect();
    let mut want: Vec<Capability> = expected
        .iter()
        .map(|n| Capability::from_name(n).expect("test names are valid"))
        .collect();
    want.sort();
    let want: Vec<&str> = want.iter().map(|c| c.short_name()).collect();
    assert_eq!(
        got, want,
        "add={add:?} drop={drop:?} privileged={privileged}"
    );
}

const DEFAULTS: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "NET_RAW",
    "SYS_CHROOT",
    "MKNOD",
    "AUDIT_WRITE",
    "SETFCAP",
];

#[test]
fn default_set_has_dockers_mask() {
    assert_eq!(mask_of(&docker_default_caps()), 0xa80425fb);
    check(&[], &[], false, DEFAULTS);
}

#[test]
fn all_41_capabilities_are_known_in_bit_order() {
    assert_eq!(Capability::ALL.len(), 41);
    for (i, c) in Capability::ALL.iter().enumerate() {
        assert_eq!(c.bit() as usize, i);
    }
    assert_eq!(
        Capability::CheckpointRestore.to_string(),
        "CAP_CHECKPOINT_RESTORE"
    );
}

#[test]
fn names_parse_with_or_without_prefix_in_any_case() {
    for name in ["NET_ADMIN", "CAP_NET_ADMIN", "net_admin", "cap_Net_Admin"] {
        assert_eq!(
            Capability::from_name(name),
            Some(Capability::NetAdmin),
            "{name}"
        );
    }
    assert_eq!(Capability::from_name("all"), None);
    assert_eq!(Capability::from_name("CAP_"), None);
    assert!("sys_time".parse::<Capability>().is_ok());
}

#[test]
fn add_and_drop_follow_docker_rules() {
    let mut with_admin = DEFAULTS.to_vec();
    with_admin.push("SYS_ADMIN");
    check(&["sys_admin"], &[], false, &with_admin);
    let without_chown: Vec<&str> = DEFAULTS.iter().copied().filter(|c| *c != "CHOWN").collect();
    check(&[], &["CAP_CHOWN"], false, &without_chown);
    // Adding a cap that is already there does not duplicate it.
    check(&["CHOWN"], &[], false, DEFAULTS);
    // ALL in drop keeps only the adds.
    check(&["NET_RAW"], &["ALL"], false, &["NET_RAW"]);
    check(&[], &["all"], false, &[]);
    // ALL in add gives every cap but the drops.
    let all_but_admin: Vec<&str> = Capability::ALL
        .iter()
        .filter(|c| **c != Capability::SysAdmin)
        .map(|c| c.short_name())
        .collect();
    check(&["ALL"], &["SYS_ADMIN"], false, &all_but_admin);
    // Privileged ignores the flags.
    let all: Vec<&str> = Capability::ALL.iter().map(|c| c.short_name()).collect();
    check(&[], &["ALL"], true, &all);
}

#[test]
fn unknown_names_fail_naming_the_flag_value() {
    let err = resolve_caps(&strings(&["NET_ADMN"]), &[], false).unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown capability: \"CAP_NET_ADMN\" (from --cap-add value \"NET_ADMN\")"
    );
    // Checked even when ALL makes the name irrelevant, as Docker does.
    let err = resolve_caps(&strings(&["ALL"]), &strings(&["bogus"]), false).unwrap_err();
    assert!(
        err.to_string().contains("--cap-drop value \"bogus\""),
        "{err}"
    );
}

#[test]
fn applying_default_caps_sets_exactly_that_mask() {
    assert_eq!(nix::unistd::geteuid().as_raw(), 0, "this test runs as root");
    let caps = docker_default_caps();
    let out = run_in_child(|| {
        if apply_capabilities(&caps).is_err() {
            return [1, 0, 0, 0, 0];
        }
        match current_caps() {
            Ok(s) => [
                0,
                s.effective as i64,
                s.permitted as i64,
                s.inheritable as i64,
                current_bounding() as i64,
            ],
            Err(_) => [2, 0, 0, 0, 0],
        }
    });
    assert_eq!(out, [0, 0xa80425fb, 0xa80425fb, 0, 0xa80425fb]);
}

#[test]
fn non_root_user_keeps_caps_until_exec_with_keepcaps() {
    assert_eq!(nix::unistd::geteuid().as_raw(), 0, "this test runs as root");
    let caps = [Capability::Chown, Capability::Setuid];
    let out = run_in_child(|| {
        if set_keep_caps().is_err() {
            return [1, 0, 0];
        }
        let (uid, gid) = (
            nix::unistd::Uid::from_raw(1000),
            nix::unistd::Gid::from_raw(1000),
        );
        if nix::unistd::setresgid(gid, gid, gid).is_err()
            || nix::unistd::setresuid(uid, uid, uid).is_err()
        {
            return [2, 0, 0];
        }
        if apply_capabilities(&caps).is_err() {
            return [3, 0, 0];
        }
        match current_caps() {
            Ok(s) => [0, s.effective as i64, current_bounding() as i64],
            Err(_) => [4, 0, 0],
        }
    });
    assert_eq!(out, [0, 0x81, 0x81]);
}

#[test]
fn no_new_privs_is_set() {
    let out = run_in_child(|| {
        if set_no_new_privs().is_err() {
            return [1, 0];
        }
        match rustix::thread::no_new_privs() {
            Ok(set) => [0, i64::from(set)],
            Err(_) => [2, 0],
        }
    });
    assert_eq!(out, [0, 1]);
}

#[test]
fn host_network_drops_net_raw_unless_asked_for_by_name() {
    let has = |caps: &[Capability]| caps.contains(&Capability::NetRaw);
    assert!(!has(&for_host_network(docker_default_caps(), &[])));
    for add in ["NET_RAW", "cap_net_raw", "all"] {
        let caps = for_host_network(docker_default_caps(), &[add.to_string()]);
        assert!(has(&caps), "{add}");
    }
    assert!(!has(&for_host_network(
        docker_default_caps(),
        &["CHOWN".to_string()]
    )));
}
