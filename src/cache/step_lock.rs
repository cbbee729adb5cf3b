//! One lock per build cache key, so kiln processes sharing a `--root`
//! that reach the same missed step at the same moment run it once: the
//! first takes `<root>/locks/<key hex>` (an `flock`) and runs the step,
//! the others wait for the lock and then find its result recorded.
//!
//! BuildKit gets this from its daemon: one shared solver merges identical
//! vertices of concurrent builds in memory (moby/buildkit `solver/jobs.go`,
//! `Solver.Build` / the shared `sharedOp`); kiln has no daemon, so the
//! processes meet on the store's file system instead.
//!
//! **Rule that keeps this deadlock-free:** a key's lock is held only
//! while its own step runs, never while waiting for another lock or for
//! another step's result, so no cycle of waiters can form. An `flock`
//! dies with its holder's descriptor, so a killed build releases its
//! steps. Lock files are empty and never removed: removing one could let
//! a waiter hold a lock on an unlinked file while a newcomer locks a new
//! one (two runs: wasted work, never a wrong result, but the point of the
//! lock).

use std::fs::File;
use std::io;
use std::path::PathBuf;

use rustix::fs::{flock, FlockOperation};

use super::Store;
use crate::image::digest::Digest;

/// A held step lock; released when dropped (or when the process dies).
#[derive(Debug)]
pub struct StepLock {
    _file: File,
}

impl Store {
    /// Where the lock of the step under `key` lives.
    fn step_lock_path(&self, key: &Digest) -> PathBuf {
        self.layout().step_locks().join(key.hex())
    }

    /// Takes the lock of the step under `key` if no other holder has it
    /// (in this process or another): `Ok(None)` when it is taken.
    pub fn try_lock_step(&self, key: &Digest) -> io::Result<Option<StepLock>> {
        let path = self.step_lock_path(key);
        let open = || {
            File::options()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
        };
        let file = match open() {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                std::fs::create_dir_all(path.parent().unwrap_or(self.root()))?;
                open()?
            }
            Err(e) => return Err(e),
        };
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(Some(StepLock { _file: file })),
            Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_lock_excludes_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let key: Digest = format!("sha256:{}", "1".repeat(64)).parse().unwrap();
        let other: Digest = format!("sha256:{}", "2".repeat(64)).parse().unwrap();
        let held = store.try_lock_step(&key).unwrap().expect("free at first");
        // Another open file description (as another process would have)
        // is refused; another key is not.
        assert!(store.try_lock_step(&key).unwrap().is_none());
        assert!(store.try_lock_step(&other).unwrap().is_some());
        drop(held);
        assert!(store.try_lock_step(&key).unwrap().is_some());
    }
}
