//! `start`, `stop`, `restart`, `kill`, `rm`, `wait`, `rename`,
//! `container prune`: flags, then one [`lifecycle`] call per container.
//! Like docker, each prints the container as the user named it when it
//! succeeds, goes on with the next one when it fails, and exits 1 if any
//! failed.

use super::report;
use crate::cache::Store;
use crate::cli::CliError;
use crate::container::lifecycle::{self, parse_signal};
use crate::error_chain::Chain;
use clap::Args;
use std::path::Path;
use std::time::Duration;

/// Flags of `kiln start`.
#[derive(Debug, Args)]
pub struct StartArgs {
    /// Attach STDOUT/STDERR: print the container's output until it ends
    /// and exit with its status.
    #[arg(short, long)]
    pub attach: bool,
    /// Attach STDIN too (implies `-a`, as docker's `start -i`).
    #[arg(short, long)]
    pub interactive: bool,
    /// Override the key sequence for detaching a container (default
    /// `ctrl-p,ctrl-q`).
    #[arg(long, value_name = "KEYS")]
    pub detach_keys: Option<String>,
    /// Containers (names, IDs or ID prefixes).
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// Flags of `kiln stop`.
#[derive(Debug, Args)]
pub struct StopArgs {
    /// Seconds to wait before killing the container (default 10).
    #[arg(short, long = "timeout", value_name = "N", allow_hyphen_values = true)]
    pub time: Option<i64>,
    /// Signal to send instead of the image's StopSignal.
    #[arg(short, long, value_name = "SIG")]
    pub signal: Option<String>,
    /// Containers.
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// Flags of `kiln restart` (those of `stop`).
pub type RestartArgs = StopArgs;

/// Flags of `kiln kill`.
#[derive(Debug, Args)]
pub struct KillArgs {
    /// Signal to send (name or number).
    #[arg(short, long, default_value = "KILL", value_name = "SIG")]
    pub signal: String,
    /// Containers.
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// Flags of `kiln rm`.
#[derive(Debug, Args)]
pub struct RmArgs {
    /// Kill and remove running containers.
    #[arg(short, long)]
    pub force: bool,
    /// Remove the container's anonymous volumes too.
    #[arg(short, long)]
    pub volumes: bool,
    /// Containers.
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// Flags of `kiln wait`.
#[derive(Debug, Args)]
pub struct WaitArgs {
    /// Containers.
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// Flags of `kiln rename`.
#[derive(Debug, Args)]
pub struct RenameArgs {
    /// The container.
    pub container: String,
    /// Its new name.
    pub new_name: String,
}

/// Flags of `kiln pause` and `kiln unpause`.
#[derive(Debug, Args)]
pub struct PauseArgs {
    /// Containers.
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// Flags of `kiln container prune`.
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Do not ask for confirmation (kiln never asks).
    #[arg(short, long)]
    pub force: bool,
    /// Provide filter values (`until=24h`, `label=KEY[=VALUE]`,
    /// `label!=KEY[=VALUE]`).
    #[arg(long, value_name = "FILTER")]
    pub filter: Vec<String>,
}

fn open(root: &Path) -> Result<Store, CliError> {
    Store::open(root).map_err(|e| CliError(format!("Error: {}", Chain(&e))))
}

/// Runs `each` for every container, printing its name on success.
fn for_each(
    containers: &[String],
    mut each: impl FnMut(&str) -> Result<(), lifecycle::LifecycleError>,
) -> i32 {
    let mut code = 0;
    for c in containers {
        match each(c) {
            Ok(()) => println!("{c}"),
            Err(e) => code = report(Chain(&e).to_string()),
        }
    }
    code
}

fn timeout(seconds: Option<i64>) -> Duration {
    // docker: a negative timeout waits forever; none is 10 s.
    match seconds {
        None => Duration::from_secs(10),
        Some(s) if s < 0 => Duration::from_secs(u32::MAX as u64),
        Some(s) => Duration::from_secs(s as u64),
    }
}

/// `kiln start [-a] [-i]`.
pub fn start(a: StartArgs, root: &Path) -> Result<i32, CliError> {
    let store = open(root)?;
    // docker/cli start.go: `-a` or `-i` attaches.
    if a.attach || a.interactive {
        let keys = match super::attach::detach_keys_flag(a.detach_keys.as_deref()) {
            Ok(keys) => keys,
            Err(code) => return Ok(code),
        };
        if a.containers.len() > 1 {
            return Ok(super::super::usage_error(
                "you cannot start and attach multiple containers at once",
            ));
        }
        let key = &a.containers[0];
        let (offset, _waiter) = match crate::container::state::find(&store, key) {
            // Registered before the start: a `--rm` container that ends at
            // once keeps its exit code for us.
            Ok(row) => (
                super::logs::log_end(root, &row.id),
                crate::container::waiters::Waiter::register(root, &row.id),
            ),
            Err(e) => return Ok(report(e)),
        };
        let row = match lifecycle::start(&store, key) {
            Ok(row) => row,
            Err(e) => return Ok(report(Chain(&e).to_string())),
        };
        let open_stdin =
            crate::container::state::CreateConfig::of(&row).is_ok_and(|c| c.open_stdin);
        let detached = if a.interactive && open_stdin {
            match super::attach::forward_stdin(root, &row.id, keys) {
                Ok(flag) => flag,
                Err(e) => return Ok(report(e)),
            }
        } else {
            Default::default()
        };
        let followed = super::logs::follow_run_until(&store, &row.id, offset, &detached)?;
        return Ok(super::attach::exit_or_detach(followed));
    }
    Ok(for_each(&a.containers, |c| {
        lifecycle::start(&store, c).map(|_| ())
    }))
}

fn signal_flag(sig: &Option<String>) -> Result<Option<i32>, CliError> {
    match sig {
        None => Ok(None),
        Some(s) => parse_signal(s)
            .map(Some)
            .ok_or_else(|| CliError(format!("invalid signal: {s}"))),
    }
}

/// `kiln stop [-t N] [-s SIG]`.
pub fn stop(a: StopArgs, root: &Path) -> Result<i32, CliError> {
    let store = open(root)?;
    let signal = signal_flag(&a.signal)?;
    let t = timeout(a.time);
    Ok(for_each(&a.containers, |c| {
        lifecycle::stop(&store, c, t, signal).map(|_| ())
    }))
}

/// `kiln restart [-t N]`: stop, then start.
pub fn restart(a: RestartArgs, root: &Path) -> Result<i32, CliError> {
    let store = open(root)?;
    let signal = signal_flag(&a.signal)?;
    let t = timeout(a.time);
    Ok(for_each(&a.containers, |c| {
        lifecycle::stop(&store, c, t, signal)?;
        lifecycle::start(&store, c).map(|_| ())
    }))
}

/// `kiln kill [-s SIG]`.
pub fn kill(a: KillArgs, root: &Path) -> Result<i32, CliError> {
    let Some(signal) = parse_signal(&a.signal) else {
        // docker/cli's wording (`signal.ParseSignal`).
        return Ok(super::super::usage_error(&format!(
            "invalid signal: {}",
            a.signal
        )));
    };
    let store = open(root)?;
    Ok(for_each(&a.containers, |c| {
        lifecycle::kill(&store, c, signal).map(|_| ())
    }))
}

/// `kiln rm [-f]`.
pub fn rm(a: RmArgs, root: &Path) -> Result<i32, CliError> {
    let store = open(root)?;
    Ok(for_each(&a.containers, |c| {
        lifecycle::remove(&store, c, a.force, a.volumes)
    }))
}

/// `kiln pause`: freezes the containers' processes (cgroup freezer).
pub fn pause(a: PauseArgs, root: &Path) -> Result<i32, CliError> {
    let store = open(root)?;
    Ok(for_each(&a.containers, |c| lifecycle::pause(&store, c)))
}

/// `kiln unpause`.
pub fn unpause(a: PauseArgs, root: &Path) -> Result<i32, CliError> {
    let store = open(root)?;
    Ok(for_each(&a.containers, |c| lifecycle::unpause(&store, c)))
}

/// `kiln wait`: prints each exit code.
pub fn wait(a: WaitArgs, root: &Path) -> Result<i32, CliError> {
    let store = open(root)?;
    let mut code = 0;
    for c in &a.containers {
        match lifecycle::wait(&store, c) {
            Ok(exit) => println!("{exit}"),
            Err(e) => code = report(Chain(&e).to_string()),
        }
    }
    Ok(code)
}

/// `kiln rename CONTAINER NEW_NAME`.
pub fn rename(a: RenameArgs, root: &Path) -> Result<i32, CliError> {
    let store = open(root)?;
    match lifecycle::rename(&store, &a.container, &a.new_name) {
        Ok(()) => Ok(0),
        Err(e) => Ok(report(Chain(&e).to_string())),
    }
}

/// `kiln container prune [--filter F]`: prints what it removed and the
/// bytes their writable layers (upper dirs) took (docker/cli
/// `container/prune.go`: "Total reclaimed space" from the daemon's
/// `SpaceReclaimed`, the removed containers' `SizeRw`).
pub fn prune(a: PruneArgs, root: &Path) -> Result<i32, CliError> {
    let filter = match crate::cli::prune_filter::PruneFilter::parse(
        &a.filter,
        crate::cli::prune_filter::unix_now(),
    ) {
        Ok(f) => f,
        Err(e) => return Ok(crate::cli::usage_error(&e)),
    };
    let store = open(root)?;
    if let Err(e) = crate::container::state::reconcile(&store) {
        return Ok(report(Chain(&e).to_string()));
    }
    // What each container wrote, measured before it goes.
    let written: std::collections::BTreeMap<String, u64> = store
        .list_containers()
        .map_err(CliError::from_error)?
        .into_iter()
        .map(|r| {
            let upper = crate::container::state::state_dir(root, &r.id).join("upper");
            (r.id, crate::cli::system_df::tree_size(&upper))
        })
        .collect();
    let pruned = lifecycle::prune_where(&store, |r| {
        crate::cli::prune_filter::container_allowed(&filter, &store, r)
    });
    match pruned {
        Ok(ids) => {
            if !ids.is_empty() {
                println!("Deleted Containers:");
                for id in &ids {
                    println!("{id}");
                }
                println!();
            }
            let reclaimed: u64 = ids.iter().filter_map(|id| written.get(id)).sum();
            println!(
                "Total reclaimed space: {}",
                crate::cli::table::human_size_4(reclaimed)
            );
            Ok(0)
        }
        Err(e) => Ok(report(Chain(&e).to_string())),
    }
}
