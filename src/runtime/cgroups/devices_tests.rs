//! The device policy: v1 lines, and the BPF program enforced by the real
//! kernel on a v2 cgroup (the hybrid hosts kiln is tested on have one).

use super::*;
use std::path::PathBuf;

#[test]
fn v1_lines_deny_all_then_allow_defaults() {
    let lines = v1_lines(DOCKER_DEFAULT);
    assert_eq!(lines[0], ("devices.deny", "a".to_string()));
    let allowed: Vec<&str> = lines[1..].iter().map(|(_, l)| l.as_str()).collect();
    assert_eq!(
        &allowed[..4],
        ["c *:* m", "b *:* m", "c 1:3 rwm", "c 1:5 rwm"]
    );
    assert!(allowed.contains(&"c 136:* rwm"));
}

#[test]
fn program_has_one_exit_per_rule_and_a_default_deny() {
    let prog = compile(DOCKER_DEFAULT);
    let exits = prog.iter().filter(|i| i.code == BPF_EXIT).count();
    assert_eq!(exits, DOCKER_DEFAULT.len() + 1);
    assert_eq!(prog[prog.len() - 2], insn(BPF_ALU64_MOV_K, 0, 0, 0, 0));
}

/// This process's cgroup in the v2 hierarchy, if one is mounted.
fn own_v2_dir() -> Option<PathBuf> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mount = mountinfo.lines().find_map(|l| {
        let (pre, post) = l.split_once(" - ")?;
        post.starts_with("cgroup2 ")
            .then(|| pre.split(' ').nth(4).map(PathBuf::from))?
    })?;
    let cgroup = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let path = cgroup.lines().find_map(|l| l.strip_prefix("0::"))?;
    Some(mount.join(path.trim_start_matches('/')))
}

/// Removes the test cgroup even when an assertion fails.
struct TestCgroup(PathBuf);

impl Drop for TestCgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// What a child moved into `cg` gets when opening each path, as errno (0 = ok).
fn open_in(cg: &Path, paths: &[&Path]) -> Vec<i32> {
    let (r, w) = nix::unistd::pipe().unwrap();
    let procs = cg.join("cgroup.procs");
    // SAFETY: the child only makes syscalls and exits.
    match unsafe { nix::unistd::fork() }.unwrap() {
        nix::unistd::ForkResult::Child => {
            let mut out = Vec::new();
            let moved = std::fs::write(&procs, std::process::id().to_string()).is_ok();
            out.push(if moved { 0 } else { -1 });
            for p in paths {
                let e = std::fs::File::open(p)
                    .err()
                    .and_then(|e| e.raw_os_error())
                    .unwrap_or(0);
                out.push(e);
            }
            let bytes: Vec<u8> = out.iter().flat_map(|e| e.to_le_bytes()).collect();
            let _ = nix::unistd::write(&w, &bytes);
            // SAFETY: leave the forked test process without unwinding.
            unsafe { libc::_exit(0) }
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(w);
            let mut buf = Vec::new();
            std::io::Read::read_to_end(&mut std::fs::File::from(r), &mut buf).unwrap();
            nix::sys::wait::waitpid(child, None).unwrap();
            let codes: Vec<i32> = buf
                .chunks(4)
                .map(|c| i32::from_le_bytes(c.try_into().unwrap()))
                .collect();
            assert_eq!(
                codes.first(),
                Some(&0),
                "child could not join {}",
                cg.display()
            );
            codes[1..].to_vec()
        }
    }
}

#[test]
fn bpf_program_blocks_disks_and_allows_null() {
    let base = own_v2_dir().expect("a cgroup v2 hierarchy (hybrid or unified) is mounted");
    let cg = TestCgroup(base.join(format!("kiln-devtest-{}", std::process::id())));
    std::fs::create_dir(&cg.0).unwrap();
    attach_bpf(&cg.0, DOCKER_DEFAULT).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("disk");
    // Block device 7:0 (loop0): mknod is allowed, opening must not be.
    nix::sys::stat::mknod(
        &disk,
        nix::sys::stat::SFlag::S_IFBLK,
        nix::sys::stat::Mode::from_bits_truncate(0o600),
        nix::sys::stat::makedev(7, 0),
    )
    .unwrap();
    let got = open_in(
        &cg.0,
        &[Path::new("/dev/null"), &disk, Path::new("/dev/zero")],
    );
    assert_eq!(got, [0, libc::EPERM, 0]);
}
