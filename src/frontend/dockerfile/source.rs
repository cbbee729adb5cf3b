//! The Dockerfile excerpt BuildKit prints with an error or a check
//! warning: the file and first line, then the lines around the range
//! with `>>>` on the lines inside it (moby/buildkit
//! `solver/errdefs/source.go`, `Source.Print`).

/// The excerpt of `data` (the Dockerfile named `file`) for lines
/// `start..=end` (1-based), or `None` when the range is outside the file.
///
/// BuildKit pads a one-line range with up to four lines of context and a
/// longer one with two, taking them before and after in turn, and splits
/// the text on `\n` only, so a final newline shows as an empty last line.
pub fn excerpt(file: &str, data: &[u8], start: usize, end: usize) -> Option<String> {
    let text = String::from_utf8_lossy(data);
    let lines: Vec<&str> = text.split('\n').collect();
    let (range_start, range_end) = (start, end.max(start));
    if start < 1 || start > lines.len() {
        return None;
    }
    let mut end = range_end.min(lines.len());
    let mut start = start;
    let pad = if end == start { 4 } else { 2 };
    let mut p = 0;
    while p < pad {
        if start > 1 {
            start -= 1;
            p += 1;
        }
        if end != lines.len() {
            end += 1;
            p += 1;
        }
        p += 1;
    }
    let mut out = format!("{file}:{range_start}\n--------------------\n");
    for (i, line) in lines.iter().enumerate().take(end).skip(start - 1) {
        let n = i + 1;
        let marker = if (range_start..=range_end).contains(&n) {
            ">>>"
        } else {
            "   "
        };
        out.push_str(&format!(" {n:>3} | {marker} {line}\n"));
    }
    out.push_str("--------------------\n");
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_gets_context_on_both_sides() {
        let df = b"FROM busybox\nRUN true\nRUN exit 3\nRUN true\n";
        assert_eq!(
            excerpt("Dockerfile", df, 3, 3).unwrap(),
            "Dockerfile:3\n\
             --------------------\n\
             \x20  1 |     FROM busybox\n\
             \x20  2 |     RUN true\n\
             \x20  3 | >>> RUN exit 3\n\
             \x20  4 |     RUN true\n\
             \x20  5 |     \n\
             --------------------\n"
        );
    }

    #[test]
    fn a_range_is_marked_whole_with_less_context() {
        let df = b"FROM a\nRUN a \\\n  b\nCMD x\nCMD y\nCMD z";
        let out = excerpt("Dockerfile", df, 2, 3).unwrap();
        assert_eq!(
            out,
            "Dockerfile:2\n--------------------\n   1 |     FROM a\n   2 | >>> RUN a \\\n   3 | >>>   b\n   4 |     CMD x\n--------------------\n"
        );
        assert_eq!(excerpt("Dockerfile", df, 9, 9), None);
    }
}
