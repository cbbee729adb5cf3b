//! `kiln run` on bridge networks (issue 13): published ports reached from
//! the host's loopback, names resolved between members of a user network,
//! `--add-host`, `--dns`, the hostname in `/etc/hosts`, and nothing left
//! behind (veth, iptables rule, address) once the containers are gone;
//! detached containers (`run -d`, `create` + `start`) whose monitor
//! plumbs the endpoint the CLI reserved, and SIGKILL to that monitor.
//!
//! Each test makes its own user network (removed at its end, also when it
//! fails) and talks only to 127.0.0.1 and to its containers' addresses.

use crate::support::kiln::{ran, Kiln, Ran};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// A user network of the test's own; removed on drop.
pub(crate) struct Net<'a> {
    k: &'a Kiln,
    pub(crate) name: String,
    bridge: String,
}

impl<'a> Net<'a> {
    pub(crate) fn create(k: &'a Kiln, test: &str) -> Net<'a> {
        let name = format!("{test}-{}", std::process::id());
        k.ok(&["network", "create", &name]);
        let bridge = k.ok(&["network", "inspect", &name]);
        let json: serde_json::Value = serde_json::from_str(&bridge).unwrap();
        let bridge = json[0]["Options"]["com.docker.network.bridge.name"]
            .as_str()
            .unwrap()
            .to_string();
        Net { k, name, bridge }
    }

    fn inspect(&self) -> serde_json::Value {
        let out = self.k.ok(&["network", "inspect", &self.name]);
        serde_json::from_str::<serde_json::Value>(&out).unwrap()[0].clone()
    }

    /// The members as (address, host veth).
    fn members(&self) -> Vec<(String, String)> {
        let json = self.inspect();
        json["Containers"]
            .as_object()
            .unwrap()
            .values()
            .map(|c| {
                let addr = c["IPv4Address"].as_str().unwrap();
                (
                    addr.split('/').next().unwrap().to_string(),
                    c["Interface"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    fn gateway(&self) -> String {
        self.inspect()["IPAM"]["Config"][0]["Gateway"]
            .as_str()
            .unwrap()
            .to_string()
    }
}

impl Drop for Net<'_> {
    fn drop(&mut self) {
        // A test that failed may leave a killed run's endpoint behind.
        let _ = self.k.output(&["network", "prune", "-f"]);
        let _ = self.k.output(&["network", "rm", &self.name]);
    }
}

/// A `kiln run` in the background, sent SIGTERM (by pid) on drop.
struct Background(Child);

impl Background {
    fn start(k: &Kiln, args: &[&str]) -> Background {
        let mut c = k.run_command();
        c.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        Background(c.spawn().expect("starting kiln run"))
    }

    /// Stops it (SIGTERM through `--init` to the command) and waits.
    fn stop(mut self) -> Ran {
        self.term();
        let child = std::mem::replace(&mut self.0, dummy_child());
        std::mem::forget(self);
        ran(child.wait_with_output().unwrap())
    }

    fn term(&self) {
        // SAFETY: signalling a child this test started, by its pid.
        unsafe {
            libc::kill(self.0.id() as i32, libc::SIGTERM);
        }
    }
}

fn dummy_child() -> Child {
    std::process::Command::new("true").spawn().unwrap()
}

impl Drop for Background {
    fn drop(&mut self) {
        self.term();
        let _ = self.0.wait();
    }
}

/// A port nothing listens on now.
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `until` polled until true; fails after 20 s (a readiness wait, not a
/// speed check).
pub(crate) fn wait_for(what: &str, mut until: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !until() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

fn iptables_save() -> String {
    let out = std::process::Command::new("iptables-save")
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn link_exists(name: &str) -> bool {
    std::path::Path::new("/sys/class/net").join(name).exists()
}

#[test]
fn a_published_loopback_port_reaches_httpd_and_nothing_is_left_after_it() {
    let k = Kiln::with_busybox_image();
    let net = Net::create(&k, "pub");
    let www = k.path("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("index.html"), "served-by-kiln-bridge\n").unwrap();
    let port = free_port();
    let publish = format!("127.0.0.1:{port}:80");
    let volume = format!("{}:/www:ro", www.display());
    let httpd = Background::start(
        &k,
        &[
            "--rm",
            "--init",
            "--network",
            &net.name,
            "-p",
            &publish,
            "-v",
            &volume,
            "busybox",
            "httpd",
            "-f",
            "-p",
            "80",
            "-h",
            "/www",
        ],
    );
    let mut page = None;
    wait_for("httpd behind the published port", || {
        page = http_get(port, "/index.html").filter(|p| p.contains("served-by-kiln-bridge"));
        page.is_some()
    });
    let members = net.members();
    assert_eq!(members.len(), 1, "{members:?}");
    let (address, veth) = members[0].clone();
    assert!(link_exists(&veth), "the host end of the veth, {veth}");
    let rules = iptables_save();
    assert!(
        rules.contains(&format!("--to-destination {address}:80")),
        "the DNAT rule:\n{rules}"
    );

    // The port is taken: docker's message, kiln's own error status.
    let again = k.kiln(&[
        "run",
        "--rm",
        "--network",
        &net.name,
        "-p",
        &publish,
        "busybox",
        "true",
    ]);
    let err = again.fails_with(125);
    assert!(err.contains("port is already allocated"), "{err}");

    httpd.stop();
    assert!(!link_exists(&veth), "{veth} outlived its container");
    let rules = iptables_save();
    assert!(
        !rules.contains(&format!("--to-destination {address}:80")),
        "a DNAT rule outlived its container:\n{rules}"
    );
    assert!(net.members().is_empty(), "the address was not freed");
    k.ok(&["network", "rm", &net.name]);
    assert!(
        !link_exists(&net.bridge),
        "the bridge outlived `network rm`"
    );
    assert!(
        !iptables_save().contains(&net.bridge),
        "a rule of the removed network is left"
    );
}

#[test]
fn containers_on_a_user_network_reach_each_other_by_name() {
    let k = Kiln::with_busybox_image();
    let net = Net::create(&k, "names");
    let name = format!("srv-{}", std::process::id());
    let server = Background::start(
        &k,
        &[
            "--rm",
            "--init",
            "--name",
            &name,
            "--network",
            &net.name,
            "busybox",
            "httpd",
            "-f",
            "-p",
            "80",
            "-h",
            "/",
        ],
    );
    wait_for("the server on the network", || net.members().len() == 1);
    let script = format!(
        "for i in $(seq 50); do ping -c1 -W1 {name} >/dev/null 2>&1 && break; sleep 0.2; done; \
         ping -c1 -W1 {name} >/dev/null && echo reached; grep -w {name} /etc/hosts"
    );
    let out = k.ok(&[
        "run",
        "--rm",
        "--network",
        &net.name,
        "busybox",
        "sh",
        "-c",
        &script,
    ]);
    let server_address = net.members()[0].0.clone();
    assert!(out.contains("reached"), "{out}");
    assert!(out.contains(&server_address), "{out}");
    // The client left: its line went from the server's /etc/hosts.
    let hosts = std::fs::read_to_string(
        std::fs::read_dir(k.root().join("containers"))
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.path().join("hosts"))
            .find(|p| p.exists())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        hosts
            .lines()
            .filter(|l| l.starts_with("10.") || l.starts_with("172."))
            .count(),
        1,
        "{hosts}"
    );
    drop(server.stop());
    assert!(net.members().is_empty());
}

#[test]
fn add_host_dns_and_the_hostname_are_in_the_network_files() {
    let k = Kiln::with_busybox_image();
    let net = Net::create(&k, "files");
    let out = k.ok(&[
        "run",
        "--rm",
        "--network",
        &net.name,
        "--hostname",
        "web1",
        "--add-host",
        "db:192.0.2.9",
        "--add-host",
        "gw:host-gateway",
        "--dns",
        "192.0.2.53",
        "busybox",
        "sh",
        "-c",
        "cat /etc/hosts /etc/resolv.conf; echo addr=$(hostname -i)",
    ]);
    let gateway = net.gateway();
    let address = out
        .lines()
        .find_map(|l| l.strip_prefix("addr="))
        .unwrap()
        .trim()
        .to_string();
    assert!(out.contains(&format!("{address}\tweb1\n")), "{out}");
    assert!(out.contains("192.0.2.9\tdb\n"), "{out}");
    assert!(out.contains(&format!("{gateway}\tgw\n")), "{out}");
    assert!(out.contains("nameserver 192.0.2.53\n"), "{out}");
    assert!(!out.contains("nameserver 127."), "{out}");
}

#[test]
fn bad_publish_specs_and_unknown_networks_are_kiln_errors() {
    let k = Kiln::with_busybox_rootfs();
    for (spec, says) in [
        ("127.0.0.1:x:80", "invalid hostPort"),
        ("80/sctp", "invalid proto"),
        ("1.2.3:80:80", "invalid IP address"),
    ] {
        let r = k.run_rootfs(&["--rm", "-p", spec], &["true"]);
        let err = r.fails_with(125);
        assert!(
            err.contains("--publish") && err.contains(says),
            "{spec}: {err}"
        );
    }
    let r = k.run_rootfs(&["--rm", "--network", "nope-net"], &["true"]);
    let err = r.fails_with(125);
    assert!(err.contains("network nope-net not found"), "{err}");
}

#[test]
fn a_port_a_host_process_holds_is_refused() {
    let k = Kiln::with_busybox_rootfs();
    let net = Net::create(&k, "inuse");
    let holder = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port();
    let publish = format!("127.0.0.1:{port}:80");
    let r = k.run_rootfs(&["--rm", "--network", &net.name, "-p", &publish], &["true"]);
    let err = r.fails_with(125);
    assert!(err.contains("address already in use"), "{err}");
    assert!(net.members().is_empty(), "a refused run kept its address");
}

#[test]
fn a_sigkilled_run_leaves_an_endpoint_that_prune_removes_exactly() {
    let k = Kiln::with_busybox_image();
    let net = Net::create(&k, "killed");
    let port = free_port();
    let publish = format!("127.0.0.1:{port}:80");
    let mut httpd = Background::start(
        &k,
        &[
            "--init",
            "--network",
            &net.name,
            "-p",
            &publish,
            "busybox",
            "httpd",
            "-f",
            "-p",
            "80",
            "-h",
            "/",
        ],
    );
    wait_for("httpd behind the published port", || {
        http_get(port, "/").is_some_and(|r| r.starts_with("HTTP/"))
    });
    let (address, veth) = net.members()[0].clone();
    let rule = format!("-j DNAT --to-destination {address}:80");
    // SIGKILL: kiln cannot detach; its container dies with it (PDEATHSIG).
    // SAFETY: signalling the child this test started, by its pid.
    unsafe {
        libc::kill(httpd.0.id() as i32, libc::SIGKILL);
    }
    let _ = httpd.0.wait();
    assert!(
        iptables_save().contains(&rule),
        "the rule is only removed by a sweep"
    );
    assert_eq!(net.members().len(), 1, "the endpoint is still recorded");
    // Its init takes a moment to die after kiln; until then it holds (and
    // its network is in use).
    wait_for("prune to find the endpoint stale", || {
        k.ok(&["network", "prune", "-f"]) == format!("Deleted Networks:\n{}\n\n", net.name)
    });
    assert!(!link_exists(&veth), "{veth} outlived its container");
    assert!(!iptables_save().contains(&rule), "prune left the DNAT rule");
    // Idempotent: nothing left to remove, and the port can be published again.
    assert_eq!(k.ok(&["network", "prune", "-f"]), "");
    let again = k.kiln(&["run", "--rm", "-p", &publish, "busybox", "true"]);
    again.ok();
}

#[test]
fn connect_and_disconnect_a_running_container() {
    let k = Kiln::with_busybox_image();
    let first = Net::create(&k, "conn1");
    let second = Net::create(&k, "conn2");
    let name = format!("joiner-{}", std::process::id());
    let server = Background::start(
        &k,
        &[
            "--rm",
            "--init",
            "--name",
            &name,
            "--network",
            &first.name,
            "busybox",
            "httpd",
            "-f",
            "-p",
            "80",
            "-h",
            "/",
        ],
    );
    wait_for("the server's namespace to be plumbed", || {
        k.kiln(&["network", "connect", &second.name, &name]).code == 0
    });
    assert_eq!(second.members().len(), 1);
    let script = format!(
        "for i in $(seq 50); do ping -c1 -W1 {name} >/dev/null 2>&1 && echo reached && exit; sleep 0.2; done"
    );
    let out = k.ok(&[
        "run",
        "--rm",
        "--network",
        &second.name,
        "busybox",
        "sh",
        "-c",
        &script,
    ]);
    assert!(out.contains("reached"), "{out}");
    let err = k.fails(&["network", "rm", &second.name]);
    assert!(err.contains("has active endpoints"), "{err}");
    k.ok(&["network", "disconnect", &second.name, &name]);
    assert!(second.members().is_empty());
    k.ok(&["network", "rm", &second.name]);
    drop(server.stop());
}

#[test]
fn network_container_name_shares_the_other_containers_namespace() {
    let k = Kiln::with_busybox_image();
    let net = Net::create(&k, "join");
    let www = k.path("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("index.html"), "from-the-shared-namespace\n").unwrap();
    let name = format!("host-of-{}", std::process::id());
    let volume = format!("{}:/www:ro", www.display());
    let server = Background::start(
        &k,
        &[
            "--rm",
            "--init",
            "--name",
            &name,
            "--network",
            &net.name,
            "-v",
            &volume,
            "busybox",
            "httpd",
            "-f",
            "-p",
            "80",
            "-h",
            "/www",
        ],
    );
    wait_for("the server on the network", || net.members().len() == 1);
    let mode = format!("container:{name}");
    let script = "for i in $(seq 50); do wget -qO- http://127.0.0.1/index.html && exit; sleep 0.2; done; exit 1";
    let out = k.ok(&[
        "run",
        "--rm",
        "--network",
        &mode,
        "busybox",
        "sh",
        "-c",
        script,
    ]);
    assert!(out.contains("from-the-shared-namespace"), "{out}");
    // No endpoint of its own: it is the server's namespace.
    assert_eq!(net.members().len(), 1);
    let err = k
        .kiln(&[
            "run",
            "--rm",
            "--network",
            &mode,
            "-p",
            "8080:80",
            "busybox",
            "true",
        ])
        .fails_with(125)
        .to_string();
    assert!(
        err.contains("conflicting options: port publishing"),
        "{err}"
    );
    drop(server.stop());
    let err = k
        .kiln(&["run", "--rm", "--network", &mode, "busybox", "true"])
        .fails_with(125)
        .to_string();
    assert!(err.contains("no such container"), "{err}");
}

#[test]
fn link_names_another_container_under_its_alias() {
    let k = Kiln::with_busybox_image();
    let net = Net::create(&k, "link");
    let name = format!("linked-{}", std::process::id());
    let server = Background::start(
        &k,
        &[
            "--rm",
            "--init",
            "--name",
            &name,
            "--network",
            &net.name,
            "busybox",
            "httpd",
            "-f",
            "-p",
            "80",
            "-h",
            "/",
        ],
    );
    wait_for("the server on the network", || net.members().len() == 1);
    let address = net.members()[0].0.clone();
    let link = format!("{name}:db");
    let out = k.ok(&[
        "run",
        "--rm",
        "--network",
        &net.name,
        "--link",
        &link,
        "busybox",
        "sh",
        "-c",
        "grep -w db /etc/hosts",
    ]);
    assert_eq!(out.trim(), format!("{address}\tdb {name}"), "{out}");
    let err = k
        .kiln(&[
            "run",
            "--rm",
            "--network",
            &net.name,
            "--link",
            "nobody-here",
            "busybox",
            "true",
        ])
        .fails_with(125)
        .to_string();
    assert!(
        err.contains("no such container on a network: nobody-here"),
        "{err}"
    );
    drop(server.stop());
}

/// Detached containers of one store, force-removed on drop (declared
/// after the test's `Net`, so they go first and no monitor outlives a
/// failed test).
pub(crate) use crate::support::kiln::RemoveContainersOnDrop as Detached;

/// A page for httpd under the store's `www`, and its `-v` value.
pub(crate) fn page(k: &Kiln, text: &str) -> String {
    let www = k.path("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("index.html"), text).unwrap();
    format!("{}:/www:ro", www.display())
}

pub(crate) fn serves(port: u16, text: &str) -> bool {
    http_get(port, "/index.html").is_some_and(|p| p.contains(text))
}

fn dnat_to(address: &str) -> bool {
    iptables_save().contains(&format!("--to-destination {address}:80"))
}

#[test]
fn a_detached_httpd_keeps_its_published_port_across_stop_and_start_and_rm_leaves_nothing() {
    let k = Kiln::with_busybox_image();
    let net = Net::create(&k, "dweb");
    let _containers = Detached(&k);
    let volume = page(&k, "served-detached\n");
    let port = free_port();
    let publish = format!("127.0.0.1:{port}:80");
    k.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        &net.name,
        "-p",
        &publish,
        "-v",
        &volume,
        "busybox",
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/www",
    ]);
    wait_for("the detached httpd", || serves(port, "served-detached"));
    let members = net.members();
    assert_eq!(members.len(), 1, "{members:?}");
    let (address, veth) = members[0].clone();
    assert!(link_exists(&veth), "the host end of the veth, {veth}");
    assert!(dnat_to(&address), "the DNAT rule:\n{}", iptables_save());

    // The port is the detached container's: refused before anything runs.
    let again = k.kiln(&[
        "run",
        "-d",
        "--network",
        &net.name,
        "-p",
        &publish,
        "busybox",
        "true",
    ]);
    let err = again.fails_with(125);
    assert!(err.contains("port is already allocated"), "{err}");
    assert_eq!(k.ok(&["ps", "-aq"]).lines().count(), 1);

    // Stopped: unplumbed, but its address and port stay its own.
    k.ok(&["stop", "-t", "1", "web"]);
    assert!(!link_exists(&veth), "{veth} outlived the stopped run");
    assert!(!dnat_to(&address), "a DNAT rule outlived the stopped run");
    assert_eq!(net.members(), vec![(address.clone(), veth.clone())]);
    k.ok(&["start", "web"]);
    wait_for("httpd started again", || serves(port, "served-detached"));
    assert!(link_exists(&veth), "start plumbs the veth again");

    // A second detached member resolves the first by name.
    k.ok(&[
        "run",
        "-d",
        "--name",
        "c2",
        "--network",
        &net.name,
        "busybox",
        "sleep",
        "1000",
    ]);
    let fetched = k.ok(&["exec", "c2", "wget", "-qO-", "http://web/index.html"]);
    assert_eq!(fetched, "served-detached\n");

    k.ok(&["rm", "-f", "web", "c2"]);
    assert!(!link_exists(&veth), "{veth} outlived rm -f");
    assert!(!dnat_to(&address), "a DNAT rule outlived rm -f");
    assert!(net.members().is_empty(), "rm -f did not free the addresses");
    assert!(
        !iptables_save().contains(&format!("--dport {port} ")),
        "a rule for the published port is left"
    );
}

#[test]
fn create_reserves_the_port_and_start_and_restart_plumb_it() {
    let k = Kiln::with_busybox_image();
    let net = Net::create(&k, "dmade");
    let _containers = Detached(&k);
    let volume = page(&k, "served-created\n");
    let port = free_port();
    let publish = format!("127.0.0.1:{port}:80");
    k.ok(&[
        "create",
        "--name",
        "made",
        "--network",
        &net.name,
        "-p",
        &publish,
        "-v",
        &volume,
        "busybox",
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/www",
    ]);
    let members = net.members();
    assert_eq!(members.len(), 1, "create reserves the address: {members:?}");
    let veth = members[0].1.clone();
    assert!(!link_exists(&veth), "nothing is plumbed before start");
    let taken = k.kiln(&["run", "--rm", "-p", &publish, "busybox", "true"]);
    assert!(taken.fails_with(125).contains("port is already allocated"));

    k.ok(&["start", "made"]);
    wait_for("the created httpd", || serves(port, "served-created"));
    k.ok(&["restart", "-t", "1", "made"]);
    wait_for("httpd after restart", || serves(port, "served-created"));

    // `container:NAME` finds the detached container and shares its
    // namespace (its loopback reaches httpd).
    let shared = k.ok(&[
        "run",
        "--rm",
        "--network",
        "container:made",
        "busybox",
        "wget",
        "-qO-",
        "http://127.0.0.1/index.html",
    ]);
    assert_eq!(shared, "served-created\n");
    // Also one on no kiln network, found through its row.
    k.ok(&[
        "run",
        "-d",
        "--name",
        "lone",
        "--network",
        "none",
        "-v",
        &volume,
        "busybox",
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/www",
    ]);
    let shared = k.ok(&[
        "run", "--rm", "--network", "container:lone", "busybox", "sh", "-c",
        "for i in $(seq 50); do wget -qO- http://127.0.0.1/index.html && exit; sleep 0.2; done; exit 1",
    ]);
    assert_eq!(shared, "served-created\n");

    k.ok(&["rm", "-f", "made", "lone"]);
    assert!(!link_exists(&veth));
    assert!(net.members().is_empty());

    // A first start that fails leaves the container created with its
    // address, until `rm`.
    let missing = k.kiln(&[
        "run",
        "-d",
        "--name",
        "broken",
        "--network",
        &net.name,
        "-p",
        &publish,
        "busybox",
        "no-such-command",
    ]);
    missing.fails_with(127);
    assert_eq!(
        k.ok(&["ps", "-a", "--format", "{{.Names}} {{.State}}"]),
        "broken created\n"
    );
    assert_eq!(net.members().len(), 1, "the created container's address");
    k.ok(&["rm", "broken"]);
    assert!(net.members().is_empty());
}

#[test]
fn sigkill_to_a_bridge_containers_monitor_leaves_no_veth_or_rule_after_rm() {
    let k = Kiln::with_busybox_image();
    let net = Net::create(&k, "dkill");
    let _containers = Detached(&k);
    let port = free_port();
    let publish = format!("127.0.0.1:{port}:80");
    k.ok(&[
        "run",
        "-d",
        "--name",
        "orphan",
        "--network",
        &net.name,
        "-p",
        &publish,
        "busybox",
        "sleep",
        "1000",
    ]);
    let (address, veth) = net.members()[0].clone();
    assert!(link_exists(&veth) && dnat_to(&address));
    let monitor: i32 = k
        .ok(&["inspect", "--format", "{{.State.MonitorPid}}", "orphan"])
        .trim()
        .parse()
        .unwrap();
    // SAFETY: the monitor of this test's own container, by its pid.
    assert_eq!(unsafe { libc::kill(monitor, libc::SIGKILL) }, 0);
    wait_for("the container to be found exited", || {
        k.ok(&["ps", "-a", "--format", "{{.Names}} {{.State}}"]) == "orphan exited\n"
    });
    let reason = k.ok(&["inspect", "--format", "{{.State.Reason}}", "orphan"]);
    assert_eq!(reason.trim(), "monitor died");
    assert!(!link_exists(&veth), "{veth} outlived the dead monitor");
    assert!(!dnat_to(&address), "reconciliation left the DNAT rule");

    k.ok(&["rm", "orphan"]);
    assert!(net.members().is_empty(), "rm did not free the address");
    // The port is free again.
    k.ok(&[
        "run",
        "--rm",
        "--network",
        &net.name,
        "-p",
        &publish,
        "busybox",
        "true",
    ]);
}

#[test]
fn the_restart_policy_plumbs_each_new_run() {
    let k = Kiln::with_busybox_image();
    let net = Net::create(&k, "drestart");
    let _containers = Detached(&k);
    let volume = page(&k, "served-after-restart\n");
    let data = k.path("data");
    std::fs::create_dir_all(&data).unwrap();
    let data_volume = format!("{}:/data", data.display());
    let port = free_port();
    let publish = format!("127.0.0.1:{port}:80");
    // The first run fails; the monitor's second one serves.
    k.ok(&[
        "run",
        "-d",
        "--name",
        "again",
        "--restart",
        "on-failure",
        "--network",
        &net.name,
        "-p",
        &publish,
        "-v",
        &volume,
        "-v",
        &data_volume,
        "busybox",
        "sh",
        "-c",
        "if [ -e /data/ran ]; then exec httpd -f -p 80 -h /www; fi; touch /data/ran; exit 1",
    ]);
    wait_for("httpd in the restarted run", || {
        serves(port, "served-after-restart")
    });
    let count = k.ok(&["inspect", "--format", "{{.RestartCount}}", "again"]);
    assert_eq!(count.trim(), "1");
    let (address, veth) = net.members()[0].clone();
    k.ok(&["rm", "-f", "again"]);
    assert!(!link_exists(&veth) && !dnat_to(&address));
}
