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

pub mod canonical;
pub mod executor;
pub mod graph;
pub mod key;
pub mod op;
pub mod progress;
pub mod scheduler;

pub use executor::{CacheStore, CancelToken, ExecError, Executor, Job, LogSink, MemoryCache};
pub use graph::{Graph, GraphError, InputList, Pruned, Vertex, VertexId, VertexInfo};
pub use key::{CacheKey, InputKey, SelectedContent};
pub use op::{
    CacheSharing, Chmod, Chown, ContentSelector, ContextSource, CopyAction, Exec, ExecMount,
    FileAction, FileOp, ImageSource, Input, MountKind, Network, Op, Platform, Security,
};
pub use progress::{LogStream, ProgressEvent, ProgressMode, ProgressReceiver, ProgressSender};
pub use scheduler::{Solution, SolveError, SolveOptions, Solver};
