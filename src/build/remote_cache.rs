//! The build's side of `--cache-to`/`--cache-from`: which steps' records
//! an export holds (`mode=min|max`), the inline cache in the image config,
//! and what the progress output says about transfers.

use crate::cache::remote::description::INLINE_CONFIG_KEY;
use crate::cache::remote::{self, CacheTo, ExportMode, ExportOptions, Imports, Location};
use crate::cache::Store;
use crate::error_chain::Chain;
use crate::frontend::dockerfile::BuildPlan;
use crate::image::oci::ImageConfig;
use crate::image::registry::ClientOptions;
use crate::image::Digest;
use crate::solver::ProgressMode;

use super::{BuildError, BuildOptions, Solved};

/// The cache keys `mode` exports. `min`: the steps the final image is
/// made of (its base, each step with a layer, the target); `max`: every
/// step solved, in every stage: BuildKit's `CacheExportModeMin`/`Max`
/// (moby/buildkit `solver/llbsolver/solver.go`, `runCacheExporters` hands
/// the exporter's mode to the result's cache key export).
fn keys(plan: &BuildPlan, solved: &Solved, mode: ExportMode) -> Vec<Digest> {
    let mut keys: Vec<Digest> = match mode {
        ExportMode::Max => solved.keys.values().map(|k| k.digest().clone()).collect(),
        ExportMode::Min => plan
            .layer_steps
            .iter()
            .flat_map(|s| [Some(s.vertex), s.parent])
            .chain([plan.target])
            .flatten()
            .filter_map(|v| solved.keys.get(&v))
            .map(|k| k.digest().clone())
            .collect(),
    };
    keys.sort();
    keys.dedup();
    keys
}

/// `--cache-to type=inline`: the final image's records go into its config
/// (under [`INLINE_CONFIG_KEY`]), naming layers by diff ID only; the
/// image's own layer blobs carry them once it is pushed. Like BuildKit's
/// inline cache, always `mode=min` (moby/buildkit `solver/llbsolver/
/// solver.go`, `inlineCache` exports with `CacheExportModeMin`).
pub(super) fn add_inline(
    store: &Store,
    plan: &BuildPlan,
    solved: &Solved,
    imports: &Imports,
    config: &mut ImageConfig,
) -> Result<(), BuildError> {
    let description = remote::export::describe(
        store,
        &keys(plan, solved, ExportMode::Min),
        None,
        None,
        &|k| imports.record_of(k),
    )
    .map_err(|source| remote::ExportError {
        target: "the image config (inline)".into(),
        source: Box::new(source),
    })?;
    let value =
        serde_json::from_slice(&description.encode()).expect("a description's JSON is a value");
    config.extra.insert(INLINE_CONFIG_KEY.to_string(), value);
    Ok(())
}

/// Runs every registry and local `--cache-to`. A failed one fails the
/// build unless it says `ignore-error=true` (then it is a warning), as
/// buildx's `ignore-error` (moby/buildkit `solver/llbsolver/solver.go`,
/// `runCacheExporters` drops an exporter's error when `IgnoreError`).
pub(super) fn export_all(
    store: &Store,
    plan: &BuildPlan,
    solved: &Solved,
    opts: &BuildOptions,
    registry: &ClientOptions,
    imports: &Imports,
) -> Result<(), BuildError> {
    for to in &opts.cache_to {
        let (target, options) = match to {
            CacheTo::Inline => continue,
            CacheTo::Registry { reference, options } => (reference.to_string(), options),
            CacheTo::Local { dest, options } => (dest.display().to_string(), options),
        };
        let started = std::time::Instant::now();
        let result = export_one(store, plan, solved, to, options, registry, imports);
        match result {
            Ok(report) => {
                if opts.progress.shows_text() {
                    eprintln!(
                        "exporting cache to {target}: {} records, manifest {} ({:.1}s)",
                        report.records,
                        report.manifest,
                        started.elapsed().as_secs_f64()
                    );
                }
            }
            Err(source) => {
                let err = remote::ExportError {
                    target,
                    source: Box::new(source),
                };
                if !to.ignore_error() {
                    return Err(err.into());
                }
                eprintln!("WARNING: {} (ignored: ignore-error=true)", Chain(&err));
            }
        }
    }
    Ok(())
}

fn export_one(
    store: &Store,
    plan: &BuildPlan,
    solved: &Solved,
    to: &CacheTo,
    options: &ExportOptions,
    registry: &ClientOptions,
    imports: &Imports,
) -> Result<remote::export::ExportReport, remote::RemoteCacheError> {
    let location = match to {
        CacheTo::Registry { reference, .. } => Location::registry(reference, registry)?,
        CacheTo::Local { dest, .. } => Location::Local(dest.clone()),
        CacheTo::Inline => unreachable!("inline is written into the config"),
    };
    let started = std::time::Instant::now();
    let mut description = remote::export::describe(
        store,
        &keys(plan, solved, options.mode),
        Some(remote::export::Blobs {
            compression: options.compression,
            forced: options.compression_given,
        }),
        Some(&location),
        &|k| imports.record_of(k),
    )?;
    tracing::debug!(
        records = description.records.len(),
        elapsed = ?started.elapsed(),
        "cache described, layer blobs compressed"
    );
    if options.cache_mounts {
        let mounts = crate::exec::cache_mount::CacheMounts::new(store.layout());
        let dirs: Vec<_> = cache_mount_ids(plan)
            .into_iter()
            .filter_map(|id| Some((id.clone(), mounts.existing_dir(&id)?)))
            .collect();
        remote::export::add_mounts(store, &mut description, &dirs, options.compression)?;
    }
    remote::export::export(store, &location, description)
}

/// The ids of the build's `RUN --mount=type=cache` mounts that are not
/// seeded `from=` another step (such a cache is defined by its source).
fn cache_mount_ids(plan: &BuildPlan) -> Vec<String> {
    let mut ids: Vec<String> = plan
        .graph
        .iter()
        .filter_map(|(_, v)| match v.op() {
            crate::solver::Op::Exec(exec) => Some(exec),
            _ => None,
        })
        .flat_map(|exec| &exec.mounts)
        .filter(|m| m.input.is_none())
        .filter_map(|m| match &m.kind {
            crate::solver::MountKind::Cache { id, .. } => Some(id.clone()),
            _ => None,
        })
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// Restores cache mounts from the imports the first time a RUN mounts an
/// id the store has no directory for.
pub(super) struct ImportedMounts {
    pub store: std::sync::Arc<Store>,
    pub imports: std::sync::Arc<Imports>,
}

impl crate::exec::cache_mount::CacheRestore for ImportedMounts {
    fn restore(&self, id: &str, dir: &std::path::Path) -> bool {
        self.imports.restore_mount(&self.store, id, dir)
    }
}

/// Tells how much the imports fetched, when they fetched anything.
pub(super) fn report_fetched(imports: &Imports, progress: ProgressMode) {
    let (bytes, blobs) = imports.fetched();
    if progress.shows_text() && !imports.is_empty() {
        eprintln!("importing cache: fetched {blobs} layer blobs, {bytes} bytes");
    }
}
