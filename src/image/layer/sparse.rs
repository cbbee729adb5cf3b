//! Writing a tar entry's content without filling its holes.
//!
//! A GNU sparse entry stores only its data segments; tar-rs reads the holes
//! back as zeros, so copying it naively writes the whole logical size (a
//! 10 KiB tar, a 2 GiB file). [`copy_keeping_holes`] seeks over zero blocks
//! instead of writing them and sets the length at the end, so the file on
//! disk has holes where the archive had them (and reads back the same).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};

/// The unit checked for zeros: a multiple of every file system's block
/// size, so a skipped block is a real hole.
const BLOCK: usize = 64 * 1024;

/// Copies `reader` into `file` (empty, at offset 0), leaving all-zero
/// blocks as holes; returns the bytes of content (holes included).
pub fn copy_keeping_holes(reader: &mut impl Read, file: &mut File) -> io::Result<u64> {
    let mut buf = vec![0u8; BLOCK];
    let mut len = 0u64;
    let mut pending_hole = false;
    loop {
        let n = fill(reader, &mut buf)?;
        if n == 0 {
            break;
        }
        let chunk = &buf[..n];
        if chunk.iter().all(|&b| b == 0) {
            file.seek(SeekFrom::Current(n as i64))?;
            pending_hole = true;
        } else {
            file.write_all(chunk)?;
            pending_hole = false;
        }
        len += n as u64;
    }
    // A trailing hole has no write to extend the file over it.
    if pending_hole {
        file.set_len(len)?;
    }
    Ok(len)
}

/// Reads until `buf` is full or the reader ends; returns the bytes read.
fn fill(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match reader.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn zero_blocks_become_holes_and_content_reads_back_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let mut content = vec![0u8; 8 << 20];
        content[..5].copy_from_slice(b"head!");
        content[4 << 20] = 7;
        let mut file = File::create(&path).unwrap();
        let n = copy_keeping_holes(&mut &content[..], &mut file).unwrap();
        drop(file);
        assert_eq!(n, content.len() as u64);
        assert_eq!(std::fs::read(&path).unwrap(), content);
        let md = std::fs::metadata(&path).unwrap();
        assert!(md.blocks() * 512 < 1 << 20, "{} blocks", md.blocks());
        // A trailing hole still counts in the length.
        let mut file = File::create(&path).unwrap();
        copy_keeping_holes(&mut io::repeat(0).take(3 << 20), &mut file).unwrap();
        assert_eq!(file.metadata().unwrap().len(), 3 << 20);
    }
}
