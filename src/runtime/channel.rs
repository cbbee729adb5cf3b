//! The socket between kiln and a container's init.
//!
//! A `SOCK_SEQPACKET` unix socketpair, close-on-exec on both ends. kiln
//! sends the [`ContainerSpec`](super::spec::ContainerSpec) as JSON (the
//! "cgroup joined" sync is a separate pipe, see
//! [`INIT_SYNC_FD`](super::spawn::INIT_SYNC_FD)); the init answers with [`InitMessage`]s (an error, or the terminal's master fd
//! passed with `SCM_RIGHTS`). Success needs no message: the init's end is
//! close-on-exec, so kiln reads end-of-file exactly when the user's process
//! has been executed.
//!
//! Messages are split into packets of at most [`PACKET`] bytes (the first
//! byte says whether more follow) so a spec with hundreds of layers never
//! hits the socket's per-datagram limit.

use nix::sys::socket::{self, ControlMessage, ControlMessageOwned, MsgFlags};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// Largest packet payload; well under the default socket buffer.
const PACKET: usize = 32 * 1024;

/// Why talking to the other side failed.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// The socketpair could not be created.
    #[error("failed to create the init socket")]
    Create(#[source] nix::Error),
    /// A send failed (the peer died, usually).
    #[error("failed to send to the container init")]
    Send(#[source] nix::Error),
    /// A receive failed.
    #[error("failed to receive from the container init")]
    Recv(#[source] nix::Error),
    /// The bytes were not a valid message.
    #[error("malformed message on the init socket")]
    Decode(#[source] serde_json::Error),
}

/// What the init tells kiln.
#[derive(Debug, Serialize, Deserialize)]
pub enum InitMessage {
    /// The pseudo-terminal master follows as an `SCM_RIGHTS` fd.
    Console,
    /// Setup is done; the command is being executed. End-of-file without
    /// this means the init died on its own (a kiln bug, or killed).
    Executing,
    /// Setting up the container failed; `exit_code` is what `kiln run`
    /// should exit with (docker: 127 not found, 126 not executable).
    Error {
        /// What failed, with its cause chain.
        message: String,
        /// Exit status to report.
        exit_code: i32,
    },
}

/// One end of the kiln ↔ init socket.
#[derive(Debug)]
pub struct Channel {
    fd: OwnedFd,
}

/// Creates the socketpair: (kiln's end, the init's end).
pub fn pair() -> Result<(Channel, OwnedFd), ChannelError> {
    let (a, b) = socket::socketpair(
        socket::AddressFamily::Unix,
        socket::SockType::SeqPacket,
        None,
        socket::SockFlag::SOCK_CLOEXEC,
    )
    .map_err(ChannelError::Create)?;
    Ok((Channel { fd: a }, b))
}

impl Channel {
    /// Wraps an inherited end (the init's fd 3).
    pub fn from_fd(fd: OwnedFd) -> Self {
        Channel { fd }
    }

    /// Sends `msg`, attaching `fd` to the last packet when given.
    pub fn send<T: Serialize>(
        &self,
        msg: &T,
        fd: Option<BorrowedFd<'_>>,
    ) -> Result<(), ChannelError> {
        let bytes = serde_json::to_vec(msg).map_err(ChannelError::Decode)?;
        let mut chunks = bytes.chunks(PACKET).peekable();
        if chunks.peek().is_none() {
            return self.send_packet(&[0], fd);
        }
        while let Some(chunk) = chunks.next() {
            let last = chunks.peek().is_none();
            let mut packet = Vec::with_capacity(chunk.len() + 1);
            packet.push(u8::from(!last));
            packet.extend_from_slice(chunk);
            self.send_packet(&packet, if last { fd } else { None })?;
        }
        Ok(())
    }

    fn send_packet(&self, packet: &[u8], fd: Option<BorrowedFd<'_>>) -> Result<(), ChannelError> {
        let raw: Vec<RawFd> = fd.iter().map(|f| f.as_raw_fd()).collect();
        let cmsgs: Vec<ControlMessage> = if raw.is_empty() {
            Vec::new()
        } else {
            vec![ControlMessage::ScmRights(&raw)]
        };
        socket::sendmsg::<()>(
            self.fd.as_raw_fd(),
            &[IoSlice::new(packet)],
            &cmsgs,
            MsgFlags::MSG_NOSIGNAL,
            None,
        )
        .map_err(ChannelError::Send)?;
        Ok(())
    }

    /// Receives one message and the fd attached to it, or `None` at
    /// end-of-file (the peer closed or exec'd).
    pub fn recv<T: DeserializeOwned>(&self) -> Result<Option<(T, Option<OwnedFd>)>, ChannelError> {
        let mut bytes = Vec::new();
        let mut fd = None;
        let mut buf = vec![0u8; PACKET + 1];
        loop {
            let mut cmsg = nix::cmsg_space!([RawFd; 1]);
            let (len, more) = {
                let mut iov = [IoSliceMut::new(&mut buf)];
                let msg = loop {
                    match socket::recvmsg::<()>(
                        self.fd.as_raw_fd(),
                        &mut iov,
                        Some(&mut cmsg),
                        MsgFlags::MSG_CMSG_CLOEXEC,
                    ) {
                        Err(nix::Error::EINTR) => continue,
                        // The peer closed with a message of ours unread:
                        // the kernel reports ECONNRESET (and drops what the
                        // peer sent before), which is still just the end.
                        Err(nix::Error::ECONNRESET) => return Ok(None),
                        other => break other.map_err(ChannelError::Recv)?,
                    }
                };
                for c in msg.cmsgs().map_err(ChannelError::Recv)? {
                    if let ControlMessageOwned::ScmRights(fds) = c {
                        for raw in fds {
                            // SAFETY: the kernel just installed this fd for us.
                            fd = Some(unsafe { OwnedFd::from_raw_fd(raw) });
                        }
                    }
                }
                (msg.bytes, msg.bytes > 0 && buf[0] == 1)
            };
            if len == 0 {
                return Ok(None);
            }
            bytes.extend_from_slice(&buf[1..len]);
            if !more {
                break;
            }
        }
        let msg = serde_json::from_slice(&bytes).map_err(ChannelError::Decode)?;
        Ok(Some((msg, fd)))
    }
}

impl AsFd for Channel {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_message_round_trips() {
        let (a, b) = pair().unwrap();
        let b = Channel::from_fd(b);
        let big: Vec<String> = (0..500)
            .map(|i| format!("/var/lib/kiln/snapshots/{i:064}/fs"))
            .collect();
        let sender = std::thread::spawn(move || a.send(&big, None).map(|_| big));
        let (got, fd): (Vec<String>, _) = b.recv().unwrap().unwrap();
        let big = sender.join().unwrap().unwrap();
        assert_eq!(got, big);
        assert!(fd.is_none());
    }

    #[test]
    fn close_with_unread_messages_is_end_of_file() {
        let (a, b) = pair().unwrap();
        a.send(&InitMessage::Console, None).unwrap(); // never read by b
        drop(b);
        assert!(a.recv::<InitMessage>().unwrap().is_none());
    }

    #[test]
    fn fd_travels_and_eof_is_none() {
        let (a, b) = pair().unwrap();
        let b = Channel::from_fd(b);
        let file = std::fs::File::open("/dev/null").unwrap();
        a.send(&InitMessage::Console, Some(file.as_fd())).unwrap();
        drop(a);
        let (msg, fd): (InitMessage, _) = b.recv().unwrap().unwrap();
        assert!(matches!(msg, InitMessage::Console));
        assert!(fd.is_some());
        assert!(b.recv::<InitMessage>().unwrap().is_none());
    }
}
