//! `kiln logs [-f] [--tail N] [-t] [--since T] [--until T] CONTAINER`: the
//! json-file log, stdout entries to stdout and stderr entries to stderr
//! (docker's).

use super::log_time::{self, Instant};
use super::report;
use crate::cache::Store;
use crate::cli::CliError;
use crate::container::log::{self, Entry};
use crate::container::state::{self, alive, Status};
use crate::error_chain::Chain;
use clap::Args;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

/// Flags of `kiln logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Follow the log until the container stops.
    #[arg(short, long)]
    pub follow: bool,
    /// Show this many lines from the end (`all` for every line).
    #[arg(short = 'n', long, default_value = "all", value_name = "N")]
    pub tail: String,
    /// Prefix each line with its time (RFC 3339, nanoseconds).
    #[arg(short, long)]
    pub timestamps: bool,
    /// Only lines written at or after this time (RFC 3339, a date, Unix
    /// seconds, or a duration before now such as `10m`).
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    pub since: Option<String>,
    /// Only lines written at or before this time (same forms as --since).
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    pub until: Option<String>,
    /// The container.
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

fn print(entries: &[Entry], timestamps: bool) {
    let mut out = std::io::stdout().lock();
    let mut err = std::io::stderr().lock();
    for e in entries {
        let w: &mut dyn Write = if e.stream == "stderr" {
            &mut err
        } else {
            &mut out
        };
        let _ = if timestamps {
            write!(w, "{} {}", e.time, e.log)
        } else {
            w.write_all(e.log.as_bytes())
        };
    }
    let _ = out.flush();
}

/// The part of the log `--since`/`--until` keep. moby's json-file reader
/// (`daemon/logger/loggerutils/logfile.go`) skips entries before `since`
/// and stops at the first after `until`, both bounds inclusive; `--tail`
/// has already picked the last lines.
#[derive(Debug, Clone, Copy, Default)]
struct Window {
    since: Option<Instant>,
    until: Option<Instant>,
}

impl Window {
    fn keeps(&self, e: &Entry) -> bool {
        if self.since.is_none() && self.until.is_none() {
            return true;
        }
        // An entry whose time cannot be read (a hand-edited log) is kept
        // rather than silently lost.
        let Some(t) = crate::image::timestamp::parse_rfc3339_nanos(&e.time) else {
            return true;
        };
        self.since.is_none_or(|s| t >= s) && self.until.is_none_or(|u| t <= u)
    }

    /// Whether `now` is past `--until`: following can stop.
    fn ended(&self, now: Instant) -> bool {
        self.until.is_some_and(|u| now > u)
    }
}

fn now() -> Instant {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (d.as_secs() as i64, d.subsec_nanos())
}

/// `kiln logs`.
pub fn run(a: LogsArgs, root: &Path) -> Result<i32, CliError> {
    // docker/cli's client reads both values before asking for the log
    // (`client/container_logs.go`: `invalid value for "since"`), status 1.
    let mut window = Window::default();
    for (flag, value, slot) in [
        ("since", &a.since, &mut window.since),
        ("until", &a.until, &mut window.until),
    ] {
        if let Some(v) = value {
            match log_time::parse(v, now()) {
                Ok(t) => *slot = Some(t),
                Err(e) => return Ok(report(format!("invalid value for \"{flag}\": {e}"))),
            }
        }
    }
    // docker/cli passes --tail through; the daemon reads a bad value as
    // "all" (moby `daemon/logs.go`); kiln names the mistake instead.
    let tail: Option<usize> = match a.tail.as_str() {
        "all" | "" => None,
        n => match n.parse::<i64>() {
            Ok(n) if n < 0 => None,
            Ok(n) => Some(n as usize),
            Err(_) => {
                return Ok(crate::cli::usage_error(&format!(
                    "invalid value {n:?} for --tail: expected a number of lines or \"all\""
                )))
            }
        },
    };
    let store = Store::open(root).map_err(|e| CliError(format!("Error: {}", Chain(&e))))?;
    if let Err(e) = state::reconcile(&store) {
        return Ok(report(Chain(&e).to_string()));
    }
    let row = match state::find(&store, &a.container) {
        Ok(row) => row,
        Err(e) => return Ok(report(e)),
    };
    let path = state::log_path(root, &row.id);
    let io_err = |e: std::io::Error| CliError(format!("Error: {}: {e}", path.display()));
    // Kept open while following: the end of a `--rm` container's log is
    // still read after its removal deleted the file.
    let mut file = match std::fs::File::open(&path) {
        Ok(f) => Some(f),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io_err(e)),
    };
    let (mut entries, mut offset) = match &mut file {
        Some(f) => log::read_open(f, 0).map_err(io_err)?,
        None => (Vec::new(), 0),
    };
    if let Some(n) = tail {
        let skip = entries.len().saturating_sub(n);
        entries.drain(..skip);
    }
    entries.retain(|e| window.keeps(e));
    print(&entries, a.timestamps);
    if !a.follow {
        return Ok(0);
    }
    loop {
        let live = store
            .find_container(&row.id)
            .ok()
            .flatten()
            .is_some_and(|r| Status::parse(&r.state).is_live() && alive(r.monitor).is_some());
        if file.is_none() {
            file = std::fs::File::open(&path).ok();
        }
        if let Some(f) = &mut file {
            let (mut more, next) = log::read_open(f, offset).map_err(io_err)?;
            offset = next;
            more.retain(|e| window.keeps(e));
            print(&more, a.timestamps);
        }
        if !live || window.ended(now()) {
            return Ok(0);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `start -a` and `attach`: prints what the log gets from `offset` on
/// until the container stops; returns its exit status, or `None` once
/// `stop` is set (a detach).
pub fn follow_run_until(
    store: &Store,
    id: &str,
    mut offset: u64,
    stop: &std::sync::atomic::AtomicBool,
) -> Result<Option<i32>, CliError> {
    let path = state::log_path(store.root(), id);
    let mut file = None;
    // A `--rm` container's row (its exit code) stays until we read it.
    let _waiter = crate::container::waiters::Waiter::register(store.root(), id);
    loop {
        let row = store.find_container(id).ok().flatten();
        let live = row
            .as_ref()
            .is_some_and(|r| Status::parse(&r.state).is_live() && alive(r.monitor).is_some());
        if file.is_none() {
            file = std::fs::File::open(&path).ok();
        }
        if let Some(f) = &mut file {
            let (more, next) = log::read_open(f, offset)
                .map_err(|e| CliError(format!("Error: {}: {e}", path.display())))?;
            offset = next;
            print(&more, false);
        }
        if !live {
            return Ok(Some(row.map(|r| r.exit_code).unwrap_or(0)));
        }
        if stop.load(std::sync::atomic::Ordering::SeqCst) {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Where the log of container `id` ends now (what `start -a` skips).
pub fn log_end(root: &Path, id: &str) -> u64 {
    std::fs::metadata(state::log_path(root, id))
        .map(|m| m.len())
        .unwrap_or(0)
}
