//! The local build context as a step input: scanned once per build with
//! `.dockerignore` applied, digested per selection for cache keys, and
//! shown to copies as a directory that holds only what is not ignored.
//!
//! Without ignore patterns that directory is the context itself. With
//! them, it is a [`FilteredView`] of the kept entries, made once per build
//! on first use (BuildKit transfers only the kept files into its own
//! snapshot): an overlay that hides the rest and never touches the user's
//! inodes.

use crate::error_chain::Chain;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use crate::context::digest::{ContentDigestError, ContextDigester, Selection};
use crate::context::dockerignore::{DockerIgnore, IgnoreError};
use crate::context::scan::{self, PathFilter, ScanError};
use crate::context::stat_cache::{FileDigestCache, StatCacheFile};
use crate::exec::context_view::FilteredView;
use crate::image::Digest;
use crate::solver::ContentSelector;

/// Why the context cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error(transparent)]
    Scan(#[from] ScanError),
    #[error(transparent)]
    Digest(#[from] ContentDigestError),
    #[error(transparent)]
    Ignore(#[from] IgnoreError),
    #[error("making the filtered view of the build context {path}")]
    Mirror {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// `.dockerignore` rules as a scan filter.
struct IgnoreFilter<'a>(&'a DockerIgnore);

impl PathFilter for IgnoreFilter<'_> {
    fn excluded(&self, rel: &str) -> bool {
        self.0.matches(rel)
    }
    fn can_skip_dir(&self, rel: &str) -> bool {
        self.0.can_skip_dir(rel)
    }
}

/// `--exclude` patterns of a copy as a digest filter.
struct PatternFilter(DockerIgnore);

impl PathFilter for PatternFilter {
    fn excluded(&self, rel: &str) -> bool {
        self.0.matches(rel)
    }
    fn can_skip_dir(&self, rel: &str) -> bool {
        self.0.can_skip_dir(rel)
    }
}

/// A scanned build context.
pub struct LocalContext {
    dir: PathBuf,
    filtered: bool,
    digester: ContextDigester,
    stat_cache: Arc<StatCacheFile>,
    view: OnceLock<Result<FilteredView, String>>,
}

impl std::fmt::Debug for LocalContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LocalContext({})", self.dir.display())
    }
}

impl LocalContext {
    /// Scans `dir` with `ignore` applied; file digests are remembered
    /// across builds in `stat_cache`.
    pub fn scan(
        dir: &Path,
        ignore: &DockerIgnore,
        stat_cache: Arc<StatCacheFile>,
    ) -> Result<LocalContext, ContextError> {
        let tree = if ignore.is_empty() {
            scan::scan(dir, &scan::IncludeAll)?
        } else {
            scan::scan(dir, &IgnoreFilter(ignore))?
        };
        let cache: Arc<dyn FileDigestCache> = stat_cache.clone();
        Ok(LocalContext {
            dir: dir.to_path_buf(),
            filtered: !ignore.is_empty(),
            digester: ContextDigester::new(Arc::new(tree), cache),
            stat_cache,
            view: OnceLock::new(),
        })
    }

    /// The content digest of what `selector` picks (the cache key part of
    /// a step reading it).
    pub fn digest(&self, selector: &ContentSelector) -> Result<Digest, ContextError> {
        let filter = if selector.exclude.is_empty() {
            None
        } else {
            Some(PatternFilter(DockerIgnore::new(&selector.exclude)?))
        };
        let selection = Selection {
            path: &selector.path,
            wildcard: selector.wildcard,
            follow_links: selector.follow_links,
            filter: filter.as_ref().map(|f| f as &dyn PathFilter),
        };
        Ok(self.digester.digest(&selection)?)
    }

    /// The kept regular files `selector` picks, with their content digests
    /// (memoized by [`Self::digest`], so cheap after it), at most `limit`,
    /// by path.
    pub fn selected_files(
        &self,
        selector: &ContentSelector,
        limit: usize,
    ) -> Result<Vec<(String, Digest)>, ContextError> {
        let selection = Selection {
            path: &selector.path,
            wildcard: selector.wildcard,
            follow_links: selector.follow_links,
            filter: None,
        };
        let mut files = Vec::new();
        for path in self.digester.selected_paths(&selection)? {
            if files.len() == limit {
                break;
            }
            if let Some(d) = self.file_digest(&path) {
                files.push((path, d));
            }
        }
        Ok(files)
    }

    /// The content digest of the kept regular file at `rel` (relative to
    /// the context root); `None` if there is none or it cannot be read.
    pub fn file_digest(&self, rel: &str) -> Option<Digest> {
        self.digester.file_digest(rel).ok().flatten()
    }

    /// How much file content digesting has read so far, and how many
    /// digests came from the stat cache.
    pub fn digest_stats(&self) -> crate::context::digest::DigestStats {
        self.digester.stats()
    }

    /// A directory showing exactly the context's kept files, under
    /// `scratch` if a mirror has to be made.
    pub fn source_root(
        &self,
        scratch: impl FnOnce() -> std::io::Result<PathBuf>,
    ) -> Result<PathBuf, ContextError> {
        if !self.filtered {
            return Ok(self.dir.clone());
        }
        let made = self.view.get_or_init(|| {
            let dir = scratch().map_err(|e| Chain(&e).to_string())?;
            FilteredView::new(self.digester.tree(), &dir).map_err(|e| Chain(&e).to_string())
        });
        match made {
            Ok(view) => Ok(view.path().to_path_buf()),
            Err(m) => Err(ContextError::Mirror {
                path: self.dir.clone(),
                source: std::io::Error::other(m.clone()),
            }),
        }
    }

    /// Saves the remembered file digests for the next build.
    pub fn save_digests(&self) {
        let stats = self.digest_stats();
        tracing::debug!(
            files_read = stats.files_read,
            bytes_read = stats.bytes_read,
            cache_hits = stats.cache_hits,
            "context digests"
        );
        if let Err(e) = self.stat_cache.save() {
            tracing::warn!("saving the context digest cache: {e}", e = Chain(&e));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn ignored_files_are_neither_digested_nor_mirrored() {
        let t = tempfile::tempdir().unwrap();
        let ctx = t.path().join("ctx");
        std::fs::create_dir_all(ctx.join("src")).unwrap();
        std::fs::write(ctx.join("src/a.rs"), "a").unwrap();
        std::fs::write(ctx.join("secret.key"), "k").unwrap();
        std::fs::write(ctx.join("src/b.log"), "log").unwrap();
        let ignore = DockerIgnore::new(["*.key", "**/*.log"]).unwrap();
        let cache = Arc::new(StatCacheFile::load(t.path().join("cache")));
        let c = LocalContext::scan(&ctx, &ignore, cache).unwrap();
        let all = c.digest(&ContentSelector::all()).unwrap();
        std::fs::write(ctx.join("src/b.log"), "changed").unwrap();
        let c2 = LocalContext::scan(
            &ctx,
            &ignore,
            Arc::new(StatCacheFile::load(t.path().join("cache2"))),
        )
        .unwrap();
        assert_eq!(c2.digest(&ContentSelector::all()).unwrap(), all);
        let mirror = c2.source_root(|| Ok(t.path().join("mirror"))).unwrap();
        assert!(mirror.join("src/a.rs").is_file());
        assert!(!mirror.join("secret.key").exists());
        assert!(!mirror.join("src/b.log").exists());
    }

    #[test]
    fn the_mirror_keeps_symlink_and_directory_mtimes() {
        let t = tempfile::tempdir().unwrap();
        let ctx = t.path().join("ctx");
        std::fs::create_dir_all(ctx.join("d")).unwrap();
        std::fs::write(ctx.join("d/f"), "f").unwrap();
        std::fs::write(ctx.join("skip.log"), "x").unwrap();
        std::os::unix::fs::symlink("d/f", ctx.join("link")).unwrap();
        let old = crate::exec::attrs::Time {
            sec: 1_000_000,
            nsec: 5,
        };
        for p in ["link", "d"] {
            crate::exec::attrs::set_times(&ctx.join(p), old, old).unwrap();
        }
        let ignore = DockerIgnore::new(["*.log"]).unwrap();
        let cache = Arc::new(StatCacheFile::load(t.path().join("cache")));
        let c = LocalContext::scan(&ctx, &ignore, cache).unwrap();
        let mirror = c.source_root(|| Ok(t.path().join("mirror"))).unwrap();
        for p in ["link", "d"] {
            let md = std::fs::symlink_metadata(mirror.join(p)).unwrap();
            assert_eq!((md.mtime(), md.mtime_nsec()), (old.sec, old.nsec), "{p}");
        }
    }

    /// Issue 9, defect 4: the view of a context with a `.dockerignore` used
    /// to hard-link the user's files, which changed their ctime, so the
    /// next build trusted none of its remembered digests and re-read the
    /// whole context.
    #[test]
    fn a_filtered_view_keeps_the_next_builds_digest_cache() {
        let t = tempfile::tempdir().unwrap();
        let ctx = t.path().join("ctx");
        std::fs::create_dir_all(ctx.join("src")).unwrap();
        for i in 0..20 {
            std::fs::write(ctx.join(format!("src/{i}.rs")), format!("file {i}")).unwrap();
        }
        std::fs::write(ctx.join("skip.log"), "x").unwrap();
        crate::context::digest::settle(&ctx);
        let stamp = |p: &str| {
            let md = std::fs::symlink_metadata(ctx.join(p)).unwrap();
            (
                md.ino(),
                md.nlink(),
                md.ctime(),
                md.ctime_nsec(),
                md.mtime(),
                md.mtime_nsec(),
            )
        };
        let before: Vec<_> = (0..20).map(|i| stamp(&format!("src/{i}.rs"))).collect();
        let ignore = DockerIgnore::new(["*.log"]).unwrap();
        let cache_path = t.path().join("cache");
        {
            let cache = Arc::new(StatCacheFile::load(cache_path.clone()));
            let c = LocalContext::scan(&ctx, &ignore, cache).unwrap();
            c.digest(&ContentSelector::all()).unwrap();
            assert_eq!(c.digest_stats().files_read, 20);
            let view = c.source_root(|| Ok(t.path().join("scratch"))).unwrap();
            assert_eq!(
                std::fs::read_to_string(view.join("src/3.rs")).unwrap(),
                "file 3"
            );
            assert!(!view.join("skip.log").exists());
            c.save_digests();
        }
        let after: Vec<_> = (0..20).map(|i| stamp(&format!("src/{i}.rs"))).collect();
        assert_eq!(before, after, "the view changed the user's inodes");
        let cache = Arc::new(StatCacheFile::load(cache_path));
        let c = LocalContext::scan(&ctx, &ignore, cache).unwrap();
        c.digest(&ContentSelector::all()).unwrap();
        let stats = c.digest_stats();
        assert_eq!((stats.files_read, stats.cache_hits), (0, 20));
    }

    #[test]
    fn writes_through_the_view_never_reach_the_context() {
        let t = tempfile::tempdir().unwrap();
        let ctx = t.path().join("ctx");
        std::fs::create_dir_all(ctx.join("d")).unwrap();
        std::fs::write(ctx.join("d/kept"), "kept").unwrap();
        std::fs::write(ctx.join("d/secret.key"), "k").unwrap();
        let ignore = DockerIgnore::new(["**/*.key"]).unwrap();
        let cache = Arc::new(StatCacheFile::load(t.path().join("cache")));
        let c = LocalContext::scan(&ctx, &ignore, cache).unwrap();
        let view = c.source_root(|| Ok(t.path().join("scratch"))).unwrap();
        assert!(!view.join("d/secret.key").exists());
        std::fs::write(view.join("d/kept"), "changed").unwrap();
        std::fs::write(view.join("d/new"), "new").unwrap();
        std::fs::remove_file(view.join("d/kept")).unwrap();
        assert_eq!(std::fs::read_to_string(ctx.join("d/kept")).unwrap(), "kept");
        assert!(!ctx.join("d/new").exists());
        assert_eq!(
            std::fs::read_to_string(ctx.join("d/secret.key")).unwrap(),
            "k"
        );
        drop(c);
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(!mounts.contains(&t.path().join("scratch").display().to_string()));
    }
}
