//! `RUN --mount=type=secret,env=VAR` (Dockerfile syntax 1.10+): the
//! secret reaches the command as a variable instead of a file (or as
//! both, with `target=`), a missing optional one leaves the variable
//! unset, a missing required one fails the step at its line, and the
//! value never reaches the image, its history or the store.

use crate::support;

use std::process::Stdio;

use support::kiln::{ran, Kiln, Ran};

/// A secret value unique to this test's store.
fn secret_value(k: &Kiln) -> String {
    let name = k.dir.path().file_name().unwrap().to_string_lossy();
    format!(
        "s3cr3t-{}",
        name.trim_start_matches(support::kiln::TEMP_PREFIX)
    )
}

/// A shell test that `$var` holds the value whose SHA-256 is `digest`
/// (the Dockerfile must not hold the value itself: it is in the history).
fn holds(var: &str, value: &str) -> String {
    use sha2::Digest;
    let digest = hex::encode(sha2::Sha256::digest(value.as_bytes()));
    format!("test \"$(printf %s \"{var}\" | sha256sum | cut -d' ' -f1)\" = {digest}")
}

/// `kiln build` of `dockerfile` with `MY_TOKEN=value` in kiln's
/// environment and `--secret id=tok,env=MY_TOKEN`.
fn build(k: &Kiln, dockerfile: &str, tag: &str, value: &str) -> Ran {
    let ctx = k.context(&[("Dockerfile", dockerfile)]);
    let out = k
        .cmd(&[
            "build",
            "--progress",
            "plain",
            "-t",
            tag,
            "--secret",
            "id=tok,env=MY_TOKEN",
            ctx.to_str().unwrap(),
        ])
        .env("MY_TOKEN", value)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    ran(out)
}

/// Files below `dir` whose bytes contain `needle`.
fn files_containing(dir: &std::path::Path, needle: &[u8]) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(md) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if md.is_dir() {
            found.extend(files_containing(&path, needle));
        } else if md.is_file() {
            let data = std::fs::read(&path).unwrap_or_default();
            if data.windows(needle.len()).any(|w| w == needle) {
                found.push(path);
            }
        }
    }
    found
}

#[test]
fn secret_env_reaches_the_run_and_nothing_else() {
    let k = Kiln::with_busybox_image();
    let value = secret_value(&k);
    let (env_holds, file_holds) = (holds("$TOKEN", &value), holds("$(cat /run/key)", &value));
    let dockerfile = format!(
        "FROM busybox\n\
         RUN --mount=type=secret,id=tok,env=TOKEN \
             {env_holds} && test ! -e /run/secrets/tok && echo ok > /ok\n\
         RUN --mount=type=secret,id=tok,env=TOKEN,target=/run/key \
             {env_holds} && {file_holds} && echo both > /both\n\
         RUN --mount=type=secret,id=absent,env=ABSENT \
             test -z \"${{ABSENT+set}}\" && echo unset > /unset\n\
         CMD [\"cat\", \"/ok\", \"/both\", \"/unset\"]\n"
    );
    let ran = build(&k, &dockerfile, "secret-env:1", &value);
    ran.ok();
    assert!(!ran.stderr.contains(&value), "{}", ran.stderr);
    assert_eq!(k.run("secret-env:1", &[]).ok(), "ok\nboth\nunset\n");
    // The secret file is gone with the run; no mount stub stays.
    assert_eq!(
        k.sh("secret-env:1", "test -e /run/key || echo none"),
        "none\n"
    );

    // Not in the saved image (layers, config, history: an uncompressed
    // docker archive), nor anywhere in the store (blobs, snapshots, the
    // build cache records and their keys).
    let tar = k.dir.path().join("saved.tar");
    k.kiln(&["save", "-o", tar.to_str().unwrap(), "secret-env:1"])
        .ok();
    let saved = std::fs::read(&tar).unwrap();
    assert!(saved.len() > 1024, "the archive holds the image");
    assert!(
        !saved.windows(value.len()).any(|w| w == value.as_bytes()),
        "the secret is in the saved image"
    );
    assert_eq!(
        files_containing(&k.root(), value.as_bytes()),
        Vec::<std::path::PathBuf>::new(),
        "the secret is in the store"
    );

    // A changed value is the same step: the cache key holds the id and
    // the variable's name only.
    let again = build(&k, &dockerfile, "secret-env:2", "another-value");
    again.ok();
    let (cached, _) = support::kiln::step_states(&again.stderr);
    assert!(
        cached.iter().any(|s| s.contains("echo ok > /ok")),
        "{}",
        again.stderr
    );
}

#[test]
fn a_missing_required_secret_env_fails_at_its_line() {
    let k = Kiln::with_busybox_image();
    let value = secret_value(&k);
    let ran = build(
        &k,
        "FROM busybox\nRUN true\nRUN --mount=type=secret,id=nope,env=NOPE,required=true true\n",
        "secret-env-missing:1",
        &value,
    );
    let err = ran.fails();
    assert!(err.contains("Dockerfile:3"), "{err}");
    assert!(err.contains("secret nope not found"), "{err}");
}
