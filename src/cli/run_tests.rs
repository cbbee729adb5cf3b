//! Flag parsing of `kiln run`: docker's accepted forms and its errors.

use super::*;

#[test]
fn tmpfs_and_hostname() {
    let m = parse_tmpfs("/run:size=1m").unwrap();
    assert_eq!(
        (m.destination.as_str(), m.kind),
        (
            "/run",
            MountKind::Tmpfs {
                options: "nosuid,nodev,noexec,size=1m".into()
            }
        )
    );
    assert!(parse_tmpfs("run")
        .unwrap_err()
        .to_string()
        .contains("--tmpfs"));
    assert!(validate_hostname("web-1.example").is_ok());
    for bad in ["", "-a", "a_b", &"x".repeat(65)] {
        assert!(
            validate_hostname(bad)
                .unwrap_err()
                .to_string()
                .contains("--hostname"),
            "{bad}"
        );
    }
}

#[test]
fn env_entries_and_files() {
    assert_eq!(env_entry("A=1=2", "--env").unwrap(), Some("A=1=2".into()));
    assert_eq!(env_entry("KILN_SURELY_UNSET_VAR", "--env").unwrap(), None);
    assert!(env_entry("=x", "--env")
        .unwrap_err()
        .to_string()
        .contains("--env"));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("env");
    std::fs::write(
        &file,
        "# comment\n\nA=1\n  B=two words\nKILN_SURELY_UNSET_VAR\n",
    )
    .unwrap();
    assert_eq!(read_env_file(&file).unwrap(), vec!["A=1", "B=two words"]);
    std::fs::write(&file, "OK=1\nBAD KEY=1\n").unwrap();
    let err = read_env_file(&file).unwrap_err().to_string();
    assert!(err.contains(":2:"), "{err}");
}

/// Regression: `--env-file /dev/urandom` grew to 3.2 GB and never ended.
#[test]
fn env_files_are_read_within_line_and_size_limits() {
    let err = read_env_file(Path::new("/dev/urandom"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("/dev/urandom")
            && (err.contains("invalid utf8") || err.contains("longer than")),
        "{err}"
    );
    let err = read_env_file(Path::new("/dev/zero"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("--env-file") && err.contains("line 1 is longer than 65536 bytes"),
        "{err}"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("env");
    // A line of exactly the limit is fine (docker's scanner takes it).
    let long = format!("A={}\r\n", "x".repeat(MAX_ENV_FILE_LINE - 3));
    std::fs::write(&file, &long).unwrap();
    assert_eq!(
        read_env_file(&file).unwrap()[0].len(),
        MAX_ENV_FILE_LINE - 1
    );
    // Many short lines past the total.
    let line = "K=v\n";
    let count = MAX_ENV_FILE_SIZE as usize / line.len() + 1;
    std::fs::write(&file, line.repeat(count)).unwrap();
    let err = read_env_file(&file).unwrap_err().to_string();
    assert!(err.contains("larger than 16777216 bytes"), "{err}");
}

#[test]
fn names_are_validated_and_unique() {
    let dir = tempfile::tempdir().unwrap();
    let link = reserve_name(dir.path(), "web_1", "abc").unwrap();
    assert_eq!(std::fs::read_link(&link).unwrap(), Path::new("abc"));
    let err = reserve_name(dir.path(), "web_1", "def")
        .unwrap_err()
        .to_string();
    assert!(err.contains("already in use by container \"abc\""), "{err}");
    assert!(reserve_name(dir.path(), "-x", "abc")
        .unwrap_err()
        .to_string()
        .contains("--name"));
}

fn check_size(value: &str, expected: Option<u64>) {
    assert_eq!(parse_size(value, "--memory").ok(), expected, "{value}");
}

#[test]
fn sizes_follow_docker_units() {
    check_size("1024", Some(1024));
    check_size("512m", Some(512 << 20));
    check_size("1g", Some(1 << 30));
    check_size("1G", Some(1 << 30));
    check_size("1.5k", Some(1536));
    check_size("2kb", Some(2048));
    check_size("3MiB", Some(3 << 20));
    check_size("10b", Some(10));
    check_size("", None);
    check_size("m", None);
    check_size("12x", None);
    check_size("-1m", None);
    let err = parse_size("lots", "--memory").unwrap_err().to_string();
    assert!(
        err.contains("--memory") && err.contains("\"lots\""),
        "{err}"
    );
}
