//! Per-layer progress for pull and push: a bar per layer (indicatif) on a
//! terminal, docker's plain status lines (`abc123: Pull complete`) when
//! the output is a pipe or a log.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};

/// Where progress goes. Shared by the threads moving layers.
#[derive(Clone)]
pub struct Progress {
    inner: Arc<Inner>,
}

enum Inner {
    /// The flag is set once every bar is finished: later lines go below
    /// the bars instead of above them. The last field says the bars are
    /// drawn on stderr.
    Bars(MultiProgress, std::sync::atomic::AtomicBool, bool),
    Lines(Mutex<Box<dyn Write + Send>>),
    Silent,
}

impl Progress {
    /// Bars if stdout is a terminal, else plain lines on stdout.
    pub fn for_stdout() -> Progress {
        if std::io::stdout().is_terminal() {
            Progress {
                inner: Arc::new(Inner::Bars(
                    MultiProgress::with_draw_target(ProgressDrawTarget::stdout()),
                    Default::default(),
                    false,
                )),
            }
        } else {
            Progress::lines()
        }
    }

    /// Bars if stderr is a terminal, else plain lines on stderr: `kiln run`
    /// pulls there, as `docker run` does, so the container's stdout stays
    /// its own.
    pub fn for_stderr() -> Progress {
        let inner = if std::io::stderr().is_terminal() {
            Inner::Bars(
                MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
                Default::default(),
                true,
            )
        } else {
            Inner::Lines(Mutex::new(Box::new(std::io::stderr())))
        };
        Progress {
            inner: Arc::new(inner),
        }
    }

    /// Plain status lines on stdout.
    pub fn lines() -> Progress {
        Progress {
            inner: Arc::new(Inner::Lines(Mutex::new(Box::new(std::io::stdout())))),
        }
    }

    /// Nothing shown (library callers, tests).
    pub fn silent() -> Progress {
        Progress {
            inner: Arc::new(Inner::Silent),
        }
    }

    /// A line of progress for one blob, named by its short digest.
    pub fn item(&self, id: &str, total: u64) -> ItemProgress {
        let bar = match &*self.inner {
            Inner::Bars(multi, _, _) => {
                let bar = multi.add(ProgressBar::new(total));
                let style = ProgressStyle::with_template(
                    "{prefix}: {msg:<16} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
                bar.set_style(style);
                bar.set_prefix(id.to_string());
                Some(bar)
            }
            _ => None,
        };
        ItemProgress {
            id: id.to_string(),
            progress: self.clone(),
            bar,
        }
    }

    /// Marks the items as done: lines printed from now on follow them
    /// (docker prints `Digest:` and `Status:` after the layers).
    pub fn items_done(&self) {
        if let Inner::Bars(_, done, _) = &*self.inner {
            done.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }

    /// A line outside any item (`Digest: …`, `Status: …`).
    pub fn println(&self, line: &str) {
        match &*self.inner {
            Inner::Bars(_, done, stderr) if done.load(std::sync::atomic::Ordering::SeqCst) => {
                if *stderr {
                    eprintln!("{line}");
                } else {
                    println!("{line}");
                }
            }
            Inner::Bars(multi, _, _) => {
                let _ = multi.println(line);
            }
            Inner::Lines(out) => {
                let mut out = out.lock().unwrap_or_else(|p| p.into_inner());
                let _ = writeln!(out, "{line}");
            }
            Inner::Silent => {}
        }
    }
}

/// Progress of one blob.
pub struct ItemProgress {
    id: String,
    progress: Progress,
    bar: Option<ProgressBar>,
}

impl ItemProgress {
    /// A state change (`Pulling fs layer`, `Download complete`); a line in
    /// plain mode, the bar's message on a terminal.
    pub fn status(&self, msg: &str) {
        match &self.bar {
            Some(bar) => bar.set_message(msg.to_string()),
            None => self.progress.println(&format!("{}: {msg}", self.id)),
        }
    }

    /// Bytes done so far (bars only: plain lines would flood a log).
    pub fn set(&self, done: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(done);
        }
    }

    /// The final state; the bar stays on screen with `msg`.
    pub fn finish(&self, msg: &str) {
        match &self.bar {
            Some(bar) => {
                // Done means full, also when nothing had to move.
                if let Some(len) = bar.length() {
                    bar.set_position(len);
                }
                bar.finish_with_message(msg.to_string())
            }
            None => self.progress.println(&format!("{}: {msg}", self.id)),
        }
    }
}
