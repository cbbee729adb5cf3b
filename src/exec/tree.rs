//! Copying a source directory's contents, or one entry, into the new layer
//! with `cp -a` semantics, as fsutil's `copy.Copy` does for BuildKit.
//!
//! What is kept per entry: type, content, mode (or `--chmod`), owner
//! (source ids for `COPY --from`, a fixed owner for context sources and
//! `--chown`), atime and mtime, xattrs (overlayfs' own excepted), hard links
//! between copied files (the first copied path is the link target), device
//! numbers of special files. Symlinks inside a copied directory are copied
//! as symlinks, never followed.
//!
//! Against what the destination already shows (layer, then parent):
//! - a directory onto a directory merges, and the destination directory
//!   takes the source's metadata (fsutil's `overwriteTargetMetadata`);
//! - a directory onto anything else (a symlink included) fails: BuildKit's
//!   "cannot copy to non-directory" (moby/moby#47367, buildkit#2626);
//! - a non-directory onto a directory fails ("cannot replace to directory
//!   ... with file"); onto a non-directory it replaces it.
//!
//! `--exclude` and `--parents` include patterns are matched against paths
//! relative to the copied directory. A directory that is not itself copied
//! but holds copied entries is created when needed with its source
//! metadata, its times left as writing its entries made them (fsutil
//! creates it lazily before the first included entry).
//!
//! The work is planned by one sequential walk (lexical order, so hard-link
//! targets are chosen like BuildKit's), directories are created in order,
//! then all non-directories are copied in parallel (rayon) with
//! `copy_file_range` (through `std::io::copy`, which falls back to
//! sendfile/read-write), and directory metadata is set last, deepest first,
//! so writing entries does not bump the copied mtimes.

use std::collections::HashMap;
use std::fs::{File, FileTimes, Metadata, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use rayon::prelude::*;
use thiserror::Error;

use crate::context::dockerignore::{DockerIgnore, ParentMatches};
use crate::exec::attrs::{copy_xattrs, set_mode, set_owner, set_times, Time};
use crate::exec::chmod::Chmod;
use crate::exec::dest::{image_path, DestError, DestFs, Located};
use crate::solver::CancelToken;

/// Why copying entries failed. Source paths are relative to the source
/// root, destination paths are image paths.
#[derive(Debug, Error)]
pub enum TreeError {
    /// Preparing the destination failed.
    #[error(transparent)]
    Dest(#[from] DestError),
    /// A non-directory would replace a directory (BuildKit's wording).
    #[error("cannot replace to directory {0} with file")]
    ReplaceDirWithFile(String),
    /// Reading the source failed.
    #[error("failed to {op} source {path}")]
    Source {
        /// What was being done.
        op: &'static str,
        /// The source path.
        path: String,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The build was cancelled meanwhile.
    #[error("cancelled")]
    Cancelled,
    /// Writing the destination failed.
    #[error("failed to {op} {path}")]
    Write {
        /// What was being done.
        op: &'static str,
        /// The image path.
        path: String,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
}

/// Counters for progress reporting, shared by the parallel workers.
#[derive(Debug, Default)]
pub struct Counters {
    /// Non-directory entries written.
    pub files: AtomicU64,
    /// Directories copied.
    pub dirs: AtomicU64,
    /// Bytes of regular-file content written.
    pub bytes: AtomicU64,
}

/// How entries are copied.
pub struct TreeOptions<'a> {
    /// The source root, to name source paths in messages.
    pub src_root: &'a Path,
    /// Owner of every copied entry; `None` keeps the source's.
    pub owner: Option<(u32, u32)>,
    /// `--chmod`, applied to copied files and directories.
    pub chmod: Option<&'a Chmod>,
    /// Entries matching are included (with their subtrees); `None`: all.
    pub include: Option<&'a DockerIgnore>,
    /// `--exclude` patterns.
    pub exclude: Option<&'a DockerIgnore>,
    /// Where unchanged files can be hard-linked from instead of copied.
    pub reuse: Option<&'a dyn Reuse>,
    /// Stops the copy between files once fired (another step failed, the
    /// user pressed Ctrl-C): a big COPY must not hold up the build's end.
    pub cancel: Option<&'a CancelToken>,
}

/// What a copied regular file will look like in the layer: a file of an
/// earlier, identical copy may stand in for it only if all of this agrees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileFacts {
    pub uid: u32,
    pub gid: u32,
    /// Permission bits (`& 0o7777`).
    pub mode: u32,
    pub size: u64,
    pub mtime: Time,
}

/// A source of earlier copies of the same files (see
/// `crate::exec::copy_reuse`): linking an immutable snapshot's file costs
/// a directory entry where copying costs the whole content.
pub trait Reuse: Sync {
    /// Hard-links, at `dst`, an earlier copy of `src` made for `rel` that
    /// matches `facts` and has the same content; false if there is none
    /// (the caller copies).
    fn link_unchanged(&self, src: &Path, rel: &Path, dst: &Path, facts: &FileFacts) -> bool;
    /// Notes that `src` was copied to `rel` (so a later copy can link it).
    fn copied(&self, src: &Path, rel: &Path);
}

/// The metadata of a source entry kept for the copy.
#[derive(Debug, Clone, Copy)]
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    rdev: u64,
    size: u64,
    atime: Time,
    mtime: Time,
}

impl Meta {
    fn of(m: &Metadata) -> Meta {
        Meta {
            mode: m.mode(),
            uid: m.uid(),
            gid: m.gid(),
            rdev: m.rdev(),
            size: m.size(),
            atime: Time {
                sec: m.atime(),
                nsec: m.atime_nsec(),
            },
            mtime: Time {
                sec: m.mtime(),
                nsec: m.mtime_nsec(),
            },
        }
    }

    fn is_symlink(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFLNK
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `lazy`: not itself included, created only for included entries.
    Dir {
        lazy: bool,
    },
    Other,
    HardLink {
        primary: usize,
    },
}

#[derive(Debug)]
struct Node {
    src: PathBuf,
    rel: PathBuf,
    /// Index of the parent directory's node; `None` for the copy's top.
    parent: Option<usize>,
    meta: Meta,
    kind: Kind,
}

/// Matcher state handed from a directory to its entries.
#[derive(Clone, Default)]
struct Matches {
    include: ParentMatches,
    exclude: ParentMatches,
}

struct Planner<'a> {
    opts: &'a TreeOptions<'a>,
    nodes: Vec<Node>,
    /// Whether each node is copied (dirs: included or needed).
    keep: Vec<bool>,
    inodes: HashMap<(u64, u64), usize>,
}

impl Planner<'_> {
    /// Walks `dir` (host) whose entries go below `rel`; `comp` is the path
    /// relative to the copied directory, for pattern matching.
    fn walk(
        &mut self,
        dir: &Path,
        rel: &Path,
        comp: &str,
        parent: Option<usize>,
        matches: &Matches,
    ) -> Result<(), TreeError> {
        let src_err = |op, path: &Path, source| TreeError::Source {
            op,
            path: source_path(self.opts.src_root, path),
            source,
        };
        // DirEntry::metadata is an fstatat relative to the directory (not
        // followed), cheaper than a full-path lstat per entry.
        let mut entries = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(|e| src_err("read directory", dir, e))? {
            let entry = entry.map_err(|e| src_err("read directory", dir, e))?;
            let meta = entry
                .metadata()
                .map_err(|e| src_err("stat", &entry.path(), e))?;
            entries.push((entry.file_name(), meta));
        }
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, meta) in entries {
            let src = dir.join(&name);
            let name_str = name.to_string_lossy();
            let entry_comp = if comp.is_empty() {
                name_str.into_owned()
            } else {
                format!("{comp}/{name_str}")
            };
            let (included, child_matches, descend) =
                self.classify(&entry_comp, meta.is_dir(), matches);
            let index = self.nodes.len();
            let mut kind = if meta.is_dir() {
                Kind::Dir { lazy: !included }
            } else {
                Kind::Other
            };
            if included && meta.file_type().is_file() && meta.nlink() > 1 {
                match self.inodes.get(&(meta.dev(), meta.ino())) {
                    Some(&primary) => kind = Kind::HardLink { primary },
                    None => {
                        self.inodes.insert((meta.dev(), meta.ino()), index);
                    }
                }
            }
            self.nodes.push(Node {
                src: src.clone(),
                rel: rel.join(&name),
                parent,
                meta: Meta::of(&meta),
                kind,
            });
            self.keep.push(included);
            if meta.is_dir() && descend {
                let child_rel = rel.join(&name);
                self.walk(&src, &child_rel, &entry_comp, Some(index), &child_matches)?;
            }
        }
        Ok(())
    }

    /// Whether an entry is included, the matcher state for its entries, and
    /// (for directories) whether anything below it can be included.
    fn classify(&self, comp: &str, is_dir: bool, parent: &Matches) -> (bool, Matches, bool) {
        let mut included = true;
        let mut descend = true;
        let mut next = Matches::default();
        if let Some(include) = self.opts.include {
            let (excluded, pm) = include.matches_in_dir(comp, &parent.include);
            included &= !excluded;
            descend &= !is_dir || !excluded || include.may_reinclude_below(comp);
            next.include = pm;
        }
        if let Some(exclude) = self.opts.exclude {
            let (excluded, pm) = exclude.matches_in_dir(comp, &parent.exclude);
            included &= !excluded;
            descend &= !is_dir || !excluded || exclude.may_reinclude_below(comp);
            next.exclude = pm;
        }
        (included, next, descend)
    }

    /// Marks lazy directories that hold included entries as needed.
    fn mark_needed_parents(&mut self) {
        for i in (0..self.nodes.len()).rev() {
            if self.keep[i] {
                if let Some(p) = self.nodes[i].parent {
                    self.keep[p] = true;
                }
            }
        }
    }
}

/// A source path for messages: relative to the source root, with `/`.
pub fn source_path(root: &Path, host: &Path) -> String {
    format!(
        "/{}",
        host.strip_prefix(root).unwrap_or(host).to_string_lossy()
    )
}

/// Copies the contents of the source directory `src` into the directory
/// `dest_rel` (resolved, existing in the merged view; `dest_fresh` when it
/// was just created, so nothing below it exists).
pub fn copy_dir_contents(
    fs: &DestFs<'_>,
    src: &Path,
    dest_rel: &Path,
    dest_fresh: bool,
    opts: &TreeOptions<'_>,
    counters: &Counters,
) -> Result<(), TreeError> {
    let mut planner = Planner {
        opts,
        nodes: Vec::new(),
        keep: Vec::new(),
        inodes: HashMap::new(),
    };
    planner.walk(src, dest_rel, "", None, &Matches::default())?;
    planner.mark_needed_parents();
    let Planner { nodes, keep, .. } = planner;

    // Directories, parents first.
    let mut fresh = vec![false; nodes.len()];
    let mut dirs = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        if !keep[i] || !matches!(node.kind, Kind::Dir { .. }) {
            continue;
        }
        let parent_fresh = node.parent.map_or(dest_fresh, |p| fresh[p]);
        fresh[i] = prepare_dir(fs, &node.rel, parent_fresh)?;
        dirs.push(i);
    }

    // Files, symlinks and special files in parallel, then hard links.
    let parent_fresh = |node: &Node| node.parent.map_or(dest_fresh, |p| fresh[p]);
    let others: Vec<usize> = (0..nodes.len())
        .filter(|&i| keep[i] && nodes[i].kind == Kind::Other)
        .collect();
    others.par_iter().try_for_each(|&i| {
        let node = &nodes[i];
        copy_entry(
            fs,
            &node.src,
            &node.meta,
            &node.rel,
            parent_fresh(node),
            opts,
            counters,
        )
    })?;
    nodes
        .par_iter()
        .enumerate()
        .filter(|(i, _)| keep[*i])
        .try_for_each(|(_, node)| match node.kind {
            Kind::HardLink { primary } => {
                prepare_non_dir(fs, &node.rel, parent_fresh(node))?;
                std::fs::hard_link(fs.host(&nodes[primary].rel), fs.host(&node.rel)).map_err(
                    |source| TreeError::Write {
                        op: "create hard link",
                        path: image_path(&node.rel),
                        source,
                    },
                )?;
                counters.files.fetch_add(1, Ordering::Relaxed);
                Ok::<(), TreeError>(())
            }
            _ => Ok(()),
        })?;

    // Directory metadata, deepest first.
    for &i in dirs.iter().rev() {
        let node = &nodes[i];
        let lazy = node.kind == (Kind::Dir { lazy: true });
        apply_dir_meta(fs, &node.src, &node.meta, &node.rel, !lazy, opts)?;
        counters.dirs.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

/// Makes `rel` a directory in the layer for a copied directory: merges
/// with an existing one (copying it up from the parent), fails on a
/// non-directory. Returns whether it was created fresh.
fn prepare_dir(fs: &DestFs<'_>, rel: &Path, parent_fresh: bool) -> Result<bool, TreeError> {
    let create = |rel: &Path| {
        std::fs::create_dir(fs.host(rel)).map_err(|source| TreeError::Write {
            op: "create directory",
            path: image_path(rel),
            source,
        })
    };
    if parent_fresh {
        create(rel)?;
        return Ok(true);
    }
    match fs.lookup(rel)? {
        Some(Located::Layer(meta)) if meta.is_dir() => Ok(false),
        Some(Located::Parent(host, meta)) if meta.is_dir() => {
            fs.copy_up_dir(rel, &host, &meta)?;
            Ok(false)
        }
        Some(_) => Err(DestError::NotADirectory(image_path(rel)).into()),
        None => {
            create(rel)?;
            Ok(true)
        }
    }
}

/// Clears the way for a non-directory at `rel`: a directory there is an
/// error, a non-directory in the layer is removed (one in the parent is
/// simply hidden by the new entry).
pub fn prepare_non_dir(fs: &DestFs<'_>, rel: &Path, parent_fresh: bool) -> Result<(), TreeError> {
    if parent_fresh {
        return Ok(());
    }
    match fs.lookup(rel)? {
        Some(found) if found.meta().is_dir() => Err(TreeError::ReplaceDirWithFile(image_path(rel))),
        Some(Located::Layer(_)) => Ok(fs.remove_in_layer(rel)?),
        _ => Ok(()),
    }
}

/// Copies one non-directory source entry `src` to `rel` (whose parent
/// directory exists in the layer) with its metadata.
pub fn copy_single(
    fs: &DestFs<'_>,
    src: &Path,
    src_meta: &Metadata,
    rel: &Path,
    opts: &TreeOptions<'_>,
    counters: &Counters,
) -> Result<(), TreeError> {
    copy_entry(fs, src, &Meta::of(src_meta), rel, false, opts, counters)
}

fn copy_entry(
    fs: &DestFs<'_>,
    src: &Path,
    meta: &Meta,
    rel: &Path,
    parent_fresh: bool,
    opts: &TreeOptions<'_>,
    counters: &Counters,
) -> Result<(), TreeError> {
    if opts.cancel.is_some_and(|c| c.is_cancelled()) {
        return Err(TreeError::Cancelled);
    }
    prepare_non_dir(fs, rel, parent_fresh)?;
    let dst = fs.host(rel);
    let write_err = |op| {
        move |source| TreeError::Write {
            op,
            path: image_path(rel),
            source,
        }
    };
    let src_err = |op| {
        move |source| TreeError::Source {
            op,
            path: source_path(opts.src_root, src),
            source,
        }
    };
    let (uid, gid) = opts.owner.unwrap_or((meta.uid, meta.gid));
    let mode = opts
        .chmod
        .map_or(meta.mode & 0o7777, |c| c.apply(meta.mode));
    let kind = meta.mode & libc::S_IFMT;
    if kind == libc::S_IFREG {
        if let Some(reuse) = opts.reuse {
            let facts = FileFacts {
                uid,
                gid,
                mode,
                size: meta.size,
                mtime: meta.mtime,
            };
            if reuse.link_unchanged(src, rel, &dst, &facts) {
                counters.files.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
        }
        let mut from = File::open(src).map_err(src_err("open"))?;
        let mut to = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(&dst)
            .map_err(write_err("create"))?;
        if meta.size > 0 {
            let n = io::copy(&mut from, &mut to).map_err(write_err("copy content to"))?;
            counters.bytes.fetch_add(n, Ordering::Relaxed);
        }
        // Owner before mode: fchown clears setuid/setgid.
        fs.chown_if_needed(&dst, uid, gid)
            .map_err(write_err("chown"))?;
        to.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(mode))
            .map_err(write_err("chmod"))?;
        to.set_times(
            FileTimes::new()
                .set_accessed(system_time(meta.atime))
                .set_modified(system_time(meta.mtime)),
        )
        .map_err(write_err("set times on"))?;
        if let Some(reuse) = opts.reuse {
            reuse.copied(src, rel);
        }
    } else {
        if meta.is_symlink() {
            let target = std::fs::read_link(src).map_err(src_err("read symlink"))?;
            std::os::unix::fs::symlink(&target, &dst).map_err(write_err("create symlink"))?;
        } else {
            make_special(&dst, meta).map_err(write_err("create special file"))?;
        }
        fs.chown_if_needed(&dst, uid, gid)
            .map_err(write_err("chown"))?;
        if !meta.is_symlink() {
            set_mode(&dst, mode).map_err(write_err("chmod"))?;
        }
        set_times(&dst, meta.atime, meta.mtime).map_err(write_err("set times on"))?;
    }
    copy_xattrs(src, &dst);
    counters.files.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// Creates a device node, FIFO or socket like the source's.
fn make_special(dst: &Path, meta: &Meta) -> io::Result<()> {
    let kind = meta.mode & libc::S_IFMT;
    if ![libc::S_IFCHR, libc::S_IFBLK, libc::S_IFIFO, libc::S_IFSOCK].contains(&kind) {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("unsupported file type {kind:o}"),
        ));
    }
    nix::sys::stat::mknod(
        dst,
        nix::sys::stat::SFlag::from_bits_truncate(kind),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
        meta.rdev,
    )
    .map_err(io::Error::from)
}

/// Sets a copied directory's owner, mode, xattrs and (unless `times` is
/// false) times from its source.
fn apply_dir_meta(
    fs: &DestFs<'_>,
    src: &Path,
    meta: &Meta,
    rel: &Path,
    times: bool,
    opts: &TreeOptions<'_>,
) -> Result<(), TreeError> {
    let dst = fs.host(rel);
    let err = |op| {
        move |source| TreeError::Write {
            op,
            path: image_path(rel),
            source,
        }
    };
    let (uid, gid) = opts.owner.unwrap_or((meta.uid, meta.gid));
    // Unconditionally: a merged directory may have been copied up with
    // another owner.
    set_owner(&dst, uid, gid).map_err(err("chown"))?;
    let mode = opts
        .chmod
        .map_or(meta.mode & 0o7777, |c| c.apply(meta.mode));
    set_mode(&dst, mode).map_err(err("chmod"))?;
    copy_xattrs(src, &dst);
    if times {
        set_times(&dst, meta.atime, meta.mtime).map_err(err("set times on"))?;
    }
    Ok(())
}

/// Gives the directory a directory's contents were copied into back the
/// times it had before (`before`), as fsutil does after the copy; its
/// owner and mode stay as they were.
pub fn restore_dir_times(fs: &DestFs<'_>, rel: &Path, before: &Metadata) -> Result<(), TreeError> {
    let meta = Meta::of(before);
    set_times(&fs.host(rel), meta.atime, meta.mtime).map_err(|source| TreeError::Write {
        op: "set times on",
        path: image_path(rel),
        source,
    })
}

fn system_time(t: Time) -> SystemTime {
    if t.sec >= 0 {
        SystemTime::UNIX_EPOCH + Duration::new(t.sec as u64, t.nsec as u32)
    } else {
        SystemTime::UNIX_EPOCH - Duration::new(t.sec.unsigned_abs(), 0)
            + Duration::new(0, t.nsec as u32)
    }
}
