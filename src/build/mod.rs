//! `kiln build`: Dockerfile → graph → parallel cached solve → image.
//!
//! [`build`] wires the pieces: the parser reads the Dockerfile, the
//! frontend lowers it (resolving base images in the store), the solver
//! runs the graph with [`crate::exec::BuildExecutor`] and a persistent
//! [`cache::BuildCache`], and the result is written to the store as an
//! image (and, if asked, exported, see [`export`]).
//!
//! History entries of steps that changed nothing are marked
//! `empty_layer` once the solve says so, since only then is it known.

mod cache;
pub mod export;
mod images;
pub mod input;
mod interrupt;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use crate::cache::{Image, Store, StoreError};
use crate::context::dockerignore::{DockerIgnore, IgnoreError};
use crate::exec::{BuildExecutor, ContextDir, ExecContext, Rootfs};
use crate::frontend::dockerfile::{self, BuildPlan, LowerError, LowerOptions};
use crate::image::reference::ImageRef;
use crate::image::timestamp::{format_rfc3339, now_rfc3339};
use crate::parser::ParseError;
use crate::solver::{
    progress, CacheKey, ExecError, Op, Platform, ProgressMode, SolveError, SolveOptions, Solver,
    VertexId,
};

pub use export::Export;

/// How many steps run at once at most.
const MAX_PARALLEL_STEPS: usize = 32;

/// Everything a build needs.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// The context directory (`None`: no context, `kiln build -`).
    pub context: Option<PathBuf>,
    /// The Dockerfile's text.
    pub dockerfile: Vec<u8>,
    /// Where the Dockerfile is (for `<Dockerfile>.dockerignore`); `None`
    /// when it came from stdin.
    pub dockerfile_path: Option<PathBuf>,
    /// Names for the image (`-t`).
    pub tags: Vec<ImageRef>,
    /// `--build-arg`s (a bare `K` already resolved from the environment).
    pub build_args: BTreeMap<String, String>,
    /// `--target`: the stage to build.
    pub target: Option<String>,
    /// `--no-cache`: run every step (fresh results are still recorded).
    pub no_cache: bool,
    /// `--pull`: ask the registry for every base image.
    pub pull: bool,
    /// Registries reached over plain HTTP (`--insecure-registry`).
    pub insecure_registries: Vec<String>,
    /// `--label`s added to the image config.
    pub labels: BTreeMap<String, String>,
    /// How progress is shown.
    pub progress: ProgressMode,
    /// The network of RUN steps without `--network`.
    pub network: crate::runtime::Network,
    /// `--secret` values by id.
    pub secrets: HashMap<String, Vec<u8>>,
    /// `--output`s besides the store.
    pub exports: Vec<Export>,
    /// `SOURCE_DATE_EPOCH` from the environment (a build arg wins).
    pub source_date_epoch: Option<i64>,
}

/// What a build made.
#[derive(Debug, Clone)]
pub struct BuildResult {
    /// The image as stored.
    pub image: Image,
    /// Steps that ran (the context load included).
    pub executed: usize,
    /// Steps that came from the cache.
    pub cached: usize,
}

/// Why a build failed. A failed step reads like BuildKit's report:
/// `Dockerfile:12: RUN failed with exit code 2` and its last output lines.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error(transparent)]
    Lower(#[from] LowerError),
    #[error("{0}")]
    Ignore(#[from] IgnoreError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{message}{}", tail(log_tail))]
    Step {
        message: String,
        log_tail: Vec<String>,
    },
    #[error("{0}")]
    Setup(String),
    #[error(transparent)]
    Export(#[from] export::ExportError),
    /// SIGINT or SIGTERM cancelled the solve (its steps were stopped and
    /// cleaned up).
    #[error("build cancelled by {}", interrupt::signal_name(*.0))]
    Interrupted(i32),
}

fn tail(lines: &[String]) -> String {
    if lines.is_empty() {
        return String::new();
    }
    let mut s = String::from("\n------\n");
    for l in lines {
        s.push_str(" > ");
        s.push_str(l);
        s.push('\n');
    }
    s.push_str("------");
    s
}

/// Builds an image as `opts` says, into `store`.
pub fn build(store: Arc<Store>, opts: &BuildOptions) -> Result<BuildResult, BuildError> {
    // Locations read `Dockerfile:12`, or `<name>:12` for `-f <name>`.
    let file_name = opts
        .dockerfile_path
        .as_ref()
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "Dockerfile".into());
    let df = crate::parser::parse(&file_name, &opts.dockerfile)?;
    let ignore = match &opts.context {
        Some(dir) => match &opts.dockerfile_path {
            Some(path) => DockerIgnore::load(dir, path)?,
            None => DockerIgnore::load(dir, &dir.join("Dockerfile"))?,
        },
        None => DockerIgnore::default(),
    };
    let epoch = match opts.build_args.get("SOURCE_DATE_EPOCH") {
        Some(v) => Some(parse_epoch(v)?),
        None => opts.source_date_epoch,
    };
    let created = match epoch {
        Some(e) => format_rfc3339(e, 0),
        None => now_rfc3339(),
    };
    let lower_opts = LowerOptions {
        file_name,
        build_args: opts.build_args.clone(),
        target: opts.target.clone(),
        labels: opts.labels.clone(),
        source_date_epoch: epoch,
        created,
        platform: host_platform(),
        context_exclude: ignore.patterns().iter().map(pattern_text).collect(),
        network: match opts.network {
            crate::runtime::Network::None => crate::solver::Network::None,
            // kiln has no bridge: the sandbox network is the host's.
            crate::runtime::Network::Host => crate::solver::Network::Sandbox,
        },
    };
    let registry = crate::image::registry::ClientOptions::for_root(
        store.root(),
        opts.insecure_registries.clone(),
    )
    .map_err(|e| BuildError::Setup(e.to_string()))?;
    let resolver = images::StoreImages::new(&store, opts.pull, &registry);
    let plan = dockerfile::lower(&df, &lower_opts, &resolver)?;
    for w in &plan.warnings {
        eprintln!("{w}");
    }
    let base_images = resolver.into_images();
    let cx = ExecContext {
        store: store.clone(),
        network: crate::runtime::Network::Host,
        secrets: opts.secrets.clone(),
        cache_mounts: crate::exec::cache_mount::CacheMounts::new(store.root()),
    };
    let context = opts.context.as_ref().map(|dir| ContextDir {
        dir: dir.clone(),
        ignore,
    });
    let executor = Arc::new(BuildExecutor::new(cx, context, base_images));
    let cache = Arc::new(cache::BuildCache::new(store.clone()));
    let solved = solve(&plan, executor.clone(), cache.clone(), opts)?;
    executor.finish();
    let rootfs = solved.rootfs.clone();
    let config = finish_config(&plan, &solved, &cache);
    let image = store.write_image(&config, &rootfs.layers, &opts.tags)?;
    for e in &opts.exports {
        export::export(&store, &image, &opts.tags, &rootfs, e)?;
    }
    Ok(BuildResult {
        image,
        executed: solved.executed,
        cached: solved.cached,
    })
}

/// A finished solve.
struct Solved {
    rootfs: Rootfs,
    /// Cache keys by vertex of the plan's graph.
    keys: HashMap<VertexId, CacheKey>,
    executed: usize,
    cached: usize,
}

fn solve(
    plan: &BuildPlan,
    executor: Arc<BuildExecutor>,
    cache: Arc<cache::BuildCache>,
    opts: &BuildOptions,
) -> Result<Solved, BuildError> {
    let Some(target) = plan.target else {
        return Ok(Solved {
            rootfs: Rootfs::default(),
            keys: HashMap::new(),
            executed: 0,
            cached: 0,
        });
    };
    // Only what the target needs is solved (`--target`).
    let pruned = plan.graph.prune_to(target).map_err(LowerError::from)?;
    let pruned_target = pruned.target;
    let graph = Arc::new(pruned.graph);
    let (tx, rx) = progress::channel();
    let printer = progress::spawn_printer(opts.progress, rx);
    let solver = Solver::new(executor, cache)
        .with_options(SolveOptions {
            no_cache: opts.no_cache,
            // Steps mostly wait on processes and disks, and BuildKit does
            // not limit parallelism by default: independent stages must
            // overlap even on a 2-CPU machine.
            concurrency: MAX_PARALLEL_STEPS,
            ..SolveOptions::default()
        })
        .with_progress(tx);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| BuildError::Setup(format!("starting the scheduler: {e}")))?;
    let interrupts = interrupt::Interrupts::new();
    let result = runtime.block_on(async {
        let watcher = tokio::spawn(interrupts.watch(solver.cancel_token()));
        let result = solver.solve(graph.clone(), pruned_target).await;
        watcher.abort();
        result
    });
    drop(solver);
    drop(runtime);
    let interrupted = interrupts.finish();
    let _ = printer.join();
    if let Some(sig) = interrupted {
        return Err(BuildError::Interrupted(sig));
    }
    match result {
        Ok(solution) => {
            let crate::exec::Artifact::Rootfs(rootfs) = solution.output else {
                return Err(BuildError::Setup("the target is not a filesystem".into()));
            };
            let keys = pruned
                .mapping
                .iter()
                .filter_map(|(old, new)| solution.keys.get(new).map(|k| (*old, k.clone())))
                .collect();
            Ok(Solved {
                rootfs,
                keys,
                executed: solution.executed,
                cached: solution.cached,
            })
        }
        Err(SolveError::Vertex {
            vertex,
            name,
            location,
            error,
            log_tail,
        }) => {
            let at = location.map(|l| format!("{l}: ")).unwrap_or_default();
            let is_run = matches!(graph.get(vertex).map(|v| v.op()), Some(Op::Exec(_)));
            let message = match (&error, is_run) {
                (ExecError::ExitCode(code), true) => {
                    format!("{at}RUN failed with exit code {code}")
                }
                (ExecError::Signal(sig), true) => format!("{at}RUN killed by signal {sig}"),
                _ => format!("{at}{name}: {error}"),
            };
            Err(BuildError::Step { message, log_tail })
        }
        Err(e) => Err(BuildError::Setup(e.to_string())),
    }
}

/// The target's config with its layers: `rootfs.diff_ids` filled in and
/// history entries of steps that added no layer marked empty.
fn finish_config(
    plan: &BuildPlan,
    solved: &Solved,
    cache: &cache::BuildCache,
) -> crate::image::oci::ImageConfig {
    let mut config = plan.config.clone();
    let layers = |v: Option<VertexId>| -> Option<usize> {
        match v {
            None => Some(0),
            Some(v) => solved.keys.get(&v).and_then(|k| cache.layer_count(k)),
        }
    };
    for step in &plan.layer_steps {
        if let (Some(after), Some(before)) = (layers(Some(step.vertex)), layers(step.parent)) {
            if after == before {
                config.history[step.history].empty_layer = true;
            }
        }
    }
    let with_layers = config.history.iter().filter(|h| !h.empty_layer).count();
    if with_layers != solved.rootfs.layers.len() {
        tracing::warn!(
            "history has {with_layers} entries with layers for {} layers",
            solved.rootfs.layers.len()
        );
    }
    config.rootfs.diff_ids = solved
        .rootfs
        .layers
        .iter()
        .map(|l| l.diff_id.clone())
        .collect();
    config
}

/// A `.dockerignore` pattern as written (exceptions keep their `!`).
fn pattern_text(p: &crate::context::dockerignore::IgnorePattern) -> String {
    if p.is_exception() {
        format!("!{}", p.as_str())
    } else {
        p.as_str().to_string()
    }
}

/// `SOURCE_DATE_EPOCH`: Unix seconds.
pub fn parse_epoch(v: &str) -> Result<i64, BuildError> {
    v.trim()
        .parse::<i64>()
        .ok()
        .filter(|e| *e >= 0)
        .ok_or_else(|| {
            BuildError::Setup(format!(
                "invalid SOURCE_DATE_EPOCH {v:?}: expected Unix seconds"
            ))
        })
}

/// The platform kiln builds for: the host's.
pub fn host_platform() -> Platform {
    Platform {
        os: "linux".into(),
        architecture: crate::image::oci::host_architecture().into(),
        variant: None,
    }
}
