//! Command-line interface: flag definitions and dispatch only.
//!
//! Every command is a thin wrapper that parses its flags and calls library
//! functions that tests can call too (the cargo/ripgrep rule). Each command
//! lives in its own file.

mod build;
mod build_steps;
mod builder;
mod container;
pub use container::{detached_exec_main, DETACHED_EXEC_ARG};
mod debug;
mod history;
mod image;
mod images;
mod import;
mod inspect;
mod load;
mod login;
mod logout;
mod network;
mod prune_filter;
mod pull;
mod push;
mod rmi;
mod root;
mod run;
mod save;
mod system;
mod system_df;
mod system_df_verbose;
mod system_prune;
mod table;
mod tag;
mod template;
mod volume;

use crate::error_chain::Chain;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

pub use root::default_root;

/// kiln: build and run container images, no daemon needed.
#[derive(Debug, Parser)]
#[command(name = "kiln", version, about, long_about = None)]
pub struct Cli {
    /// Directory holding kiln's store (images, layers, cache).
    /// Defaults to $KILN_ROOT, else /var/lib/kiln as root, else $XDG_DATA_HOME/kiln.
    #[arg(long, global = true, value_name = "DIR")]
    pub root: Option<PathBuf>,

    /// Log verbosely (same as KILN_LOG=debug).
    #[arg(long, global = true)]
    pub debug: bool,

    /// Speak plain HTTP to this registry (repeatable); loopback registries
    /// are too, unless `--tls-verify` is given. Also read from
    /// `"insecure-registries"` in <root>/config.json.
    #[arg(long = "insecure-registry", global = true, value_name = "HOST")]
    pub insecure_registry: Vec<String>,

    /// Verify registries' TLS certificates (podman's flag). `=false` keeps
    /// HTTPS but skips verification (and lets loopback and insecure
    /// registries fall back to HTTP); `--tls-verify` alone makes every
    /// registry HTTPS with verification, loopback ones included.
    #[arg(long = "tls-verify", global = true, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub tls_verify: Option<bool>,

    /// Docker-format auth file read first for credentials, and written by
    /// `kiln login` / `kiln logout` instead of docker's config.json.
    #[arg(long, global = true, value_name = "FILE")]
    pub authfile: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

/// The top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build an image from a Dockerfile.
    Build(Box<build::BuildArgs>),
    /// Manage the build cache (prune).
    #[command(subcommand)]
    Builder(builder::BuilderCommand),
    /// Developer tools: inspect what kiln makes of its input.
    #[command(subcommand)]
    Debug(debug::DebugCommand),
    /// Make an image from a rootfs tarball (like `docker import`).
    Import(import::ImportArgs),
    /// List images.
    Images(images::ImagesArgs),
    /// Give an image another name.
    Tag(tag::TagArgs),
    /// Remove images.
    Rmi(rmi::RmiArgs),
    /// Show image details as JSON.
    Inspect(inspect::InspectArgs),
    /// Show the steps that made an image.
    History(history::HistoryArgs),
    /// Save images to a tar archive (docker-archive or OCI layout).
    Save(save::SaveArgs),
    /// Load images from a tar archive or STDIN.
    Load(load::LoadArgs),
    /// Manage images (ls, rm, inspect, tag, history, import, prune).
    #[command(subcommand)]
    Image(image::ImageCommand),
    /// Log in to a registry (credentials kept where docker keeps them, or --authfile).
    Login(login::LoginArgs),
    /// Log out from a registry.
    Logout(logout::LogoutArgs),
    /// Download an image from a registry.
    Pull(pull::PullArgs),
    /// Upload an image to a registry.
    Push(push::PushArgs),
    /// Manage networks (create, ls, inspect, rm, connect, disconnect, prune).
    #[command(subcommand)]
    Network(network::NetworkCommand),
    /// Run a command in a new container (`-d`: in the background).
    Run(Box<run::RunArgs>),
    /// Create a container without starting it (`run`'s flags).
    Create(Box<run::RunArgs>),
    /// Start stopped containers.
    Start(container::StartArgs),
    /// Stop running containers (the image's StopSignal, then SIGKILL).
    Stop(container::StopArgs),
    /// Restart containers.
    Restart(container::RestartArgs),
    /// Send a signal to running containers.
    Kill(container::KillArgs),
    /// Remove containers.
    Rm(container::RmArgs),
    /// List containers.
    Ps(container::PsArgs),
    /// Fetch a container's logs.
    Logs(container::LogsArgs),
    /// Block until containers stop, then print their exit codes.
    Wait(container::WaitArgs),
    /// Rename a container.
    Rename(container::RenameArgs),
    /// Freeze all processes of containers (cgroup freezer).
    Pause(container::PauseArgs),
    /// Thaw paused containers.
    Unpause(container::PauseArgs),
    /// Run a command in a running container.
    Exec(container::ExecArgs),
    /// Show a container's processes.
    Top(container::TopArgs),
    /// Show a container's filesystem changes.
    Diff(container::DiffArgs),
    /// Create a new image from a container's changes.
    Commit(container::CommitArgs),
    /// Copy files between a running container and the host.
    Cp(container::CpArgs),
    /// List a container's published ports.
    Port(container::PortArgs),
    /// Show running containers' resource use (--no-stream).
    Stats(container::StatsArgs),
    /// Follow a running container's output (Ctrl-C detaches).
    Attach(container::AttachArgs),
    /// Manage containers (ls, start, stop, restart, kill, rm, wait,
    /// pause, unpause, rename, logs, inspect, prune).
    #[command(subcommand)]
    Container(container::ContainerCommand),
    /// Manage the store (check).
    #[command(subcommand)]
    System(system::SystemCommand),
    /// Manage volumes (create, ls, inspect, rm, prune).
    #[command(subcommand)]
    Volume(volume::VolumeCommand),
}

/// The global flags about registries, for the commands that reach one.
#[derive(Debug, Clone)]
pub struct RegistryFlags {
    /// `--insecure-registry`.
    pub insecure: Vec<String>,
    /// `--tls-verify[=BOOL]`.
    pub tls_verify: Option<bool>,
    /// `--authfile`.
    pub authfile: Option<PathBuf>,
}

impl RegistryFlags {
    /// The registry client options for a store at `root` with these flags.
    pub fn options(
        &self,
        root: &std::path::Path,
    ) -> Result<crate::image::registry::ClientOptions, CliError> {
        crate::image::registry::ClientOptions::for_root(root, self.insecure.clone())
            .map(|o| o.with_flags(self.tls_verify, self.authfile.as_deref()))
            .map_err(CliError::from_error)
    }
}

/// Runs the CLI and returns the process exit code.
pub fn main() -> i32 {
    // Die quietly on a closed pipe (`kiln images | head`) like other Unix
    // tools, instead of Rust's default of panicking in println!.
    // SAFETY: setting a signal disposition to SIG_DFL has no preconditions.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return clap_exit(e),
    };
    init_logging(cli.debug);
    let root = cli.root.clone().unwrap_or_else(default_root);
    let registry = RegistryFlags {
        insecure: cli.insecure_registry.clone(),
        tls_verify: cli.tls_verify,
        authfile: cli.authfile.clone(),
    };
    let result = match cli.command {
        Command::Build(a) => build::run(*a, &root, &registry, cli.debug),
        Command::Builder(cmd) => builder::run(cmd, &root),
        Command::Debug(cmd) => debug::run(cmd, &root),
        Command::Import(a) => import::run(a, &root),
        Command::Images(a) => images::run(a, &root),
        Command::Tag(a) => tag::run(a, &root),
        Command::Rmi(a) => rmi::run(a, &root),
        Command::Inspect(a) => inspect::run(a, &root),
        Command::History(a) => history::run(a, &root),
        Command::Save(a) => save::run(a, &root),
        Command::Load(a) => load::run(a, &root),
        Command::Image(cmd) => image::run(cmd, &root),
        Command::Login(args) => login::run(args, &root, &registry),
        Command::Logout(args) => logout::run(args, &root, &registry),
        Command::Pull(args) => pull::run(args, &root, &registry),
        Command::Push(args) => push::run(args, &root, &registry),
        Command::Network(cmd) => network::run(cmd, &root),
        Command::Run(args) => run::run(*args, &root, &registry, run::Mode::Run),
        Command::Create(args) => run::run(*args, &root, &registry, run::Mode::Create),
        Command::Start(a) => container::start(a, &root),
        Command::Stop(a) => container::stop(a, &root),
        Command::Restart(a) => container::restart(a, &root),
        Command::Kill(a) => container::kill(a, &root),
        Command::Rm(a) => container::rm(a, &root),
        Command::Ps(a) => container::ps(a, &root),
        Command::Logs(a) => container::logs(a, &root),
        Command::Wait(a) => container::wait(a, &root),
        Command::Rename(a) => container::rename(a, &root),
        Command::Pause(a) => container::pause(a, &root),
        Command::Unpause(a) => container::unpause(a, &root),
        Command::Exec(a) => container::exec(a, &root),
        Command::Top(a) => container::top(a, &root),
        Command::Diff(a) => container::diff(a, &root),
        Command::Commit(a) => container::commit(a, &root),
        Command::Cp(a) => container::cp(a, &root),
        Command::Port(a) => container::port(a, &root),
        Command::Stats(a) => container::stats(a, &root),
        Command::Attach(a) => container::attach(a, &root),
        Command::Container(cmd) => container::run(cmd, &root),
        Command::System(cmd) => system::run(cmd, &root),
        Command::Volume(cmd) => volume::run(cmd, &root),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("{}", Chain(&err));
            1
        }
    }
}

/// docker's status for a usage error of any command (an unknown flag, a
/// missing argument): 125, "the docker CLI's own error", which a
/// container's own exit status 2 cannot be mistaken for (docker/cli
/// `cmd/docker/docker.go`: `StatusError{StatusCode: 125}` for flag errors).
pub const EXIT_USAGE: i32 = 125;

/// Prints a usage error a command found itself and gives [`EXIT_USAGE`].
pub fn usage_error(message: &str) -> i32 {
    eprintln!("kiln: {message}");
    EXIT_USAGE
}

/// Prints clap's message; help and version exit 0, usage errors
/// [`EXIT_USAGE`] for every command (clap's default would be 2).
fn clap_exit(e: clap::Error) -> i32 {
    use clap::error::ErrorKind;
    let _ = e.print();
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => 0,
        _ => EXIT_USAGE,
    }
}

/// Sets up `tracing` output on stderr; `KILN_LOG` takes an env-filter spec.
fn init_logging(debug: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = match std::env::var("KILN_LOG") {
        Ok(spec) => EnvFilter::new(spec),
        Err(_) if debug => EnvFilter::new("debug"),
        Err(_) => EnvFilter::new("warn"),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .without_time()
        .try_init();
}

/// An error a command reports to the user: already worded, printed as is.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CliError(pub String);

impl CliError {
    /// Wraps a value that is not an error (a message); printed verbatim.
    pub fn from_display(err: impl std::fmt::Display) -> Self {
        CliError(err.to_string())
    }

    /// Wraps a library error with all its causes (the errno, the HTTP
    /// status), `: `-joined as [`Chain`] shows them.
    pub fn from_error(err: impl std::error::Error) -> Self {
        CliError(Chain(&err).to_string())
    }
}
