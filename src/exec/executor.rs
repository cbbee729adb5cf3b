//! The solver's [`Executor`] for real builds: ops run against kiln's
//! store and runtime.
//!
//! - image sources: the image's snapshots (extracted from its blobs when
//!   missing), found by the manifest digest the lowering pinned;
//! - the local context: scanned with `.dockerignore` applied
//!   ([`LocalContext`]);
//! - HTTP sources: [`super::http_source`] (fetched, conditionally, every
//!   build; dependents key on the content digest);
//! - exec ops: [`super::run`]; file ops: [`super::file_op`]; merges:
//!   [`super::merge`].
//!
//! Every result is an [`Artifact`]; root filesystems are stacks of store
//! snapshots, which this process's store lease keeps until the build's
//! image (or build cache record) holds them.

use crate::error_chain::Chain;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use super::cache_mount::CacheMounts;
use super::context::LocalContext;
use super::http_source::{self, Outcome, RemoteFile};
use super::rootfs::Rootfs;
use crate::cache::{Image, Store};
use crate::context::dockerignore::DockerIgnore;
use crate::context::stat_cache::StatCacheFile;
use crate::image::Digest;
use crate::solver::{ContentSelector, ExecError, Executor, ImageSource, Job, LogStream, Op};

/// What a step produced.
#[derive(Debug, Clone)]
pub enum Artifact {
    /// A root filesystem.
    Rootfs(Rootfs),
    /// The scanned build context.
    Context(Arc<LocalContext>),
    /// A downloaded file (`ADD <url>`).
    Remote(Arc<RemoteFile>),
}

/// The local directory a build reads as its context.
#[derive(Debug, Clone)]
pub struct ContextDir {
    /// The context directory.
    pub dir: PathBuf,
    /// Its `.dockerignore` rules.
    pub ignore: DockerIgnore,
}

/// What every op of one build shares.
pub struct ExecContext {
    /// The store results go to.
    pub store: Arc<Store>,
    /// What the sandbox network of a `RUN` is (kiln has no bridge
    /// network yet: the host's).
    pub network: crate::runtime::Network,
    /// `--secret` values by id.
    pub secrets: HashMap<String, Vec<u8>>,
    /// `--ssh` agents by id.
    pub ssh: super::ssh_agent::SshAgents,
    /// Where `RUN --mount=type=cache` directories live.
    pub cache_mounts: CacheMounts,
}

/// Runs ops for one build.
pub struct BuildExecutor {
    cx: ExecContext,
    context: Option<ContextDir>,
    /// Base images by manifest digest (what the lowering resolved).
    images: HashMap<Digest, Image>,
    /// The context once scanned, to save its digest cache at the end.
    scanned: std::sync::Mutex<Option<Arc<LocalContext>>>,
}

impl BuildExecutor {
    /// An executor over `cx`, reading `context` (if the build has one)
    /// and the base `images` the lowering pinned.
    pub fn new(cx: ExecContext, context: Option<ContextDir>, images: Vec<Image>) -> BuildExecutor {
        BuildExecutor {
            cx,
            context,
            images: images
                .into_iter()
                .map(|i| (i.manifest_digest.clone(), i))
                .collect(),
            scanned: std::sync::Mutex::new(None),
        }
    }

    /// Saves what the build learnt about the context's files (their
    /// digests by stat stamp) for the next build.
    pub fn finish(&self) {
        if let Some(ctx) = self.scanned.lock().ok().and_then(|mut s| s.take()) {
            ctx.save_digests();
        }
    }

    fn image(&self, source: &ImageSource) -> Result<Rootfs, ExecError> {
        let digest = source.reference.digest().ok_or_else(|| {
            ExecError::msg(format!("image {} was not resolved", source.reference))
        })?;
        let image = self.images.get(digest).ok_or_else(|| {
            ExecError::msg(format!("image {} is not in the store", source.reference))
        })?;
        self.cx
            .store
            .snapshot_dirs(image)
            .map_err(|e| ExecError::with_context(format!("unpacking {}", source.reference), e))?;
        Ok(Rootfs::new(image.layers.clone()))
    }

    fn context(&self) -> Result<LocalContext, ExecError> {
        let ctx = self
            .context
            .as_ref()
            .ok_or_else(|| ExecError::msg("this build has no context (it was given as -)"))?;
        let cache = Arc::new(StatCacheFile::open(
            &self.cx.store.layout().context_cache(),
            &ctx.dir,
        ));
        LocalContext::scan(&ctx.dir, &ctx.ignore, cache)
            .map_err(|e| ExecError::with_context("loading the build context", e))
    }
}

impl Executor for BuildExecutor {
    type Output = Artifact;

    fn execute(&self, job: &Job<'_, Artifact>) -> Result<Artifact, ExecError> {
        if job.cancel.is_cancelled() {
            return Err(ExecError::Cancelled);
        }
        match job.vertex.op() {
            Op::Image(source) => self.image(source).map(Artifact::Rootfs),
            Op::Context(_) => {
                let ctx = Arc::new(self.context()?);
                if let Ok(mut s) = self.scanned.lock() {
                    *s = Some(ctx.clone());
                }
                Ok(Artifact::Context(ctx))
            }
            Op::Http(source) => {
                let remote = http_source::fetch(&self.cx.store, source)
                    .map_err(|e| ExecError::msg(crate::error_chain::Chain(&e).to_string()))?;
                let what = match remote.outcome {
                    Outcome::Pinned => "checksum matches the stored copy",
                    Outcome::NotModified => "not modified, using the stored copy",
                    Outcome::Unchanged => "unchanged, using the stored copy",
                    Outcome::Downloaded => "downloaded",
                };
                job.log.line(
                    LogStream::Stderr,
                    &format!("{what}: {} ({} bytes)", remote.digest, remote.size),
                );
                Ok(Artifact::Remote(Arc::new(remote)))
            }
            Op::Exec(exec) => super::run::run(&self.cx, exec, job.inputs, job.log, job.cancel)
                .map(Artifact::Rootfs),
            Op::File(file) => {
                super::file_op::run(&self.cx, file, job.inputs, job.cancel).map(Artifact::Rootfs)
            }
            Op::Merge(merge) => {
                super::merge::run(&self.cx, merge, job.inputs).map(Artifact::Rootfs)
            }
        }
    }

    fn resolve_image(&self, source: &ImageSource) -> Result<Digest, ExecError> {
        // The lowering pins every image it uses; an unpinned one means an
        // image that was never resolved.
        Err(ExecError::msg(format!(
            "image {} was not resolved before the build",
            source.reference
        )))
    }

    fn content_digest(
        &self,
        context: &Artifact,
        selector: &ContentSelector,
    ) -> Result<Digest, ExecError> {
        match context {
            Artifact::Context(ctx) => ctx
                .digest(selector)
                .map_err(|e| ExecError::msg(Chain(&e).to_string())),
            Artifact::Remote(remote) => Ok(remote.content_digest()),
            Artifact::Rootfs(_) => Err(ExecError::msg("content digest of a non-context input")),
        }
    }

    fn content_files(
        &self,
        context: &Artifact,
        selector: &ContentSelector,
        limit: usize,
    ) -> Vec<(String, Digest)> {
        match context {
            Artifact::Context(ctx) => ctx.selected_files(selector, limit).unwrap_or_default(),
            _ => Vec::new(),
        }
    }
}
