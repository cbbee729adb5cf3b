//! What the integration tests share, one module per concern:
//!
//! - [`kiln`]: a private store in a temp dir, the real binary run against
//!   it ([`kiln::Ran`] results) and the `kiln build` helpers;
//! - [`cross`]: static probes for other architectures and images of them;
//! - [`busybox`]: the one busybox root filesystem, as a directory, a tar
//!   or an imported image;
//! - [`host_tools`]: images of busybox plus host programs (git, ssh) and
//!   the libraries they load;
//! - [`sshd`]: a private git server over SSH (openssh-server) and an
//!   ssh-agent, started by the test and killed by pid;
//! - [`archive`]: tars taken apart and put back together entry by entry,
//!   names verbatim, for broken and hostile input;
//! - [`oci_layout`]: OCI image layouts made outside kiln;
//! - [`registry`]: a real distribution registry on 127.0.0.1;
//! - [`http_stub`]: an HTTP server for faults a real registry will not make;
//! - [`toolchain`]: gcc for amd64 and arm64 as an image (cached tar);
//! - [`tools`]: the external tools (skopeo, umoci, tar) checks run;
//! - [`tree`]: a host tree as a listing, to prove a command left it alone.
//!
//! Include with `mod support;`. Tests that start containers need root
//! (namespaces, mounts, cgroups), which the test machines give.

// Each test crate compiles this tree on its own and uses a different part.
#![allow(dead_code)]

pub mod archive;
pub mod busybox;
pub mod cross;
pub mod host_tools;
pub mod http_stub;
pub mod kiln;
pub mod netns;
pub mod oci_layout;
pub mod registry;
pub mod sshd;
pub mod toolchain;
pub mod tools;
pub mod tree;
