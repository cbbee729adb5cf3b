//! `kiln run --rm` containers whose kiln was killed: their state dir
//! (`<root>/containers/<id>/`, with all the container's writes) and their
//! `--name` are removed by the next kiln process that touches containers.
//!
//! A `--rm` run writes its owner (pid and start time, as for scratch dirs)
//! into `<id>/rm-owner` before it claims a name, and a name link is made
//! only once its state dir exists. The container's processes die with
//! their kiln (the runtime's init has `PR_SET_PDEATHSIG(SIGKILL)` and is
//! pid 1 of the container's pid namespace), so a dead owner means a dead
//! container; its image lease, owned by the same process, is dropped as
//! stale by the next store open.
//!
//! Removal order, so that a kill at any point is finished next time:
//! rename `<id>` to `.removing-<id>` (the claim), remove the name links
//! pointing at `<id>` and its anonymous volumes, delete the tree. Reapers
//! take turns on a lock file, so two of them never race on one name.

use crate::cache::scratch::{self, ProcessId};
use crate::cache::StoreLayout;
use crate::error_chain::Chain;
use std::fs::File;
use std::io;
use std::path::Path;

/// The owner marker of a `--rm` container, inside its state dir.
pub const REMOVAL_OWNER: &str = "rm-owner";
const REMOVING: &str = ".removing-";

/// Creates `state_dir` and, for a `--rm` container, records this process
/// as the one that removes it (so that its death hands the removal to the
/// next kiln). Call before claiming the container's name.
pub fn create_state_dir(state_dir: &Path, remove: bool) -> io::Result<()> {
    std::fs::create_dir_all(state_dir)?;
    if remove {
        let me = ProcessId::current();
        std::fs::write(
            state_dir.join(REMOVAL_OWNER),
            format!("{} {}\n", me.pid, me.start),
        )?;
    }
    Ok(())
}

fn owner(state_dir: &Path) -> Option<ProcessId> {
    let text = std::fs::read_to_string(state_dir.join(REMOVAL_OWNER)).ok()?;
    let mut it = text.split_whitespace();
    Some(ProcessId {
        pid: it.next()?.parse().ok()?,
        start: it.next()?.parse().ok()?,
    })
}

/// Removes the `--rm` containers under `<root>/containers` whose kiln is
/// gone (state dir, name, and what a killed reaper left). Returns how
/// many. Failures are logged: a leftover is retried by the next kiln.
pub fn reap_dead_removals(root: &Path) -> usize {
    let layout = StoreLayout::new(root);
    let containers = layout.containers();
    let Ok(entries) = std::fs::read_dir(&containers) else {
        return 0;
    };
    let names: Vec<String> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .collect();
    let dead: Vec<&String> = names
        .iter()
        .filter(|n| {
            n.starts_with(REMOVING)
                || (!n.starts_with('.')
                    && owner(&containers.join(n)).is_some_and(|o| !o.is_alive()))
        })
        .collect();
    if dead.is_empty() {
        return 0;
    }
    let _lock = match ReapLock::take(&layout.container_names()) {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(
                "locking {} for cleanup: {e}",
                containers.display(),
                e = Chain(&e)
            );
            return 0;
        }
    };
    let mut reaped = 0;
    for name in dead {
        let id = name.strip_prefix(REMOVING).unwrap_or(name);
        let claimed = containers.join(format!("{REMOVING}{id}"));
        if !name.starts_with(REMOVING) {
            // Re-check under the lock: another reaper may have been first.
            if std::fs::rename(containers.join(name), &claimed).is_err() {
                continue;
            }
            tracing::info!("removing container {id}: its kiln run --rm was killed");
        }
        remove_names_of(&layout.container_names(), id);
        // docker removes a `--rm` container's anonymous volumes with it;
        // its record is inside the claimed dir, so a reaper killed here
        // finds it again.
        if let Err(e) = crate::volume::VolumeStore::new(root).detach(&claimed, true) {
            tracing::warn!("removing the volumes of container {id}: {e}", e = Chain(&e));
        }
        match scratch::remove_tree(&claimed) {
            Ok(()) => reaped += 1,
            Err(e) => tracing::warn!("removing {}: {e}", claimed.display(), e = Chain(&e)),
        }
    }
    reaped
}

/// Removes the name links pointing at container `id`.
fn remove_names_of(names: &Path, id: &str) {
    let Ok(entries) = std::fs::read_dir(names) else {
        return;
    };
    for e in entries.flatten() {
        if std::fs::read_link(e.path()).is_ok_and(|t| t.as_os_str() == id) {
            if let Err(err) = std::fs::remove_file(e.path()) {
                tracing::warn!(
                    "removing name {}: {err}",
                    e.path().display(),
                    err = Chain(&err)
                );
            }
        }
    }
}

/// An exclusive `flock` on `<root>/containers/names/.reap-lock`, held
/// while reaping (in `names/`, which only `--name` links share, so
/// listings of containers never show it).
struct ReapLock {
    _file: File,
}

impl ReapLock {
    fn take(dir: &Path) -> io::Result<ReapLock> {
        std::fs::create_dir_all(dir)?;
        let file = File::create(dir.join(".reap-lock"))?;
        rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)?;
        Ok(ReapLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reaps_only_dead_owners_and_their_names() {
        let t = tempfile::tempdir().unwrap();
        let containers = t.path().join("containers");
        let names = containers.join("names");
        std::fs::create_dir_all(&names).unwrap();
        // Alive: this process; dead: a start time that is not ours.
        create_state_dir(&containers.join("live"), true).unwrap();
        create_state_dir(&containers.join("kept"), false).unwrap();
        let dead = containers.join("dead");
        std::fs::create_dir_all(dead.join("upper/sub")).unwrap();
        let me = ProcessId::current();
        std::fs::write(
            dead.join(REMOVAL_OWNER),
            format!("{} {}\n", me.pid, me.start + 1),
        )
        .unwrap();
        // A reaper killed after its claim.
        std::fs::create_dir_all(containers.join(".removing-half")).unwrap();
        for (name, id) in [("a", "live"), ("b", "dead"), ("c", "half"), ("d", "kept")] {
            std::os::unix::fs::symlink(id, names.join(name)).unwrap();
        }
        assert_eq!(reap_dead_removals(t.path()), 2);
        let mut left: Vec<String> = std::fs::read_dir(&containers)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, ["kept", "live", "names"]);
        assert!(names.join("a").symlink_metadata().is_ok());
        assert!(names.join("d").symlink_metadata().is_ok());
        assert!(names.join("b").symlink_metadata().is_err());
        assert!(names.join("c").symlink_metadata().is_err());
    }
}
