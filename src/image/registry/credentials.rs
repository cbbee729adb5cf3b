//! Registry credentials in docker-format auth files: docker's
//! `~/.docker/config.json`, podman's `auth.json`, kiln's legacy
//! `<root>/auth.json` and any `--authfile`.
//!
//! All use docker's format, `{"auths": {"HOST": {"auth": base64("user:pass")}}}`,
//! plus `credsStore` / `credHelpers` naming a credential helper
//! ([`super::cred_helper`]) that keeps the secret instead. Keys are
//! compared after [`canonical_registry_name`], so
//! `https://index.docker.io/v1/` (what `docker login` writes for Docker Hub)
//! finds `docker.io`.

use super::cred_helper::{CredentialHelper, IDENTITY_TOKEN_USER};
use super::endpoint::{canonical_registry_name, DOCKER_HUB_NAME};
use crate::error_chain::Chain;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine as _;
use serde_json::{Map, Value};
use std::fmt;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

/// A username and password (or access token used as one) for a registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for Credentials {
    /// Never prints the password: errors and logs may show credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credentials({}:<redacted>)", self.username)
    }
}

impl Credentials {
    /// Whether `password` is an identity (OAuth2 refresh) token, as a
    /// credential helper marks it with the username `<token>`.
    pub fn is_identity_token(&self) -> bool {
        self.username == IDENTITY_TOKEN_USER
    }

    /// The value of an `Authorization: Basic` header and of a config.json
    /// `auth` field.
    pub fn basic_token(&self) -> String {
        STANDARD.encode(format!("{}:{}", self.username, self.password))
    }
}

/// Why credentials could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("reading credentials file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid credentials file {path}: {reason}")]
    Parse { path: PathBuf, reason: String },
    #[error("writing credentials file {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A credential helper failed; `detail` carries its exit status and
    /// what it printed.
    #[error("{program} {action} for {server} failed: {detail}")]
    Helper {
        program: String,
        action: &'static str,
        server: String,
        detail: String,
    },
}

/// A docker-format auth file (mode 0600) that `kiln login` writes: docker's
/// config.json, an `--authfile`, or kiln's legacy `<root>/auth.json`. When
/// the file names a credential helper for a registry, the secret goes to
/// the helper instead, as `docker login` does.
#[derive(Debug, Clone)]
pub struct LoginFile {
    path: PathBuf,
}

impl LoginFile {
    /// The login file at an explicit path.
    pub fn at(path: impl Into<PathBuf>) -> LoginFile {
        LoginFile { path: path.into() }
    }

    /// `<root>/auth.json`: logins belong to the store they were made for,
    /// so `--root` isolates them like everything else.
    pub fn in_root(root: &Path) -> LoginFile {
        LoginFile::at(root.join("auth.json"))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The credentials stored for `registry`, if any.
    pub fn get(&self, registry: &str) -> Result<Option<Credentials>, CredentialError> {
        match read_config(&self.path)? {
            Some(config) => lookup_in_config(&self.path, &config, registry),
            None => Ok(None),
        }
    }

    /// The helper this file hands `registry`'s secret to, if any.
    pub fn helper_for(&self, registry: &str) -> Result<Option<CredentialHelper>, CredentialError> {
        Ok(read_config(&self.path)?
            .and_then(|c| helper_in_config(&c, &canonical_registry_name(registry))))
    }

    /// Stores (replacing) the credentials for `registry`, keeping every other
    /// entry. The file is replaced atomically and is never readable by others.
    /// With a helper configured for `registry`, the helper keeps them
    /// (docker/cli `cli/config/credentials/native_store.go` `Store`).
    pub fn store(&self, registry: &str, creds: &Credentials) -> Result<(), CredentialError> {
        if let Some(helper) = self.helper_for(registry)? {
            return helper.store(&helper_server_url(registry), creds);
        }
        let mut config = read_config(&self.path)?.unwrap_or_else(|| Value::Object(Map::new()));
        let auths = auths_mut(&self.path, &mut config)?;
        let key = canonical_registry_name(registry);
        auths.retain(|k, _| canonical_registry_name(k) != key);
        let mut entry = Map::new();
        entry.insert("auth".into(), Value::String(creds.basic_token()));
        // Docker looks Docker Hub up by its legacy index URL only.
        auths.insert(helper_server_url(registry), Value::Object(entry));
        self.write(&config)
    }

    /// Forgets `registry` (in its helper too, if one is configured);
    /// returns whether there was anything to forget.
    pub fn remove(&self, registry: &str) -> Result<bool, CredentialError> {
        let Some(mut config) = read_config(&self.path)? else {
            return Ok(false);
        };
        let key = canonical_registry_name(registry);
        let erased = match helper_in_config(&config, &key) {
            Some(helper) => helper.erase(&helper_server_url(registry))?,
            None => false,
        };
        let auths = auths_mut(&self.path, &mut config)?;
        let before = auths.len();
        auths.retain(|k, _| canonical_registry_name(k) != key);
        if auths.len() == before {
            return Ok(erased);
        }
        self.write(&config)?;
        Ok(true)
    }

    fn write(&self, config: &Value) -> Result<(), CredentialError> {
        let werr = |source| CredentialError::Write {
            path: self.path.clone(),
            source,
        };
        // A symlinked config.json (dotfiles repositories, mounted
        // secrets) is updated where it points, not replaced by a file, as
        // docker/cli `cli/config/configfile/file.go` `Save` does.
        let target = match fs::symlink_metadata(&self.path) {
            Ok(m) if m.file_type().is_symlink() => fs::canonicalize(&self.path).map_err(werr)?,
            _ => self.path.clone(),
        };
        let dir = target.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir).map_err(werr)?;
        let tmp = dir.join(format!(".auth.json.{}.tmp", std::process::id()));
        let body = serde_json::to_vec_pretty(config).map_err(|e| werr(e.into()))?;
        let result = (|| {
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            // mode() is filtered by the umask and ignored for an existing file.
            f.set_permissions(fs::Permissions::from_mode(0o600))?;
            f.write_all(&body)?;
            f.write_all(b"\n")?;
            f.sync_all()?;
            fs::rename(&tmp, &target)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result.map_err(werr)
    }
}

/// Docker's config file: `$DOCKER_CONFIG/config.json`, else
/// `~/.docker/config.json`.
pub fn docker_config_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker/config.json"))
}

/// podman's auth files, in containers/image's order
/// (`pkg/docker/config/config.go` `getAuthFilePaths`/`getPathToAuth`):
/// `REGISTRY_AUTH_FILE`, else `$XDG_RUNTIME_DIR/containers/auth.json`
/// (`/run/containers/UID/auth.json` without it), then
/// `$XDG_CONFIG_HOME/containers/auth.json` (`~/.config/…`). Docker's
/// config.json, which podman reads next, is [`docker_config_path`].
pub fn podman_auth_files() -> Vec<PathBuf> {
    let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    let mut files = Vec::new();
    if let Some(f) = var("REGISTRY_AUTH_FILE") {
        files.push(PathBuf::from(f));
    } else if let Some(dir) = var("XDG_RUNTIME_DIR") {
        files.push(PathBuf::from(dir).join("containers/auth.json"));
    } else {
        files.push(PathBuf::from(format!(
            "/run/containers/{}/auth.json",
            rustix::process::getuid().as_raw()
        )));
    }
    if let Some(dir) = var("XDG_CONFIG_HOME") {
        files.push(PathBuf::from(dir).join("containers/auth.json"));
    } else if let Some(home) = var("HOME") {
        files.push(PathBuf::from(home).join(".config/containers/auth.json"));
    }
    files
}

/// Credentials for `registry` from the first of `files` (docker-format auth
/// files, missing ones skipped) that has any, asking the credential helper
/// a file names for it.
pub fn lookup(files: &[PathBuf], registry: &str) -> Result<Option<Credentials>, CredentialError> {
    for path in files {
        if let Some(config) = read_config(path)? {
            if let Some(c) = lookup_in_config(path, &config, registry)? {
                return Ok(Some(c));
            }
        }
    }
    Ok(None)
}

/// The server URL docker hands a helper, and keys `auths` by, for
/// `registry`: Docker Hub's legacy index URL, else the host (docker/cli
/// `cli/config/configfile` `GetAuthConfig` keys).
fn helper_server_url(registry: &str) -> String {
    let name = canonical_registry_name(registry);
    if name == DOCKER_HUB_NAME {
        "https://index.docker.io/v1/".to_string()
    } else {
        name
    }
}

/// `credHelpers[registry]`, else `credsStore` (docker/cli
/// `cli/config/configfile/file.go` `getConfiguredCredentialStore`).
fn helper_in_config(config: &Value, key: &str) -> Option<CredentialHelper> {
    config
        .get("credHelpers")
        .and_then(Value::as_object)
        .and_then(|h| {
            h.iter()
                .find(|(k, _)| canonical_registry_name(k) == key)
                .and_then(|(_, v)| v.as_str())
        })
        .or_else(|| config.get("credsStore").and_then(Value::as_str))
        .filter(|h| !h.is_empty())
        .map(CredentialHelper::named)
}

/// Reads a docker-format config; a missing file is `None`.
fn read_config(path: &Path) -> Result<Option<Value>, CredentialError> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(CredentialError::Read {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    if text.trim().is_empty() {
        return Ok(None);
    }
    let value: Value = serde_json::from_str(&text).map_err(|e| CredentialError::Parse {
        path: path.to_path_buf(),
        reason: Chain(&e).to_string(),
    })?;
    if !value.is_object() {
        return Err(CredentialError::Parse {
            path: path.to_path_buf(),
            reason: "expected a JSON object".into(),
        });
    }
    Ok(Some(value))
}

fn auths_mut<'a>(
    path: &Path,
    config: &'a mut Value,
) -> Result<&'a mut Map<String, Value>, CredentialError> {
    let bad = |reason: &str| CredentialError::Parse {
        path: path.to_path_buf(),
        reason: reason.into(),
    };
    let obj = config
        .as_object_mut()
        .ok_or_else(|| bad("expected a JSON object"))?;
    obj.entry("auths")
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
        .ok_or_else(|| bad("\"auths\" is not an object"))
}

/// Finds `registry` in a docker-format config: the helper it names for the
/// registry (docker's order: `credHelpers`, then `credsStore`), else, when
/// the helper has nothing, an `auths` entry with credentials.
fn lookup_in_config(
    path: &Path,
    config: &Value,
    registry: &str,
) -> Result<Option<Credentials>, CredentialError> {
    let key = canonical_registry_name(registry);
    let parse_err = |reason: String| CredentialError::Parse {
        path: path.to_path_buf(),
        reason,
    };
    if let Some(helper) = helper_in_config(config, &key) {
        if let Some(c) = helper.get(&helper_server_url(registry))? {
            return Ok(Some(c));
        }
    }
    if let Some(auths) = config.get("auths").and_then(Value::as_object) {
        for (k, entry) in auths {
            if canonical_registry_name(k) != key {
                continue;
            }
            if let Some(c) = entry_credentials(entry)
                .map_err(|r| parse_err(format!("auths entry {k:?}: {r}")))?
            {
                return Ok(Some(c));
            }
        }
    }
    Ok(None)
}

/// An `auths` entry: base64 `auth`, or `username` + `password`. An empty
/// entry (docker leaves `{}` when a helper holds the secret) is `None`.
fn entry_credentials(entry: &Value) -> Result<Option<Credentials>, String> {
    if let Some(auth) = entry.get("auth").and_then(Value::as_str) {
        if !auth.is_empty() {
            let raw = STANDARD
                .decode(auth.trim())
                .or_else(|_| STANDARD_NO_PAD.decode(auth.trim()))
                .map_err(|e| format!("\"auth\" is not base64: {e}", e = Chain(&e)))?;
            let text = String::from_utf8(raw).map_err(|_| "\"auth\" is not UTF-8".to_string())?;
            let (user, pass) = text
                .split_once(':')
                .ok_or("\"auth\" does not decode to user:password")?;
            return Ok(Some(Credentials {
                username: user.to_string(),
                password: pass.to_string(),
            }));
        }
    }
    let user = entry.get("username").and_then(Value::as_str);
    let pass = entry.get("password").and_then(Value::as_str);
    match (user, pass) {
        (Some(u), Some(p)) if !u.is_empty() => Ok(Some(Credentials {
            username: u.to_string(),
            password: p.to_string(),
        })),
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(u: &str, p: &str) -> Credentials {
        Credentials {
            username: u.into(),
            password: p.into(),
        }
    }

    /// Looks `registry` up in a docker config holding `json`.
    fn check(json: &str, registry: &str, want: Result<Option<Credentials>, &str>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        fs::write(&path, json).unwrap();
        match (lookup(&[path], registry), want) {
            (Ok(got), Ok(want)) => assert_eq!(got, want, "{json}"),
            (Err(e), Err(fragment)) => {
                assert!(e.to_string().contains(fragment), "{e} lacks {fragment}")
            }
            (got, want) => panic!("{json}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn reads_docker_config() {
        let hub = r#"{"auths":{"https://index.docker.io/v1/":{"auth":"dTpwOng="}}}"#;
        check(hub, "docker.io", Ok(Some(creds("u", "p:x"))));
        check(hub, "ghcr.io", Ok(None));
        check(
            r#"{"auths":{"127.0.0.1:5000":{"username":"a","password":"b"}}}"#,
            "127.0.0.1:5000",
            Ok(Some(creds("a", "b"))),
        );
        check(
            r#"{"auths":{"http://reg:1/v2/":{"auth":"YTpi"}}}"#,
            "reg:1",
            Ok(Some(creds("a", "b"))),
        );
        check("", "docker.io", Ok(None));
        check("{}", "docker.io", Ok(None));
    }

    #[test]
    fn reports_missing_helpers_and_garbage() {
        check(
            r#"{"auths":{"https://index.docker.io/v1/":{}},"credsStore":"kiln-absent"}"#,
            "docker.io",
            Err("docker-credential-kiln-absent get for https://index.docker.io/v1/ failed: docker-credential-kiln-absent is not on PATH"),
        );
        check(
            r#"{"credHelpers":{"gcr.io":"kiln-absent-gcloud"}}"#,
            "gcr.io",
            Err("docker-credential-kiln-absent-gcloud get for gcr.io"),
        );
        check(
            r#"{"credHelpers":{"gcr.io":"gcloud"}}"#,
            "ghcr.io",
            Ok(None),
        );
        check(
            r#"{"auths":{"x.io":{"auth":"!!"}}}"#,
            "x.io",
            Err("not base64"),
        );
        check(
            r#"{"auths":{"x.io":{"auth":"YWI="}}}"#,
            "x.io",
            Err("user:password"),
        );
        check("[1]", "x.io", Err("expected a JSON object"));
        check("{", "x.io", Err("invalid credentials file"));
    }

    #[test]
    fn login_file_round_trip_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let login = LoginFile::in_root(&dir.path().join("root"));
        assert_eq!(login.get("docker.io").unwrap(), None);
        login.store("index.docker.io", &creds("u", "p")).unwrap();
        login.store("127.0.0.1:5000", &creds("a", "b")).unwrap();
        login.store("docker.io", &creds("u2", "p2")).unwrap();
        assert_eq!(login.get("docker.io").unwrap(), Some(creds("u2", "p2")));
        assert_eq!(login.get("127.0.0.1:5000").unwrap(), Some(creds("a", "b")));
        // Keyed as docker keys them, so docker finds kiln's logins.
        let text = fs::read_to_string(login.path()).unwrap();
        assert!(text.contains("\"https://index.docker.io/v1/\""), "{text}");
        assert!(text.contains("\"127.0.0.1:5000\""), "{text}");
        let mode = fs::metadata(login.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // The first file with credentials wins.
        let docker = dir.path().join("config.json");
        fs::write(&docker, r#"{"auths":{"docker.io":{"auth":"eDp5"}}}"#).unwrap();
        let files = [login.path().to_path_buf(), docker];
        assert_eq!(
            lookup(&files, "docker.io").unwrap(),
            Some(creds("u2", "p2"))
        );
        assert!(login.remove("docker.io").unwrap());
        assert!(!login.remove("docker.io").unwrap());
        assert_eq!(lookup(&files, "docker.io").unwrap(), Some(creds("x", "y")));
        assert_eq!(login.get("127.0.0.1:5000").unwrap(), Some(creds("a", "b")));
    }

    #[test]
    fn a_symlinked_file_is_written_through_the_link() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("dotfiles/config.json");
        fs::create_dir_all(real.parent().unwrap()).unwrap();
        fs::write(&real, r#"{"credsStore":""}"#).unwrap();
        let link = dir.path().join("config.json");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        LoginFile::at(&link)
            .store("ghcr.io", &creds("a", "b"))
            .unwrap();
        assert!(fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(
            LoginFile::at(&real).get("ghcr.io").unwrap(),
            Some(creds("a", "b"))
        );
    }

    #[test]
    fn debug_hides_password() {
        let s = format!("{:?}", creds("me", "hunter2"));
        assert!(!s.contains("hunter2"), "{s}");
    }
}
