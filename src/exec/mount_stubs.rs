//! The mount points a RUN's runtime made in the rootfs, removed from its
//! upper dir afterwards exactly where BuildKit removes them.
//!
//! moby/buildkit `executor/stubs.go` (`MountStubsCleaner`, called by
//! `executor/runcexecutor/executor.go` with the exec's mounts): before the
//! run it resolves `/etc/resolv.conf`, `/etc/hosts` and each `--mount`
//! target inside the rootfs (continuity `fs.RootPath`: symlinks followed,
//! clamped at the root) and notes that path and, as `client/llb/exec.go`
//! always sets `RemoveMountStubsRecursive`, each parent up to the first
//! one that exists. After the run it removes those that are an empty
//! directory or an empty file, unless their parent no longer resolves to
//! itself (a symlink the command planted), and puts the parent's times
//! back (BuildKit issue #3148). Each missing parent is noted after every
//! stub below it, so removing deepest first, as kiln does, removes the
//! same set.
//!
//! `/proc`, `/dev` and `/sys` are not in the list: runc makes them in a
//! rootfs that lacks them and they stay in BuildKit's layer. Cleaning them
//! too was proposed and turned down because it changes existing output
//! (moby/buildkit PR #7033, replaced by #7039, which instead recreates
//! `/sys` for rootless workers, `executor/stubs.go` `CreateMountStubs`, so
//! rootful and rootless layers agree).

use crate::error_chain::Chain;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use super::attrs::{set_times, Time};
use super::parent_fs::ParentFs;

/// Symlinks followed in one path at most (securejoin's limit).
const MAX_SYMLINKS: usize = 255;

/// Removes from `upper` the stubs of `points` (absolute container paths)
/// that `base`, the rootfs before the run, did not have.
pub fn remove(upper: &Path, base: &dyn ParentFs, points: &[String]) {
    let mut stubs: Vec<PathBuf> = Vec::new();
    for point in points {
        let mut rel = match resolve(base, Path::new(point)) {
            Ok(rel) => rel,
            Err(e) => {
                tracing::debug!("mount point {point}: {e}", e = Chain(&e));
                continue;
            }
        };
        while !rel.as_os_str().is_empty() && matches!(base.locate(&rel), Ok(None)) {
            stubs.push(rel.clone());
            rel.pop();
        }
    }
    stubs.sort_by(|a, b| {
        let (a, b) = (a.as_os_str(), b.as_os_str());
        b.len().cmp(&a.len()).then(a.cmp(b))
    });
    stubs.dedup();
    for rel in stubs {
        if let Err(e) = remove_one(upper, &rel) {
            tracing::warn!("removing mount stub /{}: {e}", rel.display(), e = Chain(&e));
        }
    }
}

/// Removes `upper/rel` if it is an empty file or directory below real
/// directories, keeping its parent's times.
fn remove_one(upper: &Path, rel: &Path) -> io::Result<()> {
    // Every directory on the way must be one: never follow a symlink the
    // command made out of the upper dir.
    let mut dir = upper.to_path_buf();
    if let Some(parent) = rel.parent() {
        for name in parent.components() {
            dir.push(name);
            match std::fs::symlink_metadata(&dir) {
                Ok(md) if md.is_dir() => {}
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }
    let host = upper.join(rel);
    let md = match std::fs::symlink_metadata(&host) {
        Ok(md) => md,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let empty = if md.is_dir() {
        std::fs::read_dir(&host)?.next().is_none()
    } else {
        md.len() == 0
    };
    if !empty {
        return Ok(());
    }
    let times = std::fs::symlink_metadata(&dir)?;
    if md.is_dir() {
        std::fs::remove_dir(&host)?;
    } else {
        std::fs::remove_file(&host)?;
    }
    set_times(
        &dir,
        Time {
            sec: times.atime(),
            nsec: times.atime_nsec(),
        },
        Time {
            sec: times.mtime(),
            nsec: times.mtime_nsec(),
        },
    )
}

/// `path` resolved in `base` as `fs.RootPath` does: symlinks followed
/// with `base`'s root as `/`, `..` clamped there, missing components
/// taken as they are. The result is relative to the root.
fn resolve(base: &dyn ParentFs, path: &Path) -> io::Result<PathBuf> {
    let names = |p: &Path| -> Vec<PathBuf> {
        p.components()
            .filter_map(|c| match c {
                Component::Normal(n) => Some(PathBuf::from(n)),
                Component::ParentDir => Some(PathBuf::from("..")),
                _ => None,
            })
            .collect()
    };
    let mut pending = names(path);
    pending.reverse();
    let mut resolved = PathBuf::new();
    let mut followed = 0;
    while let Some(name) = pending.pop() {
        if name.as_os_str() == ".." {
            resolved.pop();
            continue;
        }
        let candidate = resolved.join(&name);
        let link = match base.locate(&candidate)? {
            Some(host) if std::fs::symlink_metadata(&host)?.file_type().is_symlink() => {
                std::fs::read_link(&host)?
            }
            _ => {
                resolved = candidate;
                continue;
            }
        };
        followed += 1;
        if followed > MAX_SYMLINKS {
            return Err(io::Error::from_raw_os_error(libc::ELOOP));
        }
        if link.is_absolute() {
            resolved = PathBuf::new();
        }
        let mut more = names(&link);
        more.reverse();
        pending.extend(more);
    }
    Ok(resolved)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::parent_fs::LayerStack;

    fn walk(dir: &Path) -> Vec<String> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let rel = p.file_name().unwrap().to_string_lossy().into_owned();
            out.push(rel.clone());
            if std::fs::symlink_metadata(&p).unwrap().is_dir() {
                out.extend(walk(&p).into_iter().map(|c| format!("{rel}/{c}")));
            }
        }
        out.sort();
        out
    }

    fn points(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn stubs_go_and_real_writes_stay() {
        let t = tempfile::tempdir().unwrap();
        let (lower, upper) = (t.path().join("lower"), t.path().join("upper"));
        std::fs::create_dir_all(lower.join("etc")).unwrap();
        std::fs::write(lower.join("etc/passwd"), "root").unwrap();
        // Stubs: /etc/hosts (new file in a copied-up dir), /mnt/a/b (a
        // mount target with its new parents), /out/t (a target whose new
        // parent the command also wrote into).
        std::fs::create_dir_all(upper.join("etc")).unwrap();
        std::fs::write(upper.join("etc/hosts"), "").unwrap();
        std::fs::create_dir_all(upper.join("mnt/a/b")).unwrap();
        std::fs::create_dir_all(upper.join("out/t")).unwrap();
        std::fs::write(upper.join("out/real"), "x").unwrap();
        // What runc makes and BuildKit keeps: /proc, /dev, /sys (not
        // points); a new empty dir that is not a mount point.
        for d in ["proc", "dev", "sys", "made"] {
            std::fs::create_dir_all(upper.join(d)).unwrap();
        }
        let old = Time {
            sec: 1_000_000_000,
            nsec: 0,
        };
        set_times(&upper.join("etc"), old, old).unwrap();
        let base = LayerStack::new(vec![lower]);
        remove(
            &upper,
            &base,
            &points(&["/etc/hosts", "/mnt/a/b", "/out/t", "/nothing"]),
        );
        assert_eq!(
            walk(&upper),
            ["dev", "etc", "made", "out", "out/real", "proc", "sys"]
        );
        // The stub's parent kept its times (BuildKit issue #3148).
        let etc = std::fs::metadata(upper.join("etc")).unwrap();
        assert_eq!(etc.mtime(), old.sec);
    }

    #[test]
    fn a_stub_made_through_a_base_symlink_goes_where_it_was_made() {
        let t = tempfile::tempdir().unwrap();
        let (lower, upper) = (t.path().join("lower"), t.path().join("upper"));
        // /etc/resolv.conf -> ../run/systemd/resolve/stub-resolv.conf,
        // dangling: the runtime made the target file and its parents.
        std::fs::create_dir_all(lower.join("etc")).unwrap();
        std::fs::create_dir_all(lower.join("run")).unwrap();
        std::os::unix::fs::symlink(
            "../run/systemd/resolve/stub-resolv.conf",
            lower.join("etc/resolv.conf"),
        )
        .unwrap();
        std::fs::create_dir_all(upper.join("run/systemd/resolve")).unwrap();
        std::fs::write(upper.join("run/systemd/resolve/stub-resolv.conf"), "").unwrap();
        remove(
            &upper,
            &LayerStack::new(vec![lower]),
            &points(&["/etc/resolv.conf"]),
        );
        assert_eq!(walk(&upper), ["run"]);
    }

    #[test]
    fn a_symlink_the_command_planted_is_never_followed_out_of_the_upper_dir() {
        let t = tempfile::tempdir().unwrap();
        let (lower, upper) = (t.path().join("lower"), t.path().join("upper"));
        let outside = t.path().join("outside");
        std::fs::create_dir_all(&lower).unwrap();
        std::fs::create_dir_all(&upper).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("t"), "").unwrap();
        // The command replaced the stub's new parent with a symlink to an
        // absolute path, which on the host names `outside`.
        std::os::unix::fs::symlink(&outside, upper.join("scratch")).unwrap();
        remove(
            &upper,
            &LayerStack::new(vec![lower]),
            &points(&["/scratch/t"]),
        );
        assert!(outside.join("t").exists(), "a host file was removed");
        assert_eq!(walk(&upper), ["scratch"]);
    }
}
