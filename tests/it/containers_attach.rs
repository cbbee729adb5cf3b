//! `kiln attach` and `kiln start -a -i` forwarding stdin to a `-i`
//! container through its monitor, docker's `StdinOnce` rule and detach
//! keys (docker/cli `cli/command/container/attach.go`, `hijack.go`; moby
//! `container/stream/attach.go`).

use crate::run_network::wait_for;
use crate::support;
use std::io::Write;
use std::process::Stdio;
use support::kiln::{ContainerStore, Kiln};

fn store() -> ContainerStore {
    ContainerStore {
        k: Kiln::with_busybox_image(),
    }
}

#[test]
fn attach_forwards_stdin_keeps_it_open_across_attaches_and_detaches_on_the_keys() {
    let k = store();
    k.ok(&[
        "run",
        "-d",
        "-i",
        "--name",
        "echoer",
        "busybox",
        "sh",
        "-c",
        "while read l; do echo got:$l; done; echo eof",
    ]);
    // Ctrl-P Ctrl-Q: what came before is sent, what follows is not, and
    // the container keeps running.
    let r = k.kiln_with_stdin(&["attach", "echoer"], b"one\n\x10\x11two\n");
    assert!(
        r.fails_with(1).contains("read escape sequence"),
        "{}",
        r.stderr
    );
    let logs = || k.ok(&["logs", "echoer"]);
    wait_for("got:one in the log", || logs().contains("got:one"));

    // A client whose stdin ends: a `run -d -i` container (no StdinOnce)
    // keeps its stdin, and the client follows the output until the end.
    let mut second = k
        .cmd(&["attach", "echoer"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    second.stdin.take().unwrap().write_all(b"three\n").unwrap();
    wait_for("got:three in the log", || logs().contains("got:three"));

    // The stdin is still open for a third client, with its own keys.
    let r = k.kiln_with_stdin(
        &["attach", "--detach-keys", "ctrl-a", "echoer"],
        b"four\n\x01",
    );
    assert!(
        r.fails_with(1).contains("read escape sequence"),
        "{}",
        r.stderr
    );
    wait_for("got:four in the log", || logs().contains("got:four"));
    assert_eq!(logs(), "got:one\ngot:three\ngot:four\n");

    k.ok(&["kill", "echoer"]);
    let out = second.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(137));
    assert!(String::from_utf8_lossy(&out.stdout).contains("got:four"));
}

#[test]
fn start_attach_interactive_closes_a_created_containers_stdin_at_the_clients_eof() {
    let k = store();
    // `create -i` sets StdinOnce (docker/cli opts.go): the client's EOF is
    // the container's, so `cat` ends.
    k.ok(&[
        "create",
        "-i",
        "--name",
        "once",
        "busybox",
        "sh",
        "-c",
        "cat; echo done",
    ]);
    let r = k.kiln_with_stdin(&["start", "-a", "-i", "once"], b"x\ny\n");
    assert_eq!(r.ok(), "x\ny\ndone\n");
}

#[test]
fn attach_to_a_paused_container_is_refused_like_docker() {
    let k = store();
    k.ok(&["run", "-d", "-i", "--name", "frozen", "busybox", "cat"]);
    k.ok(&["pause", "frozen"]);
    let r = k.kiln(&["attach", "frozen"]);
    assert!(r
        .fails_with(1)
        .contains("You cannot attach to a paused container, unpause it first"));
    k.ok(&["unpause", "frozen"]);
}

#[test]
fn bad_detach_keys_name_the_flag_and_what_was_expected() {
    let k = Kiln::new();
    let r = k.kiln(&["attach", "--detach-keys", "ctrl-foo", "c"]);
    let err = r.fails_with(125);
    assert!(err.contains("--detach-keys"), "{err}");
    assert!(err.contains("Unknown character: 'ctrl-foo'"), "{err}");
}

/// Regression: a restarted container's `/etc/hosts` was written again
/// from its creation-time spec, so it named a member removed while it was
/// stopped and missed one that joined meanwhile.
#[test]
fn a_restarted_member_of_a_user_network_serves_current_names() {
    let k = store();
    let net = crate::run_network::Net::create(&k, "rehost");
    let run = |name: &str| {
        k.ok(&[
            "run",
            "-d",
            "--name",
            name,
            "--network",
            &net.name,
            "busybox",
            "sleep",
            "600",
        ]);
    };
    run("alpha");
    run("beta");
    k.ok(&["stop", "-t", "0", "alpha"]);
    run("gamma");
    k.ok(&["rm", "-f", "beta"]);
    k.ok(&["start", "alpha"]);
    let hosts = k.ok(&["exec", "alpha", "cat", "/etc/hosts"]);
    let gamma = k.ok(&["exec", "gamma", "hostname", "-i"]);
    let alpha = k.ok(&["exec", "alpha", "hostname", "-i"]);
    assert!(
        hosts
            .lines()
            .any(|l| l.starts_with(&format!("{}\tgamma", gamma.trim()))),
        "{hosts}"
    );
    assert!(!hosts.contains("beta"), "{hosts}");
    // The others name it at its address.
    let seen = k.ok(&["exec", "gamma", "grep", "-w", "alpha", "/etc/hosts"]);
    assert!(
        seen.starts_with(&format!("{}\talpha", alpha.trim())),
        "{seen}"
    );
    k.ok(&["rm", "-f", "alpha", "gamma"]);
}
