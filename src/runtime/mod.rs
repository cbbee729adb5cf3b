//! kiln's bundled container runtime: it runs a process spec in a rootfs and
//! has never heard of a Dockerfile.
//!
//! The security and resource modules here are libraries the runtime core
//! calls; each owns one kernel mechanism:
//! - [`caps`]: capability names, Docker's default set, applying a set;
//! - [`seccomp`]: Docker's default seccomp profile compiled to BPF;
//! - [`cgroups`]: per-container cgroups (v1, hybrid, v2) with limits;
//! - [`path_in_root`]: resolving paths inside a rootfs like securejoin;
//! - [`user`]: `USER`/`--user` resolution against the image's passwd/group;
//! - [`rlimits`]: `--ulimit` parsing and `setrlimit`.
//!
//! **Architecture Invariant:** what runs between `fork` and `execve`
//! (`caps::apply_capabilities`, `caps::set_no_new_privs`, `seccomp::install`,
//! `rlimits::apply`) makes raw syscalls on data prepared before the fork and never allocates.
//!
//! # Order in the container's init (after fork, before execve)
//! Prepared before the fork: `user::resolve_user`, `caps::resolve_caps`,
//! `seccomp::docker_default_filter(&caps)` (skipped for `--privileged`),
//! `cgroups::Cgroup::create`; the parent calls `Cgroup::add_process` with
//! the child's pid before letting it exec. Then in the child:
//! 0. mounts, `pivot_root`, hostname, `rlimits::apply` (raising a hard
//!    limit needs CAP_SYS_RESOURCE): everything that needs
//!    syscalls the seccomp profile denies (`mount`, `pivot_root`,
//!    `sethostname`) comes before the filter;
//! 1. `caps::set_keep_caps()`;
//! 2. without no-new-privileges (Docker's default): `seccomp::install`
//!    here, while CAP_SYS_ADMIN is still effective;
//! 3. `setgroups(additional_gids)`, `setresgid(gid)`, `setresuid(uid)`;
//! 4. `caps::apply_capabilities(&caps)`;
//! 5. with no-new-privileges: `caps::set_no_new_privs()` then
//!    `seccomp::install`;
//! 6. `execve`.

pub mod caps;
pub mod cgroups;
pub mod path_in_root;
pub mod rlimits;
pub mod seccomp;
pub mod user;

#[cfg(test)]
mod child_probe;
#[cfg(test)]
mod init_sequence_tests;
