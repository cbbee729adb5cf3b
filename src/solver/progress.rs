//! Build progress: the events the scheduler emits and the printers that
//! show them, in BuildKit's styles.
//!
//! The scheduler only sends events down a channel; a printer thread turns
//! them into output, so a slow terminal never holds up a build. `plain`
//! matches `docker build --progress=plain` (`#3 [2/5] RUN make`, `#3 CACHED`,
//! `#3 DONE 0.5s`), `tty` draws live spinners, `quiet` prints nothing,
//! `rawjson` writes BuildKit's status objects, one per line.

mod rawjson;
mod tty;

use std::collections::HashMap;
use std::io::{self, IsTerminal, Write};
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

use super::graph::{Graph, VertexId};

pub use rawjson::RawJsonPrinter;
pub use tty::TtyPrinter;

/// Which stream a log line came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LogStream {
    Stdout = 0,
    Stderr = 1,
}

/// Something that happened to a vertex.
#[derive(Clone, Debug, PartialEq)]
pub enum ProgressEvent {
    /// Execution began.
    Started { vertex: VertexId, name: Arc<str> },
    /// The result came from the cache; the vertex will not run.
    Cached { vertex: VertexId, name: Arc<str> },
    /// One line of output, `elapsed` after the vertex started.
    Log {
        vertex: VertexId,
        stream: LogStream,
        elapsed: Duration,
        line: String,
    },
    /// Execution succeeded.
    Finished {
        vertex: VertexId,
        duration: Duration,
    },
    /// The vertex failed (while running, or while computing its key).
    Failed {
        vertex: VertexId,
        name: Arc<str>,
        error: String,
        log_tail: Vec<String>,
        duration: Option<Duration>,
    },
    /// The vertex was running when the build was cancelled.
    Cancelled {
        vertex: VertexId,
        duration: Duration,
    },
}

impl ProgressEvent {
    /// The vertex the event is about.
    pub fn vertex(&self) -> VertexId {
        match self {
            ProgressEvent::Started { vertex, .. }
            | ProgressEvent::Cached { vertex, .. }
            | ProgressEvent::Log { vertex, .. }
            | ProgressEvent::Finished { vertex, .. }
            | ProgressEvent::Failed { vertex, .. }
            | ProgressEvent::Cancelled { vertex, .. } => *vertex,
        }
    }
}

/// The sending half of a progress channel; sending never blocks and never
/// fails the build (a printer that went away just misses events).
#[derive(Clone, Debug)]
pub struct ProgressSender(mpsc::UnboundedSender<ProgressEvent>);

impl ProgressSender {
    /// Sends `event`; a closed channel drops it.
    pub fn send(&self, event: ProgressEvent) {
        let _ = self.0.send(event);
    }
}

/// The receiving half of a progress channel.
pub type ProgressReceiver = mpsc::UnboundedReceiver<ProgressEvent>;

/// A new progress channel.
pub fn channel() -> (ProgressSender, ProgressReceiver) {
    let (tx, rx) = mpsc::unbounded_channel();
    (ProgressSender(tx), rx)
}

/// How progress is shown (`--progress`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgressMode {
    /// `tty` on an interactive terminal, else `plain`.
    Auto,
    Plain,
    Tty,
    Quiet,
    /// BuildKit's `client.SolveStatus` objects as JSON lines
    /// ([`RawJsonPrinter`]), for programs; nothing else is written on
    /// stderr.
    RawJson,
}

/// Why a `--progress` value is not accepted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid progress mode {0:?} (expected auto, plain, tty, quiet or rawjson)")]
pub struct ProgressModeError(String);

impl FromStr for ProgressMode {
    type Err = ProgressModeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(ProgressMode::Auto),
            "plain" => Ok(ProgressMode::Plain),
            "tty" => Ok(ProgressMode::Tty),
            "quiet" => Ok(ProgressMode::Quiet),
            "rawjson" => Ok(ProgressMode::RawJson),
            _ => Err(ProgressModeError(s.to_string())),
        }
    }
}

impl ProgressMode {
    /// The mode actually used: live output needs a terminal, and CI logs
    /// want plain lines even when a CI runner fakes a terminal.
    pub fn resolve(self, stderr_is_terminal: bool, ci: bool) -> ProgressMode {
        match self {
            ProgressMode::Auto | ProgressMode::Tty if stderr_is_terminal && !ci => {
                ProgressMode::Tty
            }
            ProgressMode::Auto | ProgressMode::Tty => ProgressMode::Plain,
            other => other,
        }
    }
}

/// Whether the `CI` environment variable says we run under CI.
fn ci_from_env() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

impl ProgressMode {
    /// Whether the build may print its own text lines on stderr beside the
    /// progress (not when quiet, nor between JSON lines).
    pub fn shows_text(self) -> bool {
        !matches!(self, ProgressMode::Quiet | ProgressMode::RawJson)
    }
}

/// Starts a thread that prints events from `rx` on stderr in `mode` until
/// every sender is dropped.
pub fn spawn_printer(
    mode: ProgressMode,
    rx: ProgressReceiver,
) -> std::thread::JoinHandle<io::Result<()>> {
    spawn_printer_for(mode, rx, &Graph::new(), None)
}

/// [`spawn_printer`] for the vertices of `graph`, which `rawjson` names by
/// digest.
pub fn spawn_printer_for(
    mode: ProgressMode,
    mut rx: ProgressReceiver,
    graph: &Graph,
    shared: Option<Numbering>,
) -> std::thread::JoinHandle<io::Result<()>> {
    let mode = match mode.resolve(io::stderr().is_terminal(), ci_from_env()) {
        // Two live displays redrawing one terminal would garble each
        // other: printers that share the stream print plain lines.
        ProgressMode::Tty if shared.is_some() => ProgressMode::Plain,
        mode => mode,
    };
    if mode == ProgressMode::RawJson {
        let mut printer = RawJsonPrinter::new(io::stderr(), graph);
        return std::thread::spawn(move || {
            while let Some(event) = rx.blocking_recv() {
                printer.handle(&event)?;
            }
            Ok(())
        });
    }
    std::thread::spawn(move || match mode {
        ProgressMode::Tty => {
            let mut printer = TtyPrinter::new();
            while let Some(event) = rx.blocking_recv() {
                printer.handle(&event)?;
            }
            printer.finish()
        }
        ProgressMode::Quiet => {
            while rx.blocking_recv().is_some() {}
            Ok(())
        }
        ProgressMode::Plain | ProgressMode::Auto | ProgressMode::RawJson => {
            let mut printer = match shared {
                Some(numbers) => PlainPrinter::sharing(io::stderr(), numbers),
                None => PlainPrinter::new(io::stderr()),
            };
            while let Some(event) = rx.blocking_recv() {
                printer.handle(&event)?;
            }
            printer.finish()
        }
    })
}

/// The `#N` numbers of plain printers that write to one stream at once
/// (the platforms of a multi-platform build, each solved on its own), so
/// that no two vertices show one number.
#[derive(Debug, Clone, Default)]
pub struct Numbering(Arc<AtomicUsize>);

impl Numbering {
    /// The next number, from 1.
    fn next(&self) -> usize {
        self.0.fetch_add(1, Ordering::Relaxed) + 1
    }
}

/// BuildKit's `--progress=plain` output: every line prefixed `#N`, N
/// numbering vertices in order of first appearance; a blank line and the
/// vertex header whenever output switches to another vertex.
pub struct PlainPrinter<W: Write> {
    out: W,
    vertices: HashMap<VertexId, PlainVertex>,
    numbers: Numbering,
    current: Option<VertexId>,
    failures: Vec<Failure>,
}

struct PlainVertex {
    number: usize,
    name: Arc<str>,
    done: bool,
}

/// A failed vertex's name and log tail, shown after the progress ends.
struct Failure {
    name: Arc<str>,
    log_tail: Vec<String>,
}

impl<W: Write> PlainPrinter<W> {
    /// A printer writing to `out`.
    pub fn new(out: W) -> Self {
        PlainPrinter::sharing(out, Numbering::default())
    }

    /// A printer writing to `out` whose vertices take their numbers from
    /// `numbers`.
    pub fn sharing(out: W, numbers: Numbering) -> Self {
        PlainPrinter {
            out,
            vertices: HashMap::new(),
            numbers,
            current: None,
            failures: Vec::new(),
        }
    }

    /// Prints one event.
    pub fn handle(&mut self, event: &ProgressEvent) -> io::Result<()> {
        let id = event.vertex();
        if let ProgressEvent::Started { name, .. }
        | ProgressEvent::Cached { name, .. }
        | ProgressEvent::Failed { name, .. } = event
        {
            if !self.vertices.contains_key(&id) {
                let number = self.numbers.next();
                self.vertices.insert(
                    id,
                    PlainVertex {
                        number,
                        name: name.clone(),
                        done: false,
                    },
                );
            }
        }
        // Events for a vertex never announced (e.g. a log line from a vertex
        // whose start was not sent) have no number to print under.
        let Some(number) = self.vertices.get(&id).map(|v| v.number) else {
            return Ok(());
        };
        self.switch_to(id)?;
        match event {
            ProgressEvent::Started { .. } => {}
            ProgressEvent::Cached { .. } => {
                writeln!(self.out, "#{number} CACHED")?;
                self.mark_done(id);
            }
            ProgressEvent::Log { elapsed, line, .. } => {
                writeln!(self.out, "#{number} {:.3} {line}", elapsed.as_secs_f64())?;
            }
            ProgressEvent::Finished { duration, .. } => {
                writeln!(self.out, "#{number} DONE {:.1}s", duration.as_secs_f64())?;
                self.mark_done(id);
            }
            ProgressEvent::Failed {
                error,
                name,
                log_tail,
                ..
            } => {
                writeln!(self.out, "#{number} ERROR: {error}")?;
                self.failures.push(Failure {
                    name: name.clone(),
                    log_tail: log_tail.clone(),
                });
                self.mark_done(id);
            }
            ProgressEvent::Cancelled { .. } => {
                writeln!(self.out, "#{number} CANCELED")?;
                self.mark_done(id);
            }
        }
        self.out.flush()
    }

    /// Ends the output: the log tail of each failed vertex, boxed as
    /// BuildKit shows it.
    pub fn finish(mut self) -> io::Result<()> {
        if self.current.is_some() && !self.failures.is_empty() {
            writeln!(self.out)?;
        }
        write_failures(&mut self.out, &self.failures)?;
        self.out.flush()
    }

    /// Starts a new block when output moves to another vertex, leaving
    /// `#N ...` under an unfinished one so readers know it continues later.
    fn switch_to(&mut self, id: VertexId) -> io::Result<()> {
        if self.current == Some(id) {
            return Ok(());
        }
        if let Some(previous) = self.current.and_then(|p| self.vertices.get(&p)) {
            if !previous.done {
                writeln!(self.out, "#{} ...", previous.number)?;
            }
            writeln!(self.out)?;
        }
        let v = &self.vertices[&id];
        writeln!(self.out, "#{} {}", v.number, v.name)?;
        self.current = Some(id);
        Ok(())
    }

    fn mark_done(&mut self, id: VertexId) {
        if let Some(v) = self.vertices.get_mut(&id) {
            v.done = true;
        }
    }
}

fn write_failures(out: &mut impl Write, failures: &[Failure]) -> io::Result<()> {
    for failure in failures {
        writeln!(out, "------")?;
        writeln!(out, " > {}:", failure.name)?;
        for line in &failure.log_tail {
            writeln!(out, "{line}")?;
        }
        writeln!(out, "------")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(n: u32) -> VertexId {
        VertexId::from_index(n)
    }

    fn check(events: &[ProgressEvent], expected: &str) {
        let mut out = Vec::new();
        let mut printer = PlainPrinter::new(&mut out);
        for event in events {
            printer.handle(event).unwrap();
        }
        printer.finish().unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), expected);
    }

    fn started(n: u32, name: &str) -> ProgressEvent {
        ProgressEvent::Started {
            vertex: v(n),
            name: name.into(),
        }
    }

    fn log(n: u32, ms: u64, line: &str) -> ProgressEvent {
        ProgressEvent::Log {
            vertex: v(n),
            stream: LogStream::Stdout,
            elapsed: Duration::from_millis(ms),
            line: line.into(),
        }
    }

    fn finished(n: u32, ms: u64) -> ProgressEvent {
        ProgressEvent::Finished {
            vertex: v(n),
            duration: Duration::from_millis(ms),
        }
    }

    #[test]
    fn plain_prints_buildkit_style_blocks() {
        check(
            &[
                ProgressEvent::Cached {
                    vertex: v(4),
                    name: "[1/3] FROM docker.io/library/alpine:3.19".into(),
                },
                started(7, "[2/3] RUN make"),
                log(7, 215, "cc -o app main.c"),
                finished(7, 340),
            ],
            "#1 [1/3] FROM docker.io/library/alpine:3.19\n#1 CACHED\n\n\
             #2 [2/3] RUN make\n#2 0.215 cc -o app main.c\n#2 DONE 0.3s\n",
        );
    }

    #[test]
    fn plain_marks_interleaved_vertices_and_reprints_headers() {
        check(
            &[
                started(1, "[a 2/2] RUN sleep 1"),
                started(2, "[b 2/2] RUN echo b"),
                log(2, 10, "b"),
                finished(2, 20),
                log(1, 1005, "a"),
                finished(1, 1100),
            ],
            "#1 [a 2/2] RUN sleep 1\n#1 ...\n\n\
             #2 [b 2/2] RUN echo b\n#2 0.010 b\n#2 DONE 0.0s\n\n\
             #1 [a 2/2] RUN sleep 1\n#1 1.005 a\n#1 DONE 1.1s\n",
        );
    }

    #[test]
    fn plain_reports_errors_with_the_log_tail_at_the_end() {
        check(
            &[
                started(3, "[2/2] RUN exit 3"),
                log(3, 100, "boom"),
                ProgressEvent::Failed {
                    vertex: v(3),
                    name: "[2/2] RUN exit 3".into(),
                    error: "process exited with code 3".into(),
                    log_tail: vec!["boom".into()],
                    duration: Some(Duration::from_millis(120)),
                },
                started(5, "[b 1/1] RUN sleep 9"),
                ProgressEvent::Cancelled {
                    vertex: v(5),
                    duration: Duration::from_millis(130),
                },
            ],
            "#1 [2/2] RUN exit 3\n#1 0.100 boom\n#1 ERROR: process exited with code 3\n\n\
             #2 [b 1/1] RUN sleep 9\n#2 CANCELED\n\n\
             ------\n > [2/2] RUN exit 3:\nboom\n------\n",
        );
    }

    #[test]
    fn modes_fall_back_to_plain_without_a_terminal_or_under_ci() {
        use ProgressMode::*;
        for (mode, terminal, ci, expected) in [
            (Auto, true, false, Tty),
            (Auto, false, false, Plain),
            (Auto, true, true, Plain),
            (Tty, false, false, Plain),
            (Tty, true, true, Plain),
            (Plain, true, false, Plain),
            (Quiet, true, false, Quiet),
            (RawJson, true, false, RawJson),
        ] {
            assert_eq!(
                mode.resolve(terminal, ci),
                expected,
                "{mode:?} {terminal} {ci}"
            );
        }
        assert_eq!("plain".parse(), Ok(Plain));
        assert_eq!("rawjson".parse(), Ok(RawJson));
        assert!("fancy".parse::<ProgressMode>().is_err());
    }
}
