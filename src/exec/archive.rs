//! `ADD` of a local tar archive: detection and extraction into the layer,
//! following BuildKit's file-op unpacker (`solver/llbsolver/file/unpack.go`,
//! `unpack_root.go`).
//!
//! - An archive is a regular file (after following symlinks) whose content,
//!   decompressed by magic number (gzip, bzip2, xz, zstd, or none; the file
//!   name plays no part), starts with a valid tar header. Anything else is
//!   copied as a plain file.
//! - Entry names are taken relative to the destination: leading `/` is
//!   dropped, `..` that would leave the destination is an error ("archive
//!   path ... is outside extraction root").
//! - Symlinks already in the destination (from the parent image or earlier
//!   entries) are followed with the destination as root: absolute targets
//!   stay inside it, relative ones that leave it are an error. Nothing is
//!   ever written outside the destination.
//! - An entry replaces what is there unless both are directories, which
//!   merge. Implied parent directories are created 0755 root:root.
//! - Owner comes from the header, or from `--chown`; mode (setuid/setgid/
//!   sticky included) and mtime from the header, atime the later of the
//!   header's atime and mtime; directory times are set last. `--chmod`
//!   does not apply (BuildKit's unpack ignores it).
//! - Entries named like whiteouts (`.wh.x`) are extracted as ordinary
//!   files, as BuildKit and docker's `ADD` do; turning them into deletions
//!   is only for image layers.
//! - Device, FIFO entries are created with mknod (docker's archive package
//!   did; the newest BuildKit rejects them); PAX `SCHILY.xattr.*` records
//!   are applied, overlayfs' private ones excepted.
//! - Headers are read by the layer reader's `image::layer::header`, Go's
//!   archive/tar rules: PAX `uid`/`gid`/`mtime`/`atime` override the ustar
//!   fields, long names and link targets come from PAX or GNU records,
//!   empty numeric fields read as 0.
//! - A GNU sparse file keeps its holes; all entries' logical sizes are
//!   charged to one `image::layer::budget::ExpansionBudget` per archive
//!   (BuildKit has no limit), so a 10 KiB tar cannot write gigabytes.

use std::ffi::{OsStr, OsString};
use std::io::{self, Read};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::Ordering;

use thiserror::Error;

mod detect;
use detect::open_decompressed;
pub use detect::{detect, is_archive, Compression};

use crate::exec::attrs::{set_mode, set_owner, set_times, set_xattr, Time};
use crate::exec::dest::{image_path, DestError, DestFs, Escape, Located, NewDir};
use crate::exec::tree::Counters;
use crate::image::layer::budget::{ExpansionBudget, TooLarge};
use crate::image::layer::header::{entry_type, read_meta};
use crate::image::layer::sparse::copy_keeping_holes;
use crate::image::layer::Xattrs;
use nix::sys::time::TimeSpec;

/// Why an archive could not be extracted.
#[derive(Debug, Error)]
pub enum ArchiveError {
    /// Reading or decompressing the archive failed.
    #[error("failed to read archive {archive}")]
    Read {
        /// The archive's source path.
        archive: String,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// An entry names a path outside the destination.
    #[error("archive {archive}: path {entry:?} is outside extraction root")]
    Escape {
        /// The archive's source path.
        archive: String,
        /// The entry name as stored.
        entry: String,
    },
    /// An entry type kiln does not extract.
    #[error("archive {archive}: unsupported tar entry {entry:?} of type {kind:?}")]
    Unsupported {
        /// The archive's source path.
        archive: String,
        /// The entry name.
        entry: String,
        /// The tar type flag.
        kind: char,
    },
    /// Preparing the destination failed.
    #[error("archive {archive}")]
    Dest {
        /// The archive's source path.
        archive: String,
        /// What went wrong.
        #[source]
        source: DestError,
    },
    /// The archive expands past the per-archive limit.
    #[error(transparent)]
    TooLarge(#[from] TooLarge),
    /// Writing an entry failed.
    #[error("archive {archive}: failed to {op} {path}")]
    Write {
        /// The archive's source path.
        archive: String,
        /// What was being done.
        op: &'static str,
        /// The image path.
        path: String,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
}

/// Cleans an entry name like BuildKit's `cleanRootTarPath`: relative to
/// the destination, `None` for the destination itself, an error if it
/// climbs out.
fn clean_entry_name(name: &[u8]) -> Result<Option<PathBuf>, ()> {
    let start = name.iter().position(|&b| b != b'/').unwrap_or(name.len());
    let mut out = PathBuf::new();
    for comp in Path::new(OsStr::from_bytes(&name[start..])).components() {
        match comp {
            Component::Normal(n) => out.push(n),
            Component::ParentDir if !out.pop() => return Err(()),
            _ => {}
        }
    }
    Ok((!out.as_os_str().is_empty()).then_some(out))
}

/// A header time as a settable one.
fn time(t: TimeSpec) -> Time {
    Time {
        sec: t.tv_sec(),
        nsec: t.tv_nsec(),
    }
}

/// Times outside what a timestamp can hold become the epoch, like
/// BuildKit's `boundRootTime`.
fn bound(t: Time) -> Time {
    if t.sec < 0 {
        Time { sec: 0, nsec: 0 }
    } else {
        t
    }
}

/// What one entry says it is, read with the layer reader's rules
/// (`image::layer::header`: PAX records override the ustar fields, so an
/// owner past ustar's 2097151 or given only in PAX is the real one), with
/// `--chown` and BuildKit's time rules applied.
struct EntryMeta {
    kind: tar::EntryType,
    mode: u32,
    uid: u32,
    gid: u32,
    atime: Time,
    mtime: Time,
    /// Major and minor numbers of a device entry, (0, 0) for the rest.
    device: (u32, u32),
    link_name: Vec<u8>,
    /// PAX `SCHILY.xattr.*` records, overlayfs' own already dropped.
    xattrs: Xattrs,
}

/// One archive being extracted: where to, what to call it in errors, and
/// the directory times to set once every entry is written.
struct Extraction<'a, 'f> {
    fs: &'a DestFs<'f>,
    /// The archive's source path, for messages.
    label: &'a str,
    dest_rel: &'a Path,
    /// `--chown`: replaces every entry's owner.
    owner: Option<(u32, u32)>,
    counters: &'a Counters,
    dir_times: Vec<(PathBuf, Time, Time)>,
}

/// Extracts the archive at `archive` (source path `label` for messages)
/// into the directory `dest_rel` (resolved, existing). `owner` overrides
/// the headers' owners (`--chown`).
pub fn extract(
    fs: &DestFs<'_>,
    archive: &Path,
    label: &str,
    dest_rel: &Path,
    owner: Option<(u32, u32)>,
    counters: &Counters,
) -> Result<(), ArchiveError> {
    let mut x = Extraction {
        fs,
        label,
        dest_rel,
        owner,
        counters,
        dir_times: Vec::new(),
    };
    let reader = open_decompressed(archive).map_err(|e| x.read_err(e))?;
    let mut tar = tar::Archive::new(reader);
    let mut budget = ExpansionBudget::from_env();
    let budget_name = format!("archive {label}");
    for entry in tar.entries().map_err(|e| x.read_err(e))? {
        let mut entry = entry.map_err(|e| x.read_err(e))?;
        let raw_name = entry.path_bytes().into_owned();
        let kind = entry_type(&entry, &raw_name);
        if kind.is_pax_global_extensions() || kind.is_pax_local_extensions() {
            continue;
        }
        // Logical size (a GNU sparse entry's holes included): BuildKit has
        // no limit here; kiln's is `image::layer::budget`'s.
        budget.charge(entry.size(), &budget_name)?;
        let Some(name) = clean_entry_name(&raw_name).map_err(|()| x.escape(&raw_name))? else {
            continue;
        };
        let meta = x.entry_meta(&mut entry, kind)?;
        let (rel, existing) = x.clear_the_way(&raw_name, &name, kind)?;
        x.write_entry(&mut entry, &raw_name, &name, &rel, existing, &meta)?;
    }
    x.set_dir_times()
}

impl Extraction<'_, '_> {
    fn read_err(&self, source: io::Error) -> ArchiveError {
        ArchiveError::Read {
            archive: self.label.to_string(),
            source,
        }
    }

    fn dest_err(&self, source: DestError) -> ArchiveError {
        ArchiveError::Dest {
            archive: self.label.to_string(),
            source,
        }
    }

    fn escape(&self, raw_name: &[u8]) -> ArchiveError {
        ArchiveError::Escape {
            archive: self.label.to_string(),
            entry: String::from_utf8_lossy(raw_name).into_owned(),
        }
    }

    fn write_err(&self, op: &'static str, rel: &Path) -> impl FnOnce(io::Error) -> ArchiveError {
        let (archive, path) = (self.label.to_string(), image_path(rel));
        move |source| ArchiveError::Write {
            archive,
            op,
            path,
            source,
        }
    }

    /// The entry's owner, mode, times, device numbers, link target and
    /// xattrs. The owner is the header's unless `--chown` gave one, as
    /// BuildKit's `mapArchiveHeaderOwner` (moby/buildkit
    /// solver/llbsolver/file/unpack_root.go) decides on the `hdr.Uid` that
    /// Go's archive/tar already merged PAX records into; atime is the later
    /// of the header's atime and mtime, both bounded (`rootHeaderTimes`).
    fn entry_meta<R: Read>(
        &self,
        entry: &mut tar::Entry<R>,
        kind: tar::EntryType,
    ) -> Result<EntryMeta, ArchiveError> {
        let (meta, xattrs) = read_meta(entry).map_err(|e| self.read_err(e))?;
        let (uid, gid) = self.owner.unwrap_or((meta.uid, meta.gid));
        let mtime = bound(time(meta.mtime));
        let atime = bound(match meta.atime.map(time) {
            Some(a) if (a.sec, a.nsec) > (mtime.sec, mtime.nsec) => a,
            _ => mtime,
        });
        // Only device entries carry numbers; other writers leave the fields
        // blank.
        let header = entry.header();
        let device = if matches!(kind, tar::EntryType::Char | tar::EntryType::Block) {
            (
                header
                    .device_major()
                    .map_err(|e| self.read_err(e))?
                    .unwrap_or(0),
                header
                    .device_minor()
                    .map_err(|e| self.read_err(e))?
                    .unwrap_or(0),
            )
        } else {
            (0, 0)
        };
        let link_name = entry
            .link_name_bytes()
            .map(|n| n.into_owned())
            .unwrap_or_default();
        Ok(EntryMeta {
            kind,
            mode: meta.mode,
            uid,
            gid,
            atime,
            mtime,
            device,
            link_name,
            xattrs,
        })
    }

    /// `name` resolved in the destination (symlinks followed inside it;
    /// an escape is the entry's error).
    fn resolve(&self, raw_name: &[u8], name: &Path, is_dir: bool) -> Result<PathBuf, ArchiveError> {
        self.fs
            .resolve(self.dest_rel, name, is_dir, Escape::Reject)
            .map_err(|e| match e {
                DestError::Escape(_) => self.escape(raw_name),
                e => self.dest_err(e),
            })
    }

    /// Where the entry goes, and what is there: implied parents are
    /// created 0755 root:root, and what the layer has at the path is
    /// removed unless both it and the entry are directories (which merge).
    fn clear_the_way(
        &self,
        raw_name: &[u8],
        name: &Path,
        kind: tar::EntryType,
    ) -> Result<(PathBuf, Option<Located>), ArchiveError> {
        let is_dir = kind == tar::EntryType::Directory;
        let rel = self.resolve(raw_name, name, is_dir)?;
        if let Some(parent) = rel.parent() {
            let implied = NewDir {
                uid: 0,
                gid: 0,
                mode: 0o755,
            };
            self.fs
                .mkdir_all(parent, implied)
                .map_err(|e| self.dest_err(e))?;
        }
        let existing = self.fs.lookup(&rel).map_err(|e| self.dest_err(e))?;
        if let Some(Located::Layer(meta)) = &existing {
            if !(meta.is_dir() && is_dir) {
                self.fs
                    .remove_in_layer(&rel)
                    .map_err(|e| self.dest_err(e))?;
            }
        }
        Ok((rel, existing))
    }

    /// Creates the entry at `rel` by its type, then its xattrs (an xattr
    /// the destination cannot take is skipped, as docker's untar does).
    fn write_entry<R: Read>(
        &mut self,
        entry: &mut tar::Entry<R>,
        raw_name: &[u8],
        name: &Path,
        rel: &Path,
        existing: Option<Located>,
        meta: &EntryMeta,
    ) -> Result<(), ArchiveError> {
        let host = self.fs.host(rel);
        match meta.kind {
            tar::EntryType::Directory => self.write_dir(rel, existing, meta)?,
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                self.write_file(entry, rel, meta)?
            }
            tar::EntryType::Symlink => {
                let target = OsString::from_vec(meta.link_name.clone());
                std::os::unix::fs::symlink(&target, &host)
                    .map_err(self.write_err("create symlink", rel))?;
                self.fs
                    .chown_if_needed(&host, meta.uid, meta.gid)
                    .map_err(self.write_err("chown", rel))?;
                set_times(&host, meta.atime, meta.mtime)
                    .map_err(self.write_err("set times on", rel))?;
            }
            tar::EntryType::Link => self.write_hard_link(raw_name, rel, meta)?,
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                self.write_special(rel, meta)?
            }
            other => {
                return Err(ArchiveError::Unsupported {
                    archive: self.label.to_string(),
                    entry: name.to_string_lossy().into_owned(),
                    kind: char::from(other.as_byte()),
                })
            }
        }
        for (key, value) in &meta.xattrs {
            if let Err(e) = set_xattr(&host, key, value) {
                tracing::debug!(path = %host.display(), error = %e, "cannot apply archive xattr");
            }
        }
        if meta.kind != tar::EntryType::Directory {
            self.counters.files.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// A directory merges with one the layer or the parent has (copied up
    /// from the parent) and takes the entry's owner and mode; its times
    /// wait until the end.
    fn write_dir(
        &mut self,
        rel: &Path,
        existing: Option<Located>,
        meta: &EntryMeta,
    ) -> Result<(), ArchiveError> {
        let host = self.fs.host(rel);
        match existing {
            Some(Located::Layer(m)) if m.is_dir() => {}
            Some(Located::Parent(parent_host, m)) if m.is_dir() => {
                self.fs
                    .copy_up_dir(rel, &parent_host, &m)
                    .map_err(|e| self.dest_err(e))?;
            }
            _ => std::fs::create_dir(&host).map_err(self.write_err("create directory", rel))?,
        }
        set_owner(&host, meta.uid, meta.gid).map_err(self.write_err("chown", rel))?;
        set_mode(&host, meta.mode).map_err(self.write_err("chmod", rel))?;
        self.dir_times
            .push((rel.to_path_buf(), meta.atime, meta.mtime));
        self.counters.dirs.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// A regular file's content; a GNU sparse entry keeps its holes, where
    /// BuildKit's unpacker (Go's archive/tar) writes them as zeros.
    fn write_file<R: Read>(
        &self,
        entry: &mut tar::Entry<R>,
        rel: &Path,
        meta: &EntryMeta,
    ) -> Result<(), ArchiveError> {
        let host = self.fs.host(rel);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&host)
            .map_err(self.write_err("create", rel))?;
        let n = if meta.kind == tar::EntryType::GNUSparse {
            copy_keeping_holes(entry, &mut file)
        } else {
            io::copy(entry, &mut file)
        }
        .map_err(|e| self.read_err(e))?;
        self.counters.bytes.fetch_add(n, Ordering::Relaxed);
        self.fs
            .chown_if_needed(&host, meta.uid, meta.gid)
            .map_err(self.write_err("chown", rel))?;
        set_mode(&host, meta.mode).map_err(self.write_err("chmod", rel))?;
        set_times(&host, meta.atime, meta.mtime).map_err(self.write_err("set times on", rel))
    }

    /// A hard link to an entry already extracted (or the parent's file),
    /// resolved like any entry name; owner, mode and times are the
    /// entry's unless the target is a symlink.
    fn write_hard_link(
        &self,
        raw_name: &[u8],
        rel: &Path,
        meta: &EntryMeta,
    ) -> Result<(), ArchiveError> {
        let target = match clean_entry_name(&meta.link_name) {
            Ok(Some(t)) => t,
            _ => return Err(self.escape(raw_name)),
        };
        let target = self.resolve(raw_name, &target, false)?;
        link_in_layer(self.fs, &target, rel).map_err(|e| self.dest_err(e))?;
        let host = self.fs.host(rel);
        set_owner(&host, meta.uid, meta.gid).map_err(self.write_err("chown", rel))?;
        if !std::fs::symlink_metadata(&host).is_ok_and(|m| m.file_type().is_symlink()) {
            set_mode(&host, meta.mode).map_err(self.write_err("chmod", rel))?;
            set_times(&host, meta.atime, meta.mtime)
                .map_err(self.write_err("set times on", rel))?;
        }
        Ok(())
    }

    /// A device or FIFO, made with mknod (docker's archive package did;
    /// the newest BuildKit rejects them).
    fn write_special(&self, rel: &Path, meta: &EntryMeta) -> Result<(), ArchiveError> {
        let host = self.fs.host(rel);
        let sflag = match meta.kind {
            tar::EntryType::Char => nix::sys::stat::SFlag::S_IFCHR,
            tar::EntryType::Block => nix::sys::stat::SFlag::S_IFBLK,
            _ => nix::sys::stat::SFlag::S_IFIFO,
        };
        let (major, minor) = meta.device;
        nix::sys::stat::mknod(
            &host,
            sflag,
            nix::sys::stat::Mode::from_bits_truncate(0o600),
            nix::sys::stat::makedev(u64::from(major), u64::from(minor)),
        )
        .map_err(|e| self.write_err("create special file", rel)(io::Error::from(e)))?;
        self.fs
            .chown_if_needed(&host, meta.uid, meta.gid)
            .map_err(self.write_err("chown", rel))?;
        set_mode(&host, meta.mode).map_err(self.write_err("chmod", rel))?;
        set_times(&host, meta.atime, meta.mtime).map_err(self.write_err("set times on", rel))
    }

    /// Directory times, last: writing entries into a directory changed
    /// them (in reverse order, so inner directories come first).
    fn set_dir_times(&self) -> Result<(), ArchiveError> {
        for (rel, atime, mtime) in self.dir_times.iter().rev() {
            set_times(&self.fs.host(rel), *atime, *mtime)
                .map_err(self.write_err("set times on", rel))?;
        }
        Ok(())
    }
}

/// Hard-links `rel` to `target` (both image paths) in the layer; a target
/// that only the parent has is first copied up, as overlayfs would before
/// linking it.
fn link_in_layer(fs: &DestFs<'_>, target: &Path, rel: &Path) -> Result<(), DestError> {
    let io_err = |op, path: &Path| {
        let path = image_path(path);
        move |source| DestError::Io { op, path, source }
    };
    match fs.lookup(target)? {
        Some(Located::Layer(_)) => {}
        Some(Located::Parent(host, meta)) if meta.is_file() => {
            std::fs::copy(&host, fs.host(target)).map_err(io_err("copy up", target))?;
            let t = fs.host(target);
            set_owner(&t, meta.uid(), meta.gid()).map_err(io_err("chown", target))?;
            set_mode(&t, meta.mode()).map_err(io_err("chmod", target))?;
            crate::exec::attrs::copy_xattrs(&host, &t);
            let time = |sec, nsec| Time { sec, nsec };
            set_times(
                &t,
                time(meta.atime(), meta.atime_nsec()),
                time(meta.mtime(), meta.mtime_nsec()),
            )
            .map_err(io_err("set times on", target))?;
        }
        _ => {
            return Err(DestError::Io {
                op: "hard link to",
                path: image_path(target),
                source: io::Error::from(io::ErrorKind::NotFound),
            })
        }
    }
    std::fs::hard_link(fs.host(target), fs.host(rel)).map_err(io_err("create hard link", rel))
}

#[cfg(test)]
mod tests;
