//! Reading a tar entry's metadata the way Go's archive/tar (and so docker
//! and BuildKit) does: PAX records override ustar fields (Go's reader
//! `mergePAX`), empty numeric fields read as 0, old tars' directories
//! typed as regular files are directories, overlayfs's own xattrs are
//! dropped. The one reader for both image layers (`extract`) and `ADD`'s
//! local archives (`exec::archive`), so the two agree on every entry.

use super::{is_overlay_xattr, Xattrs};
use nix::sys::time::TimeSpec;
use std::io::{self, Read};
use tar::EntryType;

/// Metadata of one entry, with PAX overrides applied.
#[derive(Clone, Copy)]
pub struct Meta {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: TimeSpec,
    /// The PAX `atime` record, if any (ustar has no access time).
    pub atime: Option<TimeSpec>,
}

/// The entry's type as Go's archive/tar reports it: old (pre-POSIX) tars
/// mark directories as regular files whose name ends in `/` (Go's reader
/// turns `TypeRegA` into `TypeDir` for them); `name` is the entry's path.
pub fn entry_type<R: Read>(entry: &tar::Entry<R>, name: &[u8]) -> EntryType {
    if entry.header().as_bytes()[156] == 0 && name.ends_with(b"/") {
        return EntryType::Directory;
    }
    entry.header().entry_type()
}

/// Reads mode/owner/mtime/atime (PAX records override the ustar fields, as
/// in POSIX pax, so an owner past ustar's 2097151 or given only in PAX is
/// read) and the xattrs to set (overlayfs's own are dropped).
pub fn read_meta<R: Read>(entry: &mut tar::Entry<R>) -> io::Result<(Meta, Xattrs)> {
    let h = entry.header();
    let old = h.as_old();
    let mut meta = Meta {
        mode: lenient(&old.mode, h.mode().map(u64::from))? as u32 & 0o7777,
        uid: lenient(&old.uid, h.uid())? as u32,
        gid: lenient(&old.gid, h.gid())? as u32,
        mtime: TimeSpec::new(lenient(&old.mtime, h.mtime())? as i64, 0),
        atime: None,
    };
    let mut xattrs = Vec::new();
    if let Some(pax) = entry.pax_extensions()? {
        for ext in pax {
            let ext = ext?;
            let key = ext.key_bytes();
            let value = ext.value_bytes();
            if let Some(name) = key.strip_prefix(b"SCHILY.xattr.") {
                if !is_overlay_xattr(name) {
                    xattrs.push((name.to_vec(), value.to_vec()));
                }
            } else if key == b"uid" {
                meta.uid = parse_num(value)? as u32;
            } else if key == b"gid" {
                meta.gid = parse_num(value)? as u32;
            } else if key == b"mtime" {
                meta.mtime = parse_time(value)?;
            } else if key == b"atime" {
                meta.atime = Some(parse_time(value)?);
            }
        }
    }
    Ok((meta, xattrs))
}

/// An empty numeric header field (all NUL or spaces) reads as 0, as Go's
/// archive/tar (and so docker) reads it; tar-rs would refuse it.
fn lenient(field: &[u8], parsed: io::Result<u64>) -> io::Result<u64> {
    if field.iter().all(|&b| b == 0 || b == b' ') {
        return Ok(0);
    }
    parsed
}

fn bad_pax() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, "malformed PAX record")
}

fn parse_num(v: &[u8]) -> io::Result<u64> {
    std::str::from_utf8(v)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(bad_pax)
}

/// A PAX time: `seconds[.fraction]`, possibly negative.
fn parse_time(v: &[u8]) -> io::Result<TimeSpec> {
    let s = std::str::from_utf8(v).map_err(|_| bad_pax())?;
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: i64 = secs.parse().map_err(|_| bad_pax())?;
    if secs < 0 {
        // Pre-1970 times keep whole seconds only; a negative fraction
        // cannot be expressed in a timespec.
        return Ok(TimeSpec::new(secs, 0));
    }
    let digits: String = frac.chars().take(9).collect();
    let nanos: i64 = if digits.is_empty() {
        0
    } else {
        format!("{digits:0<9}").parse().map_err(|_| bad_pax())?
    };
    Ok(TimeSpec::new(secs, nanos))
}
