//! The final `execve(2)` of the user's process: `PATH` lookup inside the
//! container, argv/env as C strings, and docker's exit codes for failures
//! (127 not found, 126 not executable).

use std::ffi::CString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// docker's exit status when the command does not exist.
pub const EXIT_NOT_FOUND: i32 = 127;
/// docker's exit status when the command cannot be executed.
pub const EXIT_CANNOT_EXECUTE: i32 = 126;

/// Why the process could not be executed.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// No command given.
    #[error("no command specified")]
    NoCommand,
    /// A NUL byte in argv or env.
    #[error("argument or environment entry contains a NUL byte: {0:?}")]
    Nul(String),
    /// Not found in `$PATH` (or the path does not exist).
    #[error("exec: {0:?}: executable file not found in $PATH")]
    NotFound(String),
    /// execve(2) itself failed.
    #[error("exec: {path:?}")]
    Exec {
        /// The resolved program path.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

impl ExecError {
    /// The exit status `kiln run` reports for this failure.
    pub fn exit_code(&self) -> i32 {
        match self {
            ExecError::NotFound(_) => EXIT_NOT_FOUND,
            ExecError::Exec { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                EXIT_NOT_FOUND
            }
            _ => EXIT_CANNOT_EXECUTE,
        }
    }
}

/// Everything execve needs, prepared before the last privileged steps.
#[derive(Debug)]
pub struct Command {
    path: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
}

fn cstring(s: &str) -> Result<CString, ExecError> {
    CString::new(s).map_err(|_| ExecError::Nul(s.to_string()))
}

/// The value of `key` in a `KEY=VALUE` list.
pub fn env_value<'a>(env: &'a [String], key: &str) -> Option<&'a str> {
    env.iter()
        .rev()
        .find_map(|e| e.strip_prefix(key)?.strip_prefix('='))
}

/// Finds `program` the way runc does: as given when it contains a `/`,
/// else the first executable regular file in the container's `PATH`.
/// Must run inside the container's root.
pub fn lookup(program: &str, path_var: Option<&str>) -> Result<PathBuf, ExecError> {
    if program.is_empty() {
        return Err(ExecError::NotFound(program.to_string()));
    }
    if program.contains('/') {
        return Ok(PathBuf::from(program));
    }
    let path_var = path_var.unwrap_or(super::spec::DEFAULT_PATH);
    for dir in path_var.split(':') {
        // An empty PATH entry means the working directory (POSIX).
        let candidate = if dir.is_empty() {
            Path::new(".").join(program)
        } else {
            Path::new(dir).join(program)
        };
        if let Ok(meta) = std::fs::metadata(&candidate) {
            if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
                return Ok(candidate);
            }
        }
    }
    Err(ExecError::NotFound(program.to_string()))
}

impl Command {
    /// Resolves `args[0]` and converts everything to C strings.
    pub fn new(args: &[String], env: &[String]) -> Result<Command, ExecError> {
        let program = args.first().ok_or(ExecError::NoCommand)?;
        let path = lookup(program, env_value(env, "PATH"))?;
        Ok(Command {
            path: cstring(&path.to_string_lossy())?,
            argv: args.iter().map(|a| cstring(a)).collect::<Result<_, _>>()?,
            envp: env.iter().map(|e| cstring(e)).collect::<Result<_, _>>()?,
        })
    }

    /// Replaces the calling process; returns only on failure.
    pub fn exec(&self) -> ExecError {
        let err = match nix::unistd::execve(&self.path, &self.argv, &self.envp) {
            Err(e) => e,
            Ok(never) => match never {},
        };
        ExecError::Exec {
            path: self.path.to_string_lossy().into_owned(),
            source: err.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(program: &str, path: Option<&str>, expected: Result<&str, i32>) {
        let got = lookup(program, path).map_err(|e| e.exit_code());
        assert_eq!(
            got,
            expected.map(PathBuf::from),
            "lookup({program}, {path:?})"
        );
    }

    #[test]
    fn lookup_cases() {
        check("sh", Some("/nonexistent:/bin"), Ok("/bin/sh"));
        check("/anything/at/all", None, Ok("/anything/at/all"));
        check("no-such-program-kiln", Some("/bin"), Err(127));
        // Not executable: /etc/passwd exists but is not a candidate.
        check("passwd", Some("/etc"), Err(127));
        check("", None, Err(127));
    }

    #[test]
    fn env_value_takes_last() {
        let env = vec!["PATH=/a".to_string(), "PATHX=1".into(), "PATH=/b".into()];
        assert_eq!(env_value(&env, "PATH"), Some("/b"));
        assert_eq!(env_value(&env, "HOME"), None);
    }
}
