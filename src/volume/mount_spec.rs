//! docker's two mount syntaxes, read into one [`MountRequest`]:
//! `-v [SOURCE:]DEST[:MODES]` (moby/moby `volume/mounts/linux_parser.go`,
//! `ParseMountRaw`, with docker/cli's resolution of a relative bind source
//! against the current directory, `cli/command/container/opts.go`
//! `parse`, docker ≥ 23) and `--mount type=...,src=...,dst=...` (docker/cli
//! `opts/mount.go`, `MountOpt.Set`, checked as moby's
//! `linux_parser.go` `validateMountConfig` does). Error texts are docker's.
//!
//! Pure: nothing is created or looked up except a `--mount` bind's source
//! (docker refuses a missing one) and the current directory.

use crate::units;
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

/// One mount a container asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountRequest {
    /// A host path.
    Bind {
        /// Absolute host path.
        source: PathBuf,
        /// Absolute path in the container.
        destination: String,
        /// Mounted read-only.
        readonly: bool,
        /// Create `source` when missing (`-v` does, `--mount` refuses).
        create_missing: bool,
    },
    /// A volume of the store.
    Volume {
        /// Its name; `None` for a new anonymous volume.
        name: Option<String>,
        /// Absolute path in the container.
        destination: String,
        /// Mounted read-only.
        readonly: bool,
        /// Do not copy the image's files into a new volume (`nocopy`).
        nocopy: bool,
        /// `volume-label=` pairs for a volume created now.
        labels: BTreeMap<String, String>,
    },
    /// A fresh tmpfs.
    Tmpfs {
        /// Absolute path in the container.
        destination: String,
        /// mount(8) options from `tmpfs-size`, `tmpfs-mode`, `readonly`.
        options: String,
    },
}

impl MountRequest {
    /// Where it is mounted in the container.
    pub fn destination(&self) -> &str {
        match self {
            MountRequest::Bind { destination, .. }
            | MountRequest::Volume { destination, .. }
            | MountRequest::Tmpfs { destination, .. } => destination,
        }
    }
}

/// A mount spec docker would refuse (its messages).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// Wrong number of `:` parts (`errInvalidSpec`).
    #[error("invalid volume specification: '{0}'")]
    InvalidSpec(String),
    /// Unknown or repeated modes (`errInvalidMode`).
    #[error("invalid mode: {0}")]
    InvalidMode(String),
    /// A mount config moby's `validateMountConfig` refuses.
    #[error("invalid mount config for type \"{kind}\": {reason}")]
    Config {
        /// bind, volume, tmpfs or what was given.
        kind: String,
        /// What is wrong.
        reason: String,
    },
    /// Mounting over the root (`ParseMountRaw`).
    #[error("invalid specification: destination can't be '/'")]
    RootDestination,
    /// A volume name the local driver refuses.
    #[error("{0}")]
    BadName(String),
    /// docker/cli's `--mount` syntax errors, worded as docker/cli words them.
    #[error("{0}")]
    Syntax(String),
    /// Something docker accepts and kiln cannot do.
    #[error("{0} is not supported by kiln")]
    Unsupported(String),
}

fn config(kind: &str, reason: impl Into<String>) -> SpecError {
    SpecError::Config {
        kind: kind.to_string(),
        reason: reason.into(),
    }
}

fn check_destination(kind: &str, dest: &str) -> Result<(), SpecError> {
    if !dest.starts_with('/') {
        return Err(config(
            kind,
            format!("invalid mount path: '{dest}' mount path must be absolute"),
        ));
    }
    if clean(Path::new(dest)) == Path::new("/") {
        return Err(SpecError::RootDestination);
    }
    Ok(())
}

/// `filepath.Clean` of an absolute path, lexically.
fn clean(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in path.components() {
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

/// A bind source as docker/cli takes it: relative ones (starting with
/// `.`, docker/cli's `loader.isFilePath`) against `cwd`.
fn bind_source(source: &str, cwd: &Path) -> PathBuf {
    if source.starts_with('/') {
        clean(Path::new(source))
    } else {
        clean(&cwd.join(source))
    }
}

fn check_name(name: &str) -> Result<(), SpecError> {
    super::store::validate_name(name).map_err(|e| SpecError::BadName(e.to_string()))
}

/// `-v [SOURCE:]DEST[:MODES]`. A source starting with `/` or `.` is a
/// bind (`.` relative to `cwd`), else a volume name; no source is an
/// anonymous volume.
pub fn parse_volume(raw: &str, cwd: &Path) -> Result<MountRequest, SpecError> {
    let parts: Vec<&str> = raw.split(':').collect();
    let (source, dest, modes) = match parts.as_slice() {
        [d] => (None, *d, ""),
        // `/foo:rw` is a destination with a mode, which volumes cannot
        // have (ParseMountRaw).
        [_, m] if valid_modes(m) => return Err(SpecError::InvalidSpec(raw.to_string())),
        [s, d] => (Some(*s), *d, ""),
        [s, d, m] => (Some(*s), *d, *m),
        _ => return Err(SpecError::InvalidSpec(raw.to_string())),
    };
    if dest.is_empty() || source.is_some_and(str::is_empty) {
        return Err(SpecError::InvalidSpec(raw.to_string()));
    }
    let modes_ok = valid_modes(modes);
    if !modes_ok {
        return Err(SpecError::InvalidMode(modes.to_string()));
    }
    let words: Vec<&str> = modes.split(',').filter(|w| !w.is_empty()).collect();
    if let Some(w) = words
        .iter()
        .find(|w| PROPAGATION.contains(w) && !["private", "rprivate"].contains(w))
    {
        return Err(SpecError::Unsupported(format!("mount propagation {w:?}")));
    }
    let readonly = words.contains(&"ro");
    let nocopy = words.contains(&"nocopy");
    match source {
        Some(s) if s.starts_with('/') || s.starts_with('.') => {
            check_destination("bind", dest)?;
            if nocopy {
                return Err(SpecError::InvalidMode(modes.to_string()));
            }
            Ok(MountRequest::Bind {
                source: bind_source(s, cwd),
                destination: dest.to_string(),
                readonly,
                create_missing: true,
            })
        }
        name => {
            check_destination("volume", dest)?;
            if let Some(n) = name {
                check_name(n)?;
            }
            Ok(MountRequest::Volume {
                name: name.map(str::to_string),
                destination: dest.to_string(),
                readonly,
                nocopy,
                labels: BTreeMap::new(),
            })
        }
    }
}

const PROPAGATION: [&str; 6] = [
    "shared", "rshared", "slave", "rslave", "private", "rprivate",
];

/// moby's `ValidMountMode`: known words, at most one of each kind.
fn valid_modes(modes: &str) -> bool {
    let (mut access, mut label, mut propagation, mut copy) = (0, 0, 0, 0);
    for w in modes.split(',').filter(|w| !w.is_empty()) {
        let count = match w {
            "ro" | "rw" => &mut access,
            "z" | "Z" => &mut label,
            "nocopy" => &mut copy,
            w if PROPAGATION.contains(&w) => &mut propagation,
            _ => return false,
        };
        *count += 1;
        if *count > 1 {
            return false;
        }
    }
    true
}

/// One CSV record as Go's `encoding/csv` reads it (docker/cli reads
/// `--mount` with it): fields split at commas, a field in double quotes
/// may hold commas and `""` for a quote.
fn csv_fields(raw: &str) -> Result<Vec<String>, SpecError> {
    let mut fields = Vec::new();
    let mut chars = raw.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                    None => {
                        return Err(SpecError::Syntax(format!(
                            "parse error on line 1, column {}: extraneous or missing \" in quoted-field",
                            raw.len() + 1
                        )))
                    }
                }
            }
            match chars.next() {
                None => {
                    fields.push(field);
                    return Ok(fields);
                }
                Some(',') => {}
                Some(_) => {
                    return Err(SpecError::Syntax(
                        "parse error on line 1: extraneous or missing \" in quoted-field".into(),
                    ))
                }
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        fields.push(field);
                        return Ok(fields);
                    }
                    Some(',') => break,
                    Some('"') => {
                        return Err(SpecError::Syntax(
                            "parse error on line 1: bare \" in non-quoted-field".into(),
                        ))
                    }
                    Some(c) => field.push(c),
                }
            }
        }
        fields.push(field);
    }
}

fn parse_bool(key: &str, val: &str) -> Result<bool, SpecError> {
    // Go's strconv.ParseBool.
    match val {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(SpecError::Syntax(format!("invalid value for {key}: {val}"))),
    }
}

/// `--mount type=bind|volume|tmpfs,src=,dst=,readonly,volume-nocopy,
/// volume-label=,tmpfs-size=,tmpfs-mode=` (the type defaults to volume).
pub fn parse_mount(raw: &str, cwd: &Path) -> Result<MountRequest, SpecError> {
    let mut kind = "volume".to_string();
    let (mut source, mut target) = (None::<String>, None::<String>);
    let (mut readonly, mut nocopy) = (false, false);
    let mut labels = BTreeMap::new();
    let (mut size, mut mode) = (None::<u64>, None::<u32>);
    // Which option families were used, for "cannot mix" (docker/cli).
    let (mut volume_opts, mut bind_opts, mut tmpfs_opts) = (false, false, false);
    for field in csv_fields(raw)? {
        let Some((key, val)) = field.split_once('=') else {
            match field.as_str() {
                "readonly" | "ro" => readonly = true,
                "volume-nocopy" => {
                    nocopy = true;
                    volume_opts = true;
                }
                "bind-nonrecursive" => {
                    return Err(SpecError::Unsupported("bind-nonrecursive".into()))
                }
                _ => {
                    return Err(SpecError::Syntax(format!(
                        "invalid field '{field}' must be a key=value pair"
                    )))
                }
            }
            continue;
        };
        match key {
            "type" => kind = val.to_lowercase(),
            "source" | "src" => source = Some(val.to_string()),
            "target" | "dst" | "destination" => target = Some(val.to_string()),
            "readonly" | "ro" => readonly = parse_bool(key, val)?,
            "consistency" => {}
            "bind-propagation" => {
                bind_opts = true;
                if !["private", "rprivate"].contains(&val.to_lowercase().as_str()) {
                    return Err(SpecError::Unsupported(format!("mount propagation {val:?}")));
                }
            }
            "bind-nonrecursive" => {
                bind_opts = true;
                if parse_bool(key, val)? {
                    return Err(SpecError::Unsupported("bind-nonrecursive".into()));
                }
            }
            "volume-nocopy" => {
                volume_opts = true;
                nocopy = parse_bool(key, val).map_err(|_| {
                    SpecError::Syntax(format!("invalid value for volume-nocopy: {val}"))
                })?;
            }
            "volume-label" => {
                volume_opts = true;
                let (k, v) = val.split_once('=').unwrap_or((val, ""));
                if !k.is_empty() {
                    labels.insert(k.to_string(), v.to_string());
                }
            }
            "volume-driver" => {
                volume_opts = true;
                if val != super::store::LOCAL_DRIVER {
                    return Err(SpecError::Unsupported(format!("volume driver {val:?}")));
                }
            }
            "volume-opt" => return Err(SpecError::Unsupported("volume-opt".into())),
            "tmpfs-size" => {
                tmpfs_opts = true;
                size =
                    Some(units::ram_in_bytes(val).ok_or_else(|| {
                        SpecError::Syntax(format!("invalid value for {key}: {val}"))
                    })?);
            }
            "tmpfs-mode" => {
                tmpfs_opts = true;
                mode =
                    Some(u32::from_str_radix(val, 8).map_err(|_| {
                        SpecError::Syntax(format!("invalid value for {key}: {val}"))
                    })?);
            }
            _ => {
                return Err(SpecError::Syntax(format!(
                    "unexpected key '{key}' in '{field}'"
                )))
            }
        }
    }
    if kind.is_empty() {
        return Err(SpecError::Syntax("type is required".into()));
    }
    let Some(target) = target.filter(|t| !t.is_empty()) else {
        return Err(SpecError::Syntax("target is required".into()));
    };
    for (used, family) in [
        (volume_opts, "volume"),
        (bind_opts, "bind"),
        (tmpfs_opts, "tmpfs"),
    ] {
        if used && kind != family {
            return Err(SpecError::Syntax(format!(
                "cannot mix '{family}-*' options with mount type '{kind}'"
            )));
        }
    }
    let source = source.filter(|s| !s.is_empty());
    match kind.as_str() {
        "bind" => {
            let Some(s) = source else {
                return Err(config("bind", "field Source must not be empty"));
            };
            // docker/cli makes `.`-relative sources absolute; others
            // reach the daemon as given and must be absolute.
            let path = if s == "." || s.starts_with("./") || s.starts_with("../") {
                bind_source(&s, cwd)
            } else if s.starts_with('/') {
                clean(Path::new(&s))
            } else {
                return Err(config(
                    "bind",
                    format!("invalid mount path: '{s}' mount path must be absolute"),
                ));
            };
            check_destination("bind", &target)?;
            if !path.exists() {
                return Err(config(
                    "bind",
                    format!("bind source path does not exist: {}", path.display()),
                ));
            }
            Ok(MountRequest::Bind {
                source: path,
                destination: target,
                readonly,
                create_missing: false,
            })
        }
        "volume" => {
            check_destination("volume", &target)?;
            if let Some(n) = &source {
                check_name(n)?;
            }
            Ok(MountRequest::Volume {
                name: source,
                destination: target,
                readonly,
                nocopy,
                labels,
            })
        }
        "tmpfs" => {
            if source.is_some() {
                return Err(config("tmpfs", "field Source must not be specified"));
            }
            check_destination("tmpfs", &target)?;
            let mut options = vec![crate::runtime::spec::DOCKER_TMPFS_OPTIONS.to_string()];
            if readonly {
                options.push("ro".into());
            }
            if let Some(s) = size {
                options.push(format!("size={s}"));
            }
            if let Some(m) = mode {
                options.push(format!("mode={m:o}"));
            }
            Ok(MountRequest::Tmpfs {
                destination: target,
                options: options.join(","),
            })
        }
        other => Err(config(other, "mount type unknown")),
    }
}

#[cfg(test)]
#[path = "mount_spec_tests.rs"]
mod tests;
