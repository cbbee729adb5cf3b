//! `RUN`: an exec op run in kiln's runtime on an overlay of the base's
//! snapshots, its upper dir becoming the step's new layer.
//!
//! The container is BuildKit's sandbox: hostname `buildkitsandbox`,
//! docker's default capabilities, seccomp profile and masked paths,
//! BuildKit's read-only `/etc/hosts` and `/etc/resolv.conf`, stdin from
//! `/dev/null`, stdout and stderr into the step's log. Overlay
//! whiteouts and opaque directories stay in the upper dir as they are;
//! they become OCI whiteouts when a tar is made.
//!
//! The upper dir then becomes what BuildKit's layer would hold: the mount
//! stubs BuildKit removes go ([`mount_stubs`]: empty `/etc/hosts`,
//! `/etc/resolv.conf` and `--mount` targets the base lacked, with their
//! new parents), those it keeps stay (`/proc`, `/dev`, `/sys` made for a
//! base without them), and entries copied up without a change are dropped
//! ([`upper_diff`]).
//!
//! A cancelled build (another step failed, the user's Ctrl-C) kills the
//! container at once through the runtime's [`KillSwitch`] fired by the
//! job's [`CancelToken`] hook; the run is then cleaned up like any other
//! (overlay gone with the container, scratch dir removed) and no layer is
//! recorded.

use crate::error_chain::Chain;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::cache_mount::{seeded_id, CacheInit, CacheMountLease};
use super::file_op::input_rootfs;
use super::parent_fs::LayerStack;
use super::secret_file::{SecretAttrs, SecretFile};
use super::ssh_agent::AgentSocket;
use super::stack_view::StackView;
use super::{mount_stubs, upper_diff, Artifact, ExecContext, Rootfs};
use crate::runtime::spec::{DOCKER_MASKED_PATHS, DOCKER_READONLY_PATHS};
use crate::runtime::{
    self, caps, rlimits, state, ContainerSpec, KillSwitch, MountKind as RtMount, MountSpec,
    NetworkFiles, ProcessSpec, RootfsSpec, RuntimeError,
};
use crate::solver::{
    CancelToken, Exec, ExecError, LogSink, LogStream, MountKind, Network, Security,
};

/// BuildKit's default hostname inside RUN.
const HOSTNAME: &str = "buildkitsandbox";

/// BuildKit's `/etc` network files for RUN (read-only hosts, resolv.conf).
const NETWORK_FILES: NetworkFiles = NetworkFiles::Sandbox;

/// Keeps what a run's mounts need alive until the run ends.
#[derive(Default)]
struct MountGuards {
    views: Vec<StackView>,
    caches: Vec<CacheMountLease>,
    secrets: Vec<SecretFile>,
    /// Dropped (listener closed, connections shut) when the step ends.
    agents: Vec<AgentSocket>,
}

/// Runs `exec` over `inputs`, returning the root filesystem with the new
/// layer (if the command wrote anything). When `cancel` fires meanwhile,
/// the container is killed and the result is [`ExecError::Cancelled`].
pub fn run(
    cx: &ExecContext,
    exec: &Exec,
    inputs: &[Artifact],
    log: &LogSink,
    cancel: &CancelToken,
) -> Result<Rootfs, ExecError> {
    if cancel.is_cancelled() {
        return Err(ExecError::Cancelled);
    }
    // A process for another platform runs under the emulator binfmt_misc
    // hands its binaries to (registered now if the system has one).
    if let Some(p) = &exec.platform {
        let emulation = runtime::binfmt::ensure(&p.to_string(), &p.architecture)
            .map_err(|e| ExecError::with_context(format!("preparing to run a {p} process"), e))?;
        tracing::debug!(platform = %p, ?emulation, "running under emulation");
    }
    let kill = KillSwitch::new().map_err(|e| ExecError::with_context("preparing the run", e))?;
    let _hook = cancel.on_cancel({
        let kill = kill.clone();
        move || kill.fire()
    });
    let store = &cx.store;
    let base = match exec.mounts.first().and_then(|m| m.input) {
        Some(i) => input_rootfs(inputs, i.index())?,
        None => Rootfs::default(),
    };
    let lowers = base.dirs(store);
    let state_dir = store
        .scratch_path("run")
        .map_err(|e| ExecError::with_context("preparing the container", e))?;
    let result = run_in(cx, exec, inputs, log, &lowers, &state_dir, &kill);
    let upper = state_dir.join("upper");
    let committed = result
        .and_then(|()| {
            upper_diff::drop_unchanged(&upper, &base_view(&lowers))
                .map_err(|e| ExecError::with_context("comparing the new layer with its base", e))
        })
        .and_then(|()| {
            base.commit(store, &upper, exec.source_date_epoch)
                .map_err(|e| ExecError::with_context("storing the new layer", e))
        });
    if let Err(e) = state::remove(&state_dir) {
        tracing::warn!("{e}", e = Chain(&e));
    }
    committed
}

fn run_in(
    cx: &ExecContext,
    exec: &Exec,
    inputs: &[Artifact],
    log: &LogSink,
    lowers: &[PathBuf],
    state_dir: &Path,
    kill: &KillSwitch,
) -> Result<(), ExecError> {
    let io = |what: &str| {
        let what = what.to_string();
        move |e: std::io::Error| ExecError::with_context(what, e)
    };
    let upper = state_dir.join("upper");
    std::fs::create_dir_all(&upper).map_err(io("creating the upper dir"))?;
    // overlayfs shows the upper dir's own root: make it the base's root.
    if let Some(top) = lowers.last() {
        let md = std::fs::metadata(top).map_err(io("reading the base root"))?;
        std::os::unix::fs::lchown(&upper, Some(md.uid()), Some(md.gid()))
            .map_err(io("preparing the upper dir"))?;
        std::fs::set_permissions(&upper, std::fs::Permissions::from_mode(md.mode() & 0o7777))
            .map_err(io("preparing the upper dir"))?;
    }
    let mut guards = MountGuards::default();
    let mut mounts = Vec::new();
    for (n, m) in exec.mounts.iter().enumerate().skip(1) {
        if let Some(spec) = mount_spec(cx, m, n, inputs, state_dir, &mut guards)? {
            mounts.push(spec);
        }
    }
    let mut env = step_env(exec);
    add_secret_env(cx, exec, &mut env)?;
    let spec = step_container(cx, exec, env, lowers, state_dir, mounts.clone())?;
    let status = run_logged(&spec, log, kill)?;
    drop(guards);
    // `/proc`, `/dev` and `/sys` are not among them: runc makes them in
    // the rootfs and BuildKit's cleaner never hears of them, so a base
    // without them gets them in its RUN layer.
    let mut points: Vec<String> = state::network_file_names(NETWORK_FILES)
        .iter()
        .map(|name| format!("/etc/{name}"))
        .collect();
    points.extend(mounts.iter().map(|m| m.destination.clone()));
    mount_stubs::remove(&upper, &base_view(lowers), &points);
    step_result(status)
}

/// The step's environment: BuildKit appends the proxy variables after the
/// step's own (moby/buildkit solver/llbsolver/ops/exec.go `Exec`) and runc
/// keeps the last of duplicate names (opencontainers/runc libcontainer
/// `prepareEnv`): a proxy build arg replaces an ENV of the same name.
fn step_env(exec: &Exec) -> Vec<String> {
    let mut env = exec.env.clone();
    env.retain(|e| {
        let key = e.split('=').next().unwrap_or_default();
        !exec
            .proxy_env
            .iter()
            .any(|p| p.split('=').next() == Some(key))
    });
    env.extend(exec.proxy_env.iter().cloned());
    env
}

/// The container a RUN step runs in: docker's confinement (masked paths,
/// default capabilities, seccomp) on an overlay of `lowers`, with the
/// step's network (the host's only when entitled, and then without
/// CAP_NET_RAW).
fn step_container(
    cx: &ExecContext,
    exec: &Exec,
    env: Vec<String>,
    lowers: &[PathBuf],
    state_dir: &Path,
    mounts: Vec<MountSpec>,
) -> Result<ContainerSpec, ExecError> {
    let network = match exec.network {
        Network::Sandbox => cx.network,
        Network::Host => runtime::Network::Host,
        Network::None => runtime::Network::None,
    };
    let own = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let insecure = exec.security == Security::Insecure;
    let rlimits = exec
        .ulimits
        .iter()
        .map(|u| rlimits::parse_ulimit(u))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ExecError::with_context("the step's --ulimit", e))?;
    Ok(ContainerSpec {
        id: state::new_container_id().map_err(|e| ExecError::with_context("container id", e))?,
        rootfs: RootfsSpec {
            lowers: lowers.to_vec(),
            state_dir: state_dir.to_path_buf(),
            readonly: false,
            // Skips overlayfs's syncfs of the whole upper filesystem at
            // unmount (the slowest part of a short RUN). The layer is then
            // as durable as any file kiln writes without fsync; a crash can
            // lose it, never make it half-visible (it is renamed in whole).
            volatile: true,
        },
        process: ProcessSpec {
            args: exec.args.clone(),
            env,
            cwd: exec.cwd.clone(),
            user: exec.user.clone().unwrap_or_default(),
            additional_gids: Vec::new(),
            terminal: false,
            console_size: None,
            rlimits,
            no_new_privs: false,
        },
        hostname: exec.hostname.clone().unwrap_or_else(|| HOSTNAME.into()),
        mounts,
        network,
        masked_paths: if insecure {
            Vec::new()
        } else {
            own(DOCKER_MASKED_PATHS)
        },
        readonly_paths: if insecure {
            Vec::new()
        } else {
            own(DOCKER_READONLY_PATHS)
        },
        readonly_sysfs: !insecure,
        network_files: NETWORK_FILES,
        network_extras: runtime::NetworkExtras {
            hosts: exec
                .extra_hosts
                .iter()
                .map(|h| format!("{}\t{}", h.ip, h.host))
                .collect(),
            nameservers: Vec::new(),
        },
        init: false,
        capabilities: step_capabilities(exec, network),
        // `--security=insecure` is BuildKit's privileged sandbox
        // (moby/buildkit `executor/oci/spec_linux.go`,
        // `generateSecurityOpts`: `oci.WithPrivileged`, seccomp unset),
        // the same confinement as `kiln run --privileged`.
        seccomp: !insecure,
        resources: runtime::cgroups::Resources {
            all_devices: insecure,
            ..Default::default()
        },
    })
}

/// A step's capabilities: docker's default set, without CAP_NET_RAW on
/// the host's network (an entitled step cannot sniff it); with
/// `--security=insecure` (entitled) every capability kiln holds, as
/// `kiln run --privileged` grants.
fn step_capabilities(exec: &Exec, network: runtime::Network) -> Vec<caps::Capability> {
    if exec.security == Security::Insecure {
        // "All" is all kiln holds: a reduced bounding set cannot grant more.
        let bounding = caps::current_bounding();
        return caps::Capability::ALL
            .iter()
            .copied()
            .filter(|c| bounding & (1u64 << c.bit()) != 0)
            .collect();
    }
    match network {
        runtime::Network::Host => caps::for_host_network(caps::docker_default_caps(), &[]),
        runtime::Network::None | runtime::Network::Slirp | runtime::Network::Join(_) => {
            caps::docker_default_caps()
        }
    }
}

/// Runs the step's container with its stdout and stderr relayed, line by
/// line, to the build's log; returns when both relays have drained.
fn run_logged(
    spec: &ContainerSpec,
    log: &LogSink,
    kill: &KillSwitch,
) -> Result<Result<runtime::ExitStatus, RuntimeError>, ExecError> {
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let status = std::thread::scope(|scope| {
        let readers = [
            scope.spawn(|| relay(out_r, LogStream::Stdout, log)),
            scope.spawn(|| relay(err_r, LogStream::Stderr, log)),
        ];
        let stdio = runtime::Stdio {
            stdin: runtime::Input::Null,
            stdout: runtime::Output::Fd(out_w),
            stderr: runtime::Output::Fd(err_w),
            forward_signals: false,
        };
        let status = runtime::run_killable(spec, stdio, kill);
        for r in readers {
            let _ = r.join();
        }
        status
    });
    Ok(status)
}

/// A step succeeds only with exit code 0; otherwise its error says how it
/// ended (exit code, signal, the OOM killer, a cancelled build, or the
/// runtime's own failure to start it).
fn step_result(status: Result<runtime::ExitStatus, RuntimeError>) -> Result<(), ExecError> {
    match status {
        Ok(s) if s.code == Some(0) => Ok(()),
        Ok(s) if s.oom_killed => Err(ExecError::msg(format!(
            "process killed by the OOM killer (exit code {})",
            s.docker_code()
        ))),
        Ok(s) => match (s.code, s.signal) {
            (Some(code), _) => Err(ExecError::ExitCode(code)),
            (None, Some(sig)) => Err(ExecError::Signal(sig)),
            _ => Err(ExecError::ExitCode(s.docker_code())),
        },
        Err(RuntimeError::Killed) => Err(ExecError::Cancelled),
        Err(RuntimeError::Start { message, .. }) => Err(ExecError::msg(message)),
        Err(e) => Err(ExecError::with_context("running the container", e)),
    }
}

/// The runtime mount for `--mount` number `n`, or `None` for an optional
/// secret or SSH agent that was not given.
fn mount_spec(
    cx: &ExecContext,
    m: &crate::solver::ExecMount,
    n: usize,
    inputs: &[Artifact],
    state_dir: &Path,
    guards: &mut MountGuards,
) -> Result<Option<MountSpec>, ExecError> {
    let store = &cx.store;
    let destination = m.dest.clone();
    let spec = match &m.kind {
        MountKind::Bind => {
            let root = bind_root(cx, m, n, inputs, state_dir, guards)?;
            let source = inside(&root, &m.selector)?;
            RtMount::Bind {
                source,
                readonly: m.readonly,
            }
        }
        MountKind::Cache {
            id,
            sharing,
            uid,
            gid,
            mode,
        } => {
            let (seed, key) = match m.input.map(|i| inputs.get(i.index())) {
                Some(Some(Artifact::Rootfs(r))) => {
                    let view = StackView::new(store, &r.dirs(store), false)
                        .map_err(|e| ExecError::with_context("mounting the cache source", e))?;
                    let p = inside(view.path(), &m.selector)?;
                    guards.views.push(view);
                    let top = r.top().map(|d| d.to_string()).unwrap_or_default();
                    (Some(p), seeded_id(id, &format!("{top}{}", m.selector)))
                }
                _ => (None, id.clone()),
            };
            let init = CacheInit {
                uid: *uid,
                gid: *gid,
                mode: *mode,
                seed: seed.as_deref(),
            };
            let lease = cx
                .cache_mounts
                .acquire(&key, *sharing, &init)
                .map_err(|e| ExecError::with_context(format!("cache mount {id}"), e))?;
            let source = lease.dir.clone();
            guards.caches.push(lease);
            RtMount::Bind {
                source,
                readonly: m.readonly,
            }
        }
        MountKind::Tmpfs { size } => RtMount::Tmpfs {
            options: tmpfs_options(m.readonly, *size),
        },
        MountKind::Secret {
            id,
            required,
            uid,
            gid,
            mode,
            ..
        } => {
            let Some(value) = secret(cx, id, *required)? else {
                return Ok(None);
            };
            // Only a variable was asked for (`env=` without `target=`).
            if destination.is_empty() {
                return Ok(None);
            }
            let attrs = SecretAttrs {
                uid: *uid,
                gid: *gid,
                mode: *mode,
            };
            let file = SecretFile::new(&state_dir.join(format!("secret-{n}")), value, attrs)
                .map_err(|e| ExecError::with_context(format!("secret {id}"), e))?;
            let source = file.path().to_path_buf();
            guards.secrets.push(file);
            RtMount::Bind {
                source,
                readonly: true,
            }
        }
        MountKind::Layer => {
            return Err(ExecError::msg(
                "writable layer mounts other than / are not supported",
            ))
        }
        MountKind::Ssh {
            id,
            required,
            uid,
            gid,
            mode,
        } => {
            // An agent not forwarded: the step runs without the socket
            // unless it is required (moby/buildkit solver/llbsolver/mounts/
            // mount.go `getSSHMountable`); `build` refuses a required one
            // before anything runs, this is the executor's own guard.
            let Some(source) = cx.ssh.get(id) else {
                if *required {
                    return Err(ExecError::msg(cx.ssh.missing_message(id)));
                }
                return Ok(None);
            };
            // BuildKit's llb default mode is 0600, owner root.
            let socket = AgentSocket::listen(
                &state_dir.join(format!("ssh-{n}")),
                source.clone(),
                uid.unwrap_or(0),
                gid.unwrap_or(0),
                mode.unwrap_or(0o600),
            )
            .map_err(|e| ExecError::with_context(format!("ssh agent socket for {id}"), e))?;
            let source = socket.path().to_path_buf();
            guards.agents.push(socket);
            // As BuildKit's `sshMountInstance`: a plain bind of the socket.
            RtMount::Bind {
                source,
                readonly: false,
            }
        }
    };
    Ok(Some(MountSpec {
        destination,
        kind: spec,
    }))
}

/// The directory a bind mount shows (before its `source=` selector): an
/// empty dir when it names no input, the build context (read-only as it
/// is, or under a throwaway overlay when `rw`), or a stage's or image's
/// layers as one view (writable when `rw`, its writes discarded).
fn bind_root(
    cx: &ExecContext,
    m: &crate::solver::ExecMount,
    n: usize,
    inputs: &[Artifact],
    state_dir: &Path,
    guards: &mut MountGuards,
) -> Result<PathBuf, ExecError> {
    let store = &cx.store;
    let root = match m.input.map(|i| inputs.get(i.index())) {
        None => {
            let empty = state_dir.join(format!("empty-{n}"));
            std::fs::create_dir_all(&empty)
                .map_err(|e| ExecError::with_context("preparing an empty mount", e))?;
            empty
        }
        Some(Some(Artifact::Context(ctx))) => {
            let dir = ctx
                .source_root(|| store.scratch_path("context").map_err(std::io::Error::other))
                .map_err(|e| ExecError::with_context("reading the build context", e))?;
            if m.readonly {
                dir
            } else {
                // The context is the user's own files (or the
                // overlay hiding ignored ones): a `rw` mount gets a
                // throwaway overlay on top, as BuildKit mounts a
                // discarded mutable ref over its context snapshot
                // (moby/buildkit frontend/dockerfile/dockerfile2llb
                // convert_runmount.go `dispatchRunMounts`: rw binds
                // get `llb.ForceNoOutput`). Each step gets its own,
                // so later steps see the context as it is on disk.
                let view =
                    StackView::new(store, std::slice::from_ref(&dir), true).map_err(|e| {
                        ExecError::with_context("mounting the build context writable", e)
                    })?;
                let p = view.path().to_path_buf();
                guards.views.push(view);
                p
            }
        }
        Some(Some(Artifact::Rootfs(r))) => {
            let view = StackView::new(store, &r.dirs(store), !m.readonly)
                .map_err(|e| ExecError::with_context("mounting the source", e))?;
            let p = view.path().to_path_buf();
            guards.views.push(view);
            p
        }
        Some(Some(Artifact::Remote(_))) => {
            return Err(ExecError::msg("a downloaded file cannot be mounted"))
        }
        Some(None) => return Err(ExecError::msg("mount input is missing")),
    };
    Ok(root)
}

/// BuildKit's options for `RUN --mount=type=tmpfs`: `nosuid` only, so
/// scripts on it run and device nodes work (unlike docker's `--tmpfs`),
/// then `ro` and `size=` in bytes when asked (moby/buildkit
/// solver/llbsolver/mounts/mount.go `tmpfsMount.Mount`).
fn tmpfs_options(readonly: bool, size: Option<u64>) -> String {
    let mut options = vec!["nosuid".to_string()];
    if readonly {
        options.push("ro".into());
    }
    // BuildKit leaves out a zero size (tmpfs's default: half of RAM).
    if let Some(size) = size.filter(|s| *s > 0) {
        options.push(format!("size={size}"));
    }
    options.join(",")
}

/// The value of secret `id`; `None` when it was not given and is not
/// `required` (the mount or variable is then left out, as in BuildKit).
fn secret<'a>(
    cx: &'a ExecContext,
    id: &str,
    required: bool,
) -> Result<Option<&'a [u8]>, ExecError> {
    match cx.secrets.get(id) {
        Some(value) => Ok(Some(value)),
        None if required => Err(ExecError::msg(format!("secret {id} not found"))),
        None => Ok(None),
    }
}

/// Sets the variables of `RUN --mount=type=secret,env=VAR` in `env`
/// (replacing a variable of the same name). The values exist only in the
/// process's environment: the op (and so the cache key, the image config
/// and its history) holds the secret's id and the variable's name.
fn add_secret_env(cx: &ExecContext, exec: &Exec, env: &mut Vec<String>) -> Result<(), ExecError> {
    for m in exec.mounts.iter().skip(1) {
        let MountKind::Secret {
            id,
            env: Some(var),
            required,
            ..
        } = &m.kind
        else {
            continue;
        };
        let Some(value) = secret(cx, id, *required)? else {
            continue;
        };
        let value = std::str::from_utf8(value)
            .ok()
            .filter(|v| !v.contains('\0'))
            .ok_or_else(|| {
                ExecError::msg(format!(
                    "secret {id} cannot be the value of {var}: it is not text without NUL bytes"
                ))
            })?;
        env.retain(|e| e.split('=').next() != Some(var.as_str()));
        env.push(format!("{var}={value}"));
    }
    Ok(())
}

/// `selector` below `root`, symlinks resolved inside `root`; it must exist.
fn inside(root: &Path, selector: &str) -> Result<PathBuf, ExecError> {
    let rel = Path::new(selector.trim_start_matches('/'));
    if rel.as_os_str().is_empty() {
        return Ok(root.to_path_buf());
    }
    let p = crate::fs::path_in_root::resolve_in_root(root, rel)
        .map_err(|e| ExecError::with_context(format!("mount source {selector}"), e))?;
    if std::fs::symlink_metadata(&p).is_err() {
        return Err(ExecError::msg(format!(
            "mount source {selector}: no such file or directory"
        )));
    }
    Ok(p)
}

fn pipe() -> Result<(OwnedFd, OwnedFd), ExecError> {
    rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(|e| ExecError::with_context("creating a log pipe", std::io::Error::from(e)))
}

/// Copies a container stream into the step's log until EOF.
fn relay(fd: OwnedFd, stream: LogStream, log: &LogSink) {
    let mut f = std::fs::File::from(fd);
    let mut buf = [0u8; 16 * 1024];
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => log.write(stream, &buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
}

/// The run's base as overlay shows it (`lowers` are bottom first).
fn base_view(lowers: &[PathBuf]) -> LayerStack {
    LayerStack::new(lowers.iter().rev().cloned().collect())
}
