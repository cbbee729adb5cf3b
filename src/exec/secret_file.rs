//! `RUN --mount=type=secret`'s file: the value written into a tmpfs of its
//! own, never to disk, as BuildKit does (moby/buildkit
//! solver/llbsolver/mounts/secretmount_unix.go `secretMountInstance.Mount`):
//! the tmpfs is `nodev,nosuid`, and `noexec` unless the file's mode has an
//! execute bit; the file gets the mount's owner and mode (`0400` by
//! default, masked to `0777`). The container binds the file read-only,
//! and a bind keeps its source mount's `nodev,nosuid,noexec` flags.
//!
//! The user's `--secret src=FILE` is read once when the build starts and
//! is never mounted, so no step can write, truncate or chmod it.

use crate::error_chain::Chain;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};

/// Why a secret's file could not be made.
#[derive(Debug, thiserror::Error)]
#[error("preparing the secret file in {dir}")]
pub struct SecretFileError {
    dir: PathBuf,
    #[source]
    source: std::io::Error,
}

/// How the file looks inside the container.
#[derive(Debug, Clone, Copy)]
pub struct SecretAttrs {
    /// Owner uid (default 0).
    pub uid: Option<u32>,
    /// Owner gid (default 0).
    pub gid: Option<u32>,
    /// Mode (default 0400).
    pub mode: Option<u32>,
}

/// A secret's value as a file on its own tmpfs; unmounted (and so gone)
/// on drop. A build killed meanwhile leaves the tmpfs in its scratch dir,
/// which the next store open detaches (`cache::scratch`).
#[derive(Debug)]
pub struct SecretFile {
    dir: PathBuf,
    file: PathBuf,
}

impl SecretFile {
    /// Mounts a tmpfs on the new directory `dir` and writes `value` into
    /// a file there with `attrs`.
    pub fn new(
        dir: &Path,
        value: &[u8],
        attrs: SecretAttrs,
    ) -> Result<SecretFile, SecretFileError> {
        let err = |source| SecretFileError {
            dir: dir.to_path_buf(),
            source,
        };
        let mode = attrs.mode.unwrap_or(0o400) & 0o777;
        std::fs::create_dir(dir).map_err(err)?;
        let mut flags = MsFlags::MS_NODEV | MsFlags::MS_NOSUID;
        if mode & 0o111 == 0 {
            flags |= MsFlags::MS_NOEXEC;
        }
        nix::mount::mount(Some("tmpfs"), dir, Some("tmpfs"), flags, Some("mode=700"))
            .map_err(|e| err(e.into()))?;
        let secret = SecretFile {
            dir: dir.to_path_buf(),
            file: dir.join("secret"),
        };
        std::fs::write(&secret.file, value)
            .and_then(|()| {
                std::os::unix::fs::lchown(
                    &secret.file,
                    Some(attrs.uid.unwrap_or(0)),
                    Some(attrs.gid.unwrap_or(0)),
                )
            })
            .and_then(|()| {
                std::fs::set_permissions(&secret.file, std::fs::Permissions::from_mode(mode))
            })
            .map_err(err)?;
        Ok(secret)
    }

    /// The file to bind into the container.
    pub fn path(&self) -> &Path {
        &self.file
    }
}

impl Drop for SecretFile {
    fn drop(&mut self) {
        match nix::mount::umount2(&self.dir, MntFlags::MNT_DETACH) {
            Ok(()) => {
                let _ = std::fs::remove_dir(&self.dir);
            }
            Err(e) => tracing::warn!(
                "unmounting secret tmpfs {}: {e}",
                self.dir.display(),
                e = Chain(&e)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn the_value_lives_on_a_tmpfs_that_goes_with_it() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("s");
        let attrs = SecretAttrs {
            uid: Some(1000),
            gid: None,
            mode: Some(0o1640),
        };
        let secret = SecretFile::new(&dir, b"value", attrs).unwrap();
        assert_eq!(std::fs::read(secret.path()).unwrap(), b"value");
        let md = std::fs::metadata(secret.path()).unwrap();
        assert_eq!((md.mode() & 0o7777, md.uid(), md.gid()), (0o640, 1000, 0));
        let fs = nix::sys::statfs::statfs(secret.path()).unwrap();
        assert_eq!(fs.filesystem_type(), nix::sys::statfs::TMPFS_MAGIC);
        let vfs = nix::sys::statvfs::statvfs(secret.path()).unwrap();
        use nix::sys::statvfs::FsFlags;
        assert!(vfs
            .flags()
            .contains(FsFlags::ST_NODEV | FsFlags::ST_NOSUID | FsFlags::ST_NOEXEC));
        drop(secret);
        assert!(!dir.exists(), "tmpfs unmounted and its dir removed");
    }
}
