//! Which device nodes a container may open: docker's default device
//! cgroup policy.
//!
//! Root in a container keeps CAP_MKNOD (docker's default set), so it can
//! create `/dev/vda` anywhere it can write; the device cgroup is what stops
//! it from *opening* it (reading the host's disk) — mknod is allowed for
//! every device, read/write only for the harmless ones. On cgroup v1 (and
//! hybrid) that is the `devices` controller's `devices.deny`/`devices.allow`
//! files; cgroup v2 has no devices controller, so the same policy is a
//! `BPF_PROG_TYPE_CGROUP_DEVICE` program attached to the container's
//! cgroup (what runc's `devicefilter` does).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

/// A device type in a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceType {
    /// Character devices.
    Char,
    /// Block devices.
    Block,
}

/// One allowed (type, major, minor, access) pattern; `None` is a wildcard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceRule {
    /// Device type.
    pub kind: DeviceType,
    /// Major number, `None` for any.
    pub major: Option<u32>,
    /// Minor number, `None` for any.
    pub minor: Option<u32>,
    /// Allowed access, a subset of `"rwm"`.
    pub access: &'static str,
}

const fn rule(
    kind: DeviceType,
    major: Option<u32>,
    minor: Option<u32>,
    access: &'static str,
) -> DeviceRule {
    DeviceRule {
        kind,
        major,
        minor,
        access,
    }
}

/// docker's default (runc `AllowedDevices`): mknod of anything; read and
/// write of null, zero, full, random, urandom, tty, console, ptmx, the
/// ptys and tun.
pub const DOCKER_DEFAULT: &[DeviceRule] = &[
    rule(DeviceType::Char, None, None, "m"),
    rule(DeviceType::Block, None, None, "m"),
    rule(DeviceType::Char, Some(1), Some(3), "rwm"),
    rule(DeviceType::Char, Some(1), Some(5), "rwm"),
    rule(DeviceType::Char, Some(1), Some(7), "rwm"),
    rule(DeviceType::Char, Some(1), Some(8), "rwm"),
    rule(DeviceType::Char, Some(1), Some(9), "rwm"),
    rule(DeviceType::Char, Some(5), Some(0), "rwm"),
    rule(DeviceType::Char, Some(5), Some(1), "rwm"),
    rule(DeviceType::Char, Some(5), Some(2), "rwm"),
    rule(DeviceType::Char, Some(136), None, "rwm"),
    rule(DeviceType::Char, Some(10), Some(200), "rwm"),
];

impl DeviceRule {
    /// The v1 `devices.allow` line: `c 1:3 rwm`, `b *:* m`.
    pub fn v1_line(&self) -> String {
        let kind = match self.kind {
            DeviceType::Char => 'c',
            DeviceType::Block => 'b',
        };
        let num = |n: Option<u32>| n.map_or("*".to_string(), |n| n.to_string());
        format!(
            "{kind} {}:{} {}",
            num(self.major),
            num(self.minor),
            self.access
        )
    }
}

/// The v1 writes: deny everything inherited, then allow `rules` one line
/// per write (the kernel takes one rule per write).
pub fn v1_lines(rules: &[DeviceRule]) -> Vec<(&'static str, String)> {
    let mut out = vec![("devices.deny", "a".to_string())];
    out.extend(rules.iter().map(|r| ("devices.allow", r.v1_line())));
    out
}

// BPF encoding (linux/bpf.h, linux/bpf_common.h).
const BPF_LDX_MEM_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const BPF_ALU32_AND_K: u8 = 0x54; // BPF_ALU | BPF_AND | BPF_K
const BPF_ALU32_RSH_K: u8 = 0x74; // BPF_ALU | BPF_RSH | BPF_K
const BPF_ALU32_MOV_X: u8 = 0xbc; // BPF_ALU | BPF_MOV | BPF_X
const BPF_ALU64_MOV_K: u8 = 0xb7; // BPF_ALU64 | BPF_MOV | BPF_K
const BPF_JNE_K: u8 = 0x55; // BPF_JMP | BPF_JNE | BPF_K
const BPF_EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT
const BPF_DEVCG_DEV_BLOCK: i32 = 1;
const BPF_DEVCG_DEV_CHAR: i32 = 2;
const BPF_DEVCG_ACC_MKNOD: i32 = 1;
const BPF_DEVCG_ACC_READ: i32 = 2;
const BPF_DEVCG_ACC_WRITE: i32 = 4;
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

/// One eBPF instruction (`struct bpf_insn`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    code: u8,
    regs: u8, // dst in the low nibble, src in the high one
    off: i16,
    imm: i32,
}

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | dst,
        off,
        imm,
    }
}

/// Compiles `rules` into a device-cgroup program: r2 = type, r3 = access,
/// r4 = major, r5 = minor (from `struct bpf_cgroup_dev_ctx`), then one
/// block per rule that jumps to the next block on any mismatch and returns
/// 1 (allow) otherwise; falling off the end returns 0 (deny).
pub fn compile(rules: &[DeviceRule]) -> Vec<Insn> {
    let mut prog = vec![
        insn(BPF_LDX_MEM_W, 2, 1, 0, 0),
        insn(BPF_ALU32_AND_K, 2, 0, 0, 0xffff),
        insn(BPF_LDX_MEM_W, 3, 1, 0, 0),
        insn(BPF_ALU32_RSH_K, 3, 0, 0, 16),
        insn(BPF_LDX_MEM_W, 4, 1, 4, 0),
        insn(BPF_LDX_MEM_W, 5, 1, 8, 0),
    ];
    for r in rules {
        let mut checks: Vec<Insn> = Vec::new();
        let kind = match r.kind {
            DeviceType::Char => BPF_DEVCG_DEV_CHAR,
            DeviceType::Block => BPF_DEVCG_DEV_BLOCK,
        };
        checks.push(insn(BPF_JNE_K, 2, 0, 0, kind));
        let mut allowed = 0;
        for (c, bit) in [
            ('m', BPF_DEVCG_ACC_MKNOD),
            ('r', BPF_DEVCG_ACC_READ),
            ('w', BPF_DEVCG_ACC_WRITE),
        ] {
            if r.access.contains(c) {
                allowed |= bit;
            }
        }
        let mut prefix: Vec<Insn> = Vec::new();
        if allowed != 7 {
            // r6 = access & ~allowed; any bit left is an access not granted.
            prefix.push(insn(BPF_ALU32_MOV_X, 6, 3, 0, 0));
            prefix.push(insn(BPF_ALU32_AND_K, 6, 0, 0, !allowed & 7));
            checks.push(insn(BPF_JNE_K, 6, 0, 0, 0));
        }
        if let Some(major) = r.major {
            checks.push(insn(BPF_JNE_K, 4, 0, 0, major as i32));
        }
        if let Some(minor) = r.minor {
            checks.push(insn(BPF_JNE_K, 5, 0, 0, minor as i32));
        }
        // Each check jumps past the rest of the block: the remaining
        // checks plus `r0 = 1; exit`.
        let n = checks.len();
        let block: Vec<Insn> = checks
            .into_iter()
            .enumerate()
            .map(|(i, mut c)| {
                c.off = (n - 1 - i + 2) as i16;
                c
            })
            .collect();
        // The access mask is computed before the type check so that every
        // jump lands on the next rule's first instruction.
        prog.extend(prefix);
        prog.extend(block);
        prog.push(insn(BPF_ALU64_MOV_K, 0, 0, 0, 1));
        prog.push(insn(BPF_EXIT, 0, 0, 0, 0));
    }
    prog.push(insn(BPF_ALU64_MOV_K, 0, 0, 0, 0));
    prog.push(insn(BPF_EXIT, 0, 0, 0, 0));
    prog
}

/// `union bpf_attr` for BPF_PROG_LOAD, up to the fields kiln sets.
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// `union bpf_attr` for BPF_PROG_ATTACH.
#[repr(C)]
#[derive(Default)]
struct ProgAttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

fn bpf<T>(cmd: libc::c_long, attr: &T) -> io::Result<i32> {
    // SAFETY: `attr` is a properly laid out prefix of `union bpf_attr`;
    // the kernel zero-checks the bytes we do not pass.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *const T,
            std::mem::size_of::<T>() as u32,
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret as i32)
    }
}

/// Loads the program for `rules` and attaches it to the v2 cgroup `dir`.
/// The attachment lives as long as the cgroup; the program fd may be
/// dropped.
pub fn attach_bpf(dir: &Path, rules: &[DeviceRule]) -> io::Result<()> {
    let prog = compile(rules);
    let license = c"Apache-2.0";
    let mut name = [0u8; 16];
    name[..9].copy_from_slice(b"kiln_devs");
    let attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: prog.len() as u32,
        insns: prog.as_ptr() as u64,
        license: license.as_ptr() as u64,
        prog_name: name,
        expected_attach_type: BPF_CGROUP_DEVICE,
        ..Default::default()
    };
    // SAFETY: a fresh fd returned by the kernel.
    let prog_fd = unsafe { OwnedFd::from_raw_fd(bpf(BPF_PROG_LOAD, &attr)?) };
    let cgroup = std::fs::File::open(dir)?;
    let attach = ProgAttachAttr {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: prog_fd.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        replace_bpf_fd: 0,
    };
    bpf(BPF_PROG_ATTACH, &attach)?;
    Ok(())
}

#[cfg(test)]
#[path = "devices_tests.rs"]
mod tests;
