//! Values of `kiln run`'s flags, checked the way docker checks them; every
//! error names its flag.

use crate::error_chain::Chain;
use crate::runtime::spec::DOCKER_TMPFS_OPTIONS;
use crate::runtime::{MountKind, MountSpec};
use std::path::{Path, PathBuf};

/// A flag value that docker would reject.
#[derive(Debug, thiserror::Error)]
pub enum FlagError {
    /// The value of `flag` is invalid.
    #[error("invalid value {value:?} for {flag}: {reason}")]
    Invalid {
        /// The flag.
        flag: &'static str,
        /// Its value.
        value: String,
        /// What is wrong.
        reason: String,
    },
    /// Anything else about the invocation.
    #[error("{0}")]
    Usage(String),
}

pub(super) fn invalid(flag: &'static str, value: &str, reason: impl Into<String>) -> FlagError {
    FlagError::Invalid {
        flag,
        value: value.to_string(),
        reason: reason.into(),
    }
}

/// docker's memory sizes (go-units `RAMInBytes`, see [`crate::units`]).
pub fn parse_size(value: &str, flag: &'static str) -> Result<u64, FlagError> {
    crate::units::ram_in_bytes(value).ok_or_else(|| {
        invalid(
            flag,
            value,
            "expected a size like 512m, 1g or a number of bytes",
        )
    })
}

/// A plain number flag (`--cpus 1.5`, `--pids-limit -1`).
pub(super) fn parse_number<T: std::str::FromStr>(
    value: &str,
    flag: &'static str,
) -> Result<T, FlagError> {
    value
        .trim()
        .parse()
        .map_err(|_| invalid(flag, value, "not a number"))
}

/// `-e KEY=VALUE` as is; `-e KEY` takes kiln's value or is dropped (docker).
pub(super) fn env_entry(entry: &str, flag: &'static str) -> Result<Option<String>, FlagError> {
    let key = entry.split('=').next().unwrap_or_default();
    if key.is_empty() || key.chars().any(char::is_whitespace) {
        return Err(invalid(
            flag,
            entry,
            "variable name must be non-empty and contain no whitespace",
        ));
    }
    if entry.contains('=') {
        return Ok(Some(entry.to_string()));
    }
    Ok(std::env::var(key).ok().map(|v| format!("{key}={v}")))
}

/// The longest env-file line: docker reads env files with Go's
/// `bufio.Scanner` (docker/cli `opts/parse.go` `parseKeyValueFile`),
/// whose default token limit (`bufio.MaxScanTokenSize`) is 64 KiB.
pub const MAX_ENV_FILE_LINE: usize = 64 * 1024;

/// The largest env file read. docker has no total limit (only the line
/// one); kiln stops at 16 MiB, the size it also allows a Dockerfile, so
/// `--env-file /dev/zero` cannot fill memory.
pub const MAX_ENV_FILE_SIZE: u64 = 16 << 20;

/// docker's env-file format: `KEY=VALUE` or `KEY` per line, `#` comments;
/// read line by line within [`MAX_ENV_FILE_LINE`] and [`MAX_ENV_FILE_SIZE`].
pub(super) fn read_env_file(path: &Path) -> Result<Vec<String>, FlagError> {
    use std::io::{BufRead, Read};
    let shown = path.display().to_string();
    let file = std::fs::File::open(path)
        .map_err(|e| invalid("--env-file", &shown, Chain(&e).to_string()))?;
    let mut reader = std::io::BufReader::new(file).take(MAX_ENV_FILE_SIZE + 1);
    let mut out = Vec::new();
    let mut line = Vec::new();
    let mut total = 0u64;
    for n in 1.. {
        line.clear();
        let read = (&mut reader)
            .take(MAX_ENV_FILE_LINE as u64 + 1)
            .read_until(b'\n', &mut line)
            .map_err(|e| invalid("--env-file", &shown, Chain(&e).to_string()))?;
        if read == 0 {
            break;
        }
        total += read as u64;
        if total > MAX_ENV_FILE_SIZE {
            return Err(invalid(
                "--env-file",
                &shown,
                format!("the file is larger than {MAX_ENV_FILE_SIZE} bytes"),
            ));
        }
        if line.last() == Some(&b'\n') {
            line.pop();
        } else if line.len() > MAX_ENV_FILE_LINE {
            return Err(invalid(
                "--env-file",
                &shown,
                format!("line {n} is longer than {MAX_ENV_FILE_LINE} bytes"),
            ));
        }
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        // docker's wording (`parseKeyValueFile`).
        let text = std::str::from_utf8(&line).map_err(|_| {
            FlagError::Usage(format!(
                "env file {shown} contains invalid utf8 bytes at line {n}"
            ))
        })?;
        let text = text.trim_start();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        let entry = env_entry(text, "--env-file")
            .map_err(|e| FlagError::Usage(format!("{shown}:{n}: {e}", e = Chain(&e))))?;
        out.extend(entry);
    }
    Ok(out)
}

/// `--tmpfs PATH[:OPTIONS]`.
pub(super) fn parse_tmpfs(value: &str) -> Result<MountSpec, FlagError> {
    let (path, options) = value.split_once(':').unwrap_or((value, ""));
    if !path.starts_with('/') || path == "/" {
        return Err(invalid(
            "--tmpfs",
            value,
            "the path must be absolute and not /",
        ));
    }
    Ok(MountSpec {
        destination: path.to_string(),
        kind: MountKind::Tmpfs {
            options: [DOCKER_TMPFS_OPTIONS, options]
                .iter()
                .filter(|o| !o.is_empty())
                .copied()
                .collect::<Vec<_>>()
                .join(","),
        },
    })
}

/// RFC 1123 hostname rules as the kernel needs them (≤ 64 bytes).
pub(super) fn validate_hostname(h: &str) -> Result<String, FlagError> {
    let ok = !h.is_empty()
        && h.len() <= 64
        && h.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if ok {
        Ok(h.to_string())
    } else {
        Err(invalid("--hostname", h, "not a valid hostname"))
    }
}

/// Claims `name` for container `id`: a symlink `names/<name> -> <id>`,
/// created atomically so two runs cannot both get it.
pub(super) fn reserve_name(names: &Path, name: &str, id: &str) -> Result<PathBuf, FlagError> {
    let valid = name.len() >= 2
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if !valid {
        return Err(invalid(
            "--name",
            name,
            "only [a-zA-Z0-9][a-zA-Z0-9_.-]+ are allowed",
        ));
    }
    let dir = names;
    std::fs::create_dir_all(dir).map_err(|e| invalid("--name", name, Chain(&e).to_string()))?;
    let link = dir.join(name);
    match std::os::unix::fs::symlink(id, &link) {
        Ok(()) => Ok(link),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let owner = std::fs::read_link(&link).unwrap_or_default();
            // docker's wording (moby `daemon/names.go` `reserveName`).
            Err(FlagError::Usage(format!(
                "Conflict. The container name \"/{name}\" is already in use by container \"{}\". \
                 You have to remove (or rename) that container to be able to reuse that name.",
                owner.display()
            )))
        }
        Err(e) => Err(invalid("--name", name, Chain(&e).to_string())),
    }
}

#[cfg(test)]
#[path = "run_tests.rs"]
mod tests;
