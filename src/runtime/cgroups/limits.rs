//! Turning Docker's resource flags into cgroup file writes, for v1 and v2,
//! with Docker's validation and defaults. Pure: the writes are data, so the
//! conversions are tested without a kernel.

use super::CgroupError;

/// Docker's resource limits for one container (`docker run` flags).
/// Serializable so a detached container's stored config keeps them for
/// every start (`container::state::CreateConfig`).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Resources {
    /// `--memory` in bytes.
    pub memory: Option<u64>,
    /// `--memory-swap` in bytes: memory plus swap; -1 is unlimited swap.
    /// Unset with `--memory` set means twice the memory (Docker's default).
    pub memory_swap: Option<i64>,
    /// `--cpus`: CPU time as a number of CPUs (CFS quota over a 100 ms period).
    pub cpus: Option<f64>,
    /// `--cpu-shares`: relative weight, 1024 is the default.
    pub cpu_shares: Option<u64>,
    /// `--pids-limit`: at most this many tasks; 0 or -1 is unlimited.
    pub pids_limit: Option<i64>,
    /// `--privileged`: every device may be opened; otherwise docker's
    /// default device policy ([`super::devices::DOCKER_DEFAULT`]) applies.
    pub all_devices: bool,
}

/// The cgroup controllers kiln uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Controller {
    /// Memory limits and OOM accounting.
    Memory,
    /// CFS bandwidth and weight.
    Cpu,
    /// Task count limit.
    Pids,
    /// Which device nodes may be opened (v1 only; v2 uses a BPF program).
    Devices,
}

impl Controller {
    /// The kernel's name of the controller.
    pub fn name(self) -> &'static str {
        match self {
            Controller::Memory => "memory",
            Controller::Cpu => "cpu",
            Controller::Pids => "pids",
            Controller::Devices => "devices",
        }
    }

    /// Every controller kiln creates a cgroup for.
    pub const ALL: [Controller; 4] = [
        Controller::Memory,
        Controller::Cpu,
        Controller::Pids,
        Controller::Devices,
    ];
}

/// One value to write into a file of a controller's cgroup directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct LimitWrite {
    pub controller: Controller,
    pub file: &'static str,
    pub value: String,
}

fn write(controller: Controller, file: &'static str, value: impl ToString) -> LimitWrite {
    LimitWrite {
        controller,
        file,
        value: value.to_string(),
    }
}

/// Docker's smallest `--memory` (daemon `linuxMinMemory`).
const MIN_MEMORY: u64 = 6 * 1024 * 1024;
/// CFS period Docker uses for `--cpus`, in microseconds.
const CFS_PERIOD_US: u64 = 100_000;

/// Memory plus swap after Docker's defaults: `None` leaves the kernel's
/// unlimited default, `Some(-1)` is explicitly unlimited.
fn effective_memory_swap(res: &Resources) -> Option<i64> {
    let memory = res.memory? as i64;
    match res.memory_swap {
        // 0 means unset in Docker too.
        None | Some(0) => Some(memory.saturating_mul(2)),
        Some(swap) => Some(swap),
    }
}

impl Resources {
    /// Docker's checks, with its messages (daemon `verifyPlatformContainerResources`).
    pub fn validate(&self) -> Result<(), CgroupError> {
        let invalid = |m: String| Err(CgroupError::Invalid(m));
        if let Some(memory) = self.memory {
            if memory < MIN_MEMORY {
                return invalid("minimum memory limit allowed is 6MB".into());
            }
        }
        match (self.memory, self.memory_swap) {
            (None, Some(swap)) if swap != 0 && swap != -1 => {
                return invalid(
                    "you should always set the memory limit when using memoryswap limit".into(),
                );
            }
            (Some(memory), Some(swap)) if swap > 0 && (swap as u64) < memory => {
                return invalid(
                    "minimum memoryswap limit should be larger than memory limit".into(),
                );
            }
            _ => {}
        }
        if let Some(cpus) = self.cpus {
            let available = std::thread::available_parallelism().map_or(1, |n| n.get());
            if !(0.01..=available as f64).contains(&cpus) {
                return invalid(format!(
                    "range of CPUs is from 0.01 to {available}.00, as there are only {available} CPUs available"
                ));
            }
        }
        Ok(())
    }

    /// The controllers that must be present for these limits; the memory
    /// controller is always wanted (OOM detection) but only required when
    /// a memory limit is set.
    pub(super) fn required(&self) -> Vec<Controller> {
        let mut out = Vec::new();
        if self.memory.is_some() || matches!(self.memory_swap, Some(s) if s != 0) {
            out.push(Controller::Memory);
        }
        if self.cpus.is_some() || self.cpu_shares.is_some() {
            out.push(Controller::Cpu);
        }
        if self.pids_limit.is_some() {
            out.push(Controller::Pids);
        }
        out
    }

    fn cpu_quota(&self) -> Option<u64> {
        // Docker: NanoCPUs * period / 1e9, in whole microseconds.
        self.cpus
            .map(|cpus| ((cpus * 1e9).round() as u64) * CFS_PERIOD_US / 1_000_000_000)
    }

    fn pids_max(&self) -> Option<String> {
        match self.pids_limit? {
            n if n > 0 => Some(n.to_string()),
            // 0 and -1 both mean unlimited to Docker.
            _ => Some("max".to_string()),
        }
    }

    /// Writes for cgroup v1, in the order the kernel accepts them: the
    /// memory limit before memsw (memsw may never be below it), the period
    /// before the quota. `memsw` says whether swap accounting exists
    /// (`memory.memsw.*` files, absent with `swapaccount=0`); without it
    /// Docker ignores `--memory-swap` with a warning, and so does kiln.
    pub(super) fn v1_writes(&self, memsw: bool) -> Vec<LimitWrite> {
        use Controller::*;
        let mut out = Vec::new();
        if let Some(memory) = self.memory {
            out.push(write(Memory, "memory.limit_in_bytes", memory));
        }
        match effective_memory_swap(self) {
            Some(swap) if memsw => out.push(write(Memory, "memory.memsw.limit_in_bytes", swap)),
            Some(_) => tracing::warn!("no swap accounting in this kernel: --memory-swap ignored"),
            None => {}
        }
        if let Some(quota) = self.cpu_quota() {
            out.push(write(Cpu, "cpu.cfs_period_us", CFS_PERIOD_US));
            out.push(write(Cpu, "cpu.cfs_quota_us", quota));
        }
        if let Some(shares) = self.cpu_shares.filter(|s| *s > 0) {
            out.push(write(Cpu, "cpu.shares", shares));
        }
        if let Some(max) = self.pids_max() {
            out.push(write(Pids, "pids.max", max));
        }
        out
    }

    /// Writes for cgroup v2. Swap is limited separately there, so
    /// `memory.swap.max` gets memory-swap minus memory (runc's conversion);
    /// `swap` says whether `memory.swap.max` exists.
    pub(super) fn v2_writes(&self, swap: bool) -> Vec<LimitWrite> {
        use Controller::*;
        let mut out = Vec::new();
        if let Some(memory) = self.memory {
            out.push(write(Memory, "memory.max", memory));
        }
        match (effective_memory_swap(self), self.memory) {
            (Some(-1), _) if swap => out.push(write(Memory, "memory.swap.max", "max")),
            (Some(total), Some(memory)) if swap => {
                let only_swap = (total as u64).saturating_sub(memory);
                out.push(write(Memory, "memory.swap.max", only_swap));
            }
            (Some(_), _) if !swap => {
                tracing::warn!("no swap accounting in this kernel: --memory-swap ignored")
            }
            _ => {}
        }
        if let Some(quota) = self.cpu_quota() {
            out.push(write(Cpu, "cpu.max", format!("{quota} {CFS_PERIOD_US}")));
        }
        if let Some(shares) = self.cpu_shares.filter(|s| *s > 0) {
            out.push(write(Cpu, "cpu.weight", cpu_shares_to_weight(shares)));
        }
        if let Some(max) = self.pids_max() {
            out.push(write(Pids, "pids.max", max));
        }
        out
    }
}

/// runc's mapping of v1 shares (2..262144) onto v2 weights (1..10000):
/// `1 + (shares - 2) * 9999 / 262142`, so the default 1024 becomes 39.
pub fn cpu_shares_to_weight(shares: u64) -> u64 {
    let shares = shares.clamp(2, 262_144);
    1 + (shares - 2) * 9999 / 262_142
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    /// One conversion: resources → the (file, value) pairs for v1 and v2.
    fn check(res: Resources, v1: &[(&str, &str)], v2: &[(&str, &str)]) {
        res.validate().expect("valid resources");
        let pairs = |w: Vec<LimitWrite>| -> Vec<(String, String)> {
            w.into_iter()
                .map(|w| (w.file.to_string(), w.value))
                .collect()
        };
        let owned = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter()
                .map(|(f, v)| (f.to_string(), v.to_string()))
                .collect()
        };
        assert_eq!(pairs(res.v1_writes(true)), owned(v1), "v1 for {res:?}");
        assert_eq!(pairs(res.v2_writes(true)), owned(v2), "v2 for {res:?}");
    }

    #[test]
    fn memory_gets_twice_as_much_swap_by_default() {
        check(
            Resources {
                memory: Some(32 * MIB),
                ..Default::default()
            },
            &[
                ("memory.limit_in_bytes", "33554432"),
                ("memory.memsw.limit_in_bytes", "67108864"),
            ],
            &[("memory.max", "33554432"), ("memory.swap.max", "33554432")],
        );
    }

    #[test]
    fn explicit_and_unlimited_swap() {
        check(
            Resources {
                memory: Some(32 * MIB),
                memory_swap: Some(48 * MIB as i64),
                ..Default::default()
            },
            &[
                ("memory.limit_in_bytes", "33554432"),
                ("memory.memsw.limit_in_bytes", "50331648"),
            ],
            &[("memory.max", "33554432"), ("memory.swap.max", "16777216")],
        );
        check(
            Resources {
                memory: Some(32 * MIB),
                memory_swap: Some(-1),
                ..Default::default()
            },
            &[
                ("memory.limit_in_bytes", "33554432"),
                ("memory.memsw.limit_in_bytes", "-1"),
            ],
            &[("memory.max", "33554432"), ("memory.swap.max", "max")],
        );
    }

    #[test]
    fn cpus_become_cfs_quota_and_shares_become_weight() {
        check(
            Resources {
                cpus: Some(0.5),
                cpu_shares: Some(512),
                ..Default::default()
            },
            &[
                ("cpu.cfs_period_us", "100000"),
                ("cpu.cfs_quota_us", "50000"),
                ("cpu.shares", "512"),
            ],
            &[("cpu.max", "50000 100000"), ("cpu.weight", "20")],
        );
        assert_eq!(cpu_shares_to_weight(1024), 39);
        assert_eq!(cpu_shares_to_weight(2), 1);
        assert_eq!(cpu_shares_to_weight(262_144), 10_000);
    }

    #[test]
    fn pids_limit_zero_and_negative_mean_unlimited() {
        for (limit, expected) in [(100, "100"), (0, "max"), (-1, "max")] {
            check(
                Resources {
                    pids_limit: Some(limit),
                    ..Default::default()
                },
                &[("pids.max", expected)],
                &[("pids.max", expected)],
            );
        }
    }

    #[test]
    fn without_swap_accounting_swap_is_skipped() {
        let res = Resources {
            memory: Some(32 * MIB),
            ..Default::default()
        };
        assert_eq!(res.v1_writes(false).len(), 1);
        assert_eq!(res.v2_writes(false).len(), 1);
    }

    #[test]
    fn invalid_combinations_fail_with_dockers_messages() {
        let cases = [
            (
                Resources {
                    memory: Some(MIB),
                    ..Default::default()
                },
                "minimum memory limit allowed is 6MB",
            ),
            (
                Resources {
                    memory: Some(64 * MIB),
                    memory_swap: Some(32 * MIB as i64),
                    ..Default::default()
                },
                "minimum memoryswap limit should be larger than memory limit",
            ),
            (
                Resources {
                    memory_swap: Some(64 * MIB as i64),
                    ..Default::default()
                },
                "you should always set the memory limit when using memoryswap limit",
            ),
            (
                Resources {
                    cpus: Some(0.001),
                    ..Default::default()
                },
                "range of CPUs is from 0.01 to",
            ),
        ];
        for (res, message) in cases {
            let err = res.validate().expect_err(message).to_string();
            assert!(err.contains(message), "{err} should contain {message}");
        }
    }

    #[test]
    fn required_controllers_follow_the_limits() {
        assert!(Resources::default().required().is_empty());
        let res = Resources {
            memory: Some(64 * MIB),
            pids_limit: Some(10),
            ..Default::default()
        };
        assert_eq!(res.required(), vec![Controller::Memory, Controller::Pids]);
    }
}
