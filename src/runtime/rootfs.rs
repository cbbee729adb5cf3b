//! Everything mounted in the container's mount namespace, and the switch
//! into it.
//!
//! [`plan`] turns a spec into an ordered list of [`Step`]s (pure, unit
//! tested); [`prepare`] executes them below the merged overlay before
//! `pivot_root`, each target resolved with [`Root`] so the image cannot
//! redirect a mount with symlinks; [`pivot`] switches root and detaches the
//! old one; [`finish`] masks and write-protects paths from inside.

use super::cgroups::{self, CgroupError, V1Mount};
use super::confined::{proc_fd_path, ConfinedError, Root};
use super::devices::{self, DeviceError};
use super::mount_target::{self, KernelFs};
use super::spec::{ContainerSpec, MountKind, NetworkFiles};
use nix::mount::{MntFlags, MsFlags};
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};

/// Why the container's mounts could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    /// A mount target could not be resolved or created.
    #[error(transparent)]
    Target(#[from] ConfinedError),
    /// A mount failed.
    #[error("failed to mount {what} on {target}")]
    Mount {
        /// What was being mounted (fs type or source path).
        what: String,
        /// Container path.
        target: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A destination resolves into procfs or sysfs (runc's message).
    #[error("{target:?} cannot be mounted because it is inside {fs}")]
    KernelFsTarget {
        /// Container path as given.
        target: String,
        /// Where it landed.
        fs: KernelFs,
    },
    /// /dev could not be populated.
    #[error(transparent)]
    Devices(#[from] DeviceError),
    /// A bind source on the host is missing or unreadable.
    #[error("bind source {path} is not accessible")]
    BindSource {
        /// Host path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The host's cgroup hierarchies could not be read.
    #[error("failed to find the host's cgroup hierarchies")]
    Cgroups(#[source] CgroupError),
    /// A symbolic link could not be made.
    #[error("failed to create symlink {link} -> {target}")]
    Symlink {
        /// Container path of the link.
        link: String,
        /// What it points to.
        target: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// pivot_root or detaching the old root failed.
    #[error("failed to {action} while switching to the container's root")]
    Pivot {
        /// The step that failed.
        action: &'static str,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// One thing to mount before `pivot_root`, targets in container paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A kernel filesystem (proc, sysfs, tmpfs, devpts, mqueue, cgroup2).
    Fs {
        /// Filesystem type.
        fstype: &'static str,
        /// Mount point.
        target: String,
        /// Mount flags.
        flags: MsFlags,
        /// Filesystem options.
        data: String,
    },
    /// The default device nodes and symlinks in `/dev`.
    Devices,
    /// A symbolic link (`/sys/fs/cgroup/cpu -> cpu,cpuacct`).
    Symlink {
        /// Container path of the link.
        link: String,
        /// What it points to (relative to the link's directory).
        target: String,
    },
    /// A recursive bind of a host file or directory.
    Bind {
        /// Host path.
        source: PathBuf,
        /// Mount point.
        target: String,
        /// Make it (recursively) read-only.
        readonly: bool,
    },
}

/// Facts about the host that change the plan.
#[derive(Debug, Clone, Default)]
pub struct Host {
    /// `/sys/fs/cgroup` is a pure cgroup v2 hierarchy.
    pub cgroup2: bool,
    /// The v1 hierarchies (v1 and hybrid hosts), mirrored in the
    /// container's `/sys/fs/cgroup`.
    pub cgroup_v1: Vec<V1Mount>,
}

impl Host {
    /// Looks at the running host (before `pivot_root`, while the host's
    /// mounts are still in view).
    pub fn detect() -> Result<Host, RootfsError> {
        let cgroup2 = rustix::fs::statfs("/sys/fs/cgroup")
            .map(|s| s.f_type == libc::CGROUP2_SUPER_MAGIC)
            .unwrap_or(false);
        let cgroup_v1 = if cgroup2 {
            Vec::new()
        } else {
            cgroups::v1_mounts().map_err(RootfsError::Cgroups)?
        };
        Ok(Host { cgroup2, cgroup_v1 })
    }
}

const NOSUID_NOEXEC_NODEV: MsFlags = MsFlags::MS_NOSUID
    .union(MsFlags::MS_NOEXEC)
    .union(MsFlags::MS_NODEV);

fn fs(fstype: &'static str, target: &str, flags: MsFlags, data: &str) -> Step {
    Step::Fs {
        fstype,
        target: target.to_string(),
        flags,
        data: data.to_string(),
    }
}

fn sys_flags(spec: &ContainerSpec) -> MsFlags {
    if spec.readonly_sysfs {
        NOSUID_NOEXEC_NODEV | MsFlags::MS_RDONLY
    } else {
        NOSUID_NOEXEC_NODEV
    }
}

/// The mounts runc makes for docker's default spec, then the network
/// files, then the user's mounts in order.
pub fn plan(spec: &ContainerSpec) -> Vec<Step> {
    let sys_flags = sys_flags(spec);
    let mut steps = vec![
        fs("proc", "/proc", NOSUID_NOEXEC_NODEV, ""),
        fs(
            "tmpfs",
            "/dev",
            MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
            "mode=755,size=65536k",
        ),
        // A private devpts instance: the container's ptys are not the host's.
        fs(
            "devpts",
            "/dev/pts",
            MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
            "newinstance,ptmxmode=0666,mode=0620,gid=5",
        ),
        fs("sysfs", "/sys", sys_flags, ""),
        fs("mqueue", "/dev/mqueue", NOSUID_NOEXEC_NODEV, ""),
        fs(
            "tmpfs",
            "/dev/shm",
            NOSUID_NOEXEC_NODEV,
            "mode=1777,size=65536k",
        ),
        Step::Devices,
    ];
    for name in super::state::network_file_names(spec.network_files) {
        steps.push(Step::Bind {
            source: spec.rootfs.state_dir.join(name),
            target: format!("/etc/{name}"),
            readonly: spec.rootfs.readonly || spec.network_files == NetworkFiles::Sandbox,
        });
    }
    for m in &spec.mounts {
        steps.push(match &m.kind {
            MountKind::Bind { source, readonly } => Step::Bind {
                source: source.clone(),
                target: m.destination.clone(),
                readonly: *readonly,
            },
            MountKind::Tmpfs { options } => {
                let (flags, data) = super::mount_options::split(options);
                fs("tmpfs", &m.destination, flags, &data)
            }
        });
    }
    steps
}

/// Executes `steps` below `root` (the merged overlay, before pivot).
pub fn prepare(steps: &[Step], root: &Root) -> Result<(), RootfsError> {
    for step in steps {
        match step {
            Step::Fs {
                fstype,
                target,
                flags,
                data,
            } => {
                refuse_kernel_fs(root, target, false, None)?;
                let fd = root.ensure(target, true)?;
                refuse_kernel_fs(root, target, false, Some(&fd))?;
                mount(
                    Some(*fstype),
                    &proc_fd_path(&fd),
                    Some(*fstype),
                    *flags,
                    data,
                )
                .map_err(|source| RootfsError::Mount {
                    what: fstype.to_string(),
                    target: target.clone(),
                    source,
                })?;
            }
            Step::Devices => devices::populate(&root.resolve("/dev")?)?,
            // Only `late_steps` make links (in the container's own view).
            Step::Symlink { link, target } => {
                return Err(RootfsError::Symlink {
                    link: link.clone(),
                    target: target.clone(),
                    source: std::io::Error::other("links are made after pivot_root"),
                })
            }
            Step::Bind {
                source,
                target,
                readonly,
            } => bind(root, source, target, *readonly)?,
        }
    }
    Ok(())
}

fn mount(
    source: Option<&str>,
    target: &str,
    fstype: Option<&str>,
    flags: MsFlags,
    data: &str,
) -> std::io::Result<()> {
    let data = (!data.is_empty()).then_some(data);
    nix::mount::mount(source, target, fstype, flags, data).map_err(Into::into)
}

/// Binds a host path (recursively) onto `target`, read-only if asked.
pub fn bind(root: &Root, source: &Path, target: &str, readonly: bool) -> Result<(), RootfsError> {
    let meta = std::fs::metadata(source).map_err(|e| RootfsError::BindSource {
        path: source.to_path_buf(),
        source: e,
    })?;
    refuse_kernel_fs(root, target, true, None)?;
    let fd = root.ensure(target, meta.is_dir())?;
    refuse_kernel_fs(root, target, true, Some(&fd))?;
    let what = source.display().to_string();
    let fail = |e: std::io::Error| RootfsError::Mount {
        what: what.clone(),
        target: target.to_string(),
        source: e,
    };
    nix::mount::mount(
        Some(source),
        proc_fd_path(&fd).as_str(),
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| fail(e.into()))?;
    if readonly {
        // The fd above is the directory below the mount; look up again to
        // get the new mount's root.
        let mounted = root.resolve(target)?;
        make_readonly(&mounted).map_err(fail)?;
    }
    Ok(())
}

/// Refuses a mount on `target` that lands in procfs or sysfs through the
/// image's symlinks ([`mount_target`], runc's `checkProcMount`): checked
/// where it would land before anything is created for it, and on the
/// resolved destination (`landed`) once it exists.
fn refuse_kernel_fs(
    root: &Root,
    target: &str,
    bind: bool,
    landed: Option<&std::os::fd::OwnedFd>,
) -> Result<(), RootfsError> {
    let fs = match landed {
        None => mount_target::landing(root, target)?,
        Some(fd) => mount_target::kernel_fs(fd).map_err(|e| ConfinedError::Path {
            action: "inspect",
            path: target.to_string(),
            source: e.into(),
        })?,
    };
    match fs {
        Some(fs) if !mount_target::allowed(target, fs, bind) => Err(RootfsError::KernelFsTarget {
            target: target.to_string(),
            fs,
        }),
        _ => Ok(()),
    }
}

/// Makes the mount at `fd` and every mount below it read-only:
/// mount_setattr(AT_RECURSIVE) on Linux ≥ 5.12, else a bind remount of the
/// top mount only.
fn make_readonly(fd: &impl AsFd) -> std::io::Result<()> {
    let attr = libc::mount_attr {
        attr_set: libc::MOUNT_ATTR_RDONLY,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: valid fd, empty path, attr struct of the size we pass.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_fd().as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH | libc::AT_RECURSIVE,
            &attr as *const libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    };
    if ret == 0 {
        return Ok(());
    }
    let err = std::io::Error::last_os_error();
    if err.raw_os_error() != Some(libc::ENOSYS) {
        return Err(err);
    }
    remount_readonly(&proc_fd_path(&fd.as_fd()))
}

/// Bind-remounts `path` read-only, keeping its nosuid/nodev/noexec flags
/// (the kernel refuses to drop locked flags, and we would not want to).
fn remount_readonly(path: &str) -> std::io::Result<()> {
    let st = nix::sys::statvfs::statvfs(path)?;
    let mut flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
    use nix::sys::statvfs::FsFlags;
    for (have, set) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
    ] {
        if st.flags().contains(have) {
            flags |= set;
        }
    }
    mount(None, path, None, flags, "")
}

/// Makes `merged` the root: `pivot_root(".", ".")` stacks the old root on
/// the new one, which is then detached lazily — no directory for the old
/// root is needed (runc's trick, works with a read-only rootfs too).
pub fn pivot(merged: &Path) -> Result<(), RootfsError> {
    let fail = |action: &'static str| {
        move |e: nix::Error| RootfsError::Pivot {
            action,
            source: e.into(),
        }
    };
    nix::unistd::chdir(merged).map_err(fail("enter the new root"))?;
    nix::unistd::pivot_root(".", ".").map_err(fail("pivot_root"))?;
    // Make the old root a slave before detaching it so the unmount cannot
    // propagate to the host even if a peer group survived (runc does the
    // same; our mounts are already private).
    nix::mount::mount(
        None::<&str>,
        ".",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(fail("make the old root a slave"))?;
    nix::mount::umount2(".", MntFlags::MNT_DETACH).map_err(fail("detach the old root"))?;
    // The cwd still pointed into the old root's tree; CVE-2024-21626 was a
    // leaked host cwd, so move it into the container now.
    nix::unistd::chdir("/").map_err(fail("enter /"))?;
    Ok(())
}

/// The mounts made after `pivot_root`, once the init has its cgroup
/// namespace (a cgroup mount shows the mounter's namespace root, so it
/// must come after the init joined its cgroup), read-only unless
/// privileged (`readonly_sysfs` off), as runc mounts docker's `cgroup`:
/// - pure v2: `cgroup2` at `/sys/fs/cgroup`, the container's own cgroup;
/// - v1 and hybrid (runc's `mountCgroupV1` with a cgroup namespace): a
///   `tmpfs` at `/sys/fs/cgroup` (made read-only by [`finish`] unless
///   privileged, where runc 1.1 leaves it writable), then
///   each host hierarchy mounted at `/sys/fs/cgroup/<host dir name>` with
///   its controllers as options, which picks the existing hierarchy, then
///   a link per controller of a co-mounted directory
///   (`cpu -> cpu,cpuacct`). The hybrid v2 hierarchy (`unified`) is not
///   mounted, as with runc.
pub fn late_steps(spec: &ContainerSpec, host: &Host) -> Vec<Step> {
    const ROOT: &str = "/sys/fs/cgroup";
    if host.cgroup2 {
        return vec![fs(
            "cgroup2",
            ROOT,
            sys_flags(spec) | MsFlags::MS_RELATIME,
            "",
        )];
    }
    if host.cgroup_v1.is_empty() {
        return Vec::new();
    }
    let mut steps = vec![fs("tmpfs", ROOT, NOSUID_NOEXEC_NODEV, "mode=755")];
    for m in &host.cgroup_v1 {
        let target = format!("{ROOT}/{}", m.dir_name);
        steps.push(fs("cgroup", &target, sys_flags(spec), &m.options));
    }
    for m in host.cgroup_v1.iter().filter(|m| m.dir_name.contains(',')) {
        for part in m.dir_name.split(',') {
            let taken = host.cgroup_v1.iter().any(|o| o.dir_name == part)
                || steps.iter().any(|s| matches!(s, Step::Symlink { link, .. } if link.rsplit('/').next() == Some(part)));
            if !taken {
                steps.push(Step::Symlink {
                    link: format!("{ROOT}/{part}"),
                    target: m.dir_name.clone(),
                });
            }
        }
    }
    steps
}

/// Runs one of the [`late_steps`] from inside the container (paths are
/// the container's own now; `/sys/fs/cgroup` is kiln's tmpfs or sysfs, so
/// nothing of the image's can redirect them).
fn late_step(step: &Step) -> Result<(), RootfsError> {
    match step {
        Step::Fs {
            fstype,
            target,
            flags,
            data,
        } => {
            let fail = |source: std::io::Error| RootfsError::Mount {
                // Name the hierarchy: "cgroup memory", "cgroup name=systemd".
                what: if *fstype == "cgroup" {
                    format!("cgroup {data}")
                } else {
                    fstype.to_string()
                },
                target: target.clone(),
                source,
            };
            let covered = std::fs::metadata(target).ok();
            if covered.is_none() {
                // A hierarchy's directory in the tmpfs just mounted.
                std::fs::create_dir(target).map_err(fail)?;
            }
            mount(Some(fstype), target, Some(fstype), *flags, data).map_err(fail)?;
            if let (&"tmpfs", Some(covered)) = (fstype, covered) {
                // runc gives a tmpfs the mode of the directory it covers
                // (sysfs's 0555 here, what docker's containers show).
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::Permissions::from_mode(covered.permissions().mode() & 0o7777);
                std::fs::set_permissions(target, mode).map_err(fail)?;
            }
            Ok(())
        }
        Step::Symlink { link, target } => std::os::unix::fs::symlink(target, link)
            .or_else(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => Ok(()),
                _ => Err(e),
            })
            .map_err(|source| RootfsError::Symlink {
                link: link.clone(),
                target: target.clone(),
                source,
            }),
        Step::Devices | Step::Bind { .. } => Ok(()),
    }
}

/// From inside the container: the [`late_steps`], then mask `masked`
/// paths, write-protect `readonly` ones, and make `/` read-only if asked.
pub fn finish(spec: &ContainerSpec, host: &Host) -> Result<(), RootfsError> {
    for step in late_steps(spec, host) {
        late_step(&step)?;
    }
    if spec.readonly_sysfs && !host.cgroup2 && !host.cgroup_v1.is_empty() {
        // Stricter than runc 1.1, which leaves the v1 tmpfs writable: no
        // container has a reason to write there, and a writable
        // /sys/fs/cgroup only invites release_agent probes.
        remount_readonly("/sys/fs/cgroup").map_err(|source| RootfsError::Mount {
            what: "read-only tmpfs".into(),
            target: "/sys/fs/cgroup".into(),
            source,
        })?;
    }
    for path in &spec.masked_paths {
        mask(path)?;
    }
    for path in &spec.readonly_paths {
        if Path::new(path).exists() {
            let fail = |source: std::io::Error| RootfsError::Mount {
                what: "read-only bind".into(),
                target: path.clone(),
                source,
            };
            mount(
                Some(path),
                path,
                None,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                "",
            )
            .map_err(fail)?;
            remount_readonly(path).map_err(fail)?;
        }
    }
    if spec.rootfs.readonly {
        mount(
            None,
            "/",
            None,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
            "",
        )
        .map_err(|source| RootfsError::Mount {
            what: "read-only root".into(),
            target: "/".into(),
            source,
        })?;
    }
    Ok(())
}

/// Hides `path`: `/dev/null` over a file, an empty read-only tmpfs over a
/// directory (runc `maskPath`). Missing paths need no mask.
fn mask(path: &str) -> Result<(), RootfsError> {
    let fail = |what: &str, source: std::io::Error| RootfsError::Mount {
        what: what.into(),
        target: path.to_string(),
        source,
    };
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(fail("mask", e)),
        Ok(meta) if meta.is_dir() => {
            mount(Some("tmpfs"), path, Some("tmpfs"), MsFlags::MS_RDONLY, "")
                .map_err(|e| fail("tmpfs mask", e))
        }
        Ok(_) => mount(Some("/dev/null"), path, None, MsFlags::MS_BIND, "")
            .map_err(|e| fail("/dev/null", e)),
    }
}

#[cfg(test)]
#[path = "rootfs_tests.rs"]
mod tests;
