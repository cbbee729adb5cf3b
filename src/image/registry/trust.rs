//! Which certificates a registry connection trusts and presents, read as
//! docker and podman read them.
//!
//! - The system store: `SSL_CERT_FILE` or the first distribution bundle
//!   found, plus every file of `SSL_CERT_DIR` (Go's `crypto/x509`
//!   `root_unix.go`/`root_linux.go` rules, which docker and podman inherit).
//! - Per registry, `<certs.d>/HOST[:PORT]/`: `*.crt` are extra CAs, a
//!   `NAME.cert` + `NAME.key` pair is a client certificate (moby
//!   `registry/config.go` `loadTLSConfig`; podman reads the same layout
//!   from `/etc/containers/certs.d`, containers/image
//!   `pkg/tlsclientconfig/tlsclientconfig.go` `SetupCertificates`).
//!
//! The files read are kept in [`HostTrust::sources`] so a certificate
//! error can say what was trusted.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use ureq::tls::{parse_pem, Certificate, ClientCert, PemItem, PrivateKey, RootCerts, TlsConfig};

/// Colon-separated certs.d roots replacing the defaults (tests, and hosts
/// that keep registry certificates elsewhere).
pub const CERTS_D_ENV: &str = "KILN_CERTS_D";

/// Bundles Go looks for, in its order; the first that reads is used
/// (Go `crypto/x509/root_linux.go` `certFiles`).
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/tls/cacert.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// The certs.d roots read for each registry: podman's, then docker's
/// (containers/image reads both, docker only its own), or the
/// [`CERTS_D_ENV`] list.
pub fn default_certs_dirs() -> Vec<PathBuf> {
    match std::env::var_os(CERTS_D_ENV) {
        Some(v) => path_list(&v),
        None => vec![
            PathBuf::from("/etc/containers/certs.d"),
            PathBuf::from("/etc/docker/certs.d"),
        ],
    }
}

/// A `:`-separated list of directories; empty entries are dropped.
fn path_list(v: &std::ffi::OsStr) -> Vec<PathBuf> {
    std::env::split_paths(v)
        .filter(|p| !p.as_os_str().is_empty())
        .collect()
}

/// A certs.d directory, or one of its files, that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("reading {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
    /// Docker's rule: a client certificate needs its key and a key its
    /// certificate; CAs are `*.crt`.
    #[error("{dir}: {what} (client certificates are NAME.cert with NAME.key; CA certificates must end in .crt)")]
    UnpairedClientCert { dir: PathBuf, what: String },
}

/// What a connection to one registry trusts.
#[derive(Debug, Clone)]
pub(crate) struct HostTrust {
    pub(crate) tls: TlsConfig,
    /// The CA files and certs.d directories read, for error messages.
    pub(crate) sources: Vec<PathBuf>,
    /// `HOST[:PORT]/` directories looked for and not found.
    pub(crate) absent: Vec<PathBuf>,
    /// Whether a client certificate is presented.
    pub(crate) client_cert: Option<PathBuf>,
}

impl HostTrust {
    /// `host` is `HOST[:PORT]` as the registry is named; `skip_verify`
    /// keeps TLS but accepts any server certificate.
    pub(crate) fn load(
        host: &str,
        certs_dirs: &[PathBuf],
        skip_verify: bool,
    ) -> Result<HostTrust, TrustError> {
        let mut sources = Vec::new();
        let mut roots = system_roots(&|k| std::env::var_os(k), &mut sources)?;
        let mut client = None;
        let mut absent = Vec::new();
        for base in certs_dirs {
            let dir = base.join(host);
            let Some(found) = read_certs_dir(&dir)? else {
                absent.push(dir);
                continue;
            };
            sources.push(dir);
            roots.extend(found.cas);
            if client.is_none() {
                client = found.client;
            }
        }
        let root_certs = if roots.is_empty() {
            // No system store on this machine and no certs.d CA: the
            // bundled Mozilla roots are better than trusting nothing.
            sources.push(PathBuf::from("(kiln's bundled Mozilla roots)"));
            RootCerts::WebPki
        } else {
            RootCerts::new_with_certs(&roots)
        };
        let (client_cert, client_path) = match client {
            Some((cert, path)) => (Some(cert), Some(path)),
            None => (None, None),
        };
        let tls = TlsConfig::builder()
            .root_certs(root_certs)
            .client_cert(client_cert)
            .disable_verification(skip_verify)
            .build();
        Ok(HostTrust {
            tls,
            sources,
            absent,
            client_cert: client_path,
        })
    }

    /// "FILE, DIR, … (no DIR, DIR)" for messages.
    pub(crate) fn describe_sources(&self) -> String {
        let list = |paths: &[PathBuf]| {
            let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
            names.join(", ")
        };
        let mut s = if self.sources.is_empty() {
            "none".to_string()
        } else {
            list(&self.sources)
        };
        if !self.absent.is_empty() {
            s.push_str(&format!(" (no {})", list(&self.absent)));
        }
        s
    }
}

/// The system CAs: `SSL_CERT_FILE` (else the first bundle of
/// [`SYSTEM_BUNDLES`] that reads), then the files of each `SSL_CERT_DIR`
/// entry (Go reads `/etc/ssl/certs` too by default; the bundle there
/// already holds it on every distribution listed, so kiln does not parse
/// the same roots twice). Appends what was read to `sources`.
fn system_roots(
    env: &dyn Fn(&str) -> Option<OsString>,
    sources: &mut Vec<PathBuf>,
) -> Result<Vec<Certificate<'static>>, TrustError> {
    let mut roots = Vec::new();
    let files: Vec<PathBuf> = match env("SSL_CERT_FILE").filter(|v| !v.is_empty()) {
        Some(f) => vec![PathBuf::from(f)],
        None => SYSTEM_BUNDLES.iter().map(PathBuf::from).collect(),
    };
    for f in files {
        match std::fs::read(&f) {
            Ok(pem) => {
                roots.extend(certificates_in(&f, &pem)?);
                sources.push(f);
                break;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(TrustError::Read { path: f, source }),
        }
    }
    if let Some(dirs) = env("SSL_CERT_DIR").filter(|v| !v.is_empty()) {
        for dir in path_list(&dirs) {
            let entries = match std::fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(source) => return Err(TrustError::Read { path: dir, source }),
            };
            let mut names: Vec<PathBuf> =
                entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
            names.sort();
            for f in names {
                // Go skips what it cannot read (subdirectories, dangling
                // links); so does kiln.
                if let Ok(pem) = std::fs::read(&f) {
                    roots.extend(certificates_in(&f, &pem).unwrap_or_default());
                }
            }
            sources.push(dir);
        }
    }
    Ok(roots)
}

/// What one `certs.d/HOST` directory holds.
struct CertsDir {
    cas: Vec<Certificate<'static>>,
    client: Option<(ClientCert, PathBuf)>,
}

/// Reads `dir` as docker does: `*.crt` CAs, `*.cert`/`*.key` pairs (the
/// first pair by name is presented: rustls offers one client identity).
/// A missing directory is `None`.
fn read_certs_dir(dir: &Path) -> Result<Option<CertsDir>, TrustError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(TrustError::Read {
                path: dir.to_path_buf(),
                source,
            })
        }
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read(&path).map_err(|source| TrustError::Read { path, source })
    };
    let mut out = CertsDir {
        cas: Vec::new(),
        client: None,
    };
    for name in &names {
        if name.ends_with(".crt") {
            out.cas
                .extend(certificates_in(&dir.join(name), &read(name)?)?);
        } else if let Some(stem) = name.strip_suffix(".cert") {
            let key_name = format!("{stem}.key");
            if !names.contains(&key_name) {
                return Err(TrustError::UnpairedClientCert {
                    dir: dir.to_path_buf(),
                    what: format!("missing key {key_name} for client certificate {name}"),
                });
            }
            if out.client.is_some() {
                continue;
            }
            let cert_path = dir.join(name);
            let chain = certificates_in(&cert_path, &read(name)?)?;
            if chain.is_empty() {
                return Err(TrustError::Invalid {
                    path: cert_path,
                    reason: "no PEM certificate in it".into(),
                });
            }
            let key_path = dir.join(&key_name);
            let key = private_key_in(&key_path, &read(&key_name)?)?;
            out.client = Some((ClientCert::new_with_certs(&chain, key), cert_path));
        } else if let Some(stem) = name.strip_suffix(".key") {
            let cert_name = format!("{stem}.cert");
            if !names.contains(&cert_name) {
                return Err(TrustError::UnpairedClientCert {
                    dir: dir.to_path_buf(),
                    what: format!("missing client certificate {cert_name} for key {name}"),
                });
            }
        }
    }
    Ok(Some(out))
}

/// The PEM certificates in a file (other PEM sections are skipped).
fn certificates_in(path: &Path, pem: &[u8]) -> Result<Vec<Certificate<'static>>, TrustError> {
    let mut out = Vec::new();
    for item in parse_pem(pem) {
        match item {
            Ok(PemItem::Certificate(c)) => out.push(c),
            Ok(_) => {}
            Err(e) => {
                return Err(TrustError::Invalid {
                    path: path.to_path_buf(),
                    reason: format!("not PEM: {e}"),
                })
            }
        }
    }
    Ok(out)
}

fn private_key_in(path: &Path, pem: &[u8]) -> Result<PrivateKey<'static>, TrustError> {
    PrivateKey::from_pem(pem).map_err(|e| TrustError::Invalid {
        path: path.to_path_buf(),
        reason: format!("no PEM private key in it: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate (`openssl req -x509 -newkey ec`), enough
    /// for parsing: verification is tested against a real registry.
    const CERT: &str = "-----BEGIN CERTIFICATE-----
MIIBfzCCASWgAwIBAgIUMtpfvveNIrBFegMxqiqSjrfX0FowCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJa2lsbi10ZXN0MCAXDTI2MTIwNjIzMzQxN1oYDzIxMjYxMTEy
MjMzNDE3WjAUMRIwEAYDVQQDDAlraWxuLXRlc3QwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAARilXF3/UoivIZBGVSy/2L7Y5vQ0ls6s1xLBijGWj3ERjejLMdcF0kH
meIuMByPkkNk820dUbD5ChwLh3eroAMLo1MwUTAdBgNVHQ4EFgQU9IsmyfwAZ/o7
zxEtdb4J+kXKMSowHwYDVR0jBBgwFoAU9IsmyfwAZ/o7zxEtdb4J+kXKMSowDwYD
VR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNIADBFAiAm0meVrTtLcnhllyWrFuNL
GM7NjxvGROP2dmWq2FtcvQIhALkMOCEmVc+bL9c/bHMHn+hyxDYG1n5wP/bU872j
1mHM
-----END CERTIFICATE-----
";

    fn env_of(pairs: &[(&str, &Path)]) -> impl Fn(&str) -> Option<OsString> {
        let pairs: Vec<(String, OsString)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_os_str().to_owned()))
            .collect();
        move |k| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    }

    #[test]
    fn ssl_cert_file_replaces_the_bundles_and_ssl_cert_dir_adds() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("one.pem");
        std::fs::write(&file, CERT).unwrap();
        let extra = dir.path().join("extra");
        std::fs::create_dir(&extra).unwrap();
        std::fs::write(extra.join("a.pem"), format!("{CERT}{CERT}")).unwrap();
        std::fs::write(extra.join("junk"), "not a certificate").unwrap();
        let mut sources = Vec::new();
        let env = env_of(&[("SSL_CERT_FILE", &file), ("SSL_CERT_DIR", &extra)]);
        let roots = system_roots(&env, &mut sources).unwrap();
        assert_eq!(roots.len(), 3);
        assert_eq!(sources, [file, extra]);
    }

    #[test]
    fn a_missing_ssl_cert_file_trusts_nothing_from_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut sources = Vec::new();
        let env = env_of(&[("SSL_CERT_FILE", &dir.path().join("absent.pem"))]);
        assert!(system_roots(&env, &mut sources).unwrap().is_empty());
        assert!(sources.is_empty());
    }

    #[test]
    fn certs_dir_pairs_follow_dockers_rules() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read_certs_dir(&dir.path().join("absent"))
            .unwrap()
            .is_none());
        std::fs::write(dir.path().join("ca.crt"), CERT).unwrap();
        let found = read_certs_dir(dir.path()).unwrap().unwrap();
        assert_eq!(found.cas.len(), 1);
        assert!(found.client.is_none());

        std::fs::write(dir.path().join("client.cert"), CERT).unwrap();
        let e = read_certs_dir(dir.path()).err().unwrap().to_string();
        assert!(
            e.contains("missing key client.key for client certificate client.cert"),
            "{e}"
        );
        std::fs::remove_file(dir.path().join("client.cert")).unwrap();
        std::fs::write(dir.path().join("other.key"), "x").unwrap();
        let e = read_certs_dir(dir.path()).err().unwrap().to_string();
        assert!(
            e.contains("missing client certificate other.cert for key other.key"),
            "{e}"
        );
    }

    #[test]
    fn certs_d_override_is_a_path_list() {
        assert_eq!(
            path_list(std::ffi::OsStr::new("/a/certs.d::/b")),
            [PathBuf::from("/a/certs.d"), PathBuf::from("/b")]
        );
    }
}
