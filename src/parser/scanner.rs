//! Physical lines of a Dockerfile, split the way BuildKit's scanner splits them.
//!
//! BuildKit reads with a `bufio.Scanner` whose split function keeps the line
//! ending (heredoc bodies need it) and whose buffer tops out at 64 KiB
//! (`bufio.MaxScanTokenSize`). A line that does not fit stops the scan, and
//! BuildKit then reports `dockerfile line greater than max allowed size of
//! 65535` unless an earlier error (no instructions, unterminated heredoc)
//! takes precedence. [`LineScanner::too_long`] records that stop.

/// Largest buffered token of Go's `bufio.Scanner` (`MaxScanTokenSize`).
pub const MAX_TOKEN: usize = 64 * 1024;

/// One physical line: its byte offset in the source and its bytes including
/// the `\n` (absent on a last line without one).
#[derive(Debug, Clone, Copy)]
pub struct PhysicalLine<'a> {
    pub start: usize,
    pub bytes: &'a [u8],
}

/// Iterator over physical lines with BuildKit's size limit.
pub struct LineScanner<'a> {
    src: &'a [u8],
    pos: usize,
    too_long: bool,
}

impl<'a> LineScanner<'a> {
    pub fn new(src: &'a [u8]) -> Self {
        LineScanner {
            src,
            pos: 0,
            too_long: false,
        }
    }

    /// Whether scanning stopped at a line longer than the scanner's buffer.
    pub fn too_long(&self) -> bool {
        self.too_long
    }
}

impl<'a> Iterator for LineScanner<'a> {
    type Item = PhysicalLine<'a>;

    fn next(&mut self) -> Option<PhysicalLine<'a>> {
        if self.too_long || self.pos >= self.src.len() {
            return None;
        }
        let rest = &self.src[self.pos..];
        let window = &rest[..rest.len().min(MAX_TOKEN)];
        let len = match window.iter().position(|&b| b == b'\n') {
            Some(i) => i + 1,
            // The scanner only learns about EOF from a read that returns no
            // data; a final line that fills the whole buffer trips the size
            // check first, so the last unterminated line must be < 64 KiB.
            None if rest.len() < MAX_TOKEN => rest.len(),
            None => {
                self.too_long = true;
                return None;
            }
        };
        let line = PhysicalLine {
            start: self.pos,
            bytes: &rest[..len],
        };
        self.pos += len;
        Some(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(src: &[u8]) -> (Vec<Vec<u8>>, bool) {
        let mut s = LineScanner::new(src);
        let v = s.by_ref().map(|l| l.bytes.to_vec()).collect();
        (v, s.too_long())
    }

    #[test]
    fn keeps_line_endings() {
        let (v, long) = lines(b"a\r\nb\n\nc");
        assert_eq!(
            v,
            vec![
                b"a\r\n".to_vec(),
                b"b\n".to_vec(),
                b"\n".to_vec(),
                b"c".to_vec()
            ]
        );
        assert!(!long);
    }

    #[test]
    fn size_limit_matches_bufio() {
        let mut ok = vec![b'x'; MAX_TOKEN - 1];
        ok.push(b'\n');
        assert_eq!(lines(&ok).0.len(), 1);
        let mut bad = vec![b'x'; MAX_TOKEN];
        bad.push(b'\n');
        let (v, long) = lines(&bad);
        assert!(v.is_empty() && long);
        let last = vec![b'x'; MAX_TOKEN - 1];
        assert_eq!(lines(&last).0.len(), 1);
        let last_full = vec![b'x'; MAX_TOKEN];
        assert!(lines(&last_full).1);
    }
}
