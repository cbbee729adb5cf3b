//! `kiln login` / `kiln logout` against a real registry with htpasswd auth.

use crate::support;

use std::os::unix::fs::PermissionsExt;
use support::kiln::Kiln;
use support::registry::TestRegistry;

#[test]
fn login_verifies_stores_privately_and_logout_forgets() {
    let reg = TestRegistry::with_htpasswd("kiln", "s3cret");
    let host = reg.host();
    let k = Kiln::new();
    // Where docker reads (the harness points DOCKER_CONFIG here); it was
    // <root>/auth.json before kiln wrote docker's file.
    let auth = k.path("no-docker-config").join("config.json");

    let out = k.kiln_with_stdin(
        &["login", "-u", "kiln", "--password-stdin", &host],
        b"wrong\n",
    );
    let err = out.fails_with(1);
    assert!(err.contains(&format!("login to {host} failed")), "{err}");
    assert!(err.contains("invalid username or password"), "{err}");
    assert!(!auth.exists(), "failed login stored credentials");

    let out = k.kiln_with_stdin(
        &["login", "-u", "kiln", "--password-stdin", &host],
        b"s3cret\n",
    );
    assert_eq!(out.ok(), "Login Succeeded\n");
    let mode = std::fs::metadata(&auth).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let stored = std::fs::read_to_string(&auth).unwrap();
    assert!(
        stored.contains(&host) && !stored.contains("s3cret"),
        "{stored}"
    );

    let out = k.kiln_with_stdin(&["logout", &host], b"");
    assert_eq!(
        out.stdout,
        format!("Removing login credentials for {host}\n")
    );
    let out = k.kiln_with_stdin(&["logout", &host], b"");
    assert_eq!(out.stdout, format!("Not logged in to {host}\n"));
}

#[test]
fn logout_forgets_a_login_kept_in_the_legacy_root_file() {
    let reg = TestRegistry::with_htpasswd("kiln", "s3cret");
    let host = reg.host();
    let k = Kiln::new();
    std::fs::create_dir_all(k.root()).unwrap();
    let legacy = k.root().join("auth.json");
    // kiln:s3cret, as kiln's login wrote it before.
    std::fs::write(
        &legacy,
        format!(r#"{{"auths":{{"{host}":{{"auth":"a2lsbjpzM2NyZXQ="}}}}}}"#),
    )
    .unwrap();
    let image = format!("{host}/kiln/legacy:v1");
    let tar = k.path("small.tar");
    let files = [("a.txt".to_string(), b"a".to_vec())];
    std::fs::write(&tar, support::oci_layout::tar_of(&files)).unwrap();
    k.ok(&["import", tar.to_str().unwrap(), &image]);
    k.ok(&["push", &image]);
    let out = k.kiln_with_stdin(&["logout", &host], b"");
    assert_eq!(
        out.stdout,
        format!("Removing login credentials for {host}\n")
    );
    assert!(!std::fs::read_to_string(&legacy).unwrap().contains(&host));
    let err = k.fails(&["push", &image]);
    assert!(err.contains("not logged in"), "{err}");
}

#[test]
fn login_with_password_flag_warns_and_needs_a_user_without_a_terminal() {
    let reg = TestRegistry::with_htpasswd("kiln", "s3cret");
    let host = reg.host();
    let k = Kiln::new();
    let out = k.kiln_with_stdin(&["login", "-u", "kiln", "-p", "s3cret", &host], b"");
    out.ok();
    assert!(out.stderr.contains("Use --password-stdin"));
    let out = k.kiln_with_stdin(&["login", "--password-stdin", &host], b"s3cret\n");
    let err = out.fails_with(1);
    assert!(err.contains("use -u USER"), "{err}");
}
