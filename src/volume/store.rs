//! The volumes of one store: `<root>/volumes/<name>/` holding `_data` (what
//! containers see) and `volume.json` (the rest of what `volume inspect`
//! shows), moby's `volume/local` layout.
//!
//! Every change (create, attach to a container, remove, prune) happens
//! under one `flock` on `<root>/volumes/.lock`, so `volume rm` never
//! removes a volume a starting container has just recorded as its own,
//! and two runs naming a new volume create it once. A volume is created
//! whole in a `.creating-*` dir and renamed into place, and removed by a
//! rename to `.removing-*` first, so a killed kiln never leaves a volume
//! without its metadata (leftovers are dot-entries, which no listing shows
//! and the next change sweeps).

use super::usage::{self, ContainerVolumes};
use crate::cache::StoreLayout;
use crate::error_chain::Chain;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

/// The label docker (≥ 23) puts on anonymous volumes; `volume prune`
/// without `--all` removes only volumes carrying it (moby/moby
/// `volume/service/service.go`, `AnonymousLabel`).
pub const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";

/// The only driver kiln has.
pub const LOCAL_DRIVER: &str = "local";

const DATA: &str = "_data";
const METADATA: &str = "volume.json";
const LOCK: &str = ".lock";
const CREATING: &str = ".creating-";
const REMOVING: &str = ".removing-";

/// The options moby's `local` driver accepts (moby/moby
/// `volume/local/local_unix.go`, `validOpts`).
const VALID_OPTIONS: [&str; 4] = ["type", "device", "o", "size"];

/// One volume, in the shape (and key order) of `docker volume inspect`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Volume {
    /// When it was made (RFC 3339).
    pub created_at: String,
    /// Always `local`.
    pub driver: String,
    /// `--label` pairs ([`ANONYMOUS_LABEL`] for anonymous volumes).
    pub labels: BTreeMap<String, String>,
    /// The host directory containers mount (`<root>/volumes/<name>/_data`).
    pub mountpoint: PathBuf,
    /// Its name (64 hex digits for anonymous volumes).
    pub name: String,
    /// `-o` driver options, kept as given.
    pub options: BTreeMap<String, String>,
    /// Always `local`.
    pub scope: String,
}

impl Volume {
    /// Whether docker would call it anonymous (made for a container's
    /// `VOLUME` or `-v /path`).
    pub fn is_anonymous(&self) -> bool {
        self.labels.contains_key(ANONYMOUS_LABEL)
    }
}

/// What went wrong with a volume.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    /// docker's wording (`errNoSuchVolume`).
    #[error("get {0}: no such volume")]
    NotFound(String),
    /// docker's wording (moby `volume/service`, `errVolumeInUse`).
    #[error("remove {name}: volume is in use - [{}]", containers.join(", "))]
    InUse {
        /// The volume.
        name: String,
        /// The containers (ids) mounting it.
        containers: Vec<String>,
    },
    /// A name the local driver refuses.
    #[error("{0}")]
    BadName(String),
    /// An `-o` key the local driver does not know.
    #[error("invalid option key: {0:?}")]
    BadOption(String),
    /// The file system failed.
    #[error("failed to {action} {}", path.display())]
    Io {
        /// What kiln was doing.
        action: &'static str,
        /// Where.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> VolumeError + 'a {
    move |source| VolumeError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// docker's rule for local volume names (moby/moby
/// `volume/local/local.go`, `validateName`, `volumeNameRegex`).
pub fn validate_name(name: &str) -> Result<(), VolumeError> {
    let first_ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if !first_ok || !rest_ok {
        return Err(VolumeError::BadName(format!(
            "{name:?} includes invalid characters for a local volume name, only \
             \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host \
             directory, use absolute path"
        )));
    }
    if name.len() < 2 {
        return Err(VolumeError::BadName(
            "volume name is too short, names should be at least two alphanumeric characters".into(),
        ));
    }
    Ok(())
}

/// A volume a container asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    /// Its name (callers name anonymous volumes with a fresh random id).
    pub name: String,
    /// Labels for a volume that does not exist yet.
    pub labels: BTreeMap<String, String>,
}

/// The volumes under one `--root`.
#[derive(Debug, Clone)]
pub struct VolumeStore {
    dir: PathBuf,
    containers: PathBuf,
}

/// The store-wide volume lock; released on drop.
struct Lock(#[allow(dead_code)] File);

impl VolumeStore {
    /// The volumes of the store at `root` (nothing is created yet).
    pub fn new(root: &Path) -> VolumeStore {
        let layout = StoreLayout::new(root);
        VolumeStore {
            dir: layout.volumes(),
            containers: layout.containers(),
        }
    }

    fn lock(&self) -> Result<Lock, VolumeError> {
        std::fs::create_dir_all(&self.dir).map_err(io_err("create", &self.dir))?;
        let path = self.dir.join(LOCK);
        let file = File::create(&path).map_err(io_err("open", &path))?;
        rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| io_err("lock", &path)(e.into()))?;
        self.sweep();
        Ok(Lock(file))
    }

    /// Removes what a killed kiln left half made or half removed.
    fn sweep(&self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if name.starts_with(CREATING) || name.starts_with(REMOVING) {
                if let Err(err) = crate::cache::scratch::remove_tree(&e.path()) {
                    tracing::warn!("cannot remove {}: {}", e.path().display(), Chain(&err));
                }
            }
        }
    }

    /// `<root>/volumes/<name>`.
    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Creates volume `name` (`None`: an anonymous one) or, as docker
    /// does, returns the existing one of that name unchanged.
    pub fn create(
        &self,
        name: Option<&str>,
        labels: BTreeMap<String, String>,
        options: BTreeMap<String, String>,
    ) -> Result<Volume, VolumeError> {
        if let Some(key) = options
            .keys()
            .find(|k| !VALID_OPTIONS.contains(&k.as_str()))
        {
            return Err(VolumeError::BadOption(key.clone()));
        }
        let mut labels = labels;
        let name = match name {
            Some(n) => n.to_string(),
            None => {
                labels.insert(ANONYMOUS_LABEL.to_string(), String::new());
                random_name()?
            }
        };
        validate_name(&name)?;
        let _lock = self.lock()?;
        self.create_locked(&name, labels, options)
    }

    fn create_locked(
        &self,
        name: &str,
        labels: BTreeMap<String, String>,
        options: BTreeMap<String, String>,
    ) -> Result<Volume, VolumeError> {
        match self.get(name) {
            Ok(v) => return Ok(v),
            Err(VolumeError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
        let volume = Volume {
            created_at: now_seconds(),
            driver: LOCAL_DRIVER.to_string(),
            labels,
            mountpoint: self.path(name).join(DATA),
            name: name.to_string(),
            options,
            scope: LOCAL_DRIVER.to_string(),
        };
        let building = self.dir.join(format!("{CREATING}{name}"));
        std::fs::create_dir(&building).map_err(io_err("create", &building))?;
        let data = building.join(DATA);
        // moby's local driver makes `_data` 0755, owned by root.
        std::fs::create_dir(&data).map_err(io_err("create", &data))?;
        let meta = building.join(METADATA);
        let json = serde_json::to_vec_pretty(&volume).expect("a volume serializes");
        std::fs::write(&meta, json).map_err(io_err("write", &meta))?;
        let target = self.path(name);
        std::fs::rename(&building, &target).map_err(io_err("create", &target))?;
        tracing::debug!("created volume {name}");
        Ok(volume)
    }

    /// The volume called `name`.
    pub fn get(&self, name: &str) -> Result<Volume, VolumeError> {
        if validate_name(name).is_err() {
            return Err(VolumeError::NotFound(name.to_string()));
        }
        let meta = self.path(name).join(METADATA);
        let text = match std::fs::read(&meta) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(VolumeError::NotFound(name.to_string()))
            }
            Err(e) => return Err(io_err("read", &meta)(e)),
        };
        let mut volume: Volume = serde_json::from_slice(&text)
            .map_err(|e| io_err("parse", &meta)(io::Error::new(io::ErrorKind::InvalidData, e)))?;
        // The store may have moved since it was written.
        volume.mountpoint = self.path(name).join(DATA);
        Ok(volume)
    }

    /// Every volume, by name.
    pub fn list(&self) -> Result<Vec<Volume>, VolumeError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err("read", &self.dir)(e)),
        };
        let mut names: Vec<String> = entries
            .flatten()
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .filter(|n| !n.starts_with('.'))
            .collect();
        names.sort();
        let mut out = Vec::new();
        for n in names {
            match self.get(&n) {
                Ok(v) => out.push(v),
                Err(e) => tracing::warn!("skipping volume {n}: {}", Chain(&e)),
            }
        }
        Ok(out)
    }

    /// The containers (ids) that mount volume `name`: every container
    /// state dir whose record names it, running or not (docker refuses to
    /// remove a stopped container's volume too).
    pub fn users(&self, name: &str) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(&self.containers) else {
            return Vec::new();
        };
        let mut ids: Vec<String> = entries
            .flatten()
            .filter(|e| {
                ContainerVolumes::read(&e.path())
                    .is_some_and(|r| r.volume_names().any(|n| n == name))
            })
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .filter(|n| !n.starts_with('.'))
            .collect();
        ids.sort();
        ids
    }

    /// Removes volume `name` unless a container uses it; with `force` a
    /// missing volume is no error (docker `volume rm -f`; an in-use volume
    /// stays, as in docker).
    pub fn remove(&self, name: &str, force: bool) -> Result<(), VolumeError> {
        let _lock = self.lock()?;
        self.remove_locked(name, force)
    }

    fn remove_locked(&self, name: &str, force: bool) -> Result<(), VolumeError> {
        match self.get(name) {
            Ok(_) => {}
            Err(VolumeError::NotFound(_)) if force => return Ok(()),
            Err(e) => return Err(e),
        }
        let users = self.users(name);
        if !users.is_empty() {
            return Err(VolumeError::InUse {
                name: name.to_string(),
                containers: users,
            });
        }
        let doomed = self.dir.join(format!("{REMOVING}{name}"));
        let path = self.path(name);
        std::fs::rename(&path, &doomed).map_err(io_err("remove", &path))?;
        crate::cache::scratch::remove_tree(&doomed).map_err(io_err("remove", &doomed))?;
        tracing::debug!("removed volume {name}");
        Ok(())
    }

    /// Removes the volumes no container uses: only anonymous ones unless
    /// `all` (docker ≥ 23, docker/cli `cli/command/volume/prune.go`), and
    /// only those `keep` lets through. Returns their names and the bytes
    /// their files took.
    pub fn prune(
        &self,
        all: bool,
        keep: impl Fn(&Volume) -> bool,
    ) -> Result<(Vec<String>, u64), VolumeError> {
        let _lock = self.lock()?;
        let mut removed = Vec::new();
        let mut bytes = 0;
        for v in self.list()? {
            if (!all && !v.is_anonymous()) || !keep(&v) || !self.users(&v.name).is_empty() {
                continue;
            }
            let size = tree_size(&v.mountpoint);
            self.remove_locked(&v.name, false)?;
            bytes += size;
            removed.push(v.name);
        }
        Ok((removed, bytes))
    }

    /// Creates the volumes a container wants (those missing) and records
    /// them, with its binds, in its state dir, all under the lock, so no
    /// `volume rm` slips in between. Returns each wanted volume and
    /// whether it was new.
    pub fn attach(
        &self,
        state_dir: &Path,
        wanted: &[Wanted],
        record: &ContainerVolumes,
    ) -> Result<Vec<(Volume, bool)>, VolumeError> {
        for w in wanted {
            validate_name(&w.name)?;
        }
        let _lock = self.lock()?;
        let mut out = Vec::new();
        for w in wanted {
            let existed = self.get(&w.name).is_ok();
            let v = self.create_locked(&w.name, w.labels.clone(), BTreeMap::new())?;
            if !v.options.is_empty() {
                return Err(VolumeError::BadOption(format!(
                    "{} (volume {} has driver options, which kiln cannot mount yet)",
                    v.options.keys().cloned().collect::<Vec<_>>().join(","),
                    v.name
                )));
            }
            out.push((v, !existed));
        }
        record
            .write(state_dir)
            .map_err(io_err("record the volumes of", state_dir))?;
        Ok(out)
    }

    /// Forgets what container `state_dir` mounted and, with
    /// `remove_anonymous` (`--rm`, `rm -v`), removes its anonymous volumes
    /// no other container uses (docker keeps named ones).
    pub fn detach(&self, state_dir: &Path, remove_anonymous: bool) -> Result<(), VolumeError> {
        let Some(record) = ContainerVolumes::read(state_dir) else {
            return Ok(());
        };
        let _lock = self.lock()?;
        let file = usage::record_path(state_dir);
        match std::fs::remove_file(&file) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("remove", &file)(e)),
        }
        if !remove_anonymous {
            return Ok(());
        }
        for name in record.anonymous_names() {
            match self.remove_locked(name, true) {
                Ok(()) | Err(VolumeError::InUse { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// Now in RFC 3339 without a fraction: docker's `CreatedAt` of a volume
/// (moby/moby `volume/service/convert.go`, `time.RFC3339`).
fn now_seconds() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    crate::image::timestamp::format_rfc3339(secs, 0)
}

/// A fresh anonymous volume name: 64 random hex digits, as docker's.
pub fn random_name() -> Result<String, VolumeError> {
    crate::runtime::state::new_container_id().map_err(|e| VolumeError::Io {
        action: "make a name for",
        path: PathBuf::from("an anonymous volume"),
        source: io::Error::other(Chain(&e).to_string()),
    })
}

/// The bytes of the files under `dir`, each inode counted once (docker's
/// `directory.Size`).
fn tree_size(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut seen = std::collections::HashSet::new();
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(md) = e.path().symlink_metadata() else {
                continue;
            };
            if md.is_dir() {
                stack.push(e.path());
            } else if seen.insert((md.dev(), md.ino())) {
                total += md.size();
            }
        }
    }
    total
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
