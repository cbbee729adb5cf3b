//! Docker's default seccomp profile as data (moby/profiles
//! `seccomp/default_linux.go`, the source `default.json` is generated from).
//!
//! Default action: ERRNO(EPERM). Rules allow syscalls, some only with
//! argument conditions, some only on certain architectures, kernels or with
//! certain capabilities; `clone3` returns ENOSYS without CAP_SYS_ADMIN so
//! that glibc falls back to `clone`, whose flags the profile can inspect
//! (clone3 passes them behind a pointer).

use crate::runtime::caps::Capability;

/// What a matching rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RuleAction {
    /// Let the syscall run.
    Allow,
    /// Fail the syscall with this errno.
    Errno(u32),
}

/// One argument comparison; all comparisons of a rule must hold (AND),
/// comparing the full 64-bit argument as libseccomp does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ArgCmp {
    /// `arg == value`
    Eq(u8, u64),
    /// `arg <= value`
    Le(u8, u64),
    /// `arg >= value`
    Ge(u8, u64),
    /// `arg & mask == value`
    MaskedEq(u8, u64, u64),
}

/// When a rule is part of the filter; Docker's `includes`/`excludes`.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Condition {
    /// Included only if all these caps are granted; excluded if any is.
    pub caps: &'static [Capability],
    /// Docker architecture names (`amd64`, `arm64`, ...).
    pub arches: &'static [&'static str],
    /// Included only on kernels at least this (major, minor).
    pub min_kernel: Option<(u32, u32)>,
}

/// One rule of the profile.
#[derive(Debug, Clone, Copy)]
pub(super) struct Rule {
    pub names: &'static [&'static str],
    pub action: RuleAction,
    pub args: &'static [ArgCmp],
    pub includes: Condition,
    pub excludes: Condition,
}

const NONE: Condition = Condition {
    caps: &[],
    arches: &[],
    min_kernel: None,
};

const fn allow(names: &'static [&'static str]) -> Rule {
    Rule {
        names,
        action: RuleAction::Allow,
        args: &[],
        includes: NONE,
        excludes: NONE,
    }
}

const fn allow_with(names: &'static [&'static str], args: &'static [ArgCmp]) -> Rule {
    Rule {
        args,
        ..allow(names)
    }
}

const fn allow_for_caps(caps: &'static [Capability], names: &'static [&'static str]) -> Rule {
    Rule {
        includes: Condition {
            caps,
            arches: &[],
            min_kernel: None,
        },
        ..allow(names)
    }
}

const fn allow_on(arches: &'static [&'static str], names: &'static [&'static str]) -> Rule {
    Rule {
        includes: Condition {
            caps: &[],
            arches,
            min_kernel: None,
        },
        ..allow(names)
    }
}

/// The syscalls every container may make, whatever its capabilities.
#[rustfmt::skip]
const ALWAYS_ALLOWED: &[&str] = &[
    "accept", "accept4", "access", "adjtimex", "alarm", "bind", "brk", "cachestat", "capget",
    "capset", "chdir", "chmod", "chown", "chown32", "clock_adjtime", "clock_adjtime64",
    "clock_getres", "clock_getres_time64", "clock_gettime", "clock_gettime64", "clock_nanosleep",
    "clock_nanosleep_time64", "close", "close_range", "connect", "copy_file_range", "creat", "dup",
    "dup2", "dup3", "epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old", "epoll_pwait",
    "epoll_pwait2", "epoll_wait", "epoll_wait_old", "eventfd", "eventfd2", "execve", "execveat",
    "exit", "exit_group", "faccessat", "faccessat2", "fadvise64", "fadvise64_64", "fallocate",
    "fanotify_mark", "fchdir", "fchmod", "fchmodat", "fchmodat2", "fchown", "fchown32", "fchownat",
    "fcntl", "fcntl64", "fdatasync", "fgetxattr", "flistxattr", "flock", "fork", "fremovexattr",
    "fsetxattr", "fstat", "fstat64", "fstatat64", "fstatfs", "fstatfs64", "fsync", "ftruncate",
    "ftruncate64", "futex", "futex_requeue", "futex_time64", "futex_wait", "futex_waitv",
    "futex_wake", "futimesat", "getcpu", "getcwd", "getdents", "getdents64", "getegid",
    "getegid32", "geteuid", "geteuid32", "getgid", "getgid32", "getgroups", "getgroups32",
    "getitimer", "getpeername", "getpgid", "getpgrp", "getpid", "getppid", "getpriority",
    "getrandom", "getresgid", "getresgid32", "getresuid", "getresuid32", "getrlimit",
    "get_robust_list", "getrusage", "getsid", "getsockname", "getsockopt", "get_thread_area",
    "gettid", "gettimeofday", "getuid", "getuid32", "getxattr", "getxattrat", "inotify_add_watch",
    "inotify_init", "inotify_init1", "inotify_rm_watch", "io_cancel", "ioctl", "io_destroy",
    "io_getevents", "io_pgetevents", "io_pgetevents_time64", "ioprio_get", "ioprio_set",
    "io_setup", "io_submit", "ipc", "kill", "landlock_add_rule", "landlock_create_ruleset",
    "landlock_restrict_self", "lchown", "lchown32", "lgetxattr", "link", "linkat", "listen",
    "listmount", "listxattr", "listxattrat", "llistxattr", "_llseek", "lremovexattr", "lseek",
    "lsetxattr", "lstat", "lstat64", "madvise", "map_shadow_stack", "membarrier", "memfd_create",
    "memfd_secret", "mincore", "mkdir", "mkdirat", "mknod", "mknodat", "mlock", "mlock2",
    "mlockall", "mmap", "mmap2", "mprotect", "mq_getsetattr", "mq_notify", "mq_open",
    "mq_timedreceive", "mq_timedreceive_time64", "mq_timedsend", "mq_timedsend_time64",
    "mq_unlink", "mremap", "mseal", "msgctl", "msgget", "msgrcv", "msgsnd", "msync", "munlock",
    "munlockall", "munmap", "name_to_handle_at", "nanosleep", "newfstatat", "_newselect", "open",
    "openat", "openat2", "pause", "pidfd_open", "pidfd_send_signal", "pipe", "pipe2", "pkey_alloc",
    "pkey_free", "pkey_mprotect", "poll", "ppoll", "ppoll_time64", "prctl", "pread64", "preadv",
    "preadv2", "prlimit64", "process_mrelease", "pselect6", "pselect6_time64", "pwrite64",
    "pwritev", "pwritev2", "read", "readahead", "readlink", "readlinkat", "readv", "recv",
    "recvfrom", "recvmmsg", "recvmmsg_time64", "recvmsg", "remap_file_pages", "removexattr",
    "removexattrat", "rename", "renameat", "renameat2", "restart_syscall", "riscv_hwprobe",
    "rmdir", "rseq", "rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo",
    "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait", "rt_sigtimedwait_time64",
    "rt_tgsigqueueinfo", "sched_getaffinity", "sched_getattr", "sched_getparam",
    "sched_get_priority_max", "sched_get_priority_min", "sched_getscheduler",
    "sched_rr_get_interval", "sched_rr_get_interval_time64", "sched_setaffinity", "sched_setattr",
    "sched_setparam", "sched_setscheduler", "sched_yield", "seccomp", "select", "semctl", "semget",
    "semop", "semtimedop", "semtimedop_time64", "send", "sendfile", "sendfile64", "sendmmsg",
    "sendmsg", "sendto", "setfsgid", "setfsgid32", "setfsuid", "setfsuid32", "setgid", "setgid32",
    "setgroups", "setgroups32", "setitimer", "setpgid", "setpriority", "setregid", "setregid32",
    "setresgid", "setresgid32", "setresuid", "setresuid32", "setreuid", "setreuid32", "setrlimit",
    "set_robust_list", "setsid", "setsockopt", "set_thread_area", "set_tid_address", "setuid",
    "setuid32", "setxattr", "setxattrat", "shmat", "shmctl", "shmdt", "shmget", "shutdown",
    "sigaltstack", "signalfd", "signalfd4", "sigprocmask", "sigreturn", "socketcall", "socketpair",
    "splice", "stat", "stat64", "statfs", "statfs64", "statmount", "statx", "symlink", "symlinkat",
    "sync", "sync_file_range", "syncfs", "sysinfo", "tee", "tgkill", "time", "timer_create",
    "timer_delete", "timer_getoverrun", "timer_gettime", "timer_gettime64", "timer_settime",
    "timer_settime64", "timerfd_create", "timerfd_gettime", "timerfd_gettime64", "timerfd_settime",
    "timerfd_settime64", "times", "tkill", "truncate", "truncate64", "ugetrlimit", "umask",
    "uname", "unlink", "unlinkat", "uretprobe", "utime", "utimensat", "utimensat_time64", "utimes",
    "vfork", "vmsplice", "wait4", "waitid", "waitpid", "write", "writev",
];

/// Address families `socket(2)` may create (Docker's `allowedSocketDomains`,
/// by number from linux/socket.h). Missing on purpose: 0 AF_UNSPEC (not
/// creatable), 12 AF_DECnet, 19 AF_ECONET, 20 AF_ATMSVC, 23 AF_IRDA,
/// 25 AF_WANPIPE, 34 AF_ISDN, 37 AF_CAIF (removed from the kernel),
/// 38 AF_ALG (kernel crypto API attack surface) and 40 AF_VSOCK (crosses
/// network namespaces before Linux 7.0).
pub(super) const ALLOWED_SOCKET_DOMAINS: &[u64] = &[
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10,
    11, // UNIX INET AX25 IPX APPLETALK NETROM BRIDGE ATMPVC X25 INET6 ROSE
    13, 14, 15, 16, 17, 18, // NETBEUI SECURITY KEY NETLINK PACKET ASH
    21, 22, 24, // RDS SNA PPPOX
    26, 27, 28, 29, 30, 31, 32, 33, // LLC IB MPLS CAN TIPC BLUETOOTH IUCV RXRPC
    35, 36, 39, // PHONET IEEE802154 NFC
    41, 42, 43, 44, 45, // KCM QIPCRTR SMC XDP MCTP
];

/// The clone flags that create namespaces; without CAP_SYS_ADMIN `clone`
/// is allowed only when none of them is set.
pub(super) const NAMESPACE_CLONE_FLAGS: u64 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWCGROUP) as u64;

use Capability as C;

/// Every rule of Docker's default profile except the socket domain rules,
/// which [`super::socket_rules`] derives from [`ALLOWED_SOCKET_DOMAINS`].
pub(super) const RULES: &[Rule] = &[
    allow(ALWAYS_ALLOWED),
    Rule {
        includes: Condition {
            caps: &[],
            arches: &[],
            min_kernel: Some((4, 8)),
        },
        // Before 4.8 ptrace could bypass seccomp (the tracer could change
        // the syscall after the filter ran).
        ..allow(&["process_vm_readv", "process_vm_writev", "ptrace"])
    },
    // personality(2): only the plain Linux persona, 32-bit emulation
    // (PER_LINUX32 = 0x8), UNAME26 (0x20000) and their mix, and the query
    // 0xffffffff; others like ADDR_NO_RANDOMIZE weaken the container.
    allow_with(&["personality"], &[ArgCmp::Eq(0, 0x0)]),
    allow_with(&["personality"], &[ArgCmp::Eq(0, 0x0008)]),
    allow_with(&["personality"], &[ArgCmp::Eq(0, 0x20000)]),
    allow_with(&["personality"], &[ArgCmp::Eq(0, 0x20008)]),
    allow_with(&["personality"], &[ArgCmp::Eq(0, 0xffff_ffff)]),
    allow_on(&["ppc64le"], &["sync_file_range2", "swapcontext"]),
    allow_on(
        &["arm", "arm64"],
        &[
            "arm_fadvise64_64",
            "arm_sync_file_range",
            "sync_file_range2",
            "breakpoint",
            "cacheflush",
            "set_tls",
        ],
    ),
    allow_on(&["amd64", "x32"], &["arch_prctl"]),
    allow_on(&["amd64", "x32", "x86"], &["modify_ldt"]),
    allow_on(
        &["s390", "s390x"],
        &[
            "s390_pci_mmio_read",
            "s390_pci_mmio_write",
            "s390_runtime_instr",
        ],
    ),
    allow_on(&["riscv64"], &["riscv_flush_icache"]),
    allow_for_caps(&[C::DacReadSearch], &["open_by_handle_at"]),
    allow_for_caps(
        &[C::SysAdmin],
        &[
            "bpf",
            "clone",
            "clone3",
            "fanotify_init",
            "fsconfig",
            "fsmount",
            "fsopen",
            "fspick",
            "lookup_dcookie",
            "lsm_get_self_attr",
            "lsm_list_modules",
            "lsm_set_self_attr",
            "mount",
            "mount_setattr",
            "move_mount",
            "open_tree",
            "perf_event_open",
            "quotactl",
            "quotactl_fd",
            "setdomainname",
            "sethostname",
            "setns",
            "syslog",
            "umount",
            "umount2",
            "unshare",
        ],
    ),
    Rule {
        excludes: Condition {
            caps: &[C::SysAdmin],
            arches: &["s390", "s390x"],
            min_kernel: None,
        },
        ..allow_with(&["clone"], &[ArgCmp::MaskedEq(0, NAMESPACE_CLONE_FLAGS, 0)])
    },
    // s390 passes clone's flags as the second argument.
    Rule {
        includes: Condition {
            caps: &[],
            arches: &["s390", "s390x"],
            min_kernel: None,
        },
        excludes: Condition {
            caps: &[C::SysAdmin],
            arches: &[],
            min_kernel: None,
        },
        ..allow_with(&["clone"], &[ArgCmp::MaskedEq(1, NAMESPACE_CLONE_FLAGS, 0)])
    },
    Rule {
        action: RuleAction::Errno(libc::ENOSYS as u32),
        excludes: Condition {
            caps: &[C::SysAdmin],
            arches: &[],
            min_kernel: None,
        },
        ..allow(&["clone3"])
    },
    allow_for_caps(&[C::SysBoot], &["reboot"]),
    allow_for_caps(&[C::SysChroot], &["chroot"]),
    allow_for_caps(
        &[C::SysModule],
        &["delete_module", "init_module", "finit_module"],
    ),
    allow_for_caps(&[C::SysPacct], &["acct"]),
    allow_for_caps(
        &[C::SysPtrace],
        &[
            "kcmp",
            "pidfd_getfd",
            "process_madvise",
            "process_vm_readv",
            "process_vm_writev",
            "ptrace",
        ],
    ),
    allow_for_caps(&[C::SysRawio], &["iopl", "ioperm"]),
    allow_for_caps(
        &[C::SysTime],
        &["settimeofday", "stime", "clock_settime", "clock_settime64"],
    ),
    allow_for_caps(&[C::SysTtyConfig], &["vhangup"]),
    allow_for_caps(
        &[C::SysNice],
        &[
            "get_mempolicy",
            "mbind",
            "set_mempolicy",
            "set_mempolicy_home_node",
        ],
    ),
    allow_for_caps(&[C::Syslog], &["syslog"]),
    allow_for_caps(&[C::Bpf], &["bpf"]),
    allow_for_caps(&[C::Perfmon], &["perf_event_open"]),
];
