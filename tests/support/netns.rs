//! `ip netns add` for tests, one at a time on this host.
//!
//! iproute2's `netns_add` makes `/run/netns` a shared mount on first use
//! (`mount --make-shared`, falling back to bind-mounting the directory on
//! itself); two processes doing that at once can stack two such mounts,
//! and the namespace file one of them then bind-mounts lands on a mount
//! the other cannot see ("mount of /proc/self/ns/net to /run/netns/NAME
//! failed"). Tests create namespaces in parallel (and several test runs
//! may share the machine), so every creation takes one host-wide lock.

use std::fs::OpenOptions;
use std::process::Command;

/// Runs `set_up(attempt)` until it succeeds, at most three times, then
/// fails the test with every attempt's error. A namespace file can lose
/// its mount when another process on the host stacks a bind mount on
/// `/run/netns` at that moment (iproute2's `netns_add` fallback, outside
/// this lock when the other process is not a kiln test): a host-side race,
/// not kiln's. `set_up` removes what it made before returning an error and
/// names what it makes after `attempt`, so attempts never collide.
pub fn set_up_with_retries<T>(what: &str, mut set_up: impl FnMut(u32) -> Result<T, String>) -> T {
    let mut errors = Vec::new();
    for attempt in 0..3 {
        match set_up(attempt) {
            Ok(made) => return made,
            Err(e) => errors.push(e),
        }
    }
    panic!("setting up {what}: {errors:?}");
}

/// Where the lock lives: `/run`, so it is as host-wide as `/run/netns`.
const LOCK: &str = "/run/kiln-tests-netns.lock";

/// Creates the network namespace `name` (`ip netns add`), holding the
/// host-wide lock while `ip` runs; the error carries `ip`'s stderr.
pub fn add(name: &str) -> Result<(), String> {
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(LOCK)
        .map_err(|e| format!("opening {LOCK}: {e}"))?;
    lock.lock().map_err(|e| format!("locking {LOCK}: {e}"))?;
    let out = Command::new("ip")
        .args(["netns", "add", name])
        .output()
        .map_err(|e| format!("running ip netns add {name}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip netns add {name}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}
