//! `stats`: one reading of a running container's resource use, from the
//! cgroups its init is in (v1 controllers, including hybrid hosts like
//! the test machines, or the v2 unified tree; see KERNEL-NOTES.md) and
//! its network namespace's counters (`/proc/<pid>/net/dev`).
//!
//! The numbers are the ones docker's CLI shows (docker/cli
//! `cli/command/container/stats_helpers.go`): memory usage without the
//! inactive file cache, the limit capped at the host's memory, bytes read
//! and written by block devices, every interface but loopback.

use std::path::PathBuf;

/// One reading.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sample {
    /// CPU time the container used, nanoseconds.
    pub cpu_ns: u64,
    /// CPU time of the whole host (all CPUs), nanoseconds.
    pub system_ns: u64,
    /// Online CPUs.
    pub cpus: u32,
    /// Memory in use, inactive file cache not counted.
    pub mem_usage: u64,
    /// The memory limit (the host's memory when there is none).
    pub mem_limit: u64,
    /// Bytes received and sent on the container's interfaces.
    pub net: (u64, u64),
    /// Bytes read from and written to block devices.
    pub block: (u64, u64),
    /// Processes (tasks) in the container's cgroup.
    pub pids: u64,
}

/// The directory of `controller` for `pid`: its v1 hierarchy, or the v2
/// tree when no v1 hierarchy has that controller.
fn controller_dir(cgroups: &str, controller: &str) -> Option<PathBuf> {
    let mut v2 = None;
    for line in cgroups.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let rel = path.trim_start_matches('/');
        if controllers.split(',').any(|c| c == controller) {
            let dir = PathBuf::from("/sys/fs/cgroup").join(controllers).join(rel);
            if dir.is_dir() {
                return Some(dir);
            }
        } else if controllers.is_empty() {
            v2 = Some(PathBuf::from("/sys/fs/cgroup").join(rel));
        }
    }
    v2.filter(|d| d.join("cgroup.controllers").exists())
}

fn read(dir: &Option<PathBuf>, file: &str) -> Option<String> {
    std::fs::read_to_string(dir.as_ref()?.join(file)).ok()
}

fn number(text: Option<String>) -> Option<u64> {
    text?.trim().parse().ok()
}

/// The value of `key` in a `key value` file (`memory.stat`, `cpu.stat`).
fn keyed(text: &Option<String>, key: &str) -> Option<u64> {
    text.as_deref()?.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// Bytes read and written: v1 `blkio.throttle.io_service_bytes`
/// (`8:0 Read N`) or v2 `io.stat` (`8:0 rbytes=N wbytes=N ...`).
pub fn block_bytes(v1: Option<&str>, v2: Option<&str>) -> (u64, u64) {
    let (mut r, mut w) = (0, 0);
    for l in v1.unwrap_or("").lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        if let [_, op, n] = f.as_slice() {
            let n: u64 = n.parse().unwrap_or(0);
            match *op {
                "Read" => r += n,
                "Write" => w += n,
                _ => {}
            }
        }
    }
    for field in v2.unwrap_or("").split_whitespace() {
        if let Some(n) = field.strip_prefix("rbytes=") {
            r += n.parse().unwrap_or(0);
        } else if let Some(n) = field.strip_prefix("wbytes=") {
            w += n.parse().unwrap_or(0);
        }
    }
    (r, w)
}

/// Received and sent bytes of every interface but `lo` in a
/// `/proc/<pid>/net/dev` table.
pub fn net_bytes(dev: &str) -> (u64, u64) {
    let mut total = (0, 0);
    for l in dev.lines().skip(2) {
        let Some((name, counters)) = l.split_once(':') else {
            continue;
        };
        if name.trim() == "lo" {
            continue;
        }
        let c: Vec<u64> = counters
            .split_whitespace()
            .map(|n| n.parse().unwrap_or(0))
            .collect();
        if c.len() >= 9 {
            total.0 += c[0];
            total.1 += c[8];
        }
    }
    total
}

/// Host CPU time (all CPUs) in nanoseconds and the number of CPUs, from
/// `/proc/stat` (docker's `getSystemCPUUsage`: user..steal).
fn host_cpu() -> (u64, u32) {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    // SAFETY: sysconf reads a constant of the C library; no memory is
    // passed.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let tick = 1_000_000_000 / (ticks.max(1) as u64);
    let mut total = 0;
    let mut cpus = 0;
    for l in text.lines() {
        if let Some(rest) = l.strip_prefix("cpu ") {
            total = rest
                .split_whitespace()
                .take(7)
                .map(|n| n.parse::<u64>().unwrap_or(0))
                .sum::<u64>()
                * tick;
        } else if l.starts_with("cpu") {
            cpus += 1;
        }
    }
    (total, cpus.max(1))
}

fn host_memory() -> u64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(u64::MAX, |kb| kb * 1024)
}

/// Reads a sample of the container whose init is `pid`; `None` when the
/// process is gone.
pub fn sample(pid: u32) -> Option<Sample> {
    let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    // A container in kiln's own (the host's) network namespace has no
    // interfaces of its own: docker shows `0B / 0B` for `--network host`.
    let own_netns = std::fs::read_link(format!("/proc/{pid}/ns/net")).ok()
        != std::fs::read_link("/proc/self/ns/net").ok();
    let net = if own_netns {
        std::fs::read_to_string(format!("/proc/{pid}/net/dev")).unwrap_or_default()
    } else {
        String::new()
    };
    let cpu = controller_dir(&cgroups, "cpuacct").or_else(|| controller_dir(&cgroups, "cpu"));
    let mem = controller_dir(&cgroups, "memory");
    let pids = controller_dir(&cgroups, "pids");
    let io = controller_dir(&cgroups, "blkio").or_else(|| controller_dir(&cgroups, "io"));
    let (cpu_ns, mem_usage, limit, block) = match &mem {
        Some(d) if d.join("memory.usage_in_bytes").exists() => {
            let stat = read(&mem, "memory.stat");
            let usage = number(read(&mem, "memory.usage_in_bytes")).unwrap_or(0);
            let inactive = keyed(&stat, "total_inactive_file").unwrap_or(0);
            (
                number(read(&cpu, "cpuacct.usage")).unwrap_or(0),
                usage.saturating_sub(inactive),
                number(read(&mem, "memory.limit_in_bytes")),
                block_bytes(
                    read(&io, "blkio.throttle.io_service_bytes").as_deref(),
                    None,
                ),
            )
        }
        _ => {
            let stat = read(&mem, "memory.stat");
            let usage = number(read(&mem, "memory.current")).unwrap_or(0);
            let inactive = keyed(&stat, "inactive_file").unwrap_or(0);
            (
                keyed(&read(&cpu, "cpu.stat"), "usage_usec").unwrap_or(0) * 1000,
                usage.saturating_sub(inactive),
                number(read(&mem, "memory.max")),
                block_bytes(None, read(&io, "io.stat").as_deref()),
            )
        }
    };
    let (system_ns, cpus) = host_cpu();
    Some(Sample {
        cpu_ns,
        system_ns,
        cpus,
        mem_usage,
        mem_limit: limit.unwrap_or(u64::MAX).min(host_memory()),
        net: net_bytes(&net),
        block,
        pids: number(read(&pids, "pids.current")).unwrap_or(0),
    })
}

/// docker's CPU %: the container's share of the host's CPU time between
/// two samples, times the CPUs (`calculateCPUPercentUnix`).
pub fn cpu_percent(before: &Sample, after: &Sample) -> f64 {
    let cpu = after.cpu_ns.saturating_sub(before.cpu_ns) as f64;
    let system = after.system_ns.saturating_sub(before.system_ns) as f64;
    if cpu > 0.0 && system > 0.0 {
        cpu / system * after.cpus as f64 * 100.0
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_not_counted_in_net_io() {
        let dev = "Inter-|   Receive |  Transmit\n face |bytes packets errs drop fifo frame compressed multicast|bytes\n    lo: 100 1 0 0 0 0 0 0 100 1 0 0 0 0 0 0\n  eth0: 1200 3 0 0 0 0 0 0 800 2 0 0 0 0 0 0\n";
        assert_eq!(net_bytes(dev), (1200, 800));
    }

    #[test]
    fn block_io_sums_reads_and_writes_of_every_device() {
        let v1 = "8:0 Read 4096\n8:0 Write 512\n8:16 Read 4\n8:0 Total 4608\nTotal 4612\n";
        assert_eq!(block_bytes(Some(v1), None), (4100, 512));
        let v2 = "8:0 rbytes=10 wbytes=20 rios=1 wios=1\n";
        assert_eq!(block_bytes(None, Some(v2)), (10, 20));
    }

    #[test]
    fn cpu_percent_is_the_share_of_host_time_times_the_cpus() {
        let a = Sample {
            cpu_ns: 0,
            system_ns: 0,
            cpus: 2,
            ..Sample::default()
        };
        let b = Sample {
            cpu_ns: 50,
            system_ns: 200,
            cpus: 2,
            ..Sample::default()
        };
        assert_eq!(cpu_percent(&a, &b), 50.0);
        assert_eq!(cpu_percent(&b, &b), 0.0);
    }
}
