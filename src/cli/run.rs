//! `kiln run`: run a command in a new container, docker-style.
//!
//! Only flag parsing and the mapping to a [`ContainerSpec`] live here; the
//! image is found, pulled and leased by [`crate::container`], which also
//! owns docker's ENTRYPOINT/CMD/Env/WorkingDir/User rules; the run itself
//! is [`kiln::runtime::run`](crate::runtime::run). Values are
//! checked the way docker checks them and errors name the flag.

use super::container::record::{self, Foreground, ImageSource, Lifecycle};
use super::CliError;
use super::RegistryFlags;
use crate::cache::Store;
use crate::container::{self, LeasedImage, PullPolicy, PullSource, RunOverrides};
use crate::error_chain::Chain;
use crate::image::oci::ContainerConfig;
use crate::image::registry::Platform;
use crate::runtime::cgroups::Resources;
use crate::runtime::{
    self, caps, rlimits, spec, state, ContainerSpec, Network, ProcessSpec, RootfsSpec,
};
use crate::transfer::progress::Progress;
use clap::{Args, ValueEnum};
#[path = "run_mounts.rs"]
mod mounts;
#[path = "run_network.rs"]
mod network;
#[path = "run_values.rs"]
mod values;
use std::path::{Path, PathBuf};
use values::{
    env_entry, invalid, parse_number, parse_size, read_env_file, reserve_name, validate_hostname,
    FlagError,
};

/// Flags of `kiln run`.
#[derive(Debug, Args)]
#[command(
    after_help = "The network is the host's unless --network or -p is given (-p alone means docker's default \
bridge network); on the host's network the container lacks CAP_NET_RAW (it could sniff local traffic) \
unless --cap-add NET_RAW."
)]
pub struct RunArgs {
    /// Remove the container's state (its writes) when it exits
    /// (`--rm=true|false` as docker's Go flags accept it).
    #[arg(
        long,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        default_value = "false",
        action = clap::ArgAction::Set,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub rm: bool,
    /// Run in the background and print the container's ID.
    #[arg(short, long)]
    pub detach: bool,
    /// Restart policy: no, on-failure[:MAX], always, unless-stopped.
    #[arg(long, default_value = "no", value_name = "POLICY")]
    pub restart: String,
    /// Keep stdin open (without it, stdin is /dev/null).
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-terminal.
    #[arg(short, long)]
    pub tty: bool,
    /// Set an environment variable (KEY=VALUE, or KEY to copy kiln's).
    #[arg(short, long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Read environment variables from a file (KEY=VALUE per line).
    #[arg(long, value_name = "FILE")]
    pub env_file: Vec<PathBuf>,
    /// Working directory inside the container (created if missing).
    #[arg(short, long, value_name = "DIR")]
    pub workdir: Option<String>,
    /// User to run as: name, uid, name:group or uid:gid.
    #[arg(short, long, value_name = "USER")]
    pub user: Option<String>,
    /// Command to run instead of the image's entrypoint.
    #[arg(long, value_name = "CMD")]
    pub entrypoint: Option<String>,
    /// Container hostname (default: the first 12 digits of its id).
    #[arg(long, value_name = "NAME")]
    pub hostname: Option<String>,
    /// Network: `bridge` (docker's default network, `kiln0`), `host` (the
    /// default without -p; without CAP_NET_RAW unless `--cap-add
    /// NET_RAW`), `none` (loopback only) or a network's name.
    #[arg(long, value_name = "NETWORK")]
    pub network: Option<String>,
    /// Publish a container's port: [IP:][HOST_PORT:]CONTAINER_PORT[/udp].
    #[arg(short, long = "publish", value_name = "[IP:]HOST:CONTAINER")]
    pub publish: Vec<String>,
    /// Add a line to /etc/hosts: NAME:IP (IP may be host-gateway).
    #[arg(long, value_name = "NAME:IP")]
    pub add_host: Vec<String>,
    /// Use this DNS server (replaces the host's nameservers).
    #[arg(long, value_name = "IP")]
    pub dns: Vec<String>,
    /// Name another container of the network in /etc/hosts: NAME[:ALIAS].
    #[arg(long, value_name = "NAME[:ALIAS]")]
    pub link: Vec<String>,
    /// Mount a volume or bind a host path: [NAME|/HOST|./HOST:]CONTAINER[:ro|rw|nocopy]
    /// (no source: a new anonymous volume).
    #[arg(short, long = "volume", value_name = "[SOURCE:]CONTAINER[:MODES]")]
    pub volume: Vec<String>,
    /// Attach a mount: type=bind|volume|tmpfs,src=,dst=,readonly,volume-nocopy,
    /// tmpfs-size=,tmpfs-mode= (docker's syntax).
    #[arg(long, value_name = "MOUNT")]
    pub mount: Vec<String>,
    /// Mount the volumes and binds of another container: NAME[:ro|rw].
    #[arg(long, value_name = "CONTAINER")]
    pub volumes_from: Vec<String>,
    /// Mount a tmpfs: PATH[:OPTIONS].
    #[arg(long, value_name = "PATH[:OPTIONS]")]
    pub tmpfs: Vec<String>,
    /// Make the root filesystem read-only.
    #[arg(long)]
    pub read_only: bool,
    /// Memory limit (bytes, or with a unit: 512m, 1g).
    #[arg(short, long, value_name = "SIZE")]
    pub memory: Option<String>,
    /// Number of CPUs (e.g. 1.5).
    #[arg(long, value_name = "N")]
    pub cpus: Option<String>,
    /// Relative CPU weight.
    #[arg(short = 'c', long, value_name = "N")]
    pub cpu_shares: Option<String>,
    /// Maximum number of processes (-1 for unlimited).
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub pids_limit: Option<String>,
    /// Add a Linux capability (or ALL).
    #[arg(long, value_name = "CAP")]
    pub cap_add: Vec<String>,
    /// Drop a Linux capability (or ALL).
    #[arg(long, value_name = "CAP")]
    pub cap_drop: Vec<String>,
    /// Set a resource limit: NAME=SOFT[:HARD] (e.g. nofile=1024:2048).
    #[arg(long, value_name = "NAME=SOFT[:HARD]")]
    pub ulimit: Vec<String>,
    /// Give all capabilities, no seccomp, no masked paths, writable /sys.
    #[arg(long)]
    pub privileged: bool,
    /// Name the container.
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Run a tiny init as PID 1 that reaps zombies and forwards signals.
    #[arg(long)]
    pub init: bool,
    /// Use DIR as the (read-only) root filesystem instead of an image;
    /// writes go to the container's own layer.
    #[arg(long, value_name = "DIR")]
    pub rootfs: Option<PathBuf>,
    /// Stack DIR as a layer, bottom first (for tests of many-layer roots).
    #[arg(long, value_name = "DIR", hide = true)]
    pub layer: Vec<PathBuf>,
    /// When to pull IMAGE from its registry: missing (not in the store),
    /// always, never.
    #[arg(long, default_value = "missing", value_parser = parse_pull)]
    pub pull: PullMode,
    /// Platform of IMAGE (os/arch[/variant]): picked from a
    /// multi-platform image when pulling, and a stored image for another
    /// platform is refused (docker's rule). Without it, the host's is
    /// pulled and any stored image runs.
    #[arg(long)]
    pub platform: Option<String>,
    /// IMAGE and COMMAND (only COMMAND with --rootfs).
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "IMAGE|COMMAND"
    )]
    pub args: Vec<String>,
}

/// `--pull` values (docker's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PullMode {
    /// Pull when the store has no such image.
    Missing,
    /// Pull before every run.
    Always,
    /// Never pull.
    Never,
}

/// `--pull` as docker/cli checks it (`cli/command/container/create.go`
/// `validatePullOpt`: `true` is refused there too), in its words.
fn parse_pull(value: &str) -> Result<PullMode, String> {
    match value {
        "missing" | "" => Ok(PullMode::Missing),
        "always" => Ok(PullMode::Always),
        "never" => Ok(PullMode::Never),
        _ => Err(format!(
            "invalid pull option: '{value}': must be one of \"always\", \"missing\" or \"never\""
        )),
    }
}

/// `kiln run` or `kiln create` (same flags; `create` starts nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Run in the foreground, or with `-d` in the background.
    Run,
    /// Only record the container.
    Create,
}

/// docker's exit status for errors of kiln itself (flags, setup).
const EXIT_KILN_ERROR: i32 = 125;

/// Runs the command; returns the container's exit status.
pub fn run(
    mut args: RunArgs,
    root: &Path,
    registry: &RegistryFlags,
    mode: Mode,
) -> Result<i32, CliError> {
    let life = match Lifecycle::from_flags(
        args.detach,
        mode == Mode::Create,
        &args.restart,
        args.rm,
        args.name.clone(),
    ) {
        Ok(life) => life,
        Err(e) => return Ok(kiln_error(FlagError::Usage(e))),
    };
    // A background container never reads kiln's stdin: `-i` keeps its
    // stdin open instead (the monitor holds a silent pipe), so `-dit`
    // needs no terminal here (docker checks one only when attaching).
    let keep_stdin_open = life.background && args.interactive;
    if life.background {
        args.interactive = false;
    }
    if args.rootfs.is_some() || !args.layer.is_empty() {
        let lowers = match rootfs_lowers(&args) {
            Ok(lowers) => lowers,
            Err(e) => return Ok(kiln_error(e)),
        };
        let command = args.args.clone();
        let source = ImageSource {
            name: lowers
                .last()
                .map(|l| l.display().to_string())
                .unwrap_or_default(),
            id: None,
            stop_signal: libc::SIGTERM,
        };
        return Ok(execute(
            args,
            root,
            lowers,
            None,
            command,
            (life, source, keep_stdin_open),
        ));
    }
    let Some((spec, command)) = args.args.split_first() else {
        return Ok(kiln_error(FlagError::Usage(
            "requires an image or --rootfs DIR".into(),
        )));
    };
    // IMAGE and COMMAND take any words, so clap cannot tell an unknown
    // flag before IMAGE from an image name; docker/cli's message.
    if spec.starts_with('-') {
        return Ok(kiln_error(FlagError::Usage(format!(
            "unknown flag: {spec}"
        ))));
    }
    let (spec, command) = (spec.clone(), command.to_vec());
    let platform = match args.platform.as_deref().map(Platform::parse) {
        None => Platform::host(),
        Some(Ok(p)) => p.normalized(),
        Some(Err(e)) => {
            return Ok(kiln_error(invalid(
                "--platform",
                &e.spec,
                "expected os/arch[/variant]",
            )))
        }
    };
    let store = match Store::open(root) {
        Ok(store) => store,
        Err(e) => return Ok(kiln_error(e)),
    };
    let options = match registry.options(root) {
        Ok(options) => options,
        Err(e) => return Ok(kiln_error(e)),
    };
    let source = PullSource {
        options: &options,
        platform: &platform,
        platform_required: args.platform.is_some(),
        progress: &Progress::for_stderr(),
    };
    let policy = match args.pull {
        PullMode::Missing => PullPolicy::Missing,
        PullMode::Always => PullPolicy::Always,
        PullMode::Never => PullPolicy::Never,
    };
    let image =
        match container::find_or_pull(&store, &spec, policy, &source, &mut std::io::stderr()) {
            Ok(image) => image,
            Err(e) => return Ok(kiln_error(e)),
        };
    if let Err(e) = container::ensure_runnable(&image) {
        return Ok(kiln_error(e));
    }
    // Held until the container is gone (this function returns after
    // `runtime::run`), also when it fails to start.
    let leased = match LeasedImage::lease(&store, image, &format!("kiln run {spec}")) {
        Ok(leased) => leased,
        Err(e) => return Ok(kiln_error(e)),
    };
    let lowers = match leased.lowers() {
        Ok(lowers) => lowers,
        Err(e) => return Ok(kiln_error(e)),
    };
    let config = leased.image.config.config.clone();
    let source = ImageSource {
        name: spec.clone(),
        id: Some(leased.image.id.to_string()),
        stop_signal: record::stop_signal(config.as_ref().and_then(|c| c.stop_signal.as_deref())),
    };
    Ok(execute(
        args,
        root,
        lowers,
        config.as_ref(),
        command,
        (life, source, keep_stdin_open),
    ))
}

/// Prints an error of kiln's own and gives docker's status for it.
fn kiln_error(e: impl std::error::Error) -> i32 {
    eprintln!("kiln: {e}", e = Chain(&e));
    EXIT_KILN_ERROR
}

/// Runs a container on `lowers` with the image defaults `image` (none for
/// `--rootfs`); returns the exit status.
fn execute(
    args: RunArgs,
    root: &Path,
    lowers: Vec<PathBuf>,
    image: Option<&ContainerConfig>,
    command: Vec<String>,
    (life, source, keep_stdin_open): (Lifecycle, ImageSource, bool),
) -> i32 {
    // A `kiln run --rm` killed earlier left its container behind.
    container::reap_dead_removals(root);
    let plan = match Plan::from_args(args, root, lowers, image, command) {
        Ok(plan) => plan,
        Err(e) => return kiln_error(e),
    };
    let life = Lifecycle {
        network_mode: plan.network_mode.clone(),
        port_bindings: plan.port_bindings.clone(),
        ..life
    };
    if life.background {
        return match record::create_in_background(
            root,
            &plan.spec,
            plan.remove,
            &life,
            &source,
            keep_stdin_open,
        ) {
            Ok(id) => {
                // Reserved above (a port in use failed before anything
                // started); from now on the container's monitor plumbs it
                // on each start and `rm` releases it.
                if let Some(endpoint) = plan.endpoint {
                    if let Err(e) = endpoint.hand_over() {
                        eprintln!("kiln: {e}", e = Chain(&e));
                    }
                }
                println!("{id}");
                0
            }
            Err(f) => {
                // A first start that failed leaves the container created,
                // and a later `start` needs its network (docker/cli
                // `cli/command/container/run.go`, `runContainer`: create,
                // then start; a start error removes nothing without --rm).
                let created = Store::open(root)
                    .is_ok_and(|store| container::state::find(&store, &plan.spec.id).is_ok());
                if let Some(endpoint) = plan.endpoint.filter(|_| created) {
                    if let Err(e) = endpoint.hand_over() {
                        eprintln!("kiln: {e}", e = Chain(&e));
                    }
                }
                eprintln!("kiln: {}", f.message);
                f.exit_code
            }
        };
    }
    let record = match Foreground::record(root, &plan.spec, plan.remove, &life, &source) {
        Ok(r) => r,
        Err(f) => {
            eprintln!("kiln: {}", f.message);
            return f.exit_code;
        }
    };
    let guard = StateGuard {
        root: root.to_path_buf(),
        dir: plan.spec.rootfs.state_dir.clone(),
        remove: plan.remove,
        name: plan.name_link.clone(),
    };
    let stdio = runtime::Stdio::inherit(plan.interactive);
    let result = match &plan.endpoint {
        Some(endpoint) => runtime::run_observed_with_network(
            &plan.spec,
            stdio,
            &mut |pid| endpoint.plumb(pid).map_err(|e| e.into()),
            &mut |pid| record.running(pid),
        ),
        None => runtime::run_observed(&plan.spec, stdio, &mut |pid| record.running(pid)),
    };
    // The container is gone: its rules, address, ports and host veth go
    // now, on a thread of their own while its state dir and row go here:
    // deleting the veth waits for the kernel (an RCU grace period of
    // `unregister_netdevice`, 10-20 ms here), as unmounting the rootfs
    // does, and neither needs the other.
    let endpoint = plan.endpoint;
    std::thread::scope(|s| {
        s.spawn(move || drop(endpoint));
        drop(guard);
        record.finish(&result);
    });
    match result {
        Ok(status) => status.docker_code(),
        Err(e) => {
            eprintln!("kiln: {e}", e = Chain(&e));
            e.exit_code()
        }
    }
}

/// Removes the state dir (with `--rm`, and its anonymous volumes) and the
/// name reservation however the run ends.
struct StateGuard {
    root: PathBuf,
    dir: PathBuf,
    remove: bool,
    name: Option<PathBuf>,
}

impl Drop for StateGuard {
    fn drop(&mut self) {
        if !self.remove {
            return;
        }
        // docker removes a `--rm` container's anonymous volumes with it.
        mounts::release(&self.root, &self.dir);
        if let Err(e) = state::remove(&self.dir) {
            eprintln!("kiln: {e}", e = Chain(&e));
        }
        if let Some(link) = &self.name {
            let _ = std::fs::remove_file(link);
        }
    }
}

/// A validated `kiln run`.
#[derive(Debug)]
struct Plan {
    spec: ContainerSpec,
    interactive: bool,
    remove: bool,
    name_link: Option<PathBuf>,
    /// Its place on a bridge network, detached on drop.
    endpoint: Option<network::Endpoint>,
    /// docker's `HostConfig.NetworkMode`.
    network_mode: String,
    /// `-p`, parsed.
    port_bindings: Vec<crate::network::PortSpec>,
}

impl Plan {
    /// Checks every flag and builds the container's spec; creates the
    /// container's state dir and reserves its `--name` (both removed again
    /// if a later step fails, or by the run's [`StateGuard`]).
    fn from_args(
        a: RunArgs,
        root: &Path,
        lowers: Vec<PathBuf>,
        image: Option<&ContainerConfig>,
        command: Vec<String>,
    ) -> Result<Plan, FlagError> {
        if a.interactive && a.tty && !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
            return Err(FlagError::Usage("the input device is not a TTY".into()));
        }
        let resources = resources(&a)?;
        let host_network =
            network::choose(a.network.as_deref(), &a.publish)? == network::Choice::Host;
        let capabilities = capabilities(&a, host_network)?;
        let rlimits = rlimits::parse_ulimits(&a.ulimit)
            .map_err(|e| FlagError::Usage(Chain(&e).to_string()))?;
        let id = state::new_container_id().map_err(|e| FlagError::Usage(Chain(&e).to_string()))?;
        let hostname = match &a.hostname {
            Some(h) => validate_hostname(h)?,
            None => state::short_id(&id).to_string(),
        };
        let process = process(&a, image, command)?;
        let planned = mounts::read(&a, image, root)?;
        // Reserved before the state dir is claimed: a port in use fails
        // the run before anything is made; dropped, it is released.
        let joined = network::join(
            &network::Flags {
                network: a.network.as_deref(),
                publish: &a.publish,
                add_host: &a.add_host,
                dns: &a.dns,
                link: &a.link,
            },
            root,
            &id,
            a.name.iter().cloned().collect(),
            &hostname,
            &crate::cache::StoreLayout::new(root).containers().join(&id),
        )?;
        let (state_dir, name_link) = claim_state(root, &id, &a)?;
        let mounts = match mounts::attach(root, &state_dir, &lowers, planned) {
            Ok(m) => m,
            Err(e) => {
                mounts::release(root, &state_dir);
                let _ = state::remove(&state_dir);
                if let Some(link) = &name_link {
                    let _ = std::fs::remove_file(link);
                }
                return Err(e);
            }
        };
        let (masked, readonly) = confined_paths(a.privileged);
        let spec = ContainerSpec {
            rootfs: RootfsSpec {
                lowers,
                state_dir,
                readonly: a.read_only,
                volatile: a.rm,
            },
            process: ProcessSpec {
                args: process.args,
                env: spec::docker_env(&process.env, &hostname, a.tty),
                cwd: process.cwd,
                user: process.user,
                additional_gids: Vec::new(),
                terminal: a.tty,
                console_size: if a.tty {
                    runtime::pty::size(&std::io::stdout())
                } else {
                    None
                },
                rlimits,
                no_new_privs: false,
            },
            hostname,
            mounts,
            network: match &joined.choice {
                network::Choice::Host => Network::Host,
                // A bridge's veth is plumbed into a fresh namespace.
                network::Choice::None | network::Choice::Bridge(_) => Network::None,
                network::Choice::Container(_) => {
                    Network::Join(joined.join_pid.expect("join found its pid"))
                }
            },
            masked_paths: masked,
            readonly_paths: readonly,
            readonly_sysfs: !a.privileged,
            network_files: crate::runtime::NetworkFiles::Docker,
            network_extras: runtime::NetworkExtras {
                hosts: joined.hosts,
                nameservers: joined.nameservers,
            },
            init: a.init,
            capabilities,
            // docker runs privileged containers unconfined.
            seccomp: !a.privileged,
            resources,
            id,
        };
        Ok(Plan {
            spec,
            interactive: a.interactive,
            remove: a.rm,
            name_link,
            network_mode: joined.choice.mode(),
            port_bindings: joined
                .endpoint
                .as_ref()
                .map(|_| {
                    a.publish
                        .iter()
                        .filter_map(|p| crate::network::PortSpec::parse(p).ok())
                        .collect()
                })
                .unwrap_or_default(),
            endpoint: joined.endpoint,
        })
    }
}

/// The cgroup limits of `--memory`, `--cpus`, `--cpu-shares` and
/// `--pids-limit`, each checked as docker checks it; `--privileged` also
/// opens every device.
fn resources(a: &RunArgs) -> Result<Resources, FlagError> {
    let resources = Resources {
        memory: a
            .memory
            .as_deref()
            .map(|v| parse_size(v, "--memory"))
            .transpose()?,
        memory_swap: None,
        cpus: a
            .cpus
            .as_deref()
            .map(|v| parse_number(v, "--cpus"))
            .transpose()?,
        cpu_shares: a
            .cpu_shares
            .as_deref()
            .map(|v| parse_number(v, "--cpu-shares"))
            .transpose()?,
        pids_limit: a
            .pids_limit
            .as_deref()
            .map(|v| parse_number(v, "--pids-limit"))
            .transpose()?,
        all_devices: a.privileged,
    };
    resources
        .validate()
        .map_err(|e| FlagError::Usage(Chain(&e).to_string()))?;
    Ok(resources)
}

/// The container's capabilities: docker's default set with `--cap-add`
/// and `--cap-drop` applied, or with `--privileged` all that kiln itself
/// holds; on the host's network CAP_NET_RAW goes unless asked for.
fn capabilities(a: &RunArgs, host_network: bool) -> Result<Vec<caps::Capability>, FlagError> {
    let mut capabilities = caps::resolve_caps(&a.cap_add, &a.cap_drop, a.privileged)
        .map_err(|e| FlagError::Usage(Chain(&e).to_string()))?;
    if a.privileged {
        // "All" means all kiln has: a kiln running with a reduced
        // bounding set cannot grant more (docker asks the same way).
        let bounding = caps::current_bounding();
        capabilities.retain(|c| bounding & (1u64 << c.bit()) != 0);
    }
    // --privileged keeps everything, as it keeps every other host knob.
    if host_network && !a.privileged {
        capabilities = caps::for_host_network(capabilities, &a.cap_add);
    }
    Ok(capabilities)
}

/// The process to run: the image's ENTRYPOINT/CMD/Env/WorkingDir/User
/// with `--entrypoint`, the command, `--env-file` and `--env` (in that
/// order, later entries winning), `--workdir` (absolute only, as docker
/// requires) and `--user` laid over them by [`container::resolve`].
fn process(
    a: &RunArgs,
    image: Option<&ContainerConfig>,
    command: Vec<String>,
) -> Result<container::ProcessConfig, FlagError> {
    if let Some(w) = a.workdir.as_deref().filter(|w| !w.starts_with('/')) {
        return Err(invalid(
            "--workdir",
            w,
            "the working directory must be an absolute path",
        ));
    }
    let mut env = Vec::new();
    for file in &a.env_file {
        env.extend(read_env_file(file)?);
    }
    for e in &a.env {
        env.extend(env_entry(e, "--env")?);
    }
    container::resolve(
        image,
        &RunOverrides {
            entrypoint: a.entrypoint.clone(),
            command,
            env,
            workdir: a.workdir.clone(),
            user: a.user.clone(),
        },
    )
    .map_err(|e| FlagError::Usage(Chain(&e).to_string()))
}

/// Creates container `id`'s state dir under `root` (with its `--rm`
/// owner) and then reserves its `--name`: in that order, so a name never
/// points at a dir a reaper cannot judge. A name already taken removes
/// the state dir again.
fn claim_state(
    root: &Path,
    id: &str,
    a: &RunArgs,
) -> Result<(PathBuf, Option<PathBuf>), FlagError> {
    let layout = crate::cache::StoreLayout::new(root);
    let state_dir = layout.containers().join(id);
    container::reap::create_state_dir(&state_dir, a.rm)
        .map_err(|e| FlagError::Usage(format!("{}: {e}", state_dir.display(), e = Chain(&e))))?;
    let name_link = match &a.name {
        Some(name) => match reserve_name(&layout.container_names(), name, id) {
            Ok(link) => Some(link),
            Err(e) => {
                let _ = state::remove(&state_dir);
                return Err(e);
            }
        },
        None => None,
    };
    Ok((state_dir, name_link))
}

/// The paths docker masks and makes read-only in a container (none with
/// `--privileged`).
fn confined_paths(privileged: bool) -> (Vec<String>, Vec<String>) {
    if privileged {
        return (Vec::new(), Vec::new());
    }
    let own = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    (
        own(spec::DOCKER_MASKED_PATHS),
        own(spec::DOCKER_READONLY_PATHS),
    )
}

/// The layers of `--rootfs`/`--layer`, which take the place of an image
/// (every positional is then the command).
fn rootfs_lowers(a: &RunArgs) -> Result<Vec<PathBuf>, FlagError> {
    let mut lowers = Vec::new();
    for (flag, dir) in a
        .rootfs
        .iter()
        .map(|d| ("--rootfs", d))
        .chain(a.layer.iter().map(|d| ("--layer", d)))
    {
        let abs = std::fs::canonicalize(dir)
            .map_err(|e| invalid(flag, &dir.display().to_string(), Chain(&e).to_string()))?;
        if !abs.is_dir() {
            return Err(invalid(flag, &dir.display().to_string(), "not a directory"));
        }
        lowers.push(abs);
    }
    Ok(lowers)
}
