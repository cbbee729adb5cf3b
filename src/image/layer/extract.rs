//! Unpacking a layer tar into a snapshot directory (overlay upper format).
//!
//! The input is hostile. Rules, following docker's `pkg/archive`
//! (`UnpackLayer`, `createTarFile`) where docker has one:
//! - names are cleaned like Go's `filepath.Clean`; a leading `/` is
//!   stripped (docker joins the name onto the destination); a relative name
//!   whose `..` climbs above the root is refused (docker's "breakout" error);
//! - a symlink may point anywhere, `..` past the root included (containerd
//!   `pkg/archive` `createTarFile` does not check targets, and `docker load`
//!   accepts such links): targets resolve inside the container;
//! - a hard link must name an entry already unpacked from this layer;
//! - no symlink is ever followed while creating files: every parent is
//!   opened with `O_NOFOLLOW` ([`super::confined`]), so `link -> /etc`
//!   then `link/passwd` is an error (docker would resolve it inside a
//!   chroot; refusing is stricter and cannot write outside);
//! - whiteouts become overlay whiteouts: `.wh.name` → 0/0 char device
//!   `name`, `.wh..wh..opq` → `trusted.overlay.opaque=y` on the directory;
//!   other `.wh..wh.` names (aufs metadata) are skipped as docker does;
//! - owners are numeric, modes keep setuid/setgid/sticky, xattrs from PAX
//!   `SCHILY.xattr.*` are set except overlayfs's own, mtimes are kept;
//!   directory modes and mtimes are applied last so that adding children
//!   and read-only modes do not interfere;
//! - a GNU sparse file keeps its holes, and the logical sizes of all
//!   entries are charged to one [`super::budget::ExpansionBudget`], so a
//!   small tar cannot declare more than the limit.

use super::budget::ExpansionBudget;
use super::confined::{kind, set_fd_xattr, Dir, Resolve};
use super::header::{entry_type, read_meta, Meta};
use super::sparse::copy_keeping_holes;
use super::{OVERLAY_OPAQUE_XATTR, WHITEOUT_OPAQUE, WHITEOUT_PREFIX};
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::{fchmod, fchmodat, futimens, mknodat, FchmodatFlags, Mode, SFlag};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchown, fchownat, Gid, Uid};
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io::{self, Read};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use tar::EntryType;

/// What may follow a tar's end-of-archive marker: tar writers pad to their
/// record size (GNU tar's default is 10 KiB, some use far larger blocks);
/// more than this is not padding.
pub const MAX_TRAILER: u64 = 1 << 20;

/// What went wrong unpacking a layer. `path` is the entry's name as
/// written in the tar.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    #[error("reading layer tar")]
    Read(#[source] io::Error),
    #[error("layer tar ended without its end-of-archive marker (truncated?)")]
    Truncated,
    #[error("layer tar has more than {MAX_TRAILER} bytes after its end-of-archive marker")]
    TrailerTooLong,
    #[error("entry {path:?}: path escapes the layer root")]
    Escape { path: String },
    #[error("entry {path:?}: parent {component:?} is a symlink; refusing to follow it")]
    SymlinkParent { path: String, component: String },
    #[error("entry {path:?}: parent {component:?} is not a directory")]
    NotDir { path: String, component: String },
    #[error("entry {path:?}: hard link target {target:?} is outside the layer")]
    LinkEscape { path: String, target: String },
    #[error("entry {path:?}: hard link target {target:?} is not in this layer")]
    LinkMissing { path: String, target: String },
    #[error(transparent)]
    TooLarge(#[from] super::budget::TooLarge),
    #[error("entry {path:?}: unsupported tar entry type {kind:?}")]
    Unsupported { path: String, kind: char },
    #[error("entry {path:?}: {op}")]
    Io {
        path: String,
        op: &'static str,
        #[source]
        source: io::Error,
    },
}

/// What an extraction produced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExtractStats {
    /// Bytes of regular-file content (hard links counted once), docker's
    /// notion of a layer's size.
    pub size: u64,
    /// Number of tar entries applied.
    pub entries: u64,
}

/// Deferred directory attributes (mode, mtime), applied at the end.
type DirAttrs = (u32, TimeSpec);

/// Unpacks the tar read from `input` into `dest`, which must be an empty
/// directory owned by the caller. `dest` itself gets mode 0755 unless the
/// tar has a root entry. On error `dest` is left half-written: the caller
/// removes it (the store extracts into a private temp dir for that reason).
pub fn extract(input: impl Read, dest: &Path) -> Result<ExtractStats, ExtractError> {
    let root = Dir::open(dest).map_err(|e| io_err("", "opening destination", e))?;
    let mut eof = EofTracker {
        inner: input,
        hit_eof: false,
    };
    let mut x = Extractor {
        root,
        cached: None,
        dirs: BTreeMap::new(),
        stats: ExtractStats::default(),
        budget: ExpansionBudget::from_env(),
    };
    x.dirs.insert(Vec::new(), (0o755, TimeSpec::new(0, 0)));
    {
        let mut archive = tar::Archive::new(&mut eof);
        let entries = archive.entries().map_err(ExtractError::Read)?;
        for entry in entries {
            let mut entry = entry.map_err(ExtractError::Read)?;
            x.apply(&mut entry)?;
        }
    }
    // tar-rs stops at the first zero block or at EOF; only the latter means
    // the end-of-archive marker is missing.
    if eof.hit_eof {
        return Err(ExtractError::Truncated);
    }
    // Drain the trailer so callers hashing the stream see all of it, but
    // not forever: `kiln import /dev/zero` read zeros until killed.
    let trailer = io::copy(&mut (&mut eof).take(MAX_TRAILER + 1), &mut io::sink())
        .map_err(ExtractError::Read)?;
    if trailer > MAX_TRAILER {
        return Err(ExtractError::TrailerTooLong);
    }
    x.finish()?;
    Ok(x.stats)
}

struct EofTracker<R> {
    inner: R,
    hit_eof: bool,
}

impl<R: Read> Read for EofTracker<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.hit_eof = true;
        }
        Ok(n)
    }
}

fn io_err(path: &str, op: &'static str, source: impl Into<io::Error>) -> ExtractError {
    ExtractError::Io {
        path: path.to_string(),
        op,
        source: source.into(),
    }
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Cleans a tar name into components, as Go's `filepath.Clean` followed by
/// `filepath.Join(dest, name)`: `..` above an absolute root is dropped,
/// above a relative one it is an escape (`None`).
pub fn clean_name(name: &[u8]) -> Option<Vec<Vec<u8>>> {
    let absolute = name.first() == Some(&b'/');
    let mut out: Vec<Vec<u8>> = Vec::new();
    for c in name.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                if out.pop().is_none() && !absolute {
                    return None;
                }
            }
            _ => out.push(c.to_vec()),
        }
    }
    Some(out)
}

struct Extractor {
    root: Dir,
    /// The last parent directory opened, as tars list siblings together.
    cached: Option<(Vec<Vec<u8>>, Dir)>,
    /// Directory attributes to apply at the end, keyed by joined path.
    dirs: BTreeMap<Vec<u8>, DirAttrs>,
    stats: ExtractStats,
    /// What this layer may still expand to (logical sizes, holes included).
    budget: ExpansionBudget,
}

impl Extractor {
    fn apply<R: Read>(&mut self, entry: &mut tar::Entry<R>) -> Result<(), ExtractError> {
        let raw = entry.path_bytes().into_owned();
        let path = lossy(&raw);
        let etype = entry_type(entry, &raw);
        if matches!(etype, EntryType::XGlobalHeader | EntryType::XHeader) {
            return Ok(());
        }
        let comps = clean_name(&raw).ok_or_else(|| ExtractError::Escape { path: path.clone() })?;
        // tar-rs gives a GNU sparse entry's logical size: what the file
        // will read back as, and what a later diff of it would write.
        self.budget.charge(entry.size(), "the layer tar")?;
        let (meta, xattrs) = read_meta(entry).map_err(|e| io_err(&path, "reading header", e))?;
        self.stats.entries += 1;

        let Some((name, parent)) = comps.split_last() else {
            // The root itself: only a directory entry makes sense.
            if etype != EntryType::Directory {
                return Err(ExtractError::Escape { path });
            }
            self.dirs.insert(Vec::new(), (meta.mode, meta.mtime));
            let root = &self.root;
            chown_at(root, None, meta).map_err(|e| io_err(&path, "chown", e))?;
            for (k, v) in &xattrs {
                root.set_own_xattr(k, v)
                    .map_err(|e| io_err(&path, "setting xattr", e))?;
            }
            return Ok(());
        };

        if name.starts_with(WHITEOUT_PREFIX.as_bytes()) {
            return self.whiteout(&path, parent, name, meta);
        }

        let dir = self.parent(&path, parent, meta.mtime)?;
        let result = self.create(entry, &path, &comps, &dir, etype, meta, &xattrs);
        self.cached = Some((parent.to_vec(), dir));
        result
    }

    /// Creates the node for one entry inside its (already open) parent.
    #[allow(clippy::too_many_arguments)]
    fn create<R: Read>(
        &mut self,
        entry: &mut tar::Entry<R>,
        path: &str,
        comps: &[Vec<u8>],
        dir: &Dir,
        etype: EntryType,
        meta: Meta,
        xattrs: &[(Vec<u8>, Vec<u8>)],
    ) -> Result<(), ExtractError> {
        let path = path.to_string();
        let Some((name, _)) = comps.split_last() else {
            return Err(ExtractError::Escape { path });
        };
        let merge_dir = self.make_room(dir, name, comps, etype, &path)?;
        match etype {
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                self.write_file(entry, &path, dir, name, etype, meta, xattrs)?;
            }
            EntryType::Directory => {
                if !merge_dir {
                    nix::sys::stat::mkdirat(
                        dir.fd(),
                        OsStr::from_bytes(name),
                        Mode::from_bits_truncate(0o700),
                    )
                    .map_err(|e| io_err(&path, "creating directory", e))?;
                }
                chown_at(dir, Some(name), meta).map_err(|e| io_err(&path, "chown", e))?;
                for (k, v) in xattrs {
                    dir.set_xattr(name, k, v)
                        .map_err(|e| io_err(&path, "setting xattr", e))?;
                }
                self.dirs.insert(join(comps), (meta.mode, meta.mtime));
            }
            EntryType::Symlink => {
                // Any target is accepted, as containerd does (`pkg/archive`
                // `createTarFile` creates a symlink as written, and so
                // `docker load` takes `a -> ../../../etc/passwd`): a target
                // is only a string, resolved inside the root when used.
                // What must never happen, writing *through* a link, is
                // refused when the next entry opens its parents.
                let target = entry.link_name_bytes().unwrap_or_default().into_owned();
                nix::unistd::symlinkat(
                    OsStr::from_bytes(&target),
                    dir.fd(),
                    OsStr::from_bytes(name),
                )
                .map_err(|e| io_err(&path, "creating symlink", e))?;
                self.finish_node(dir, name, &path, meta, xattrs, false)?;
            }
            EntryType::Link => {
                let target = entry.link_name_bytes().unwrap_or_default().into_owned();
                self.hard_link(&path, dir, name, &target)?;
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let (sflag, dev) = match etype {
                    EntryType::Char => (SFlag::S_IFCHR, device(entry)),
                    EntryType::Block => (SFlag::S_IFBLK, device(entry)),
                    _ => (SFlag::S_IFIFO, 0),
                };
                mknodat(
                    dir.fd(),
                    OsStr::from_bytes(name),
                    sflag,
                    Mode::from_bits_truncate(0o600),
                    dev,
                )
                .map_err(|e| io_err(&path, "creating device node", e))?;
                self.finish_node(dir, name, &path, meta, xattrs, true)?;
            }
            other => {
                return Err(ExtractError::Unsupported {
                    path,
                    kind: other.as_byte() as char,
                })
            }
        }
        Ok(())
    }

    /// Clears the way for an entry named `name` in `dir`: a later entry
    /// with the same name replaces an earlier one, except that a directory
    /// entry over a directory only updates its metadata (returns `true`).
    fn make_room(
        &mut self,
        dir: &Dir,
        name: &[u8],
        comps: &[Vec<u8>],
        etype: EntryType,
        path: &str,
    ) -> Result<bool, ExtractError> {
        let existing = dir.stat(name).ok();
        let merge_dir = existing
            .map(|st| kind(&st) == SFlag::S_IFDIR && etype == EntryType::Directory)
            .unwrap_or(false);
        if existing.is_some() && !merge_dir {
            dir.remove(name)
                .map_err(|e| io_err(path, "replacing existing entry", e))?;
            self.forget_dirs_under(&join(comps));
        }
        Ok(merge_dir)
    }

    /// Writes a regular (or sparse) file entry: created new (never through
    /// a link), filled, then owner, mode, xattrs and mtime in that order.
    #[allow(clippy::too_many_arguments)]
    fn write_file<R: Read>(
        &mut self,
        entry: &mut tar::Entry<R>,
        path: &str,
        dir: &Dir,
        name: &[u8],
        etype: EntryType,
        meta: Meta,
        xattrs: &[(Vec<u8>, Vec<u8>)],
    ) -> Result<(), ExtractError> {
        let fd = openat(
            dir.fd(),
            OsStr::from_bytes(name),
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        )
        .map_err(|e| io_err(path, "creating file", e))?;
        let mut file = std::fs::File::from(fd);
        // A sparse entry keeps its holes (docker's pkg/archive and
        // containerd write every zero; kiln need not).
        let n = if etype == EntryType::GNUSparse {
            copy_keeping_holes(entry, &mut file)
        } else {
            io::copy(entry, &mut file)
        }
        .map_err(ExtractError::Read)?;
        self.stats.size += n;
        // chown before chmod: chown clears setuid/setgid bits.
        fchown(
            file.as_fd(),
            Some(Uid::from_raw(meta.uid)),
            Some(Gid::from_raw(meta.gid)),
        )
        .map_err(|e| io_err(path, "chown", e))?;
        fchmod(file.as_fd(), Mode::from_bits_truncate(meta.mode))
            .map_err(|e| io_err(path, "chmod", e))?;
        for (k, v) in xattrs {
            set_fd_xattr(file.as_fd(), k, v).map_err(|e| io_err(path, "setting xattr", e))?;
        }
        futimens(file.as_fd(), &meta.mtime, &meta.mtime)
            .map_err(|e| io_err(path, "setting mtime", e))?;
        Ok(())
    }

    /// `.wh.name` and `.wh..wh..opq` entries.
    fn whiteout(
        &mut self,
        path: &str,
        parent: &[Vec<u8>],
        name: &[u8],
        meta: Meta,
    ) -> Result<(), ExtractError> {
        let dir = self.parent(path, parent, meta.mtime)?;
        let result = self.whiteout_in(&dir, path, name, meta);
        self.cached = Some((parent.to_vec(), dir));
        result
    }

    fn whiteout_in(
        &self,
        dir: &Dir,
        path: &str,
        name: &[u8],
        meta: Meta,
    ) -> Result<(), ExtractError> {
        if name == WHITEOUT_OPAQUE.as_bytes() {
            return dir
                .set_own_xattr(OVERLAY_OPAQUE_XATTR.as_bytes(), b"y")
                .map_err(|e| io_err(path, "marking directory opaque", e));
        }
        let hidden = &name[WHITEOUT_PREFIX.len()..];
        if hidden.starts_with(WHITEOUT_PREFIX.as_bytes()) || hidden.is_empty() {
            // `.wh..wh.plnk` and friends: aufs bookkeeping, skipped by docker.
            return Ok(());
        }
        if dir.stat(hidden).is_ok() {
            // OCI image-spec layer.md: a whiteout only hides lower layers;
            // an entry of the same layer stays.
            return Ok(());
        }
        mknodat(
            dir.fd(),
            OsStr::from_bytes(hidden),
            SFlag::S_IFCHR,
            Mode::empty(),
            0,
        )
        .map_err(|e| io_err(path, "creating whiteout", e))?;
        let meta = Meta { mode: 0, ..meta };
        self.finish_node(dir, hidden, path, meta, &[], true)
    }

    fn hard_link(
        &mut self,
        path: &str,
        dir: &Dir,
        name: &[u8],
        target: &[u8],
    ) -> Result<(), ExtractError> {
        let escape = || ExtractError::LinkEscape {
            path: path.to_string(),
            target: lossy(target),
        };
        let tcomps = clean_name(target).ok_or_else(escape)?;
        let Some((tname, tparent)) = tcomps.split_last() else {
            return Err(escape());
        };
        let missing = || ExtractError::LinkMissing {
            path: path.to_string(),
            target: lossy(target),
        };
        // Walk without creating anything: the target must already exist.
        let mut tdir = self.root.open_dir(b".").map_err(|_| missing())?;
        for c in tparent {
            tdir = tdir.open_dir(c).map_err(|_| missing())?;
        }
        match tdir.stat(tname) {
            Ok(st) if kind(&st) != SFlag::S_IFDIR => {}
            _ => return Err(missing()),
        }
        nix::unistd::linkat(
            tdir.fd(),
            OsStr::from_bytes(tname),
            dir.fd(),
            OsStr::from_bytes(name),
            nix::fcntl::AtFlags::empty(),
        )
        .map_err(|e| io_err(path, "creating hard link", e))
    }

    /// Owner, mode, xattrs and mtime of a non-regular, non-directory node.
    fn finish_node(
        &self,
        dir: &Dir,
        name: &[u8],
        path: &str,
        meta: Meta,
        xattrs: &[(Vec<u8>, Vec<u8>)],
        chmod: bool,
    ) -> Result<(), ExtractError> {
        chown_at(dir, Some(name), meta).map_err(|e| io_err(path, "chown", e))?;
        if chmod {
            // The node was just created by us in our own tree: not a symlink.
            fchmodat(
                dir.fd(),
                OsStr::from_bytes(name),
                Mode::from_bits_truncate(meta.mode),
                FchmodatFlags::FollowSymlink,
            )
            .map_err(|e| io_err(path, "chmod", e))?;
        }
        for (k, v) in xattrs {
            dir.set_xattr(name, k, v)
                .map_err(|e| io_err(path, "setting xattr", e))?;
        }
        nix::sys::stat::utimensat(
            dir.fd(),
            OsStr::from_bytes(name),
            &meta.mtime,
            &meta.mtime,
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        )
        .map_err(|e| io_err(path, "setting mtime", e))
    }

    /// Opens (creating if needed) the parent directory of an entry, taking
    /// it from the one-entry cache when the previous entry had the same
    /// parent; the caller puts it back into `cached` when done.
    fn parent(
        &mut self,
        path: &str,
        parent: &[Vec<u8>],
        mtime: TimeSpec,
    ) -> Result<Dir, ExtractError> {
        if let Some((p, d)) = self.cached.take() {
            if p.as_slice() == parent {
                return Ok(d);
            }
        }
        let mut created = Vec::new();
        let dir = self
            .root
            .walk(parent, |i| created.push(i))
            .map_err(|e| match e {
                Resolve::Symlink(c) => ExtractError::SymlinkParent {
                    path: path.to_string(),
                    component: lossy(&c),
                },
                Resolve::NotDir(c) => ExtractError::NotDir {
                    path: path.to_string(),
                    component: lossy(&c),
                },
                Resolve::Io(e) => io_err(path, "opening parent directory", e),
            })?;
        // Implicit parents: 0755 like docker, and the entry's mtime so that
        // the same tar always gives the same snapshot.
        for i in created {
            self.dirs.insert(join(&parent[..=i]), (0o755, mtime));
        }
        Ok(dir)
    }

    fn forget_dirs_under(&mut self, key: &[u8]) {
        let mut prefix = key.to_vec();
        prefix.push(b'/');
        self.dirs
            .retain(|k, _| k.as_slice() != key && !k.starts_with(&prefix));
    }

    /// Applies directory modes and mtimes, deepest first.
    fn finish(&mut self) -> Result<(), ExtractError> {
        self.cached = None;
        for (key, (mode, mtime)) in self.dirs.iter().rev() {
            let path = lossy(key);
            let comps: Vec<Vec<u8>> = if key.is_empty() {
                Vec::new()
            } else {
                key.split(|&b| b == b'/').map(|c| c.to_vec()).collect()
            };
            let mut d = self
                .root
                .open_dir(b".")
                .map_err(|_| io_err(&path, "reopening directory", io::ErrorKind::NotFound))?;
            for c in &comps {
                d = d
                    .open_dir(c)
                    .map_err(|_| io_err(&path, "reopening directory", io::ErrorKind::NotFound))?;
            }
            fchmod(d.fd(), Mode::from_bits_truncate(*mode))
                .map_err(|e| io_err(&path, "chmod", e))?;
            if !key.is_empty() {
                futimens(d.fd(), mtime, mtime).map_err(|e| io_err(&path, "setting mtime", e))?;
            }
        }
        Ok(())
    }
}

fn join(comps: &[Vec<u8>]) -> Vec<u8> {
    comps.join(&b'/')
}

fn chown_at(dir: &Dir, name: Option<&[u8]>, meta: Meta) -> nix::Result<()> {
    let uid = Some(Uid::from_raw(meta.uid));
    let gid = Some(Gid::from_raw(meta.gid));
    match name {
        Some(n) => fchownat(
            dir.fd(),
            OsStr::from_bytes(n),
            uid,
            gid,
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        ),
        None => fchown(dir.fd(), uid, gid),
    }
}

fn device<R: Read>(entry: &tar::Entry<R>) -> libc::dev_t {
    let major = entry.header().device_major().ok().flatten().unwrap_or(0);
    let minor = entry.header().device_minor().ok().flatten().unwrap_or(0);
    libc::makedev(major, minor)
}

#[cfg(test)]
#[path = "extract_tests.rs"]
pub(crate) mod tests;
