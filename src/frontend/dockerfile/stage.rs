//! Stages: what a stage starts from (`FROM image|stage|scratch`), the
//! state it carries from step to step, and the walk over its instructions.
//!
//! BuildKit's rules: a stage built `FROM` an earlier stage continues that
//! stage's state (filesystem, config, ENV, declared ARGs, WORKDIR); one
//! built from an image starts from the image's config with its `created`
//! dropped; `FROM scratch` starts empty. Every stage's config gets BuildKit's
//! default `PATH` when it has none, and a base image's `ONBUILD` triggers
//! run first, counted and named as steps (`[2/4] ONBUILD RUN ...`).

use super::named::NamedContext;
use super::names::StepCounter;
use super::{parse_mount, LayerStep, LowerError, Lowerer, ResolvedImage};
use crate::error_chain::Chain;
use crate::image::oci::{ContainerConfig, History, ImageConfig, RootFs, DEFAULT_PATH};
use crate::image::reference::ImageRef;
use crate::parser::{Instruction, InstructionKind, Span};
use crate::shell::EnvMap;
use crate::solver::{ImageSource, Op, Platform, VertexId, VertexInfo};

/// BuildKit's history comment on every entry it writes.
pub(super) const HISTORY_COMMENT: &str = "buildkit.dockerfile.v0";

/// A stage's state between steps (BuildKit's `dispatchState`).
#[derive(Debug, Clone)]
pub(super) struct StageState {
    /// The vertex holding the root filesystem so far (`None`: empty).
    pub root: Option<VertexId>,
    /// The image config so far.
    pub config: ImageConfig,
    /// The environment steps see: the config's `Env`, `ENV`s and the
    /// values of declared `ARG`s (which never reach the config).
    pub env: EnvMap,
    /// Declared ARGs in order, with their values (for `RUN |N k=v ...`).
    pub args: Vec<(String, Option<String>)>,
    /// The working directory of steps (the config's `WorkingDir`, or `/`).
    pub workdir: String,
    /// History entries of this stage (and its base stages) that expect a
    /// layer.
    pub layer_steps: Vec<LayerStep>,
    /// Whether this stage set CMD (ENTRYPOINT keeps it then).
    pub cmd_set: bool,
    /// The platform the stage's base and `RUN`s are for: `FROM
    /// --platform`, else the target's; a stage built on another keeps
    /// that one's.
    pub platform: Platform,
}

impl StageState {
    /// An empty stage (`FROM scratch`): BuildKit's `emptyImage` has
    /// `WorkingDir: "/"` (moby/buildkit frontend/dockerfile/dockerfile2llb/
    /// image.go); an image base keeps its own, even an empty one
    /// (`dispatchStages` only applies a non-empty `WorkingDir`).
    pub(super) fn scratch(platform: &Platform) -> StageState {
        let config = ImageConfig {
            architecture: platform.architecture.clone(),
            os: platform.os.clone(),
            variant: platform.variant.clone(),
            rootfs: RootFs::default(),
            config: Some(ContainerConfig {
                working_dir: Some("/".into()),
                ..ContainerConfig::default()
            }),
            ..ImageConfig::default()
        };
        StageState::from_config(None, config, platform.clone())
    }

    fn from_config(root: Option<VertexId>, config: ImageConfig, platform: Platform) -> StageState {
        StageState {
            platform,
            root,
            config,
            env: EnvMap::new(),
            args: Vec::new(),
            workdir: "/".into(),
            layer_steps: Vec::new(),
            cmd_set: false,
        }
    }

    /// The container config, created if the image had none.
    pub fn cc(&mut self) -> &mut ContainerConfig {
        self.config
            .config
            .get_or_insert_with(ContainerConfig::default)
    }

    /// The environment as `KEY=value` entries, in definition order.
    pub fn env_list(&self) -> Vec<String> {
        self.env.iter().map(|(k, v)| format!("{k}={v}")).collect()
    }

    /// Appends a history entry; `layer` names the vertex whose output
    /// holds its layer and the vertex below it.
    pub fn commit(
        &mut self,
        created_by: String,
        layer: Option<(VertexId, Option<VertexId>)>,
        created: &Option<String>,
    ) {
        if let Some((vertex, parent)) = layer {
            self.layer_steps.push(LayerStep {
                history: self.config.history.len(),
                vertex,
                parent,
            });
        }
        self.config.history.push(History {
            created: created.clone(),
            created_by: Some(created_by),
            comment: Some(HISTORY_COMMENT.into()),
            empty_layer: layer.is_none(),
            ..History::default()
        });
    }

    /// Sets `key` in the environment and the config's `Env` (in place when
    /// already there, as BuildKit's `addEnv`).
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.set(key, value);
        let entry = format!("{key}={value}");
        let env = self.cc().env.get_or_insert_with(Vec::new);
        match env.iter_mut().find(|e| e.split('=').next() == Some(key)) {
            Some(existing) => *existing = entry,
            None => env.push(entry),
        }
    }

    /// The config's string list under `key` in the container config's
    /// extra fields (`Shell`, `OnBuild`).
    pub fn extra_list(&self, key: &str) -> Vec<String> {
        self.config
            .config
            .as_ref()
            .and_then(|c| c.extra.get(key))
            .and_then(|v| serde_json::from_value::<Vec<String>>(v.clone()).ok())
            .unwrap_or_default()
    }

    /// The shell for shell-form commands: `SHELL`, else `/bin/sh -c`.
    pub fn shell(&self) -> Vec<String> {
        let shell = self.extra_list("Shell");
        if shell.is_empty() {
            vec!["/bin/sh".into(), "-c".into()]
        } else {
            shell
        }
    }
}

impl Lowerer<'_> {
    /// The lowered state of stage `i`, lowering it (and what it needs) once.
    ///
    /// Stages can depend on each other as deep as the file is long
    /// (BuildKit builds 3,000 chained `FROM <previous stage>`: dockerfile2llb
    /// `toDispatchState` dispatches stages in a loop, in file order), so the
    /// stages `i` needs are found with an explicit stack and lowered
    /// dependencies first; lowering one then finds what it names already
    /// done. Only a `--from` whose value needs expanding is not known in
    /// advance; it recurses, bounded by [`super::MAX_FROM_NESTING`].
    pub(super) fn stage(&mut self, i: usize) -> Result<StageState, LowerError> {
        for j in self.prerequisites(i) {
            self.stage_once(j)?;
        }
        self.stage_once(i)
    }

    /// The stages not yet lowered that `i` needs, transitively, each after
    /// the ones it needs (depth-first post-order, dependencies in the order
    /// the stage names them, as lowering on demand would visit them).
    fn prerequisites(&self, i: usize) -> Vec<usize> {
        let mut order = Vec::new();
        let mut seen = vec![false; self.df.stages.len()];
        let mut stack = vec![(i, false)];
        while let Some((j, deps_done)) = stack.pop() {
            if deps_done {
                if j != i {
                    order.push(j);
                }
                continue;
            }
            if seen[j] || self.done[j].is_some() || self.in_progress[j] {
                continue;
            }
            seen[j] = true;
            stack.push((j, true));
            for d in self.stage_deps(j).into_iter().rev() {
                // A dependency on a later stage is an error the lowering
                // reports where it is named; a cycle cannot be written.
                if d < j && !seen[d] {
                    stack.push((d, false));
                }
            }
        }
        order
    }

    /// The stages stage `i` names literally: its base, `COPY --from` and
    /// `RUN --mount=from=` values without variables.
    fn stage_deps(&self, i: usize) -> Vec<usize> {
        let mut deps: Vec<usize> = self.stage_by_name(&self.bases[i], i).into_iter().collect();
        let literal = |v: &str| -> Result<String, String> {
            if v.contains('$') {
                Err(String::new())
            } else {
                Ok(v.to_string())
            }
        };
        for inst in &self.df.stages[i].instructions {
            let froms: Vec<String> = match &inst.kind {
                InstructionKind::Copy(c) => c.from.iter().cloned().collect(),
                InstructionKind::Run(r) => r
                    .mounts
                    .iter()
                    .filter_map(|m| parse_mount(m, &literal).ok()?.from)
                    .collect(),
                _ => Vec::new(),
            };
            for from in froms {
                let stage = match from.parse::<i64>() {
                    Ok(n) => usize::try_from(n).ok(),
                    Err(_) => self.stage_by_name(&from, self.df.stages.len()),
                };
                deps.extend(stage.filter(|&j| j < self.df.stages.len()));
            }
        }
        deps
    }

    /// [`Lowerer::stage`] for a stage whose base stage (if any) is lowered.
    fn stage_once(&mut self, i: usize) -> Result<StageState, LowerError> {
        if let Some(done) = &self.done[i] {
            return Ok(done.clone());
        }
        if self.in_progress[i] {
            let name = self.stage_label(i);
            return Err(self.err(
                &self.df.stages[i].span,
                format!("circular dependency detected on stage: {name}"),
            ));
        }
        self.in_progress[i] = true;
        let result = self.lower_stage(i);
        self.in_progress[i] = false;
        let state = result?;
        self.done[i] = Some(state.clone());
        Ok(state)
    }

    /// `stage-N` for unnamed stages, as BuildKit names them.
    pub(super) fn stage_label(&self, i: usize) -> String {
        self.df.stages[i]
            .name
            .clone()
            .unwrap_or_else(|| format!("stage-{i}"))
    }

    /// A stage replaced by named context `key`: its files, or its image
    /// with the image's config (BuildKit: the named context's state and
    /// image config, `ds.noinit`).
    fn named_stage(
        &mut self,
        key: &str,
        named: NamedContext,
        span: &Span,
        platform: &Platform,
    ) -> Result<StageState, LowerError> {
        match named {
            NamedContext::Files { exclude } => self.files_stage(key, &exclude, span),
            NamedContext::Image(reference) => {
                let image = self.resolve_image(&reference, key, span, platform)?;
                let mut config = image.config.clone();
                config.created = None;
                config.extra.clear();
                let mut state = StageState::from_config(None, config, platform.clone());
                let name = format!("[context {key}] {}", pinned_name(&reference, &image));
                state.root = self.image_root(&image, span, name, platform)?;
                for entry in state.cc().env.clone().unwrap_or_default() {
                    let (k, v) = entry.split_once('=').unwrap_or((entry.as_str(), ""));
                    state.env.set(k, v);
                }
                Ok(state)
            }
        }
    }

    fn lower_stage(&mut self, i: usize) -> Result<StageState, LowerError> {
        let df = self.df;
        let stage = &df.stages[i];
        let platform = self.stage_platform(stage.platform.as_deref(), &stage.span)?;
        // A named context of the stage's name replaces the whole stage.
        if let Some((key, named)) = stage.name.as_deref().and_then(|n| self.named(n)) {
            return self.named_stage(&key, named, &stage.span, &platform);
        }
        let base = self.bases[i].clone();
        let base_stage = self.stage_by_name(&base, i);
        let from_image = base_stage.is_none() && base != "scratch";
        let named_base = if from_image { self.named(&base) } else { None };
        let mut counter = StepCounter {
            // The stage's own platform: a `FROM --platform=$BUILDPLATFORM`
            // stage shows the build platform, as in BuildKit.
            platform: self.opts.multi_platform.then(|| platform.clone()),
            target: String::new(),
            stage: if df.stages.len() > 1 {
                self.stage_label(i)
            } else {
                String::new()
            },
            index: 0,
            total: usize::from(from_image)
                + stage
                    .instructions
                    .iter()
                    .filter(|inst| {
                        matches!(
                            inst.kind,
                            InstructionKind::Run(_)
                                | InstructionKind::Copy(_)
                                | InstructionKind::Add(_)
                                | InstructionKind::Workdir(_)
                        )
                    })
                    .count(),
        };
        let (mut state, triggers) = if let Some(j) = base_stage {
            let mut state = self.stage(j)?;
            state.cmd_set = false;
            // BuildKit runs an earlier stage's ONBUILDs in a stage built on
            // it, and they do not carry over into its config
            // (dockerfile2llb `dispatchState.init`).
            let triggers = state.extra_list("OnBuild");
            state.cc().extra.remove("OnBuild");
            (state, triggers)
        } else if !from_image {
            (StageState::scratch(&platform), Vec::new())
        } else if let Some((key, NamedContext::Files { exclude })) = &named_base {
            (self.files_stage(key, exclude, &stage.span)?, Vec::new())
        } else {
            let reference = match &named_base {
                Some((_, NamedContext::Image(reference))) => reference.clone(),
                _ => ImageRef::parse(&base).map_err(|e| {
                    self.err(
                        &stage.span,
                        format!("failed to parse stage name {base:?}: {e}", e = Chain(&e)),
                    )
                })?,
            };
            let image = self.resolve_image(&reference, &base, &stage.span, &platform)?;
            let mut config = image.config.clone();
            config.created = None;
            // BuildKit reads base configs into its typed image struct, so
            // fields it does not know (docker's `comment`, `container`,
            // `docker_version`, ...) do not reach the new image.
            config.extra.clear();
            let mut state = StageState::from_config(None, config, platform.clone());
            let triggers = state.extra_list("OnBuild");
            state.cc().extra.remove("OnBuild");
            // Triggers are steps too: count them before naming FROM.
            counter.total += triggers.len();
            let name = counter.next(&format!("FROM {}", pinned_name(&reference, &image)), false);
            state.root = self.image_root(&image, &stage.span, name, &platform)?;
            (state, triggers)
        };
        // BuildKit makes sure PATH is always set.
        if !state
            .config
            .config
            .as_ref()
            .and_then(|c| c.env.as_ref())
            .is_some_and(|env| env.iter().any(|e| e.split('=').next() == Some("PATH")))
        {
            state
                .cc()
                .env
                .get_or_insert_with(Vec::new)
                .push(format!("PATH={DEFAULT_PATH}"));
        }
        for entry in state.cc().env.clone().unwrap_or_default() {
            let (k, v) = entry.split_once('=').unwrap_or((entry.as_str(), ""));
            state.env.set(k, v);
        }
        if let Some(wd) = state
            .config
            .config
            .as_ref()
            .and_then(|c| c.working_dir.clone())
        {
            // BuildKit re-applies a base's WorkingDir (`dispatchStages`
            // calls `dispatchWorkdir` without a history entry), writing
            // its normalized form back into the config.
            if !wd.is_empty() {
                let wd = resolve_workdir(&wd, &wd);
                state.cc().working_dir = Some(wd.clone());
                state.workdir = wd;
            }
        }
        if !from_image {
            counter.total += triggers.len();
        }
        for trigger in &triggers {
            let inst = self.parse_trigger(trigger, &stage.span)?;
            self.dispatch(&mut state, &mut counter, &inst, true, i)?;
        }
        for inst in &stage.instructions {
            self.dispatch(&mut state, &mut counter, inst, false, i)?;
        }
        Ok(state)
    }

    /// The platform of a stage: `FROM --platform` expanded with the
    /// global ARGs (so `$BUILDPLATFORM` names the build host's), else the
    /// target's (moby/buildkit dockerfile2llb/convert.go, `toDispatchState`:
    /// `d.platform` from `ds.platform` expanded with the meta args, the
    /// target platform otherwise).
    fn stage_platform(&self, platform: Option<&str>, span: &Span) -> Result<Platform, LowerError> {
        let Some(raw) = platform else {
            return Ok(self.opts.platform.clone());
        };
        let value = self
            .lexer
            .process_word(raw, &self.globals)
            .map_err(|e| {
                self.err(
                    span,
                    format!(
                        "failed to process arguments for platform {raw}: {e}",
                        e = Chain(&e)
                    ),
                )
            })?
            .value;
        if value.is_empty() {
            return Err(self.err(span, format!("empty platform value from expression {raw}")));
        }
        let parsed = Platform::parse(&value).map_err(|e| {
            self.err(
                span,
                format!("failed to parse platform {value}: {e}", e = Chain(&e)),
            )
        })?;
        Ok(parsed.normalized())
    }

    /// The image `reference` names, asked of the resolver once per build.
    /// `written` is the name as the Dockerfile gave it: when the image
    /// cannot be had, a close stage (or common image) name is suggested,
    /// as BuildKit does (dockerfile2llb `toDispatchState`: the failed
    /// `ResolveImageConfig` goes through `suggest.WrapError` with the stage
    /// names and `commonImageNames()`, case-sensitively). Like BuildKit,
    /// the image is still tried first: `buidler` may be a real image.
    pub(super) fn resolve_image(
        &mut self,
        reference: &ImageRef,
        written: &str,
        span: &Span,
        platform: &Platform,
    ) -> Result<ResolvedImage, LowerError> {
        let key = format!("{reference}\0{platform}");
        if let Some(image) = self.images.get(&key) {
            return Ok(image.clone());
        }
        let image = self.resolver.resolve(reference, platform).map_err(|e| {
            let names = self.suggestion_names();
            self.err(
                span,
                super::suggest::with_suggestion(e, written, &names, true),
            )
        })?;
        self.images.insert(key, image.clone());
        Ok(image)
    }

    /// What an unavailable image name may have meant: the stage names,
    /// then BuildKit's `commonImageNames()` (its list, including the
    /// `docker.io/library` entries it writes without a `/`).
    fn suggestion_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .df
            .stages
            .iter()
            .filter_map(|s| s.name.clone())
            .collect();
        for repo in [
            "alpine", "busybox", "centos", "debian", "golang", "ubuntu", "fedora",
        ] {
            names.push(repo.to_string());
            names.push(format!("docker.io/library{repo}"));
            names.push(format!("{repo}:latest"));
            names.push(format!("docker.io/library{repo}:latest"));
        }
        names
    }

    /// The image source vertex of `image` (`None` for an image without
    /// layers); the graph merges repeated uses of one image.
    pub(super) fn image_root(
        &mut self,
        image: &ResolvedImage,
        span: &Span,
        name: String,
        platform: &Platform,
    ) -> Result<Option<VertexId>, LowerError> {
        if image.config.rootfs.diff_ids.is_empty() {
            return Ok(None);
        }
        let op = Op::Image(ImageSource {
            reference: image.reference.clone(),
            platform: platform.clone(),
        });
        let info = VertexInfo::at(name, self.location(span));
        Ok(Some(self.graph.add(op, vec![], info)?))
    }

    /// An ONBUILD trigger as an instruction located at the stage's FROM.
    fn parse_trigger(&self, trigger: &str, span: &Span) -> Result<Instruction, LowerError> {
        let text = format!("FROM scratch\n{trigger}\n");
        let parsed = crate::parser::parse(&self.opts.file_name, text.as_bytes()).map_err(|e| {
            self.err(
                span,
                format!("onbuild trigger {trigger:?}: {e}", e = Chain(&e)),
            )
        })?;
        let mut instructions = parsed
            .stages
            .into_iter()
            .flat_map(|s| s.instructions)
            .collect::<Vec<_>>();
        if instructions.len() != 1 {
            return Err(self.err(span, "onbuild trigger should be a single expression"));
        }
        let mut inst = instructions.remove(0);
        let original = inst.span.original.clone();
        inst.span = Span {
            original,
            ..span.clone()
        };
        Ok(inst)
    }
}

/// How BuildKit shows a resolved base: the name as written (normalized,
/// tag kept) plus the digest it resolved to.
pub(super) fn pinned_name(reference: &ImageRef, image: &ResolvedImage) -> String {
    match (reference.digest(), image.reference.digest()) {
        (None, Some(d)) => format!("{reference}@{d}"),
        _ => reference.to_string(),
    }
}

/// `WORKDIR` (and a base image's `WorkingDir`) as BuildKit resolves it
/// (moby/buildkit util/system/path.go `NormalizeWorkdir` → `NormalizePath`
/// without keepSlash): an absolute path is kept as written, not cleaned
/// (`WORKDIR /app/` stays `/app/` in the config and history); a relative
/// one is joined to the current directory (made absolute) and cleaned; an
/// empty one is the current directory.
pub(super) fn resolve_workdir(current: &str, path: &str) -> String {
    let current = normalize_workdir("/", current);
    if path.starts_with('/') {
        path.to_string()
    } else if path.is_empty() {
        current
    } else {
        normalize_workdir(&current, path)
    }
}

/// A path below the working directory (`RUN --mount` targets, `COPY`
/// destinations): an absolute path as is, a relative one below `current`;
/// cleaned.
pub(super) fn normalize_workdir(current: &str, path: &str) -> String {
    let joined = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("{current}/{path}")
    };
    let mut parts: Vec<&str> = Vec::new();
    for part in joined.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// moby/buildkit util/system `NormalizePath`: absolute paths are not
    /// cleaned on Linux, relative ones are joined and cleaned, a relative
    /// current directory is made absolute first.
    #[test]
    fn workdir_instructions_resolve_like_buildkit() {
        for (current, path, expected) in [
            ("", "app", "/app"),
            ("/", "app", "/app"),
            ("/app", "src/", "/app/src"),
            ("/app", "/abs/", "/abs/"),
            ("/app", "/a/../b", "/a/../b"),
            ("/a/b", "../c", "/a/c"),
            ("app", "app", "/app/app"),
            ("/app/", "", "/app"),
        ] {
            assert_eq!(
                resolve_workdir(current, path),
                expected,
                "{current:?} {path:?}"
            );
        }
    }

    #[test]
    fn paths_below_the_workdir_resolve_cleaned() {
        for (current, path, expected) in [
            ("/", "app", "/app"),
            ("/app", "src", "/app/src"),
            ("/app", "/abs/", "/abs"),
            ("/a/b", "../c", "/a/c"),
            ("/", "../..", "/"),
            ("/app", ".", "/app"),
        ] {
            assert_eq!(
                normalize_workdir(current, path),
                expected,
                "{current} {path}"
            );
        }
    }
}
