//! `kiln exec`, `kiln top` and `kiln diff`, docker's flags and output (docker/cli
//! `cli/command/container/exec.go`, `top.go`).

use super::report;
use crate::cache::Store;
use crate::cli::CliError;
use crate::container::exec::{self, ExecOptions};
use crate::error_chain::Chain;
use crate::runtime::{self, Input, Output, Stdio};
use clap::Args;
use std::path::Path;

/// Flags of `kiln exec`.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Keep STDIN open.
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY.
    #[arg(short, long)]
    pub tty: bool,
    /// Detached: run the command in the background.
    #[arg(short, long)]
    pub detach: bool,
    /// Set environment variables (`K=V`, or `K` to take kiln's value).
    #[arg(short, long = "env", value_name = "K=V")]
    pub env: Vec<String>,
    /// Working directory inside the container.
    #[arg(short, long, value_name = "DIR")]
    pub workdir: Option<String>,
    /// Username or UID (`name|uid[:group|gid]`).
    #[arg(short, long, value_name = "USER")]
    pub user: Option<String>,
    /// The container.
    pub container: String,
    /// The command and its arguments.
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// Flags of `kiln top`.
#[derive(Debug, Args)]
pub struct TopArgs {
    /// The container.
    pub container: String,
    /// `ps` options (default `-ef`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_options: Vec<String>,
}

fn open(root: &Path) -> Result<Store, CliError> {
    Store::open(root).map_err(|e| CliError(format!("Error: {}", Chain(&e))))
}

/// `-e K` takes the value from kiln's environment, or is dropped when
/// unset (docker/cli `opts.ValidateEnv`, `ReadKVEnvStrings`).
fn env_entries(flags: &[String]) -> Vec<String> {
    flags
        .iter()
        .filter_map(|e| {
            if e.contains('=') {
                Some(e.clone())
            } else {
                std::env::var(e).ok().map(|v| format!("{e}={v}"))
            }
        })
        .collect()
}

/// `kiln exec`: exits with the command's status; kiln's own errors
/// (no such container, not running) exit 1 like docker/cli's `exec`,
/// a command that cannot be started 126/127.
pub fn exec(a: ExecArgs, root: &Path) -> Result<i32, CliError> {
    if a.interactive && a.tty && !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        return Ok(report("the input device is not a TTY"));
    }
    let store = open(root)?;
    let (row, init) = match exec::running(&store, &a.container) {
        Ok(found) => found,
        Err(e) => return Ok(report(Chain(&e))),
    };
    let opts = ExecOptions {
        args: a.command,
        env: env_entries(&a.env),
        workdir: a.workdir,
        user: a.user,
        terminal: a.tty,
        console_size: if a.tty {
            runtime::pty::size(&std::io::stdout())
        } else {
            None
        },
    };
    let spec = match exec::join_spec(&row, init, &opts) {
        Ok(s) => s,
        Err(e) => return Ok(report(Chain(&e))),
    };
    drop(store);
    if a.detach {
        return Ok(match detach(root, &spec) {
            Ok(()) => 0,
            Err(e) => report(format!("starting the detached exec: {e}")),
        });
    }
    let stdio = Stdio {
        stdin: if a.interactive {
            Input::Inherit
        } else {
            Input::Null
        },
        stdout: Output::Inherit,
        stderr: Output::Inherit,
        forward_signals: false,
    };
    match runtime::join::exec(&spec, stdio) {
        Ok(status) => Ok(status.docker_code()),
        Err(e) => {
            eprintln!("Error: {}", Chain(&e));
            Ok(e.exit_code())
        }
    }
}

/// Flags of `kiln diff`.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The container.
    pub container: String,
}

/// `kiln diff`: one `A`/`C`/`D` line per change.
pub fn diff(a: DiffArgs, root: &Path) -> Result<i32, CliError> {
    let store = open(root)?;
    match crate::container::changes::of_container(&store, &a.container) {
        Ok(changes) => {
            for c in changes {
                println!("{c}");
            }
            Ok(0)
        }
        Err(e) => Ok(report(Chain(&e))),
    }
}

/// argv[1] of the detached `kiln exec -d` helper.
pub const DETACHED_EXEC_ARG: &str = "__kiln-exec-detached";

/// `exec -d`: a kiln of its own session (so it outlives this one, as
/// the command's parent must: the joined process dies with its parent)
/// runs the exec with `/dev/null` for its streams; it gets the prepared
/// spec on its stdin.
fn detach(root: &Path, spec: &runtime::join::JoinSpec) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe()?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg(DETACHED_EXEC_ARG)
        .arg(std::path::absolute(root)?)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .current_dir("/");
    // SAFETY: setsid is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn()?;
    let json = serde_json::to_vec(spec).map_err(std::io::Error::other)?;
    let mut stdin = child.stdin.take().expect("piped");
    stdin.write_all(&json)?;
    drop(stdin);
    // Reaped by init once this CLI exits.
    let _ = child.try_wait();
    Ok(())
}

/// The detached helper's entry point (see [`detach`]): reads the spec
/// from stdin, runs it with `/dev/null` streams, exits with its status.
pub fn detached_main() -> i32 {
    let mut json = Vec::new();
    if std::io::Read::read_to_end(&mut std::io::stdin(), &mut json).is_err() {
        return 125;
    }
    let Ok(spec) = serde_json::from_slice::<runtime::join::JoinSpec>(&json) else {
        return 125;
    };
    let null = |write: bool| {
        std::fs::File::options()
            .read(!write)
            .write(write)
            .open("/dev/null")
            .map(std::os::fd::OwnedFd::from)
    };
    let (Ok(i), Ok(o), Ok(e)) = (null(false), null(true), null(true)) else {
        return 125;
    };
    let stdio = Stdio {
        stdin: Input::Fd(i),
        stdout: Output::Fd(o),
        stderr: Output::Fd(e),
        forward_signals: false,
    };
    match runtime::join::exec(&spec, stdio) {
        Ok(status) => status.docker_code(),
        Err(e) => e.exit_code(),
    }
}

/// `kiln top`: the host's `ps` output (`-ef` unless options are given)
/// cut to the container's processes, as moby `daemon/top_unix.go`
/// (`ContainerTop`, `parsePSOutput`) does: the `PID` column of each line
/// is matched against the container's pids.
pub fn top(a: TopArgs, root: &Path) -> Result<i32, CliError> {
    let store = open(root)?;
    let (_, init) = match exec::running(&store, &a.container) {
        Ok(found) => found,
        Err(e) => return Ok(report(Chain(&e))),
    };
    let pids = exec::pids(init);
    let options = if a.ps_options.is_empty() {
        vec!["-ef".to_string()]
    } else {
        a.ps_options
    };
    let output = match std::process::Command::new("ps").args(&options).output() {
        Ok(o) if o.status.success() => o,
        Ok(o) => {
            return Ok(report(format!(
                "ps: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            )))
        }
        Err(e) => return Ok(report(format!("running ps: {e}"))),
    };
    let text = String::from_utf8_lossy(&output.stdout);
    match filter_ps(&text, &pids) {
        Some(lines) => {
            print!("{lines}");
            Ok(0)
        }
        None => Ok(report("Couldn't find PID field in ps output")),
    }
}

/// The header and the lines whose `PID` column is one of `pids`; `None`
/// without a `PID` column (moby's error).
fn filter_ps(text: &str, pids: &[u32]) -> Option<String> {
    let mut lines = text.lines();
    let header = lines.next()?;
    let column = header.split_whitespace().position(|c| c == "PID")?;
    let mut out = format!("{header}\n");
    for line in lines {
        let pid = line
            .split_whitespace()
            .nth(column)
            .and_then(|p| p.parse::<u32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            out.push_str(line);
            out.push('\n');
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_ps_keeps_header_and_container_pids() {
        let text = "UID PID PPID C STIME TTY TIME CMD\n\
                    root 1 0 0 00:00 ? 00:00:00 init\n\
                    root 42 1 0 00:00 ? 00:00:00 sleep 1000\n\
                    root 420 1 0 00:00 ? 00:00:00 other\n";
        assert_eq!(
            filter_ps(text, &[42]).unwrap(),
            "UID PID PPID C STIME TTY TIME CMD\nroot 42 1 0 00:00 ? 00:00:00 sleep 1000\n"
        );
        assert_eq!(filter_ps("USER COMMAND\nx y\n", &[1]), None);
    }
}
