//! Where an archive output (`kiln save -o`, `build --output
//! type=oci|docker|tar,dest=`) may be written.
//!
//! A regular file (or a new name) is written through a temporary file
//! renamed over it, so a failed save leaves nothing half-written. A path
//! that exists and is not a regular file is never renamed over: that
//! would turn `/dev/full` or a FIFO a reader waits on into a plain file.
//! A FIFO (and `/dev/stdout` pointing at a pipe) or a character device is
//! written in place, as `docker save -o /dev/full` does — which then
//! fails with the device's ENOSPC instead of succeeding silently. Other
//! types (directories, sockets, block devices) are refused: overwriting a
//! disk with an image tar is never what a user meant.

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// The file to write `dest` through in place, or `None` when `dest` is a
/// regular file or does not exist (write a temporary file and rename it).
/// Symlinks are followed, so `/dev/stdout` is whatever fd 1 is.
pub fn open_in_place(dest: &Path) -> io::Result<Option<File>> {
    let ft = match std::fs::metadata(dest) {
        Ok(md) => md.file_type(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    if ft.is_file() {
        return Ok(None);
    }
    let refuse = |what: &str| {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("is {what}, not a file, a FIFO or a character device"),
        ))
    };
    if ft.is_dir() {
        return refuse("a directory");
    }
    if ft.is_block_device() {
        return refuse("a block device");
    }
    if ft.is_socket() {
        return refuse("a socket");
    }
    // A FIFO or a character device: no O_CREAT (nothing may appear in its
    // place), no O_TRUNC (meaningless there), and a terminal never becomes
    // kiln's controlling one.
    let file = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open(dest)?;
    if std::io::IsTerminal::is_terminal(&file) {
        // docker's refusal for stdout, for the same reason: a tar on a
        // terminal is noise.
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "is a terminal: refusing to write an archive to it",
        ));
    }
    Ok(Some(file))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_and_missing_files_are_replaced_fifos_written_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, "x").unwrap();
        assert!(open_in_place(&file).unwrap().is_none());
        assert!(open_in_place(&dir.path().join("new")).unwrap().is_none());
        assert!(open_in_place(dir.path()).is_err());
        assert!(open_in_place(Path::new("/dev/null")).unwrap().is_some());
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        // Opened read-write by a reader first, so the writer's open returns.
        let _reader = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&fifo)
            .unwrap();
        assert!(open_in_place(&fifo).unwrap().is_some());
    }
}
