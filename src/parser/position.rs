//! Source positions: where an instruction, flag or argument is, in lines
//! and characters, even after continuation lines were joined.

use super::text::rune_count;
use serde::Serialize;

/// A place in the source: 1-based line, 1-based column counted in
/// characters (each invalid UTF-8 byte counts as one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize)]
pub struct Position {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
}

impl Position {
    /// The position `byte_col` bytes into the physical line that starts at
    /// `line_start` in `source`.
    pub fn locate(source: &[u8], line: usize, line_start: usize, byte_col: usize) -> Position {
        let end = (line_start + byte_col).min(source.len());
        let start = line_start.min(end);
        Position {
            line,
            column: rune_count(&source[start..end]) + 1,
        }
    }
}

/// Maps byte offsets of a logical (continuation-joined) line back to
/// positions in the source.
pub struct LineMap<'a> {
    source: &'a [u8],
    /// `(offset in the joined line, 1-based line, line start in source,
    /// byte column where this piece starts)`, in order.
    segments: Vec<(usize, usize, usize, usize)>,
    /// Last answer, so that increasing queries on one line cost O(distance).
    cache: Option<(usize, usize, Position)>,
}

impl<'a> LineMap<'a> {
    pub fn new(source: &'a [u8]) -> Self {
        LineMap {
            source,
            segments: Vec::new(),
            cache: None,
        }
    }

    /// Forgets the previous logical line (keeps the allocation).
    pub fn clear(&mut self) {
        self.segments.clear();
        self.cache = None;
    }

    /// Records that the joined line continues at `joined` with the piece of
    /// physical line `line` (starting at `line_start`) from `byte_col` on.
    pub fn push(&mut self, joined: usize, line: usize, line_start: usize, byte_col: usize) {
        self.segments.push((joined, line, line_start, byte_col));
    }

    /// The source position of byte `offset` of the joined line.
    pub fn position(&mut self, offset: usize) -> Position {
        // Segments are sorted by joined offset; take the last one starting
        // at or before `offset` (binary search: lines can have thousands).
        let idx = self
            .segments
            .partition_point(|s| s.0 <= offset)
            .saturating_sub(1);
        let Some(&(joined, line, line_start, byte_col)) = self.segments.get(idx) else {
            return Position { line: 1, column: 1 };
        };
        let abs = line_start + byte_col + (offset - joined.min(offset));
        if let Some((cidx, cabs, cpos)) = self.cache {
            if cidx == idx && cabs <= abs && abs <= self.source.len() {
                let extra = super::text::rune_count(&self.source[cabs..abs]);
                let pos = Position {
                    line,
                    column: cpos.column + extra,
                };
                self.cache = Some((idx, abs, pos));
                return pos;
            }
        }
        let pos = Position::locate(self.source, line, line_start, abs - line_start);
        self.cache = Some((idx, abs, pos));
        pos
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locate_counts_characters() {
        let src = "é\tRUN".as_bytes();
        assert_eq!(
            Position::locate(src, 1, 0, 3),
            Position { line: 1, column: 3 }
        );
    }

    #[test]
    fn joined_offsets_map_back_to_physical_lines() {
        let src = b"RUN a \\\n   --x b\n";
        let mut map = LineMap::new(src);
        map.push(0, 1, 0, 0);
        map.push(6, 2, 8, 0);
        assert_eq!(map.position(4), Position { line: 1, column: 5 });
        assert_eq!(map.position(9), Position { line: 2, column: 4 });
        assert_eq!(map.position(12), Position { line: 2, column: 7 });
        map.clear();
        map.push(0, 2, 8, 3);
        assert_eq!(map.position(0), Position { line: 2, column: 4 });
    }
}
