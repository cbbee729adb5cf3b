//! `kiln stats --no-stream [CONTAINER...]`: one table of running
//! containers' resource use in docker's columns and units (docker/cli
//! `cli/command/container/stats.go` and `formatter/stats.go`): CPU % over
//! a short interval, memory in binary units, network and block I/O in
//! decimal units, PIDS.
//!
//! Differs from docker: only `--no-stream` (a live, redrawn table is not
//! built yet), and no `--format`; the CPU interval is 500 ms where the
//! daemon's collector samples every second.

use super::report;
use crate::cache::Store;
use crate::cli::table::{bytes_size, human_size, Table};
use crate::cli::CliError;
use crate::container::state::{self, Status};
use crate::container::stats::{self, Sample};
use crate::error_chain::Chain;
use clap::Args;
use std::path::Path;
use std::time::Duration;

/// Flags of `kiln stats`.
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Print one reading and exit (the only mode kiln has yet).
    #[arg(long)]
    pub no_stream: bool,
    /// Containers (default: every running one).
    #[arg(value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// One table row from two samples.
fn row(id: &str, name: &str, before: &Sample, after: &Sample) -> Vec<String> {
    let mem_percent = if after.mem_limit > 0 {
        after.mem_usage as f64 / after.mem_limit as f64 * 100.0
    } else {
        0.0
    };
    vec![
        id.chars().take(12).collect(),
        name.to_string(),
        format!("{:.2}%", stats::cpu_percent(before, after)),
        format!(
            "{} / {}",
            bytes_size(after.mem_usage),
            bytes_size(after.mem_limit)
        ),
        format!("{mem_percent:.2}%"),
        format!("{} / {}", human_size(after.net.0), human_size(after.net.1)),
        format!(
            "{} / {}",
            human_size(after.block.0),
            human_size(after.block.1)
        ),
        after.pids.to_string(),
    ]
}

/// `kiln stats`.
pub fn run(a: StatsArgs, root: &Path) -> Result<i32, CliError> {
    if !a.no_stream {
        return Ok(crate::cli::usage_error(
            "stats: only --no-stream is supported (one reading, then exit)",
        ));
    }
    let store = Store::open(root).map_err(|e| CliError(format!("Error: {}", Chain(&e))))?;
    if let Err(e) = state::reconcile(&store) {
        return Ok(report(Chain(&e).to_string()));
    }
    let mut code = 0;
    let rows = if a.containers.is_empty() {
        store
            .list_containers()
            .map_err(|e| CliError(format!("Error: {}", Chain(&e))))?
            .into_iter()
            .filter(|r| Status::parse(&r.state).is_live())
            .collect()
    } else {
        let mut rows = Vec::new();
        for key in &a.containers {
            match state::find(&store, key) {
                Ok(r) => rows.push(r),
                Err(e) => code = report(e),
            }
        }
        rows
    };
    let first: Vec<Option<Sample>> = rows
        .iter()
        .map(|r| r.pid.and_then(|(pid, _)| stats::sample(pid)))
        .collect();
    if first.iter().any(Option::is_some) {
        std::thread::sleep(Duration::from_millis(500));
    }
    let mut table = Table::new(&[
        "CONTAINER ID",
        "NAME",
        "CPU %",
        "MEM USAGE / LIMIT",
        "MEM %",
        "NET I/O",
        "BLOCK I/O",
        "PIDS",
    ]);
    for (r, before) in rows.iter().zip(&first) {
        let after = r.pid.and_then(|(pid, _)| stats::sample(pid));
        match (before, after) {
            (Some(b), Some(a)) => table.row(row(&r.id, &r.name, b, &a)),
            // Stopped (or gone between the samples): docker's zeros.
            _ => table.row(row(&r.id, &r.name, &Sample::default(), &Sample::default())),
        }
    }
    print!("{}", table.render());
    Ok(code)
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
}
