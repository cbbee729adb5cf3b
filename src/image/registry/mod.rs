//! Client for the OCI distribution API (`/v2/`), as spoken by Docker Hub,
//! distribution/registry, ghcr.io and friends.
//!
//! Map:
//! - [`endpoint`]: registry host → base URL (HTTP for loopback and hosts named
//!   insecure, HTTPS otherwise; `docker.io` → `registry-1.docker.io`).
//! - [`credentials`]: docker-format auth files (docker's config.json,
//!   podman's auth.json, `--authfile`, kiln's legacy `<root>/auth.json`):
//!   reading, and writing them (0600); [`cred_helper`]: the
//!   `docker-credential-*` programs they may name.
//! - [`trust`]: what TLS trusts (system store, `SSL_CERT_FILE`/`SSL_CERT_DIR`,
//!   docker's and podman's `certs.d`) and client certificates;
//!   [`proxy`]: `HTTPS_PROXY`/`HTTP_PROXY`/`NO_PROXY` with Go's rules.
//! - `auth`: `WWW-Authenticate` challenges, bearer tokens cached per scope.
//! - `transport`: one request with auth, proxy, retries and backoff;
//!   `failure`: which failures are retried (a certificate error never is).
//! - `response`: registry error bodies mapped to [`RegistryError`].
//! - [`manifest`]: accepted media types, fetched manifests and choosing one
//!   platform out of an index.
//! - `client` and `blob`: the operations, on [`RegistryClient`].
//!
//! **Invariant:** nothing here touches the image store: blobs go to a
//! caller's `Write` (or file) and come from a caller's `Read`, and every byte
//! received is checked against the digest the caller asked for before the
//! call returns `Ok`.

pub mod cred_helper;
pub mod credentials;
pub mod endpoint;
pub mod manifest;
pub mod proxy;
pub mod trust;

mod auth;
mod blob;
mod client;
mod failure;
mod response;
mod transport;

pub use crate::image::oci::Platform;
pub use blob::UploadSession;
pub use client::{ClientOptions, RegistryClient, ResolvedManifest, DEFAULT_CHUNK_SIZE};
pub use credentials::{CredentialError, Credentials, LoginFile};
pub use endpoint::Endpoint;
pub use manifest::{FetchedManifest, IndexEntry};
pub use transport::{ReadSeek, RetryPolicy, DEFAULT_STALL_TIMEOUT, STALL_TIMEOUT_ENV};
pub use trust::CERTS_D_ENV;

use super::Digest;

/// Everything that can go wrong talking to a registry. Messages name the
/// registry, repository and reference involved, as a user must act on them.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("cannot reach registry {registry} at {url}: {reason}")]
    Connect {
        registry: String,
        url: String,
        reason: String,
    },
    #[error("{method} {url} failed after {attempts} attempts (retried on connection errors, 5xx and 429): last {last}")]
    RetriesExhausted {
        method: String,
        url: String,
        attempts: u32,
        last: String,
    },
    #[error("manifest unknown: {reference} not found in {registry}/{repository}")]
    ManifestUnknown {
        registry: String,
        repository: String,
        reference: String,
    },
    #[error("blob unknown: {digest} not found in {registry}/{repository}")]
    BlobUnknown {
        registry: String,
        repository: String,
        digest: Digest,
    },
    #[error("repository {registry}/{repository} not found or access denied{hint}")]
    RepositoryNotFound {
        registry: String,
        repository: String,
        /// Extra advice, e.g. "(not logged in: run `kiln login HOST`)".
        hint: String,
    },
    /// The registry's TLS certificate failed verification; never retried.
    #[error("TLS certificate of {registry} not trusted ({url}): {reason}; CAs read: {trusted} (put the registry's CA in certs.d/{host}/ca.crt or SSL_CERT_FILE, or pass --tls-verify=false to skip verification)")]
    Certificate {
        registry: String,
        url: String,
        /// rustls' reason: unknown issuer, name mismatch, expired.
        reason: String,
        /// The CA files and certs.d directories read.
        trusted: String,
        /// `host[:port]`, the certs.d directory name.
        host: String,
    },
    /// A certs.d directory or CA file could not be used.
    #[error("TLS settings for {registry}: {reason}")]
    Trust { registry: String, reason: String },
    #[error("authentication to {registry} failed: {detail}")]
    Unauthorized { registry: String, detail: String },
    #[error("access to {registry}/{repository} denied (403): {detail}")]
    Forbidden {
        registry: String,
        repository: String,
        detail: String,
    },
    #[error("{what}: content digest is {actual}, expected {expected}")]
    DigestMismatch {
        /// What and where, e.g. "blob sha256:… from host/repo".
        what: String,
        expected: Digest,
        actual: Digest,
    },
    #[error(
        "blob {digest} from {registry}/{repository}: received {actual} bytes, expected {expected}"
    )]
    SizeMismatch {
        registry: String,
        repository: String,
        digest: Digest,
        expected: u64,
        actual: u64,
    },
    /// Nothing arrived from the registry for the stall timeout
    /// ([`RetryPolicy::stall_timeout`]); not retried further.
    #[error("registry {registry} stalled: nothing received for {}s during {what}; giving up (last error: {last})", .waited.as_secs())]
    Stalled {
        registry: String,
        what: String,
        waited: std::time::Duration,
        last: String,
    },
    #[error("connection to {registry} closed in the middle of {what} after {received} bytes{of_total} (tried {attempts} times)")]
    ConnectionClosed {
        registry: String,
        what: String,
        received: u64,
        /// " of N" when the total is known.
        of_total: String,
        attempts: u32,
    },
    #[error("unsupported manifest media type {media_type:?} for {registry}/{repository}:{reference} (kiln reads OCI image manifests and indexes and Docker schema 2 manifests and lists)")]
    UnsupportedMediaType {
        registry: String,
        repository: String,
        reference: String,
        media_type: String,
    },
    #[error(
        "manifest {reference} in {registry}/{repository} is larger than the {limit} byte limit"
    )]
    ManifestTooLarge {
        registry: String,
        repository: String,
        reference: String,
        limit: u64,
    },
    #[error("no image for {wanted} in the index (it has: {available})")]
    NoMatchingPlatform { wanted: String, available: String },
    #[error("invalid image index: {0}")]
    BadIndex(String),
    #[error("{method} {url}: unexpected status {status}{detail}")]
    UnexpectedStatus {
        method: String,
        url: String,
        status: u16,
        /// ": CODE message" from the registry's error body, if any.
        detail: String,
    },
    #[error("{method} {url}: invalid response: {reason}")]
    Protocol {
        method: String,
        url: String,
        reason: String,
    },
    #[error("{what}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Credentials(#[from] CredentialError),
    #[error("invalid settings file {path}: {reason}")]
    Settings {
        path: std::path::PathBuf,
        reason: String,
    },
}

impl RegistryError {
    /// Wraps a local I/O failure (writing a blob, reading an upload) with
    /// what was being done.
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        RegistryError::Io {
            what: what.into(),
            source,
        }
    }
}
