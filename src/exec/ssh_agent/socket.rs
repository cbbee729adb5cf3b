//! The agent socket one `RUN --mount=type=ssh` sees: a fresh Unix socket
//! kiln listens on, bound into the container at the mount's target, with
//! the mount's owner and mode (BuildKit: `session/sshforward/ssh.go`
//! `MountSSHSocket` listens on a new socket in a temp dir, chowns and
//! chmods it, and the executor binds it in).
//!
//! Never a bind of the user's agent socket: the step reaches the agent
//! only through kiln's read-only relay ([`super::protocol`]), and when the
//! step ends (this value dropped) the listener closes, every open
//! connection is shut down and the socket file is removed, so nothing the
//! step started can keep using the agent.

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use rustix::event::{poll, PollFd, PollFlags};

use super::{protocol, AgentSource};
use crate::error_chain::Chain;

type Connections = Arc<Mutex<HashMap<u64, UnixStream>>>;

/// A listening agent socket and the thread accepting on it.
pub struct AgentSocket {
    dir: PathBuf,
    path: PathBuf,
    /// Written on drop to wake the accept loop.
    stop: Option<OwnedFd>,
    accept: Option<JoinHandle<()>>,
    /// Open connections by number, shut down on drop; each removes itself
    /// when it ends.
    conns: Connections,
}

impl AgentSocket {
    /// Listens on `agent.sock` in the new directory `dir` (mode 0700),
    /// owned by `uid:gid` with `mode`, serving `source`.
    pub fn listen(
        dir: &Path,
        source: Arc<AgentSource>,
        uid: u32,
        gid: u32,
        mode: u32,
    ) -> std::io::Result<AgentSocket> {
        std::fs::create_dir(dir)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        let path = dir.join("agent.sock");
        let listener = UnixListener::bind(&path)?;
        std::os::unix::fs::lchown(&path, Some(uid), Some(gid))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode & 0o777))?;
        let (wake, stop) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
        let conns = Connections::default();
        let accept = std::thread::Builder::new()
            .name("ssh-agent".into())
            .spawn({
                let conns = conns.clone();
                move || accept_until_stopped(listener, wake, source, conns)
            })?;
        Ok(AgentSocket {
            dir: dir.to_path_buf(),
            path,
            stop: Some(stop),
            accept: Some(accept),
            conns,
        })
    }

    /// The socket file to bind into the container.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for AgentSocket {
    fn drop(&mut self) {
        // Closing the pipe's write end wakes the accept loop (POLLHUP).
        drop(self.stop.take());
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
        if let Ok(conns) = self.conns.lock() {
            for c in conns.values() {
                let _ = c.shutdown(std::net::Shutdown::Both);
            }
        }
        let _ = std::fs::remove_file(&self.path);
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// Accepts connections until `wake` reports its other end closed; each
/// connection is served on a thread of its own.
fn accept_until_stopped(
    listener: UnixListener,
    wake: OwnedFd,
    source: Arc<AgentSource>,
    conns: Connections,
) {
    for n in 0u64.. {
        let mut fds = [
            PollFd::new(&listener, PollFlags::IN),
            PollFd::new(&wake, PollFlags::IN),
        ];
        match poll(&mut fds, None) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => {
                tracing::warn!("ssh agent socket: poll: {e}");
                return;
            }
        }
        if !fds[1].revents().is_empty() {
            return;
        }
        let conn = match listener.accept() {
            Ok((conn, _)) => conn,
            Err(e) => {
                tracing::debug!("ssh agent socket: accept: {e}");
                continue;
            }
        };
        if let (Ok(mut open), Ok(copy)) = (conns.lock(), conn.try_clone()) {
            open.insert(n, copy);
        }
        let (source, conns) = (source.clone(), conns.clone());
        let served = std::thread::Builder::new()
            .name("ssh-agent-conn".into())
            .spawn(move || {
                if let Err(e) = protocol::serve(conn, &source) {
                    tracing::warn!("ssh agent connection: {e}", e = Chain(&e));
                }
                if let Ok(mut open) = conns.lock() {
                    open.remove(&n);
                }
            });
        if let Err(e) = served {
            tracing::warn!("ssh agent socket: starting a connection thread: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::ssh_agent::source::tests::TEST_KEY;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn serves_keys_with_the_mounts_owner_and_mode_and_goes_away() {
        let t = tempfile::tempdir().unwrap();
        let key = ssh_key::PrivateKey::from_openssh(TEST_KEY).unwrap();
        let source = Arc::new(AgentSource::Keys(vec![key]));
        let dir = t.path().join("ssh-1");
        let sock = AgentSocket::listen(&dir, source, 1000, 1001, 0o640).unwrap();
        let md = std::fs::metadata(sock.path()).unwrap();
        assert_eq!((md.uid(), md.gid(), md.mode() & 0o777), (1000, 1001, 0o640));

        let mut c = UnixStream::connect(sock.path()).unwrap();
        protocol::write_message(&mut c, &[11]).unwrap();
        let reply = protocol::read_message(&mut c).unwrap().unwrap();
        assert_eq!(reply[0], 12, "identities answer");
        assert_eq!(reply[1..5], 1u32.to_be_bytes());

        drop(sock);
        assert!(!dir.exists(), "socket and its dir removed");
        // The open connection was shut down with the listener.
        assert!(protocol::read_message(&mut c).unwrap().is_none());
    }

    #[test]
    fn a_forwarded_agent_is_relayed_read_only() {
        let t = tempfile::tempdir().unwrap();
        let key = ssh_key::PrivateKey::from_openssh(TEST_KEY).unwrap();
        // The "user's agent": kiln's own key agent on a socket.
        let user = AgentSocket::listen(
            &t.path().join("user"),
            Arc::new(AgentSource::Keys(vec![key])),
            0,
            0,
            0o600,
        )
        .unwrap();
        let forwarded = Arc::new(AgentSource::Socket(user.path().to_path_buf()));
        let step = AgentSocket::listen(&t.path().join("step"), forwarded, 0, 0, 0o600).unwrap();
        let mut c = UnixStream::connect(step.path()).unwrap();
        protocol::write_message(&mut c, &[11]).unwrap();
        let reply = protocol::read_message(&mut c).unwrap().unwrap();
        assert_eq!((reply[0], &reply[1..5]), (12, &1u32.to_be_bytes()[..]));
        // Remove all identities: refused by the relay itself.
        protocol::write_message(&mut c, &[19]).unwrap();
        assert_eq!(protocol::read_message(&mut c).unwrap().unwrap(), [5]);
    }
}
