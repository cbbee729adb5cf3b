//! `kiln build --ssh` and `RUN --mount=type=ssh`: a step reaches the
//! user's SSH agent, or keys kiln serves as one, through a socket of its
//! own, and nothing of the key or the agent reaches the image, the store
//! or the cache key (BuildKit's `session/sshforward`).

use crate::support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use support::kiln::{ran, step_states, Kiln, Ran};
use support::sshd::{keygen, SshAgent, SshServer};

/// Runs `git args...` on the host (the test's own repository).
#[track_caller]
fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("/usr/bin/git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=kiln", "-c", "user.email=kiln@test"])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {out:?}");
}

/// A bare repository at `<k>/repo.git` with one commit whose `README`
/// holds `content`.
fn private_repo(k: &Kiln, content: &str) -> PathBuf {
    let work = k.path("work");
    std::fs::create_dir_all(&work).unwrap();
    git(&work, &["init", "-q"]);
    std::fs::write(work.join("README"), content).unwrap();
    git(&work, &["add", "README"]);
    git(&work, &["commit", "-q", "-m", "private"]);
    let bare = k.path("repo.git");
    git(
        &work,
        &["clone", "-q", "--bare", ".", bare.to_str().unwrap()],
    );
    bare
}

/// `kiln build` with `flags`, `SSH_AUTH_SOCK` set to `agent` (or unset).
fn build(k: &Kiln, ctx: &Path, flags: &[&str], agent: Option<&Path>) -> Ran {
    let mut cmd = k.cmd(&["build", "--progress", "plain"]);
    cmd.args(flags).arg(ctx).stdin(Stdio::null());
    match agent {
        Some(sock) => cmd.env("SSH_AUTH_SOCK", sock),
        None => cmd.env_remove("SSH_AUTH_SOCK"),
    };
    ran(cmd.output().unwrap())
}

/// The files among `paths` (directories searched recursively, symlinks
/// not followed) holding one of the lines of `needles`: `grep -F`, which
/// takes a second where a byte loop in a debug build takes a minute.
fn files_holding(paths: &[PathBuf], needles: &Path) -> Vec<String> {
    let out = Command::new("grep")
        .args(["-r", "-l", "-a", "-F", "-f"])
        .arg(needles)
        .args(paths)
        .output()
        .unwrap();
    // 0: found, 1: none found, 2: an error.
    assert!(out.status.code() != Some(2), "grep: {out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// Each gzip or zstd file below `dir`, decompressed into `into`.
fn decompress_blobs(dir: &Path, into: &Path) {
    use std::io::Read;
    std::fs::create_dir_all(into).unwrap();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        let md = std::fs::symlink_metadata(&path).unwrap();
        if md.is_dir() {
            decompress_blobs(&path, into);
            continue;
        }
        if !md.is_file() {
            continue;
        }
        let mut magic = [0u8; 4];
        let Ok(mut f) = std::fs::File::open(&path) else {
            continue;
        };
        if f.read_exact(&mut magic).is_err() {
            continue;
        }
        let data = std::fs::read(&path).unwrap();
        let plain = if magic[..2] == [0x1f, 0x8b] {
            let mut out = Vec::new();
            flate2::read::MultiGzDecoder::new(&data[..])
                .read_to_end(&mut out)
                .unwrap();
            out
        } else if magic == [0x28, 0xb5, 0x2f, 0xfd] {
            zstd::decode_all(&data[..]).unwrap()
        } else {
            continue;
        };
        let name = path.file_name().unwrap();
        std::fs::write(into.join(name), plain).unwrap();
    }
}

/// What of a key pair must never be stored, one per line: each line of
/// the private key's base64 body, the public key's base64, and the
/// file's path.
fn key_needles(key: &Path) -> Vec<String> {
    let private = std::fs::read_to_string(key).unwrap();
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    let mut needles: Vec<String> = private
        .lines()
        .filter(|l| !l.starts_with("-----") && l.len() >= 16)
        .map(str::to_string)
        .collect();
    needles.push(public.split_whitespace().nth(1).unwrap().to_string());
    needles.push(key.to_str().unwrap().to_string());
    needles
}

#[test]
fn ssh_mount_clones_a_private_repository_and_leaves_no_key_behind() {
    let k = Kiln::new();
    k.import_host_tools(
        "tools:latest",
        &["/usr/bin/git", "/usr/bin/ssh", "/usr/bin/ssh-add"],
        // git runs its own builtins (index-pack) from its exec path.
        &[("/usr/lib/git-core/git", "/usr/bin/git")],
    );
    let (key_a, key_b) = (k.path("id_a"), k.path("id_b"));
    keygen(&key_a, "");
    keygen(&key_b, "");
    let content = format!("private-{}", k.dir.path().display());
    let repo = private_repo(&k, &content);
    let server = SshServer::start(
        &k.path("sshd"),
        &[key_a.with_extension("pub"), key_b.with_extension("pub")],
    );
    let port = server.port;
    let clone = format!(
        "GIT_SSH_COMMAND='ssh -p {port} -o StrictHostKeyChecking=no \
         -o UserKnownHostsFile=/dev/null -o BatchMode=yes' \
         git clone -q ssh://root@127.0.0.1:{port}{repo} /src",
        repo = repo.display()
    );
    let dockerfile = format!(
        "FROM tools\n\
         RUN --network=host --mount=type=ssh \
         test -S \"$SSH_AUTH_SOCK\" && test \"$SSH_AUTH_SOCK\" = /run/buildkit/ssh_agent.0 && {clone}\n"
    );
    let ctx = k.context(&[("Dockerfile", &dockerfile)]);
    let host = ["--allow", "network.host"];

    // Key files kiln serves itself as an agent.
    let with_a = format!("default={}", key_a.display());
    let first = build(
        &k,
        &ctx,
        &[&host[..], &["-t", "cloned:a", "--ssh", &with_a]].concat(),
        None,
    );
    first.ok();
    assert_eq!(
        k.run("cloned:a", &["cat", "/src/README"]).ok(),
        content.as_str()
    );
    // The socket's mount point went with the step, as BuildKit's does.
    assert_eq!(
        k.sh(
            "cloned:a",
            "test -e /run/buildkit && echo left || echo gone"
        ),
        "gone\n"
    );

    // Another key: the same step, a cache hit (only the id is in its key).
    let with_b = format!("default={}", key_b.display());
    let second = build(
        &k,
        &ctx,
        &[&host[..], &["-t", "cloned:b", "--ssh", &with_b]].concat(),
        None,
    );
    second.ok();
    let (cached, ran_steps) = step_states(&second.stderr);
    assert!(
        cached.iter().any(|s| s.contains("git clone")),
        "cached {cached:?}, ran {ran_steps:?}\n{}",
        second.stderr
    );

    // A real ssh-agent, forwarded as `--ssh default` through SSH_AUTH_SOCK.
    let agent = SshAgent::start(&k.path("agent.sock"), &[&key_a]);
    let third = build(
        &k,
        &ctx,
        &[
            &host[..],
            &["-t", "cloned:agent", "--no-cache", "--ssh", "default"],
        ]
        .concat(),
        Some(&agent.socket),
    );
    third.ok();
    assert_eq!(
        k.run("cloned:agent", &["cat", "/src/README"]).ok(),
        content.as_str()
    );

    // The step reaches the agent read-only (BuildKit's readOnlyAgent): it
    // lists the key but cannot remove it. `ID=SOCKET` names the socket.
    let ctx_rm = k.context(&[(
        "Dockerfile",
        "FROM tools\nRUN --mount=type=ssh,id=mine ssh-add -l && if ssh-add -D; then exit 1; fi\n",
    )]);
    let mine = format!("mine={}", agent.socket.display());
    build(&k, &ctx_rm, &["--ssh", &mine], None).ok();
    let listed = Command::new("ssh-add")
        .arg("-l")
        .env("SSH_AUTH_SOCK", &agent.socket)
        .output()
        .unwrap();
    assert!(
        listed.status.success(),
        "the agent lost its key: {listed:?}"
    );
    drop(agent);
    drop(server);
    // Every step's socket is gone with its step: no socket left anywhere
    // in the store (scratch dirs included).
    let sockets = Command::new("find")
        .arg(k.root())
        .args(["-type", "s"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&sockets.stdout), "");

    // Nothing of either key (nor the agent's socket path) in any layer of
    // the results (uncompressed docker archives), nor anywhere in the
    // store: blobs (decompressed too), snapshots, build cache records.
    let mut needles = key_needles(&key_a);
    needles.extend(key_needles(&key_b));
    needles.push(k.path("agent.sock").to_str().unwrap().to_string());
    let needles_file = k.path("needles");
    std::fs::write(&needles_file, needles.join("\n") + "\n").unwrap();
    let mut searched = Vec::new();
    for image in ["cloned:a", "cloned:b", "cloned:agent"] {
        let tar = k.path(&format!("{}.saved.tar", image.replace(':', "-")));
        k.kiln(&["save", "-o", tar.to_str().unwrap(), image]).ok();
        assert!(std::fs::metadata(&tar).unwrap().len() > 1024);
        searched.push(tar);
    }
    decompress_blobs(&k.root(), &k.path("decompressed"));
    searched.extend([k.root(), k.path("decompressed")]);
    // The search itself finds the keys where they are (the test's files).
    assert_eq!(
        files_holding(std::slice::from_ref(&key_a), &needles_file),
        [key_a.display().to_string()]
    );
    assert_eq!(
        files_holding(&searched, &needles_file),
        Vec::<String>::new(),
        "key material in an image or the store"
    );
}

#[test]
fn ssh_socket_gets_the_mounts_target_owner_and_mode_and_a_missing_optional_one_is_left_out() {
    let k = Kiln::with_busybox_image();
    let key = k.path("id");
    keygen(&key, "");
    let ctx = k.context(&[(
        "Dockerfile",
        "FROM busybox\n\
         RUN --mount=type=ssh,id=deploy,target=/agent.sock,uid=1000,gid=1001,mode=0640 \
         test -S /agent.sock && test \"$(stat -c '%u:%g %a' /agent.sock)\" = '1000:1001 640' \
         && test \"$SSH_AUTH_SOCK\" = /agent.sock && echo ok > /owned\n\
         RUN --mount=type=ssh test ! -e /run/buildkit/ssh_agent.0 && test \"$SSH_AUTH_SOCK\" = /run/buildkit/ssh_agent.0\n",
    )]);
    let deploy = format!("deploy={}", key.display());
    build(&k, &ctx, &["-t", "modes", "--ssh", &deploy], None).ok();
    assert_eq!(
        k.sh("modes", "cat /owned; test -e /agent.sock || echo gone"),
        "ok\ngone\n"
    );
}

#[test]
fn required_ssh_without_its_agent_fails_before_any_step_runs() {
    let k = Kiln::with_busybox_image();
    let key = k.path("id");
    keygen(&key, "");
    let ctx = k.context(&[(
        "Dockerfile",
        "FROM busybox\nRUN echo first-step-ran\n\
         RUN --mount=type=ssh,required=true true\n",
    )]);
    // No --ssh at all: BuildKit's "no SSH key forwarded" message.
    let none = build(&k, &ctx, &[], None);
    let err = none.fails();
    assert!(
        err.contains("no SSH key \"default\" forwarded from the client"),
        "{err}"
    );
    assert!(!err.contains("first-step-ran"), "a step ran:\n{err}");
    // Another id only: the provider's "unset ssh forward key".
    let other = format!("other={}", key.display());
    let err = build(&k, &ctx, &["--ssh", &other], None)
        .fails()
        .to_string();
    assert!(err.contains("unset ssh forward key default"), "{err}");
    assert!(!err.contains("first-step-ran"), "a step ran:\n{err}");
}

#[test]
fn bad_ssh_values_name_the_flag_and_the_cause() {
    let k = Kiln::with_busybox_image();
    let ctx = k.context(&[("Dockerfile", "FROM busybox\nRUN --mount=type=ssh true\n")]);
    let missing = k.path("no-such-key");
    let spec = format!("default={}", missing.display());
    let err = build(&k, &ctx, &["--ssh", &spec], None).fails().to_string();
    assert!(err.contains(&format!("--ssh {spec:?}")), "{err}");
    assert!(
        err.contains("No such file or directory (os error 2)"),
        "{err}"
    );

    let encrypted = k.path("enc");
    keygen(&encrypted, "a passphrase");
    let spec = format!("default={}", encrypted.display());
    let err = build(&k, &ctx, &["--ssh", &spec], None).fails().to_string();
    assert!(err.contains("failed to parse"), "{err}");
    assert!(err.contains("passphrase protected"), "{err}");

    let not_a_key = k.path("junk");
    std::fs::write(&not_a_key, "junk").unwrap();
    let spec = format!("k={}", not_a_key.display());
    let err = build(&k, &ctx, &["--ssh", &spec], None).fails().to_string();
    assert!(
        err.contains(&format!("--ssh {spec:?}: failed to parse")),
        "{err}"
    );

    // `default` without SSH_AUTH_SOCK.
    let err = build(&k, &ctx, &["--ssh", "default"], None)
        .fails()
        .to_string();
    assert!(err.contains("make sure SSH_AUTH_SOCK is set"), "{err}");
    // A socket nobody listens on.
    let dead = k.path("dead.sock");
    drop(std::os::unix::net::UnixListener::bind(&dead).unwrap());
    let err = build(&k, &ctx, &["--ssh", "default"], Some(&dead))
        .fails()
        .to_string();
    assert!(err.contains("connecting to the agent"), "{err}");
    assert!(err.contains("(os error 111)"), "{err}");
}
