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
//! - A GNU sparse file keeps its holes; all entries' logical sizes are
//!   charged to one `image::layer::budget::ExpansionBudget` per archive
//!   (BuildKit has no limit), so a 10 KiB tar cannot write gigabytes.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::Ordering;

use thiserror::Error;

use crate::exec::attrs::{set_mode, set_owner, set_times, set_xattr, Time};
use crate::exec::dest::{image_path, DestError, DestFs, Escape, Located, NewDir};
use crate::exec::tree::Counters;
use crate::image::layer::budget::{ExpansionBudget, TooLarge};
use crate::image::layer::sparse::copy_keeping_holes;

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

/// A compression format recognised by its magic number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Plain tar.
    None,
    /// gzip (`1f 8b 08`).
    Gzip,
    /// bzip2 (`BZh`).
    Bzip2,
    /// xz (`fd 37 7a 58 5a 00`).
    Xz,
    /// zstd (`28 b5 2f fd`).
    Zstd,
}

/// Detects the compression of a stream from its first bytes, with the
/// magic numbers of BuildKit's `archiveutil.DetectCompression`.
pub fn detect(head: &[u8]) -> Compression {
    if head.starts_with(&[0x1f, 0x8b, 0x08]) {
        Compression::Gzip
    } else if head.starts_with(b"BZh") {
        Compression::Bzip2
    } else if head.starts_with(&[0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]) {
        Compression::Xz
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::None
    }
}

/// Opens `path` and returns a reader of its decompressed content.
fn open_decompressed(path: &Path) -> io::Result<Box<dyn Read>> {
    let mut file = File::open(path)?;
    let mut head = [0u8; 6];
    let mut len = 0;
    while len < head.len() {
        match file.read(&mut head[len..])? {
            0 => break,
            n => len += n,
        }
    }
    let stream = io::Cursor::new(head[..len].to_vec()).chain(file);
    Ok(match detect(&head[..len]) {
        Compression::None => Box::new(stream),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(stream)),
        Compression::Bzip2 => Box::new(bzip2::read::MultiBzDecoder::new(stream)),
        Compression::Xz => Box::new(liblzma::read::XzDecoder::new_multi_decoder(stream)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(stream)?),
    })
}

/// Whether `path` is a regular file holding a (possibly compressed) tar
/// archive: BuildKit's `isArchivePath` reads the first header.
pub fn is_archive(path: &Path) -> bool {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_file() => {}
        _ => return false,
    }
    let Ok(reader) = open_decompressed(path) else {
        return false;
    };
    let mut archive = tar::Archive::new(reader);
    let first = archive.entries().ok().and_then(|mut e| e.next());
    matches!(first, Some(Ok(_)))
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

/// Parses a PAX time (`1234567890.123456789`, possibly negative).
fn pax_time(value: &[u8]) -> Option<Time> {
    let text = std::str::from_utf8(value).ok()?;
    let (sec, frac) = text.split_once('.').unwrap_or((text, ""));
    let sec: i64 = sec.parse().ok()?;
    let digits: String = frac.chars().take(9).collect();
    let nsec = if digits.is_empty() {
        0
    } else {
        format!("{digits:0<9}").parse().ok()?
    };
    Some(Time { sec, nsec })
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
    let read_err = |source| ArchiveError::Read {
        archive: label.to_string(),
        source,
    };
    let dest_err = |source| ArchiveError::Dest {
        archive: label.to_string(),
        source,
    };
    let reader = open_decompressed(archive).map_err(read_err)?;
    let mut tar = tar::Archive::new(reader);
    let mut dir_times: Vec<(PathBuf, Time, Time)> = Vec::new();
    let mut budget = ExpansionBudget::from_env();
    let budget_name = format!("archive {label}");
    for entry in tar.entries().map_err(read_err)? {
        let mut entry = entry.map_err(read_err)?;
        let kind = entry.header().entry_type();
        if kind.is_pax_global_extensions() || kind.is_pax_local_extensions() {
            continue;
        }
        // Logical size (a GNU sparse entry's holes included): BuildKit has
        // no limit here; kiln's is `image::layer::budget`'s.
        budget.charge(entry.size(), &budget_name)?;
        let raw_name = entry.path_bytes().into_owned();
        let escape = || ArchiveError::Escape {
            archive: label.to_string(),
            entry: String::from_utf8_lossy(&raw_name).into_owned(),
        };
        let Some(name) = clean_entry_name(&raw_name).map_err(|()| escape())? else {
            continue;
        };
        let header = entry.header();
        let mode = header.mode().map_err(read_err)? & 0o7777;
        let (uid, gid) = match owner {
            Some(ids) => ids,
            None => (
                header.uid().map_err(read_err)? as u32,
                header.gid().map_err(read_err)? as u32,
            ),
        };
        let mut mtime = Time {
            sec: header.mtime().map_err(read_err)? as i64,
            nsec: 0,
        };
        // Only device entries carry numbers; other writers leave the fields
        // blank.
        let device = if matches!(kind, tar::EntryType::Char | tar::EntryType::Block) {
            (
                header.device_major().map_err(read_err)?.unwrap_or(0),
                header.device_minor().map_err(read_err)?.unwrap_or(0),
            )
        } else {
            (0, 0)
        };
        let link_name = entry
            .link_name_bytes()
            .map(|n| n.into_owned())
            .unwrap_or_default();
        let mut atime = None;
        let mut xattrs = Vec::new();
        if let Some(exts) = entry.pax_extensions().map_err(read_err)? {
            for ext in exts {
                let ext = ext.map_err(read_err)?;
                let key = ext.key_bytes();
                if key == b"mtime" {
                    mtime = pax_time(ext.value_bytes()).unwrap_or(mtime);
                } else if key == b"atime" {
                    atime = pax_time(ext.value_bytes());
                } else if let Some(xattr) = key.strip_prefix(b"SCHILY.xattr.") {
                    xattrs.push((xattr.to_vec(), ext.value_bytes().to_vec()));
                }
            }
        }
        let mtime = bound(mtime);
        let atime = bound(match atime {
            Some(a) if (a.sec, a.nsec) > (mtime.sec, mtime.nsec) => a,
            _ => mtime,
        });

        let is_dir = kind == tar::EntryType::Directory;
        let rel = fs
            .resolve(dest_rel, &name, is_dir, Escape::Reject)
            .map_err(|e| match e {
                DestError::Escape(_) => escape(),
                e => dest_err(e),
            })?;
        let write_err = |op| {
            let path = image_path(&rel);
            move |source| ArchiveError::Write {
                archive: label.to_string(),
                op,
                path,
                source,
            }
        };
        if let Some(parent) = rel.parent() {
            let implied = NewDir {
                uid: 0,
                gid: 0,
                mode: 0o755,
            };
            fs.mkdir_all(parent, implied).map_err(dest_err)?;
        }
        let existing = fs.lookup(&rel).map_err(dest_err)?;
        let existing_dir = existing.as_ref().is_some_and(|e| e.meta().is_dir());
        if let Some(Located::Layer(meta)) = &existing {
            if !(meta.is_dir() && is_dir) {
                fs.remove_in_layer(&rel).map_err(dest_err)?;
            }
        }
        let host = fs.host(&rel);
        match kind {
            tar::EntryType::Directory => {
                match existing {
                    Some(Located::Layer(meta)) if meta.is_dir() => {}
                    Some(Located::Parent(ref parent_host, ref meta)) if existing_dir => {
                        fs.copy_up_dir(&rel, parent_host, meta).map_err(dest_err)?;
                    }
                    _ => std::fs::create_dir(&host).map_err(write_err("create directory"))?,
                }
                set_owner(&host, uid, gid).map_err(write_err("chown"))?;
                set_mode(&host, mode).map_err(write_err("chmod"))?;
                dir_times.push((rel.clone(), atime, mtime));
                counters.dirs.fetch_add(1, Ordering::Relaxed);
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&host)
                    .map_err(write_err("create"))?;
                // BuildKit's unpacker (Go's archive/tar) writes a sparse
                // entry's holes as zeros; kiln keeps them as holes.
                let n = if kind == tar::EntryType::GNUSparse {
                    copy_keeping_holes(&mut entry, &mut file)
                } else {
                    io::copy(&mut entry, &mut file)
                }
                .map_err(read_err)?;
                counters.bytes.fetch_add(n, Ordering::Relaxed);
                fs.chown_if_needed(&host, uid, gid)
                    .map_err(write_err("chown"))?;
                set_mode(&host, mode).map_err(write_err("chmod"))?;
                set_times(&host, atime, mtime).map_err(write_err("set times on"))?;
            }
            tar::EntryType::Symlink => {
                let target = OsString::from_vec(link_name.clone());
                std::os::unix::fs::symlink(&target, &host).map_err(write_err("create symlink"))?;
                fs.chown_if_needed(&host, uid, gid)
                    .map_err(write_err("chown"))?;
                set_times(&host, atime, mtime).map_err(write_err("set times on"))?;
            }
            tar::EntryType::Link => {
                let target_rel = match clean_entry_name(&link_name) {
                    Ok(Some(t)) => t,
                    _ => return Err(escape()),
                };
                let target_rel = fs
                    .resolve(dest_rel, &target_rel, false, Escape::Reject)
                    .map_err(|e| match e {
                        DestError::Escape(_) => escape(),
                        e => dest_err(e),
                    })?;
                link_in_layer(fs, &target_rel, &rel).map_err(dest_err)?;
                set_owner(&host, uid, gid).map_err(write_err("chown"))?;
                if !std::fs::symlink_metadata(&host).is_ok_and(|m| m.file_type().is_symlink()) {
                    set_mode(&host, mode).map_err(write_err("chmod"))?;
                    set_times(&host, atime, mtime).map_err(write_err("set times on"))?;
                }
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let sflag = match kind {
                    tar::EntryType::Char => nix::sys::stat::SFlag::S_IFCHR,
                    tar::EntryType::Block => nix::sys::stat::SFlag::S_IFBLK,
                    _ => nix::sys::stat::SFlag::S_IFIFO,
                };
                let (major, minor) = device;
                nix::sys::stat::mknod(
                    &host,
                    sflag,
                    nix::sys::stat::Mode::from_bits_truncate(0o600),
                    nix::sys::stat::makedev(u64::from(major), u64::from(minor)),
                )
                .map_err(|e| write_err("create special file")(io::Error::from(e)))?;
                fs.chown_if_needed(&host, uid, gid)
                    .map_err(write_err("chown"))?;
                set_mode(&host, mode).map_err(write_err("chmod"))?;
                set_times(&host, atime, mtime).map_err(write_err("set times on"))?;
            }
            other => {
                return Err(ArchiveError::Unsupported {
                    archive: label.to_string(),
                    entry: name.to_string_lossy().into_owned(),
                    kind: char::from(other.as_byte()),
                })
            }
        }
        for (key, value) in &xattrs {
            if key.starts_with(b"trusted.overlay.") || key.starts_with(b"user.overlay.") {
                continue;
            }
            if let Err(e) = set_xattr(&host, key, value) {
                tracing::debug!(path = %host.display(), error = %e, "cannot apply archive xattr");
            }
        }
        if kind != tar::EntryType::Directory {
            counters.files.fetch_add(1, Ordering::Relaxed);
        }
    }
    for (rel, atime, mtime) in dir_times.iter().rev() {
        set_times(&fs.host(rel), *atime, *mtime).map_err(|source| ArchiveError::Write {
            archive: label.to_string(),
            op: "set times on",
            path: image_path(rel),
            source,
        })?;
    }
    Ok(())
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
