//! `RUN --mount=type=cache`: directories kept across builds under
//! `<root>/cache-mounts/<id>`, with BuildKit's sharing modes.
//!
//! - `shared` (default): every concurrent user gets the same directory;
//! - `locked`: users take turns (an exclusive `flock` on `<id>.lock`);
//! - `private`: a user that finds the directory busy gets another one
//!   (`<id>.private-N`), itself kept for later builds.
//!
//! A new cache directory gets `uid`/`gid`/`mode` (default root, 0755) and,
//! with `from=`, a copy of that source's content (such a cache is one per
//! id and source, [`seeded_id`]); it is built under a
//! temporary name and renamed into place, so a half-made cache is never
//! used. The cache is not part of any layer and not in any cache key.

use crate::error_chain::Chain;
use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::cache::StoreLayout;
use crate::solver::CacheSharing;

/// Where cache mounts live (`<root>/cache-mounts`).
#[derive(Clone)]
pub struct CacheMounts {
    root: PathBuf,
    /// Content for a cache id the store lacks (`--cache-from` with
    /// exported cache mounts).
    restore: Option<std::sync::Arc<dyn CacheRestore>>,
}

impl std::fmt::Debug for CacheMounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheMounts")
            .field("root", &self.root)
            .field("restore", &self.restore.is_some())
            .finish()
    }
}

/// Fills a new cache directory from elsewhere (an imported build cache),
/// the first time a RUN mounts an id this store has no directory for.
pub trait CacheRestore: Send + Sync {
    /// Puts the content of cache `id` into the empty directory `dir`;
    /// returns whether there was any (false leaves `dir` empty). Must not
    /// fail the RUN: a cache that cannot be had is simply not restored.
    fn restore(&self, id: &str, dir: &Path) -> bool;
}

/// A cache directory in use; the lock (if any) is released on drop.
#[derive(Debug)]
pub struct CacheMountLease {
    /// The directory to mount.
    pub dir: PathBuf,
    _lock: Option<File>,
}

/// How a new cache directory starts.
#[derive(Debug, Clone, Default)]
pub struct CacheInit<'a> {
    /// Owner uid of the new directory (default 0).
    pub uid: Option<u32>,
    /// Owner gid of the new directory (default 0).
    pub gid: Option<u32>,
    /// Its mode (default 0755).
    pub mode: Option<u32>,
    /// Content copied in when the directory is created.
    pub seed: Option<&'a Path>,
}

/// The id of the cache a mount with `from=` uses: `id` and what seeded it
/// (`source`: the source's top chain ID and the path in it), as BuildKit
/// keys such a cache by its id and the source's ref (moby/buildkit
/// solver/llbsolver/mounts/mount.go `getRefCacheDir`: `id + ":" +
/// ref.ID()`). A changed source so starts a new cache instead of serving
/// one seeded from old content; the same source finds its own again.
pub fn seeded_id(id: &str, source: &str) -> String {
    let digest = crate::image::Digest::sha256_of(source.as_bytes());
    format!("{id}:{}", &digest.hex()[..16])
}

/// A cache id as a file name: `[A-Za-z0-9._-]` kept, other bytes `%XX`.
pub fn encode_id(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    // `.` and `..` must not name the parent directories.
    if out.chars().all(|c| c == '.') {
        out = out.replace('.', "%2E");
    }
    out
}

impl CacheMounts {
    /// Cache mounts of the store laid out as `layout`.
    pub fn new(layout: &StoreLayout) -> CacheMounts {
        CacheMounts {
            root: layout.cache_mounts(),
            restore: None,
        }
    }

    /// The same, restoring new cache ids through `restore` (only ids with
    /// no `from=` seed: a seeded cache is defined by its source).
    pub fn with_restore(mut self, restore: std::sync::Arc<dyn CacheRestore>) -> CacheMounts {
        self.restore = Some(restore);
        self
    }

    /// The directory cache `id` has in this store, if it has one (the
    /// shared/locked one; `private` extras are not exported).
    pub fn existing_dir(&self, id: &str) -> Option<PathBuf> {
        let dir = self.root.join(encode_id(id));
        dir.is_dir().then_some(dir)
    }

    /// The directory for cache `id`, acquired with `sharing`'s rules.
    pub fn acquire(
        &self,
        id: &str,
        sharing: CacheSharing,
        init: &CacheInit<'_>,
    ) -> std::io::Result<CacheMountLease> {
        std::fs::create_dir_all(&self.root)?;
        let name = encode_id(id);
        let base = self.root.join(&name);
        match sharing {
            CacheSharing::Shared => {
                self.ensure(id, &base, init)?;
                Ok(CacheMountLease {
                    dir: base,
                    _lock: None,
                })
            }
            CacheSharing::Locked => {
                self.ensure(id, &base, init)?;
                let lock = self.lock_file(&name)?;
                // Waits for the current user; the lock goes with the file.
                flock(&lock, rustix::fs::FlockOperation::LockExclusive)?;
                Ok(CacheMountLease {
                    dir: base,
                    _lock: Some(lock),
                })
            }
            CacheSharing::Private => {
                for n in 0u32.. {
                    let candidate = if n == 0 {
                        name.clone()
                    } else {
                        format!("{name}.private-{n}")
                    };
                    let lock = self.lock_file(&candidate)?;
                    if flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_ok() {
                        let dir = self.root.join(&candidate);
                        self.ensure(id, &dir, init)?;
                        return Ok(CacheMountLease {
                            dir,
                            _lock: Some(lock),
                        });
                    }
                }
                unreachable!("u32 range of private caches exhausted")
            }
        }
    }

    fn lock_file(&self, name: &str) -> std::io::Result<File> {
        File::options()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(self.root.join(format!("{name}.lock")))
    }

    /// Creates `dir` if missing, atomically (temp name + rename): from the
    /// seed, else from an imported cache of `id`, else empty.
    fn ensure(&self, id: &str, dir: &Path, init: &CacheInit<'_>) -> std::io::Result<()> {
        if dir.is_dir() {
            return Ok(());
        }
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let tmp = dir.with_extension(format!("tmp-{}-{nanos}", std::process::id()));
        std::fs::create_dir(&tmp)?;
        let result = (|| {
            if let Some(seed) = init.seed {
                crate::cache::copy_tree(seed, &tmp)?;
            } else if let Some(restore) = &self.restore {
                if restore.restore(id, &tmp) {
                    tracing::debug!("cache mount {id} restored from an imported cache");
                }
            }
            std::os::unix::fs::lchown(
                &tmp,
                Some(init.uid.unwrap_or(0)),
                Some(init.gid.unwrap_or(0)),
            )?;
            std::fs::set_permissions(
                &tmp,
                std::fs::Permissions::from_mode(init.mode.unwrap_or(0o755)),
            )?;
            std::fs::rename(&tmp, dir)
        })();
        if result.is_err() || tmp.exists() {
            let _ = crate::cache::scratch::remove_tree(&tmp);
        }
        match result {
            // Someone else made it first: theirs is as good.
            Err(e) if dir.is_dir() => {
                tracing::debug!(
                    "cache mount {} appeared concurrently: {e}",
                    dir.display(),
                    e = Chain(&e)
                );
                Ok(())
            }
            other => other,
        }
    }
}

fn flock(file: &File, op: rustix::fs::FlockOperation) -> std::io::Result<()> {
    Ok(rustix::fs::flock(file, op)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn ids_become_safe_names() {
        assert_eq!(encode_id("/root/.cache"), "%2Froot%2F.cache");
        assert_eq!(encode_id("go-build_1"), "go-build_1");
        assert_eq!(encode_id(".."), "%2E%2E");
    }

    #[test]
    fn sharing_modes() {
        let t = tempfile::tempdir().unwrap();
        let mounts = CacheMounts::new(&StoreLayout::new(t.path()));
        let seed = t.path().join("seed");
        std::fs::create_dir(&seed).unwrap();
        std::fs::write(seed.join("f"), "seeded").unwrap();
        let init = CacheInit {
            mode: Some(0o700),
            uid: Some(1000),
            seed: Some(&seed),
            ..CacheInit::default()
        };
        let a = mounts.acquire("c", CacheSharing::Shared, &init).unwrap();
        let b = mounts.acquire("c", CacheSharing::Shared, &init).unwrap();
        assert_eq!(a.dir, b.dir);
        let md = std::fs::metadata(&a.dir).unwrap();
        assert_eq!((md.mode() & 0o777, md.uid()), (0o700, 1000));
        assert_eq!(std::fs::read_to_string(a.dir.join("f")).unwrap(), "seeded");
        let p1 = mounts
            .acquire("p", CacheSharing::Private, &CacheInit::default())
            .unwrap();
        let p2 = mounts
            .acquire("p", CacheSharing::Private, &CacheInit::default())
            .unwrap();
        assert_ne!(p1.dir, p2.dir);
        drop(p1);
        let p3 = mounts
            .acquire("p", CacheSharing::Private, &CacheInit::default())
            .unwrap();
        assert_eq!(p3.dir, t.path().join("cache-mounts/p"));
        let l = mounts
            .acquire("l", CacheSharing::Locked, &CacheInit::default())
            .unwrap();
        assert!(l.dir.is_dir());
    }
}
