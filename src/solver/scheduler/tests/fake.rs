//! A scripted executor and graph-building helpers for the scheduler tests.

use super::super::*;
use crate::image::{Digest, ImageRef};
use crate::solver::op::{
    ContentSelector, ContextSource, CopyFiles, Exec, FileAction, FileOp, ImageSource, Platform,
};
use crate::solver::progress::{self, LogStream};
use crate::solver::{InputList, VertexInfo};
use std::sync::Condvar;

pub(super) const GIVE_UP: Duration = Duration::from_secs(20);

/// A reusable barrier for `parties` executor calls that fails instead of
/// waiting forever.
pub(super) struct Rendezvous {
    parties: usize,
    state: Mutex<(usize, u64)>,
    cv: Condvar,
}

impl Rendezvous {
    pub(super) fn new(parties: usize) -> Arc<Rendezvous> {
        Arc::new(Rendezvous {
            parties,
            state: Mutex::new((0, 0)),
            cv: Condvar::new(),
        })
    }

    fn meet(&self) -> Result<(), ExecError> {
        let mut state = self.state.lock().unwrap();
        let generation = state.1;
        state.0 += 1;
        if state.0 == self.parties {
            *state = (0, generation + 1);
            self.cv.notify_all();
            return Ok(());
        }
        let (state, timeout) = self
            .cv
            .wait_timeout_while(state, GIVE_UP, |s| s.1 == generation)
            .unwrap();
        if timeout.timed_out() && state.1 == generation {
            return Err(ExecError::msg(
                "rendezvous timed out: calls did not overlap",
            ));
        }
        Ok(())
    }
}

#[derive(Clone)]
pub(super) enum Behaviour {
    Meet(Arc<Rendezvous>),
    Log(Vec<&'static str>),
    MeetThenFail(Arc<Rendezvous>, i32),
    /// Runs until the build is cancelled, then reports cancellation.
    MeetThenWaitForCancel(Arc<Rendezvous>),
    /// Keeps working through a cancellation and succeeds.
    MeetThenFinishAfterCancel(Arc<Rendezvous>),
}

/// An executor whose ops are named steps; outputs spell out their inputs.
#[derive(Default)]
pub(super) struct Fake {
    pub(super) behaviours: Mutex<HashMap<String, Behaviour>>,
    /// The context's files: path → content.
    pub(super) files: Mutex<HashMap<String, String>>,
    /// Resolved digests by reference; default: the digest of the name.
    pub(super) images: Mutex<HashMap<String, Digest>>,
    pub(super) runs: Mutex<Vec<String>>,
    pub(super) resolves: AtomicUsize,
    pub(super) running: AtomicUsize,
    pub(super) max_running: AtomicUsize,
    pub(super) returned: Mutex<Vec<String>>,
}

impl Fake {
    pub(super) fn on(&self, name: &str, behaviour: Behaviour) {
        self.behaviours
            .lock()
            .unwrap()
            .insert(name.to_string(), behaviour);
    }

    pub(super) fn runs(&self) -> Vec<String> {
        let mut runs = self.runs.lock().unwrap().clone();
        runs.sort();
        runs
    }

    pub(super) fn count(&self, name: &str) -> usize {
        self.runs
            .lock()
            .unwrap()
            .iter()
            .filter(|n| *n == name)
            .count()
    }

    fn perform(&self, name: &str, job: &Job<'_, String>) -> Result<(), ExecError> {
        let behaviour = self.behaviours.lock().unwrap().get(name).cloned();
        match behaviour {
            None => Ok(()),
            Some(Behaviour::Meet(r)) => r.meet(),
            Some(Behaviour::Log(lines)) => {
                for line in lines {
                    job.log.line(LogStream::Stdout, line);
                }
                Ok(())
            }
            Some(Behaviour::MeetThenFail(r, code)) => {
                r.meet()?;
                job.log
                    .write(LogStream::Stderr, b"make: *** [all] Error 2\n");
                Err(ExecError::ExitCode(code))
            }
            Some(Behaviour::MeetThenWaitForCancel(r)) => {
                r.meet()?;
                wait_for_cancel(job.cancel)?;
                Err(ExecError::Cancelled)
            }
            Some(Behaviour::MeetThenFinishAfterCancel(r)) => {
                r.meet()?;
                wait_for_cancel(job.cancel)
            }
        }
    }
}

pub(super) fn wait_for_cancel(cancel: &CancelToken) -> Result<(), ExecError> {
    let start = Instant::now();
    while !cancel.is_cancelled() {
        if start.elapsed() > GIVE_UP {
            return Err(ExecError::msg("never cancelled"));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}

impl Executor for Fake {
    type Output = String;

    fn execute(&self, job: &Job<'_, String>) -> Result<String, ExecError> {
        let name = job.vertex.info().name.clone();
        self.runs.lock().unwrap().push(name.clone());
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_running.fetch_max(now, Ordering::SeqCst);
        let result = self.perform(&name, job);
        self.running.fetch_sub(1, Ordering::SeqCst);
        self.returned.lock().unwrap().push(name.clone());
        result?;
        Ok(format!("{name}({})", job.inputs.join(",")))
    }

    fn resolve_image(&self, source: &ImageSource) -> Result<Digest, ExecError> {
        self.resolves.fetch_add(1, Ordering::SeqCst);
        let name = source.reference.to_string();
        Ok(self
            .images
            .lock()
            .unwrap()
            .get(&name)
            .cloned()
            .unwrap_or_else(|| Digest::sha256_of(name.as_bytes())))
    }

    fn content_digest(&self, _: &String, selector: &ContentSelector) -> Result<Digest, ExecError> {
        let files = self.files.lock().unwrap();
        match files.get(&selector.path) {
            Some(content) => Ok(Digest::sha256_of(content.as_bytes())),
            None => Err(ExecError::msg(format!("{:?}: not found", selector.path))),
        }
    }
}

pub(super) fn image(g: &mut Graph, name: &str) -> VertexId {
    let op = Op::Image(ImageSource {
        reference: ImageRef::parse(name).unwrap(),
        platform: Platform::linux_amd64(),
    });
    g.add(op, vec![], VertexInfo::named(format!("FROM {name}")))
        .unwrap()
}

pub(super) fn run(g: &mut Graph, rootfs: VertexId, cmd: &str) -> VertexId {
    let op = Op::Exec(Exec::on_rootfs(&["sh", "-c", cmd], &[]));
    g.add(op, vec![rootfs], VertexInfo::at(cmd, "Dockerfile:12"))
        .unwrap()
}

pub(super) fn context(g: &mut Graph) -> VertexId {
    let op = Op::Context(ContextSource {
        name: "context".into(),
        ..Default::default()
    });
    g.add(op, vec![], VertexInfo::named("context")).unwrap()
}

/// `COPY` of `path` from each source onto `base`, named `name`.
pub(super) fn copy(
    g: &mut Graph,
    base: VertexId,
    sources: &[(VertexId, &str)],
    name: &str,
) -> VertexId {
    let mut inputs = InputList::new();
    let base_input = inputs.add(base);
    let actions = sources
        .iter()
        .map(|&(source, path)| FileAction::CopyFiles(CopyFiles::new(inputs.add(source), path, "/")))
        .collect();
    let op = Op::File(FileOp {
        base: Some(base_input),
        actions,
        source_date_epoch: None,
    });
    g.add(op, inputs, VertexInfo::named(name)).unwrap()
}

pub(super) struct Outcome {
    pub(super) result: Result<Solution<String>, SolveError>,
    pub(super) events: Vec<ProgressEvent>,
}

pub(super) async fn solve_with<C: CacheStore<String>>(
    fake: &Arc<Fake>,
    cache: &Arc<C>,
    graph: &Graph,
    target: VertexId,
    options: SolveOptions,
) -> Outcome {
    let (tx, mut rx) = progress::channel();
    let solver = Solver::new(fake.clone(), cache.clone())
        .with_options(options)
        .with_progress(tx);
    let result = solver.solve(Arc::new(graph.clone()), target).await;
    drop(solver);
    let mut events = Vec::new();
    while let Ok(event) = rx.try_recv() {
        events.push(event);
    }
    Outcome { result, events }
}

pub(super) async fn solve<C: CacheStore<String>>(
    fake: &Arc<Fake>,
    cache: &Arc<C>,
    graph: &Graph,
    target: VertexId,
) -> Outcome {
    let options = SolveOptions {
        concurrency: 4,
        ..SolveOptions::default()
    };
    solve_with(fake, cache, graph, target, options).await
}
