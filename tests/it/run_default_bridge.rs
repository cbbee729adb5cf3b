//! docker's default network for `kiln run` (issue 13): without
//! `--network` a container is on the default bridge `kiln0`, reaches the
//! outside through NAT, and its address and published ports are leased
//! host-wide, so stores (`--root`s) running at once never share one and a
//! SIGKILLed run's lease is reclaimed by the next allocation, whichever
//! store makes it. Also `inspect`'s network and resource fields, and
//! `network prune`.

use crate::run_network::{free_port, wait_for, Detached};
use crate::support::kiln::{ran, Kiln};
use std::process::{Child, Command, Stdio};

/// kiln0's address and prefix length on the host (`172.17.0.1`, 16).
fn kiln0() -> (String, u32) {
    let out = Command::new("ip")
        .args(["-o", "-4", "addr", "show", "kiln0"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let cidr = text
        .split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .unwrap_or_else(|| panic!("kiln0 has no address: {text}"));
    let (ip, prefix) = cidr.split_once('/').unwrap();
    (ip.to_string(), prefix.parse().unwrap())
}

fn in_subnet(addr: &str, gateway: &str, prefix: u32) -> bool {
    let n = |a: &str| u32::from(a.parse::<std::net::Ipv4Addr>().unwrap());
    let mask = u32::MAX << (32 - prefix);
    n(addr) & mask == n(gateway) & mask
}

/// A network namespace of the test's own at the far end of a veth pair
/// on a /30 of TEST-NET-1 (192.0.2.0/24, never routed on real hosts),
/// serving `served` over HTTP on port 8000 with the host's busybox. It
/// has no route to kiln0's subnet: only a masqueraded request gets an
/// answer. Removed (server killed by pid, namespace deleted) on drop.
struct Outside {
    ns: String,
    server: Child,
    _www: tempfile::TempDir,
    address: String,
}

impl Outside {
    /// Sets the namespace up (made again on a host-side race,
    /// [`crate::support::netns::set_up_with_retries`]).
    fn start(served: &str) -> Outside {
        crate::support::netns::set_up_with_retries("the outside namespace", |attempt| {
            Outside::try_start(served, attempt)
        })
    }

    fn try_start(served: &str, attempt: u32) -> Result<Outside, String> {
        let id = std::process::id() * 3 + attempt;
        let ns = format!("kt13-{id}");
        let host_end = format!("kt13h{}", id % 100_000);
        let peer = format!("kt13p{}", id % 100_000);
        let base = 4 * (id % 60) as u8;
        let (host_ip, far_ip) = (
            format!("192.0.2.{}", base + 1),
            format!("192.0.2.{}", base + 2),
        );
        crate::support::netns::add(&ns)?;
        let delete = || {
            let _ = Command::new("ip").args(["netns", "del", &ns]).status();
        };
        let script = format!(
            "ip link add {host_end} type veth peer name {peer} netns {ns}
             ip addr add {host_ip}/30 dev {host_end}
             ip link set {host_end} up
             ip netns exec {ns} ip addr add {far_ip}/30 dev {peer}
             ip netns exec {ns} ip link set {peer} up
             ip netns exec {ns} ip link set lo up"
        );
        let out = Command::new("sh").args(["-ec", &script]).output().unwrap();
        if !out.status.success() {
            delete();
            return Err(format!("{script}: {out:?}"));
        }
        let www = tempfile::tempdir().unwrap();
        std::fs::write(www.path().join("index.html"), served).unwrap();
        let server = Command::new("ip")
            .args([
                "netns", "exec", &ns, "busybox", "httpd", "-f", "-p", "8000", "-h",
            ])
            .arg(www.path())
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        Ok(Outside {
            ns,
            server,
            _www: www,
            address: far_ip,
        })
    }
}

impl Drop for Outside {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
        // The host end goes with the namespace's peer.
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
    }
}

#[test]
fn a_default_run_is_on_kiln0_and_reaches_a_namespace_through_nat() {
    let k = Kiln::with_busybox_image();
    let outside = Outside::start("reached-through-nat\n");
    let url = format!("http://{}:8000/index.html", outside.address);
    let script = format!(
        "ip -o -4 addr show eth0; ip route | grep default; \
         for i in 1 2 3 4 5 6 7 8 9 10; do wget -qO- {url} && break; sleep 0.2; done"
    );
    let out = k.run("busybox", &["sh", "-c", &script]).ok().to_string();
    let (gateway, prefix) = kiln0();
    let address = out
        .split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .and_then(|c| c.split('/').next())
        .unwrap_or_else(|| panic!("no eth0 address: {out}"));
    assert!(
        in_subnet(address, &gateway, prefix),
        "{address} not on kiln0 ({gateway}/{prefix})"
    );
    assert!(out.contains(&format!("default via {gateway}")), "{out}");
    assert!(out.contains("reached-through-nat"), "{out}");
    // --network host keeps the host's interfaces.
    let host = k
        .run_command()
        .args([
            "--rm",
            "--network",
            "host",
            "busybox",
            "ip",
            "-o",
            "link",
            "show",
            "kiln0",
        ])
        .output()
        .unwrap();
    assert!(ran(host).ok().contains("kiln0"));
}

/// Containers that print their address, then wait for `go` to appear in
/// a shared dir: every one is alive when the addresses are compared.
#[test]
fn two_stores_running_at_once_get_distinct_addresses() {
    let stores = [Kiln::with_busybox_image(), Kiln::with_busybox_image()];
    let sync = tempfile::tempdir().unwrap();
    let volume = format!("{}:/sync", sync.path().display());
    let script = "ip -o -4 addr show eth0 | awk '{print $4}' > /sync/$(hostname); \
                  while [ ! -e /sync/go ]; do sleep 0.1; done";
    let children: Vec<Child> = stores
        .iter()
        .flat_map(|k| [k, k])
        .map(|k| {
            k.run_command()
                .args(["--rm", "-v", &volume, "busybox", "sh", "-c", script])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let addresses = || -> Vec<String> {
        std::fs::read_dir(sync.path())
            .unwrap()
            .filter_map(|e| std::fs::read_to_string(e.unwrap().path()).ok())
            .filter(|a| a.contains('/'))
            .map(|a| a.trim().to_string())
            .collect()
    };
    wait_for("four containers on kiln0", || addresses().len() == 4);
    let mut seen = addresses();
    std::fs::write(sync.path().join("go"), "").unwrap();
    for child in children {
        ran(child.wait_with_output().unwrap()).ok();
    }
    seen.sort();
    let before = seen.len();
    seen.dedup();
    assert_eq!(
        seen.len(),
        before,
        "an address was handed out twice: {seen:?}"
    );
}

#[test]
fn a_sigkilled_runs_address_and_port_are_reclaimed_by_another_store() {
    let first = Kiln::with_busybox_image();
    let second = Kiln::with_busybox_image();
    let port = free_port();
    let publish = format!("127.0.0.1:{port}:80");
    let mut killed = first
        .run_command()
        .args([
            "--rm", "--name", "doomed", "-p", &publish, "busybox", "sleep", "60",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let leases = || std::fs::read_to_string("/run/kiln/network.json").unwrap_or_default();
    let mut id = String::new();
    wait_for("the run's lease", || {
        let out = first.kiln(&["inspect", "--format", "{{.Id}}", "doomed"]);
        id = out.stdout.trim().to_string();
        out.code == 0 && leases().contains(&id)
    });
    let rules = || {
        String::from_utf8_lossy(
            &Command::new("iptables-save")
                .args(["-t", "nat"])
                .output()
                .unwrap()
                .stdout,
        )
        .to_string()
    };
    let comment = format!("kiln:{}", &id[..12]);
    assert!(rules().contains(&comment), "the DNAT rule of {id}");
    // SAFETY: signalling the child this test started, by its pid.
    unsafe {
        libc::kill(killed.id() as i32, libc::SIGKILL);
    }
    let _ = killed.wait();
    // Its init dies a moment after it; then another store may take the
    // port, and the dead run's lease and rule are gone.
    wait_for("the port to be reclaimed", || {
        second
            .kiln(&["run", "--rm", "-p", &publish, "busybox", "true"])
            .code
            == 0
    });
    assert!(
        !leases().contains(&id),
        "the killed run's lease is left: {}",
        leases()
    );
    assert!(
        !rules().contains(&comment),
        "the killed run's DNAT rule is left"
    );
    // The first store forgets it too, and runs again.
    first.run("busybox", &["true"]).ok();
}

#[test]
fn inspect_shows_network_mode_addresses_resources_and_port_bindings() {
    let k = Kiln::with_busybox_image();
    let _containers = Detached(&k);
    k.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--memory",
        "64m",
        "--cpus",
        "0.5",
        "--pids-limit",
        "50",
        "-p",
        "127.0.0.1::80",
        "-p",
        "8080:80/udp",
        "busybox",
        "sleep",
        "1000",
    ]);
    let v: serde_json::Value = serde_json::from_str(&k.ok(&["inspect", "web"])).unwrap();
    let host = &v[0]["HostConfig"];
    assert_eq!(host["NetworkMode"], "bridge");
    assert_eq!(host["Memory"], 64 * 1024 * 1024);
    assert_eq!(host["NanoCpus"], 500_000_000);
    assert_eq!(host["PidsLimit"], 50);
    assert_eq!(
        host["PortBindings"],
        serde_json::json!({
            "80/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}],
            "80/udp": [{"HostIp": "", "HostPort": "8080"}],
        })
    );
    let bridge = &v[0]["NetworkSettings"]["Networks"]["bridge"];
    let (gateway, prefix) = kiln0();
    let address = bridge["IPAddress"].as_str().unwrap();
    assert!(in_subnet(address, &gateway, prefix), "{bridge}");
    assert_eq!(bridge["Gateway"], gateway.as_str());
    assert_eq!(v[0]["NetworkSettings"]["IPAddress"], address);
    let mac = k.ok(&["exec", "web", "cat", "/sys/class/net/eth0/address"]);
    assert_eq!(bridge["MacAddress"], mac.trim(), "{bridge}");
    let inside = k.ok(&["exec", "web", "ip", "-o", "-4", "addr", "show", "eth0"]);
    assert!(inside.contains(&format!("{address}/{prefix}")), "{inside}");

    k.ok(&[
        "create",
        "--name",
        "onhost",
        "--network",
        "host",
        "busybox",
        "true",
    ]);
    let v: serde_json::Value = serde_json::from_str(&k.ok(&["inspect", "onhost"])).unwrap();
    // create's default is the bridge (docker's), as run's.
    k.ok(&["create", "--name", "later", "busybox", "true"]);
    let later: serde_json::Value = serde_json::from_str(&k.ok(&["inspect", "later"])).unwrap();
    assert_eq!(later[0]["HostConfig"]["NetworkMode"], "bridge");
    assert_eq!(v[0]["HostConfig"]["NetworkMode"], "host");
    assert_eq!(v[0]["HostConfig"]["Memory"], 0);
    assert_eq!(v[0]["HostConfig"]["PidsLimit"], serde_json::Value::Null);
    assert_eq!(v[0]["NetworkSettings"]["Networks"]["host"]["IPAddress"], "");
}

#[test]
fn network_prune_removes_only_unused_user_networks() {
    let k = Kiln::with_busybox_image();
    let _containers = Detached(&k);
    let tag = std::process::id();
    let (unused, used) = (format!("unused-{tag}"), format!("used-{tag}"));
    k.ok(&["network", "create", &unused]);
    k.ok(&["network", "create", &used]);
    let bridge_of = |name: &str| {
        let v: serde_json::Value =
            serde_json::from_str(&k.ok(&["network", "inspect", name])).unwrap();
        v[0]["Options"]["com.docker.network.bridge.name"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let unused_bridge = bridge_of(&unused);
    k.ok(&[
        "run",
        "-d",
        "--name",
        "member",
        "--network",
        &used,
        "busybox",
        "sleep",
        "1000",
    ]);
    let v: serde_json::Value = serde_json::from_str(&k.ok(&["inspect", "member"])).unwrap();
    assert_eq!(v[0]["HostConfig"]["NetworkMode"], used.as_str());
    let on_used = &v[0]["NetworkSettings"]["Networks"][&used];
    assert!(
        on_used["IPAddress"].as_str().is_some_and(|a| !a.is_empty()),
        "{v}"
    );
    assert!(
        on_used["DNSNames"]
            .as_array()
            .is_some_and(|n| n.contains(&"member".into())),
        "{v}"
    );
    // The default bridge exists too (a run made it): never pruned.
    k.run("busybox", &["true"]).ok();
    assert_eq!(
        k.ok(&["network", "prune", "-f"]),
        format!("Deleted Networks:\n{unused}\n\n")
    );
    assert!(!std::path::Path::new("/sys/class/net")
        .join(&unused_bridge)
        .exists());
    let names = k.ok(&["network", "ls"]);
    assert!(
        names.contains(&used) && names.contains("bridge") && !names.contains(&unused),
        "{names}"
    );
    // Without -f it asks; no answer keeps everything.
    k.ok(&["rm", "-f", "member"]);
    let asked = k.kiln(&["network", "prune"]);
    assert!(asked
        .ok()
        .contains("Are you sure you want to continue? [y/N]"));
    assert!(k.ok(&["network", "ls"]).contains(&used));
    assert_eq!(
        k.ok(&["network", "prune", "-f"]),
        format!("Deleted Networks:\n{used}\n\n")
    );
    assert_eq!(k.ok(&["network", "prune", "-f"]), "");
}

/// A network whose bridge is gone (a reboot) is made again on start, but
/// not over a subnet a host route took meanwhile: docker's "pool
/// overlaps" refusal, naming both, rather than stealing the route.
#[test]
fn a_network_remade_after_a_reboot_never_takes_a_routed_subnet() {
    let k = Kiln::with_busybox_image();
    let id = std::process::id();
    let subnet = format!("10.213.{}.0/24", id % 200);
    let name = format!("rebooted-{id}");
    k.ok(&["network", "create", "--subnet", &subnet, &name]);
    let v: serde_json::Value = serde_json::from_str(&k.ok(&["network", "inspect", &name])).unwrap();
    let bridge = v[0]["Options"]["com.docker.network.bridge.name"]
        .as_str()
        .unwrap()
        .to_string();
    let dummy = format!("kt13d{}", id % 100_000);
    let sh = |script: &str| {
        let out = Command::new("sh").args(["-ec", script]).output().unwrap();
        assert!(out.status.success(), "{script}: {out:?}");
    };
    // The reboot took the bridge; something else routes its subnet now.
    sh(&format!(
        "ip link del {bridge}
         ip link add {dummy} type bridge
         ip addr add 10.213.{}.1/24 dev {dummy}
         ip link set {dummy} up",
        id % 200
    ));
    let r = k.kiln(&["run", "--rm", "--network", &name, "busybox", "true"]);
    let _ = Command::new("ip").args(["link", "del", &dummy]).status();
    let err = r.fails();
    assert!(
        err.contains(&format!(
            "invalid subnet {subnet}: pool overlaps with {subnet}"
        )),
        "{err}"
    );
    assert!(!std::path::Path::new("/sys/class/net")
        .join(&bridge)
        .exists());
    // Once the route is gone the network works again.
    k.run_command()
        .args(["--rm", "--network", &name, "busybox", "true"])
        .status()
        .unwrap()
        .success()
        .then_some(())
        .expect("a run once the subnet is free");
    k.ok(&["network", "rm", &name]);
}
