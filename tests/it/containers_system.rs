//! The remaining container commands of issue 13 with docker's output and
//! exit codes: `port` (docker/cli `cli/command/container/port.go`).

use crate::run_network::free_port;
use crate::support;
use support::kiln::{ContainerStore, Kiln};

fn store() -> ContainerStore {
    ContainerStore {
        k: Kiln::with_busybox_image(),
    }
}

#[test]
fn port_lists_each_published_port_and_looks_one_up() {
    let k = store();
    let (web, dns) = (free_port(), free_port());
    let tcp = format!("127.0.0.1:{web}:80");
    let udp = format!("127.0.0.1:{dns}:53/udp");
    k.ok(&[
        "create", "--name", "web", "-p", &tcp, "-p", &udp, "busybox", "true",
    ]);

    let all = k.ok(&["port", "web"]);
    assert_eq!(
        all,
        format!("53/udp -> 127.0.0.1:{dns}\n80/tcp -> 127.0.0.1:{web}\n")
    );
    assert_eq!(k.ok(&["port", "web", "80"]), format!("127.0.0.1:{web}\n"));
    assert_eq!(
        k.ok(&["container", "port", "web", "53/udp"]),
        format!("127.0.0.1:{dns}\n")
    );
}

#[test]
fn port_of_an_unpublished_port_or_unknown_container_fails_with_dockers_message() {
    let k = store();
    k.ok(&["create", "--name", "quiet", "busybox", "true"]);
    assert_eq!(k.ok(&["port", "quiet"]), "");

    let r = k.kiln(&["port", "quiet", "80/udp"]);
    let err = r.fails_with(1);
    assert!(
        err.contains("No public port '80/udp' published for quiet"),
        "{err}"
    );
    let r = k.kiln(&["port", "nosuch"]);
    let err = r.fails_with(1);
    assert!(err.contains("No such container: nosuch"), "{err}");
}
