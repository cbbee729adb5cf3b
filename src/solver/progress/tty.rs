//! Live progress on a terminal: one spinner per running vertex with its
//! latest output line, and a permanent ` => ` line above them as each
//! vertex finishes, close to BuildKit's tty display.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::HashMap;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use super::{write_failures, Failure, ProgressEvent};
use crate::solver::graph::VertexId;

/// How often spinners redraw.
const TICK: Duration = Duration::from_millis(100);
/// Width the step names are padded to, so durations line up.
const NAME_WIDTH: usize = 60;

/// Draws progress with indicatif; use only on a terminal
/// (see [`super::ProgressMode::resolve`]).
pub struct TtyPrinter {
    multi: MultiProgress,
    running: HashMap<VertexId, Running>,
    names: HashMap<VertexId, Arc<str>>,
    failures: Vec<Failure>,
    style: ProgressStyle,
}

struct Running {
    bar: ProgressBar,
    name: Arc<str>,
}

impl Default for TtyPrinter {
    fn default() -> Self {
        Self::new()
    }
}

impl TtyPrinter {
    /// A printer drawing on stderr.
    pub fn new() -> TtyPrinter {
        TtyPrinter::with_target(ProgressDrawTarget::stderr())
    }

    /// A printer drawing on `target` (hidden in tests).
    pub fn with_target(target: ProgressDrawTarget) -> TtyPrinter {
        let style =
            ProgressStyle::with_template(" {spinner:.cyan} {prefix} {elapsed:>4} {wide_msg:.dim}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner());
        TtyPrinter {
            multi: MultiProgress::with_draw_target(target),
            running: HashMap::new(),
            names: HashMap::new(),
            failures: Vec::new(),
            style,
        }
    }

    /// Number of spinners on screen.
    pub fn running(&self) -> usize {
        self.running.len()
    }

    /// Updates the display for one event.
    pub fn handle(&mut self, event: &ProgressEvent) -> io::Result<()> {
        match event {
            ProgressEvent::Started { vertex, name } => {
                self.names.insert(*vertex, name.clone());
                let bar = self.multi.add(ProgressBar::new_spinner());
                bar.set_style(self.style.clone());
                bar.set_prefix(name.to_string());
                bar.enable_steady_tick(TICK);
                self.running.insert(
                    *vertex,
                    Running {
                        bar,
                        name: name.clone(),
                    },
                );
            }
            ProgressEvent::Cached { vertex, name } => {
                self.names.insert(*vertex, name.clone());
                self.multi.println(format!(" => CACHED {name}"))?;
            }
            ProgressEvent::Log { vertex, line, .. } => {
                if let Some(running) = self.running.get(vertex) {
                    running.bar.set_message(line.clone());
                }
            }
            ProgressEvent::Finished { vertex, duration } => {
                if let Some(running) = self.running.remove(vertex) {
                    running.bar.finish_and_clear();
                    self.multi.println(format!(
                        " => {:<NAME_WIDTH$} {:>5.1}s",
                        running.name,
                        duration.as_secs_f64()
                    ))?;
                }
            }
            ProgressEvent::Failed {
                vertex,
                name,
                error,
                log_tail,
                ..
            } => {
                if let Some(running) = self.running.remove(vertex) {
                    running.bar.finish_and_clear();
                }
                self.multi.println(format!(" => ERROR {name}: {error}"))?;
                self.failures.push(Failure {
                    name: name.clone(),
                    log_tail: log_tail.clone(),
                });
            }
            ProgressEvent::Cancelled { vertex, .. } => {
                if let Some(running) = self.running.remove(vertex) {
                    running.bar.finish_and_clear();
                    self.multi
                        .println(format!(" => CANCELED {}", running.name))?;
                }
            }
        }
        Ok(())
    }

    /// Clears what is still drawn and prints the failed vertices' log tails.
    pub fn finish(mut self) -> io::Result<()> {
        for (_, running) in self.running.drain() {
            running.bar.finish_and_clear();
        }
        self.multi.clear()?;
        let mut err = io::stderr().lock();
        write_failures(&mut err, &self.failures)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spinners_come_and_go_with_running_vertices() {
        let mut printer = TtyPrinter::with_target(ProgressDrawTarget::hidden());
        let a = VertexId::from_index(0);
        let b = VertexId::from_index(1);
        for event in [
            ProgressEvent::Started {
                vertex: a,
                name: "[1/2] RUN a".into(),
            },
            ProgressEvent::Started {
                vertex: b,
                name: "[2/2] RUN b".into(),
            },
        ] {
            printer.handle(&event).unwrap();
        }
        assert_eq!(printer.running(), 2);
        printer
            .handle(&ProgressEvent::Finished {
                vertex: a,
                duration: Duration::from_millis(5),
            })
            .unwrap();
        printer
            .handle(&ProgressEvent::Cancelled {
                vertex: b,
                duration: Duration::from_millis(5),
            })
            .unwrap();
        assert_eq!(printer.running(), 0);
    }
}
