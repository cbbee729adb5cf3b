//! The solver's [`Executor`] for real builds: ops run against kiln's
//! store and runtime.
//!
//! - image sources: the image's snapshots (extracted from its blobs when
//!   missing), found by the manifest digest the lowering pinned;
//! - the local context: scanned with `.dockerignore` applied
//!   ([`LocalContext`]);
//! - named contexts (`--build-context NAME=DIR`, a git checkout): scanned
//!   the same way, each with its own `.dockerignore`;
//! - HTTP sources: [`super::http_source`] (fetched, conditionally, every
//!   build; dependents key on the content digest);
//! - Git sources: [`super::git_source`] (the ref resolved every build, the
//!   checkout kept by commit), scanned as a context;
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
use crate::solver::{
    ContentSelector, ContextSource, ExecError, Executor, GitSource, ImageSource, Job, LogStream, Op,
};
use crate::source::git_ref::GitRef;

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

/// The name of the main context's source (`ContextSource::name`).
pub const MAIN_CONTEXT: &str = "context";

/// Runs ops for one build.
pub struct BuildExecutor {
    cx: ExecContext,
    /// Local directories by context source name: the main context
    /// ([`MAIN_CONTEXT`]) and named ones.
    contexts: HashMap<String, ContextDir>,
    /// Base images by manifest digest (what the lowering resolved).
    images: HashMap<Digest, Image>,
    /// The contexts once scanned, to save their digest caches at the end.
    scanned: std::sync::Mutex<Vec<Arc<LocalContext>>>,
    /// The Git checkouts read, kept from `kiln builder prune` until the
    /// build (this executor) ends.
    checkouts: std::sync::Mutex<Vec<super::git_source::CheckoutLease>>,
}

impl BuildExecutor {
    /// An executor over `cx`, reading `context` (if the build has one)
    /// and the base `images` the lowering pinned.
    pub fn new(cx: ExecContext, context: Option<ContextDir>, images: Vec<Image>) -> BuildExecutor {
        BuildExecutor {
            cx,
            contexts: context
                .map(|c| (MAIN_CONTEXT.to_string(), c))
                .into_iter()
                .collect(),
            images: images
                .into_iter()
                .map(|i| (i.manifest_digest.clone(), i))
                .collect(),
            scanned: std::sync::Mutex::new(Vec::new()),
            checkouts: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// Adds the named contexts (`--build-context`), by the source name
    /// the lowering gives them.
    pub fn with_named(mut self, named: HashMap<String, ContextDir>) -> BuildExecutor {
        self.contexts.extend(named);
        self
    }

    /// Saves what the build learnt about the context's files (their
    /// digests by stat stamp) for the next build.
    pub fn finish(&self) {
        let scanned = self
            .scanned
            .lock()
            .map(|mut s| std::mem::take(&mut *s))
            .unwrap_or_default();
        for ctx in scanned {
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

    fn context(&self, source: &ContextSource) -> Result<Arc<LocalContext>, ExecError> {
        let ctx = self.contexts.get(&source.name).ok_or_else(|| {
            if source.name == MAIN_CONTEXT {
                ExecError::msg("this build has no context (it was given as -)")
            } else {
                ExecError::msg(format!("no context named {:?} was given", source.name))
            }
        })?;
        let what = if source.name == MAIN_CONTEXT {
            "loading the build context".to_string()
        } else {
            format!("loading {}", source.name)
        };
        self.scan(&ctx.dir, &ctx.ignore)
            .map_err(|e| ExecError::with_context(what, e))
    }

    /// Scans `dir` as a context (digests remembered by stat stamp) and
    /// keeps it to save those digests at the end.
    fn scan(
        &self,
        dir: &std::path::Path,
        ignore: &DockerIgnore,
    ) -> Result<Arc<LocalContext>, super::context::ContextError> {
        let cache = Arc::new(StatCacheFile::open(
            &self.cx.store.layout().context_cache(),
            dir,
        ));
        let ctx = Arc::new(LocalContext::scan(dir, ignore, cache)?);
        if let Ok(mut s) = self.scanned.lock() {
            s.push(ctx.clone());
        }
        Ok(ctx)
    }

    /// Checks a Git source out (or finds its commit's checkout) and scans
    /// it; the log says which commit and whether it was fetched.
    fn git(&self, source: &GitSource, job: &Job<'_, Artifact>) -> Result<Artifact, ExecError> {
        let git = GitRef::parse(&source.url).map_err(|e| ExecError::msg(Chain(&e).to_string()))?;
        let checkout = super::git_source::checkout(
            &self.cx.store,
            &git,
            source.keep_git_dir,
            source.checksum.as_deref(),
        )
        .map_err(|e| ExecError::msg(Chain(&e).to_string()))?;
        let what = if checkout.fetched {
            "fetched"
        } else {
            "unchanged, using the stored checkout of"
        };
        job.log.line(
            LogStream::Stderr,
            &format!("{what} commit {}", checkout.commit),
        );
        if let Ok(mut leases) = self.checkouts.lock() {
            leases.push(checkout.lease.clone());
        }
        let ctx = self
            .scan(&checkout.dir, &DockerIgnore::default())
            .map_err(|e| ExecError::with_context(format!("reading {}", git.shown()), e))?;
        Ok(Artifact::Context(ctx))
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
            Op::Context(source) => Ok(Artifact::Context(self.context(source)?)),
            Op::Git(source) => self.git(source, job),
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
