//! `kiln run`'s mounts: `--volumes-from`, `-v`, `--mount`, `--tmpfs` and
//! the image's `VOLUME`s read into [`MountRequest`]s before anything is
//! created ([`read`]), then made real once the container's state dir
//! exists ([`attach`]): binds' missing host dirs created, volumes created
//! on first use and recorded as the container's, a new (empty) volume
//! filled with the image's files, as docker does.
//!
//! Precedence is docker's (moby/moby `daemon/volumes.go`,
//! `registerMountPoints`): `--volumes-from` first, overridden by `-v` and
//! `--mount` at the same destination; two of those at one destination are
//! "Duplicate mount point"; an image `VOLUME` becomes an anonymous volume
//! unless a mount already covers its path (`createContainerOSSpecificSettings`).

use super::values::{invalid, parse_tmpfs, FlagError};
use super::RunArgs;
use crate::error_chain::Chain;
use crate::image::oci::ContainerConfig;
use crate::runtime::{MountKind, MountSpec};
use crate::volume::copy_up;
use crate::volume::store::{random_name, Wanted};
use crate::volume::usage::{AttachedVolume, ContainerVolumes, MountSource};
use crate::volume::{MountRequest, VolumeStore, ANONYMOUS_LABEL};
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

/// A mount of the run: a request to make real, or a `--tmpfs` as is.
#[derive(Debug)]
pub(super) enum Planned {
    Request(MountRequest),
    Tmpfs(MountSpec),
}

/// Reads every mount flag of `a` and the image's `VOLUME`s, in docker's
/// precedence; nothing is created.
pub(super) fn read(
    a: &RunArgs,
    image: Option<&ContainerConfig>,
    root: &Path,
) -> Result<Vec<Planned>, FlagError> {
    // Only a `.`-relative bind source needs the current directory (which
    // may be gone); docker/cli resolves it the same way.
    let relative = a
        .volume
        .iter()
        .chain(&a.mount)
        .any(|v| v.starts_with('.') || v.contains("=."));
    let cwd = if relative {
        std::env::current_dir().map_err(|e| {
            FlagError::Usage(format!(
                "cannot resolve a relative bind source: reading the current directory: {}",
                Chain(&e)
            ))
        })?
    } else {
        PathBuf::from("/")
    };
    let mut inherited = Vec::new();
    for from in &a.volumes_from {
        inherited.extend(volumes_from(root, from)?);
    }
    let mut own: Vec<Planned> = Vec::new();
    for v in &a.volume {
        let r = crate::volume::parse_volume(v, &cwd)
            .map_err(|e| invalid("--volume", v, e.to_string()))?;
        own.push(Planned::Request(r));
    }
    for m in &a.mount {
        let r = crate::volume::parse_mount(m, &cwd)
            .map_err(|e| invalid("--mount", m, e.to_string()))?;
        own.push(Planned::Request(r));
    }
    for t in &a.tmpfs {
        own.push(Planned::Tmpfs(parse_tmpfs(t)?));
    }
    let mut seen = std::collections::BTreeSet::new();
    for p in &own {
        if !seen.insert(clean(destination(p))) {
            return Err(FlagError::Usage(format!(
                "Duplicate mount point: {}",
                destination(p)
            )));
        }
    }
    let mut out: Vec<Planned> = inherited
        .into_iter()
        .filter(|r| !seen.contains(&clean(r.destination())))
        .map(Planned::Request)
        .collect();
    out.extend(own);
    let covered: std::collections::BTreeSet<PathBuf> =
        out.iter().map(|p| clean(destination(p))).collect();
    let image_volumes = image.and_then(|c| c.volumes.as_ref());
    for dest in image_volumes.into_iter().flat_map(|v| v.keys()) {
        if dest.starts_with('/') && !covered.contains(&clean(dest)) {
            out.push(Planned::Request(MountRequest::Volume {
                name: None,
                destination: dest.clone(),
                readonly: false,
                nocopy: false,
                labels: BTreeMap::new(),
            }));
        }
    }
    Ok(out)
}

fn destination(p: &Planned) -> &str {
    match p {
        Planned::Request(r) => r.destination(),
        Planned::Tmpfs(m) => &m.destination,
    }
}

fn clean(p: &str) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in Path::new(p).components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

/// `--volumes-from CONTAINER[:ro|rw]`: the volumes and binds the
/// container's record names; `ro` makes them all read-only, `rw` (the
/// default) keeps each as it was: a read-only mount never becomes
/// writable (moby/moby `daemon/volumes.go`, `registerMountPoints`, with
/// `parseVolumesFrom`'s modes and wording). A container is found by name
/// or by (a prefix of) its id among `<root>/containers/`.
fn volumes_from(root: &Path, spec: &str) -> Result<Vec<MountRequest>, FlagError> {
    let (name, mode) = match spec.rsplit_once(':') {
        Some((n, m)) => (n, Some(m)),
        None => (spec, None),
    };
    let all_readonly = match mode {
        None | Some("rw") => false,
        Some("ro") => true,
        Some(m) => {
            return Err(invalid(
                "--volumes-from",
                spec,
                format!("invalid mode for volumes-from: {m}"),
            ))
        }
    };
    let dir = find_container(root, name)
        .ok_or_else(|| invalid("--volumes-from", spec, format!("No such container: {name}")))?;
    let record = ContainerVolumes::read(&dir).unwrap_or_default();
    Ok(record
        .mounts
        .into_iter()
        .map(|m| {
            let ro = all_readonly || m.readonly;
            match m.source {
                MountSource::Volume { name, .. } => MountRequest::Volume {
                    name: Some(name),
                    destination: m.destination,
                    readonly: ro,
                    nocopy: true,
                    labels: BTreeMap::new(),
                },
                MountSource::Bind { source } => MountRequest::Bind {
                    source,
                    destination: m.destination,
                    readonly: ro,
                    create_missing: false,
                },
            }
        })
        .collect())
}

/// The state dir of the container called `name` (or with that id, or a
/// unique id prefix).
fn find_container(root: &Path, name: &str) -> Option<PathBuf> {
    let layout = crate::cache::StoreLayout::new(root);
    if let Ok(id) = std::fs::read_link(layout.container_names().join(name)) {
        let dir = layout.containers().join(id);
        return dir.is_dir().then_some(dir);
    }
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let matches: Vec<PathBuf> = std::fs::read_dir(layout.containers())
        .ok()?
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(name))
        .map(|e| e.path())
        .collect();
    match matches.as_slice() {
        [one] => Some(one.clone()),
        _ => None,
    }
}

/// Makes `planned` real for the container whose state dir is
/// `state_dir`: creates missing `-v` host dirs and volumes, records the
/// container's volumes and binds, copies the image (`lowers`) into
/// empty volumes; returns the runtime's mounts in order.
pub(super) fn attach(
    root: &Path,
    state_dir: &Path,
    lowers: &[PathBuf],
    planned: Vec<Planned>,
) -> Result<Vec<MountSpec>, FlagError> {
    let mut wanted = Vec::new();
    let mut record = ContainerVolumes::default();
    // Per mount: the volume's index in `wanted` and whether to copy.
    let mut mounts: Vec<(MountSpec, Option<(usize, bool)>)> = Vec::new();
    for p in planned {
        let r = match p {
            Planned::Tmpfs(m) => {
                mounts.push((m, None));
                continue;
            }
            Planned::Request(r) => r,
        };
        match r {
            MountRequest::Bind {
                source,
                destination,
                readonly,
                create_missing,
            } => {
                if create_missing && !source.exists() {
                    std::fs::create_dir_all(&source).map_err(|e| {
                        invalid(
                            "--volume",
                            &source.display().to_string(),
                            Chain(&e).to_string(),
                        )
                    })?;
                }
                record.mounts.push(AttachedVolume {
                    destination: destination.clone(),
                    readonly,
                    source: MountSource::Bind {
                        source: source.clone(),
                    },
                });
                mounts.push((
                    MountSpec {
                        destination,
                        kind: MountKind::Bind { source, readonly },
                    },
                    None,
                ));
            }
            MountRequest::Volume {
                name,
                destination,
                readonly,
                nocopy,
                mut labels,
            } => {
                let anonymous = name.is_none();
                let name = match name {
                    Some(n) => n,
                    None => {
                        labels.insert(ANONYMOUS_LABEL.to_string(), String::new());
                        random_name().map_err(|e| FlagError::Usage(Chain(&e).to_string()))?
                    }
                };
                record.mounts.push(AttachedVolume {
                    destination: destination.clone(),
                    readonly,
                    source: MountSource::Volume {
                        name: name.clone(),
                        anonymous,
                    },
                });
                wanted.push(Wanted { name, labels });
                mounts.push((
                    MountSpec {
                        destination,
                        // The source is filled in once the volume exists.
                        kind: MountKind::Bind {
                            source: PathBuf::new(),
                            readonly,
                        },
                    },
                    Some((wanted.len() - 1, !nocopy)),
                ));
            }
            MountRequest::Tmpfs {
                destination,
                options,
            } => mounts.push((
                MountSpec {
                    destination,
                    kind: MountKind::Tmpfs { options },
                },
                None,
            )),
        }
    }
    let store = VolumeStore::new(root);
    let volumes = store
        .attach(state_dir, &wanted, &record)
        .map_err(|e| FlagError::Usage(Chain(&e).to_string()))?;
    let mut out = Vec::new();
    for (mut m, volume) in mounts {
        if let Some((i, copy)) = volume {
            let data = volumes[i].0.mountpoint.clone();
            if copy {
                copy_image(root, lowers, &m.destination, &data)?;
            }
            if let MountKind::Bind { source, .. } = &mut m.kind {
                *source = data;
            }
        }
        out.push(m);
    }
    Ok(out)
}

/// docker's copy-up of the image's `destination` into an empty volume.
fn copy_image(
    root: &Path,
    lowers: &[PathBuf],
    destination: &str,
    data: &Path,
) -> Result<(), FlagError> {
    let layout = crate::cache::StoreLayout::new(root);
    let fail = |e: &dyn std::error::Error| {
        FlagError::Usage(format!(
            "copying the image's {destination} into its volume: {}",
            Chain(e)
        ))
    };
    std::fs::create_dir_all(layout.tmp()).map_err(|e| fail(&e))?;
    let scratch = crate::cache::scratch::Scratch::create(&layout.tmp()).map_err(|e| fail(&e))?;
    copy_up::copy_image_path(lowers, scratch.dir(), destination, data).map_err(|e| fail(&e))?;
    Ok(())
}

/// Undoes [`attach`] for a container that will not run, or removes a
/// `--rm` container's anonymous volumes once it has run.
pub(super) fn release(root: &Path, state_dir: &Path) {
    if let Err(e) = VolumeStore::new(root).detach(state_dir, true) {
        eprintln!("kiln: {}", Chain(&e));
    }
}
