//! Registry credentials: kiln's own login file and docker's
//! `~/.docker/config.json`.
//!
//! Both use docker's format, `{"auths": {"HOST": {"auth": base64("user:pass")}}}`,
//! so a kiln login file can be handed to docker or skopeo (`--authfile`) and
//! back. Keys are compared after [`canonical_registry_name`], so
//! `https://index.docker.io/v1/` (what `docker login` writes for Docker Hub)
//! finds `docker.io`.

use super::endpoint::canonical_registry_name;
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
    #[error("{path}: credentials for {registry} are kept by the credential helper docker-credential-{helper}, which kiln does not support; run `kiln login {registry}` to give kiln its own")]
    HelperUnsupported {
        path: PathBuf,
        registry: String,
        helper: String,
    },
}

/// kiln's login file (docker's format, mode 0600), written by `kiln login`.
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

    /// Stores (replacing) the credentials for `registry`, keeping every other
    /// entry. The file is replaced atomically and is never readable by others.
    pub fn store(&self, registry: &str, creds: &Credentials) -> Result<(), CredentialError> {
        let mut config = read_config(&self.path)?.unwrap_or_else(|| Value::Object(Map::new()));
        let auths = auths_mut(&self.path, &mut config)?;
        let key = canonical_registry_name(registry);
        auths.retain(|k, _| canonical_registry_name(k) != key);
        let mut entry = Map::new();
        entry.insert("auth".into(), Value::String(creds.basic_token()));
        auths.insert(key, Value::Object(entry));
        self.write(&config)
    }

    /// Forgets `registry`; returns whether there was anything to forget.
    pub fn remove(&self, registry: &str) -> Result<bool, CredentialError> {
        let Some(mut config) = read_config(&self.path)? else {
            return Ok(false);
        };
        let auths = auths_mut(&self.path, &mut config)?;
        let key = canonical_registry_name(registry);
        let before = auths.len();
        auths.retain(|k, _| canonical_registry_name(k) != key);
        if auths.len() == before {
            return Ok(false);
        }
        self.write(&config)?;
        Ok(true)
    }

    fn write(&self, config: &Value) -> Result<(), CredentialError> {
        let werr = |source| CredentialError::Write {
            path: self.path.clone(),
            source,
        };
        let dir = self.path.parent().unwrap_or(Path::new("."));
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
            fs::rename(&tmp, &self.path)
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

/// Credentials for `registry`: kiln's login file first, then docker's
/// config. A registry whose docker credentials live in a credential helper
/// is an error ([`CredentialError::HelperUnsupported`]) so the user learns why
/// they are not used.
pub fn lookup(
    login: Option<&LoginFile>,
    docker_config: Option<&Path>,
    registry: &str,
) -> Result<Option<Credentials>, CredentialError> {
    if let Some(login) = login {
        if let Some(c) = login.get(registry)? {
            return Ok(Some(c));
        }
    }
    if let Some(path) = docker_config {
        if let Some(config) = read_config(path)? {
            return lookup_in_config(path, &config, registry);
        }
    }
    Ok(None)
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

/// Finds `registry` in a docker-format config, honouring docker's order:
/// an `auths` entry with credentials, else a per-registry `credHelpers`
/// entry or the global `credsStore` (unsupported, reported as such).
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
    let helper = config
        .get("credHelpers")
        .and_then(Value::as_object)
        .and_then(|h| {
            h.iter()
                .find(|(k, _)| canonical_registry_name(k) == key)
                .and_then(|(_, v)| v.as_str())
        })
        .or_else(|| config.get("credsStore").and_then(Value::as_str))
        .filter(|h| !h.is_empty());
    if let Some(helper) = helper {
        return Err(CredentialError::HelperUnsupported {
            path: path.to_path_buf(),
            registry: key,
            helper: helper.to_string(),
        });
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
        match (lookup(None, Some(&path), registry), want) {
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
    fn reports_helpers_and_garbage() {
        check(
            r#"{"auths":{"https://index.docker.io/v1/":{}},"credsStore":"desktop"}"#,
            "docker.io",
            Err("docker-credential-desktop, which kiln does not support"),
        );
        check(
            r#"{"credHelpers":{"gcr.io":"gcloud"}}"#,
            "gcr.io",
            Err("docker-credential-gcloud"),
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
        let mode = fs::metadata(login.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // kiln's file wins over docker's.
        let docker = dir.path().join("config.json");
        fs::write(&docker, r#"{"auths":{"docker.io":{"auth":"eDp5"}}}"#).unwrap();
        assert_eq!(
            lookup(Some(&login), Some(&docker), "docker.io").unwrap(),
            Some(creds("u2", "p2"))
        );
        assert!(login.remove("docker.io").unwrap());
        assert!(!login.remove("docker.io").unwrap());
        assert_eq!(
            lookup(Some(&login), Some(&docker), "docker.io").unwrap(),
            Some(creds("x", "y"))
        );
        assert_eq!(login.get("127.0.0.1:5000").unwrap(), Some(creds("a", "b")));
    }

    #[test]
    fn debug_hides_password() {
        let s = format!("{:?}", creds("me", "hunter2"));
        assert!(!s.contains("hunter2"), "{s}");
    }
}
