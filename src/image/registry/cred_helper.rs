//! Docker credential helpers: `docker-credential-NAME get|store|erase`
//! programs on `PATH`, as named by `credsStore` / `credHelpers` in docker's
//! config.json.
//!
//! The protocol (docker/docker-credential-helpers `client/client.go` and
//! `credentials/credentials.go`): `get` reads the server URL on stdin and
//! prints `{"ServerURL","Username","Secret"}`; `store` reads that JSON;
//! `erase` reads the server URL. A helper that has nothing for the server
//! prints `credentials not found in native keychain` and exits non-zero.
//! A `<token>` username means `Secret` is an identity (refresh) token.

use super::credentials::{CredentialError, Credentials};
use std::io::{Seek as _, Write as _};
use std::process::{Command, Stdio};

/// docker-credential-helpers' `credentials.errCredentialsNotFoundMessage`.
const NOT_FOUND: &str = "credentials not found in native keychain";

/// The username helpers return for an identity token.
pub const IDENTITY_TOKEN_USER: &str = "<token>";

/// One helper program, `docker-credential-NAME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialHelper {
    name: String,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct HelperCredentials {
    #[serde(rename = "ServerURL", default)]
    server_url: String,
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

impl CredentialHelper {
    /// The helper `credsStore`/`credHelpers` names `name`.
    pub fn named(name: &str) -> CredentialHelper {
        CredentialHelper {
            name: name.to_string(),
        }
    }

    /// `docker-credential-NAME`.
    pub fn program(&self) -> String {
        format!("docker-credential-{}", self.name)
    }

    /// The credentials the helper keeps for `server`; `None` when it has
    /// none.
    pub fn get(&self, server: &str) -> Result<Option<Credentials>, CredentialError> {
        let out = match self.run("get", server.as_bytes()) {
            Ok(out) => out,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e.into_error(self, "get", server)),
        };
        let parsed: HelperCredentials =
            serde_json::from_slice(&out).map_err(|e| CredentialError::Helper {
                program: self.program(),
                action: "get",
                server: server.to_string(),
                detail: format!("its output is not the credentials JSON: {e}"),
            })?;
        if parsed.username.is_empty() && parsed.secret.is_empty() {
            return Ok(None);
        }
        Ok(Some(Credentials {
            username: parsed.username,
            password: parsed.secret,
        }))
    }

    /// Keeps `creds` for `server` (what `docker login` does with a helper).
    pub fn store(&self, server: &str, creds: &Credentials) -> Result<(), CredentialError> {
        let body = serde_json::to_vec(&HelperCredentials {
            server_url: server.to_string(),
            username: creds.username.clone(),
            secret: creds.password.clone(),
        })
        .expect("serializing strings");
        self.run("store", &body)
            .map(drop)
            .map_err(|e| e.into_error(self, "store", server))
    }

    /// Forgets `server`; `false` when the helper had nothing for it.
    pub fn erase(&self, server: &str) -> Result<bool, CredentialError> {
        match self.run("erase", server.as_bytes()) {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e.into_error(self, "erase", server)),
        }
    }

    fn run(&self, action: &str, input: &[u8]) -> Result<Vec<u8>, HelperFailure> {
        // The input goes in a memory file, not a pipe: a helper that exits
        // without reading it must not kill kiln with SIGPIPE (kiln keeps
        // the default disposition), and nothing can deadlock.
        let stdin = (|| {
            let fd = rustix::fs::memfd_create(
                "kiln-credential-helper",
                rustix::fs::MemfdFlags::CLOEXEC,
            )?;
            let mut f = std::fs::File::from(fd);
            f.write_all(input)?;
            f.seek(std::io::SeekFrom::Start(0))?;
            Ok::<_, std::io::Error>(f)
        })()
        .map_err(HelperFailure::Spawn)?;
        let out = Command::new(self.program())
            .arg(action)
            .stdin(Stdio::from(stdin))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .map_err(HelperFailure::Spawn)?;
        if out.status.success() {
            return Ok(out.stdout);
        }
        Err(HelperFailure::Exit {
            status: out.status.to_string(),
            // Helpers print their error on stdout (the protocol's
            // channel), some on stderr: keep both.
            output: [out.stdout, out.stderr]
                .iter()
                .map(|b| String::from_utf8_lossy(b).trim().to_string())
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join("; "),
        })
    }
}

enum HelperFailure {
    Spawn(std::io::Error),
    Exit { status: String, output: String },
}

impl HelperFailure {
    fn is_not_found(&self) -> bool {
        matches!(self, HelperFailure::Exit { output, .. } if output.contains(NOT_FOUND))
    }

    fn into_error(
        self,
        helper: &CredentialHelper,
        action: &'static str,
        server: &str,
    ) -> CredentialError {
        let detail = match self {
            HelperFailure::Spawn(e) if e.kind() == std::io::ErrorKind::NotFound => {
                format!("{} is not on PATH", helper.program())
            }
            HelperFailure::Spawn(e) => format!("cannot run it: {e}"),
            HelperFailure::Exit { status, output } if output.is_empty() => status,
            HelperFailure::Exit { status, output } => format!("{status}: {output}"),
        };
        CredentialError::Helper {
            program: helper.program(),
            action,
            server: server.to_string(),
            detail,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_is_the_protocols_message() {
        let f = HelperFailure::Exit {
            status: "exit status: 1".into(),
            output: NOT_FOUND.into(),
        };
        assert!(f.is_not_found());
        let f = HelperFailure::Exit {
            status: "exit status: 1".into(),
            output: "keychain locked".into(),
        };
        assert!(!f.is_not_found());
        let e = f.into_error(&CredentialHelper::named("pass"), "get", "ghcr.io");
        assert_eq!(
            e.to_string(),
            "docker-credential-pass get for ghcr.io failed: exit status: 1: keychain locked"
        );
    }

    #[test]
    fn a_missing_helper_is_named() {
        let h = CredentialHelper::named("kiln-test-absent-helper");
        let e = h.get("ghcr.io").unwrap_err().to_string();
        assert!(
            e.contains("docker-credential-kiln-test-absent-helper is not on PATH"),
            "{e}"
        );
    }
}
