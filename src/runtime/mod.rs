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
//! (`caps::apply_capabilities`, `seccomp::install`, `rlimits::apply`) makes
//! raw syscalls on data prepared before the fork and never allocates.

pub mod caps;
pub mod cgroups;
pub mod path_in_root;
pub mod rlimits;
pub mod seccomp;
pub mod user;

#[cfg(test)]
mod child_probe;
