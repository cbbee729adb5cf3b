//! Dockerfile → build graph, with BuildKit's semantics (`dockerfile2llb`).
//!
//! [`lower`] walks the typed AST of [`crate::parser`] and appends ops to a
//! [`Graph`]: `FROM` becomes an image source, `RUN` an exec, `COPY`/`ADD`
//! and `WORKDIR` file ops; every other instruction only edits the stage's
//! image config, which [`BuildPlan::config`] carries next to the graph.
//!
//! The rules kept from BuildKit (each module says which of its own):
//! - only stages reachable from the target (`--target`, default the last
//!   stage) are lowered; `FROM name` and `COPY --from=name|index` must name
//!   an earlier stage, any other `--from` value is an image;
//! - variables are expanded here, never by the parser: `FROM` (and its
//!   `--platform`) with the global ARGs, other instructions with the
//!   stage's environment (image `ENV`, `ENV`, `ARG` values) — see
//!   [`args`] for the scoping rules;
//! - `ARG` values reach `RUN` as environment and its history line
//!   (`RUN |1 A=b ...`), never the image config; `ENV` reaches both;
//! - history: one entry per instruction (`empty_layer` for config-only
//!   ones), `created_by` spelled as BuildKit spells it, `# buildkit` after
//!   RUN/COPY/ADD, `created` only under `SOURCE_DATE_EPOCH`;
//! - `ONBUILD` triggers of a base image run right after its `FROM`.
//!
//! Base images are looked up through an [`ImageResolver`] while lowering,
//! since their config (ENV, WORKDIR, USER, SHELL, ONBUILD) shapes the
//! steps after `FROM`; the image op is then pinned to the resolved digest.

mod args;
mod copy;
mod dispatch;
pub mod lint;
mod mount;
mod named;
mod names;
mod run;
pub mod source;
mod stage;
mod step_flags;
pub mod suggest;
mod syntax;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};

use crate::image::oci::ImageConfig;
use crate::image::reference::ImageRef;
use crate::parser::{Dockerfile, Span};
use crate::shell::Lexer;
use crate::solver::{
    ContextSource, Graph, GraphError, HttpSource, Network, Op, Platform, VertexId, VertexInfo,
};
use crate::source::url::redact_password;

pub use args::{is_proxy_arg, PROXY_ARGS};
pub use mount::{parse_mount, MountSpec, MountType};
pub use named::{context_key, source_name, NamedContext};
pub use step_flags::StepFlags;
pub use syntax::{check_syntax, ForeignFrontend};

/// What the build was asked for, besides the Dockerfile.
#[derive(Debug, Clone)]
pub struct LowerOptions {
    /// How the Dockerfile is named in locations (`Dockerfile:12`).
    pub file_name: String,
    /// `--build-arg` values (a bare `--build-arg K` already resolved from
    /// the environment by the caller).
    pub build_args: BTreeMap<String, String>,
    /// `--target`: the stage to build (default: the last one).
    pub target: Option<String>,
    /// `--label`: labels added to the target's config.
    pub labels: BTreeMap<String, String>,
    /// `SOURCE_DATE_EPOCH` (environment or build arg): history and config
    /// timestamps, and the clamp for mtimes in new layers.
    pub source_date_epoch: Option<i64>,
    /// The `created` of new history entries (RFC 3339): the epoch when
    /// given. Without one, BuildKit's frontend leaves it unset
    /// (dockerfile2llb `commitToHistory` takes `d.epoch`) and its exporter
    /// fills it in from the step results (`crate::build::created`), so the
    /// config never says "now" and a cached rebuild is the same image.
    pub created: Option<String>,
    /// The platform built for (`TARGETPLATFORM`): stages without
    /// `FROM --platform` are for it, and the image config says it.
    pub platform: Platform,
    /// The platform kiln runs on (`BUILDPLATFORM`): a `RUN` for any other
    /// runs under emulation.
    pub build_platform: Platform,
    /// `platform` was not asked for (no `--platform`): the image config
    /// then keeps the target stage's own platform (BuildKit's
    /// `implicitTarget`).
    pub platform_implicit: bool,
    /// Whether this is one platform of a multi-platform build: step names
    /// then start with the stage's platform, `[linux/arm64 2/5] RUN ...`
    /// (moby/buildkit `frontend/dockerfile/dockerfile2llb/convert.go`,
    /// `prefixCommand`, whose `prefixPlatform` is
    /// `opt.MultiPlatformRequested`).
    pub multi_platform: bool,
    /// `.dockerignore` patterns, part of the context source's definition.
    pub context_exclude: Vec<String>,
    /// The network of `RUN` without `--network` (`kiln build --network`);
    /// part of each exec's definition, as BuildKit puts it in the LLB.
    pub network: Network,
    /// `--add-host`, `--shm-size`, `--ulimit`, `--no-cache-filter`.
    pub step_flags: StepFlags,
    /// `--build-context`s by [`context_key`]: what replaces a stage or
    /// image of that name (see [`named`]).
    pub named_contexts: BTreeMap<String, NamedContext>,
}

/// A base image as the resolver found it.
#[derive(Debug, Clone)]
pub struct ResolvedImage {
    /// The reference pinned to the image's manifest digest, so the image
    /// op (and its cache key) names exactly this image.
    pub reference: ImageRef,
    /// Its config.
    pub config: ImageConfig,
}

/// Finds base images (`FROM`, `COPY --from=image`) for the lowering.
pub trait ImageResolver {
    /// The image `reference` names for `platform`, or why it is unavailable.
    fn resolve(&self, reference: &ImageRef, platform: &Platform) -> Result<ResolvedImage, String>;
}

/// How deep `COPY --from` / `RUN --mount=from=` references to stages whose
/// value needs expanding (`--from=$STAGE`) may nest, each lowered inside
/// the one naming it. BuildKit has no such limit (it dispatches stages in
/// file order); kiln lowers on demand and bounds this one recursion rather
/// than overflow the stack. Literal references and `FROM <stage>` chains
/// are lowered in a loop beforehand and never count.
pub const MAX_FROM_NESTING: usize = 32;

/// The lowered build: a graph, its target and the target's image config.
#[derive(Debug, Clone)]
pub struct BuildPlan {
    pub graph: Graph,
    /// The vertex whose output is the target's root filesystem; `None`
    /// when the target is `FROM scratch` with no filesystem step.
    pub target: Option<VertexId>,
    /// The target's image config, history included (`rootfs.diff_ids` is
    /// filled in once the layers are known).
    pub config: ImageConfig,
    /// Which vertex made the layer of each new non-empty history entry
    /// (checked against the layers after the solve).
    pub layer_steps: Vec<LayerStep>,
    /// Things the user should hear about (unused build args).
    pub warnings: Vec<String>,
    /// Build-check warnings only lowering can find (UndefinedVar), not
    /// yet filtered by `# check=` (see [`lint::merge`]).
    pub checks: Vec<lint::Warning>,
    /// Which stages were lowered (the target and what it needs), by index.
    pub lowered: Vec<bool>,
}

/// A history entry that expects a layer, and the step behind it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerStep {
    /// Index into the config's `history`.
    pub history: usize,
    /// The vertex whose output holds the layer.
    pub vertex: VertexId,
    /// The vertex it was stacked on (`None`: an empty base).
    pub parent: Option<VertexId>,
}

/// Why a Dockerfile cannot be lowered. Messages carry the file and line.
#[derive(Debug, thiserror::Error)]
pub enum LowerError {
    /// An instruction is wrong (bad value, unknown stage, unsupported flag).
    #[error("{file}:{line}: {message}")]
    Instruction {
        file: String,
        line: usize,
        message: String,
    },
    /// Something about the whole file (no stages, unknown target).
    #[error("{0}")]
    Dockerfile(String),
    /// The graph refused an op (a bug in the lowering).
    #[error(transparent)]
    Graph(#[from] GraphError),
}

/// Lowers `df` into a build plan.
pub fn lower(
    df: &Dockerfile,
    opts: &LowerOptions,
    resolver: &dyn ImageResolver,
) -> Result<BuildPlan, LowerError> {
    if df.stages.is_empty() {
        return Err(LowerError::Dockerfile(
            "dockerfile contains no stages to build".into(),
        ));
    }
    let mut lowerer = Lowerer::new(df, opts, resolver)?;
    let target = lowerer.target_index()?;
    let state = lowerer.stage(target)?;
    let mut config = state.config.clone();
    for (k, v) in &opts.labels {
        config
            .config
            .get_or_insert_with(Default::default)
            .labels
            .get_or_insert_with(BTreeMap::new)
            .insert(k.clone(), v.clone());
    }
    // moby/buildkit dockerfile2llb/convert.go, end of `toDispatchState`:
    // an explicit target platform is written into the config (a base's
    // variant kept when the target names none for the same OS and
    // architecture); an implicit one leaves the target stage's.
    if !opts.platform_implicit {
        let p = &opts.platform;
        let same = p.os == config.os && p.architecture == config.architecture;
        config.os = p.os.clone();
        config.architecture = p.architecture.clone();
        if p.variant.is_some() || !same {
            config.variant = p.variant.clone();
        }
    } else if config.architecture.is_empty() {
        config.os = state.platform.os.clone();
        config.architecture = state.platform.architecture.clone();
        config.variant = state.platform.variant.clone();
    }
    // The config's `created` comes from the history once the layers'
    // times are known (BuildKit's exporter, `patchImageConfig`).
    config.created = None;
    let mut warnings = Vec::new();
    let unused: Vec<&str> = opts
        .build_args
        .keys()
        .map(String::as_str)
        .filter(|k| !lowerer.declared.contains(*k) && !args::is_builtin_arg(k))
        .collect();
    if !unused.is_empty() {
        warnings.push(format!(
            "[Warning] One or more build-args [{}] were not consumed",
            unused.join(" ")
        ));
    }
    Ok(BuildPlan {
        lowered: lowerer.done.iter().map(Option::is_some).collect(),
        checks: lowerer.checks.into_inner(),
        graph: lowerer.graph,
        target: state.root,
        config,
        layer_steps: state.layer_steps.clone(),
        warnings,
    })
}

/// The lowering's working state for one Dockerfile.
struct Lowerer<'a> {
    df: &'a Dockerfile,
    opts: &'a LowerOptions,
    resolver: &'a dyn ImageResolver,
    lexer: Lexer,
    graph: Graph,
    /// Global (meta) ARGs after `--build-arg`s, platform ARGs included.
    globals: crate::shell::EnvMap,
    /// Each stage's base name after expansion with the global ARGs.
    bases: Vec<String>,
    /// Lowered stages (memoized: a stage used twice is lowered once).
    done: Vec<Option<stage::StageState>>,
    in_progress: Vec<bool>,
    /// How many `--from` references are being lowered inside each other.
    from_depth: usize,
    /// Images resolved so far, by normalized reference.
    images: HashMap<String, ResolvedImage>,
    context: Option<VertexId>,
    /// ARG names declared globally or in a lowered stage.
    declared: std::collections::BTreeSet<String>,
    /// UndefinedVar findings of the words expanded so far.
    checks: std::cell::RefCell<Vec<lint::Warning>>,
}

impl<'a> Lowerer<'a> {
    fn new(
        df: &'a Dockerfile,
        opts: &'a LowerOptions,
        resolver: &'a dyn ImageResolver,
    ) -> Result<Lowerer<'a>, LowerError> {
        let lexer = Lexer::new(df.escape);
        // `TARGETSTAGE`: `--target` as given, else the last stage's name,
        // `default` when it has none (moby/buildkit PR #5431: dockerfile2llb
        // `toDispatchState` picks the name, `defaultArgs` in platform.go
        // fills in `default`; its test `testTargetStageNameArg` expects
        // `value:default`).
        let target_name = match &opts.target {
            Some(t) => t.clone(),
            None => df
                .stages
                .last()
                .and_then(|s| s.name.clone())
                .unwrap_or_default(),
        };
        let target_name = if target_name.is_empty() {
            "default".to_string()
        } else {
            target_name
        };
        let globals = args::global_args(df, opts, &lexer, &target_name)?;
        let mut bases = Vec::with_capacity(df.stages.len());
        for st in &df.stages {
            let expanded = lexer
                .process_word(&st.base, &globals)
                .map_err(|e| error_at(opts, &st.span, e.to_string()))?;
            if expanded.value.is_empty() {
                return Err(error_at(
                    opts,
                    &st.span,
                    format!("base name ({}) should not be blank", st.base),
                ));
            }
            bases.push(expanded.value);
        }
        Ok(Lowerer {
            df,
            opts,
            resolver,
            lexer,
            graph: Graph::new(),
            globals,
            bases,
            done: vec![None; df.stages.len()],
            in_progress: vec![false; df.stages.len()],
            from_depth: 0,
            images: HashMap::new(),
            context: None,
            checks: Default::default(),
            declared: df
                .global_args
                .iter()
                .flat_map(|g| g.arg.definitions.iter().map(|d| d.name.clone()))
                .collect(),
        })
    }

    fn target_index(&self) -> Result<usize, LowerError> {
        match &self.opts.target {
            None => Ok(self.df.stages.len() - 1),
            // dockerfile2llb `resolveTarget`: the error carries a suggestion
            // among the stage names (case-insensitive, as the lookup is).
            Some(t) => self.stage_by_name(t, self.df.stages.len()).ok_or_else(|| {
                let names: Vec<String> = self
                    .df
                    .stages
                    .iter()
                    .filter_map(|s| s.name.clone())
                    .collect();
                LowerError::Dockerfile(suggest::with_suggestion(
                    format!("target stage {t:?} could not be found"),
                    t,
                    &names,
                    false,
                ))
            }),
        }
    }

    /// The index of the stage named `name` (case-insensitively) among the
    /// first `before` stages.
    fn stage_by_name(&self, name: &str, before: usize) -> Option<usize> {
        let lower = name.to_lowercase();
        self.df.stages[..before]
            .iter()
            .position(|s| s.name.as_deref() == Some(lower.as_str()))
    }

    /// The build context source vertex, added on first use.
    fn context_vertex(&mut self) -> Result<VertexId, LowerError> {
        if let Some(v) = self.context {
            return Ok(v);
        }
        let source = ContextSource {
            name: "context".into(),
            exclude: self.opts.context_exclude.clone(),
            ..ContextSource::default()
        };
        let v = self.graph.add(
            Op::Context(source),
            vec![],
            VertexInfo::named("[internal] load build context"),
        )?;
        self.context = Some(v);
        Ok(v)
    }

    /// The source vertex downloading `url` (one per URL and checksum: the
    /// graph merges equal definitions), named by the URL with any password
    /// hidden, located at the first instruction using it.
    fn http_vertex(
        &mut self,
        url: &str,
        checksum: Option<String>,
        span: &Span,
    ) -> Result<VertexId, LowerError> {
        let source = HttpSource {
            url: url.to_string(),
            checksum,
        };
        let info = VertexInfo::at(redact_password(url), self.location(span));
        Ok(self.graph.add(Op::Http(source), vec![], info)?)
    }

    fn location(&self, span: &Span) -> String {
        format!("{}:{}", self.opts.file_name, span.line)
    }

    fn err(&self, span: &Span, message: impl Into<String>) -> LowerError {
        error_at(self.opts, span, message.into())
    }
}

fn error_at(opts: &LowerOptions, span: &Span, message: String) -> LowerError {
    LowerError::Instruction {
        file: opts.file_name.clone(),
        line: span.line,
        message,
    }
}
