//! `kiln stats [-a] [--no-stream] [--no-trunc] [--format F] [CONTAINER...]`:
//! running containers' resource use in docker's columns and units
//! (docker/cli `cli/command/container/stats.go` `RunStats` and
//! `formatter_stats.go`): CPU % between two samples, memory in binary
//! units, network and block I/O in decimal units, PIDS.
//!
//! Streaming (no `--no-stream`) follows `RunStats`: every 500 ms the
//! cursor goes home (`ESC[H`), each line of the table is written with an
//! erase-to-end-of-line (` ESC[K`), then the rest of the screen is erased
//! (`ESC[J`) — the same bytes with or without a terminal, so a pipe gets
//! one table per interval. Without names, the set of containers is read
//! again each time (docker follows start/die events: running ones, or all
//! with `-a`); with names, it runs until interrupted. `--no-stream` with
//! nothing to show prints nothing, not even the header (`RunStats`
//! returns early).
//!
//! Differs from docker: the first reading's CPU % is over 500 ms, where
//! the daemon's collector samples every second.

use super::report;
use crate::cache::{ContainerRow, Store};
use crate::cli::table::{bytes_size, human_size, Table};
use crate::cli::template::Template;
use crate::cli::CliError;
use crate::container::state::{self, Status};
use crate::container::stats::{self, Sample};
use crate::error_chain::Chain;
use clap::Args;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

/// Flags of `kiln stats`.
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Show all containers (default shows just running).
    #[arg(short, long)]
    pub all: bool,
    /// Print one reading and exit.
    #[arg(long)]
    pub no_stream: bool,
    /// Do not truncate output (full container IDs).
    #[arg(long)]
    pub no_trunc: bool,
    /// `table`, `json`, `table TEMPLATE` or a Go template over `.Container`,
    /// `.Name`, `.ID`, `.CPUPerc`, `.MemUsage`, `.MemPerc`, `.NetIO`,
    /// `.BlockIO`, `.PIDs`.
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
    /// Containers (default: every running one).
    #[arg(value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// docker's default (`defaultStatsTableFormat`).
const DEFAULT_TABLE: &str = "{{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}";

/// How entries are printed: a tab-separated template aligned as a table
/// under its headers, or a template printed once per entry.
struct Format {
    table: bool,
    template: Template,
}

impl Format {
    /// docker/cli `formatter`: `table` and `json` are keywords, `table …`
    /// a table of a template, anything else a template per line.
    fn parse(format: Option<&str>) -> Result<Format, String> {
        let (table, body) = match format.filter(|f| !f.is_empty()).unwrap_or("table") {
            "table" => (true, DEFAULT_TABLE),
            "json" => (false, "{{json .}}"),
            f => match f.strip_prefix("table ") {
                Some(rest) => (true, rest),
                None => (false, f),
            },
        };
        let template = Template::parse(body).map_err(|e| e.to_string())?;
        Ok(Format { table, template })
    }

    fn render(&self, entries: &[Value]) -> Result<String, CliError> {
        let render = |v: &Value| self.template.render(v).map_err(CliError::from_error);
        if !self.table {
            let mut out = String::new();
            for e in entries {
                out.push_str(&render(e)?);
                out.push('\n');
            }
            return Ok(out);
        }
        let header = render(&headers())?;
        let mut table = Table::new(&header.split('\t').collect::<Vec<_>>());
        for e in entries {
            table.row(render(e)?.split('\t').map(str::to_string).collect());
        }
        Ok(table.render())
    }
}

/// docker's headers (`statsFormatWrite`).
fn headers() -> Value {
    json!({
        "Container": "CONTAINER", "Name": "NAME", "ID": "CONTAINER ID",
        "CPUPerc": "CPU %", "MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %",
        "NetIO": "NET I/O", "BlockIO": "BLOCK I/O", "PIDs": "PIDS",
    })
}

/// One entry as `--format` sees it (docker's `statsContext` methods),
/// from two samples (zeros for a container that does not run).
fn entry(
    container: &str,
    row: &ContainerRow,
    trunc: bool,
    before: &Sample,
    after: &Sample,
) -> Value {
    let mem_percent = if after.mem_limit > 0 {
        after.mem_usage as f64 / after.mem_limit as f64 * 100.0
    } else {
        0.0
    };
    json!({
        "Container": container,
        "Name": if row.name.is_empty() { "--" } else { &row.name },
        "ID": if trunc { row.id.chars().take(12).collect() } else { row.id.clone() },
        "CPUPerc": format!("{:.2}%", stats::cpu_percent(before, after)),
        "MemUsage": format!("{} / {}", bytes_size(after.mem_usage), bytes_size(after.mem_limit)),
        "MemPerc": format!("{mem_percent:.2}%"),
        "NetIO": format!("{} / {}", human_size(after.net.0), human_size(after.net.1)),
        "BlockIO": format!("{} / {}", human_size(after.block.0), human_size(after.block.1)),
        "PIDs": after.pids.to_string(),
    })
}

fn sample_of(row: &ContainerRow) -> Option<Sample> {
    row.pid.and_then(|(pid, _)| stats::sample(pid))
}

/// The containers shown: `(as the user named it, row)`.
fn containers(
    store: &Store,
    a: &StatsArgs,
    code: &mut i32,
) -> Result<Vec<(String, ContainerRow)>, CliError> {
    if a.containers.is_empty() {
        return Ok(store
            .list_containers()
            .map_err(|e| CliError(format!("Error: {}", Chain(&e))))?
            .into_iter()
            .filter(|r| a.all || Status::parse(&r.state).is_live())
            .map(|r| (r.id.clone(), r))
            .collect());
    }
    let mut rows = Vec::new();
    for key in &a.containers {
        match state::find(store, key) {
            Ok(r) => rows.push((key.clone(), r)),
            Err(e) => *code = report(e),
        }
    }
    Ok(rows)
}

/// `kiln stats`.
pub fn run(a: StatsArgs, root: &Path) -> Result<i32, CliError> {
    let format = match Format::parse(a.format.as_deref()) {
        Ok(f) => f,
        Err(e) => return Ok(crate::cli::usage_error(&e)),
    };
    let store = Store::open(root).map_err(|e| CliError(format!("Error: {}", Chain(&e))))?;
    if let Err(e) = state::reconcile(&store) {
        return Ok(report(Chain(&e).to_string()));
    }
    let trunc = !a.no_trunc;
    let mut code = 0;
    // The previous sample of each container, by ID.
    let mut previous: HashMap<String, Sample> = HashMap::new();
    let mut shown = containers(&store, &a, &mut code)?;
    for (_, r) in &shown {
        if let Some(s) = sample_of(r) {
            previous.insert(r.id.clone(), s);
        }
    }
    let interval = Duration::from_millis(500);
    let mut first = true;
    loop {
        // The first reading needs an interval only if something runs.
        if !(first && previous.is_empty() && a.no_stream) {
            std::thread::sleep(interval);
        }
        first = false;
        if !a.no_stream {
            if a.containers.is_empty() {
                let _ = state::reconcile(&store);
                shown = containers(&store, &a, &mut code)?;
            } else {
                // Fresh rows: a named container may have restarted.
                shown = shown
                    .into_iter()
                    .map(|(k, r)| {
                        let r = store.find_container(&r.id).ok().flatten().unwrap_or(r);
                        (k, r)
                    })
                    .collect();
            }
        }
        let mut entries = Vec::new();
        let mut next = HashMap::new();
        for (name, r) in &shown {
            let after = sample_of(r);
            let e = match (previous.get(&r.id), &after) {
                (Some(b), Some(a)) => entry(name, r, trunc, b, a),
                // Just started: its first interval starts now.
                (None, Some(a)) => entry(name, r, trunc, a, a),
                // Stopped (or gone between the samples): docker's zeros.
                _ => entry(name, r, trunc, &Sample::default(), &Sample::default()),
            };
            entries.push(e);
            if let Some(s) = after {
                next.insert(r.id.clone(), s);
            }
        }
        previous = next;
        if a.no_stream {
            if !entries.is_empty() {
                print!("{}", format.render(&entries)?);
            }
            return Ok(code);
        }
        let frame = redraw(&format.render(&entries)?);
        let mut out = std::io::stdout().lock();
        if out
            .write_all(frame.as_bytes())
            .and_then(|()| out.flush())
            .is_err()
        {
            // The reader went away (a closed pipe): as docker, stop.
            return Ok(code);
        }
    }
}

/// One streamed frame (`RunStats`): home, each line erased to its end,
/// then the rest of the screen erased.
fn redraw(text: &str) -> String {
    let mut frame = String::from("\x1b[H");
    for line in text.split('\n') {
        frame.push_str(line);
        frame.push_str(" \x1b[K\n");
    }
    frame.push_str("\x1b[J");
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_prints_in_binary_units_like_go_units_bytes_size() {
        assert_eq!(bytes_size(0), "0B");
        assert_eq!(bytes_size(1_258_291), "1.2MiB");
        assert_eq!(bytes_size(8_268_361_728), "7.701GiB");
    }

    fn row() -> ContainerRow {
        ContainerRow {
            id: "0123456789abcdef0123".into(),
            name: "web".into(),
            ..Default::default()
        }
    }

    #[test]
    fn formats_are_dockers_table_json_and_templates() {
        let s = Sample {
            mem_usage: 1024,
            mem_limit: 4096,
            pids: 3,
            ..Sample::default()
        };
        let e = [entry("web", &row(), true, &s, &s)];
        let table = Format::parse(None).unwrap().render(&e).unwrap();
        assert_eq!(
            table
                .lines()
                .next()
                .unwrap()
                .split_whitespace()
                .collect::<Vec<_>>(),
            [
                "CONTAINER",
                "ID",
                "NAME",
                "CPU",
                "%",
                "MEM",
                "USAGE",
                "/",
                "LIMIT",
                "MEM",
                "%",
                "NET",
                "I/O",
                "BLOCK",
                "I/O",
                "PIDS"
            ]
        );
        assert!(
            table
                .lines()
                .nth(1)
                .unwrap()
                .starts_with("0123456789ab   web "),
            "{table}"
        );
        let t = Format::parse(Some("{{.Name}} {{.MemUsage}} {{.MemPerc}} {{.PIDs}}")).unwrap();
        assert_eq!(t.render(&e).unwrap(), "web 1KiB / 4KiB 25.00% 3\n");
        let t = Format::parse(Some("table {{.Container}}\t{{.CPUPerc}}")).unwrap();
        assert_eq!(
            t.render(&e).unwrap(),
            "CONTAINER   CPU %\nweb         0.00%\n"
        );
        let json: Value =
            serde_json::from_str(&Format::parse(Some("json")).unwrap().render(&e).unwrap())
                .unwrap();
        assert_eq!(json["ID"], "0123456789ab");
        assert_eq!(json["BlockIO"], "0B / 0B");
        let full = [entry("web", &row(), false, &s, &s)];
        assert_eq!(
            Format::parse(Some("{{.ID}}"))
                .unwrap()
                .render(&full)
                .unwrap(),
            "0123456789abcdef0123\n"
        );
        assert!(Format::parse(Some("{{.Name")).is_err());
        // An empty --format is the default table (docker/cli `RunStats`).
        assert_eq!(Format::parse(Some("")).unwrap().render(&e).unwrap(), table);
    }

    #[test]
    fn a_streamed_frame_redraws_from_home_and_erases_what_was_longer() {
        assert_eq!(
            redraw("A\nB\n"),
            "\x1b[HA \x1b[K\nB \x1b[K\n \x1b[K\n\x1b[J"
        );
    }
}
