//! Running `ip` and `iptables`, on the host or inside a container's
//! network namespace, with their stderr as the error.
//!
//! kiln drives the kernel through iproute2 and iptables rather than
//! netlink from Rust: they are what docker's rules are written in
//! (moby/moby `integration/network/bridge/iptablesdoc`), what an operator
//! reads, and each call is one line in a trace.

use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

/// A network command failed.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The program is not installed.
    #[error("{program} is not installed (Debian/Ubuntu: apt-get install -y iproute2 iptables)")]
    Missing {
        /// `ip` or `iptables`.
        program: String,
    },
    /// It could not be started.
    #[error("failed to run {program}")]
    Spawn {
        /// The program.
        program: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// It exited non-zero.
    #[error("`{command}` failed: {stderr}")]
    Failed {
        /// The command line.
        command: String,
        /// What it printed on stderr.
        stderr: String,
    },
    /// The container's network namespace could not be opened.
    #[error("failed to open the network namespace of pid {pid}")]
    Namespace {
        /// The container's init.
        pid: i32,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// Runs `program args`, with `stdin` fed to it, in the network namespace
/// `netns` (kiln's own when `None`).
pub fn run(
    program: &str,
    args: &[&str],
    stdin: Option<&str>,
    netns: Option<&OwnedFd>,
) -> Result<(), CommandError> {
    let command_line = format!("{program} {}", args.join(" "));
    tracing::debug!(command = %command_line, "network");
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(ns) = netns {
        let fd = ns.as_raw_fd();
        // SAFETY: setns is async-signal-safe; the child only joins the
        // namespace before exec.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let mut child = cmd.spawn().map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => CommandError::Missing {
            program: program.into(),
        },
        _ => CommandError::Spawn {
            program: program.into(),
            source,
        },
    })?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // A failed write shows as the command's own failure.
        let _ = pipe.write_all(text.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|source| CommandError::Spawn {
            program: program.into(),
            source,
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(CommandError::Failed {
            command: command_line,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// Opens `/proc/<pid>/ns/net`.
pub fn netns_of(pid: i32) -> Result<OwnedFd, CommandError> {
    std::fs::File::open(format!("/proc/{pid}/ns/net"))
        .map(OwnedFd::from)
        .map_err(|source| CommandError::Namespace { pid, source })
}

/// Runs iproute2's `ip -batch -` with `lines` on the host, or in `netns`.
pub fn ip_batch(lines: &[String], netns: Option<&OwnedFd>) -> Result<(), CommandError> {
    let text = lines.join("\n") + "\n";
    run("ip", &["-batch", "-"], Some(&text), netns)
}

/// `iptables -w` with `args` (waits for the xtables lock other programs
/// hold rather than failing).
pub fn iptables(args: &[&str]) -> Result<(), CommandError> {
    let mut all = vec!["-w"];
    all.extend_from_slice(args);
    run("iptables", &all, None, None)
}
