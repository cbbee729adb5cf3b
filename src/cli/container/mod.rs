//! The container commands with docker's names, flags, output and exit
//! codes: `start`, `stop`, `restart`, `kill`, `rm`, `wait`, `rename`,
//! `pause`, `unpause`, `ps`, `logs`, `exec`, `top`, `diff`, `commit`, `cp`, `port`, `container inspect|prune|...`. Each wraps a call of
//! [`crate::container::lifecycle`] or reads the store.
//!
//! Exit codes follow docker per command: 1 when a named container is
//! missing or in the wrong state (the daemon's error), 125 for usage
//! errors (see [`super::usage_exit_code`]).

mod attach;
mod commands;
mod commit;
mod cp;
mod detach_keys;
mod exec;
pub mod inspect;
pub mod log_time;
mod logs;
mod port;
mod ps;
pub mod record;
mod stats;

use super::CliError;
use clap::Subcommand;
use std::path::Path;

pub use attach::AttachArgs;
pub use commands::{
    KillArgs, PauseArgs, RenameArgs, RestartArgs, RmArgs, StartArgs, StopArgs, WaitArgs,
};
pub use commit::{commit, CommitArgs};
pub use cp::{cp, CpArgs};
pub use exec::{DiffArgs, ExecArgs, TopArgs};
pub use logs::LogsArgs;
pub use port::PortArgs;
pub use ps::PsArgs;
pub use stats::StatsArgs;

/// `kiln container ...`: the same commands under docker's management
/// command.
#[derive(Debug, Subcommand)]
pub enum ContainerCommand {
    /// List containers.
    #[command(visible_alias = "ps", visible_alias = "list")]
    Ls(PsArgs),
    /// Start stopped containers.
    Start(StartArgs),
    /// Stop running containers.
    Stop(StopArgs),
    /// Restart containers.
    Restart(RestartArgs),
    /// Send a signal to running containers.
    Kill(KillArgs),
    /// Remove containers.
    #[command(visible_alias = "remove")]
    Rm(RmArgs),
    /// Block until containers stop, then print their exit codes.
    Wait(WaitArgs),
    /// Freeze all processes of containers.
    Pause(PauseArgs),
    /// Thaw paused containers.
    Unpause(PauseArgs),
    /// Rename a container.
    Rename(RenameArgs),
    /// Fetch a container's logs.
    Logs(LogsArgs),
    /// Show containers' details as JSON.
    Inspect(inspect::ContainerInspectArgs),
    /// Remove all stopped containers.
    Prune(commands::PruneArgs),
    /// Run a command in a running container.
    Exec(ExecArgs),
    /// Show a container's processes.
    Top(TopArgs),
    /// Show a container's filesystem changes.
    Diff(DiffArgs),
    /// Create a new image from a container's changes.
    Commit(CommitArgs),
    /// Copy files between a running container and the host.
    Cp(CpArgs),
    /// List a container's published ports.
    Port(PortArgs),
    /// Show running containers' resource use.
    Stats(StatsArgs),
    /// Follow a running container's output.
    Attach(AttachArgs),
}

/// Runs `kiln container SUBCOMMAND`.
pub fn run(cmd: ContainerCommand, root: &Path) -> Result<i32, CliError> {
    match cmd {
        ContainerCommand::Ls(a) => ps::run(a, root),
        ContainerCommand::Start(a) => commands::start(a, root),
        ContainerCommand::Stop(a) => commands::stop(a, root),
        ContainerCommand::Restart(a) => commands::restart(a, root),
        ContainerCommand::Kill(a) => commands::kill(a, root),
        ContainerCommand::Rm(a) => commands::rm(a, root),
        ContainerCommand::Wait(a) => commands::wait(a, root),
        ContainerCommand::Pause(a) => commands::pause(a, root),
        ContainerCommand::Unpause(a) => commands::unpause(a, root),
        ContainerCommand::Rename(a) => commands::rename(a, root),
        ContainerCommand::Logs(a) => logs::run(a, root),
        ContainerCommand::Inspect(a) => inspect::run(a, root),
        ContainerCommand::Prune(a) => commands::prune(a, root),
        ContainerCommand::Exec(a) => exec::exec(a, root),
        ContainerCommand::Top(a) => exec::top(a, root),
        ContainerCommand::Diff(a) => exec::diff(a, root),
        ContainerCommand::Commit(a) => commit::commit(a, root),
        ContainerCommand::Cp(a) => cp::cp(a, root),
        ContainerCommand::Port(a) => port::run(a, root),
        ContainerCommand::Stats(a) => stats::run(a, root),
        ContainerCommand::Attach(a) => attach::run(a, root),
    }
}

pub use attach::run as attach;
pub use commands::{kill, pause, rename, restart, rm, start, stop, unpause, wait};
pub use exec::{detached_main as detached_exec_main, diff, exec, top, DETACHED_EXEC_ARG};
pub use logs::run as logs;
pub use port::run as port;
pub use ps::{fields as ps_fields, run as ps};
pub use stats::run as stats;

/// Prints a per-container error as docker does (`Error response from
/// daemon:` has no daemon to name here) and gives docker's status 1.
fn report(e: impl std::fmt::Display) -> i32 {
    eprintln!("Error: {e}");
    1
}
