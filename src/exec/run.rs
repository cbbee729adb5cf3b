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
//! Mount points the runtime had to create (for `/proc`, `/etc/hosts`, a
//! `--mount` target, ...) are removed from the upper dir afterwards, with
//! the directories created or copied up only for them, as BuildKit does:
//! they are not the command's writes.
//!
//! A cancelled build (another step failed, the user's Ctrl-C) kills the
//! container at once through the runtime's [`KillSwitch`] fired by the
//! job's [`CancelToken`] hook; the run is then cleaned up like any other
//! (overlay gone with the container, scratch dir removed) and no layer is
//! recorded.

use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::cache_mount::{CacheInit, CacheMountLease};
use super::file_op::input_rootfs;
use super::stack_view::StackView;
use super::{Artifact, ExecContext, Rootfs};
use crate::runtime::spec::{DOCKER_MASKED_PATHS, DOCKER_READONLY_PATHS};
use crate::runtime::{
    self, caps, state, ContainerSpec, KillSwitch, MountKind as RtMount, MountSpec, NetworkFiles,
    ProcessSpec, RootfsSpec, RuntimeError,
};
use crate::solver::{CancelToken, Exec, ExecError, LogSink, LogStream, MountKind, Network};

/// BuildKit's default hostname inside RUN.
const HOSTNAME: &str = "buildkitsandbox";

/// BuildKit's `/etc` network files for RUN (read-only hosts, resolv.conf).
const NETWORK_FILES: NetworkFiles = NetworkFiles::Sandbox;

/// Paths the runtime mounts over in every container, besides the `/etc`
/// network files ([`state::network_file_names`]).
const RUNTIME_MOUNTS: &[&str] = &["/proc", "/dev", "/sys"];

/// Keeps what a run's mounts need alive until the run ends.
#[derive(Default)]
struct MountGuards {
    views: Vec<StackView>,
    caches: Vec<CacheMountLease>,
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
    let committed = result.and_then(|()| {
        base.commit(store, &state_dir.join("upper"), exec.source_date_epoch)
            .map_err(|e| ExecError::with_context("storing the new layer", e))
    });
    if let Err(e) = state::remove(&state_dir) {
        tracing::warn!("{e}");
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
    let mut env = exec.env.clone();
    for proxy in &exec.proxy_env {
        let key = proxy.split('=').next().unwrap_or_default();
        if !env.iter().any(|e| e.split('=').next() == Some(key)) {
            env.push(proxy.clone());
        }
    }
    add_secret_env(cx, exec, &mut env)?;
    let network = match exec.network {
        Network::Sandbox => cx.network,
        Network::Host => runtime::Network::Host,
        Network::None => runtime::Network::None,
    };
    let own = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let spec = ContainerSpec {
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
            rlimits: Vec::new(),
            no_new_privs: false,
        },
        hostname: exec.hostname.clone().unwrap_or_else(|| HOSTNAME.into()),
        mounts: mounts.clone(),
        network,
        masked_paths: own(DOCKER_MASKED_PATHS),
        readonly_paths: own(DOCKER_READONLY_PATHS),
        readonly_sysfs: true,
        network_files: NETWORK_FILES,
        init: false,
        // A step on the host's network (entitled) cannot sniff it.
        capabilities: match network {
            runtime::Network::Host => caps::for_host_network(caps::docker_default_caps(), &[]),
            runtime::Network::None | runtime::Network::Slirp => caps::docker_default_caps(),
        },
        seccomp: true,
        resources: Default::default(),
    };
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
        let status = runtime::run_killable(&spec, stdio, kill);
        for r in readers {
            let _ = r.join();
        }
        status
    });
    drop(guards);
    let mut points: Vec<String> = own(RUNTIME_MOUNTS);
    points.extend(
        state::network_file_names(NETWORK_FILES)
            .iter()
            .map(|name| format!("/etc/{name}")),
    );
    points.extend(mounts.iter().map(|m| m.destination.clone()));
    remove_mount_stubs(&upper, lowers, &points);
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
/// secret that was not given.
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
            let root = match m.input.map(|i| inputs.get(i.index())) {
                None => {
                    let empty = state_dir.join(format!("empty-{n}"));
                    std::fs::create_dir_all(&empty)
                        .map_err(|e| ExecError::with_context("preparing an empty mount", e))?;
                    empty
                }
                Some(Some(Artifact::Context(ctx))) => ctx
                    .source_root(|| store.scratch_path("context").map_err(std::io::Error::other))
                    .map_err(|e| ExecError::with_context("reading the build context", e))?,
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
            let seed = match m.input.map(|i| inputs.get(i.index())) {
                Some(Some(Artifact::Rootfs(r))) => {
                    let view = StackView::new(store, &r.dirs(store), false)
                        .map_err(|e| ExecError::with_context("mounting the cache source", e))?;
                    let p = inside(view.path(), &m.selector)?;
                    guards.views.push(view);
                    Some(p)
                }
                _ => None,
            };
            let init = CacheInit {
                uid: *uid,
                gid: *gid,
                mode: *mode,
                seed: seed.as_deref(),
            };
            let lease = cx
                .cache_mounts
                .acquire(id, *sharing, &init)
                .map_err(|e| ExecError::with_context(format!("cache mount {id}"), e))?;
            let source = lease.dir.clone();
            guards.caches.push(lease);
            RtMount::Bind {
                source,
                readonly: m.readonly,
            }
        }
        MountKind::Tmpfs { size } => RtMount::Tmpfs {
            options: size.map(|s| format!("size={s}")).unwrap_or_default(),
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
            let dir = state_dir.join("secrets");
            std::fs::create_dir_all(&dir)
                .map_err(|e| ExecError::with_context("preparing secrets", e))?;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| ExecError::with_context("preparing secrets", e))?;
            let file = dir.join(n.to_string());
            std::fs::write(&file, value)
                .and_then(|()| {
                    std::os::unix::fs::lchown(&file, Some(uid.unwrap_or(0)), Some(gid.unwrap_or(0)))
                })
                .and_then(|()| {
                    std::fs::set_permissions(
                        &file,
                        std::fs::Permissions::from_mode(mode.unwrap_or(0o400)),
                    )
                })
                .map_err(|e| ExecError::with_context(format!("secret {id}"), e))?;
            RtMount::Bind {
                source: file,
                readonly: true,
            }
        }
        MountKind::Layer => {
            return Err(ExecError::msg(
                "writable layer mounts other than / are not supported",
            ))
        }
        MountKind::Ssh { .. } => return Err(ExecError::msg("ssh mounts are not supported yet")),
    };
    Ok(Some(MountSpec {
        destination,
        kind: spec,
    }))
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
    let p = crate::runtime::path_in_root::resolve_in_root(root, rel)
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

/// Whether `rel` exists in any of `lowers` (a path in the base image).
fn in_lowers(lowers: &[PathBuf], rel: &Path) -> Option<std::fs::Metadata> {
    lowers
        .iter()
        .rev()
        .find_map(|l| std::fs::symlink_metadata(l.join(rel)).ok())
}

/// Removes the mount points the run created in `upper` (empty files and
/// directories absent from the base), then the directories above them
/// that only exist in `upper` because of them.
pub(crate) fn remove_mount_stubs(upper: &Path, lowers: &[PathBuf], points: &[String]) {
    for point in points {
        let rel = PathBuf::from(point.trim_start_matches('/'));
        if rel.as_os_str().is_empty() {
            continue;
        }
        let mut cur = rel.clone();
        let mut first = true;
        loop {
            let host = upper.join(&cur);
            let Ok(md) = std::fs::symlink_metadata(&host) else {
                break;
            };
            let lower = in_lowers(lowers, &cur);
            let removable = if md.is_dir() {
                let empty = std::fs::read_dir(&host).is_ok_and(|mut d| d.next().is_none());
                let opaque = crate::exec::attrs::get_xattr(&host, "trusted.overlay.opaque")
                    .ok()
                    .flatten()
                    .is_some();
                // A copied-up directory is the lower one with a new mtime.
                let same_as_lower = lower.as_ref().is_none_or(|l| {
                    l.is_dir()
                        && l.mode() == md.mode()
                        && l.uid() == md.uid()
                        && l.gid() == md.gid()
                });
                empty && !opaque && same_as_lower && (!first || lower.is_none())
            } else {
                first && md.is_file() && md.len() == 0 && lower.is_none()
            };
            if !removable {
                break;
            }
            let removed = if md.is_dir() {
                std::fs::remove_dir(&host)
            } else {
                std::fs::remove_file(&host)
            };
            if removed.is_err() {
                break;
            }
            first = false;
            match cur.parent() {
                Some(p) if !p.as_os_str().is_empty() => cur = p.to_path_buf(),
                _ => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stubs_go_and_real_writes_stay() {
        let t = tempfile::tempdir().unwrap();
        let (lower, upper) = (t.path().join("lower"), t.path().join("upper"));
        std::fs::create_dir_all(lower.join("etc")).unwrap();
        std::fs::write(lower.join("etc/passwd"), "root").unwrap();
        // Stubs: /proc (new dir), /etc/hosts (new file in a copied-up dir),
        // /mnt/a/b (a mount target with its parents).
        std::fs::create_dir_all(upper.join("proc")).unwrap();
        std::fs::create_dir_all(upper.join("etc")).unwrap();
        std::fs::write(upper.join("etc/hosts"), "").unwrap();
        std::fs::create_dir_all(upper.join("mnt/a/b")).unwrap();
        // Real writes: a file next to a stub, and a new empty dir that is
        // not a mount point.
        std::fs::create_dir_all(upper.join("sys")).unwrap();
        std::fs::write(upper.join("sys/real"), "x").unwrap();
        std::fs::create_dir_all(upper.join("made")).unwrap();
        let points: Vec<String> = ["/proc", "/sys", "/etc/hosts", "/mnt/a/b", "/nothing"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        remove_mount_stubs(&upper, &[lower], &points);
        let mut left: Vec<String> = walk(&upper);
        left.sort();
        assert_eq!(left, ["made", "sys", "sys/real"]);
    }

    fn walk(dir: &Path) -> Vec<String> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let rel = p.file_name().unwrap().to_string_lossy().into_owned();
            out.push(rel.clone());
            if p.is_dir() {
                out.extend(walk(&p).into_iter().map(|c| format!("{rel}/{c}")));
            }
        }
        out
    }
}
