//! Which namespaces a container gets, and the bits of each that the init
//! sets up itself (hostname, loopback, cgroup namespace).

use super::spec::{ContainerSpec, Network};

/// Why a namespace could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum NamespaceError {
    /// unshare(CLONE_NEWCGROUP) failed.
    #[error("failed to create the cgroup namespace")]
    Cgroup(#[source] nix::Error),
    /// sethostname failed.
    #[error("failed to set hostname {hostname:?}")]
    Hostname {
        /// The hostname asked for.
        hostname: String,
        /// The cause.
        #[source]
        source: nix::Error,
    },
    /// `--network container:NAME`: its namespace could not be joined.
    #[error("failed to join the network namespace of the container whose init is pid {pid}")]
    JoinNetwork {
        /// The other container's init.
        pid: i32,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Bringing `lo` up failed.
    #[error("failed to bring up the loopback interface")]
    Loopback(#[source] std::io::Error),
}

/// The `CLONE_NEW*` flags for the init's `clone(2)`: mount, PID, UTS and
/// IPC always, network unless the host's is shared.
///
/// The cgroup namespace is deliberately absent: its root is fixed at the
/// cgroup of the process that creates it, so the init creates it with
/// [`enter_cgroup_namespace`] only after kiln has moved it into the
/// container's cgroup (what runc does too).
pub fn clone_flags(spec: &ContainerSpec) -> libc::c_int {
    let mut flags =
        libc::CLONE_NEWNS | libc::CLONE_NEWPID | libc::CLONE_NEWUTS | libc::CLONE_NEWIPC;
    if !matches!(spec.network, Network::Host | Network::Join(_)) {
        flags |= libc::CLONE_NEWNET;
    }
    flags
}

/// Joins the network namespace of `pid` (another container's init) for
/// [`Network::Join`]; called by the init while the host's `/proc` is still
/// its `/proc`, before `pivot_root`.
pub fn join_network(pid: i32) -> Result<(), NamespaceError> {
    let ns = std::fs::File::open(format!("/proc/{pid}/ns/net"))
        .map_err(|e| NamespaceError::JoinNetwork { pid, source: e })?;
    nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| {
        NamespaceError::JoinNetwork {
            pid,
            source: e.into(),
        }
    })
}

/// Gives the calling process a cgroup namespace rooted at its current
/// cgroup, so the container sees its own cgroup as `/`.
pub fn enter_cgroup_namespace() -> Result<(), NamespaceError> {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP).map_err(NamespaceError::Cgroup)
}

/// Sets the UTS hostname (the UTS namespace is the container's own).
pub fn set_hostname(hostname: &str) -> Result<(), NamespaceError> {
    nix::unistd::sethostname(hostname).map_err(|source| NamespaceError::Hostname {
        hostname: hostname.to_string(),
        source,
    })
}

/// Brings `lo` up in a fresh network namespace (it starts down), the only
/// interface `--network none` has.
pub fn loopback_up() -> Result<(), NamespaceError> {
    use std::os::fd::AsRawFd;
    let sock = nix::sys::socket::socket(
        nix::sys::socket::AddressFamily::Inet,
        nix::sys::socket::SockType::Datagram,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| NamespaceError::Loopback(e.into()))?;
    // SAFETY: ifreq is plain data; the ioctls read/write exactly one ifreq.
    unsafe {
        let mut req: libc::ifreq = std::mem::zeroed();
        for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
            *dst = *src as libc::c_char;
        }
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) < 0 {
            return Err(NamespaceError::Loopback(std::io::Error::last_os_error()));
        }
        req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) < 0 {
            return Err(NamespaceError::Loopback(std::io::Error::last_os_error()));
        }
    }
    Ok(())
}
