//! docker's rules for the process of a container made from an image: the
//! image config's ENTRYPOINT, CMD, Env, WorkingDir and User combined with
//! `kiln run`'s `--entrypoint`, arguments, `-e`/`--env-file`, `-w`, `-u`.
//!
//! Pure data in, data out, so every documented docker case is a row of a
//! table test. The rules follow moby's `daemon/commit.go` `merge` (image
//! values fill what the user left unset) and the docker CLI's handling of
//! `--entrypoint` (`cli/command/container/opts.go`).
//!
//! Deliberately not applied here:
//! - `Healthcheck`: kiln has no daemon to run probes, so it is ignored.
//! - `StopSignal`: docker uses it only for `docker stop`; `docker run`'s
//!   signal proxy forwards the signal it received unchanged, and kiln's
//!   runtime does the same, so there is nothing to map.
//! - `Hostname`/`Domainname` in an image config: docker's `merge` ignores
//!   them too; the hostname defaults to the container ID's first 12 digits.

use crate::image::oci::ContainerConfig;

/// What the user gave on the command line that can override the image.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunOverrides {
    /// `--entrypoint`: one argv word (docker never splits it). `Some("")`
    /// clears the image's ENTRYPOINT.
    pub entrypoint: Option<String>,
    /// The arguments after IMAGE: they replace the image's CMD.
    pub command: Vec<String>,
    /// `--env-file` entries then `-e` entries, as `KEY=VALUE`.
    pub env: Vec<String>,
    /// `-w`: replaces the image's WorkingDir.
    pub workdir: Option<String>,
    /// `-u`: replaces the image's User.
    pub user: Option<String>,
}

/// The process docker would start, before the runtime adds `HOSTNAME`,
/// `TERM` and the default `PATH` ([`crate::runtime::spec::docker_env`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessConfig {
    /// argv: ENTRYPOINT followed by CMD, after overrides.
    pub args: Vec<String>,
    /// The user's entries first, then the image's entries whose key the
    /// user did not set (moby's order); later entries win at exec time.
    pub env: Vec<String>,
    /// Absolute working directory (`/` when neither sets one).
    pub cwd: String,
    /// docker `--user` syntax; empty means the image's default, root.
    pub user: String,
}

/// Why no process can be made.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProcessError {
    /// Neither the image nor the command line names a command. The
    /// message is docker's, word for word, which scripts match on.
    #[error("No command specified")]
    NoCommand,
    /// docker requires an absolute working directory.
    #[error("the working directory {0:?} is invalid, it needs to be an absolute path")]
    RelativeWorkdir(String),
}

/// Combines the image's defaults (`None` for an image without a config
/// section, as a scratch import may have) with the command line's.
pub fn resolve(
    image: Option<&ContainerConfig>,
    overrides: &RunOverrides,
) -> Result<ProcessConfig, ProcessError> {
    let image_entrypoint = image.and_then(|c| c.entrypoint.clone()).unwrap_or_default();
    let image_cmd = image.and_then(|c| c.cmd.clone()).unwrap_or_default();
    let (entrypoint, cmd) = match &overrides.entrypoint {
        // docker CLI: `--entrypoint` replaces ENTRYPOINT and drops the
        // image's CMD; only the user's own arguments follow it. An empty
        // value clears ENTRYPOINT.
        Some(ep) if ep.is_empty() => (Vec::new(), overrides.command.clone()),
        Some(ep) => (vec![ep.clone()], overrides.command.clone()),
        None if overrides.command.is_empty() => (image_entrypoint, image_cmd),
        None => (image_entrypoint, overrides.command.clone()),
    };
    let mut args = entrypoint;
    args.extend(cmd);
    if args.is_empty() {
        return Err(ProcessError::NoCommand);
    }

    let mut env = overrides.env.clone();
    let key = |e: &str| e.split('=').next().unwrap_or_default().to_string();
    for entry in image.and_then(|c| c.env.as_deref()).unwrap_or_default() {
        let k = key(entry);
        if !overrides.env.iter().any(|u| key(u) == k) {
            env.push(entry.clone());
        }
    }

    let image_workdir = image
        .and_then(|c| c.working_dir.as_deref())
        .filter(|w| !w.is_empty());
    let cwd = match overrides.workdir.as_deref().or(image_workdir) {
        None => "/".to_string(),
        Some(w) if w.starts_with('/') => w.to_string(),
        Some(w) => return Err(ProcessError::RelativeWorkdir(w.to_string())),
    };

    let user = overrides
        .user
        .clone()
        .or_else(|| image.and_then(|c| c.user.clone()))
        .unwrap_or_default();

    Ok(ProcessConfig {
        args,
        env,
        cwd,
        user,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Option<Vec<String>> {
        if s == "-" {
            None
        } else {
            Some(s.split_whitespace().map(str::to_string).collect())
        }
    }

    /// One row: image ENTRYPOINT and CMD (`-` = unset, `""` = `[]`), the
    /// `--entrypoint` flag, the run arguments, and the expected argv (or
    /// `None` for docker's "No command specified").
    fn check(
        image_ep: &str,
        image_cmd: &str,
        flag_ep: Option<&str>,
        run_args: &str,
        expected: Option<&str>,
    ) {
        let image = ContainerConfig {
            entrypoint: words(image_ep),
            cmd: words(image_cmd),
            ..Default::default()
        };
        let overrides = RunOverrides {
            entrypoint: flag_ep.map(str::to_string),
            command: words(run_args).unwrap_or_default(),
            ..Default::default()
        };
        let got = resolve(Some(&image), &overrides).map(|p| p.args.join(" "));
        let want = expected.map(str::to_string).ok_or(ProcessError::NoCommand);
        assert_eq!(
            got, want,
            "ENTRYPOINT {image_ep:?} CMD {image_cmd:?} --entrypoint {flag_ep:?} args {run_args:?}"
        );
    }

    /// docker's documented table ("Understand how CMD and ENTRYPOINT
    /// interact") plus the run-time overrides.
    #[test]
    fn entrypoint_and_cmd_follow_docker() {
        // image only
        check("-", "-", None, "", None);
        check("", "", None, "", None);
        check("-", "sh -c date", None, "", Some("sh -c date"));
        check("/ep p1", "-", None, "", Some("/ep p1"));
        check("/ep p1", "c1 c2", None, "", Some("/ep p1 c1 c2"));
        check(
            "/bin/sh -c /ep p1",
            "/bin/sh -c c1",
            None,
            "",
            Some("/bin/sh -c /ep p1 /bin/sh -c c1"),
        );
        // arguments replace CMD, never ENTRYPOINT
        check("-", "sh", None, "echo hi", Some("echo hi"));
        check("/ep", "c1", None, "a b", Some("/ep a b"));
        check("-", "-", None, "true", Some("true"));
        // --entrypoint replaces ENTRYPOINT and drops the image's CMD
        check("/ep", "c1", Some("/other"), "", Some("/other"));
        check("-", "sh", Some("/other"), "", Some("/other"));
        check("/ep", "c1", Some("/other"), "x y", Some("/other x y"));
        // one word, never split
        check("-", "-", Some("/bin/echo hi"), "", Some("/bin/echo hi"));
        // --entrypoint "" clears it; CMD is dropped too
        check("/ep", "c1", Some(""), "", None);
        check("/ep", "c1", Some(""), "echo hi", Some("echo hi"));
    }

    #[test]
    fn entrypoint_flag_is_one_argv_word() {
        let p = resolve(
            None,
            &RunOverrides {
                entrypoint: Some("/bin/echo hi".into()),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(p.args, vec!["/bin/echo hi"]);
    }

    fn check_env(image: &[&str], user: &[&str], expected: &[&str]) {
        let config = ContainerConfig {
            env: Some(image.iter().map(|s| s.to_string()).collect()),
            cmd: Some(vec!["sh".into()]),
            ..Default::default()
        };
        let overrides = RunOverrides {
            env: user.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        assert_eq!(resolve(Some(&config), &overrides).unwrap().env, expected);
    }

    #[test]
    fn env_user_values_override_the_image() {
        check_env(&[], &[], &[]);
        check_env(&["A=b", "PATH=/x"], &[], &["A=b", "PATH=/x"]);
        check_env(&["A=b"], &["A=c"], &["A=c"]);
        check_env(&["A=b", "B=1"], &["B=2", "C=3"], &["B=2", "C=3", "A=b"]);
        // an image value containing `=` keeps it; keys compare whole
        check_env(&["AB=x=y"], &["A=1"], &["A=1", "AB=x=y"]);
        // repeated user keys stay in order: the last one wins at exec
        check_env(&["A=0"], &["A=1", "A=2"], &["A=1", "A=2"]);
    }

    fn check_identity(
        image_workdir: Option<&str>,
        image_user: Option<&str>,
        flag_w: Option<&str>,
        flag_u: Option<&str>,
        expected: Result<(&str, &str), ProcessError>,
    ) {
        let config = ContainerConfig {
            working_dir: image_workdir.map(str::to_string),
            user: image_user.map(str::to_string),
            cmd: Some(vec!["sh".into()]),
            ..Default::default()
        };
        let overrides = RunOverrides {
            workdir: flag_w.map(str::to_string),
            user: flag_u.map(str::to_string),
            ..Default::default()
        };
        let got = resolve(Some(&config), &overrides).map(|p| (p.cwd, p.user));
        let want = expected.map(|(c, u)| (c.to_string(), u.to_string()));
        assert_eq!(got, want);
    }

    #[test]
    fn workdir_and_user_come_from_the_image_unless_overridden() {
        check_identity(None, None, None, None, Ok(("/", "")));
        check_identity(Some(""), Some(""), None, None, Ok(("/", "")));
        check_identity(Some("/app"), Some("1000"), None, None, Ok(("/app", "1000")));
        check_identity(
            Some("/app"),
            Some("nobody"),
            Some("/tmp"),
            Some("0:0"),
            Ok(("/tmp", "0:0")),
        );
        check_identity(None, None, Some("/w"), Some("tester"), Ok(("/w", "tester")));
        check_identity(
            Some("rel"),
            None,
            None,
            None,
            Err(ProcessError::RelativeWorkdir("rel".into())),
        );
    }

    #[test]
    fn an_image_without_config_needs_a_command() {
        assert_eq!(
            resolve(None, &RunOverrides::default()),
            Err(ProcessError::NoCommand)
        );
        let p = resolve(
            None,
            &RunOverrides {
                command: vec!["true".into()],
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(
            (p.args, p.cwd.as_str(), p.user.as_str()),
            (vec!["true".to_string()], "/", "")
        );
    }
}
