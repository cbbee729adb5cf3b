//! `pause`/`unpause`: the cgroup freezer of a running container, found
//! from its init's `/proc/<pid>/cgroup` (the runtime made that cgroup;
//! this module only flips it).
//!
//! cgroup v1 (also hybrid hosts like the test machines, see
//! KERNEL-NOTES.md): `freezer.state` takes `FROZEN`/`THAWED` and reads
//! `FREEZING` until every task is frozen. cgroup v2: `cgroup.freeze`
//! takes `1`/`0`, and `cgroup.events` says `frozen 1` once done (runc's
//! `libcontainer/cgroups/fs` and `fs2` freezers do the same).

use std::io;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Why the freezer could not be used.
#[derive(Debug, thiserror::Error)]
pub enum FreezerError {
    /// The container's cgroup has no freezer kiln can find.
    #[error("no cgroup freezer for process {0}")]
    NotFound(u32),
    /// Reading or writing the freezer failed.
    #[error("cgroup freezer {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The cgroup did not reach the state in time.
    #[error("cgroup freezer {0}: the container did not freeze within 10s")]
    Timeout(PathBuf),
}

/// Where the freezer of `pid`'s cgroup is, and which kind.
enum Freezer {
    V1(PathBuf),
    V2(PathBuf),
}

fn find(pid: u32) -> Result<Freezer, FreezerError> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .map_err(|_| FreezerError::NotFound(pid))?;
    let mut v2 = None;
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(hier), Some(controllers), Some(path)) =
            (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let rel = path.trim_start_matches('/');
        if controllers.split(',').any(|c| c == "freezer") {
            return Ok(Freezer::V1(
                PathBuf::from("/sys/fs/cgroup/freezer").join(rel),
            ));
        }
        if hier == "0" && controllers.is_empty() {
            // Pure v2 mounts at /sys/fs/cgroup, hybrid at .../unified.
            let base = if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
                "/sys/fs/cgroup"
            } else {
                "/sys/fs/cgroup/unified"
            };
            v2 = Some(Freezer::V2(PathBuf::from(base).join(rel)));
        }
    }
    v2.ok_or(FreezerError::NotFound(pid))
}

fn write(path: PathBuf, value: &str) -> Result<PathBuf, FreezerError> {
    std::fs::write(&path, value).map_err(|source| FreezerError::Io {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

/// Freezes (`true`) or thaws the cgroup of process `pid` and waits until
/// the kernel reports it done.
pub fn set_frozen(pid: u32, frozen: bool) -> Result<(), FreezerError> {
    let (check, done): (PathBuf, &str) = match find(pid)? {
        Freezer::V1(dir) => {
            let f = write(
                dir.join("freezer.state"),
                if frozen { "FROZEN" } else { "THAWED" },
            )?;
            (f, if frozen { "FROZEN" } else { "THAWED" })
        }
        Freezer::V2(dir) => {
            write(dir.join("cgroup.freeze"), if frozen { "1" } else { "0" })?;
            (
                dir.join("cgroup.events"),
                if frozen { "frozen 1" } else { "frozen 0" },
            )
        }
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = std::fs::read_to_string(&check).map_err(|source| FreezerError::Io {
            path: check.clone(),
            source,
        })?;
        if now.lines().any(|l| l.trim() == done) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(FreezerError::Timeout(check));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
