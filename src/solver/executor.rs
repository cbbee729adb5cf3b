//! The seams between the scheduler and the world: what runs an op
//! ([`Executor`]), where results are cached ([`CacheStore`]), and what an
//! executor gets while it runs (a [`Job`] with a [`LogSink`] and a
//! [`CancelToken`]).
//!
//! Executors are blocking: running a process or copying a tree is blocking
//! work, so the scheduler calls them on tokio's blocking pool, never more
//! than the concurrency limit at a time.

use std::collections::{HashMap, VecDeque};
use std::error::Error as StdError;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::graph::{Vertex, VertexId};
use super::key::CacheKey;
use super::op::{ContentSelector, ImageSource};
use super::progress::{LogStream, ProgressEvent, ProgressSender};
use crate::image::Digest;

/// Performs ops. `Output` is whatever a result is to the implementation
/// (a snapshot id, an image's layers and config, a context handle); the
/// solver only clones it, caches it and hands it to dependents.
pub trait Executor: Send + Sync + 'static {
    type Output: Clone + Send + Sync + 'static;

    /// Runs the job's op over its resolved inputs. Called on a blocking
    /// thread; should return [`ExecError::Cancelled`] soon after
    /// `job.cancel` fires.
    fn execute(&self, job: &Job<'_, Self::Output>) -> Result<Self::Output, ExecError>;

    /// The manifest digest an unpinned base image resolves to; this is the
    /// image's cache key, so it must not pull layers.
    fn resolve_image(&self, source: &ImageSource) -> Result<Digest, ExecError>;

    /// The content digest of `selector` within the output of a context
    /// source (file contents and metadata, never mtimes).
    fn content_digest(
        &self,
        context: &Self::Output,
        selector: &ContentSelector,
    ) -> Result<Digest, ExecError>;

    /// The regular files `selector` picks from a context source's output,
    /// with their content digests, at most `limit` of them, by path: what
    /// `kiln build --explain` names when a selection's digest changed.
    /// Nothing by default.
    fn content_files(
        &self,
        _context: &Self::Output,
        _selector: &ContentSelector,
        _limit: usize,
    ) -> Vec<(String, Digest)> {
        Vec::new()
    }
}

/// What an executor is asked to do.
pub struct Job<'a, O> {
    pub id: VertexId,
    pub vertex: &'a Vertex,
    /// The key the result will be recorded under.
    pub key: &'a CacheKey,
    /// The outputs of `vertex.inputs()`, in the same order.
    pub inputs: &'a [O],
    /// Where the process's output goes (progress and the error tail).
    pub log: &'a LogSink,
    pub cancel: &'a CancelToken,
}

/// Where results are cached, by key. Lookups happen before execution (and
/// are skipped under `--no-cache`); every fresh result is recorded.
/// Implementations log their own failures: a cache that cannot be read is
/// a miss, and one that cannot be written must not fail the build.
pub trait CacheStore<O>: Send + Sync + 'static {
    /// Whether `key` has a result, without taking it: the solver asks this
    /// of every vertex (for progress) but takes only the results it uses,
    /// so it must be cheap (a persistent cache answers from a read).
    fn contains(&self, key: &CacheKey) -> bool;
    /// The result under `key`, made usable for this build (a persistent
    /// cache protects it from garbage collection); `None` if it is gone.
    fn lookup(&self, key: &CacheKey) -> Option<O>;
    /// [`CacheStore::lookup`] for the build's target: no step runs on its
    /// result, which only goes to the build's outputs, so a cache may hand
    /// back a result whose bytes are not here yet (kiln's lazy push of an
    /// imported result, `build::remote_cache`).
    fn lookup_target(&self, key: &CacheKey) -> Option<O> {
        self.lookup(key)
    }
    fn record(&self, key: &CacheKey, output: &O);
    /// Asks to be the only one computing `key` among everyone sharing
    /// this cache (other processes on one store): the solver claims a
    /// missed step before running it, runs it only while holding the
    /// claim, and looks the key up again once it holds it, so a step
    /// another build just ran is taken from the cache instead. Must not
    /// block. A cache nobody else uses answers [`Claim::Unshared`].
    fn try_claim(&self, _key: &CacheKey) -> Claim {
        Claim::Unshared
    }
    /// Told what went into `key` (a step of lineage `lineage`, see
    /// `solver::explain`) and whether the cache has it: a persistent cache
    /// keeps the summary with the step's record and can say why a step
    /// missed (`kiln build --explain`).
    fn note_inputs(
        &self,
        _key: &CacheKey,
        _lineage: &Digest,
        _inputs: &super::explain::StepInputs,
        _cached: bool,
    ) {
    }
}

/// The answer to [`CacheStore::try_claim`].
pub enum Claim {
    /// Held until the guard is dropped (after the step is recorded).
    Held(Box<dyn Send>),
    /// Someone else is computing the key now: ask again later.
    Busy,
    /// No one else computes keys of this cache.
    Unshared,
}

/// A cache that lives as long as the process: for tests, and for builds
/// with no store.
pub struct MemoryCache<O> {
    entries: Mutex<HashMap<CacheKey, O>>,
}

impl<O> Default for MemoryCache<O> {
    fn default() -> Self {
        MemoryCache {
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl<O> MemoryCache<O> {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of recorded results.
    pub fn len(&self) -> usize {
        self.entries.lock().map(|m| m.len()).unwrap_or(0)
    }

    /// Whether nothing is recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<O: Clone + Send + Sync + 'static> CacheStore<O> for MemoryCache<O> {
    fn contains(&self, key: &CacheKey) -> bool {
        self.entries.lock().is_ok_and(|e| e.contains_key(key))
    }

    fn lookup(&self, key: &CacheKey) -> Option<O> {
        self.entries.lock().ok()?.get(key).cloned()
    }

    fn record(&self, key: &CacheKey, output: &O) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.insert(key.clone(), output.clone());
        }
    }
}

/// Why an op failed.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("process exited with code {0}")]
    ExitCode(i32),
    #[error("process killed by signal {0}")]
    Signal(i32),
    #[error("cancelled")]
    Cancelled,
    #[error("{0}")]
    Message(String),
    #[error("{context}")]
    Other {
        context: String,
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
}

impl ExecError {
    /// How BuildKit words an exec op whose process `args` failed this
    /// way: `process "/bin/sh -c exit 3" did not complete successfully:
    /// exit code: 3` (moby/buildkit `solver/llbsolver/ops/exec.go`, `Exec`,
    /// wrapping the executor's `ExitError`, `exit code: N`; runc reports a
    /// process killed by a signal as 128 + the signal). `None` for other
    /// failures, which keep their own text.
    pub fn process_message(&self, args: &[String]) -> Option<String> {
        let code = match self {
            ExecError::ExitCode(code) => *code,
            ExecError::Signal(sig) => 128 + sig,
            _ => return None,
        };
        Some(format!(
            "process {} did not complete successfully: exit code: {code}",
            crate::parser::go_quote(args.join(" ").as_bytes())
        ))
    }
}

impl ExecError {
    /// An error described by `message` alone.
    pub fn msg(message: impl Into<String>) -> ExecError {
        ExecError::Message(message.into())
    }

    /// `source`, saying what was being done when it happened.
    pub fn with_context(
        context: impl Into<String>,
        source: impl Into<Box<dyn StdError + Send + Sync>>,
    ) -> ExecError {
        ExecError::Other {
            context: context.into(),
            source: source.into(),
        }
    }
}

/// Cooperative cancellation: set once (first failure, or the user's
/// Ctrl-C), seen by the scheduler before starting anything, by running
/// executors that poll it, and by those blocked in something else (a
/// container) through a hook ([`CancelToken::on_cancel`]).
#[derive(Clone, Default)]
pub struct CancelToken {
    inner: Arc<CancelInner>,
}

/// A callback run once by [`CancelToken::cancel`].
type Hook = Box<dyn FnOnce() + Send>;

#[derive(Default)]
struct CancelInner {
    cancelled: AtomicBool,
    notify: tokio::sync::Notify,
    /// Registered hooks by id; taken (and run) by the first `cancel`.
    hooks: Mutex<Vec<(u64, Hook)>>,
    next_hook: AtomicU64,
}

/// Keeps a [`CancelToken::on_cancel`] hook registered; dropping it
/// unregisters the hook if it has not run.
#[must_use = "the hook is unregistered when this is dropped"]
pub struct CancelHook {
    inner: Arc<CancelInner>,
    id: u64,
}

impl Drop for CancelHook {
    fn drop(&mut self) {
        if let Ok(mut hooks) = self.inner.hooks.lock() {
            hooks.retain(|(id, _)| *id != self.id);
        }
    }
}

impl CancelToken {
    /// A token not yet cancelled.
    pub fn new() -> CancelToken {
        CancelToken::default()
    }

    /// Cancels; idempotent. Runs the registered hooks on this thread.
    pub fn cancel(&self) {
        self.inner.cancelled.store(true, Ordering::SeqCst);
        self.inner.notify.notify_waiters();
        let hooks = match self.inner.hooks.lock() {
            Ok(mut hooks) => std::mem::take(&mut *hooks),
            Err(_) => Vec::new(),
        };
        for (_, hook) in hooks {
            hook();
        }
    }

    /// Runs `hook` once when the token is cancelled (at once, on this
    /// thread, if it already is), for blocking work that cannot poll the
    /// token: e.g. firing a container's kill switch. Keep the hook short
    /// and non-blocking: it runs inside [`CancelToken::cancel`].
    pub fn on_cancel(&self, hook: impl FnOnce() + Send + 'static) -> CancelHook {
        let id = self.inner.next_hook.fetch_add(1, Ordering::Relaxed);
        let guard = CancelHook {
            inner: self.inner.clone(),
            id,
        };
        // Checked under the lock: `cancel` sets the flag before it takes
        // the hooks, so a hook pushed while the flag is clear is taken.
        let late = match self.inner.hooks.lock() {
            Ok(mut hooks) if !self.is_cancelled() => {
                hooks.push((id, Box::new(hook)));
                None
            }
            _ => Some(hook),
        };
        if let Some(hook) = late {
            hook();
        }
        guard
    }

    /// Whether [`CancelToken::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancelled.load(Ordering::SeqCst)
    }

    /// Resolves once cancelled (for async code around an executor).
    pub async fn cancelled(&self) {
        loop {
            let notified = self.inner.notify.notified();
            if self.is_cancelled() {
                return;
            }
            notified.await;
        }
    }
}

impl std::fmt::Debug for CancelToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CancelToken({})", self.is_cancelled())
    }
}

/// Collects a running vertex's output: forwards each line as a progress
/// event and keeps the last few lines for the error report.
pub struct LogSink {
    vertex: VertexId,
    started: Instant,
    progress: Option<ProgressSender>,
    tail_lines: usize,
    state: Mutex<LogState>,
}

#[derive(Default)]
struct LogState {
    tail: VecDeque<String>,
    /// Bytes after the last newline, per stream, until the line ends.
    partial: [Vec<u8>; 2],
}

impl LogSink {
    /// A sink for `vertex` keeping `tail_lines` lines; times are relative
    /// to `started`.
    pub fn new(
        vertex: VertexId,
        started: Instant,
        progress: Option<ProgressSender>,
        tail_lines: usize,
    ) -> LogSink {
        LogSink {
            vertex,
            started,
            progress,
            tail_lines,
            state: Mutex::new(LogState::default()),
        }
    }

    /// Records one complete line (without its newline).
    pub fn line(&self, stream: LogStream, line: &str) {
        if let Ok(mut state) = self.state.lock() {
            self.push_line(&mut state, stream, line.to_string());
        }
    }

    /// Records raw process output; lines are split on `\n` and a trailing
    /// partial line waits for the next write or [`LogSink::flush`].
    pub fn write(&self, stream: LogStream, bytes: &[u8]) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        let slot = stream as usize;
        let mut rest = bytes;
        while let Some(pos) = rest.iter().position(|&b| b == b'\n') {
            let mut buf = std::mem::take(&mut state.partial[slot]);
            buf.extend_from_slice(&rest[..pos]);
            rest = &rest[pos + 1..];
            let line = decode_line(&buf);
            self.push_line(&mut state, stream, line);
        }
        state.partial[slot].extend_from_slice(rest);
    }

    /// Emits any partial lines left by [`LogSink::write`].
    pub fn flush(&self) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        for stream in [LogStream::Stdout, LogStream::Stderr] {
            let buf = std::mem::take(&mut state.partial[stream as usize]);
            if !buf.is_empty() {
                let line = decode_line(&buf);
                self.push_line(&mut state, stream, line);
            }
        }
    }

    /// The last lines seen, oldest first.
    pub fn tail(&self) -> Vec<String> {
        self.state
            .lock()
            .map(|s| s.tail.iter().cloned().collect())
            .unwrap_or_default()
    }

    fn push_line(&self, state: &mut LogState, stream: LogStream, line: String) {
        if self.tail_lines > 0 {
            if state.tail.len() == self.tail_lines {
                state.tail.pop_front();
            }
            state.tail.push_back(line.clone());
        }
        if let Some(progress) = &self.progress {
            progress.send(ProgressEvent::Log {
                vertex: self.vertex,
                stream,
                elapsed: self.started.elapsed(),
                line,
            });
        }
    }
}

fn decode_line(bytes: &[u8]) -> String {
    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_processes_read_like_buildkit() {
        let args = vec![
            "/bin/sh".to_string(),
            "-c".into(),
            "echo \"hi\"; exit 3".into(),
        ];
        assert_eq!(
            ExecError::ExitCode(3).process_message(&args).as_deref(),
            Some(
                r#"process "/bin/sh -c echo \"hi\"; exit 3" did not complete successfully: exit code: 3"#
            )
        );
        assert_eq!(
            ExecError::Signal(9).process_message(&args[..2]).as_deref(),
            Some(r#"process "/bin/sh -c" did not complete successfully: exit code: 137"#)
        );
        assert_eq!(ExecError::Cancelled.process_message(&args), None);
    }

    #[test]
    fn log_sink_splits_lines_and_keeps_a_bounded_tail() {
        let (tx, mut rx) = super::super::progress::channel();
        let sink = LogSink::new(VertexId::from_index(0), Instant::now(), Some(tx), 2);
        sink.write(LogStream::Stdout, b"one\ntw");
        sink.write(LogStream::Stderr, b"err\r\n");
        sink.write(LogStream::Stdout, b"o\nthree");
        sink.flush();
        assert_eq!(sink.tail(), ["two", "three"]);
        let mut lines = Vec::new();
        while let Ok(event) = rx.try_recv() {
            if let ProgressEvent::Log { line, stream, .. } = event {
                lines.push((stream, line));
            }
        }
        assert_eq!(
            lines,
            [
                (LogStream::Stdout, "one".to_string()),
                (LogStream::Stderr, "err".to_string()),
                (LogStream::Stdout, "two".to_string()),
                (LogStream::Stdout, "three".to_string()),
            ]
        );
    }

    #[test]
    fn cancel_runs_hooks_once_and_dropped_hooks_never() {
        use std::sync::atomic::AtomicUsize;
        let token = CancelToken::new();
        let runs = Arc::new(AtomicUsize::new(0));
        let counter = |runs: &Arc<AtomicUsize>| {
            let runs = runs.clone();
            move || {
                runs.fetch_add(1, Ordering::SeqCst);
            }
        };
        let kept = token.on_cancel(counter(&runs));
        drop(token.on_cancel(|| panic!("an unregistered hook ran")));
        token.cancel();
        token.cancel();
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        // Registering after the cancel runs the hook at once.
        let late = token.on_cancel(counter(&runs));
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        drop((kept, late));
    }

    #[tokio::test]
    async fn cancel_token_wakes_waiters() {
        let token = CancelToken::new();
        let waiter = {
            let token = token.clone();
            tokio::spawn(async move { token.cancelled().await })
        };
        token.cancel();
        waiter.await.unwrap();
        assert!(token.is_cancelled());
    }
}
