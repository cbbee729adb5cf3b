//! Registries as a build farm has them: HTTPS signed by a private CA
//! (trusted through `SSL_CERT_FILE`, `SSL_CERT_DIR`, docker's and podman's
//! certs.d), client certificates, skip-verify, credential helpers, podman's
//! auth.json, `--authfile`, and proxies that must not catch loopback.
//!
//! Certificates are made at test time with `openssl`; the registry is
//! Debian's `docker-registry` (tests/support/registry.rs).

use crate::support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use support::kiln::{ran, Kiln, Ran};
use support::oci_layout::tar_of;
use support::registry::{RegistryTls, TestRegistry};

/// A private CA and certificates it signed, in a temp dir.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Pki {
        let pki = Pki {
            dir: tempfile::Builder::new()
                .prefix("kiln-pki-")
                .tempdir()
                .unwrap(),
        };
        pki.make_ca("ca");
        pki.make_ca("other-ca");
        pki.sign(
            "server",
            "ca",
            "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth",
        );
        pki.sign(
            "server-elsewhere",
            "ca",
            "subjectAltName=DNS:elsewhere.test\nextendedKeyUsage=serverAuth",
        );
        pki.sign("client", "ca", "extendedKeyUsage=clientAuth");
        pki
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn openssl(&self, args: &[&str]) {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .output()
            .expect("running openssl");
        assert!(out.status.success(), "openssl {args:?}: {out:?}");
    }

    fn make_ca(&self, name: &str) {
        self.openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN=kiln test {name}"),
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.crt"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
    }

    /// `name.crt`/`name.key` signed by `ca` with the given extensions.
    fn sign(&self, name: &str, ca: &str, extensions: &str) {
        std::fs::write(
            self.path(&format!("{name}.ext")),
            format!("basicConstraints=CA:FALSE\n{extensions}\n"),
        )
        .unwrap();
        self.openssl(&[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-subj",
            &format!("/CN=kiln test {name}"),
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
        ]);
        self.openssl(&[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}.crt"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &format!("{name}.ext"),
            "-out",
            &format!("{name}.crt"),
        ]);
    }

    fn registry_tls(&self, server: &str, client_ca: bool) -> RegistryTls {
        RegistryTls {
            cert: self.path(&format!("{server}.crt")),
            key: self.path(&format!("{server}.key")),
            client_ca: client_ca.then(|| self.path("ca.crt")),
        }
    }
}

/// Imports a tiny image as `name`.
fn import_small(k: &Kiln, name: &str) {
    let tar = k.path("small.tar");
    std::fs::write(&tar, tar_of(&[("hello.txt".to_string(), b"hi\n".to_vec())])).unwrap();
    k.ok(&["import", tar.to_str().unwrap(), name]);
}

/// `kiln args…` with `env` set.
fn kiln_env(k: &Kiln, args: &[&str], env: &[(&str, &Path)]) -> Ran {
    let mut c = k.cmd(args);
    c.stdin(Stdio::null());
    for (key, v) in env {
        c.env(key, v);
    }
    ran(c.output().unwrap())
}

/// Runs `c` with `stdin` as its input (a password, small enough for the
/// pipe).
fn run_with_stdin(mut c: Command, stdin: &[u8]) -> Ran {
    use std::io::Write;
    let mut child = c
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _ = child.stdin.take().unwrap().write_all(stdin);
    ran(child.wait_with_output().unwrap())
}

/// A certs.d root holding `host/` with `files` copied from the PKI.
fn certs_d(k: &Kiln, name: &str, host: &str, pki: &Pki, files: &[(&str, &str)]) -> PathBuf {
    let root = k.path(name);
    let dir = root.join(host);
    std::fs::create_dir_all(&dir).unwrap();
    for (from, to) in files {
        std::fs::copy(pki.path(from), dir.join(to)).unwrap();
    }
    root
}

#[test]
fn private_ca_is_trusted_through_each_of_dockers_and_podmans_ways() {
    let pki = Pki::new();
    let reg = TestRegistry::with_tls(&pki.registry_tls("server", false));
    let host = reg.host();
    let k = Kiln::new();
    let image = format!("{host}/kiln/tls:v1");
    import_small(&k, &image);
    let empty = k.path("empty.pem");
    std::fs::write(&empty, "").unwrap();

    // SSL_CERT_FILE: push and pull.
    let ca = pki.path("ca.crt");
    kiln_env(
        &k,
        &["--tls-verify", "push", &image],
        &[("SSL_CERT_FILE", &ca)],
    )
    .ok();
    kiln_env(
        &k,
        &["--tls-verify", "pull", &image],
        &[("SSL_CERT_FILE", &ca)],
    )
    .ok();

    // SSL_CERT_DIR (with a useless SSL_CERT_FILE).
    let dir = k.path("ssl-cert-dir");
    std::fs::create_dir(&dir).unwrap();
    std::fs::copy(&ca, dir.join("private.pem")).unwrap();
    kiln_env(
        &k,
        &["--tls-verify", "pull", &image],
        &[("SSL_CERT_FILE", &empty), ("SSL_CERT_DIR", &dir)],
    )
    .ok();

    // certs.d/HOST/ca.crt: podman's root first, docker's second; each
    // alone holding the CA is enough.
    let podman = certs_d(
        &k,
        "containers-certs.d",
        &host,
        &pki,
        &[("ca.crt", "ca.crt")],
    );
    let docker = certs_d(&k, "docker-certs.d", &host, &pki, &[("ca.crt", "ca.crt")]);
    let absent = k.path("absent-certs.d");
    for list in [[&podman, &absent], [&absent, &docker]] {
        let joined = std::env::join_paths(list).unwrap();
        kiln_env(
            &k,
            &["--tls-verify", "pull", &image],
            &[
                ("SSL_CERT_FILE", &empty),
                ("KILN_CERTS_D", Path::new(&joined)),
            ],
        )
        .ok();
    }

    // A build's FROM goes through the same trust.
    let ctx = k.context(&[("Dockerfile", &format!("FROM {image}\nLABEL tls=1\n"))]);
    let out = kiln_env(
        &k,
        &[
            "--tls-verify",
            "build",
            "--pull",
            "-t",
            "from-tls",
            ctx.to_str().unwrap(),
        ],
        &[("SSL_CERT_FILE", &ca)],
    );
    out.ok();
}

#[test]
fn untrusted_certificate_fails_at_once_naming_the_cas_read() {
    let pki = Pki::new();
    let reg = TestRegistry::with_tls(&pki.registry_tls("server", false));
    let host = reg.host();
    let k = Kiln::new();
    let image = format!("{host}/kiln/tls:v1");
    let other = pki.path("other-ca.crt");
    let certs = certs_d(&k, "certs.d", &host, &pki, &[("other-ca.crt", "ca.crt")]);
    let out = kiln_env(
        &k,
        &["--tls-verify", "pull", &image],
        &[("SSL_CERT_FILE", &other), ("KILN_CERTS_D", &certs)],
    );
    let err = out.fails_with(1);
    assert!(
        err.contains(&format!("TLS certificate of {host} not trusted")),
        "{err}"
    );
    assert!(err.contains("signed by an unknown authority"), "{err}");
    assert!(err.contains(other.to_str().unwrap()), "{err}");
    assert!(err.contains(certs.join(&host).to_str().unwrap()), "{err}");
    // Where a CA was looked for and not found is said too.
    let nowhere = k.path("nowhere.d");
    let out = kiln_env(
        &k,
        &["--tls-verify", "pull", &image],
        &[("SSL_CERT_FILE", &other), ("KILN_CERTS_D", &nowhere)],
    );
    let err = out.fails_with(1);
    let missing = format!("(no {})", nowhere.join(&host).display());
    assert!(err.contains(&missing), "{err}");
    // Not retried: the retry loop's messages say how often it tried.
    assert!(!err.contains("tried") && !err.contains("attempts"), "{err}");

    // A certificate for another name is a name mismatch.
    let elsewhere = TestRegistry::with_tls(&pki.registry_tls("server-elsewhere", false));
    let ca = pki.path("ca.crt");
    let out = kiln_env(
        &k,
        &[
            "--tls-verify",
            "pull",
            &format!("{}/kiln/tls:v1", elsewhere.host()),
        ],
        &[("SSL_CERT_FILE", &ca)],
    );
    let err = out.fails_with(1);
    assert!(err.contains("name mismatch"), "{err}");

    // A bad certs.d is an error naming the file, not a silent fallback.
    let broken = certs_d(
        &k,
        "broken.d",
        &host,
        &pki,
        &[("client.crt", "client.cert")],
    );
    let out = kiln_env(
        &k,
        &["--tls-verify", "pull", &image],
        &[("KILN_CERTS_D", &broken)],
    );
    let err = out.fails_with(1);
    assert!(
        err.contains("missing key client.key for client certificate client.cert"),
        "{err}"
    );
}

#[test]
fn client_certificate_from_certs_d_is_presented() {
    let pki = Pki::new();
    let reg = TestRegistry::with_tls(&pki.registry_tls("server", true));
    let host = reg.host();
    let k = Kiln::new();
    let image = format!("{host}/kiln/mtls:v1");
    import_small(&k, &image);
    let empty = k.path("empty.pem");
    std::fs::write(&empty, "").unwrap();

    let ca_only = certs_d(&k, "ca-only.d", &host, &pki, &[("ca.crt", "ca.crt")]);
    let out = kiln_env(
        &k,
        &["--tls-verify", "push", &image],
        &[("SSL_CERT_FILE", &empty), ("KILN_CERTS_D", &ca_only)],
    );
    let err = out.fails_with(1);
    assert!(
        err.contains("client certificate") && err.contains("kiln presented none"),
        "{err}"
    );

    let full = certs_d(
        &k,
        "full.d",
        &host,
        &pki,
        &[
            ("ca.crt", "ca.crt"),
            ("client.crt", "client.cert"),
            ("client.key", "client.key"),
        ],
    );
    for cmd in ["push", "pull"] {
        kiln_env(
            &k,
            &["--tls-verify", cmd, &image],
            &[("SSL_CERT_FILE", &empty), ("KILN_CERTS_D", &full)],
        )
        .ok();
    }
}

#[test]
fn tls_verify_false_keeps_tls_and_plain_http_still_works() {
    let pki = Pki::new();
    let tls = TestRegistry::with_tls(&pki.registry_tls("server", false));
    let plain = TestRegistry::start();
    let k = Kiln::new();
    for reg in [&tls, &plain] {
        let image = format!("{}/kiln/skip:v1", reg.host());
        import_small(&k, &image);
        k.ok(&["--tls-verify=false", "push", &image]);
        k.ok(&["--tls-verify=false", "pull", &image]);
    }
    // Without the flag, a loopback registry is plain HTTP as before, which
    // the TLS registry refuses.
    let err = k.fails(&["pull", &format!("{}/kiln/skip:v1", tls.host())]);
    assert!(err.contains("400"), "{err}");
    k.ok(&["pull", &format!("{}/kiln/skip:v1", plain.host())]);
}

/// `docker-credential-test` in a fresh PATH dir: `get` serves `user:pass`
/// for `host` (the protocol's "not found" otherwise), `store`/`erase`
/// append what they read to `log`. `KILN_TEST_HELPER_FAIL` makes it fail.
fn fake_helper(k: &Kiln, host: &str, user: &str, pass: &str) -> (PathBuf, PathBuf) {
    let bin = k.path("helper-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let log = k.path("helper.log");
    let script = format!(
        r#"#!/bin/sh
if [ -n "$KILN_TEST_HELPER_FAIL" ]; then echo "keychain locked" >&2; exit 3; fi
input=$(cat)
case "$1" in
get)
  if [ "$input" = "{host}" ]; then
    printf '{{"ServerURL":"%s","Username":"{user}","Secret":"{pass}"}}' "$input"
  else
    echo "credentials not found in native keychain"; exit 1
  fi ;;
store|erase) printf '%s %s\n' "$1" "$input" >> {log} ;;
*) exit 2 ;;
esac
"#,
        log = log.display()
    );
    let path = bin.join("docker-credential-test");
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    (bin, log)
}

fn path_with(bin: &Path) -> PathBuf {
    let old = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs = vec![bin.to_path_buf()];
    dirs.extend(std::env::split_paths(&old));
    PathBuf::from(std::env::join_paths(dirs).unwrap())
}

#[test]
fn credential_helper_serves_stores_and_erases_for_a_basic_auth_registry() {
    let reg = TestRegistry::with_htpasswd("farm", "s3cret");
    let host = reg.host();
    let k = Kiln::new();
    let image = format!("{host}/kiln/helper:v1");
    import_small(&k, &image);
    let (bin, log) = fake_helper(&k, &host, "farm", "s3cret");
    let path = path_with(&bin);
    let docker = k.path("docker");
    std::fs::create_dir_all(&docker).unwrap();
    std::fs::write(docker.join("config.json"), r#"{"credsStore":"test"}"#).unwrap();
    let env = [
        ("PATH", path.as_path()),
        ("DOCKER_CONFIG", docker.as_path()),
    ];

    kiln_env(&k, &["push", &image], &env).ok();
    kiln_env(&k, &["pull", &image], &env).ok();

    // A failing helper is named, with what it printed.
    let mut c = k.cmd(&["pull", &image]);
    c.env("PATH", &path).env("DOCKER_CONFIG", &docker);
    c.env("KILN_TEST_HELPER_FAIL", "1").stdin(Stdio::null());
    let err = ran(c.output().unwrap()).fails_with(1).to_string();
    assert!(
        err.contains("docker-credential-test get for") && err.contains("keychain locked"),
        "{err}"
    );

    // login stores through the helper and leaves the secret out of the
    // file; logout erases.
    let mut c = k.cmd(&["login", "-u", "farm", "--password-stdin", &host]);
    c.env("PATH", &path).env("DOCKER_CONFIG", &docker);
    let out = run_with_stdin(c, b"s3cret\n");
    assert_eq!(out.ok(), "Login Succeeded\n");
    let config = std::fs::read_to_string(docker.join("config.json")).unwrap();
    assert!(
        !config.contains("s3cret") && !config.contains("auths"),
        "{config}"
    );
    kiln_env(&k, &["logout", &host], &env).ok();
    let logged = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        logged,
        format!(
            "store {{\"ServerURL\":\"{host}\",\"Username\":\"farm\",\"Secret\":\"s3cret\"}}\nerase {host}\n"
        )
    );
}

#[test]
fn podman_auth_json_and_authfile_are_read_and_login_writes_authfile() {
    let reg = TestRegistry::with_htpasswd("farm", "s3cret");
    let host = reg.host();
    let k = Kiln::new();
    let image = format!("{host}/kiln/authfile:v1");
    import_small(&k, &image);

    // Anonymous: refused.
    let err = k.fails(&["push", &image]);
    assert!(err.contains("not logged in"), "{err}");

    // podman's REGISTRY_AUTH_FILE, and $XDG_RUNTIME_DIR/containers/auth.json.
    let auth = format!(r#"{{"auths":{{"{host}":{{"auth":"ZmFybTpzM2NyZXQ="}}}}}}"#);
    let podman = k.path("podman-auth.json");
    std::fs::write(&podman, &auth).unwrap();
    kiln_env(&k, &["push", &image], &[("REGISTRY_AUTH_FILE", &podman)]).ok();
    let runtime = k.path("runtime");
    std::fs::create_dir_all(runtime.join("containers")).unwrap();
    std::fs::write(runtime.join("containers/auth.json"), &auth).unwrap();
    kiln_env(&k, &["pull", &image], &[("XDG_RUNTIME_DIR", &runtime)]).ok();

    // kiln login --authfile writes there (0600) and nowhere else.
    let file = k.path("my-auth.json");
    let f = file.to_str().unwrap();
    let c = k.cmd(&[
        "login",
        "--authfile",
        f,
        "-u",
        "farm",
        "--password-stdin",
        &host,
    ]);
    assert_eq!(run_with_stdin(c, b"s3cret\n").ok(), "Login Succeeded\n");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(std::fs::read_to_string(&file).unwrap().contains(&host));
    assert!(!k.path("no-docker-config/config.json").exists());
    assert!(!k.root().join("auth.json").exists());
    k.ok(&["--authfile", f, "pull", &image]);
    k.ok(&["--authfile", f, "logout", &host]);
    let err = k.fails(&["--authfile", f, "push", &image]);
    assert!(err.contains("not logged in"), "{err}");
}

#[test]
fn http_proxy_does_not_catch_loopback_registries() {
    let reg = TestRegistry::start();
    let k = Kiln::new();
    let image = format!("{}/kiln/proxy:v1", reg.host());
    import_small(&k, &image);
    // Nothing listens on port 1: any request sent to the proxy fails.
    let proxy = Path::new("http://127.0.0.1:1");
    let env = [
        ("HTTP_PROXY", proxy),
        ("HTTPS_PROXY", proxy),
        ("http_proxy", proxy),
        ("ALL_PROXY", proxy),
    ];
    kiln_env(&k, &["push", &image], &env).ok();
    kiln_env(&k, &["pull", &image], &env).ok();
}

#[test]
fn identity_token_is_exchanged_through_the_oauth_refresh_grant() {
    use kiln::image::registry::{ClientOptions, Credentials, RegistryClient};
    use std::sync::{Arc, Mutex};
    use support::http_stub::{Reply, Request, StubServer};
    let posts: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = posts.clone();
    let stub = StubServer::start(move |req: &Request| {
        if req.path() == "/token" {
            let body = String::from_utf8_lossy(&req.body).to_string();
            let ok = req.method == "POST" && body.contains("refresh_token=idtok");
            seen.lock().unwrap().push(format!("{} {body}", req.method));
            return if ok {
                Reply::new(200, r#"{"access_token":"granted","expires_in":300}"#)
            } else {
                Reply::new(401, "")
            };
        }
        if req.header("authorization") == Some("Bearer granted") {
            return Reply::new(200, "{}");
        }
        let realm = format!("http://{}/token", req.header("host").unwrap_or(""));
        Reply::new(401, "").header(
            "WWW-Authenticate",
            format!(r#"Bearer realm="{realm}",service="stub""#),
        )
    });
    let options = ClientOptions {
        credentials: Some(Credentials {
            username: "<token>".into(),
            password: "idtok".into(),
        }),
        ..ClientOptions::default()
    };
    RegistryClient::new(&stub.host(), &options)
        .unwrap()
        .ping()
        .unwrap();
    let posts = posts.lock().unwrap();
    assert_eq!(
        *posts,
        ["POST grant_type=refresh_token&refresh_token=idtok&client_id=kiln&service=stub"]
    );
}
