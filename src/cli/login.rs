//! `kiln login [-u USER] [--password-stdin | -p PASS] [REGISTRY]`: checks
//! credentials against the registry and keeps them where docker reads them:
//! docker's config.json (`$DOCKER_CONFIG`, else `~/.docker`), or its
//! credential helper when the config names one, or `--authfile FILE`.

use super::{CliError, RegistryFlags};
use crate::error_chain::Chain;
use crate::image::registry::credentials::docker_config_path;
use crate::image::registry::endpoint::{canonical_registry_name, DOCKER_HUB_NAME};
use crate::image::registry::{Credentials, LoginFile, RegistryClient};
use clap::Args;
use std::io::{BufRead, IsTerminal, Read, Write};
use std::path::Path;

/// Flags of `kiln login`.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Username (asked for on a terminal when missing).
    #[arg(short, long)]
    pub username: Option<String>,
    /// Password; visible in `ps` and shell history, prefer --password-stdin.
    #[arg(short, long, conflicts_with = "password_stdin")]
    pub password: Option<String>,
    /// Read the password from standard input.
    #[arg(long)]
    pub password_stdin: bool,
    /// Registry host, e.g. `ghcr.io` or `127.0.0.1:5000` (default: Docker Hub).
    pub registry: Option<String>,
}

/// Where `kiln login` writes and `kiln logout` erases: `--authfile`, else
/// docker's config.json, else (no `HOME`) kiln's legacy `<root>/auth.json`.
pub(super) fn login_target(root: &Path, registry: &RegistryFlags) -> LoginFile {
    match (&registry.authfile, docker_config_path()) {
        (Some(f), _) => LoginFile::at(f),
        (None, Some(docker)) => LoginFile::at(docker),
        (None, None) => LoginFile::in_root(root),
    }
}

pub fn run(args: LoginArgs, root: &Path, registry_flags: &RegistryFlags) -> Result<i32, CliError> {
    let registry = canonical_registry_name(args.registry.as_deref().unwrap_or(DOCKER_HUB_NAME));
    let username = match args.username {
        Some(u) => u,
        None => prompt("Username: ", true)?,
    };
    if username.is_empty() {
        return Err(CliError("login: username is empty".into()));
    }
    let password = if let Some(p) = args.password {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
        p
    } else if args.password_stdin {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s).map_err(|e| {
            CliError(format!(
                "login: reading password from stdin: {e}",
                e = Chain(&e)
            ))
        })?;
        s.trim_end_matches(['\n', '\r']).to_string()
    } else {
        prompt("Password: ", false)?
    };
    if password.is_empty() {
        return Err(CliError("login: password is empty".into()));
    }
    let creds = Credentials { username, password };
    let mut options = registry_flags.options(root)?;
    options.credentials = Some(creds.clone());
    let client = RegistryClient::new(&registry, &options).map_err(CliError::from_error)?;
    client
        .ping()
        .map_err(|e| CliError(format!("login to {registry} failed: {e}", e = Chain(&e))))?;
    login_target(root, registry_flags)
        .store(&registry, &creds)
        .map_err(CliError::from_error)?;
    println!("Login Succeeded");
    Ok(0)
}

/// Asks on the terminal; `echo` off hides a password. Without a terminal
/// there is nobody to ask.
fn prompt(label: &str, echo: bool) -> Result<String, CliError> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(CliError(format!(
            "login: no terminal to ask for the {}; use {}",
            label.trim_end_matches([':', ' ']).to_lowercase(),
            if echo { "-u USER" } else { "--password-stdin" }
        )));
    }
    eprint!("{label}");
    let _ = std::io::stderr().flush();
    let saved = if echo { None } else { echo_off(&stdin) };
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    if let Some(t) = saved {
        let _ = nix::sys::termios::tcsetattr(&stdin, nix::sys::termios::SetArg::TCSANOW, &t);
        eprintln!();
    }
    read.map_err(|e| CliError(format!("login: reading {label}{e}", e = Chain(&e))))?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

/// Turns terminal echo off; returns the settings to restore.
fn echo_off(stdin: &std::io::Stdin) -> Option<nix::sys::termios::Termios> {
    use nix::sys::termios::{tcgetattr, tcsetattr, LocalFlags, SetArg};
    let saved = tcgetattr(stdin).ok()?;
    let mut t = saved.clone();
    t.local_flags.remove(LocalFlags::ECHO);
    tcsetattr(stdin, SetArg::TCSANOW, &t).ok()?;
    Some(saved)
}
