//! Per-process scratch space under `<root>/tmp/` and its cleanup.
//!
//! Every temp file or directory a kiln process makes (blob downloads,
//! half-extracted snapshots, GC trash) lives in that process's own scratch
//! directory `<root>/tmp/<pid>-<starttime>-<nonce>/`, on the same
//! filesystem as the store so finished work is `rename(2)`d into place. A
//! process killed with SIGKILL leaves its scratch directory behind; the
//! next kiln process to open the store removes it once the owner is dead.
//! A process is identified by pid *and* start time (field 22 of
//! `/proc/<pid>/stat`), so a recycled pid never makes a dead owner look
//! alive for long nor a live one look dead.
//! Limitation: processes sharing one store must share a pid namespace.

use crate::error_chain::Chain;
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A process identity that survives pid reuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessId {
    pub pid: u32,
    /// Start time in clock ticks since boot.
    pub start: u64,
}

impl ProcessId {
    /// This process.
    pub fn current() -> ProcessId {
        let pid = std::process::id();
        ProcessId {
            pid,
            start: start_time(pid).unwrap_or(0),
        }
    }

    /// Another process, if it is running.
    pub fn of(pid: u32) -> Option<ProcessId> {
        start_time(pid).map(|start| ProcessId { pid, start })
    }

    /// Whether this exact process (not a later one with the same pid) runs.
    pub fn is_alive(&self) -> bool {
        start_time(self.pid) == Some(self.start)
    }
}

/// Field 22 of `/proc/<pid>/stat` (proc(5)); `comm` may contain spaces
/// and parentheses, so fields are counted after the last `)`.
fn start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    // After ')' come field 3 (state) onwards: starttime is the 20th of them.
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// This process's scratch directory; removed on drop.
#[derive(Debug)]
pub struct Scratch {
    dir: PathBuf,
    seq: AtomicU64,
}

impl Scratch {
    /// Creates a fresh scratch directory under `tmp_root`.
    pub fn create(tmp_root: &Path) -> io::Result<Scratch> {
        let me = ProcessId::current();
        let nonce = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let dir = tmp_root.join(format!("{}-{}-{nonce:x}", me.pid, me.start));
        fs::create_dir(&dir)?;
        Ok(Scratch {
            dir,
            seq: AtomicU64::new(0),
        })
    }

    /// A new unique path inside the scratch directory (not created).
    pub fn path(&self, what: &str) -> PathBuf {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        self.dir.join(format!("{what}-{n}"))
    }

    /// The scratch directory itself.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Err(e) = remove_tree(&self.dir) {
            tracing::warn!(
                "removing scratch dir {}: {e}",
                self.dir.display(),
                e = Chain(&e)
            );
        }
    }
}

/// The owner of a scratch entry name `<pid>-<start>-<nonce>`.
fn owner_of(name: &str) -> Option<ProcessId> {
    let mut parts = name.splitn(3, '-');
    let pid = parts.next()?.parse().ok()?;
    let start = parts.next()?.parse().ok()?;
    parts.next()?;
    Some(ProcessId { pid, start })
}

/// Removes scratch directories whose owning process is gone. Returns how
/// many were removed. Entries of live processes are never touched.
pub fn clean_dead(tmp_root: &Path) -> io::Result<usize> {
    let mut removed = 0;
    for entry in fs::read_dir(tmp_root)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(owner) = name.to_str().and_then(owner_of) else {
            continue;
        };
        if owner.is_alive() {
            continue;
        }
        tracing::debug!("removing scratch of dead process {}", owner.pid);
        // A build killed while a layer view was mounted in its scratch dir
        // leaves the mount behind; removing files through it would fail.
        detach_mounts_under(&entry.path());
        match remove_tree(&entry.path()) {
            Ok(()) => removed += 1,
            // Another process may be cleaning the same directory.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(removed)
}

/// Lazily unmounts (`MNT_DETACH`) every mount at or below `dir`, deepest
/// first, so the tree can be removed. Failures are logged: what stays
/// mounted makes the removal fail and report itself.
pub fn detach_mounts_under(dir: &Path) {
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let mut points: Vec<PathBuf> = info
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape_mountinfo(p)))
        .filter(|p| p.starts_with(dir))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for p in points {
        if let Err(e) = nix::mount::umount2(&p, nix::mount::MntFlags::MNT_DETACH) {
            tracing::warn!("unmounting {}: {e}", p.display(), e = Chain(&e));
        }
    }
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `rm -rf` that also works on trees with read-only directories (a layer
/// may contain `dr-x------` dirs; as non-root they block unlinking their
/// children), never following symlinks.
pub fn remove_tree(path: &Path) -> io::Result<()> {
    match fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            make_writable(path)?;
            fs::remove_dir_all(path)
        }
        Err(e) => match fs::symlink_metadata(path) {
            Ok(md) if !md.is_dir() => fs::remove_file(path),
            _ => Err(e),
        },
    }
}

fn make_writable(path: &Path) -> io::Result<()> {
    let md = fs::symlink_metadata(path)?;
    if !md.is_dir() {
        return Ok(());
    }
    let mode = md.permissions().mode();
    if mode & 0o700 != 0o700 {
        fs::set_permissions(path, fs::Permissions::from_mode(mode | 0o700))?;
    }
    for entry in fs::read_dir(path)? {
        make_writable(&entry?.path())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn current_process_is_alive_and_a_fake_one_is_not() {
        let me = ProcessId::current();
        assert!(me.start > 0);
        assert!(me.is_alive());
        let recycled = ProcessId {
            pid: me.pid,
            start: me.start + 1,
        };
        assert!(!recycled.is_alive());
    }

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape_mountinfo("/a\\040b\\134c"), "/a b\\c");
        assert_eq!(unescape_mountinfo("/plain"), "/plain");
    }

    #[test]
    fn cleans_only_dead_owners() {
        let t = tempfile::tempdir().unwrap();
        let live = Scratch::create(t.path()).unwrap();
        fs::write(live.path("blob"), b"x").unwrap();
        let me = ProcessId::current();
        let dead = t.path().join(format!("{}-{}-abc", me.pid, me.start + 7));
        fs::create_dir_all(dead.join("sub")).unwrap();
        fs::set_permissions(dead.join("sub"), fs::Permissions::from_mode(0o500)).unwrap();
        fs::create_dir(t.path().join("not-ours")).unwrap();
        assert_eq!(clean_dead(t.path()).unwrap(), 1);
        assert!(!dead.exists());
        assert!(live.dir().exists());
        assert!(t.path().join("not-ours").exists());
        let dir = live.dir().to_path_buf();
        drop(live);
        assert!(!dir.exists());
    }
}
