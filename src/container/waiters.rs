//! Who waits for a container's exit status: `kiln wait`, `attach` and
//! `start -a` register in its state dir (`waiters/<pid>-<start>`) so that
//! the monitor of a `--rm` container keeps its row, with the exit code,
//! until they have read it (docker's `wait` gets the status of a `--rm`
//! container because the daemon reports the exit before the removal:
//! moby `daemon/wait.go` `ContainerWait`, `container/state.go` `Wait`).
//!
//! A `flock` on the `waiters` dir orders a registration against the
//! monitor's last look: a waiter either registers before it (and is
//! waited for) or finds the container gone.

use super::state::{alive, state_dir};
use crate::cache::scratch::ProcessId;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn dir(root: &Path, id: &str) -> PathBuf {
    state_dir(root, id).join("waiters")
}

/// A registered waiter; dropping it says the status was read.
pub struct Waiter {
    file: Option<PathBuf>,
}

impl Waiter {
    /// Registers this process as waiting for container `id`; `None` when
    /// its state dir is gone (the container was removed).
    pub fn register(root: &Path, id: &str) -> Option<Waiter> {
        let dir = dir(root, id);
        // Never the state dir itself: a removed container stays removed.
        match std::fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(_) => return None,
        }
        let handle = std::fs::File::open(&dir).ok()?;
        rustix::fs::flock(handle.as_fd(), rustix::fs::FlockOperation::LockShared).ok()?;
        // Removed between the create and the lock: nothing to wait for.
        if !dir.exists() {
            return None;
        }
        let me = ProcessId::current();
        let file = dir.join(format!("{}-{}", me.pid, me.start));
        std::fs::write(&file, b"").ok()?;
        Some(Waiter { file: Some(file) })
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        if let Some(f) = self.file.take() {
            let _ = std::fs::remove_file(f);
        }
    }
}

/// The monitor's side, before removing a `--rm` container whose exit is
/// recorded: waits (at most `patience`) until no live waiter is
/// registered, then runs `remove` under the lock, so no waiter registers
/// after the last look and before the removal.
pub fn remove_after_waiters<T>(
    root: &Path,
    id: &str,
    patience: Duration,
    remove: impl FnOnce() -> T,
) -> T {
    let dir = dir(root, id);
    let _ = std::fs::create_dir_all(&dir);
    let handle = std::fs::File::open(&dir).ok();
    let deadline = Instant::now() + patience;
    loop {
        if let Some(h) = &handle {
            let _ = rustix::fs::flock(h.as_fd(), rustix::fs::FlockOperation::LockExclusive);
        }
        if !has_live_waiter(&dir) || Instant::now() >= deadline {
            // Removed with the lock held; the lock goes with the dir.
            return remove();
        }
        if let Some(h) = &handle {
            let _ = rustix::fs::flock(h.as_fd(), rustix::fs::FlockOperation::Unlock);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether a registered waiter is still alive (a killed `kiln wait`
/// left its file behind: it does not count).
fn has_live_waiter(dir: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|e| {
        let name = e.file_name();
        let Some((pid, start)) = name.to_str().and_then(|n| n.split_once('-')) else {
            return false;
        };
        match (pid.parse(), start.parse()) {
            (Ok(pid), Ok(start)) => alive(Some((pid, start))).is_some(),
            _ => false,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removal_waits_for_a_registered_waiter_and_not_for_a_dead_one() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        let id = "c0ffee";
        std::fs::create_dir_all(state_dir(root, id)).unwrap();
        let waiter = Waiter::register(root, id).unwrap();
        // A dead waiter's file (a reused pid's start time differs).
        let me = ProcessId::current();
        std::fs::write(
            dir(root, id).join(format!("{}-{}", me.pid, me.start + 1)),
            b"",
        )
        .unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let root2 = root.to_path_buf();
        let monitor = std::thread::spawn(move || {
            remove_after_waiters(&root2, id, Duration::from_secs(60), || tx.send(()).unwrap())
        });
        // Held while the waiter is registered.
        assert!(rx.recv_timeout(Duration::from_millis(200)).is_err());
        drop(waiter);
        rx.recv().unwrap();
        monitor.join().unwrap();
    }

    #[test]
    fn a_removed_container_takes_no_waiter() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("containers"), b"not a dir").unwrap();
        assert!(Waiter::register(t.path(), "gone").is_none());
    }
}
