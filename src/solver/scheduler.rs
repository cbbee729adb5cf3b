//! Solving a graph: keys first, then only the work the cache cannot supply.
//!
//! Each vertex has two memoized steps, each run at most once however many
//! dependents ask:
//! - **key**: its inputs' keys (or, for a local context input, the digest
//!   of the content read from it), then a cheap check whether the cache
//!   has it (for progress; nothing is taken yet);
//! - **output**: the cached result taken from the cache if it has one,
//!   otherwise the inputs' outputs and one call to the executor.
//!
//! Computing a key does not need the inputs' outputs, so when a vertex is
//! cached nothing below it runs (BuildKit's lazy loading). Independent
//! inputs are worked on in parallel tasks; executor calls run on tokio's
//! blocking pool, at most `concurrency` at a time. The first failure
//! cancels the build: nothing new starts, running executors see their
//! [`CancelToken`] fire, and `solve` returns only after every started call
//! has returned, so no executor outlives the build.

use crate::error_chain::Chain;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{OnceCell, Semaphore};

use super::executor::{CacheStore, CancelToken, Claim, ExecError, Executor, Job, LogSink};
use super::explain::{lineage, StepInputs};
use super::graph::{Graph, GraphError, Vertex, VertexId};
use super::key::{image_key, vertex_key, CacheKey, InputKey, SelectedContent};
use super::op::{Input, Op};
use super::progress::{ProgressEvent, ProgressSender};

/// How often a build waiting for another build's step checks whether it
/// is done (an `flock` cannot be waited on with a cancellation).
const CLAIM_POLL: Duration = Duration::from_millis(50);

/// The most files per context selection a step's summary lists for
/// `--explain` (bounds the summary of a `COPY . .` of a large context).
const EXPLAIN_FILES: usize = 1000;

/// An input's part of a key, and the files each of its selections read.
type KeyedInput = (InputKey, Vec<Vec<(String, crate::image::Digest)>>);

/// What claiming a missed step gave: a result another build recorded
/// while this one waited, or the right to run it (with the guard to drop
/// once recorded; `None` when the cache is not shared).
enum Claimed<O> {
    Hit(O),
    Run(Option<Box<dyn Send>>),
}

/// How a build is solved.
#[derive(Clone, Debug)]
pub struct SolveOptions {
    /// Most executor calls at once (default: number of CPUs).
    pub concurrency: usize,
    /// `--no-cache`: never use cached results, but record fresh ones.
    pub no_cache: bool,
    /// Output lines kept per vertex for its error report.
    pub log_tail_lines: usize,
}

impl Default for SolveOptions {
    fn default() -> Self {
        SolveOptions {
            concurrency: std::thread::available_parallelism().map_or(1, |n| n.get()),
            no_cache: false,
            log_tail_lines: 20,
        }
    }
}

/// Why a build did not complete.
#[derive(Debug, thiserror::Error)]
pub enum SolveError {
    /// The first vertex that failed; `location` is where the step comes
    /// from (`Dockerfile:12`).
    #[error("{}{name}", location.as_deref().map(|l| format!("{l}: ")).unwrap_or_default())]
    Vertex {
        vertex: VertexId,
        name: String,
        location: Option<String>,
        #[source]
        error: ExecError,
        log_tail: Vec<String>,
    },
    #[error("build cancelled")]
    Cancelled,
    #[error(transparent)]
    Graph(#[from] GraphError),
}

/// A successful build.
#[derive(Clone, Debug)]
pub struct Solution<O> {
    /// The target's result.
    pub output: O,
    /// The target's cache key.
    pub key: CacheKey,
    /// Key of every vertex whose key was computed.
    pub keys: HashMap<VertexId, CacheKey>,
    /// Vertices the executor ran.
    pub executed: usize,
    /// Vertices found in the cache.
    pub cached: usize,
}

/// Solves graphs with one executor and cache. One solver per build: after
/// a failure or [`CancelToken::cancel`] its token stays cancelled.
pub struct Solver<E: Executor, C> {
    executor: Arc<E>,
    cache: Arc<C>,
    options: SolveOptions,
    progress: Option<ProgressSender>,
    cancel: CancelToken,
}

impl<E: Executor, C: CacheStore<E::Output>> Solver<E, C> {
    /// A solver running ops with `executor`, caching results in `cache`.
    pub fn new(executor: Arc<E>, cache: Arc<C>) -> Self {
        Solver {
            executor,
            cache,
            options: SolveOptions::default(),
            progress: None,
            cancel: CancelToken::new(),
        }
    }

    /// Replaces the default [`SolveOptions`].
    pub fn with_options(mut self, options: SolveOptions) -> Self {
        self.options = options;
        self
    }

    /// Sends progress events to `progress`.
    pub fn with_progress(mut self, progress: ProgressSender) -> Self {
        self.progress = Some(progress);
        self
    }

    /// The token that cancels this solver's builds (e.g. on Ctrl-C).
    pub fn cancel_token(&self) -> CancelToken {
        self.cancel.clone()
    }

    /// Builds `target` and whatever it needs from `graph`.
    pub async fn solve(
        &self,
        graph: Arc<Graph>,
        target: VertexId,
    ) -> Result<Solution<E::Output>, SolveError> {
        if graph.get(target).is_none() {
            return Err(GraphError::UnknownVertex(target).into());
        }
        let run = Arc::new(Run {
            nodes: (0..graph.len()).map(|_| Node::default()).collect(),
            graph,
            executor: self.executor.clone(),
            cache: self.cache.clone(),
            options: self.options.clone(),
            progress: self.progress.clone(),
            cancel: self.cancel.clone(),
            permits: Arc::new(Semaphore::new(self.options.concurrency.max(1))),
            first_error: Mutex::new(None),
            executed: AtomicUsize::new(0),
            cached: AtomicUsize::new(0),
            target,
        });
        let result = run.clone().output(target).await;
        let first_error = run.first_error.lock().ok().and_then(|mut e| e.take());
        match (result, first_error) {
            (Ok(output), None) => {
                let keys: HashMap<VertexId, CacheKey> = run
                    .nodes
                    .iter()
                    .enumerate()
                    .filter_map(|(i, node)| match node.key.get() {
                        Some(Ok(keyed)) => {
                            Some((VertexId::from_index(i as u32), keyed.key.clone()))
                        }
                        _ => None,
                    })
                    .collect();
                Ok(Solution {
                    output,
                    key: keys[&target].clone(),
                    keys,
                    executed: run.executed.load(Ordering::SeqCst),
                    cached: run.cached.load(Ordering::SeqCst),
                })
            }
            (_, Some(err)) => Err(err),
            (Err(_), None) => Err(SolveError::Cancelled),
        }
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Why a step did not produce a value; the details of a failure are in
/// `Run::first_error` and in progress events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Halt {
    Failed,
    Cancelled,
}

/// A vertex's key, and whether the cache had a result for it when asked.
#[derive(Clone)]
struct Keyed {
    key: CacheKey,
    cached: bool,
}

struct Node<O> {
    key: OnceCell<Result<Keyed, Halt>>,
    output: OnceCell<Result<O, Halt>>,
}

impl<O> Default for Node<O> {
    fn default() -> Self {
        Node {
            key: OnceCell::new(),
            output: OnceCell::new(),
        }
    }
}

/// The state of one `solve` call, shared by its tasks.
struct Run<E: Executor, C> {
    graph: Arc<Graph>,
    executor: Arc<E>,
    cache: Arc<C>,
    options: SolveOptions,
    progress: Option<ProgressSender>,
    cancel: CancelToken,
    permits: Arc<Semaphore>,
    nodes: Vec<Node<E::Output>>,
    first_error: Mutex<Option<SolveError>>,
    executed: AtomicUsize,
    cached: AtomicUsize,
    /// The vertex being built: its result goes to the outputs only.
    target: VertexId,
}

impl<E: Executor, C: CacheStore<E::Output>> Run<E, C> {
    fn key(self: Arc<Self>, v: VertexId) -> BoxFuture<Result<Keyed, Halt>> {
        Box::pin(async move {
            let node = &self.nodes[v.index()];
            node.key
                .get_or_init(|| self.clone().compute_key(v))
                .await
                .clone()
        })
    }

    fn output(self: Arc<Self>, v: VertexId) -> BoxFuture<Result<E::Output, Halt>> {
        Box::pin(async move {
            let node = &self.nodes[v.index()];
            node.output
                .get_or_init(|| self.clone().compute_output(v))
                .await
                .clone()
        })
    }

    async fn compute_key(self: Arc<Self>, v: VertexId) -> Result<Keyed, Halt> {
        let vertex = &self.graph[v];
        let name = vertex.info().name.as_str();
        let (key, inputs) = match vertex.op() {
            Op::Image(source) => {
                let resolved = match source.reference.digest() {
                    Some(pinned) => pinned.clone(),
                    None => {
                        let (executor, source) = (self.executor.clone(), source.clone());
                        self.blocking(v, move || executor.resolve_image(&source))
                            .await?
                    }
                };
                let inputs = StepInputs::new(name, vertex.op(), Some(&resolved), &[], &[]);
                (image_key(&resolved, &source.platform), inputs)
            }
            // A context's files (a download's bytes) are only known once
            // read, so its own key is never looked up; dependents key on
            // what they read from it.
            Op::Context(_) | Op::Http(_) | Op::Git(_) => {
                return Ok(Keyed {
                    key: vertex_key(vertex.definition_digest(), &[]),
                    cached: false,
                })
            }
            Op::Exec(_) | Op::File(_) | Op::Merge(_) => {
                let tasks: Vec<_> = (0..vertex.inputs().len())
                    .map(|pos| tokio::spawn(self.clone().input_key(v, Input(pos as u32))))
                    .collect();
                let (inputs, files): (Vec<InputKey>, Vec<_>) =
                    self.join_all(v, tasks).await?.into_iter().unzip();
                let names: Vec<String> = vertex
                    .inputs()
                    .iter()
                    .map(|&i| self.graph[i].info().name.clone())
                    .collect();
                let summary =
                    StepInputs::new(name, vertex.op(), None, &inputs, &names).with_files(files);
                (vertex_key(vertex.definition_digest(), &inputs), summary)
            }
        };
        // Only a cheap check here: the result itself is taken (and leased)
        // by `compute_output`, and only if something needs it. Waiting for
        // a full lookup here would chain every key behind its inputs'
        // lookups; a fully cached build takes just the target's result.
        let cached = !self.ignores_cache(vertex) && self.cache.contains(&key);
        self.cache
            .note_inputs(&key, &lineage(name, vertex.op()), &inputs, cached);
        if cached {
            self.cached.fetch_add(1, Ordering::SeqCst);
            self.emit(ProgressEvent::Cached {
                vertex: v,
                name: vertex.info().name.as_str().into(),
            });
        }
        Ok(Keyed { key, cached })
    }

    /// The cached result of `v`, if the cache still has it.
    async fn take_cached(&self, v: VertexId, key: &CacheKey) -> Option<E::Output> {
        let (cache, key) = (self.cache.clone(), key.clone());
        let is_target = v == self.target;
        let hit = tokio::task::spawn_blocking(move || {
            if is_target {
                cache.lookup_target(&key)
            } else {
                cache.lookup(&key)
            }
        })
        .await
        .unwrap_or_else(|err| {
            tracing::warn!(vertex = %v, "cache lookup panicked: {err}", err = Chain(&err));
            None
        });
        if hit.is_none() {
            // Gone since `contains` (pruned meanwhile): run it after all.
            tracing::debug!(vertex = %v, "cache result vanished; running the step");
            self.cached.fetch_sub(1, Ordering::SeqCst);
        }
        hit
    }

    /// What input `pos` of `v` adds to `v`'s key, and for a context
    /// input the files each selection read (for `--explain`).
    async fn input_key(self: Arc<Self>, v: VertexId, pos: Input) -> Result<KeyedInput, Halt> {
        let vertex = &self.graph[v];
        let Some(input) = vertex.input(pos) else {
            unreachable!("Graph::add checked input positions");
        };
        if !self.graph[input].op().is_content_source() {
            let key = InputKey::Vertex(self.clone().key(input).await?.key);
            return Ok((key, Vec::new()));
        }
        let context = self.clone().output(input).await?;
        let mut selected = Vec::new();
        let mut files = Vec::new();
        for selector in vertex.op().content_selectors(pos) {
            let (executor, context, sel) =
                (self.executor.clone(), context.clone(), selector.clone());
            let (digest, read) = self
                .blocking(v, move || {
                    let digest = executor.content_digest(&context, &sel)?;
                    let read = executor.content_files(&context, &sel, EXPLAIN_FILES);
                    Ok((digest, read))
                })
                .await?;
            files.push(read);
            selected.push(SelectedContent { selector, digest });
        }
        Ok((InputKey::Content(selected), files))
    }

    /// `--no-cache` for every step, `--no-cache-filter` for its stages'.
    fn ignores_cache(&self, vertex: &Vertex) -> bool {
        self.options.no_cache || vertex.info().ignore_cache
    }

    async fn compute_output(self: Arc<Self>, v: VertexId) -> Result<E::Output, Halt> {
        let keyed = self.clone().key(v).await?;
        if keyed.cached {
            if let Some(hit) = self.take_cached(v, &keyed.key).await {
                return Ok(hit);
            }
        }
        let vertex = &self.graph[v];
        let tasks: Vec<_> = vertex
            .inputs()
            .iter()
            .map(|&input| tokio::spawn(self.clone().output(input)))
            .collect();
        let inputs = self.join_all(v, tasks).await?;
        let _permit = self.permit().await?;
        // Context reads are never recorded: their key does not cover content.
        let record = !vertex.op().is_content_source();
        // Claimed with the permit already held (never the other way
        // round), and held only while this step runs: no cycle of waiters.
        let claim = if record && !self.ignores_cache(vertex) {
            match self.claim(v, &keyed.key).await? {
                Claimed::Hit(output) => return Ok(output),
                Claimed::Run(guard) => guard,
            }
        } else {
            None
        };

        let started = Instant::now();
        self.emit(ProgressEvent::Started {
            vertex: v,
            name: vertex.info().name.as_str().into(),
        });
        let log = Arc::new(LogSink::new(
            v,
            started,
            self.progress.clone(),
            self.options.log_tail_lines,
        ));
        let job_log = log.clone();
        let (graph, executor, cache, cancel, key) = (
            self.graph.clone(),
            self.executor.clone(),
            self.cache.clone(),
            self.cancel.clone(),
            keyed.key,
        );
        let result = tokio::task::spawn_blocking(move || {
            let job = Job {
                id: v,
                vertex: &graph[v],
                key: &key,
                inputs: &inputs,
                log: &job_log,
                cancel: &cancel,
            };
            let output = executor.execute(&job)?;
            if record {
                cache.record(&key, &output);
            }
            // Released once recorded, so a waiter finds the result.
            drop(claim);
            Ok(output)
        })
        .await
        .unwrap_or_else(|err| {
            Err(ExecError::msg(format!(
                "executor panicked: {err}",
                err = Chain(&err)
            )))
        });
        log.flush();
        let duration = started.elapsed();
        match result {
            Ok(output) => {
                self.executed.fetch_add(1, Ordering::SeqCst);
                self.emit(ProgressEvent::Finished {
                    vertex: v,
                    duration,
                });
                Ok(output)
            }
            Err(ExecError::Cancelled) if self.cancel.is_cancelled() => {
                self.emit(ProgressEvent::Cancelled {
                    vertex: v,
                    duration,
                });
                Err(Halt::Cancelled)
            }
            Err(error) => Err(self.fail(v, error, log.tail(), Some(duration))),
        }
    }

    /// Waits until `v`'s key is this build's to compute (see
    /// [`CacheStore::try_claim`]); a result another build recorded
    /// meanwhile is taken instead, and counted as cached.
    async fn claim(&self, v: VertexId, key: &CacheKey) -> Result<Claimed<E::Output>, Halt> {
        let mut waiting = false;
        loop {
            let (cache, k) = (self.cache.clone(), key.clone());
            let claim = tokio::task::spawn_blocking(move || cache.try_claim(&k))
                .await
                .unwrap_or(Claim::Unshared);
            match claim {
                Claim::Unshared => return Ok(Claimed::Run(None)),
                Claim::Held(guard) => {
                    if self.cache.contains(key) {
                        self.cached.fetch_add(1, Ordering::SeqCst);
                        if let Some(hit) = self.take_cached(v, key).await {
                            self.emit(ProgressEvent::Cached {
                                vertex: v,
                                name: self.graph[v].info().name.as_str().into(),
                            });
                            return Ok(Claimed::Hit(hit));
                        }
                    }
                    return Ok(Claimed::Run(Some(guard)));
                }
                Claim::Busy => {
                    if !waiting {
                        tracing::debug!(vertex = %v, %key, "another build is running this step; waiting for its result");
                        waiting = true;
                    }
                    tokio::select! {
                        () = tokio::time::sleep(CLAIM_POLL) => {}
                        () = self.cancel.cancelled() => return Err(Halt::Cancelled),
                    }
                }
            }
        }
    }

    /// Awaits every task (never leaving one running), returning their
    /// values in order or the most serious halt.
    async fn join_all<T>(
        &self,
        v: VertexId,
        tasks: Vec<tokio::task::JoinHandle<Result<T, Halt>>>,
    ) -> Result<Vec<T>, Halt> {
        let mut values = Vec::with_capacity(tasks.len());
        let mut halt = None;
        for task in tasks {
            match task.await {
                Ok(Ok(value)) => values.push(value),
                Ok(Err(h)) => halt = Some(worse(halt, h)),
                Err(err) => {
                    let h = self.fail(
                        v,
                        ExecError::msg(format!("task panicked: {err}", err = Chain(&err))),
                        vec![],
                        None,
                    );
                    halt = Some(worse(halt, h));
                }
            }
        }
        match halt {
            Some(h) => Err(h),
            None => Ok(values),
        }
    }

    /// Runs a blocking executor call for `v` under the concurrency limit;
    /// an error fails `v`.
    async fn blocking<T: Send + 'static>(
        &self,
        v: VertexId,
        call: impl FnOnce() -> Result<T, ExecError> + Send + 'static,
    ) -> Result<T, Halt> {
        let _permit = self.permit().await?;
        let result = tokio::task::spawn_blocking(call)
            .await
            .unwrap_or_else(|err| {
                Err(ExecError::msg(format!(
                    "executor panicked: {err}",
                    err = Chain(&err)
                )))
            });
        match result {
            Ok(value) => Ok(value),
            Err(ExecError::Cancelled) if self.cancel.is_cancelled() => Err(Halt::Cancelled),
            Err(error) => Err(self.fail(v, error, Vec::new(), None)),
        }
    }

    /// A slot under the concurrency limit, unless the build is cancelled
    /// (checked before and after waiting, so nothing starts after a failure).
    async fn permit(&self) -> Result<tokio::sync::OwnedSemaphorePermit, Halt> {
        if self.cancel.is_cancelled() {
            return Err(Halt::Cancelled);
        }
        let permit = tokio::select! {
            permit = self.permits.clone().acquire_owned() => permit.map_err(|_| Halt::Cancelled)?,
            () = self.cancel.cancelled() => return Err(Halt::Cancelled),
        };
        if self.cancel.is_cancelled() {
            return Err(Halt::Cancelled);
        }
        Ok(permit)
    }

    /// Records `v`'s failure (the first one becomes the build's error),
    /// cancels the build and reports it.
    fn fail(
        &self,
        v: VertexId,
        error: ExecError,
        log_tail: Vec<String>,
        duration: Option<Duration>,
    ) -> Halt {
        let info = self.graph[v].info();
        tracing::debug!(vertex = %v, name = %info.name, "vertex failed: {error}", error = Chain(&error));
        let shown = match self.graph[v].op() {
            Op::Exec(exec) => error.process_message(&exec.args),
            _ => None,
        };
        self.emit(ProgressEvent::Failed {
            vertex: v,
            name: info.name.as_str().into(),
            error: shown.unwrap_or_else(|| Chain(&error).to_string()),
            log_tail: log_tail.clone(),
            duration,
        });
        if let Ok(mut first) = self.first_error.lock() {
            if first.is_none() {
                *first = Some(SolveError::Vertex {
                    vertex: v,
                    name: info.name.clone(),
                    location: info.location.clone(),
                    error,
                    log_tail,
                });
            }
        }
        self.cancel.cancel();
        Halt::Failed
    }

    fn emit(&self, event: ProgressEvent) {
        if let Some(progress) = &self.progress {
            progress.send(event);
        }
    }
}

fn worse(current: Option<Halt>, new: Halt) -> Halt {
    match (current, new) {
        (Some(Halt::Failed), _) | (_, Halt::Failed) => Halt::Failed,
        _ => Halt::Cancelled,
    }
}

#[cfg(test)]
mod tests;
