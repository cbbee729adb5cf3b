//! `kiln build`: Dockerfile → graph → parallel cached solve → image.
//!
//! [`build`] wires the pieces: the parser reads the Dockerfile, the
//! frontend lowers it (resolving base images in the store), the solver
//! runs the graph with [`crate::exec::BuildExecutor`] and a persistent
//! [`cache::BuildCache`], and the result is written to the store as an
//! image (and, if asked, exported, see [`export`]).
//!
//! Every RUN, COPY/ADD and WORKDIR (other than `/`) adds one layer, an
//! empty one when it changed nothing, so the history's `empty_layer` flags
//! are the lowering's, as in BuildKit (its frontend's `commitToHistory`
//! decides them, `dispatchWorkdir` in `frontend/dockerfile/dockerfile2llb/
//! convert.go` gives WORKDIR a layer unless it is `/`, and the exporter
//! keeps empty layers). The history's times come from when each step's
//! result was made (the build cache records), never from "now", so a
//! cached rebuild is the same image.

pub mod attestations;
mod cache;
pub mod contexts;
mod created;
pub mod entitlements;
pub mod export;
pub mod export_options;
mod failure;
mod images;
pub mod input;
mod interrupt;
pub mod multi;
pub mod publish;
mod remote_cache;
pub mod ssh;

use crate::error_chain::Chain;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use crate::cache::remote::{CacheFrom, CacheTo};
use crate::cache::{Image, Store, StoreError};
use crate::context::dockerignore::{DockerIgnore, IgnoreError};
use crate::exec::{BuildExecutor, ContextDir, ExecContext, Rootfs};
use crate::frontend::dockerfile::lint::{self, CheckConfig, CheckConfigError, LintViolation};
use crate::frontend::dockerfile::{self, BuildPlan, ForeignFrontend, LowerError, LowerOptions};
use crate::image::reference::ImageRef;
use crate::image::timestamp::format_rfc3339;
use crate::parser::ParseError;
use crate::solver::{
    progress, CacheKey, Op, Platform, ProgressMode, SolveError, SolveOptions, Solver, VertexId,
};

pub use entitlements::Entitlement;
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
    /// `--tls-verify[=BOOL]` (see `ClientOptions::tls_verify`).
    pub tls_verify: Option<bool>,
    /// `--authfile`: a docker-format auth file read first.
    pub authfile: Option<PathBuf>,
    /// `--label`s added to the image config.
    pub labels: BTreeMap<String, String>,
    /// How progress is shown.
    pub progress: ProgressMode,
    /// The network of RUN steps without `--network`: [`Slirp`] by default;
    /// [`Host`] needs [`Entitlement::NetworkHost`].
    ///
    /// [`Slirp`]: crate::runtime::Network::Slirp
    /// [`Host`]: crate::runtime::Network::Host
    pub network: crate::runtime::Network,
    /// `--allow`: the entitlements granted to this build.
    pub allow: Vec<Entitlement>,
    /// `--secret` values by id.
    pub secrets: HashMap<String, Vec<u8>>,
    /// `--ssh` agents by id, opened (checked) when the flags were read.
    pub ssh: crate::exec::ssh_agent::SshAgents,
    /// `--output`s besides the store.
    pub exports: Vec<Export>,
    /// `SOURCE_DATE_EPOCH` from the environment (a build arg wins).
    pub source_date_epoch: Option<i64>,
    /// `--cache-from`: remote caches whose records the build may hit.
    pub cache_from: Vec<CacheFrom>,
    /// `--cache-to`: where this build's records go.
    pub cache_to: Vec<CacheTo>,
    /// `--explain`: say why each step that missed the cache missed.
    pub explain: bool,
    /// `--provenance`, `--sbom`, `--attest`: the attestations to attach.
    pub attest: crate::attest::AttestOptions,
    /// Set by a multi-platform build for each platform's own build: its
    /// attestations are attached to the index's entry by the caller, so
    /// this build needs no output of its own to carry them.
    pub index_member: bool,
    /// `--add-host`, `--shm-size`, `--ulimit`, `--no-cache-filter`: what
    /// the flags add to the Dockerfile's steps.
    pub step_flags: dockerfile::StepFlags,
    /// The URL a git or http(s) main context came from (`context` is then
    /// its checkout or unpacked copy, which moves with each commit): what
    /// names the context for `--explain`.
    pub context_source: Option<String>,
    /// `--build-context`s by lookup key ([`contexts::parse`]), in the
    /// order given.
    pub named_contexts: Vec<(String, contexts::ContextValue)>,
    /// `--platform`: the platform built for (normalized); the host's by
    /// default. `RUN`s for another one run under emulation.
    pub platform: Platform,
    /// Whether `--platform` was given (else the image config keeps the
    /// target stage's platform, as BuildKit's implicit target does).
    pub platform_given: bool,
    /// Set by a multi-platform build for each platform's own build: what
    /// the platforms, built at once, share.
    pub platform_set: Option<multi::PlatformSet>,
}

/// What a build made.
#[derive(Debug, Clone)]
pub struct BuildResult {
    /// The image ID (its config's digest).
    pub id: crate::image::Digest,
    /// The image as stored; `None` when it was only pushed, its layers
    /// never fetched (see [`build`]).
    pub image: Option<Image>,
    /// Steps that ran (the context load included).
    pub executed: usize,
    /// Steps that came from the cache.
    pub cached: usize,
    /// What the build checks found (printed after the build, as buildx
    /// does).
    pub warnings: Vec<lint::Warning>,
    /// The names the image got (`-t`, or the image outputs' `name=`).
    pub names: Vec<ImageRef>,
    /// The manifest the image is known by: the pushed one, else the
    /// stored one (`--metadata-file`'s `containerimage.digest`).
    pub manifest: publish::ManifestDescriptor,
    /// With `--explain`: `step: why it missed`, one per missed step.
    pub explanations: Vec<String>,
    /// The attestations made for the image (`--provenance`, `--sbom`), so
    /// a multi-platform build can attach each platform's to its manifest
    /// in the index ([`multi`]).
    pub attestations: Option<attestations::Attestations>,
}

/// What `kiln build --check` found, without building.
#[derive(Debug, Clone)]
pub struct CheckOutcome {
    /// The warnings, sorted by line.
    pub warnings: Vec<lint::Warning>,
    /// buildx's report of them, Dockerfile excerpts included.
    pub report: String,
    /// Set when `# check=error=true` turns the warnings into an error.
    pub violation: Option<LintViolation>,
}

/// Why a build failed. A failed step reads like buildx's report: the
/// Dockerfile excerpt, `process "/bin/sh -c make" did not complete
/// successfully: exit code: 2` and the step's last output lines.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error(transparent)]
    Lower(#[from] LowerError),
    /// A lowering error at an instruction, after the Dockerfile excerpt
    /// buildx shows with located errors.
    #[error("{excerpt}{error}")]
    LowerAt { excerpt: String, error: LowerError },
    #[error(transparent)]
    Syntax(#[from] ForeignFrontend),
    /// A `# check=` value (or `BUILDKIT_DOCKERFILE_CHECK`) BuildKit refuses.
    #[error("failed to parse check options: {0}")]
    CheckOptions(CheckConfigError),
    /// `# check=error=true` and the checks warned: the warnings as buildx
    /// lists them, then BuildKit's error.
    #[error("{}{violation}", lint::short_list(warnings).trim_start_matches('\n'))]
    Lint {
        warnings: Vec<lint::Warning>,
        violation: LintViolation,
    },
    #[error(transparent)]
    Ignore(#[from] IgnoreError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Context(#[from] contexts::ContextError),
    /// A step failed: the Dockerfile excerpt around its instruction (as
    /// buildx prints it), BuildKit's error, the step's last output lines.
    #[error("{}{message}{}", excerpt.as_deref().unwrap_or_default(), tail(log_tail))]
    Step {
        /// Where the step's instruction is (`Dockerfile:12`).
        location: Option<String>,
        /// The excerpt of that instruction, once known.
        excerpt: Option<String>,
        message: String,
        log_tail: Vec<String>,
    },
    #[error("{0}")]
    Setup(String),
    #[error(transparent)]
    Export(#[from] export::ExportError),
    #[error(transparent)]
    CacheExport(#[from] crate::cache::remote::ExportError),
    #[error(transparent)]
    Publish(#[from] publish::PublishError),
    #[error(transparent)]
    Entitlement(#[from] entitlements::EntitlementError),
    #[error(transparent)]
    SshAgent(#[from] ssh::MissingAgent),
    #[error(transparent)]
    Attest(#[from] attestations::AttestError),
    /// SIGINT or SIGTERM cancelled the solve (its steps were stopped and
    /// cleaned up).
    #[error("build cancelled by {}", interrupt::signal_name(*.0))]
    Interrupted(i32),
    /// One platform of a multi-platform build failed.
    #[error("building for {platform}")]
    Platform {
        /// The platform, as `--platform` names it (`linux/arm64`).
        platform: String,
        #[source]
        source: Box<BuildError>,
    },
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

/// How base images are pulled: the store's credentials and the build's
/// insecure registries.
fn registry_options(
    store: &Store,
    opts: &BuildOptions,
) -> Result<crate::image::registry::ClientOptions, BuildError> {
    crate::image::registry::ClientOptions::for_root(store.root(), opts.insecure_registries.clone())
        .map(|o| o.with_flags(opts.tls_verify, opts.authfile.as_deref()))
        .map_err(|e| BuildError::Setup(Chain(&e).to_string()))
}

/// Builds an image as `opts` says, into `store`.
pub fn build(store: Arc<Store>, opts: &BuildOptions) -> Result<BuildResult, BuildError> {
    let started = attestations::now_secs();
    // A push with nowhere to go is refused before anything runs, and so
    // are attestations with nowhere to go.
    let publish = publish::Publish::plan(&opts.tags, &opts.exports)?;
    if !opts.index_member {
        attestations::check_outputs(opts, publish.push)?;
    }
    let front = parse_and_check(opts)?;
    let registry = registry_options(&store, opts)?;
    let named = contexts::resolve(&store, &opts.named_contexts)?;
    let resolver = images::StoreImages::new(&store, opts.pull, &registry);
    let (plan, ignore) = lower(&front, opts, &named.lowering, &resolver)
        .map_err(|e| failure::with_excerpt(e, &front.df, &opts.dockerfile))?;
    // Like dockerfile2llb, `# check=error=true` fails the build once the
    // Dockerfile is converted, before any step runs.
    let warnings = lint::merge(
        &front.config,
        front.warnings,
        &plan.checks,
        Some(&plan.lowered),
    );
    if let Some(violation) = lint::violation(&front.config, &warnings) {
        return Err(BuildError::Lint {
            warnings,
            violation,
        });
    }
    entitlements::check(&plan.graph, &opts.allow)?;
    ssh::check(&plan.graph, &opts.ssh)?;
    let df = front.df;
    for w in &plan.warnings {
        eprintln!("{w}");
    }
    let bases = resolver.requested();
    let base_images = resolver.into_images();
    let imports = Arc::new(crate::cache::remote::Imports::load(
        &opts.cache_from,
        &registry,
    ));
    let cx = ExecContext {
        store: store.clone(),
        // BuildKit's default network for RUN: its own namespace, outbound
        // access only.
        network: crate::runtime::Network::Slirp,
        secrets: opts.secrets.clone(),
        ssh: opts.ssh.clone(),
        cache_mounts: crate::exec::cache_mount::CacheMounts::new(store.layout()).with_restore(
            Arc::new(remote_cache::ImportedMounts {
                store: store.clone(),
                imports: imports.clone(),
            }),
        ),
    };
    let context = opts.context.as_ref().map(|dir| ContextDir {
        dir: dir.clone(),
        ignore,
    });
    let executor = Arc::new(BuildExecutor::new(cx, context, base_images).with_named(named.dirs));
    // "The same step" for --explain: within builds of this context and
    // Dockerfile (host paths here name a local hint, never a cache key).
    let scope = match &opts.context_source {
        // A remote context is the same context at any commit.
        Some(url) => {
            let dockerfile = opts.dockerfile_path.as_ref().map(|p| {
                opts.context
                    .as_ref()
                    .and_then(|c| p.strip_prefix(c).ok())
                    .unwrap_or(p)
            });
            format!(
                "{:?}\0{dockerfile:?}",
                crate::source::url::redact_password(url)
            )
        }
        None => format!("{:?}\0{:?}", opts.context, opts.dockerfile_path),
    };
    let mut cache = cache::BuildCache::new(store.clone(), imports.clone()).scoped(scope);
    if opts.explain {
        cache = cache.explaining();
    }
    if only_pushes(&publish, opts) {
        cache = cache.deferring_target();
    }
    let cache = Arc::new(cache);
    let solved = solve(&plan, executor.clone(), cache.clone(), opts).map_err(|e| match e {
        BuildError::Step {
            location: Some(at),
            message,
            log_tail,
            ..
        } => BuildError::Step {
            excerpt: failure::location_excerpt(&df, &opts.dockerfile, &at),
            location: Some(at),
            message,
            log_tail,
        },
        other => other,
    })?;
    executor.finish();
    let mut rootfs = solved.rootfs.clone();
    let mut config = finish_config(&plan, &solved, &cache, source_date_epoch(opts)?);
    if opts.cache_to.contains(&CacheTo::Inline) {
        remote_cache::add_inline(&store, &plan, &solved, &imports, &mut config)?;
    }
    let progress = match opts.progress.shows_text() {
        false => crate::transfer::progress::Progress::silent(),
        true => crate::transfer::progress::Progress::for_stderr(),
    };
    let target_key = plan.target.and_then(|t| solved.keys.get(&t));
    if let Some((key, remote)) = target_key.and_then(|k| Some((k, cache.remote_result(k)?))) {
        let config_bytes = config
            .to_buildkit_json()
            .map_err(|e| BuildError::Setup(format!("serializing image config: {}", Chain(&e))))?;
        if let Some(manifest) = publish.push_remote(&config_bytes, &remote, &registry, &progress)? {
            remote_cache::report_fetched(&imports, opts.progress);
            return Ok(BuildResult {
                id: crate::image::Digest::sha256_of(&config_bytes),
                image: None,
                executed: solved.executed,
                cached: solved.cached,
                warnings,
                names: publish.names,
                manifest,
                explanations: cache.explanations(),
                attestations: None,
            });
        }
        // The blobs cannot be pushed from where they are: fetch them
        // (verified) as any imported result is, and push as usual.
        let layers = imports.materialize(&store, key.digest()).ok_or_else(|| {
            BuildError::Setup(format!(
                "the build's result (cache key {key}) could not be fetched from its cache"
            ))
        })?;
        rootfs = crate::exec::Rootfs::new(layers);
    }
    remote_cache::report_fetched(&imports, opts.progress);
    let image = store.write_annotated_image(
        &config,
        &rootfs.layers,
        &publish.names,
        &publish.annotations,
    )?;
    let attestations = if opts.attest.any() {
        let facts = attestations::Facts {
            store: &store,
            opts,
            plan: &plan,
            bases: &bases,
            started,
        };
        Some(make_attestations(&store, opts, &publish, &rootfs, &facts)?)
    } else {
        None
    };
    for e in &opts.exports {
        export::export(
            &store,
            &image,
            &publish.names,
            &rootfs,
            e,
            attestations.as_ref(),
        )?;
    }
    let attach = |d: &crate::image::oci::Descriptor| match &attestations {
        Some(a) => a.attach(d, &publish.names),
        None => Vec::new(),
    };
    let manifest = match publish.push(&store, &registry, &progress, &attach)? {
        Some(pushed) => pushed,
        None => publish::stored_manifest(&store, &image)?,
    };
    remote_cache::export_all(&store, &plan, &solved, opts, &registry, &imports)?;
    apply_storage_cap(&store);
    Ok(BuildResult {
        id: image.id.clone(),
        image: Some(image),
        executed: solved.executed,
        cached: solved.cached,
        warnings,
        names: publish.names,
        manifest,
        explanations: cache.explanations(),
        attestations,
    })
}

/// The attestations `opts` ask for: the provenance of what the build
/// knows, the SBOM of the final root filesystem (seen through a read-only
/// view of its layers).
fn make_attestations(
    store: &Store,
    opts: &BuildOptions,
    publish: &publish::Publish,
    rootfs: &Rootfs,
    facts: &attestations::Facts<'_>,
) -> Result<attestations::Attestations, BuildError> {
    let provenance = opts.attest.provenance.is_some().then(|| facts.collect());
    let view = match opts.attest.sbom {
        Some(_) => Some(
            crate::exec::stack_view::StackView::new(store, &rootfs.dirs(store), false)
                .map_err(attestations::AttestError::from)?,
        ),
        None => None,
    };
    let name = publish
        .names
        .first()
        .map(|n| n.familiar())
        .unwrap_or_else(|| "sbom".to_string());
    Ok(attestations::make(
        &opts.attest,
        provenance,
        view.as_ref().map(|v| v.path()),
        &name,
        source_date_epoch(opts)?,
    ))
}

/// Whether every output of the build is a push (`--push`, `-o
/// type=registry`, `-o type=image,push=true`) and nothing else needs the
/// result's bytes here (no other output, no `--cache-to`). Then, like
/// buildx's `docker-container` driver, which pushes an image without
/// loading it unless asked (`--load`, docker/buildx `build/opt.go`,
/// `toSolveOpt`), kiln does not make a fully cached result that only an
/// imported cache holds local: it pushes the cache's blobs as they are
/// (so a farm's builder downloads no layer) and records no image. A
/// result whose layers are local is stored as always.
fn only_pushes(publish: &publish::Publish, opts: &BuildOptions) -> bool {
    publish.push
        && opts.cache_to.is_empty()
        // The SBOM scans the result's filesystem.
        && !opts.attest.any()
        && opts
            .exports
            .iter()
            .all(|e| matches!(e, Export::Image(o) if o.push))
}

/// Prunes the build cache to the cap in the store's config
/// (`<root>/config.json`, `{"gc": {"keepStorage": "10GB"}}`), least
/// recently used first, so a long-lived builder stays within its disk.
/// The image just built holds its own layers, so they are never taken. A
/// bad config or a failed prune is a warning: the build itself succeeded.
fn apply_storage_cap(store: &Store) {
    let policy = match crate::cache::PrunePolicy::from_config(store.root()) {
        Ok(Some(policy)) => policy,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!(error = %crate::error_chain::Chain(&e), "build cache cap not applied");
            return;
        }
    };
    match store.build_cache_prune_with(&policy) {
        Ok(report) if report.removed > 0 => tracing::info!(
            removed = report.removed,
            kept_bytes = report.kept_bytes,
            "build cache pruned to its cap"
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!("build cache cap not applied: {e}"),
    }
}

/// Runs the build checks only (`kiln build --check`, buildx's
/// `--call=check`). Like BuildKit, the Dockerfile is lowered (base images
/// resolved: their environment decides UndefinedVar), but nothing runs
/// and nothing is written.
pub fn check(store: Arc<Store>, opts: &BuildOptions) -> Result<CheckOutcome, BuildError> {
    let front = parse_and_check(opts)?;
    let registry = registry_options(&store, opts)?;
    let named = contexts::resolve(&store, &opts.named_contexts)?;
    let resolver = images::StoreImages::new(&store, opts.pull, &registry);
    let (plan, _) = lower(&front, opts, &named.lowering, &resolver)
        .map_err(|e| failure::with_excerpt(e, &front.df, &opts.dockerfile))?;
    // BuildKit's lint checks every stage (`AllStages`).
    let warnings = lint::merge(&front.config, front.warnings, &plan.checks, None);
    Ok(CheckOutcome {
        report: lint::check_report(&front.file_name, &opts.dockerfile, &warnings),
        violation: lint::violation(&front.config, &warnings),
        warnings,
    })
}

/// A parsed Dockerfile with its check options and what the checks of its
/// AST found.
struct Front {
    df: crate::parser::Dockerfile,
    /// How locations name the Dockerfile.
    file_name: String,
    config: CheckConfig,
    warnings: Vec<lint::Warning>,
}

/// Parses the Dockerfile, refuses a foreign `# syntax=`, runs the checks
/// of the AST.
fn parse_and_check(opts: &BuildOptions) -> Result<Front, BuildError> {
    // Locations read `Dockerfile:12`, or `<name>:12` for `-f <name>`.
    let file_name = dockerfile_name(opts);
    let df = crate::parser::parse(&file_name, &opts.dockerfile)?;
    dockerfile::check_syntax(&df, &file_name)?;
    let config = check_config(&df, opts)?;
    let warnings = lint::check(&df, &config, &opts.platform);
    Ok(Front {
        df,
        file_name,
        config,
        warnings,
    })
}

/// Lowers the Dockerfile (resolving base images through `resolver`);
/// returns the plan and the context's ignore rules.
fn lower(
    front: &Front,
    opts: &BuildOptions,
    named: &BTreeMap<String, dockerfile::NamedContext>,
    resolver: &dyn dockerfile::ImageResolver,
) -> Result<(BuildPlan, DockerIgnore), BuildError> {
    let ignore = match &opts.context {
        Some(dir) => match &opts.dockerfile_path {
            Some(path) => DockerIgnore::load(dir, path)?,
            None => DockerIgnore::load(dir, &dir.join("Dockerfile"))?,
        },
        None => DockerIgnore::default(),
    };
    let epoch = source_date_epoch(opts)?;
    let created = epoch.map(|e| format_rfc3339(e, 0));
    let lower_opts = LowerOptions {
        file_name: front.file_name.clone(),
        build_args: opts.build_args.clone(),
        target: opts.target.clone(),
        labels: opts.labels.clone(),
        source_date_epoch: epoch,
        created,
        platform: opts.platform.clone(),
        build_platform: host_platform(),
        platform_implicit: !opts.platform_given,
        multi_platform: opts.index_member,
        context_exclude: ignore.patterns().iter().map(pattern_text).collect(),
        network: match opts.network {
            crate::runtime::Network::None => crate::solver::Network::None,
            crate::runtime::Network::Host => crate::solver::Network::Host,
            // `Join` is `kiln run --network container:NAME`'s; `--network`
            // of a build never parses to it.
            crate::runtime::Network::Slirp | crate::runtime::Network::Join(_) => {
                crate::solver::Network::Sandbox
            }
        },
        step_flags: opts.step_flags.clone(),
        named_contexts: named.clone(),
    };
    let plan = dockerfile::lower(&front.df, &lower_opts, resolver)?;
    Ok((plan, ignore))
}

/// `SOURCE_DATE_EPOCH` from the build arguments, else from the options.
fn source_date_epoch(opts: &BuildOptions) -> Result<Option<i64>, BuildError> {
    match opts.build_args.get("SOURCE_DATE_EPOCH") {
        Some(v) => Ok(Some(parse_epoch(v)?)),
        None => Ok(opts.source_date_epoch),
    }
}

/// How locations name the Dockerfile: `Dockerfile`, or `<name>` for
/// `-f <name>`.
pub fn dockerfile_name(opts: &BuildOptions) -> String {
    opts.dockerfile_path
        .as_ref()
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "Dockerfile".into())
}

/// The check options: the `BUILDKIT_DOCKERFILE_CHECK` build argument wins
/// over `# check=` (moby/buildkit `dockerfile2llb`, `toDispatchState`).
fn check_config(
    df: &crate::parser::Dockerfile,
    opts: &BuildOptions,
) -> Result<CheckConfig, BuildError> {
    let value = opts
        .build_args
        .get("BUILDKIT_DOCKERFILE_CHECK")
        .map(String::as_str)
        .or_else(|| df.directive("check"))
        .unwrap_or("");
    CheckConfig::parse(value).map_err(BuildError::CheckOptions)
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
    let numbers = opts.platform_set.as_ref().map(|set| set.numbers.clone());
    let printer = progress::spawn_printer_for(opts.progress, rx, &graph, numbers);
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
        .map_err(|e| BuildError::Setup(format!("starting the scheduler: {e}", e = Chain(&e))))?;
    let interrupts = interrupt::Interrupts::catch(solver.cancel_token());
    // A multi-platform build cancels its other platforms' solves when one
    // fails.
    let _cancel_with = opts.platform_set.as_ref().map(|set| {
        let token = solver.cancel_token();
        set.cancel.on_cancel(move || token.cancel())
    });
    let result = runtime.block_on(solver.solve(graph.clone(), pruned_target));
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
            let at = location
                .as_ref()
                .map(|l| format!("{l}: "))
                .unwrap_or_default();
            let run = match graph.get(vertex).map(|v| v.op()) {
                Some(Op::Exec(exec)) => error.process_message(&exec.args),
                _ => None,
            };
            // A RUN reads as BuildKit's executor error (the excerpt names the
            // line); other steps keep kiln's located message.
            let message =
                run.unwrap_or_else(|| format!("{at}{name}: {error}", error = Chain(&error)));
            Err(BuildError::Step {
                location,
                excerpt: None,
                message,
                log_tail,
            })
        }
        Err(e) => Err(BuildError::Setup(Chain(&e).to_string())),
    }
}

/// The target's config with its layers: `rootfs.diff_ids` filled in and
/// the history's and config's times ([`created`]). Each step with a layer
/// made exactly one; a mismatch is kiln's bug and is logged (BuildKit's
/// exporter logs "invalid image config with unaccounted layers" in the
/// same case).
fn finish_config(
    plan: &BuildPlan,
    solved: &Solved,
    cache: &cache::BuildCache,
    epoch: Option<i64>,
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
            if after != before + 1 {
                tracing::warn!(
                    "history entry {} made {after} layers on {before}",
                    step.history
                );
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
    created::fill(
        &mut config,
        |i| {
            let step = plan.layer_steps.iter().find(|s| s.history == i)?;
            cache.created(solved.keys.get(&step.vertex)?)
        },
        epoch,
    );
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

/// The platform kiln builds on (`BUILDPLATFORM`): the host's.
pub fn host_platform() -> Platform {
    Platform::host()
}
