//! End-to-end check of the call order documented in `mod.rs`: a forked
//! child runs the security steps as a container init would and execs
//! busybox, which reports what the kernel says about it afterwards. This
//! is what `docker run` users observe in `/proc/self/status`.

use std::ffi::CString;
use std::fs::File;
use std::io::Read;

use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, pipe, setgroups, setresgid, setresuid, ForkResult, Gid, Uid};

use crate::runtime::caps::{
    apply_capabilities, docker_default_caps, set_keep_caps, set_no_new_privs,
};
use crate::runtime::rlimits::{apply as apply_rlimits, parse_ulimit};
use crate::runtime::seccomp::{docker_default_filter, install};

/// What busybox reports once it runs in the container.
const SCRIPT: &str = "grep -E '^(Uid|Gid|Groups|CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp|Seccomp_filters):' /proc/self/status; \
ulimit -n; \
unshare -m true 2>/dev/null && echo unshare=ok || echo unshare=denied";

/// Runs the documented sequence for `uid`/`gid` with `extra_gids`, with or
/// without no_new_privs, and returns busybox's report.
fn run_sequence(uid: u32, gid: u32, extra_gids: &[u32], no_new_privs: bool) -> String {
    assert_eq!(nix::unistd::geteuid().as_raw(), 0, "this test runs as root");
    // Everything allocated before the fork.
    let caps = docker_default_caps();
    let program = docker_default_filter(&caps).expect("filter compiles");
    let limits = [parse_ulimit("nofile=512:1024").expect("valid ulimit")];
    let groups: Vec<Gid> = extra_gids.iter().map(|&g| Gid::from_raw(g)).collect();
    let (uid, gid) = (Uid::from_raw(uid), Gid::from_raw(gid));
    let busybox = CString::new("/bin/busybox").expect("no nul");
    let args = [
        CString::new("sh").expect("no nul"),
        CString::new("-c").expect("no nul"),
        CString::new(SCRIPT).expect("no nul"),
    ];
    let argv: Vec<*const libc::c_char> = args
        .iter()
        .map(|a| a.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    let envp: [*const libc::c_char; 1] = [std::ptr::null()];
    let (read_end, write_end) = pipe().expect("pipe");

    // SAFETY: the child makes only syscalls on the data prepared above and
    // ends in execve or _exit.
    match unsafe { fork() }.expect("fork") {
        ForkResult::Child => {
            let fail = |step: i32| -> ! {
                // SAFETY: leave the child without running harness code.
                unsafe { libc::_exit(step) }
            };
            if rustix::stdio::dup2_stdout(&write_end).is_err() {
                fail(10);
            }
            if apply_rlimits(&limits).is_err() {
                fail(11);
            }
            if set_keep_caps().is_err() {
                fail(12);
            }
            if !no_new_privs && install(&program).is_err() {
                fail(13);
            }
            if setgroups(&groups).is_err()
                || setresgid(gid, gid, gid).is_err()
                || setresuid(uid, uid, uid).is_err()
            {
                fail(14);
            }
            if apply_capabilities(&caps).is_err() {
                fail(15);
            }
            if no_new_privs && (set_no_new_privs().is_err() || install(&program).is_err()) {
                fail(16);
            }
            // SAFETY: argv and envp are null-terminated arrays of C strings.
            unsafe { libc::execve(busybox.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
            fail(17)
        }
        ForkResult::Parent { child } => {
            drop(write_end);
            let mut out = String::new();
            File::from(read_end)
                .read_to_string(&mut out)
                .expect("read report");
            let status = waitpid(child, None).expect("waitpid");
            assert_eq!(status, WaitStatus::Exited(child, 0), "output so far: {out}");
            out
        }
    }
}

fn field<'a>(report: &'a str, name: &str) -> &'a str {
    report
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .map(str::trim)
        .unwrap_or_else(|| panic!("{name} missing from {report}"))
}

#[test]
fn root_container_gets_docker_default_caps_and_seccomp() {
    let report = run_sequence(0, 0, &[], false);
    assert_eq!(field(&report, "CapEff"), "00000000a80425fb", "{report}");
    assert_eq!(field(&report, "CapPrm"), "00000000a80425fb");
    assert_eq!(field(&report, "CapBnd"), "00000000a80425fb");
    assert_eq!(field(&report, "CapInh"), "0000000000000000");
    assert_eq!(field(&report, "CapAmb"), "0000000000000000");
    assert_eq!(field(&report, "Seccomp"), "2");
    assert_eq!(field(&report, "Seccomp_filters"), "2");
    assert_eq!(field(&report, "NoNewPrivs"), "0");
    assert!(report.contains("\n512\n"), "ulimit -n: {report}");
    assert!(report.contains("unshare=denied"), "{report}");
}

#[test]
fn non_root_container_has_no_effective_caps_after_exec() {
    let report = run_sequence(1000, 1000, &[10, 100], false);
    assert!(
        field(&report, "Uid").starts_with("1000\t1000\t1000"),
        "{report}"
    );
    assert!(field(&report, "Gid").starts_with("1000\t1000\t1000"));
    assert_eq!(field(&report, "Groups"), "10 100");
    // Docker: `docker run --user 1000` shows exactly this.
    assert_eq!(field(&report, "CapEff"), "0000000000000000");
    assert_eq!(field(&report, "CapPrm"), "0000000000000000");
    assert_eq!(field(&report, "CapBnd"), "00000000a80425fb");
    assert_eq!(field(&report, "Seccomp"), "2");
}

#[test]
fn no_new_privileges_variant_installs_after_dropping_privileges() {
    let report = run_sequence(1000, 1000, &[], true);
    assert_eq!(field(&report, "NoNewPrivs"), "1", "{report}");
    assert_eq!(field(&report, "Seccomp"), "2");
    assert_eq!(field(&report, "Seccomp_filters"), "2");
    assert!(report.contains("unshare=denied"), "{report}");
}
