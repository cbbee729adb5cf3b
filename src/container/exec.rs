//! `kiln exec` and `kiln top`: what they need of a running container,
//! read from its row (its stored spec and its init's pid).

use super::state::{self, alive, CreateConfig, StateError, Status};
use crate::cache::{ContainerRow, Store};
use crate::runtime::join::JoinSpec;
use crate::runtime::spec::docker_env;

/// What the user asked `kiln exec` for, on top of the container's spec.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    /// The command.
    pub args: Vec<String>,
    /// `-e K=V`, after the container's environment.
    pub env: Vec<String>,
    /// `-w`; the container's working dir when `None`.
    pub workdir: Option<String>,
    /// `-u`; the container's user when `None`.
    pub user: Option<String>,
    /// `-t`.
    pub terminal: bool,
    /// The terminal's size with `-t`.
    pub console_size: Option<(u16, u16)>,
}

/// A running container: its row and its init's pid (kiln's namespace).
/// Errors use moby's words (`daemon/exec.go`, `getActiveContainer`).
pub fn running(store: &Store, key: &str) -> Result<(ContainerRow, u32), StateError> {
    state::reconcile(store)?;
    let row = state::find(store, key)?;
    let id = &row.id;
    match Status::parse(&row.state) {
        Status::Running => {}
        Status::Paused => {
            return Err(StateError::Conflict(format!(
                "Container {id} is paused, unpause the container before exec"
            )))
        }
        Status::Restarting => {
            return Err(StateError::Conflict(format!(
                "Container {id} is restarting, wait until the container is running"
            )))
        }
        _ => {
            return Err(StateError::Conflict(format!(
                "container {id} is not running"
            )))
        }
    }
    let init = alive(row.pid)
        .ok_or_else(|| StateError::Conflict(format!("container {id} is not running")))?;
    Ok((row, init.pid))
}

/// The process `kiln exec` starts: the container's confinement (caps,
/// seccomp, no_new_privs, rlimits), its user and working dir unless `-u`
/// and `-w` say otherwise, and its environment with `-e` after it and
/// `TERM=xterm` with `-t` (moby `daemon/exec.go` `ContainerExecCreate`:
/// the container's env, then the exec's `Env` replacing or appending).
pub fn join_spec(
    row: &ContainerRow,
    init_pid: u32,
    opts: &ExecOptions,
) -> Result<JoinSpec, StateError> {
    let config = CreateConfig::of(row)?;
    let spec = config.spec;
    let mut process = spec.process.clone();
    let env: Vec<String> = process.env.iter().chain(&opts.env).cloned().collect();
    process.env = docker_env(&env, &spec.hostname, opts.terminal);
    process.args = opts.args.clone();
    if let Some(w) = &opts.workdir {
        process.cwd = w.clone();
    }
    if let Some(u) = &opts.user {
        process.user = u.clone();
    }
    process.terminal = opts.terminal;
    process.console_size = opts.console_size;
    Ok(JoinSpec {
        id: row.id.clone(),
        init_pid: init_pid as i32,
        process,
        capabilities: spec.capabilities,
        seccomp: spec.seccomp,
    })
}

/// The host pids of a running container's processes: those in its init's
/// cgroup (docker `top` lists the pids of the container's cgroup, moby
/// `daemon/top_unix.go` `ContainerTop`, from containerd's task pids).
pub fn pids(init_pid: u32) -> Vec<u32> {
    // Every process of the container shares the init's pid namespace; its
    // cgroup file names it in each hierarchy, and on v1 each holds the same
    // processes: the first hierarchy's `cgroup.procs` would do, but the pid
    // namespace is simpler and needs no cgroup layout: a process belongs
    // when its `/proc/<pid>/ns/pid` is the init's.
    let Ok(ns) = std::fs::read_link(format!("/proc/{init_pid}/ns/pid")) else {
        return Vec::new();
    };
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pids: Vec<u32> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| std::fs::read_link(format!("/proc/{pid}/ns/pid")).is_ok_and(|n| n == ns))
        .collect();
    pids.sort_unstable();
    pids
}
