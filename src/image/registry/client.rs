//! [`RegistryClient`]: one registry host, its credentials, and the
//! manifest operations (blobs are in `blob.rs`).

use super::auth::Scope;
use super::credentials::{self, Credentials, LoginFile};
use super::endpoint::Endpoint;
use super::manifest::{self, FetchedManifest, ACCEPTED, MAX_MANIFEST_SIZE};
use super::proxy::ProxyEnv;
use super::response::{status_error, Subject};
use super::transport::{Call, Connection, Payload, RetryPolicy, Transport};
use super::trust::{self, HostTrust};
use super::RegistryError;
use crate::error_chain::Chain;
use crate::image::digest::Algorithm;
use crate::image::oci::Platform;
use crate::image::Digest;
use std::path::{Path, PathBuf};
use ureq::http::{header, Method, StatusCode};

/// Uploads larger than this go in chunks of this size (`PATCH` with
/// `Content-Range`), so a failure resends one chunk rather than the blob.
pub const DEFAULT_CHUNK_SIZE: u64 = 32 * 1024 * 1024;

/// How to reach registries and whose credentials to use.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Hosts spoken to in plain HTTP (`--insecure-registry`), besides loopback.
    pub insecure_hosts: Vec<String>,
    /// `--tls-verify`: `None` keeps the per-host default, see
    /// [`Endpoint::with_tls_verify`].
    pub tls_verify: Option<bool>,
    /// certs.d roots holding `HOST[:PORT]/` CA and client certificate
    /// directories ([`trust::default_certs_dirs`]).
    pub certs_dirs: Vec<PathBuf>,
    /// Docker-format auth files consulted first, in order: `--authfile`,
    /// then podman's ([`credentials::podman_auth_files`]).
    pub auth_files: Vec<PathBuf>,
    /// kiln's legacy login file (`<root>/auth.json`), consulted next.
    pub login_file: Option<LoginFile>,
    /// Docker's `config.json`, consulted last.
    pub docker_config: Option<PathBuf>,
    /// Credentials to use instead of looking any up (`kiln login` checking
    /// what the user typed).
    pub credentials: Option<Credentials>,
    pub retry: RetryPolicy,
    /// Blobs above this size are uploaded in chunks of this size.
    pub chunk_size: u64,
}

impl Default for ClientOptions {
    /// No credentials, default retries: for anonymous access and tests.
    fn default() -> Self {
        ClientOptions {
            insecure_hosts: Vec::new(),
            tls_verify: None,
            certs_dirs: trust::default_certs_dirs(),
            auth_files: Vec::new(),
            login_file: None,
            docker_config: None,
            credentials: None,
            retry: RetryPolicy::default(),
            chunk_size: DEFAULT_CHUNK_SIZE,
        }
    }
}

impl ClientOptions {
    /// What the CLI uses: credentials from podman's auth files,
    /// `<root>/auth.json`, then docker's config; insecure hosts from the
    /// flags plus the `"insecure-registries"` list of `<root>/config.json`
    /// (docker's daemon.json key).
    pub fn for_root(
        root: &Path,
        mut insecure_hosts: Vec<String>,
    ) -> Result<ClientOptions, RegistryError> {
        insecure_hosts.extend(insecure_registries_in(&root.join(CONFIG_FILE))?);
        Ok(ClientOptions {
            insecure_hosts,
            auth_files: credentials::podman_auth_files(),
            login_file: Some(LoginFile::in_root(root)),
            docker_config: credentials::docker_config_path(),
            ..ClientOptions::default()
        })
    }

    /// Applies `--tls-verify` and `--authfile` (read before every other
    /// auth file).
    pub fn with_flags(mut self, tls_verify: Option<bool>, authfile: Option<&Path>) -> Self {
        self.tls_verify = tls_verify;
        if let Some(f) = authfile {
            self.auth_files.insert(0, f.to_path_buf());
        }
        self
    }
}

/// kiln's settings file in the root; only `insecure-registries` is read here.
pub const CONFIG_FILE: &str = "config.json";

/// The `"insecure-registries": [...]` list of a settings file (missing
/// file: none).
fn insecure_registries_in(path: &Path) -> Result<Vec<String>, RegistryError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(RegistryError::io(format!("reading {}", path.display()), e)),
    };
    let bad = |reason: String| RegistryError::Settings {
        path: path.to_path_buf(),
        reason,
    };
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| bad(Chain(&e).to_string()))?;
    match v.get("insecure-registries") {
        None => Ok(Vec::new()),
        Some(serde_json::Value::Array(items)) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| bad("\"insecure-registries\" must hold strings".into()))
            })
            .collect(),
        Some(_) => Err(bad("\"insecure-registries\" must be a list of hosts".into())),
    }
}

/// A manifest narrowed to one platform, with the index it came from.
#[derive(Debug, Clone)]
pub struct ResolvedManifest {
    /// The image manifest for the platform.
    pub image: FetchedManifest,
    /// The index or manifest list the reference named, if it named one;
    /// its digest is what docker prints as the image's `Digest:`.
    pub index: Option<FetchedManifest>,
}

impl ResolvedManifest {
    /// The digest the reference resolved to (the index's, if any).
    pub fn reference_digest(&self) -> &Digest {
        self.index
            .as_ref()
            .map_or(&self.image.digest, |i| &i.digest)
    }
}

/// A client for one registry. Cheap to share between threads: pulls and
/// pushes run one thread per layer over the same client, sharing its
/// connection pool and token cache.
pub struct RegistryClient {
    pub(crate) transport: Transport,
    pub(crate) chunk_size: u64,
}

impl RegistryClient {
    /// A client for `registry` (as in [`crate::image::ImageRef::registry`]).
    /// Credentials come from `options.credentials`, else the auth files in
    /// [`ClientOptions`]' order (asking the credential helpers they name;
    /// an identity token is exchanged through OAuth2's refresh-token
    /// grant). Reads the TLS trust for the registry (no network).
    pub fn new(registry: &str, options: &ClientOptions) -> Result<RegistryClient, RegistryError> {
        let (endpoint, http_fallback) = Endpoint::resolve(registry, &options.insecure_hosts)
            .with_tls_verify(options.tls_verify);
        let creds = match &options.credentials {
            Some(c) => Some(c.clone()),
            None => {
                let files: Vec<PathBuf> = options
                    .auth_files
                    .iter()
                    .cloned()
                    .chain(options.login_file.iter().map(|l| l.path().to_path_buf()))
                    .chain(options.docker_config.iter().cloned())
                    .collect();
                credentials::lookup(&files, &endpoint.name)?
            }
        };
        // A plain-HTTP registry's token server may still be HTTPS: it gets
        // the system store, but not the registry's certs.d (docker reads
        // those for secure registries only, moby `registry/config.go`
        // `newTLSConfig`).
        let certs_dirs: &[PathBuf] = if endpoint.insecure {
            &[]
        } else {
            &options.certs_dirs
        };
        let skip_verify = options.tls_verify == Some(false);
        let trust = HostTrust::load(endpoint.host(), certs_dirs, skip_verify).map_err(|e| {
            RegistryError::Trust {
                registry: endpoint.name.clone(),
                reason: Chain(&e).to_string(),
            }
        })?;
        tracing::debug!(registry = %endpoint.name, url = %endpoint.base_url, logged_in = creds.is_some(), "registry client");
        let connection = Connection {
            trust,
            http_fallback,
            proxies: ProxyEnv::from_env(),
        };
        Ok(RegistryClient {
            transport: Transport::new(endpoint, creds, options.retry.clone(), connection),
            chunk_size: options.chunk_size.max(1),
        })
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.transport.endpoint
    }

    /// Whether credentials are configured for this registry.
    pub fn has_credentials(&self) -> bool {
        self.transport.has_credentials()
    }

    /// `GET /v2/`: checks that the registry speaks the API and, with
    /// credentials, that it accepts them (what `kiln login` verifies).
    pub fn ping(&self) -> Result<(), RegistryError> {
        let mut call = Call {
            method: Method::GET,
            url: self.endpoint().v2_url(),
            headers: Vec::new(),
            payload: Payload::Empty,
            scope: Scope::none(),
            repository: "",
        };
        let mut resp = self.transport.send(&mut call)?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(status_error(&call, &mut resp, None))
        }
    }

    /// Fetches a manifest or index by tag or digest, exactly as stored. A
    /// digest reference is verified against the bytes; a tag's digest is
    /// computed from them (and checked against `Docker-Content-Digest`).
    pub fn get_manifest(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<FetchedManifest, RegistryError> {
        let registry = self.endpoint().name.clone();
        let mut call = Call {
            method: Method::GET,
            url: self.manifest_url(repository, reference),
            headers: vec![("Accept", ACCEPTED.join(", "))],
            payload: Payload::Empty,
            scope: Scope::pull(repository),
            repository,
        };
        // A manifest is small: a body cut short is simply fetched again.
        let attempts = self.transport.retry.attempts.max(1);
        let mut tries = 0;
        let (bytes, content_type, header_digest) = loop {
            tries += 1;
            let mut resp = self.transport.send(&mut call)?;
            if resp.status() != StatusCode::OK {
                return Err(status_error(
                    &call,
                    &mut resp,
                    Some(Subject::Manifest(reference)),
                ));
            }
            let header_digest = resp
                .headers()
                .get("Docker-Content-Digest")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<Digest>().ok());
            let content_type = resp
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.split(';').next().unwrap_or("").trim().to_string())
                .unwrap_or_default();
            match resp
                .body_mut()
                .with_config()
                .limit(MAX_MANIFEST_SIZE + 1)
                .read_to_vec()
            {
                Ok(bytes) => break (bytes, content_type, header_digest),
                Err(ureq::Error::BodyExceedsLimit(_)) => {
                    return Err(RegistryError::ManifestTooLarge {
                        registry,
                        repository: repository.to_string(),
                        reference: reference.to_string(),
                        limit: MAX_MANIFEST_SIZE,
                    })
                }
                Err(e) if tries >= attempts => {
                    return Err(RegistryError::ConnectionClosed {
                        registry,
                        what: format!("manifest {repository}:{reference} ({e})", e = Chain(&e)),
                        received: 0,
                        of_total: String::new(),
                        attempts: tries,
                    })
                }
                Err(e) => {
                    tracing::debug!(%repository, %reference, "manifest body cut short ({e}); retrying", e = Chain(&e));
                    std::thread::sleep(self.transport.retry.backoff(tries + 1, None));
                }
            }
        };
        // Registries that predate OCI, or static file servers, send a
        // generic type; the manifest says what it is.
        let media_type = if manifest::is_supported(&content_type) {
            content_type
        } else {
            match manifest::sniff_media_type(&bytes) {
                Some(mt) => mt,
                None if content_type.is_empty() => "(none)".to_string(),
                None => content_type,
            }
        };
        if !manifest::is_supported(&media_type) {
            return Err(RegistryError::UnsupportedMediaType {
                registry,
                repository: repository.to_string(),
                reference: reference.to_string(),
                media_type,
            });
        }
        let digest = Digest::sha256_of(&bytes);
        let mismatch = |expected: Digest, what: &str| RegistryError::DigestMismatch {
            what: format!("{what} from {registry}/{repository}"),
            expected,
            actual: digest.clone(),
        };
        if let Ok(pinned) = reference.parse::<Digest>() {
            if pinned.algorithm() != Algorithm::Sha256 {
                return Err(mismatch(
                    pinned,
                    "manifest (only sha256 digests can be verified)",
                ));
            }
            if pinned != digest {
                return Err(mismatch(pinned, &format!("manifest {reference}")));
            }
        } else if let Some(h) = header_digest {
            if h.algorithm() == Algorithm::Sha256 && h != digest {
                return Err(mismatch(
                    h,
                    &format!("manifest {reference} (Docker-Content-Digest)"),
                ));
            }
        }
        Ok(FetchedManifest {
            bytes,
            media_type,
            digest,
        })
    }

    /// Fetches `reference` and, if it is an index, the manifest in it for
    /// `platform` (verified against the index's digest).
    pub fn resolve_manifest(
        &self,
        repository: &str,
        reference: &str,
        platform: &Platform,
    ) -> Result<ResolvedManifest, RegistryError> {
        let first = self.get_manifest(repository, reference)?;
        if !first.is_index() {
            return Ok(ResolvedManifest {
                image: first,
                index: None,
            });
        }
        let entry = manifest::select_platform(&first.bytes, platform)?;
        let image = self.get_manifest(repository, &entry.digest.to_string())?;
        if image.is_index() {
            return Err(RegistryError::BadIndex(format!(
                "{} in {repository} points for {platform} to another index {}; nested indexes are not supported",
                first.digest, image.digest
            )));
        }
        Ok(ResolvedManifest {
            image,
            index: Some(first),
        })
    }

    /// Uploads a manifest under a tag or its digest; returns its digest.
    /// Its blobs (and, for an index, its manifests) must already be there.
    pub fn put_manifest(
        &self,
        repository: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<Digest, RegistryError> {
        let mut call = Call {
            method: Method::PUT,
            url: self.manifest_url(repository, reference),
            headers: vec![("Content-Type", media_type.to_string())],
            payload: Payload::Bytes(bytes),
            scope: Scope::push(repository),
            repository,
        };
        let mut resp = self.transport.send(&mut call)?;
        if resp.status() != StatusCode::CREATED && !resp.status().is_success() {
            return Err(status_error(
                &call,
                &mut resp,
                Some(Subject::Manifest(reference)),
            ));
        }
        let digest = Digest::sha256_of(bytes);
        if let Some(h) = resp
            .headers()
            .get("Docker-Content-Digest")
            .and_then(|v| v.to_str().ok())
        {
            if h != digest.to_string() {
                tracing::warn!(registry = %self.endpoint().name, %repository, "registry reports manifest digest {h}, kiln computed {digest}");
            }
        }
        Ok(digest)
    }

    fn manifest_url(&self, repository: &str, reference: &str) -> String {
        format!(
            "{}{repository}/manifests/{reference}",
            self.endpoint().v2_url()
        )
    }

    pub(crate) fn blob_url(&self, repository: &str, digest: &Digest) -> String {
        format!("{}{repository}/blobs/{digest}", self.endpoint().v2_url())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insecure_registries_come_from_flags_and_config() {
        let dir = tempfile::tempdir().unwrap();
        let opts = ClientOptions::for_root(dir.path(), vec!["a:1".into()]).unwrap();
        assert_eq!(opts.insecure_hosts, ["a:1"]);
        std::fs::write(
            dir.path().join(CONFIG_FILE),
            r#"{"insecure-registries":["b.lan:5000"],"other":1}"#,
        )
        .unwrap();
        let opts = ClientOptions::for_root(dir.path(), vec!["a:1".into()]).unwrap();
        assert_eq!(opts.insecure_hosts, ["a:1", "b.lan:5000"]);
        std::fs::write(
            dir.path().join(CONFIG_FILE),
            r#"{"insecure-registries":"x"}"#,
        )
        .unwrap();
        let e = ClientOptions::for_root(dir.path(), vec![]).unwrap_err();
        assert!(e.to_string().contains("must be a list of hosts"), "{e}");
    }
}
