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
            "NetworkMode": match spec.map(|s| s.network) {
                Some(Network::None) => "none",
                _ => "host",
            },
            "ReadonlyRootfs": spec.is_some_and(|s| s.rootfs.readonly),
            "Init": spec.is_some_and(|s| s.init),
        },
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
