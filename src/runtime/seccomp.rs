//! Docker's default seccomp profile, compiled to BPF before the container's
//! init forks and installed just before `execve`.
//!
//! The profile (see `profile.rs`) depends on the granted capabilities and
//! the architecture, so [`docker_default_filter`] resolves it into a
//! [`Plan`] (which syscall numbers get which action under which argument
//! conditions) and compiles the plan with `seccompiler`. A seccompiler
//! filter has one "match" and one "mismatch" action, so the program is a
//! stack of filters: first the allow-list (mismatch: ERRNO(EPERM)), then
//! one filter per other errno (mismatch: ALLOW). The kernel runs every
//! filter and keeps the most severe action; between two ERRNO results the
//! most recently installed filter wins (`seccomp_run_filters` in
//! kernel/seccomp.c), so `clone3` gets ENOSYS, not EPERM.
//!
//! # Architectures
//! The filter checks `seccomp_data.arch` first and kills the process on any
//! other architecture: on x86_64, i386 syscalls (`int 0x80`) are killed.
//! x32 syscalls carry the native arch but set bit 30 of the number, so no
//! rule matches them and they get EPERM. Docker instead allows the i386 and
//! x32 ABIs with their own numbers; kiln runs native binaries only.
//!
//! # Installing
//! Without `no_new_privs` the kernel requires CAP_SYS_ADMIN to install a
//! filter, so the order in the container's init (after fork) is either
//! - with no_new_privs: `PR_SET_KEEPCAPS` → setgroups/setgid/setuid →
//!   `caps::apply_capabilities` → `caps::set_no_new_privs` → [`install`] →
//!   `execve`; or
//! - without (Docker's default, which runc follows): `PR_SET_KEEPCAPS` →
//!   [`install`] while still root with full caps → setgroups/setgid/setuid
//!   → `caps::apply_capabilities` → `execve`. The profile allows every
//!   syscall of those steps (setresuid, setgroups, prctl, capset, execve).

mod profile;
mod syscall_table;

use std::collections::BTreeMap;

use nix::errno::Errno;
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

use crate::runtime::caps::Capability;
use profile::{ArgCmp, Condition, RuleAction, ALLOWED_SOCKET_DOMAINS, RULES};

/// Errors from building or installing a seccomp program.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// kiln has no syscall table for this CPU architecture.
    #[error("no seccomp syscall table for architecture {0}")]
    UnsupportedArch(&'static str),
    /// seccompiler rejected the rules (e.g. the program grew too long).
    #[error("failed to compile the seccomp filter for {action}")]
    Compile {
        /// Which filter of the stack failed (`allow-list`, `errno 38`).
        action: String,
        /// The compiler's error.
        #[source]
        source: seccompiler::BackendError,
    },
    /// `seccomp(SECCOMP_SET_MODE_FILTER)` failed; EACCES means neither
    /// no_new_privs nor CAP_SYS_ADMIN was set.
    #[error("failed to install seccomp filter {index} (needs no_new_privs or CAP_SYS_ADMIN)")]
    Install {
        /// Position of the filter in the program's stack.
        index: usize,
        /// The errno from the kernel.
        #[source]
        errno: Errno,
    },
}

/// A compiled seccomp program: BPF filters to install in order. Built
/// before the fork; [`install`] only hands the buffers to the kernel.
#[derive(Debug, Clone)]
pub struct SeccompProgram {
    filters: Vec<BpfProgram>,
}

impl SeccompProgram {
    /// Number of stacked filters.
    pub fn filter_count(&self) -> usize {
        self.filters.len()
    }

    /// Total BPF instructions, the cost paid on every syscall.
    pub fn instruction_count(&self) -> usize {
        self.filters.iter().map(Vec::len).sum()
    }
}

/// Which arguments must match for a rule of the plan to apply.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ArgMatch {
    /// The syscall matches whatever its arguments.
    Always,
    /// The syscall matches if any of these AND-lists of comparisons holds.
    AnyOf(Vec<Vec<ArgCmp>>),
}

/// The profile resolved for one architecture, kernel and capability set:
/// per action, the syscall numbers it applies to. Syscalls in no entry get
/// the default action, ERRNO(EPERM).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Plan {
    allow: BTreeMap<i64, ArgMatch>,
    errno: BTreeMap<u32, BTreeMap<i64, ArgMatch>>,
}

fn add_match(map: &mut BTreeMap<i64, ArgMatch>, nr: i64, args: &[ArgCmp]) {
    let entry = map.entry(nr).or_insert_with(|| ArgMatch::AnyOf(Vec::new()));
    match entry {
        // An unconditional rule already covers every argument.
        ArgMatch::Always => {}
        ArgMatch::AnyOf(_) if args.is_empty() => *entry = ArgMatch::Always,
        ArgMatch::AnyOf(list) => list.push(args.to_vec()),
    }
}

/// Docker's `includes`/`excludes` test for one rule.
fn rule_applies(includes: &Condition, excludes: &Condition, ctx: &PlanContext) -> bool {
    let has = |c: &Capability| ctx.caps.contains(c);
    let included = includes.caps.iter().all(has)
        && (includes.arches.is_empty() || includes.arches.contains(&ctx.arch))
        && includes
            .min_kernel
            .is_none_or(|min| ctx.kernel.is_some_and(|k| k >= min));
    let excluded = excludes.caps.iter().any(has)
        || excludes.arches.contains(&ctx.arch)
        || excludes
            .min_kernel
            .is_some_and(|min| ctx.kernel.is_some_and(|k| k >= min));
    included && !excluded
}

/// What the profile is resolved against.
struct PlanContext<'a> {
    /// Granted capabilities.
    pub caps: &'a [Capability],
    /// Docker's name of the architecture (`amd64`, `arm64`).
    pub arch: &'static str,
    /// Running kernel (major, minor); `None` if unknown, which drops the
    /// rules that need a minimum kernel.
    pub kernel: Option<(u32, u32)>,
}

/// Socket rules from the domain list: one rule per run of consecutive
/// domains (`domain >= first && domain <= last`). Docker cannot AND two
/// comparisons of one argument (runc issue 2735) and so writes one
/// equality per domain; the allowed set is the same. The first run starts
/// at 0 as Docker's `< AF_ROSE+1` does (AF_UNSPEC fails in the kernel).
fn socket_rules() -> Vec<Vec<ArgCmp>> {
    let mut runs: Vec<(u64, u64)> = Vec::new();
    for &d in ALLOWED_SOCKET_DOMAINS {
        match runs.last_mut() {
            Some((_, last)) if *last + 1 == d => *last = d,
            _ => runs.push((d, d)),
        }
    }
    if let Some(first) = runs.first_mut() {
        if first.0 == 1 {
            first.0 = 0;
        }
    }
    runs.into_iter()
        .map(|(a, b)| {
            if a == 0 {
                vec![ArgCmp::Le(0, b)]
            } else {
                vec![ArgCmp::Ge(0, a), ArgCmp::Le(0, b)]
            }
        })
        .collect()
}

fn syscall_nr(name: &str) -> Option<i64> {
    syscall_table::SYSCALLS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, nr)| *nr)
}

impl Plan {
    /// Resolves Docker's default profile. Names that do not exist on the
    /// architecture are skipped, as libseccomp does.
    fn docker_default(ctx: &PlanContext) -> Plan {
        let mut plan = Plan::default();
        for rule in RULES {
            if !rule_applies(&rule.includes, &rule.excludes, ctx) {
                continue;
            }
            for nr in rule.names.iter().filter_map(|n| syscall_nr(n)) {
                let map = match rule.action {
                    RuleAction::Allow => &mut plan.allow,
                    RuleAction::Errno(e) => plan.errno.entry(e).or_default(),
                };
                add_match(map, nr, rule.args);
            }
        }
        if let Some(nr) = syscall_nr("socket") {
            for args in socket_rules() {
                add_match(&mut plan.allow, nr, &args);
            }
        }
        plan
    }

    /// What the plan does with a syscall: the action the kernel would
    /// return for the filter stack (ERRNO of the last errno filter that
    /// matches wins over ALLOW; otherwise allowed if the allow-list matches,
    /// else EPERM).
    #[cfg(test)]
    fn decide(&self, nr: i64, args: [u64; 6]) -> RuleAction {
        let matches = |m: &ArgMatch| match m {
            ArgMatch::Always => true,
            ArgMatch::AnyOf(list) => list.iter().any(|cmps| {
                cmps.iter().all(|c| match *c {
                    ArgCmp::Eq(i, v) => args[i as usize] == v,
                    ArgCmp::Le(i, v) => args[i as usize] <= v,
                    ArgCmp::Ge(i, v) => args[i as usize] >= v,
                    ArgCmp::MaskedEq(i, mask, v) => args[i as usize] & mask == v,
                })
            }),
        };
        for (errno, map) in self.errno.iter().rev() {
            if map.get(&nr).is_some_and(matches) {
                return RuleAction::Errno(*errno);
            }
        }
        if self.allow.get(&nr).is_some_and(matches) {
            RuleAction::Allow
        } else {
            RuleAction::Errno(libc::EPERM as u32)
        }
    }

    /// Compiles the plan into the filter stack described in the module docs.
    fn compile(&self, arch: TargetArch) -> Result<SeccompProgram, SeccompError> {
        let mut filters = vec![compile_filter(
            &self.allow,
            SeccompAction::Errno(libc::EPERM as u32),
            SeccompAction::Allow,
            arch,
            "allow-list",
        )?];
        for (errno, map) in &self.errno {
            filters.push(compile_filter(
                map,
                SeccompAction::Allow,
                SeccompAction::Errno(*errno),
                arch,
                &format!("errno {errno}"),
            )?);
        }
        Ok(SeccompProgram { filters })
    }
}

fn compile_filter(
    map: &BTreeMap<i64, ArgMatch>,
    mismatch: SeccompAction,
    on_match: SeccompAction,
    arch: TargetArch,
    what: &str,
) -> Result<BpfProgram, SeccompError> {
    let err = |source| SeccompError::Compile {
        action: what.to_string(),
        source,
    };
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for (nr, m) in map {
        let chain = match m {
            // seccompiler reads an empty chain as "match unconditionally".
            ArgMatch::Always => Vec::new(),
            ArgMatch::AnyOf(list) => list
                .iter()
                .map(|cmps| {
                    let conds = cmps
                        .iter()
                        .map(|c| condition(*c))
                        .collect::<Result<Vec<_>, _>>()?;
                    SeccompRule::new(conds)
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(err)?,
        };
        rules.insert(*nr, chain);
    }
    let filter = SeccompFilter::new(rules, mismatch, on_match, arch).map_err(err)?;
    BpfProgram::try_from(filter).map_err(err)
}

/// One comparison on the full 64-bit argument, as libseccomp compares.
fn condition(c: ArgCmp) -> Result<SeccompCondition, seccompiler::BackendError> {
    let (index, op, value) = match c {
        ArgCmp::Eq(i, v) => (i, SeccompCmpOp::Eq, v),
        ArgCmp::Le(i, v) => (i, SeccompCmpOp::Le, v),
        ArgCmp::Ge(i, v) => (i, SeccompCmpOp::Ge, v),
        ArgCmp::MaskedEq(i, mask, v) => (i, SeccompCmpOp::MaskedEq(mask), v),
    };
    SeccompCondition::new(index, SeccompCmpArgLen::Qword, op, value)
}

/// The build's architecture as seccompiler and Docker name it.
fn native_arch() -> Result<(TargetArch, &'static str), SeccompError> {
    if cfg!(target_arch = "x86_64") {
        Ok((TargetArch::x86_64, "amd64"))
    } else if cfg!(target_arch = "aarch64") {
        Ok((TargetArch::aarch64, "arm64"))
    } else {
        Err(SeccompError::UnsupportedArch(std::env::consts::ARCH))
    }
}

/// The running kernel's (major, minor), from `uname -r`.
fn kernel_version() -> Option<(u32, u32)> {
    let uts = nix::sys::utsname::uname().ok()?;
    parse_kernel_release(uts.release().to_str()?)
}

fn parse_kernel_release(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.split(['.', '-', '+']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// Builds Docker's default seccomp program for a process that will hold
/// `caps` (the resolved capability list: capabilities open syscalls, e.g.
/// CAP_SYS_ADMIN allows `mount` and namespace flags to `clone`). Call it
/// before forking the container's init; `--privileged` containers get no
/// seccomp filter at all in Docker, so callers skip this for them.
pub fn docker_default_filter(caps: &[Capability]) -> Result<SeccompProgram, SeccompError> {
    let (target, arch) = native_arch()?;
    let ctx = PlanContext {
        caps,
        arch,
        kernel: kernel_version(),
    };
    let program = Plan::docker_default(&ctx).compile(target)?;
    tracing::debug!(
        filters = program.filter_count(),
        instructions = program.instruction_count(),
        "compiled default seccomp profile"
    );
    Ok(program)
}

/// Installs the program's filters in order on the calling thread with
/// `seccomp(SECCOMP_SET_MODE_FILTER)`. Needs no_new_privs or CAP_SYS_ADMIN
/// (see the module docs for where it goes in the init sequence). Makes only
/// syscalls on the prebuilt buffers: safe between `fork` and `execve`.
pub fn install(prog: &SeccompProgram) -> Result<(), SeccompError> {
    for (index, filter) in prog.filters.iter().enumerate() {
        let fprog = libc::sock_fprog {
            len: filter.len() as u16,
            // seccompiler's sock_filter is #[repr(C)] with the kernel's
            // layout (u16 code, u8 jt, u8 jf, u32 k), same as libc's.
            filter: filter.as_ptr() as *mut libc::sock_filter,
        };
        // SAFETY: the kernel copies the program out of `fprog` before
        // returning; both outlive the call.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                0,
                &fprog as *const libc::sock_fprog,
            )
        };
        if rc != 0 {
            return Err(SeccompError::Install {
                index,
                errno: Errno::last(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
