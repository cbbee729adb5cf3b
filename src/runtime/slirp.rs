//! A container's outbound network through `slirp4netns`: user-mode NAT
//! from a tap device in the container's own network namespace to sockets
//! kiln's namespace opens on its behalf.
//!
//! Why not the host's network: a process sharing the host's network
//! namespace with CAP_NET_RAW can open an AF_PACKET socket on `lo` and
//! read every local request, `Authorization` headers included. Behind
//! slirp the container has its own `lo` and `tap0`; it reaches the
//! outside world through slirp's NAT (as BuildKit's default
//! network does, with CNI or slirp in rootless mode), and
//! `--disable-host-loopback` keeps it off the host's 127.0.0.1 (slirp's
//! gateway 10.0.2.2 would otherwise forward there). slirp4netns was chosen
//! over a bridge with NAT rules because it needs no host-wide state (no
//! bridge, no iptables rules, no IP forwarding) that a killed kiln would
//! leave behind: it ends when kiln's end of its exit pipe closes,
//! whatever killed kiln.

use crate::error_chain::Chain;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};

/// The program run for [`super::Network::Slirp`].
pub const PROGRAM: &str = "slirp4netns";

/// slirp's DNS forwarder inside the namespace (default CIDR 10.0.2.0/24).
pub const DNS: &str = "10.0.2.3";

/// Why the network could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SlirpError {
    /// The program is not installed.
    #[error(
        "RUN's default network needs {PROGRAM}, which is not installed \
         (Debian/Ubuntu: apt-get install slirp4netns); \
         or build with --network=none"
    )]
    Missing,
    /// Starting it failed otherwise.
    #[error("failed to start {PROGRAM}")]
    Spawn(#[source] std::io::Error),
    /// It exited before reporting the network ready.
    #[error("{PROGRAM} failed to set up the container's network: {log}")]
    NotReady {
        /// What it printed.
        log: String,
    },
}

/// A running slirp4netns serving one container's network namespace; it
/// is told to stop on drop (and reaped by a thread of its own).
#[derive(Debug)]
pub struct Slirp {
    /// `None` once handed to the reaper thread.
    child: Option<Child>,
    /// Closing this makes slirp4netns exit (`--exit-fd`).
    exit: Option<OwnedFd>,
}

/// Starts slirp4netns for the network namespace of `pid` (the container's
/// init, kiln's pid namespace) and waits until `tap0` is configured.
pub fn start(pid: i32) -> Result<Slirp, SlirpError> {
    let pipe = || {
        rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
            .map_err(|e| SlirpError::Spawn(e.into()))
    };
    let (ready_r, ready_w) = pipe()?;
    let (exit_r, exit_w) = pipe()?;
    // Its log goes to a memfd: read only when it fails, and a pipe nobody
    // drains could fill and stall it.
    let log = rustix::fs::memfd_create("slirp4netns-log", rustix::fs::MemfdFlags::CLOEXEC)
        .map_err(|e| SlirpError::Spawn(e.into()))?;
    let log_child = log.try_clone().map_err(SlirpError::Spawn)?;
    let (ready_fd, exit_fd) = (ready_w.as_raw_fd(), exit_r.as_raw_fd());
    let mut cmd = Command::new(PROGRAM);
    cmd.args([
        "--configure",
        "--mtu=65520",
        "--disable-host-loopback",
        "--enable-sandbox",
        "--ready-fd=3",
        "--exit-fd=4",
    ])
    .arg(pid.to_string())
    .arg("tap0")
    .stdin(Stdio::null())
    .stdout(Stdio::from(log.try_clone().map_err(SlirpError::Spawn)?))
    .stderr(Stdio::from(log_child));
    // SAFETY: only dup2 (async-signal-safe) between fork and exec; the
    // duplicates lose CLOEXEC, the originals close at exec.
    unsafe {
        cmd.pre_exec(move || {
            for (from, to) in [(ready_fd, 3), (exit_fd, 4)] {
                if libc::dup2(from, to) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let child = cmd.spawn().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => SlirpError::Missing,
        _ => SlirpError::Spawn(e),
    })?;
    drop((ready_w, exit_r));
    let mut slirp = Slirp {
        child: Some(child),
        exit: Some(exit_w),
    };
    // One byte once tap0 is up; EOF means it died first.
    let mut byte = [0u8; 1];
    let mut ready = std::fs::File::from(ready_r);
    match ready.read(&mut byte) {
        Ok(1) => Ok(slirp),
        _ => {
            slirp.stop();
            let mut text = String::new();
            let mut log = std::fs::File::from(log);
            let _ = std::io::Seek::rewind(&mut log);
            let _ = log.read_to_string(&mut text);
            Err(SlirpError::NotReady {
                log: text
                    .trim()
                    .lines()
                    .last()
                    .unwrap_or("no output")
                    .to_string(),
            })
        }
    }
}

impl Slirp {
    /// Tells slirp4netns to exit and reaps it off the caller's path: its
    /// exit closes the tap device, whose unregistering waits for RCU grace
    /// periods (about 25 ms here), which every RUN used to wait out.
    fn stop(&mut self) {
        if self.exit.take().is_some() {
            if let Some(mut child) = self.child.take() {
                let reaped = std::thread::Builder::new()
                    .name("slirp-reaper".into())
                    .spawn(move || {
                        let _ = child.wait();
                    });
                if let Err(e) = reaped {
                    tracing::debug!(
                        "slirp4netns exits unreaped (no reaper thread: {e})",
                        e = Chain(&e)
                    );
                }
            }
        }
    }
}

impl Drop for Slirp {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The host as a RUN's network reaches it, for `--add-host
/// NAME:host-gateway` (docker's name for "the host", moby
/// `daemon/network.go`; buildx resolves it before the build,
/// docker/buildx `build/utils.go`, `toBuildkitExtraHosts`).
///
/// slirp's own gateway (10.0.2.2) is the host's loopback, which
/// `--disable-host-loopback` closes; what stays reachable is the address
/// the host uses for outbound traffic, as from anywhere else. That is the
/// source address of its default route, found by connecting a UDP socket
/// (which sends nothing) to a documentation address (RFC 5737); the same
/// address serves a step on the host's network.
pub fn host_address() -> std::io::Result<std::net::IpAddr> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0")?;
    socket.connect("192.0.2.1:9")?;
    Ok(socket.local_addr()?.ip())
}
