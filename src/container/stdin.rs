//! The stdin of a `-i` container run by a monitor: a FIFO in its state
//! dir (`stdin`) that `kiln attach` and `kiln start -a -i` write to, and
//! the monitor's relay from it into the container's stdin pipe.
//!
//! The container's stdin is a pipe the monitor owns, not the FIFO itself:
//! an attaching client that goes away must not end the container's input
//! (docker keeps a `-i` container's stdin open across attaches), except
//! for a container created with `StdinOnce`, whose stdin closes when the
//! first client's input ends (moby `container/stream/attach.go`
//! `CopyStreams`: `CloseStdin` closes the container's stdin at the
//! client's EOF; `container/container.go` `Attach` sets it from
//! `Config.StdinOnce`). docker/cli sets `StdinOnce` for `create -i` and
//! a foreground `run -i` and clears it for `run -d`
//! (`cli/command/container/opts.go` `parse`, `run.go` `runContainer`).
//!
//! One relay thread lives as long as the monitor: it blocks opening the
//! FIFO for reading until a client opens it for writing, copies until
//! every client closed it, and opens it again. Each run of the container
//! gets a fresh pipe ([`StdinRelay::next_run`]).

use std::ffi::CString;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The FIFO of container `id` (in its state dir).
pub fn fifo_path(root: &Path, id: &str) -> PathBuf {
    super::state::state_dir(root, id).join("stdin")
}

/// The monitor's side: the FIFO and the write end of the current run's
/// stdin pipe.
pub struct StdinRelay {
    /// `None` between runs and once a `StdinOnce` client's input ended.
    writer: Arc<Mutex<Option<File>>>,
}

impl StdinRelay {
    /// Makes the FIFO at `fifo` (mode 0600: only root attaches) and
    /// starts the relay thread.
    pub fn start(fifo: &Path, stdin_once: bool) -> io::Result<StdinRelay> {
        let _ = std::fs::remove_file(fifo);
        let c_path = CString::new(fifo.as_os_str().as_bytes())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        // SAFETY: mkfifo(3) with a NUL-terminated path.
        if unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) } < 0 {
            return Err(io::Error::last_os_error());
        }
        let writer: Arc<Mutex<Option<File>>> = Arc::default();
        let relay = StdinRelay {
            writer: writer.clone(),
        };
        let fifo = fifo.to_path_buf();
        std::thread::spawn(move || loop {
            // Blocks until a client opens the FIFO for writing.
            let client = match File::open(&fifo) {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::warn!("opening {}: {e}", fifo.display());
                    return;
                }
            };
            relay_client(client, &writer);
            if stdin_once {
                // The first client's EOF is the container's.
                lock(&writer).take();
            }
        });
        Ok(relay)
    }

    /// A fresh stdin pipe for the next run; returns the container's end.
    pub fn next_run(&self) -> io::Result<OwnedFd> {
        let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
        *lock(&self.writer) = Some(File::from(w));
        Ok(r)
    }

    /// The run ended: what clients write is dropped until the next one.
    pub fn end_run(&self) {
        lock(&self.writer).take();
    }
}

fn lock(writer: &Mutex<Option<File>>) -> std::sync::MutexGuard<'_, Option<File>> {
    writer.lock().unwrap_or_else(|p| p.into_inner())
}

/// Copies what one client writes into the current run's pipe, until no
/// client holds the FIFO open. Input while no run reads it is dropped.
fn relay_client(mut client: File, writer: &Mutex<Option<File>>) {
    let mut buf = [0u8; 8192];
    loop {
        let n = match client.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::warn!("reading the container's stdin FIFO: {e}");
                return;
            }
        };
        // Written through a duplicate, outside the lock: a container that
        // does not read must not keep `end_run` waiting.
        let target = lock(writer).as_ref().and_then(|w| w.try_clone().ok());
        if let Some(mut target) = target {
            // EPIPE: the container closed its stdin or ended.
            let _ = target.write_all(&buf[..n]);
        }
    }
}

/// The client's side: opens a container's FIFO ([`fifo_path`]) for
/// writing. The relay may be between two clients (not blocked in its open
/// yet), so `ENXIO` is retried for up to `patience`.
pub fn open_writer(path: &Path, patience: Duration) -> io::Result<File> {
    let deadline = Instant::now() + patience;
    loop {
        // Non-blocking: with no reader, open fails (ENXIO) rather than
        // hanging; the descriptor is made blocking afterwards.
        match File::options()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
        {
            Ok(f) => {
                let flags = rustix::fs::fcntl_getfl(&f)?;
                rustix::fs::fcntl_setfl(&f, flags - rustix::fs::OFlags::NONBLOCK)?;
                return Ok(f);
            }
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_some(r: &OwnedFd) -> String {
        let mut buf = [0u8; 64];
        let n = rustix::io::read(r, &mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[test]
    fn stdin_stays_open_across_clients_unless_stdin_once() {
        let t = tempfile::tempdir().unwrap();
        let fifo = t.path().join("stdin");
        let relay = StdinRelay::start(&fifo, false).unwrap();
        let container = relay.next_run().unwrap();
        let write = |s: &str| {
            let mut w = open_writer(&fifo, Duration::from_secs(5)).unwrap();
            w.write_all(s.as_bytes()).unwrap();
        };
        write("one\n");
        assert_eq!(read_some(&container), "one\n");
        // The first client is gone; the container's stdin is still open.
        write("two\n");
        assert_eq!(read_some(&container), "two\n");

        let fifo = t.path().join("stdin-once");
        let relay = StdinRelay::start(&fifo, true).unwrap();
        let container = relay.next_run().unwrap();
        open_writer(&fifo, Duration::from_secs(5))
            .unwrap()
            .write_all(b"only\n")
            .unwrap();
        assert_eq!(read_some(&container), "only\n");
        // EOF once the relay saw the client go.
        assert_eq!(read_some(&container), "");
    }
}
