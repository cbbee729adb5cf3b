//! The container's root: an overlayfs of read-only layers and a fresh upper.
//!
//! Options: `redirect_dir=off,index=off,metacopy=off` always, whatever the
//! module defaults of the host, because the upper dir becomes a tar layer
//! and must hold real files, not redirects or metadata-only copies (docker's
//! overlay2 "native diff" rule; see KERNEL-NOTES).
//!
//! The classic mount(2) data string is limited to one page, which 200 long
//! layer paths overflow with a misleading `EINVAL`. So:
//!
//! 1. Linux ≥ 6.8: the new mount API, one `lowerdir+` per layer, no limit
//!    but overlayfs's own 500 layers;
//! 2. older kernels: mount(2) with each layer named by a short relative
//!    path — the layers are opened first and the mount is made with
//!    `/proc/self/fd` as working directory, so layer `N` is just `"N"` (a
//!    few bytes each instead of a full path).

use crate::error_chain::Chain;
use rustix::fs::{Mode, OFlags};
use rustix::mount::{self as rmount, FsMountFlags, FsOpenFlags, MountAttrFlags, MoveMountFlags};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// overlayfs's hard limit on lower layers (`OVL_MAX_STACK`).
pub const MAX_LAYERS: usize = 500;

/// Options that keep the upper dir a plain tree of files (see module doc).
const PLAIN_UPPER: [(&str, &str); 3] = [
    ("redirect_dir", "off"),
    ("index", "off"),
    ("metacopy", "off"),
];

/// Why the overlay could not be mounted.
#[derive(Debug, thiserror::Error)]
pub enum OverlayError {
    /// More layers than overlayfs can stack.
    #[error("{count} layers exceed overlayfs's limit of {MAX_LAYERS}")]
    TooManyLayers {
        /// Layers asked for.
        count: usize,
    },
    /// A layer directory could not be opened.
    #[error("failed to open layer {path}")]
    Layer {
        /// The layer directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The mount itself failed.
    #[error("failed to mount overlay on {target} ({method})")]
    Mount {
        /// The mount point.
        target: PathBuf,
        /// Which way was tried.
        method: &'static str,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// The layers and scratch dirs of one overlay mount.
#[derive(Debug, Clone)]
pub struct Overlay<'a> {
    /// Read-only layers, bottom first.
    pub lowers: &'a [PathBuf],
    /// Writable layer.
    pub upper: &'a Path,
    /// overlayfs's work dir (same filesystem as `upper`).
    pub work: &'a Path,
    /// Mount with `volatile` (Linux ≥ 5.10): never sync the upper
    /// filesystem. Without it, unmounting an overlay runs syncfs(2) on the
    /// whole upper filesystem — every dirty file of every process on that
    /// disk — which dominated container teardown in measurements (tens to
    /// hundreds of ms). Right for uppers that are thrown away (`--rm`, as
    /// podman does); a caller keeping the upper syncs what it keeps.
    pub volatile: bool,
}

/// The ways to mount, newest first; tests force each one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// fsopen/fsconfig(`lowerdir+`)/fsmount/move_mount (Linux ≥ 6.8).
    LowerdirPlus,
    /// mount(2) with layers named by fd number relative to /proc/self/fd.
    ShortNames,
}

impl Overlay<'_> {
    /// Mounts the overlay on `target` with the best method the kernel has.
    pub fn mount(&self, target: &Path) -> Result<(), OverlayError> {
        match self.mount_with(Method::LowerdirPlus, target) {
            Ok(()) => Ok(()),
            // ENOSYS: no new mount API; EINVAL: no `lowerdir+` (< 6.8).
            Err(OverlayError::Mount { source, .. })
                if matches!(source.raw_os_error(), Some(libc::ENOSYS | libc::EINVAL)) =>
            {
                tracing::debug!(
                    "lowerdir+ unavailable ({source}), using short layer names",
                    source = Chain(&source)
                );
                self.mount_with(Method::ShortNames, target)
            }
            Err(e) => Err(e),
        }
    }

    /// Mounts with one specific method.
    pub fn mount_with(&self, method: Method, target: &Path) -> Result<(), OverlayError> {
        if self.lowers.len() > MAX_LAYERS {
            return Err(OverlayError::TooManyLayers {
                count: self.lowers.len(),
            });
        }
        let result = match method {
            Method::LowerdirPlus => self.mount_lowerdir_plus(target),
            Method::ShortNames => return self.mount_short_names(target),
        };
        result.map_err(|source| OverlayError::Mount {
            target: target.to_path_buf(),
            method: "lowerdir+",
            source,
        })
    }

    fn mount_lowerdir_plus(&self, target: &Path) -> std::io::Result<()> {
        let fsfd = rmount::fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC)?;
        let fsfd = fsfd.as_fd();
        rmount::fsconfig_set_string(fsfd, "source", "overlay")?;
        // `lowerdir+` appends below the previous one: topmost layer first.
        for lower in self.lowers.iter().rev() {
            rmount::fsconfig_set_string(fsfd, "lowerdir+", lower.as_path())?;
        }
        rmount::fsconfig_set_string(fsfd, "upperdir", self.upper)?;
        rmount::fsconfig_set_string(fsfd, "workdir", self.work)?;
        for (key, value) in PLAIN_UPPER {
            rmount::fsconfig_set_string(fsfd, key, value)?;
        }
        if self.volatile {
            rmount::fsconfig_set_flag(fsfd, "volatile")?;
        }
        rmount::fsconfig_create(fsfd)?;
        let mnt = rmount::fsmount(fsfd, FsMountFlags::FSMOUNT_CLOEXEC, MountAttrFlags::empty())?;
        rmount::move_mount(
            mnt.as_fd(),
            "",
            rustix::fs::CWD,
            target,
            MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
        )?;
        Ok(())
    }

    fn mount_short_names(&self, target: &Path) -> Result<(), OverlayError> {
        let open = |path: &Path| {
            rustix::fs::open(
                path,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| OverlayError::Layer {
                path: path.to_path_buf(),
                source: e.into(),
            })
        };
        let lowers: Vec<OwnedFd> = self
            .lowers
            .iter()
            .rev()
            .map(|p| open(p))
            .collect::<Result<_, _>>()?;
        let upper = open(self.upper)?;
        let work = open(self.work)?;
        let names: Vec<String> = lowers.iter().map(|fd| fd.as_raw_fd().to_string()).collect();
        let mut data = format!(
            "lowerdir={},upperdir={},workdir={}",
            names.join(":"),
            upper.as_raw_fd(),
            work.as_raw_fd()
        );
        for (key, value) in PLAIN_UPPER {
            data.push_str(&format!(",{key}={value}"));
        }
        if self.volatile {
            data.push_str(",volatile");
        }
        let fail = |source: std::io::Error| OverlayError::Mount {
            target: target.to_path_buf(),
            method: "short names",
            source,
        };
        // The chdir below would be the whole process's: another thread
        // (parallel steps, the platforms of a multi-platform build)
        // resolving a relative path, or mounting at the same time, would
        // see /proc/self/fd or restore the wrong directory. unshare(2)
        // with CLONE_FS gives this thread its own cwd (a copy, so nothing
        // else changes for it) for the rest of its life.
        // SAFETY: unshare(2) with a flag takes no pointers.
        if unsafe { libc::unshare(libc::CLONE_FS) } != 0 {
            return Err(fail(std::io::Error::last_os_error()));
        }
        // The target is opened before the chdir so a relative `target`
        // still means what the caller meant.
        let target_fd = rustix::fs::open(target, OFlags::PATH | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| fail(e.into()))?;
        let cwd = std::env::current_dir().ok();
        rustix::process::chdir("/proc/self/fd").map_err(|e| fail(e.into()))?;
        let result = nix::mount::mount(
            Some("overlay"),
            format!("/proc/self/fd/{}", target_fd.as_raw_fd()).as_str(),
            Some("overlay"),
            nix::mount::MsFlags::empty(),
            Some(data.as_str()),
        );
        if let Some(cwd) = cwd {
            let _ = std::env::set_current_dir(cwd);
        }
        result.map_err(|e| fail(e.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `f` in a private mount namespace on a fresh thread, so test
    /// mounts vanish with the thread and never touch the host's table.
    fn in_mount_ns<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
        std::thread::spawn(move || {
            nix::sched::unshare(
                nix::sched::CloneFlags::CLONE_NEWNS | nix::sched::CloneFlags::CLONE_FS,
            )
            .expect("unshare mount namespace (tests run as root)");
            nix::mount::mount(
                None::<&str>,
                "/",
                None::<&str>,
                nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_PRIVATE,
                None::<&str>,
            )
            .unwrap();
            f()
        })
        .join()
        .unwrap()
    }

    /// Builds `count` layers with long paths; layer i holds file `i` and
    /// overrides `top` with its index.
    fn layers(dir: &Path, count: usize) -> Vec<PathBuf> {
        (0..count)
            .map(|i| {
                let p = dir.join(format!(
                    "layer-with-a-deliberately-long-name-{i:04}-{}",
                    "x".repeat(40)
                ));
                std::fs::create_dir_all(&p).unwrap();
                std::fs::write(p.join(i.to_string()), "").unwrap();
                std::fs::write(p.join("top"), i.to_string()).unwrap();
                p
            })
            .collect()
    }

    fn check_mount(method: Method, count: usize) {
        let dir = tempfile::tempdir().unwrap();
        let lowers = layers(dir.path(), count);
        let (upper, work, merged) = (
            dir.path().join("u"),
            dir.path().join("w"),
            dir.path().join("m"),
        );
        for d in [&upper, &work, &merged] {
            std::fs::create_dir(d).unwrap();
        }
        let merged2 = merged.clone();
        let top = in_mount_ns(move || {
            let ov = Overlay {
                lowers: &lowers,
                upper: &upper,
                work: &work,
                volatile: method == Method::ShortNames,
            };
            ov.mount_with(method, &merged2).unwrap();
            let top = std::fs::read_to_string(merged2.join("top")).unwrap();
            assert!(merged2.join("0").exists() && merged2.join((count - 1).to_string()).exists());
            std::fs::write(merged2.join("new"), "x").unwrap();
            let opts = std::fs::read_to_string("/proc/thread-self/mountinfo").unwrap();
            // Ours, not an overlay some concurrent test or build mounted
            // (the namespace started as a copy of the host's).
            let mount_point = merged2.to_str().unwrap();
            let line = opts
                .lines()
                .find(|l| l.contains(" overlay ") && l.split(' ').nth(4) == Some(mount_point))
                .unwrap()
                .to_string();
            // Options equal to the module defaults are not listed; none of
            // the three may be on, and volatile shows when asked for.
            for on in ["redirect_dir=on", "metacopy=on", "index=on"] {
                assert!(!line.contains(on), "{line}");
            }
            assert_eq!(
                line.contains("volatile"),
                method == Method::ShortNames,
                "{line}"
            );
            nix::mount::umount2(&merged2, nix::mount::MntFlags::MNT_DETACH).unwrap();
            top
        });
        assert_eq!(
            top,
            (count - 1).to_string(),
            "the last layer must be on top"
        );
        assert!(
            dir.path().join("u/new").exists(),
            "writes land in the upper dir"
        );
        assert!(!merged.join("top").exists(), "nothing left mounted");
    }

    #[test]
    fn lowerdir_plus_mounts_200_layers() {
        check_mount(Method::LowerdirPlus, 200);
    }

    #[test]
    fn short_names_mount_200_layers() {
        check_mount(Method::ShortNames, 200);
    }

    #[test]
    fn too_many_layers_is_refused() {
        let lowers = vec![PathBuf::from("/x"); MAX_LAYERS + 1];
        let ov = Overlay {
            lowers: &lowers,
            upper: Path::new("/u"),
            work: Path::new("/w"),
            volatile: false,
        };
        let err = ov
            .mount_with(Method::LowerdirPlus, Path::new("/m"))
            .unwrap_err();
        assert!(err.to_string().contains("501 layers"));
    }
}
