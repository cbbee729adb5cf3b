use super::*;
use crate::runtime::caps::{docker_default_caps, set_no_new_privs};
use crate::runtime::child_probe::run_in_child;

const EPERM: RuleAction = RuleAction::Errno(libc::EPERM as u32);
const ENOSYS: RuleAction = RuleAction::Errno(libc::ENOSYS as u32);

fn plan(caps: &[Capability]) -> Plan {
    Plan::docker_default(&PlanContext {
        caps,
        arch: native_arch().expect("supported arch").1,
        kernel: Some((6, 1)),
    })
}

fn nr(name: &str) -> i64 {
    syscall_nr(name).unwrap_or_else(|| panic!("{name} has a number on this arch"))
}

/// One decision: under `caps`, syscall `name` with arg0 (and arg1) gets `expected`.
fn check(caps: &[Capability], name: &str, arg0: u64, expected: RuleAction) {
    let got = plan(caps).decide(nr(name), [arg0, 0, 0, 0, 0, 0]);
    assert_eq!(got, expected, "{name}({arg0:#x}) with caps {caps:?}");
}

#[test]
fn default_caps_decisions_match_docker() {
    let caps = docker_default_caps();
    let ns = libc::CLONE_NEWNS as u64;
    let cases: &[(&str, u64, RuleAction)] = &[
        ("getpid", 0, RuleAction::Allow),
        ("write", 1, RuleAction::Allow),
        ("openat", 0, RuleAction::Allow),
        ("mount", 0, EPERM),
        ("unshare", libc::CLONE_NEWUSER as u64, EPERM),
        ("keyctl", 0, EPERM),
        ("clone", libc::SIGCHLD as u64, RuleAction::Allow),
        ("clone", ns | libc::SIGCHLD as u64, EPERM),
        ("clone", libc::CLONE_NEWUSER as u64, EPERM),
        ("clone3", 0, ENOSYS),
        ("personality", 0, RuleAction::Allow),
        ("personality", 0xffff_ffff, RuleAction::Allow),
        ("personality", 0x0040000, EPERM), // ADDR_NO_RANDOMIZE
        ("socket", libc::AF_INET as u64, RuleAction::Allow),
        ("socket", libc::AF_UNIX as u64, RuleAction::Allow),
        ("socket", libc::AF_NETLINK as u64, RuleAction::Allow),
        ("socket", 45, RuleAction::Allow), // AF_MCTP
        ("socket", libc::AF_VSOCK as u64, EPERM),
        ("socket", libc::AF_ALG as u64, EPERM),
        ("socket", 46, EPERM),
        ("socket", 1 << 32 | libc::AF_INET as u64, EPERM),
        ("chroot", 0, RuleAction::Allow), // CAP_SYS_CHROOT is a default
        ("ptrace", 0, RuleAction::Allow), // kernel >= 4.8
        ("reboot", 0, EPERM),
        ("init_module", 0, EPERM),
        ("bpf", 0, EPERM),
        ("open_by_handle_at", 0, EPERM),
    ];
    for (name, arg0, expected) in cases {
        check(&caps, name, *arg0, *expected);
    }
}

#[test]
fn capabilities_open_their_syscalls() {
    let mut caps = docker_default_caps();
    caps.push(Capability::SysAdmin);
    let ns = (libc::CLONE_NEWNS | libc::CLONE_NEWUSER) as u64;
    check(&caps, "clone", ns, RuleAction::Allow);
    check(&caps, "clone3", 0, RuleAction::Allow);
    check(&caps, "mount", 0, RuleAction::Allow);
    check(&caps, "unshare", ns, RuleAction::Allow);
    check(&caps, "keyctl", 0, EPERM);
    check(
        &[Capability::SysModule],
        "finit_module",
        0,
        RuleAction::Allow,
    );
    check(&[Capability::SysBoot], "reboot", 0, RuleAction::Allow);
    check(&[Capability::Bpf], "bpf", 0, RuleAction::Allow);
    check(
        &[Capability::DacReadSearch],
        "open_by_handle_at",
        0,
        RuleAction::Allow,
    );
    // Without CAP_SYS_CHROOT there is no chroot.
    check(&[], "chroot", 0, EPERM);
}

#[test]
fn old_kernels_lose_ptrace_and_unknown_kernels_too() {
    let ctx = |kernel| PlanContext {
        caps: &[],
        arch: native_arch().expect("supported arch").1,
        kernel,
    };
    let ptrace = nr("ptrace");
    let args = [0; 6];
    assert_eq!(
        Plan::docker_default(&ctx(Some((4, 7)))).decide(ptrace, args),
        EPERM
    );
    assert_eq!(Plan::docker_default(&ctx(None)).decide(ptrace, args), EPERM);
    assert_eq!(
        Plan::docker_default(&ctx(Some((4, 8)))).decide(ptrace, args),
        RuleAction::Allow
    );
}

#[test]
fn kernel_release_strings_parse() {
    assert_eq!(parse_kernel_release("6.18.0-1-amd64"), Some((6, 18)));
    assert_eq!(parse_kernel_release("4.8.0"), Some((4, 8)));
    assert_eq!(parse_kernel_release("5.15+"), Some((5, 15)));
    assert_eq!(parse_kernel_release("garbage"), None);
}

/// Names of the profile that do not exist on x86_64 (32-bit ABIs, other
/// architectures, calls removed before x86_64 existed). A profile name
/// missing from the table and not listed here is a typo.
#[cfg(target_arch = "x86_64")]
const ABSENT_ON_X86_64: &[&str] = &[
    "_llseek",
    "_newselect",
    "arm_fadvise64_64",
    "arm_sync_file_range",
    "breakpoint",
    "cacheflush",
    "chown32",
    "clock_adjtime64",
    "clock_getres_time64",
    "clock_gettime64",
    "clock_nanosleep_time64",
    "clock_settime64",
    "fadvise64_64",
    "fchown32",
    "fcntl64",
    "fstat64",
    "fstatat64",
    "fstatfs64",
    "ftruncate64",
    "futex_time64",
    "getegid32",
    "geteuid32",
    "getgid32",
    "getgroups32",
    "getresgid32",
    "getresuid32",
    "getuid32",
    "io_pgetevents_time64",
    "ipc",
    "lchown32",
    "lstat64",
    "mmap2",
    "mq_timedreceive_time64",
    "mq_timedsend_time64",
    "ppoll_time64",
    "pselect6_time64",
    "recv",
    "recvmmsg_time64",
    "riscv_flush_icache",
    "riscv_hwprobe",
    "rt_sigtimedwait_time64",
    "s390_pci_mmio_read",
    "s390_pci_mmio_write",
    "s390_runtime_instr",
    "sched_rr_get_interval_time64",
    "semtimedop_time64",
    "send",
    "sendfile64",
    "set_tls",
    "setfsgid32",
    "setfsuid32",
    "setgid32",
    "setgroups32",
    "setregid32",
    "setresgid32",
    "setresuid32",
    "setreuid32",
    "setuid32",
    "sigprocmask",
    "sigreturn",
    "socketcall",
    "stat64",
    "statfs64",
    "stime",
    "swapcontext",
    "sync_file_range2",
    "timer_gettime64",
    "timer_settime64",
    "timerfd_gettime64",
    "timerfd_settime64",
    "truncate64",
    "ugetrlimit",
    "umount",
    "utimensat_time64",
    "waitpid",
];

#[cfg(target_arch = "x86_64")]
#[test]
fn every_profile_name_is_known_or_listed_absent() {
    for rule in profile::RULES {
        for name in rule.names {
            assert!(
                syscall_nr(name).is_some() || ABSENT_ON_X86_64.contains(name),
                "{name} is neither an x86_64 syscall nor listed as absent"
            );
        }
    }
    for name in ABSENT_ON_X86_64 {
        assert!(syscall_nr(name).is_none(), "{name} exists on x86_64");
    }
    // Spot checks of the table against libc's constants.
    for (name, libc_nr) in [
        ("read", libc::SYS_read),
        ("clone3", libc::SYS_clone3),
        ("openat2", libc::SYS_openat2),
        ("uretprobe", 335),
        ("getxattrat", 464),
    ] {
        assert_eq!(syscall_nr(name), Some(libc_nr), "{name}");
    }
}

#[test]
fn compiles_to_two_stacked_filters_without_sys_admin() {
    let prog = docker_default_filter(&docker_default_caps()).expect("compiles");
    assert_eq!(prog.filter_count(), 2, "allow-list + clone3 ENOSYS");
    let mut caps = docker_default_caps();
    caps.push(Capability::SysAdmin);
    let prog = docker_default_filter(&caps).expect("compiles");
    assert_eq!(
        prog.filter_count(),
        1,
        "no ENOSYS filter with CAP_SYS_ADMIN"
    );
}

fn raw(nr: libc::c_long, a: [libc::c_long; 3]) -> i64 {
    // SAFETY: test syscalls with integer or null arguments; a clone that
    // succeeds is handled by the caller.
    let rc = unsafe { libc::syscall(nr, a[0], a[1], a[2], 0, 0, 0) };
    if rc < 0 {
        -(Errno::last() as i64)
    } else {
        rc
    }
}

/// `clone(flags)` used like fork: a created grandchild exits at once and
/// is reaped; returns 1 on success, -errno on failure.
fn clone_probe(flags: libc::c_long) -> i64 {
    let rc = raw(libc::SYS_clone, [flags, 0, 0]);
    if rc == 0 {
        // SAFETY: leave the grandchild immediately.
        unsafe { libc::_exit(0) };
    }
    if rc > 0 {
        // Reap our own grandchild.
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(rc as libc::pid_t), None);
        return 1;
    }
    rc
}

/// Runs in a forked child: installs the program, then reports the result
/// of each probe syscall (>= 0 on success, -errno on failure).
fn probe_under_filter(prog: &SeccompProgram) -> [i64; 10] {
    let newns = libc::CLONE_NEWNS as libc::c_long;
    let sigchld = libc::SIGCHLD as libc::c_long;
    run_in_child(|| {
        if set_no_new_privs().is_err() || install(prog).is_err() {
            return [i64::MIN; 10];
        }
        let path = c"/".as_ptr() as libc::c_long;
        let unshare = raw(
            libc::SYS_unshare,
            [
                (libc::CLONE_NEWUSER | libc::CLONE_NEWNS) as libc::c_long,
                0,
                0,
            ],
        );
        let keyctl = raw(libc::SYS_keyctl, [0, 0, 0]);
        let mount = raw(libc::SYS_mount, [0, path, 0]);
        let getpid = raw(libc::SYS_getpid, [0, 0, 0]);
        let openat = raw(libc::SYS_openat, [libc::AT_FDCWD as libc::c_long, path, 0]);
        let clone_ns = clone_probe(newns | sigchld);
        let clone3 = raw(libc::SYS_clone3, [0, 0, 0]);
        let vsock = raw(libc::SYS_socket, [libc::AF_VSOCK as libc::c_long, 1, 0]);
        let plain = clone_probe(sigchld);
        let unshare_ns = raw(libc::SYS_unshare, [newns, 0, 0]);
        [
            unshare, keyctl, mount, getpid, openat, clone_ns, clone3, vsock, plain, unshare_ns,
        ]
    })
}

#[test]
fn installed_filter_denies_and_allows_like_docker() {
    let prog = docker_default_filter(&docker_default_caps()).expect("compiles");
    let [unshare, keyctl, mount, getpid, openat, clone_ns, clone3, vsock, plain, unshare_ns] =
        probe_under_filter(&prog);
    let eperm = -(libc::EPERM as i64);
    assert_eq!(unshare, eperm, "unshare(NEWUSER|NEWNS)");
    assert_eq!(keyctl, eperm, "keyctl");
    assert_eq!(mount, eperm, "mount");
    assert!(getpid > 0, "getpid: {getpid}");
    assert!(openat >= 0, "openat: {openat}");
    assert_eq!(clone_ns, eperm, "clone(CLONE_NEWNS)");
    assert_eq!(clone3, -(libc::ENOSYS as i64), "clone3");
    assert_eq!(vsock, eperm, "socket(AF_VSOCK)");
    assert_eq!(plain, 1, "clone(SIGCHLD) forks");
    assert_eq!(unshare_ns, eperm, "unshare(NEWNS)");
}

#[test]
fn installed_filter_with_sys_admin_allows_namespaces() {
    assert_eq!(nix::unistd::geteuid().as_raw(), 0, "this test runs as root");
    let mut caps = docker_default_caps();
    caps.push(Capability::SysAdmin);
    let prog = docker_default_filter(&caps).expect("compiles");
    let out = probe_under_filter(&prog);
    let (mount, clone_ns, clone3, unshare_ns) = (out[2], out[5], out[6], out[9]);
    assert_eq!(clone_ns, 1, "clone(CLONE_NEWNS) works with CAP_SYS_ADMIN");
    // mount(NULL, "/", NULL) reaches the kernel, which rejects the null source.
    assert_ne!(mount, -(libc::EPERM as i64), "mount is allowed");
    // clone3 with a null struct reaches the kernel: EFAULT or EINVAL.
    assert_ne!(clone3, -(libc::ENOSYS as i64), "clone3 is allowed");
    assert_eq!(
        unshare_ns, 0,
        "unshare(CLONE_NEWNS) works with CAP_SYS_ADMIN"
    );
}

#[test]
fn install_without_no_new_privs_or_sys_admin_fails_with_eacces() {
    let prog = docker_default_filter(&docker_default_caps()).expect("compiles");
    let caps = docker_default_caps();
    let out = run_in_child(|| {
        // Docker's default set has no CAP_SYS_ADMIN.
        if crate::runtime::caps::apply_capabilities(&caps).is_err() {
            return [1, 0];
        }
        match install(&prog) {
            Ok(()) => [2, 0],
            Err(SeccompError::Install { errno, .. }) => [0, errno as i64],
            Err(_) => [3, 0],
        }
    });
    assert_eq!(out, [0, libc::EACCES as i64]);
}

/// x32 syscalls carry the x86_64 audit arch with bit 30 set in the number;
/// no allow rule matches them, so they get EPERM instead of running.
#[cfg(target_arch = "x86_64")]
#[test]
fn x32_syscalls_are_denied() {
    const X32_SYSCALL_BIT: libc::c_long = 0x4000_0000;
    let prog = docker_default_filter(&docker_default_caps()).expect("compiles");
    let out = run_in_child(|| {
        if set_no_new_privs().is_err() || install(&prog).is_err() {
            return [i64::MIN];
        }
        [raw(X32_SYSCALL_BIT | libc::SYS_getpid, [0, 0, 0])]
    });
    assert_eq!(out, [-(libc::EPERM as i64)]);
}

#[test]
fn program_size_stays_well_below_the_kernel_limit() {
    // BPF_MAXINSNS is 4096 per filter; Docker's profile is a few hundred
    // syscalls, each a compare and a return or a short argument chain.
    let prog = docker_default_filter(&docker_default_caps()).expect("compiles");
    assert!(
        prog.instruction_count() < 2048,
        "{}",
        prog.instruction_count()
    );
}
