//! `kiln login` / `kiln logout` against a real registry with htpasswd auth.

mod support;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use support::registry::TestRegistry;

/// Runs kiln with `root`, feeding `stdin`; docker's own config is hidden.
fn kiln(root: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg("--root")
        .arg(root)
        .args(args)
        .env("DOCKER_CONFIG", root.join("no-docker-config"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // kiln may exit before reading (a usage error): ignore a broken pipe.
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn login_verifies_stores_privately_and_logout_forgets() {
    let reg = TestRegistry::with_htpasswd("kiln", "s3cret");
    let host = reg.host();
    let root = tempfile::tempdir().unwrap();
    let auth = root.path().join("auth.json");

    let out = kiln(
        root.path(),
        &["login", "-u", "kiln", "--password-stdin", &host],
        "wrong\n",
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = text(&out.stderr);
    assert!(err.contains(&format!("login to {host} failed")), "{err}");
    assert!(err.contains("invalid username or password"), "{err}");
    assert!(!auth.exists(), "failed login stored credentials");

    let out = kiln(
        root.path(),
        &["login", "-u", "kiln", "--password-stdin", &host],
        "s3cret\n",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "Login Succeeded\n");
    let mode = std::fs::metadata(&auth).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let stored = std::fs::read_to_string(&auth).unwrap();
    assert!(
        stored.contains(&host) && !stored.contains("s3cret"),
        "{stored}"
    );

    let out = kiln(root.path(), &["logout", &host], "");
    assert_eq!(
        text(&out.stdout),
        format!("Removing login credentials for {host}\n")
    );
    let out = kiln(root.path(), &["logout", &host], "");
    assert_eq!(text(&out.stdout), format!("Not logged in to {host}\n"));
}

#[test]
fn login_with_password_flag_warns_and_needs_a_user_without_a_terminal() {
    let reg = TestRegistry::with_htpasswd("kiln", "s3cret");
    let host = reg.host();
    let root = tempfile::tempdir().unwrap();
    let out = kiln(
        root.path(),
        &["login", "-u", "kiln", "-p", "s3cret", &host],
        "",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("Use --password-stdin"));
    let out = kiln(
        root.path(),
        &["login", "--password-stdin", &host],
        "s3cret\n",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("use -u USER"),
        "{}",
        text(&out.stderr)
    );
}
