//! `kiln ps [-a] [-q] [-n N] [--filter K=V] [--format T]`: docker's
//! columns and wording (docker/cli `cli/command/formatter/container.go`,
//! moby `container/state.go` `State.String` for STATUS).

use crate::cache::{ContainerRow, Store};
use crate::cli::table::{ago, ellipsis, human_duration, Table};
use crate::cli::template::Template;
use crate::cli::CliError;
use crate::container::state::{self, CreateConfig, Status};
use crate::error_chain::Chain;
use crate::image::timestamp::parse_rfc3339;
use clap::Args;
use serde_json::{json, Value};
use std::path::Path;

/// Flags of `kiln ps`.
#[derive(Debug, Args)]
pub struct PsArgs {
    /// Show all containers (default: only running ones).
    #[arg(short, long)]
    pub all: bool,
    /// Only the IDs.
    #[arg(short, long)]
    pub quiet: bool,
    /// The N most recently created containers (any state).
    #[arg(
        short = 'n',
        long = "last",
        value_name = "N",
        allow_hyphen_values = true
    )]
    pub last: Option<i64>,
    /// The most recently created container.
    #[arg(short = 'l', long)]
    pub latest: bool,
    /// Filter: status=, name=, id= (repeatable; one key's values are OR'ed,
    /// different keys AND'ed).
    #[arg(short, long, value_name = "KEY=VALUE")]
    pub filter: Vec<String>,
    /// Go template over ID, Image, Command, CreatedAt, RunningFor, Status,
    /// State, Ports, Names (`table ` prefix adds a header).
    #[arg(long, value_name = "TEMPLATE")]
    pub format: Option<String>,
    /// Do not truncate the ID and the command.
    #[arg(long)]
    pub no_trunc: bool,
}

/// docker's STATUS column.
pub fn status_text(row: &ContainerRow) -> String {
    let since = |t: &str| {
        let then = parse_rfc3339(t).unwrap_or_else(now);
        human_duration(now() - then)
    };
    match Status::parse(&row.state) {
        Status::Running => format!("Up {}", since(&row.started)),
        Status::Paused => format!("Up {} (Paused)", since(&row.started)),
        Status::Restarting => format!(
            "Restarting ({}) {} ago",
            row.exit_code,
            since(&row.finished)
        ),
        Status::Created => "Created".into(),
        Status::Dead => "Dead".into(),
        Status::Exited if row.finished.is_empty() => format!("Exited ({})", row.exit_code),
        Status::Exited => format!("Exited ({}) {} ago", row.exit_code, since(&row.finished)),
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A row as `--format` sees it (docker's field names); also the
/// container rows of `system df -v`.
pub fn fields(row: &ContainerRow, trunc: bool) -> Value {
    let command = CreateConfig::of(row)
        .map(|c| c.command.join(" "))
        .unwrap_or_default();
    let command = if trunc {
        ellipsis(&command, 20)
    } else {
        command
    };
    json!({
        "ID": if trunc { state_short(&row.id) } else { row.id.clone() },
        "Image": row.image,
        "Command": format!("{command:?}"),
        "CreatedAt": row.created,
        "RunningFor": ago(Some(&row.created)),
        "Status": status_text(row),
        "State": row.state,
        "Ports": "",
        "Names": row.name,
        "Labels": "",
        "Mounts": "",
        "Networks": "",
        "Size": "",
    })
}

fn state_short(id: &str) -> String {
    crate::runtime::state::short_id(id).to_string()
}

/// docker's headers for `--format 'table …'`.
fn headers() -> Value {
    json!({
        "ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND",
        "CreatedAt": "CREATED AT", "RunningFor": "CREATED", "Status": "STATUS",
        "State": "STATE", "Ports": "PORTS", "Names": "NAMES", "Labels": "LABELS",
        "Mounts": "MOUNTS", "Networks": "NETWORKS", "Size": "SIZE",
    })
}

/// One `--filter`; `Err` names what docker would refuse.
fn matches(row: &ContainerRow, filters: &[(String, String)]) -> bool {
    let keys = ["status", "name", "id"];
    keys.iter().all(|key| {
        let values: Vec<&str> = filters
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect();
        values.is_empty()
            || values.iter().any(|v| match *key {
                "status" => row.state == *v,
                // docker matches names and IDs as substrings/prefixes
                // (moby daemon/list.go: regexp for names, prefix for IDs).
                "name" => row.name.contains(v),
                _ => row.id.starts_with(v),
            })
    })
}

fn parse_filters(flags: &[String]) -> Result<Vec<(String, String)>, String> {
    const STATUSES: &[&str] = &[
        "created",
        "restarting",
        "running",
        "removing",
        "paused",
        "exited",
        "dead",
    ];
    let mut out = Vec::new();
    for f in flags {
        let Some((k, v)) = f.split_once('=') else {
            return Err(format!("bad format of filter (expected name=value): {f}"));
        };
        match k {
            "status" if !STATUSES.contains(&v) => {
                return Err(format!("invalid filter 'status={v}'"))
            }
            "status" | "name" | "id" => out.push((k.to_string(), v.to_string())),
            _ => return Err(format!("invalid filter '{k}'")),
        }
    }
    Ok(out)
}

/// `kiln ps`.
pub fn run(a: PsArgs, root: &Path) -> Result<i32, CliError> {
    let filters = match parse_filters(&a.filter) {
        Ok(f) => f,
        Err(e) => return Ok(crate::cli::usage_error(&e)),
    };
    let template = match a.format.as_deref() {
        Some(f) => {
            let (table, body) = match f.strip_prefix("table") {
                Some(rest) => (true, rest.trim_start()),
                None => (false, f),
            };
            match Template::parse(body) {
                Ok(t) => Some((table, t)),
                Err(e) => return Ok(crate::cli::usage_error(&e.to_string())),
            }
        }
        None => None,
    };
    let store = Store::open(root).map_err(|e| CliError(format!("Error: {}", Chain(&e))))?;
    state::reconcile(&store).map_err(|e| CliError(format!("Error: {}", Chain(&e))))?;
    let mut rows = store
        .list_containers()
        .map_err(|e| CliError(format!("Error: {}", Chain(&e))))?;
    // Newest first, as docker lists them.
    rows.reverse();
    let last = if a.latest {
        Some(1)
    } else {
        a.last.filter(|n| *n > 0)
    };
    // -a, -n and a status filter show stopped containers too.
    let all = a.all || last.is_some() || filters.iter().any(|(k, _)| k == "status");
    rows.retain(|r| (all || Status::parse(&r.state).is_live()) && matches(r, &filters));
    if let Some(n) = last {
        rows.truncate(n as usize);
    }
    let trunc = !a.no_trunc;
    if a.quiet {
        for r in &rows {
            println!(
                "{}",
                if trunc {
                    state_short(&r.id)
                } else {
                    r.id.clone()
                }
            );
        }
        return Ok(0);
    }
    if let Some((table, t)) = template {
        let render = |v: &Value| t.render(v).map_err(CliError::from_error);
        if table {
            println!("{}", render(&headers())?);
        }
        for r in &rows {
            println!("{}", render(&fields(r, trunc))?);
        }
        return Ok(0);
    }
    let mut table = Table::new(&[
        "CONTAINER ID",
        "IMAGE",
        "COMMAND",
        "CREATED",
        "STATUS",
        "PORTS",
        "NAMES",
    ]);
    for r in &rows {
        let f = fields(r, trunc);
        let cell = |k: &str| f[k].as_str().unwrap_or_default().to_string();
        table.row(vec![
            cell("ID"),
            cell("Image"),
            cell("Command"),
            cell("RunningFor"),
            cell("Status"),
            cell("Ports"),
            cell("Names"),
        ]);
    }
    print!("{}", table.render());
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(state: &str, code: i32) -> ContainerRow {
        ContainerRow {
            id: "0123456789abcdef".into(),
            name: "web".into(),
            state: state.into(),
            exit_code: code,
            started: state::now(),
            finished: state::now(),
            ..Default::default()
        }
    }

    #[test]
    fn status_reads_like_docker() {
        assert_eq!(status_text(&row("running", 0)), "Up Less than a second");
        assert_eq!(
            status_text(&row("exited", 137)),
            "Exited (137) Less than a second ago"
        );
        assert_eq!(status_text(&row("created", 0)), "Created");
    }

    #[test]
    fn filters_and_their_errors() {
        let f = parse_filters(&["status=exited".into(), "name=we".into()]).unwrap();
        assert!(matches(&row("exited", 0), &f));
        assert!(!matches(&row("running", 0), &f));
        let by_id = parse_filters(&["id=0123".into()]).unwrap();
        assert!(matches(&row("running", 0), &by_id));
        assert!(parse_filters(&["status=sleeping".into()]).is_err());
        assert!(parse_filters(&["label".into()]).is_err());
    }
}
