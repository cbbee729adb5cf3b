//! The local build context as a step input: scanned once per build with
//! `.dockerignore` applied, digested per selection for cache keys, and
//! shown to copies as a directory that holds only what is not ignored.
//!
//! Without ignore patterns that directory is the context itself. With
//! them, it is a hard-linked mirror of the kept entries, made once per
//! build on first use (BuildKit transfers only the kept files into its
//! own snapshot; linking costs one `link(2)` per file, not a copy). Copies
//! only read from it, so sharing inodes with the user's files is safe.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use crate::context::digest::{ContentDigestError, ContextDigester, Selection};
use crate::context::dockerignore::{DockerIgnore, IgnoreError};
use crate::context::scan::{self, EntryKind, PathFilter, ScanError};
use crate::context::stat_cache::{FileDigestCache, StatCacheFile};
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
    #[error("mirroring the build context into {path}: {source}")]
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
    mirror: OnceLock<Result<PathBuf, String>>,
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
            mirror: OnceLock::new(),
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

    /// The content digest of the kept regular file at `rel` (relative to
    /// the context root); `None` if there is none or it cannot be read.
    pub fn file_digest(&self, rel: &str) -> Option<Digest> {
        self.digester.file_digest(rel).ok().flatten()
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
        let made = self.mirror.get_or_init(|| {
            let dir = scratch().map_err(|e| e.to_string())?;
            self.make_mirror(&dir).map_err(|e| e.to_string())?;
            Ok(dir)
        });
        made.clone().map_err(|m| ContextError::Mirror {
            path: self.dir.clone(),
            source: std::io::Error::other(m),
        })
    }

    fn make_mirror(&self, out: &Path) -> Result<(), ContextError> {
        let err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| ContextError::Mirror { path, source }
        };
        std::fs::create_dir_all(out).map_err(err(out))?;
        let tree = self.digester.tree();
        let mut dirs = Vec::new();
        for e in tree.entries() {
            let src = tree.host_path(&e.path);
            let dst = out.join(&e.path);
            match e.kind {
                EntryKind::Dir => {
                    std::fs::create_dir(&dst).map_err(err(&dst))?;
                    std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(e.mode))
                        .map_err(err(&dst))?;
                    dirs.push((dst.clone(), e.mtime_ns));
                }
                // Another filesystem: copy instead (keeping the mtime the
                // copy gives the layer).
                EntryKind::File if std::fs::hard_link(&src, &dst).is_err() => {
                    std::fs::copy(&src, &dst).map_err(err(&dst))?;
                    let t = entry_mtime(e.mtime_ns);
                    crate::exec::attrs::set_times(&dst, t, t).map_err(err(&dst))?;
                }
                EntryKind::File => {}
                EntryKind::Symlink => {
                    let target = e.link_target.clone().unwrap_or_default();
                    std::os::unix::fs::symlink(target, &dst).map_err(err(&dst))?;
                    // A new link has the current time; COPY keeps the
                    // source's (as BuildKit does).
                    let t = entry_mtime(e.mtime_ns);
                    crate::exec::attrs::set_times(&dst, t, t).map_err(err(&dst))?;
                }
                // Devices, fifos and sockets are not sent as build context.
                _ => {}
            }
            if e.kind != EntryKind::File {
                let _ = std::os::unix::fs::lchown(&dst, Some(e.uid), Some(e.gid));
            }
        }
        // Directory times last: creating entries changed them.
        for (dir, mtime_ns) in dirs.into_iter().rev() {
            let t = entry_mtime(mtime_ns);
            let _ = crate::exec::attrs::set_times(&dir, t, t);
        }
        if let Ok(root) = std::fs::metadata(&self.dir) {
            let _ = std::fs::set_permissions(
                out,
                std::fs::Permissions::from_mode(root.mode() & 0o7777),
            );
        }
        Ok(())
    }

    /// Saves the remembered file digests for the next build.
    pub fn save_digests(&self) {
        let stats = self.digester.stats();
        tracing::debug!(
            files_read = stats.files_read,
            bytes_read = stats.bytes_read,
            cache_hits = stats.cache_hits,
            "context digests"
        );
        if let Err(e) = self.stat_cache.save() {
            tracing::warn!("saving the context digest cache: {e}");
        }
    }
}

/// A scanned entry's mtime as a settable time.
fn entry_mtime(mtime_ns: i64) -> crate::exec::attrs::Time {
    crate::exec::attrs::Time {
        sec: mtime_ns.div_euclid(1_000_000_000),
        nsec: mtime_ns.rem_euclid(1_000_000_000),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        use std::os::unix::fs::MetadataExt;
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
}
