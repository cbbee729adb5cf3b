//! Writing a snapshot directory as a layer tar: deterministic and streamed.
//!
//! The same directory always gives the same bytes, so the diff ID (sha256
//! of the tar) identifies the content: entries depth-first with children
//! sorted by name bytes, numeric owners only (no user/group names), mtimes
//! in whole seconds as on disk (optionally clamped, for
//! SOURCE_DATE_EPOCH), no atime/ctime, ustar headers with PAX records only
//! for xattrs and names too long for ustar. The root directory itself gets
//! no entry (docker's layer tars have none either).
//!
//! Overlay form becomes OCI form: a 0/0 character device `name` becomes an
//! empty regular file `.wh.name` (mode 0, like moby's overlay converter),
//! an opaque directory gets a `.wh..wh..opq` entry right after it, and the
//! `trusted.overlay.*`/`user.overlay.*` xattrs are never written. Whiteouts
//! are converted *before* hard-link detection: the kernel may make several
//! whiteouts hard links of one shared inode (see KERNEL-NOTES), and they
//! must not become hard links to each other in the tar.

use super::{
    is_overlay_xattr, Xattrs, OVERLAY_OPAQUE_XATTR, USER_OVERLAY_OPAQUE_XATTR, WHITEOUT_OPAQUE,
    WHITEOUT_PREFIX,
};
use crate::image::digest::{Digest, DigestWriter};
use std::collections::HashMap;
use std::fs::{self, File, Metadata};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use tar::{EntryType, Header};

/// What went wrong turning a snapshot into a tar.
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    #[error("{path}: {op}")]
    Io {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("writing layer tar")]
    Write(#[source] io::Error),
}

/// Knobs for [`write_tar`].
#[derive(Debug, Clone, Copy, Default)]
pub struct DiffOptions {
    /// Clamp every mtime to at most this (SOURCE_DATE_EPOCH semantics).
    pub clamp_mtime: Option<u64>,
    /// Remove overlayfs xattrs other than `opaque` from the directory while
    /// walking it (for a RUN's upper dir becoming a snapshot: `redirect`,
    /// `origin`, `impure` must not follow it into a lower dir).
    pub strip_overlay_meta: bool,
}

/// The result of writing a tar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiffStats {
    /// sha256 of the uncompressed tar: the layer's diff ID.
    pub diff_id: Digest,
    /// Length of the tar in bytes.
    pub tar_size: u64,
    /// Bytes of regular-file content (hard links once).
    pub content_size: u64,
}

/// Writes `dir` as a tar to `out`, hashing as it goes.
pub fn write_tar<W: Write>(
    dir: &Path,
    out: W,
    opts: DiffOptions,
) -> Result<(W, DiffStats), DiffError> {
    let mut w = Walker {
        builder: tar::Builder::new(DigestWriter::new(out)),
        opts,
        inodes: HashMap::new(),
        content_size: 0,
    };
    let root_meta = lstat(dir)?;
    if w.is_opaque(dir)? {
        w.opaque_marker(b"", &root_meta)?;
    }
    w.children(dir, b"")?;
    let inner = w.builder.into_inner().map_err(DiffError::Write)?;
    let (out, diff_id, tar_size) = inner.finish();
    Ok((
        out,
        DiffStats {
            diff_id,
            tar_size,
            content_size: w.content_size,
        },
    ))
}

/// Computes a directory's diff ID and sizes without keeping the tar.
pub fn diff_id_of(dir: &Path, opts: DiffOptions) -> Result<DiffStats, DiffError> {
    write_tar(dir, io::sink(), opts).map(|(_, s)| s)
}

fn lstat(path: &Path) -> Result<Metadata, DiffError> {
    fs::symlink_metadata(path).map_err(|e| DiffError::Io {
        path: path.to_path_buf(),
        op: "lstat",
        source: e,
    })
}

struct Walker<W: Write> {
    builder: tar::Builder<DigestWriter<W>>,
    opts: DiffOptions,
    /// (dev, ino) → name of the first entry written for a multiply-linked
    /// inode, for hard-link entries.
    inodes: HashMap<(u64, u64), Vec<u8>>,
    content_size: u64,
}

impl<W: Write> Walker<W> {
    fn children(&mut self, dir: &Path, prefix: &[u8]) -> Result<(), DiffError> {
        let io_err = |op, e| DiffError::Io {
            path: dir.to_path_buf(),
            op,
            source: e,
        };
        let mut names: Vec<Vec<u8>> = fs::read_dir(dir)
            .map_err(|e| io_err("reading directory", e))?
            .map(|e| e.map(|e| e.file_name().as_bytes().to_vec()))
            .collect::<Result<_, _>>()
            .map_err(|e| io_err("reading directory", e))?;
        names.sort();
        for name in names {
            let path = dir.join(std::ffi::OsStr::from_bytes(&name));
            let mut rel = prefix.to_vec();
            rel.extend_from_slice(&name);
            self.entry(&path, &name, rel)?;
        }
        Ok(())
    }

    fn entry(&mut self, path: &Path, name: &[u8], rel: Vec<u8>) -> Result<(), DiffError> {
        let md = lstat(path)?;
        let ft = md.file_type();
        let mut h = Header::new_ustar();
        h.set_uid(md.uid() as u64);
        h.set_gid(md.gid() as u64);
        h.set_mtime(self.mtime(&md));
        h.set_mode(md.mode() & 0o7777);
        h.set_size(0);

        // Whiteouts first, before any hard-link bookkeeping.
        if ft.is_char_device() && md.rdev() == 0 {
            let mut wh = rel[..rel.len() - name.len()].to_vec();
            wh.extend_from_slice(WHITEOUT_PREFIX.as_bytes());
            wh.extend_from_slice(name);
            h.set_entry_type(EntryType::Regular);
            h.set_mode(0);
            return self.append(h, &wh, None, Vec::new(), io::empty());
        }
        if ft.is_socket() {
            // Sockets cannot be archived; docker skips them too.
            return Ok(());
        }
        let xattrs = self.xattrs(path, ft.is_dir())?;
        if ft.is_dir() {
            let mut dname = rel.clone();
            dname.push(b'/');
            h.set_entry_type(EntryType::Directory);
            self.append(h, &dname, None, xattrs, io::empty())?;
            if self.is_opaque(path)? {
                self.opaque_marker(&dname, &md)?;
            }
            return self.children(path, &dname);
        }
        if md.nlink() > 1 {
            let key = (md.dev(), md.ino());
            if let Some(first) = self.inodes.get(&key).cloned() {
                h.set_entry_type(EntryType::Link);
                return self.append(h, &rel, Some(&first), Vec::new(), io::empty());
            }
            self.inodes.insert(key, rel.clone());
        }
        if ft.is_file() {
            let file = File::options()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(path)
                .map_err(|e| DiffError::Io {
                    path: path.to_path_buf(),
                    op: "opening file",
                    source: e,
                })?;
            h.set_entry_type(EntryType::Regular);
            h.set_size(md.len());
            self.content_size += md.len();
            // Read no more than the size in the header, even if the file
            // grew since lstat; a shrunk file fails the copy below.
            return self.append(h, &rel, None, xattrs, io::Read::take(file, md.len()));
        }
        if ft.is_symlink() {
            let target = fs::read_link(path).map_err(|e| DiffError::Io {
                path: path.to_path_buf(),
                op: "reading symlink",
                source: e,
            })?;
            h.set_entry_type(EntryType::Symlink);
            let t = target.as_os_str().as_bytes().to_vec();
            return self.append(h, &rel, Some(&t), xattrs, io::empty());
        }
        let kind = if ft.is_char_device() {
            EntryType::Char
        } else if ft.is_block_device() {
            EntryType::Block
        } else {
            EntryType::Fifo
        };
        h.set_entry_type(kind);
        if kind != EntryType::Fifo {
            let dev = md.rdev();
            h.set_device_major(libc::major(dev))
                .map_err(DiffError::Write)?;
            h.set_device_minor(libc::minor(dev))
                .map_err(DiffError::Write)?;
        }
        self.append(h, &rel, None, xattrs, io::empty())
    }

    fn mtime(&self, md: &Metadata) -> u64 {
        let t = md.mtime().max(0) as u64;
        match self.opts.clamp_mtime {
            Some(c) => t.min(c),
            None => t,
        }
    }

    fn is_opaque(&self, dir: &Path) -> Result<bool, DiffError> {
        for key in [OVERLAY_OPAQUE_XATTR, USER_OVERLAY_OPAQUE_XATTR] {
            let v = xattr::get(dir, key).map_err(|e| DiffError::Io {
                path: dir.to_path_buf(),
                op: "reading xattr",
                source: e,
            })?;
            if v.as_deref() == Some(b"y") {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// `dir/.wh..wh..opq`: an empty file with the directory's owner and
    /// permission bits (as moby's overlay converter writes it).
    fn opaque_marker(&mut self, dname: &[u8], md: &Metadata) -> Result<(), DiffError> {
        let mut h = Header::new_ustar();
        h.set_entry_type(EntryType::Regular);
        h.set_uid(md.uid() as u64);
        h.set_gid(md.gid() as u64);
        h.set_mode(md.mode() & 0o777);
        h.set_mtime(self.mtime(md));
        h.set_size(0);
        let mut name = dname.to_vec();
        name.extend_from_slice(WHITEOUT_OPAQUE.as_bytes());
        self.append(h, &name, None, Vec::new(), io::empty())
    }

    /// The xattrs to archive, sorted; overlayfs's own are left out (and
    /// removed from disk when `strip_overlay_meta`, except `opaque`).
    fn xattrs(&self, path: &Path, is_dir: bool) -> Result<Xattrs, DiffError> {
        let io_err = |e| DiffError::Io {
            path: path.to_path_buf(),
            op: "reading xattrs",
            source: e,
        };
        let mut out = Vec::new();
        let names = match xattr::list(path) {
            Ok(n) => n,
            // Filesystems without xattr support have none to archive.
            Err(e) if e.raw_os_error() == Some(libc::ENOTSUP) => return Ok(out),
            Err(e) => return Err(io_err(e)),
        };
        for name in names {
            let nb = name.as_bytes();
            if is_overlay_xattr(nb) {
                let opaque = is_dir
                    && (nb == OVERLAY_OPAQUE_XATTR.as_bytes()
                        || nb == USER_OVERLAY_OPAQUE_XATTR.as_bytes());
                if self.opts.strip_overlay_meta && !opaque {
                    xattr::remove(path, &name).map_err(io_err)?;
                }
                continue;
            }
            if let Some(v) = xattr::get(path, &name).map_err(io_err)? {
                out.push((nb.to_vec(), v));
            }
        }
        out.sort();
        Ok(out)
    }

    /// Writes one entry: PAX records first if needed, then the header and data.
    fn append(
        &mut self,
        mut h: Header,
        name: &[u8],
        link: Option<&[u8]>,
        xattrs: Xattrs,
        data: impl io::Read,
    ) -> Result<(), DiffError> {
        let mut pax: Vec<(String, Vec<u8>)> = Vec::new();
        if h.set_path(std::ffi::OsStr::from_bytes(name)).is_err() {
            // Too long for ustar's name/prefix split: the PAX `path` record
            // carries the name; the header keeps a truncated copy.
            pax.push(("path".into(), name.to_vec()));
            if let Some(u) = h.as_ustar_mut() {
                u.prefix.fill(0);
            }
            let old = &mut h.as_old_mut().name;
            old.fill(0);
            let n = name.len().min(old.len());
            old[..n].copy_from_slice(&name[..n]);
        }
        if let Some(l) = link {
            if l.len() > 100 || h.set_link_name_literal(l).is_err() {
                pax.push(("linkpath".into(), l.to_vec()));
                let old = &mut h.as_old_mut().linkname;
                let n = l.len().min(old.len());
                old[..n].copy_from_slice(&l[..n]);
            }
        }
        for (k, v) in xattrs {
            let key = format!("SCHILY.xattr.{}", String::from_utf8_lossy(&k));
            pax.push((key, v));
        }
        if !pax.is_empty() {
            self.builder
                .append_pax_extensions(pax.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
                .map_err(DiffError::Write)?;
        }
        h.set_cksum();
        self.builder.append(&h, data).map_err(DiffError::Write)
    }
}

#[cfg(test)]
#[path = "diff_tests.rs"]
mod tests;
