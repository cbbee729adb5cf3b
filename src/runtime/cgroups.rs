//! Per-container cgroups: create `kiln/<name>` below the cgroup kiln itself
//! is in (never elsewhere: on shared hosts and in CI the surrounding tree
//! belongs to someone else), apply Docker's resource limits, move the
//! container's init in, tell whether the kernel OOM-killed something, and
//! remove the cgroup afterwards.
//!
//! Works on cgroup v1, hybrid (v1 controllers + empty v2, kiln's own
//! machines) and pure v2 (see `layout.rs`). On v1 there is one directory
//! per mounted hierarchy (named ones such as `name=systemd` too, as runc
//! does, since the container's cgroup namespace is rooted there), each
//! below kiln's own cgroup in *that* hierarchy (on kiln's machines memory is at `/process_api/<id>`, the
//! others at `/`). On v2 controllers must be enabled in every ancestor's
//! `cgroup.subtree_control`; kiln enables them in its own cgroup where the
//! kernel lets it (it refuses with EBUSY when that cgroup holds processes,
//! the "no internal processes" rule) and fails only if a limit needs a
//! controller that is not there.

pub mod devices;
mod layout;
mod limits;

use crate::error_chain::Chain;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

pub use layout::CgroupMode;
use layout::{Layout, V1Hierarchy};
pub use limits::{cpu_shares_to_weight, Controller, Resources};

/// The directory kiln creates its cgroups in, below its own cgroup.
pub const KILN_CGROUP_DIR: &str = "kiln";

/// Errors from managing cgroups; each names the file or directory involved.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// Docker's validation of the resource flags failed.
    #[error("invalid resources: {0}")]
    Invalid(String),
    /// `/proc/self/mountinfo` or `/proc/self/cgroup` could not be read.
    #[error("failed to read {path}")]
    Detect {
        /// The proc file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// No cgroup hierarchy with a place for this process is mounted.
    #[error("no cgroup hierarchy is mounted for this process (see /proc/self/cgroup)")]
    NoCgroups,
    /// A limit needs a controller this host does not offer to kiln.
    #[error("the {controller} cgroup controller is not available ({detail})")]
    NoController {
        /// The controller name.
        controller: &'static str,
        /// Where kiln looked.
        detail: String,
    },
    /// A cgroup with this name already exists.
    #[error("cgroup {0} already exists")]
    Exists(PathBuf),
    /// Creating a cgroup directory failed.
    #[error("failed to create cgroup {path}")]
    Create {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// Writing a control file failed.
    #[error("failed to write {value:?} to {path}")]
    Write {
        /// The control file.
        path: PathBuf,
        /// What was written.
        value: String,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// Reading a control file failed.
    #[error("failed to read {path}")]
    Read {
        /// The control file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// Removing a cgroup directory failed (after retries if busy).
    #[error("failed to remove cgroup {path}")]
    Remove {
        /// The directory.
        path: PathBuf,
        /// The I/O error of the last attempt.
        #[source]
        source: io::Error,
    },
}

/// One container's cgroup: a directory per hierarchy (v1) or one (v2).
/// Dropping it removes the directories best-effort; call
/// [`Cgroup::remove`] to see errors.
#[derive(Debug)]
pub struct Cgroup {
    name: String,
    mode: CgroupMode,
    /// (controllers in this directory, directory), created ones only.
    dirs: Vec<(Vec<Controller>, PathBuf)>,
    removed: bool,
}

fn read_proc(path: &str) -> Result<String, CgroupError> {
    fs::read_to_string(path).map_err(|source| CgroupError::Detect {
        path: PathBuf::from(path),
        source,
    })
}

fn detect() -> Result<Layout, CgroupError> {
    let mountinfo = read_proc("/proc/self/mountinfo")?;
    let proc_cgroup = read_proc("/proc/self/cgroup")?;
    layout::resolve(&mountinfo, &proc_cgroup).ok_or(CgroupError::NoCgroups)
}

/// The cgroup layout of this host as seen by this process.
pub fn mode() -> Result<CgroupMode, CgroupError> {
    Ok(detect()?.mode())
}

/// A v1 hierarchy as the host mounted it, which a container's
/// `/sys/fs/cgroup` mirrors on v1 and hybrid hosts (runc's
/// `mountCgroupV1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1Mount {
    /// The directory below `/sys/fs/cgroup`: the last component of the
    /// host's mount point (`memory`, `cpu,cpuacct`, `systemd`).
    pub dir_name: String,
    /// The hierarchy's controllers as `cgroup` mount options
    /// (`cpu,cpuacct`, `name=systemd`): mounting with exactly these picks
    /// the existing hierarchy, the only kind a non-initial cgroup
    /// namespace may mount.
    pub options: String,
}

/// The v1 hierarchies of this host, for [`V1Mount`]; empty on a pure v2
/// host or one without cgroups.
pub fn v1_mounts() -> Result<Vec<V1Mount>, CgroupError> {
    match detect() {
        Ok(layout) => Ok(layout.v1_mounts()),
        Err(CgroupError::NoCgroups) => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// Moves process `pid` into every cgroup process `target` is in (`kiln
/// exec` joins a running container's cgroups, as runc's `exec` joins the
/// paths in the container's state: `libcontainer/process_linux.go`,
/// `setnsProcess.start`). Each line of `/proc/<target>/cgroup` names a
/// hierarchy and a path in it; the write to one kiln made for the
/// container (its path ends with `container_id`) must succeed, the others
/// (hierarchies kiln does not manage, where the container sits where its
/// monitor does) are best effort.
pub fn join_cgroups_of(target: i32, pid: i32, container_id: &str) -> Result<(), CgroupError> {
    let text = read_file(Path::new(&format!("/proc/{target}/cgroup")))?;
    let v1 = v1_mounts()?;
    let unified = if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        PathBuf::from("/sys/fs/cgroup")
    } else {
        PathBuf::from("/sys/fs/cgroup/unified")
    };
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(hier), Some(controllers), Some(path)) =
            (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let base = if hier == "0" && controllers.is_empty() {
            unified.clone()
        } else {
            match v1.iter().find(|m| m.options == controllers) {
                Some(m) => Path::new("/sys/fs/cgroup").join(&m.dir_name),
                None => continue,
            }
        };
        let procs = base.join(path.trim_start_matches('/')).join("cgroup.procs");
        match write_file(&procs, &pid.to_string()) {
            Ok(()) => {}
            Err(e) if path.ends_with(container_id) => return Err(e),
            Err(e) => tracing::debug!("{e}", e = Chain(&e)),
        }
    }
    Ok(())
}

fn write_file(path: &Path, value: &str) -> Result<(), CgroupError> {
    fs::write(path, value).map_err(|source| CgroupError::Write {
        path: path.to_path_buf(),
        value: value.to_string(),
        source,
    })
}

fn read_file(path: &Path) -> Result<String, CgroupError> {
    fs::read_to_string(path).map_err(|source| CgroupError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// `mkdir` of the container's cgroup below `base/kiln`; an existing one is
/// an error (names must be unique; see [`find_stale`] for leftovers).
fn make_dir(base: &Path, name: &str) -> Result<PathBuf, CgroupError> {
    let parent = base.join(KILN_CGROUP_DIR);
    fs::create_dir_all(&parent).map_err(|source| CgroupError::Create {
        path: parent.clone(),
        source,
    })?;
    let dir = parent.join(name);
    match fs::create_dir(&dir) {
        Ok(()) => Ok(dir),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(CgroupError::Exists(dir)),
        Err(source) => Err(CgroupError::Create { path: dir, source }),
    }
}

/// A new v1 cpuset cgroup starts with no CPUs and no memory nodes, and
/// the kernel refuses to move a process into it (ENOSPC) until both are
/// set, unless the parent has `cgroup.clone_children`: copy them down
/// from kiln's own cgroup through `kiln/` to `dir` where empty (runc's
/// `cpusetCopyIfNeeded`).
fn inherit_cpuset(h: &V1Hierarchy, dir: &Path) -> Result<(), CgroupError> {
    let kiln_dir = h.own_dir.join(KILN_CGROUP_DIR);
    for (parent, child) in [(h.own_dir.as_path(), kiln_dir.as_path()), (&kiln_dir, dir)] {
        for file in ["cpuset.cpus", "cpuset.mems"] {
            if read_file(&child.join(file))?.trim().is_empty() {
                let value = read_file(&parent.join(file))?;
                write_file(&child.join(file), value.trim())?;
            }
        }
    }
    Ok(())
}

/// A cgroup name must be one plain path component.
fn check_name(name: &str) -> Result<(), CgroupError> {
    let plain = !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains('/')
        && !name.contains('\0');
    if plain {
        Ok(())
    } else {
        Err(CgroupError::Invalid(format!(
            "cgroup name {name:?} must be a single path component"
        )))
    }
}

impl Cgroup {
    /// Creates `kiln/<name>` below this process's cgroup in every hierarchy
    /// kiln uses and applies `res`. The process is not moved; call
    /// [`Cgroup::add_process`] with the container's init. Fails with
    /// [`CgroupError::NoCgroups`] on a host without cgroups; a caller with
    /// no limits to enforce may then run the container without one.
    pub fn create(name: &str, res: &Resources) -> Result<Cgroup, CgroupError> {
        check_name(name)?;
        res.validate()?;
        let layout = detect()?;
        // What a killed kiln left (its cleanup never ran): swept here, by
        // the next container, since nothing else owns kiln's cgroups.
        for stale in stale_in(&layout, STALE_AGE).unwrap_or_default() {
            match fs::remove_dir(&stale.path) {
                Ok(()) => tracing::debug!(path = %stale.path.display(), "removed stale cgroup"),
                Err(e) => {
                    tracing::debug!(path = %stale.path.display(), "stale cgroup stays: {e}", e = Chain(&e))
                }
            }
        }
        let mut cg = Cgroup {
            name: name.to_string(),
            mode: layout.mode(),
            dirs: Vec::new(),
            removed: false,
        };
        // On any error below, dropping `cg` removes what was created.
        match &layout {
            Layout::V1 { .. } => cg.create_v1(&layout, res)?,
            Layout::V2 { own_dir } => cg.create_v2(own_dir, res)?,
        }
        tracing::debug!(name, mode = ?cg.mode, dirs = ?cg.dirs, "created cgroup");
        Ok(cg)
    }

    /// Makes the container's directory in *every* v1 hierarchy, named ones
    /// included, as runc does: the container's cgroup namespace is rooted
    /// at its cgroup in each hierarchy, so one left in kiln's own cgroup
    /// would show kiln's tree (other containers) at `/sys/fs/cgroup/<x>`.
    fn create_v1(&mut self, layout: &Layout, res: &Resources) -> Result<(), CgroupError> {
        for controller in res.required() {
            if layout.v1_dir(controller.name()).is_none() {
                return Err(CgroupError::NoController {
                    controller: controller.name(),
                    detail: "no v1 hierarchy mounted for it".into(),
                });
            }
        }
        for h in layout.hierarchies() {
            let dir = make_dir(&h.own_dir, &self.name)?;
            let controllers = Controller::ALL
                .into_iter()
                .filter(|c| h.controllers.iter().any(|n| n == c.name()))
                .collect();
            self.dirs.push((controllers, dir.clone()));
            if h.controllers.iter().any(|c| c == "cpuset") {
                inherit_cpuset(h, &dir)?;
            }
        }
        let memsw = self
            .dir_of(Controller::Memory)
            .is_some_and(|d| d.join("memory.memsw.limit_in_bytes").exists());
        self.apply(res.v1_writes(memsw))?;
        if res.all_devices {
            return Ok(()); // the new cgroup inherits its parent's policy
        }
        self.restrict_devices_v1()
    }

    /// Applies docker's device policy through the v1 devices controller.
    /// Without that controller the container could open any device node it
    /// mknods (CAP_MKNOD is a default capability), so it is required.
    fn restrict_devices_v1(&self) -> Result<(), CgroupError> {
        let dir = self
            .dir_of(Controller::Devices)
            .ok_or_else(|| CgroupError::NoController {
                controller: "devices",
                detail: "needed to keep the container from opening host devices".into(),
            })?;
        for (file, line) in devices::v1_lines(devices::DOCKER_DEFAULT) {
            write_file(&dir.join(file), &line)?;
        }
        Ok(())
    }

    fn create_v2(&mut self, own_dir: &Path, res: &Resources) -> Result<(), CgroupError> {
        let required = res.required();
        let wanted: Vec<Controller> = Controller::ALL.to_vec();
        // Enable in kiln's own cgroup where allowed; EBUSY (it has member
        // processes) and ENOENT (controller not offered) are expected.
        enable_controllers(own_dir, &wanted);
        let kiln_dir = own_dir.join(KILN_CGROUP_DIR);
        let dir = make_dir(own_dir, &self.name)?;
        self.dirs.push((Vec::new(), dir.clone()));
        enable_controllers(&kiln_dir, &wanted);
        let available = read_file(&dir.join("cgroup.controllers"))?;
        let available: Vec<&str> = available.split_whitespace().collect();
        for controller in wanted {
            if available.contains(&controller.name()) {
                self.dirs[0].0.push(controller);
            } else if required.contains(&controller) {
                return Err(CgroupError::NoController {
                    controller: controller.name(),
                    detail: format!(
                        "not enabled in {}; kiln's own cgroup must delegate it",
                        own_dir.join("cgroup.subtree_control").display()
                    ),
                });
            }
        }
        let swap = dir.join("memory.swap.max").exists();
        self.apply(res.v2_writes(swap))?;
        if res.all_devices {
            return Ok(());
        }
        // cgroup v2 has no devices controller: the policy is a BPF program.
        devices::attach_bpf(&dir, devices::DOCKER_DEFAULT).map_err(|source| CgroupError::Write {
            path: dir.clone(),
            value: "BPF_CGROUP_DEVICE program".into(),
            source,
        })
    }

    fn apply(&self, writes: Vec<limits::LimitWrite>) -> Result<(), CgroupError> {
        for w in writes {
            let dir = self
                .dir_of(w.controller)
                .ok_or_else(|| CgroupError::NoController {
                    controller: w.controller.name(),
                    detail: format!("needed to write {}", w.file),
                })?;
            write_file(&dir.join(w.file), &w.value)?;
        }
        Ok(())
    }

    fn dir_of(&self, controller: Controller) -> Option<&Path> {
        self.dirs
            .iter()
            .find(|(c, _)| c.contains(&controller))
            .map(|(_, d)| d.as_path())
    }

    /// The name given at creation.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The layout the cgroup was created in.
    pub fn mode(&self) -> CgroupMode {
        self.mode
    }

    /// The cgroup's directories (one per v1 hierarchy, one on v2).
    pub fn paths(&self) -> Vec<&Path> {
        self.dirs.iter().map(|(_, d)| d.as_path()).collect()
    }

    /// Moves process `pid` (with all its threads) into the cgroup in every
    /// hierarchy. Children it forks afterwards stay in it.
    pub fn add_process(&self, pid: i32) -> Result<(), CgroupError> {
        for (_, dir) in &self.dirs {
            write_file(&dir.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    /// The processes in the cgroup (read from the first directory; on v1
    /// every hierarchy holds the same processes).
    pub fn procs(&self) -> Result<Vec<i32>, CgroupError> {
        let Some((_, dir)) = self.dirs.first() else {
            return Ok(Vec::new());
        };
        let text = read_file(&dir.join("cgroup.procs"))?;
        Ok(text.lines().filter_map(|l| l.trim().parse().ok()).collect())
    }

    /// Whether the kernel's OOM killer killed a process of this cgroup:
    /// the `oom_kill` counter of `memory.oom_control` (v1, Linux >= 4.13)
    /// or `memory.events` (v2). Older v1 kernels lack the counter; there
    /// `memory.failcnt > 0` (the limit was hit) stands in, which can be a
    /// false positive when reclaim succeeded.
    pub fn oom_killed(&self) -> bool {
        let Some(dir) = self.dir_of(Controller::Memory) else {
            return false;
        };
        let file = match self.mode {
            CgroupMode::Unified => "memory.events",
            _ => "memory.oom_control",
        };
        let counter = fs::read_to_string(dir.join(file)).ok().and_then(|text| {
            text.lines().find_map(|line| {
                let (key, value) = line.split_once(' ')?;
                (key == "oom_kill").then(|| value.trim().parse::<u64>().ok())?
            })
        });
        match counter {
            Some(kills) => kills > 0,
            None => fs::read_to_string(dir.join("memory.failcnt"))
                .ok()
                .and_then(|t| t.trim().parse::<u64>().ok())
                .is_some_and(|n| n > 0),
        }
    }

    /// Removes the cgroup's directories. Kills nothing: the caller must
    /// have ended its processes. A process that just exited can keep a
    /// cgroup busy for a moment (EBUSY), so each rmdir is retried for about
    /// two seconds.
    pub fn remove(mut self) -> Result<(), CgroupError> {
        self.remove_dirs()
    }

    fn remove_dirs(&mut self) -> Result<(), CgroupError> {
        self.removed = true;
        let mut first_error = None;
        for (_, dir) in self.dirs.drain(..) {
            if let Err(e) = remove_with_retries(&dir) {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        if !self.removed {
            if let Err(e) = self.remove_dirs() {
                tracing::warn!("{e}", e = Chain(&e));
            }
        }
    }
}

/// Writes `+controller` to `dir/cgroup.subtree_control` for each
/// controller `dir` offers; failures are logged, not fatal (see module docs).
fn enable_controllers(dir: &Path, controllers: &[Controller]) {
    let offered = fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
    let control = dir.join("cgroup.subtree_control");
    for c in controllers {
        if !offered.split_whitespace().any(|o| o == c.name()) {
            continue;
        }
        if let Err(e) = fs::write(&control, format!("+{}", c.name())) {
            tracing::debug!(file = %control.display(), controller = c.name(), "cannot enable: {e}", e = Chain(&e));
        }
    }
}

fn remove_with_retries(dir: &Path) -> Result<(), CgroupError> {
    let mut delay = Duration::from_millis(5);
    let mut waited = Duration::ZERO;
    loop {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && waited < Duration::from_secs(2) => {
                std::thread::sleep(delay);
                waited += delay;
                delay = (delay * 2).min(Duration::from_millis(200));
            }
            Err(source) => {
                return Err(CgroupError::Remove {
                    path: dir.to_path_buf(),
                    source,
                })
            }
        }
    }
}

/// A kiln cgroup with no processes left, e.g. from a kiln that crashed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaleCgroup {
    /// Its directory.
    pub path: PathBuf,
}

impl StaleCgroup {
    /// Removes it (retrying while busy).
    pub fn remove(&self) -> Result<(), CgroupError> {
        remove_with_retries(&self.path)
    }
}

/// Lists kiln cgroups (below this process's cgroup, in every hierarchy)
/// that hold no processes and are at least `min_age` old. Another kiln
/// that is between [`Cgroup::create`] and [`Cgroup::add_process`] also has
/// an empty cgroup; `min_age` (say a minute) keeps those out.
pub fn find_stale(min_age: Duration) -> Result<Vec<StaleCgroup>, CgroupError> {
    stale_in(&detect()?, min_age)
}

/// How old an empty kiln cgroup must be before [`Cgroup::create`] removes
/// it: far longer than any kiln takes from creating a cgroup to moving its
/// container's init into it.
const STALE_AGE: Duration = Duration::from_secs(60);

fn stale_in(layout: &Layout, min_age: Duration) -> Result<Vec<StaleCgroup>, CgroupError> {
    let bases: Vec<PathBuf> = match layout.clone() {
        Layout::V1 { hierarchies, .. } => hierarchies.into_iter().map(|h| h.own_dir).collect(),
        Layout::V2 { own_dir } => vec![own_dir],
    };
    let now = SystemTime::now();
    let mut stale = Vec::new();
    for base in bases {
        let parent = base.join(KILN_CGROUP_DIR);
        let Ok(entries) = fs::read_dir(&parent) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = entry.metadata() else { continue };
            if !meta.is_dir() {
                continue;
            }
            let age = meta
                .modified()
                .ok()
                .and_then(|m| now.duration_since(m).ok())
                .unwrap_or_default();
            // A cgroup its owner removes while we look reads as ENODEV
            // (its files are gone from the kernel) or ENOENT: not stale,
            // gone; anything else is a real failure.
            let procs_file = path.join("cgroup.procs");
            let procs = match fs::read_to_string(&procs_file) {
                Ok(p) => p,
                Err(e) if matches!(e.raw_os_error(), Some(libc::ENODEV | libc::ENOENT)) => continue,
                Err(source) => {
                    return Err(CgroupError::Read {
                        path: procs_file,
                        source,
                    })
                }
            };
            let empty = procs.trim().is_empty();
            if empty && age >= min_age {
                stale.push(StaleCgroup { path });
            }
        }
    }
    Ok(stale)
}

#[cfg(test)]
mod tests;
