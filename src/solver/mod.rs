//! The build solver: a graph of ops, their cache keys, and a parallel,
//! cached scheduler that runs them through an [`Executor`].
//!
//! The solver knows no Dockerfile syntax (BuildKit's rule): the lowering
//! turns instructions into [`Op`]s appended to a [`Graph`], names each
//! vertex for progress and errors ([`VertexInfo`]), and asks a [`Solver`]
//! for the target's output. What an op does is the executor's business;
//! where results are kept is the [`CacheStore`]'s.
//!
//! ```text
//! Graph::add(op, inputs, info) ──▶ Solver::solve(graph, target)
//!                                     │ key(v): definition + input keys / context content
//!                                     │ CacheStore::lookup(key) ── hit ──▶ CACHED
//!                                     ▼ miss
//!                                  Executor::execute(job) ──▶ CacheStore::record(key, output)
//! ```
//!
//! A whole build, with a toy executor:
//!
//! ```
//! use std::sync::Arc;
//! use kiln::image::{Digest, ImageRef};
//! use kiln::solver::*;
//!
//! struct Echo;
//! impl Executor for Echo {
//!     type Output = String;
//!     fn execute(&self, job: &Job<'_, String>) -> Result<String, ExecError> {
//!         Ok(format!("{}({})", job.vertex.info().name, job.inputs.join(",")))
//!     }
//!     fn resolve_image(&self, _: &ImageSource) -> Result<Digest, ExecError> {
//!         Ok(Digest::sha256_of(b"manifest"))
//!     }
//!     fn content_digest(&self, _: &String, sel: &ContentSelector) -> Result<Digest, ExecError> {
//!         Ok(Digest::sha256_of(sel.path.as_bytes()))
//!     }
//! }
//!
//! let mut graph = Graph::new();
//! let image = ImageSource {
//!     reference: ImageRef::parse("alpine")?,
//!     platform: Platform::linux_amd64(),
//! };
//! let base = graph.add(Op::Image(image), vec![], VertexInfo::named("[1/2] FROM alpine"))?;
//! let context = ContextSource { name: "context".into(), ..Default::default() };
//! let ctx = graph.add(Op::Context(context), vec![], VertexInfo::named("[internal] load build context"))?;
//! let mut inputs = InputList::new();
//! let (root, src) = (inputs.add(base), inputs.add(ctx));
//! let copy = Op::File(FileOp {
//!     base: Some(root),
//!     actions: vec![FileAction::CopyFiles(CopyFiles::new(src, "app.py", "/app/"))],
//!     source_date_epoch: None,
//! });
//! let info = VertexInfo::at("[2/2] COPY app.py /app/", "Dockerfile:2");
//! let target = graph.add(copy, inputs, info)?;
//!
//! let (progress, events) = progress::channel();
//! let printer = progress::spawn_printer(ProgressMode::Quiet, events);
//! let solver = Solver::new(Arc::new(Echo), Arc::new(MemoryCache::new())).with_progress(progress);
//! let runtime = tokio::runtime::Runtime::new()?;
//! let solution = runtime.block_on(solver.solve(Arc::new(graph), target))?;
//! assert_eq!(solution.executed, 3);
//! drop(solver); // closes the progress channel: the printer ends
//! printer.join().expect("printer thread")?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod canonical;
pub mod executor;
pub mod explain;
pub mod graph;
pub mod key;
pub mod op;
pub mod progress;
pub mod scheduler;

pub use executor::{
    CacheStore, CancelHook, CancelToken, ExecError, Executor, Job, LogSink, MemoryCache,
};
pub use graph::{Graph, GraphError, InputList, Pruned, Vertex, VertexId, VertexInfo};
pub use key::{CacheKey, InputKey, SelectedContent};
pub use op::MergeOp;
pub use op::{
    CacheSharing, Chown, ContentSelector, ContextSource, CopyFiles, CopySource, Exec, ExecMount,
    ExtraHost, FileAction, FileOp, GitSource, HttpSource, ImageSource, Input, MountKind, Network,
    Op, Platform, Security,
};
pub use progress::{LogStream, ProgressEvent, ProgressMode, ProgressReceiver, ProgressSender};
pub use scheduler::{Solution, SolveError, SolveOptions, Solver};
