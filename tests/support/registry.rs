//! A real distribution registry (Debian's `docker-registry`) for tests:
//! started on 127.0.0.1 with a free port, a temp storage dir and a
//! generated config, optionally with htpasswd (bcrypt) auth; killed by pid
//! when dropped.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The binary `.ci/run` installs (Debian package docker-registry).
const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

/// A running registry; stopped on drop.
pub struct TestRegistry {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
    tls: bool,
}

/// TLS for a test registry (PEM files).
pub struct RegistryTls {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Client certificates must chain to this CA (`http.tls.clientcas`);
    /// `None`: none asked for.
    pub client_ca: Option<PathBuf>,
}

impl TestRegistry {
    /// A registry without auth.
    pub fn start() -> TestRegistry {
        Self::start_with(None)
    }

    /// A registry that requires Basic auth for `user`/`pass`.
    pub fn with_htpasswd(user: &str, pass: &str) -> TestRegistry {
        Self::start_with(Some((user, pass)))
    }

    /// A registry serving HTTPS only.
    pub fn with_tls(tls: &RegistryTls) -> TestRegistry {
        Self::start_full(None, Some(tls))
    }

    /// `127.0.0.1:PORT`, as image references name it.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Where the registry keeps its data.
    pub fn storage(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn start_with(auth: Option<(&str, &str)>) -> TestRegistry {
        Self::start_full(auth, None)
    }

    fn start_full(auth: Option<(&str, &str)>, tls: Option<&RegistryTls>) -> TestRegistry {
        assert!(
            Path::new(REGISTRY_BIN).exists(),
            "{REGISTRY_BIN} missing: install Debian's docker-registry package"
        );
        let mut dir = tempfile::Builder::new()
            .prefix("kiln-registry-")
            .tempdir()
            .expect("temp dir for registry");
        if let Some((user, pass)) = auth {
            let out = Command::new("htpasswd")
                .args(["-Bbn", user, pass])
                .output()
                .expect("running htpasswd (apache2-utils)");
            assert!(out.status.success(), "htpasswd failed: {out:?}");
            std::fs::write(dir.path().join("htpasswd"), &out.stdout).unwrap();
        }
        // The port is picked free and then handed to the registry, so another
        // process may take it in between: try a few times.
        let mut last_log = String::new();
        for _ in 0..5 {
            let port = free_port();
            let config = dir.path().join("config.yml");
            let yaml = config_yaml(dir.path(), port, auth.is_some(), tls);
            std::fs::write(&config, yaml).unwrap();
            let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
            let child = Command::new(REGISTRY_BIN)
                .arg("serve")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("starting docker-registry");
            let mut reg = TestRegistry {
                child,
                dir,
                port,
                tls: tls.is_some(),
            };
            if reg.wait_ready() {
                return reg;
            }
            last_log =
                std::fs::read_to_string(reg.dir.path().join("registry.log")).unwrap_or_default();
            reg.stop();
            dir = std::mem::replace(&mut reg.dir, tempfile::tempdir().unwrap());
        }
        panic!("docker-registry did not come up; its log:\n{last_log}");
    }

    /// Polls `GET /v2/` until it answers (200, or 401 with auth).
    fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let _ = s.write_all(b"GET /v2/ HTTP/1.0\r\nHost: x\r\n\r\n");
                let mut buf = [0u8; 12];
                // A TLS registry answers plain HTTP with 400 ("Client sent
                // an HTTP request to an HTTPS server"): it is up.
                if s.read_exact(&mut buf).is_ok()
                    && (buf.ends_with(b"200")
                        || buf.ends_with(b"401")
                        || (self.tls && buf.ends_with(b"400")))
                {
                    return true;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    fn stop(&mut self) {
        // Child::kill signals exactly this pid.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding 127.0.0.1:0")
}

fn config_yaml(dir: &Path, port: u16, htpasswd: bool, tls: Option<&RegistryTls>) -> String {
    let mut y = format!(
        "version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {data}
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:{port}
  secret: kiln-test-secret
",
        data = dir.join("data").display()
    );
    if let Some(tls) = tls {
        y.push_str(&tls_yaml(tls));
    }
    if htpasswd {
        y.push_str(&format!(
            "auth:\n  htpasswd:\n    realm: kiln-test\n    path: {}\n",
            dir.join("htpasswd").display()
        ));
    }
    y
}

/// The `http.tls` section of the registry's config (nested under `http:`,
/// which `config_yaml` ends with).
fn tls_yaml(tls: &RegistryTls) -> String {
    let mut y = format!(
        "  tls:\n    certificate: {}\n    key: {}\n",
        tls.cert.display(),
        tls.key.display()
    );
    if let Some(ca) = &tls.client_ca {
        y.push_str(&format!("    clientcas:\n      - {}\n", ca.display()));
    }
    y
}

/// A registry client for `host` with quick retries (so fault tests do not
/// wait) and small upload chunks (so the chunked upload path runs on small
/// blobs).
pub fn test_client(
    host: &str,
    creds: Option<(&str, &str)>,
) -> kiln::image::registry::RegistryClient {
    use kiln::image::registry::{ClientOptions, Credentials, RegistryClient, RetryPolicy};
    let options = ClientOptions {
        credentials: creds.map(|(u, p)| Credentials {
            username: u.into(),
            password: p.into(),
        }),
        retry: RetryPolicy {
            attempts: 3,
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(50),
            ..RetryPolicy::default()
        },
        chunk_size: 100 * 1024,
        ..ClientOptions::default()
    };
    RegistryClient::new(host, &options).unwrap()
}
