//! Resolving a path inside a container rootfs as if the rootfs were `/`.
//!
//! An image controls its own symlinks: `/etc/passwd -> /../../host/etc/passwd`
//! must not make kiln read the host's files. This walks the path one
//! component at a time, expanding symlinks with the rootfs as root and
//! clamping `..` at it, the semantics of Go's `securejoin.SecureJoin` that
//! runc and BuildKit use. Components that do not exist are taken as they
//! are, so the result can name a file to be created.
//!
//! The result is a host path checked at one instant; a process running in
//! the rootfs at the same time could swap a component for a symlink
//! afterwards. kiln resolves paths of rootfs snapshots no process is
//! running in (or, on Linux >= 5.6, callers can open with
//! `openat2(RESOLVE_IN_ROOT)` instead).

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io;
use std::path::{Component, Path, PathBuf};

/// Linux's own limit on symlinks followed in one lookup is 40; securejoin
/// allows 255. Past this the path is rejected as a loop.
const MAX_SYMLINKS: usize = 255;

fn components(path: &Path) -> VecDeque<OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(name) => Some(name.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect()
}

/// Returns `root` joined with `path` (absolute or relative, both taken
/// from the rootfs's `/`), with every symlink on the way resolved inside
/// `root`. Fails only on I/O errors other than "not found" and on symlink
/// loops (ELOOP).
pub fn resolve_in_root(root: &Path, path: &Path) -> io::Result<PathBuf> {
    let mut resolved = PathBuf::new();
    let mut pending = components(path);
    let mut followed = 0;
    while let Some(name) = pending.pop_front() {
        if name == ".." {
            resolved.pop();
            continue;
        }
        let candidate = resolved.join(&name);
        let host = root.join(&candidate);
        match std::fs::symlink_metadata(&host) {
            Ok(meta) if meta.file_type().is_symlink() => {
                followed += 1;
                if followed > MAX_SYMLINKS {
                    return Err(io::Error::from_raw_os_error(libc::ELOOP));
                }
                let target = std::fs::read_link(&host)?;
                if target.is_absolute() {
                    resolved = PathBuf::new();
                }
                let mut expanded = components(&target);
                expanded.extend(pending);
                pending = expanded;
            }
            Ok(_) => resolved = candidate,
            Err(e) if e.kind() == io::ErrorKind::NotFound => resolved = candidate,
            // ENOTDIR: a file used as a directory; the rest is lexical too.
            Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => resolved = candidate,
            Err(e) => return Err(e),
        }
    }
    Ok(root.join(resolved))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// One case: symlinks to create (link, target), the path to resolve,
    /// and the expected result relative to the root.
    fn check(links: &[(&str, &str)], dirs: &[&str], path: &str, expected: &str) {
        let root = tempfile::tempdir().expect("tempdir");
        for d in dirs {
            std::fs::create_dir_all(root.path().join(d)).expect("mkdir");
        }
        for (link, target) in links {
            symlink(target, root.path().join(link)).expect("symlink");
        }
        let got = resolve_in_root(root.path(), Path::new(path)).expect("resolves");
        assert_eq!(got, root.path().join(expected), "{path} with {links:?}");
    }

    #[test]
    fn plain_paths_join_lexically() {
        check(&[], &[], "/etc/passwd", "etc/passwd");
        check(&[], &[], "etc/../etc/./group", "etc/group");
        check(&[], &[], "/../../../etc/passwd", "etc/passwd");
    }

    #[test]
    fn absolute_symlinks_stay_inside_the_root() {
        check(
            &[("etc", "/host/etc")],
            &[],
            "/etc/passwd",
            "host/etc/passwd",
        );
        check(&[("etc", "/../../../../x")], &[], "/etc/passwd", "x/passwd");
    }

    #[test]
    fn relative_symlinks_and_dotdot_clamp_at_the_root() {
        check(
            &[("etc", "../../../real")],
            &[],
            "/etc/passwd",
            "real/passwd",
        );
        check(
            &[("a/b", "../c"), ("c", "/d")],
            &["a"],
            "/a/b/file",
            "d/file",
        );
    }

    #[test]
    fn symlink_loops_fail_with_eloop() {
        let root = tempfile::tempdir().expect("tempdir");
        symlink("/loop", root.path().join("loop")).expect("symlink");
        let err = resolve_in_root(root.path(), Path::new("/loop/x")).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ELOOP));
    }
}
