//! Classic container escapes, each tried from inside a default `kiln run`
//! container (root, docker's capabilities and seccomp) and each required
//! to fail.
//!
//! The attacker is this very test binary: copied into a busybox rootfs with
//! the libraries it links, and started in the container as
//! `/probe probe <attack> <args>`. It prints `ESCAPED: ...` for every
//! attempt that worked and exits 1 if there was one. A custom harness
//! (`harness = false`) is what lets the binary be both the tests and the
//! attacker.

mod support;

use std::ffi::CString;
use std::path::PathBuf;
use support::kiln::Kiln;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("probe") {
        std::process::exit(probe::run(&args[2..]));
    }
    // `cargo test -- FILTER` passes a substring; flags are libtest's.
    let filter: Vec<&String> = args[1..].iter().filter(|a| !a.starts_with('-')).collect();
    let tests: &[(&str, fn())] = &[
        (
            "host_kiln_binary_cannot_be_overwritten",
            host_kiln_binary_cannot_be_overwritten,
        ),
        (
            "host_files_are_unreachable_through_proc",
            host_files_are_unreachable_through_proc,
        ),
        ("mounting_is_refused", mounting_is_refused),
        (
            "host_processes_cannot_be_traced_or_entered",
            host_processes_cannot_be_traced_or_entered,
        ),
        (
            "block_devices_cannot_be_opened",
            block_devices_cannot_be_opened,
        ),
        (
            "cgroup_files_cannot_be_written",
            cgroup_files_cannot_be_written,
        ),
        (
            "keyring_and_namespaces_are_refused_by_seccomp",
            keyring_and_namespaces_are_refused_by_seccomp,
        ),
        (
            "host_network_traffic_cannot_be_sniffed",
            host_network_traffic_cannot_be_sniffed,
        ),
    ];
    if args.iter().any(|a| a == "--list") {
        for (name, _) in tests {
            println!("{name}: test");
        }
        return;
    }
    let mut failed = 0;
    for (name, test) in tests {
        if !filter.is_empty() && !filter.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        let ok = std::panic::catch_unwind(test).is_ok();
        println!("test {name} ... {}", if ok { "ok" } else { "FAILED" });
        failed += usize::from(!ok);
    }
    println!("escape tests: {failed} failed");
    std::process::exit(i32::from(failed > 0));
}

/// Regression (issue 10, item 4): on the host's network (`kiln run`'s
/// default then; the default bridge now) a container with CAP_NET_RAW
/// captured a loopback request with its `Authorization: Bearer` header.
/// CAP_NET_RAW is now dropped there unless asked for by name.
fn host_network_traffic_cannot_be_sniffed() {
    let f = attacker_fixture();
    let report = attack(&f, &["--network", "host"], &["sniff"]);
    assert!(
        report.contains("blocked: AF_PACKET socket on lo"),
        "{report}"
    );
    // Asked for explicitly, the capability is there: the probe can tell.
    let ran = f.run_rootfs(
        &["--rm", "--network", "host", "--cap-add", "NET_RAW"],
        &["/probe", "probe", "sniff"],
    );
    assert!(
        ran.stdout.contains("ESCAPED: AF_PACKET socket on lo"),
        "{ran:?}"
    );
}

/// A rootfs holding this binary as `/probe` and the libraries it needs.
fn attacker_fixture() -> Kiln {
    let f = Kiln::with_busybox_rootfs();
    let exe = std::env::current_exe().unwrap();
    std::fs::copy(&exe, f.rootfs().join("probe")).unwrap();
    let ldd = std::process::Command::new("ldd")
        .arg(&exe)
        .output()
        .unwrap();
    for line in String::from_utf8_lossy(&ldd.stdout).lines() {
        let lib = line
            .split_whitespace()
            .find(|w| w.starts_with('/'))
            .map(PathBuf::from);
        if let Some(lib) = lib {
            let dest = f.rootfs().join(lib.strip_prefix("/").unwrap());
            std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
            std::fs::copy(&lib, &dest).unwrap();
        }
    }
    f
}

/// Runs `/probe probe <args>` in a container with `flags`; asserts that the
/// probe ran and no attempt escaped; returns its report.
#[track_caller]
fn attack(f: &Kiln, flags: &[&str], args: &[&str]) -> String {
    let mut cmd = vec!["/probe", "probe"];
    cmd.extend_from_slice(args);
    let mut all = vec!["--rm"];
    all.extend_from_slice(flags);
    let ran = f.run_rootfs(&all, &cmd);
    let report = format!("{}{}", ran.stdout, ran.stderr);
    assert!(report.contains("probe done"), "probe did not run: {ran:?}");
    assert!(!report.contains("ESCAPED"), "{report}");
    assert_eq!(ran.code, 0, "{report}");
    report
}

fn host_kiln_binary_cannot_be_overwritten() {
    let f = attacker_fixture();
    let before = std::fs::read(support::kiln::KILN).unwrap();
    // With --init, kiln itself is PID 1 inside: the CVE-2019-5736 target.
    let report = attack(&f, &["--init"], &["exe"]);
    assert!(
        report.contains("blocked: open /proc/1/exe for writing"),
        "{report}"
    );
    assert_eq!(
        std::fs::read(support::kiln::KILN).unwrap(),
        before,
        "the host kiln binary changed"
    );
}

fn host_files_are_unreachable_through_proc() {
    let f = attacker_fixture();
    let secret = f.dir.path().join("host-secret");
    std::fs::write(&secret, "host-secret-content").unwrap();
    attack(&f, &[], &["host-files", secret.to_str().unwrap()]);
    attack(&f, &["--init"], &["host-files", secret.to_str().unwrap()]);
}

fn mounting_is_refused() {
    let f = attacker_fixture();
    attack(&f, &[], &["mount"]);
}

fn host_processes_cannot_be_traced_or_entered() {
    let f = attacker_fixture();
    let me = std::process::id().to_string();
    attack(&f, &["--init"], &["ptrace", &me]);
}

fn block_devices_cannot_be_opened() {
    let f = attacker_fixture();
    use std::os::unix::fs::MetadataExt;
    let dev = std::fs::metadata("/").unwrap().dev();
    let root_disk = format!(
        "b:{}:{}",
        nix::sys::stat::major(dev),
        nix::sys::stat::minor(dev)
    );
    // The host's root disk, plus two devices this host lets root open that
    // docker's policy does not (loop0, /dev/kmsg): some hosts already refuse
    // the mounted root disk, and then only these show the policy at work.
    let devices = [root_disk.as_str(), "b:7:0", "c:1:11"];
    let control = f.dir.path().join("loop0");
    nix::sys::stat::mknod(
        &control,
        nix::sys::stat::SFlag::S_IFBLK,
        nix::sys::stat::Mode::from_bits_truncate(0o600),
        nix::sys::stat::makedev(7, 0),
    )
    .unwrap();
    std::fs::File::open(&control).expect("this host lets root open loop0, as the test assumes");
    let mut args = vec!["disk"];
    args.extend_from_slice(&devices);
    let report = attack(&f, &[], &args);
    // The nodes could be made (CAP_MKNOD is a default capability): what
    // stopped the reads is the device cgroup.
    assert!(report.contains("info: mknod allowed b:7:0"), "{report}");
    // Control: a privileged container may open them, so the refusal above
    // came from kiln's device policy, not from this host.
    let ran = f.run_rootfs(
        &["--rm", "--privileged"],
        &[&["/probe", "probe"][..], &args].concat(),
    );
    assert!(
        ran.stdout.contains("ESCAPED: open b:7:0 read-only"),
        "{ran:?}"
    );
}

fn cgroup_files_cannot_be_written() {
    let f = attacker_fixture();
    attack(&f, &[], &["cgroup"]);
}

fn keyring_and_namespaces_are_refused_by_seccomp() {
    let f = attacker_fixture();
    attack(&f, &[], &["seccomp"]);
}

/// The attacker's side, running inside the container.
mod probe {
    use super::*;

    struct Report {
        escaped: bool,
    }

    impl Report {
        /// Records an attempt: `result` is Ok when the attack worked.
        fn attempt(&mut self, what: &str, result: Result<String, String>) {
            match result {
                Ok(detail) => {
                    self.escaped = true;
                    println!("ESCAPED: {what}: {detail}");
                }
                Err(e) => println!("blocked: {what}: {e}"),
            }
        }
    }

    fn errno() -> String {
        std::io::Error::last_os_error().to_string()
    }

    fn cstr(s: &str) -> CString {
        CString::new(s).unwrap()
    }

    /// open(2) returning the fd or the error text.
    fn open(path: &str, flags: i32) -> Result<i32, String> {
        // SAFETY: plain syscall on a valid C string.
        let fd = unsafe { libc::open(cstr(path).as_ptr(), flags | libc::O_CLOEXEC, 0o644) };
        if fd < 0 {
            Err(errno())
        } else {
            Ok(fd)
        }
    }

    fn sys(ret: libc::c_long) -> Result<String, String> {
        if ret < 0 {
            Err(errno())
        } else {
            Ok(format!("returned {ret}"))
        }
    }

    pub fn run(args: &[String]) -> i32 {
        let mut r = Report { escaped: false };
        let arg = |i: usize| args.get(i).cloned().unwrap_or_default();
        match arg(0).as_str() {
            "exe" => exe(&mut r),
            "host-files" => host_files(&mut r, &arg(1)),
            "mount" => mount(&mut r),
            "ptrace" => ptrace(&mut r, arg(1).parse().unwrap_or(0)),
            "disk" => disk(&mut r, &args[1..]),
            "cgroup" => cgroup(&mut r),
            "seccomp" => seccomp(&mut r),
            "sniff" => sniff(&mut r),
            other => {
                println!("unknown probe {other}");
                return 2;
            }
        }
        println!("probe done");
        i32::from(r.escaped)
    }

    /// What a sniffer needs on a shared network namespace: a packet
    /// socket bound to `lo` (every local request, headers and all) or a
    /// raw IP socket.
    fn sniff(r: &mut Report) {
        // SAFETY: socket/bind with a zeroed, filled-in sockaddr_ll.
        let packet = unsafe {
            let fd = libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                (libc::ETH_P_ALL as u16).to_be() as i32,
            );
            if fd < 0 {
                Err(errno())
            } else {
                let mut addr: libc::sockaddr_ll = std::mem::zeroed();
                addr.sll_family = libc::AF_PACKET as u16;
                addr.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
                addr.sll_ifindex = libc::if_nametoindex(c"lo".as_ptr()) as i32;
                let len = std::mem::size_of::<libc::sockaddr_ll>() as u32;
                sys(libc::bind(fd, (&addr as *const libc::sockaddr_ll).cast(), len) as libc::c_long)
                    .map(|_| "bound to lo".to_string())
            }
        };
        r.attempt("AF_PACKET socket on lo", packet);
        // SAFETY: plain socket(2).
        let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_TCP) };
        r.attempt("raw TCP socket", sys(raw as libc::c_long));
    }

    /// CVE-2019-5736: rewrite the runtime binary through /proc/<pid>/exe.
    fn exe(r: &mut Report) {
        let write = |fd: i32| {
            // SAFETY: writing a few bytes from a static buffer.
            let n = unsafe { libc::write(fd, b"#!/bin/sh\n".as_ptr().cast(), 10) };
            if n < 0 {
                Err(errno())
            } else {
                Ok(format!("wrote {n} bytes"))
            }
        };
        r.attempt(
            "open /proc/1/exe for writing",
            open("/proc/1/exe", libc::O_WRONLY).and_then(write),
        );
        // The exploit's variant: hold an O_PATH fd, reopen it writable.
        match open("/proc/1/exe", libc::O_PATH) {
            Ok(fd) => {
                let again = format!("/proc/self/fd/{fd}");
                r.attempt(
                    "reopen /proc/1/exe via O_PATH fd",
                    open(&again, libc::O_RDWR).and_then(write),
                );
            }
            Err(e) => println!("blocked: O_PATH open of /proc/1/exe: {e}"),
        }
    }

    /// CVE-2024-21626 and friends: a host path through leaked fds, cwd or
    /// another process's root.
    fn host_files(r: &mut Report, secret: &str) {
        let check = |path: &str| match std::fs::read_to_string(path) {
            Ok(s) if s == "host-secret-content" => Ok(path.to_string()),
            Ok(_) => Err("different file".to_string()),
            Err(e) => Err(e.to_string()),
        };
        r.attempt("direct path", check(secret));
        let rel = secret.trim_start_matches('/');
        let mut bases: Vec<String> = Vec::new();
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.chars().all(|c| c.is_ascii_digit()) && name != "self" && name != "thread-self"
            {
                continue;
            }
            bases.push(format!("/proc/{name}/root"));
            bases.push(format!("/proc/{name}/cwd"));
            for fd in std::fs::read_dir(format!("/proc/{name}/fd"))
                .into_iter()
                .flatten()
                .flatten()
            {
                bases.push(fd.path().display().to_string());
            }
        }
        for base in &bases {
            for up in 0..8 {
                let path = format!("{base}/{}{rel}", "../".repeat(up));
                if let Ok(found) = check(&path) {
                    r.attempt("host file through /proc", Ok(found));
                }
            }
        }
        println!(
            "blocked: host file through {} /proc roots, cwds and fds",
            bases.len()
        );
        let root = std::fs::read_link("/proc/1/root").map(|p| p.display().to_string());
        r.attempt(
            "/proc/1/root points outside",
            match root {
                Ok(p) if p != "/" => Ok(p),
                other => Err(format!("{other:?}")),
            },
        );
    }

    fn mount(r: &mut Report) {
        let m = |src: &str, dst: &str, fstype: &str, flags: libc::c_ulong| {
            // SAFETY: plain syscall on valid C strings.
            sys(unsafe {
                libc::mount(
                    cstr(src).as_ptr(),
                    cstr(dst).as_ptr(),
                    cstr(fstype).as_ptr(),
                    flags,
                    std::ptr::null(),
                )
            } as libc::c_long)
        };
        r.attempt("mount tmpfs", m("none", "/mnt", "tmpfs", 0));
        r.attempt("bind mount /", m("/", "/mnt", "", libc::MS_BIND));
        r.attempt(
            "remount /proc/sys rw",
            m("", "/proc/sys", "", libc::MS_REMOUNT | libc::MS_BIND),
        );
        // SAFETY: plain syscall on a valid C string.
        r.attempt(
            "umount /proc/sys",
            sys(
                unsafe { libc::umount2(cstr("/proc/sys").as_ptr(), libc::MNT_DETACH) }
                    as libc::c_long,
            ),
        );
        // SAFETY: plain syscall on a valid C string.
        r.attempt(
            "fsopen",
            sys(unsafe { libc::syscall(libc::SYS_fsopen, cstr("tmpfs").as_ptr(), 0) }),
        );
    }

    /// Reaching a host process: signals, ptrace, its memory, its
    /// namespaces (what nsenter does).
    fn ptrace(r: &mut Report, host_pid: i32) {
        // SAFETY: plain syscalls with integer arguments.
        unsafe {
            r.attempt(
                "kill host pid",
                sys(libc::kill(host_pid, 0) as libc::c_long),
            );
            r.attempt(
                "ptrace host pid",
                sys(libc::ptrace(libc::PTRACE_ATTACH, host_pid, 0, 0)),
            );
            r.attempt(
                "pidfd_open host pid",
                sys(libc::syscall(libc::SYS_pidfd_open, host_pid, 0)),
            );
            // PID 1 here is kiln's init: same user and capabilities, but it
            // is not dumpable. A successful attach is detached again so the
            // failure shows instead of a hang.
            let attached = sys(libc::ptrace(libc::PTRACE_ATTACH, 1, 0, 0));
            if attached.is_ok() {
                libc::waitpid(1, std::ptr::null_mut(), libc::__WALL);
                libc::ptrace(libc::PTRACE_DETACH, 1, 0, 0);
            }
            r.attempt("ptrace the container's kiln init", attached);
        }
        r.attempt(
            "read the init's environment",
            std::fs::read("/proc/1/environ")
                .map(|b| format!("{} bytes", b.len()))
                .map_err(|e| e.to_string()),
        );
        r.attempt(
            "host pid in /proc",
            match std::fs::metadata(format!("/proc/{host_pid}/status")) {
                Ok(_) => Ok(format!("/proc/{host_pid} exists")),
                Err(e) => Err(e.to_string()),
            },
        );
        for ns in ["mnt", "pid", "net", "user"] {
            let attempt = open(&format!("/proc/1/ns/{ns}"), libc::O_RDONLY).and_then(|fd| {
                // SAFETY: setns on an fd we just opened.
                sys(unsafe { libc::setns(fd, 0) } as libc::c_long)
            });
            r.attempt(&format!("setns {ns}"), attempt);
        }
    }

    /// Reading the host's disk through a device node made in the container.
    /// Opening device nodes made in the container: `devices` are
    /// `b:MAJOR:MINOR` or `c:MAJOR:MINOR`.
    fn disk(r: &mut Report, devices: &[String]) {
        for (i, spec) in devices.iter().enumerate() {
            let parts: Vec<&str> = spec.split(':').collect();
            let [kind, major, minor] = parts[..] else {
                println!("bad device {spec}");
                continue;
            };
            let kind = if kind == "b" {
                libc::S_IFBLK
            } else {
                libc::S_IFCHR
            };
            let (major, minor) = (major.parse().unwrap_or(0), minor.parse().unwrap_or(0));
            let path = format!("/tmp/dev{i}");
            // SAFETY: plain syscall on a valid C string.
            let made = unsafe {
                libc::mknod(
                    cstr(&path).as_ptr(),
                    kind | 0o600,
                    libc::makedev(major, minor),
                )
            };
            if made == 0 {
                println!("info: mknod allowed {spec}");
            } else {
                println!("info: mknod refused {spec}: {}", errno());
            }
            r.attempt(
                &format!("open {spec} read-only"),
                open(&path, libc::O_RDONLY).map(|fd| format!("fd {fd}")),
            );
        }
    }

    fn cgroup(r: &mut Report) {
        let mkdir = |p: &str| {
            // SAFETY: plain syscall on a valid C string.
            sys(unsafe { libc::mkdir(cstr(p).as_ptr(), 0o755) } as libc::c_long)
        };
        r.attempt("mkdir in /sys/fs/cgroup", mkdir("/sys/fs/cgroup/escape"));
        for file in [
            "/sys/fs/cgroup/cgroup.procs",
            "/sys/fs/cgroup/release_agent",
            "/sys/fs/cgroup/memory/release_agent",
        ] {
            r.attempt(
                &format!("write {file}"),
                open(file, libc::O_WRONLY | libc::O_CREAT).map(|fd| format!("fd {fd}")),
            );
        }
        let m = |fstype: &str, data: &str| {
            // SAFETY: plain syscall on valid C strings.
            sys(unsafe {
                libc::mount(
                    cstr(fstype).as_ptr(),
                    cstr("/mnt").as_ptr(),
                    cstr(fstype).as_ptr(),
                    0,
                    cstr(data).as_ptr().cast(),
                )
            } as libc::c_long)
        };
        r.attempt(
            "mount cgroup v1 (release_agent escape)",
            m("cgroup", "memory"),
        );
        r.attempt("mount cgroup2", m("cgroup2", ""));
    }

    fn seccomp(r: &mut Report) {
        // SAFETY: plain syscalls with integer/C-string arguments.
        unsafe {
            r.attempt(
                "keyctl join session keyring",
                sys(libc::syscall(
                    libc::SYS_keyctl,
                    1, /* KEYCTL_JOIN_SESSION_KEYRING */
                    0,
                )),
            );
            r.attempt(
                "add_key",
                sys(libc::syscall(
                    libc::SYS_add_key,
                    cstr("user").as_ptr(),
                    cstr("k").as_ptr(),
                    b"v".as_ptr(),
                    1,
                    -3i32, /* KEY_SPEC_SESSION_KEYRING */
                )),
            );
            r.attempt(
                "unshare mount namespace",
                sys(libc::unshare(libc::CLONE_NEWNS) as libc::c_long),
            );
            r.attempt(
                "unshare user namespace",
                sys(libc::unshare(libc::CLONE_NEWUSER) as libc::c_long),
            );
        }
    }
}
