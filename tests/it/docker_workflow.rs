//! Issue 13's must-show walk: the docker workflow end to end on one store,
//! as a user types it: `run -d` a busybox httpd with a published loopback
//! port and a bind-mounted page, fetch it from the host, `logs`, `exec`,
//! `top`, `diff`, `commit` and run the committed image, `pause`/`unpause`,
//! `stop -t`, `start`, `restart`, `rm -f`; a second container on the user
//! network reaches the first by name; a named volume keeps data across
//! containers. Each step's own edge cases live in `containers_*`,
//! `run_network` and `run_volumes`; this test checks they compose.

use crate::run_network::{free_port, page, serves, wait_for, Detached, Net};
use crate::support::kiln::Kiln;

#[test]
fn docker_workflow_end_to_end() {
    let k = Kiln::with_busybox_image();
    let net = Net::create(&k, "flow");
    let _containers = Detached(&k);
    let port = free_port();
    let publish = format!("127.0.0.1:{port}:80");
    let www = page(&k, "hello from kiln\n");
    let id = k.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        &net.name,
        "-p",
        &publish,
        "-v",
        &www,
        "busybox",
        "sh",
        "-c",
        "echo starting httpd; exec httpd -f -v -p 80 -h /www",
    ]);
    assert_eq!(id.trim().len(), 64, "run -d prints the full ID: {id}");
    wait_for("the page over the published port", || {
        serves(port, "hello from kiln")
    });

    // logs, exec, top
    assert!(k.ok(&["logs", "web"]).contains("starting httpd"));
    assert_eq!(
        k.ok(&["exec", "web", "cat", "/www/index.html"]),
        "hello from kiln\n"
    );
    let top = k.ok(&["top", "web"]);
    assert!(top.contains("httpd"), "{top}");

    // diff and commit: the container's write becomes the new image's layer.
    k.ok(&["exec", "web", "sh", "-c", "echo made-inside > /made"]);
    let diff = k.ok(&["diff", "web"]);
    assert!(diff.lines().any(|l| l == "A /made"), "{diff}");
    let image = k.ok(&["commit", "-m", "flow", "web", "flow:committed"]);
    assert!(image.trim().starts_with("sha256:"), "{image}");
    assert_eq!(
        k.ok(&["run", "--rm", "flow:committed", "cat", "/made"]),
        "made-inside\n"
    );

    // pause / unpause: frozen, then serving again.
    k.ok(&["pause", "web"]);
    let state = k.ok(&["inspect", "--format", "{{.State.Status}}", "web"]);
    assert_eq!(state.trim(), "paused");
    k.ok(&["unpause", "web"]);
    wait_for("the page after unpause", || serves(port, "hello from kiln"));

    // A second member of the user network reaches the first by name.
    k.ok(&[
        "run",
        "-d",
        "--name",
        "client",
        "--network",
        &net.name,
        "busybox",
        "sleep",
        "1000",
    ]);
    let fetched = k.ok(&["exec", "client", "wget", "-qO-", "http://web/index.html"]);
    assert_eq!(fetched, "hello from kiln\n");

    // stop -t, start, restart: the port serves again each time.
    k.ok(&["stop", "-t", "1", "web"]);
    let ps = k.ok(&[
        "ps",
        "-a",
        "--filter",
        "name=web",
        "--format",
        "{{.Status}}",
    ]);
    assert!(ps.starts_with("Exited"), "{ps}");
    k.ok(&["start", "web"]);
    wait_for("the page after start", || serves(port, "hello from kiln"));
    k.ok(&["restart", "-t", "1", "web"]);
    wait_for("the page after restart", || serves(port, "hello from kiln"));

    // rm -f frees the name and the port.
    k.ok(&["rm", "-f", "web", "client"]);
    assert!(k.ok(&["ps", "-aq"]).trim().is_empty());
    assert!(!serves(port, "hello from kiln"));

    // A named volume keeps data across containers.
    k.ok(&[
        "run",
        "--rm",
        "-v",
        "flowdata:/data",
        "busybox",
        "sh",
        "-c",
        "echo kept > /data/f",
    ]);
    assert_eq!(
        k.ok(&[
            "run",
            "--rm",
            "-v",
            "flowdata:/data",
            "busybox",
            "cat",
            "/data/f"
        ]),
        "kept\n"
    );
}
