//! `kiln container inspect` (and `kiln inspect` of a container): docker's
//! JSON shape (moby `api/types/container` `InspectResponse`) for what
//! kiln knows: `.Id`, `.Name`, `.State`, `.Config`, `.HostConfig`.
//! `.State.Reason` is kiln's own: how the last run ended in words
//! ("exited", "killed by signal 9", "monitor died", "host rebooted"), and
//! `.State.MonitorPid` the process that waits for it (0 when none).

use super::report;
use crate::cache::{ContainerRow, Store};
use crate::cli::template::Template;
use crate::cli::CliError;
use crate::container::state::{self, CreateConfig, Status};
use crate::error_chain::Chain;
use crate::runtime::Network;
use clap::Args;
use serde_json::{json, Value};
use std::path::Path;

/// Flags of `kiln container inspect`.
#[derive(Debug, Args)]
pub struct ContainerInspectArgs {
    /// Format the output with a Go template.
    #[arg(short, long)]
    pub format: Option<String>,
    /// Containers (names, IDs or ID prefixes).
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// docker's zero time, for times that have not happened.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// The JSON docker shows for a container.
pub fn view(root: &Path, row: &ContainerRow) -> Value {
    let config = CreateConfig::of(row).ok();
    let status = Status::parse(&row.state);
    let time = |t: &str| {
        if t.is_empty() {
            ZERO_TIME.to_string()
        } else {
            t.to_string()
        }
    };
    let spec = config.as_ref().map(|c| &c.spec);
    let args = spec.map(|s| s.process.args.clone()).unwrap_or_default();
    let resources = config.as_ref().map(|c| &c.resources);
    let network_mode = match (
        config.as_ref().map(|c| c.network_mode.as_str()),
        spec.map(|s| &s.network),
    ) {
        (Some(mode), _) if !mode.is_empty() => mode.to_string(),
        (_, Some(Network::None)) => "none".into(),
        (_, Some(Network::Join(_))) => "container".into(),
        _ => "host".into(),
    };
    let (restart, retries) = config
        .as_ref()
        .map(|c| c.restart.docker_name())
        .unwrap_or(("no", 0));
    json!({
        "Id": row.id,
        "Created": row.created,
        "Path": args.first().cloned().unwrap_or_default(),
        "Args": args.iter().skip(1).collect::<Vec<_>>(),
        "State": {
            "Status": status.as_str(),
            "Running": matches!(status, Status::Running | Status::Paused),
            "Paused": status == Status::Paused,
            "Restarting": status == Status::Restarting,
            "OOMKilled": row.oom_killed,
            "Dead": status == Status::Dead,
            "Pid": row.pid.map(|p| p.0).unwrap_or(0),
            "ExitCode": row.exit_code,
            "Error": row.error,
            "StartedAt": time(&row.started),
            "FinishedAt": time(&row.finished),
            "Reason": row.reason,
            "MonitorPid": row.monitor.map(|p| p.0).unwrap_or(0),
        },
        "Image": row.image_id.clone().unwrap_or_default(),
        "LogPath": state::log_path(root, &row.id),
        "Name": format!("/{}", row.name),
        "RestartCount": row.restart_count,
        "Driver": "overlay",
        "Platform": "linux",
        "HostConfig": {
            "RestartPolicy": { "Name": restart, "MaximumRetryCount": retries },
            "AutoRemove": config.as_ref().is_some_and(|c| c.auto_remove),
            "NetworkMode": network_mode,
            "PortBindings": port_bindings(config.as_ref().map(|c| c.port_bindings.as_slice()).unwrap_or_default()),
            "Memory": resources.and_then(|r| r.memory).unwrap_or(0),
            "NanoCpus": resources.and_then(|r| r.cpus).map(|c| (c * 1e9).round() as i64).unwrap_or(0),
            "PidsLimit": resources.and_then(|r| r.pids_limit),
            "ReadonlyRootfs": spec.is_some_and(|s| s.rootfs.readonly),
            "Init": spec.is_some_and(|s| s.init),
        },
        "NetworkSettings": network_settings(root, &row.id, &network_mode),
        "Config": {
            "Hostname": spec.map(|s| s.hostname.clone()).unwrap_or_default(),
            "User": spec.map(|s| s.process.user.clone()).unwrap_or_default(),
            "Tty": spec.is_some_and(|s| s.process.terminal),
            "OpenStdin": config.as_ref().is_some_and(|c| c.open_stdin),
            "Env": spec.map(|s| s.process.env.clone()).unwrap_or_default(),
            "Cmd": args,
            "Image": row.image,
            "WorkingDir": spec.map(|s| s.process.cwd.clone()).unwrap_or_default(),
            "Entrypoint": Value::Null,
            "StopSignal": crate::container::lifecycle::signal_name(
                config.as_ref().map(|c| c.stop_signal).unwrap_or(libc::SIGTERM)
            ),
        },
    })
}

/// docker's `HostConfig.PortBindings`: `"80/tcp": [{"HostIp", "HostPort"}]`,
/// empty strings for what `-p` left out (moby/moby `api/types/container`
/// `HostConfig`, go-connections `nat.PortMap`).
fn port_bindings(ports: &[crate::network::PortSpec]) -> Value {
    let mut map = serde_json::Map::new();
    for p in ports {
        let key = format!("{}/{}", p.container_port, p.protocol.name());
        let binding = json!({
            "HostIp": if p.host_ip.is_unspecified() { String::new() } else { p.host_ip.to_string() },
            "HostPort": if p.host_port == 0 { String::new() } else { p.host_port.to_string() },
        });
        match map.get_mut(&key) {
            Some(Value::Array(list)) => list.push(binding),
            _ => {
                map.insert(key, json!([binding]));
            }
        }
    }
    Value::Object(map)
}

/// docker's `NetworkSettings` (moby/moby `api/types/container`
/// `NetworkSettings`, `network.EndpointSettings` per network): each
/// network the container has an address on, or its network mode with
/// empty values when it has none now (stopped, host, none); the top-level
/// `IPAddress`/`Gateway`/`MacAddress` are the default bridge's, as
/// docker still fills them.
fn network_settings(root: &Path, id: &str, mode: &str) -> Value {
    let layout = crate::cache::StoreLayout::new(root);
    let endpoints = crate::network::endpoints_of(&layout, id).unwrap_or_else(|e| {
        tracing::debug!("{e}", e = Chain(&e));
        Vec::new()
    });
    let mut networks = serde_json::Map::new();
    let mut ports = serde_json::Map::new();
    for (name, record, e) in &endpoints {
        networks.insert(
            name.clone(),
            json!({
                "Aliases": Value::Null,
                "MacAddress": e.mac.clone().unwrap_or_default(),
                "NetworkID": record.id,
                "EndpointID": e.host_veth,
                "Gateway": record.subnet.gateway().to_string(),
                "IPAddress": e.address.to_string(),
                "IPPrefixLen": record.subnet.prefix,
                "IPv6Gateway": "",
                "GlobalIPv6Address": "",
                "GlobalIPv6PrefixLen": 0,
                "DNSNames": if name == crate::network::DEFAULT_NETWORK { Value::Null } else { json!(e.names) },
            }),
        );
        for p in &e.ports {
            ports.insert(
                format!("{}/{}", p.container_port, p.protocol.name()),
                json!([{ "HostIp": p.host_ip.to_string(), "HostPort": p.host_port.to_string() }]),
            );
        }
    }
    if networks.is_empty() && !mode.starts_with("container") {
        networks.insert(
            mode.to_string(),
            json!({
                "Aliases": Value::Null, "MacAddress": "", "NetworkID": "", "EndpointID": "",
                "Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "",
                "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "DNSNames": Value::Null,
            }),
        );
    }
    let default = networks.get(crate::network::DEFAULT_NETWORK);
    let field = |k: &str| default.and_then(|d| d.get(k)).cloned().unwrap_or(json!(""));
    json!({
        "Ports": ports,
        "IPAddress": field("IPAddress"),
        "Gateway": field("Gateway"),
        "MacAddress": field("MacAddress"),
        "Networks": networks,
    })
}

/// docker's indentation (4 spaces), as `kiln inspect` prints images.
pub fn to_json<T: serde::Serialize>(values: &[T]) -> String {
    use serde::Serialize;
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    let _ = values.serialize(&mut ser);
    String::from_utf8_lossy(&out).into_owned()
}

/// Prints `values` as JSON or through `format`.
pub fn print(values: &[Value], format: Option<&str>) -> Result<(), CliError> {
    match format {
        None => println!("{}", to_json(values)),
        Some(f) => {
            let t = Template::parse(f).map_err(CliError::from_error)?;
            for v in values {
                println!("{}", t.render(v).map_err(CliError::from_error)?);
            }
        }
    }
    Ok(())
}

/// `kiln container inspect`.
pub fn run(a: ContainerInspectArgs, root: &Path) -> Result<i32, CliError> {
    if let Some(f) = &a.format {
        Template::parse(f).map_err(CliError::from_error)?;
    }
    let store = Store::open(root).map_err(|e| CliError(format!("Error: {}", Chain(&e))))?;
    state::reconcile(&store).map_err(|e| CliError(format!("Error: {}", Chain(&e))))?;
    let mut values = Vec::new();
    let mut code = 0;
    for key in &a.containers {
        match state::find(&store, key) {
            Ok(row) => values.push(view(root, &row)),
            Err(e) => code = report(e),
        }
    }
    print(&values, a.format.as_deref())?;
    Ok(code)
}
