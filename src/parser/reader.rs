//! The line loop of BuildKit's `parser.Parse`: physical lines → logical
//! instructions → [`RawDockerfile`].
//!
//! Per physical line, in BuildKit's order: strip a UTF-8 BOM (first line
//! only); remember comments; trim the line ending and leading white space;
//! offer the line to the directive parser; drop it if it is a comment; strip
//! a trailing escape character (plus spaces/tabs after it) as a line
//! continuation. While continuing, comment lines are skipped and empty lines
//! skipped with a warning; continuation lines keep their leading white space.
//! The joined line is split into a statement ([`super::statement`]); then, for
//! RUN/COPY/ADD lines with heredoc markers, the bodies are read from the
//! following lines.

use super::directive::DirectiveParser;
use super::error::{ErrorKind, ParseError};
use super::heredoc::{markers_in_line, Heredoc};
use super::node::{Node, RawDockerfile, Statement, Warning};
use super::position::LineMap;
use super::position::Position;
use super::scanner::LineScanner;
use super::statement::parse_statement;
use super::text::{go_lossy, trim_left_space, trim_space};

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Parses Dockerfile source into BuildKit's raw tree. `file` only labels
/// errors.
pub fn parse_raw(file: &str, source: &[u8]) -> Result<RawDockerfile, ParseError> {
    let fail = |position: Position, kind: ErrorKind| ParseError::new(file, source, position, kind);
    let mut scanner = LineScanner::new(source);
    let mut directives = DirectiveParser::new();
    let mut current_line = 0usize;
    let mut nodes: Vec<Node> = Vec::new();
    let mut warnings = Vec::new();
    let mut comments: Vec<String> = Vec::new();
    let mut buf: Vec<u8> = Vec::new();
    let mut map = LineMap::new(source);

    while let Some(first) = scanner.next() {
        let mut bytes = first.bytes;
        let mut line_start = first.start;
        if current_line == 0 && bytes.starts_with(BOM) {
            bytes = &bytes[BOM.len()..];
            line_start += BOM.len();
        }
        if is_comment(bytes) {
            // BuildKit drops the line's first byte (normally the `#`).
            let text = trim_space(&bytes[1..]);
            if text.is_empty() {
                comments.clear();
            } else {
                comments.push(go_lossy(text).into_owned());
            }
        }
        let token = trim_left_space(trim_newline(bytes));
        let lead = bytes.len() - trim_left_space(bytes).len();
        let line_no = current_line + 1;
        let is_directive = directives
            .parse_line(token, line_no)
            .map_err(|k| fail(Position::locate(source, line_no, line_start, lead), k))?;
        if is_directive {
            comments.pop();
        }
        let token: &[u8] = if is_comment(token) { &[] } else { token };
        current_line += 1;
        let start_line = current_line;
        let escape = directives.escape();
        let (piece, mut end_of_line) = trim_continuation(token, escape);
        if end_of_line && piece.is_empty() {
            continue;
        }
        buf.clear();
        buf.extend_from_slice(piece);
        map.clear();
        map.push(0, current_line, line_start, lead);

        let mut has_empty_continuation = false;
        while !end_of_line {
            let Some(next) = scanner.next() else { break };
            let token = trim_newline(next.bytes);
            // The directive block is always over here (the first line of an
            // instruction ended it), so this only keeps BuildKit's order.
            directives
                .parse_line(token, current_line + 1)
                .map_err(|k| fail(Position::locate(source, current_line + 1, next.start, 0), k))?;
            current_line += 1;
            if is_comment(next.bytes) {
                continue;
            }
            if trim_left_space(token).is_empty() {
                has_empty_continuation = true;
                continue;
            }
            let (piece, eol) = trim_continuation(token, escape);
            end_of_line = eol;
            map.push(buf.len(), current_line, next.start, 0);
            buf.extend_from_slice(piece);
        }

        if has_empty_continuation {
            warnings.push(Warning {
                line: current_line,
                message: format!("empty continuation line found in: {}", go_lossy(&buf)),
            });
        }

        let (statement, triggers) =
            statement_and_triggers(&buf, escape, &mut map).map_err(|(k, p)| fail(p, k))?;
        let name_off = buf.len() - trim_left_space(&buf).len();
        let mut node = Node {
            position: map.position(name_off),
            statement,
            triggers,
            heredocs: Vec::new(),
            original: buf.clone(),
            start_line,
            end_line: start_line,
            comments: std::mem::take(&mut comments),
        };

        if can_contain_heredoc(&node) && contains(&buf, b"<<") {
            node.heredocs = read_heredocs(&mut scanner, &buf, &mut current_line)
                .map_err(|k| fail(node.position, k))?;
        }
        node.end_line = current_line;
        nodes.push(node);
    }

    if nodes.is_empty() {
        return Err(fail(
            Position { line: 1, column: 1 },
            ErrorKind::NoInstructions,
        ));
    }
    if scanner.too_long() {
        let line = current_line + 1;
        return Err(fail(Position { line, column: 1 }, ErrorKind::LineTooLong));
    }
    Ok(RawDockerfile {
        file: file.to_string(),
        escape: char::from(directives.escape()),
        directives: directives.into_found(),
        nodes,
        warnings,
        source: source.to_vec(),
    })
}

/// The statement of a joined line and, for ONBUILD, the statements of
/// its trigger (and of a trigger's trigger, when ONBUILD is nested).
fn statement_and_triggers(
    buf: &[u8],
    escape: u8,
    map: &mut LineMap<'_>,
) -> Result<(Statement, Vec<Statement>), (ErrorKind, Position)> {
    let first = parse_statement(buf, 0, escape, map)?;
    let mut triggers = Vec::new();
    let mut pending = first.trigger;
    while let Some((text, base)) = pending {
        let parsed = parse_statement(text, base, escape, map)?;
        triggers.push(parsed.statement);
        pending = parsed.trigger;
    }
    Ok((first.statement, triggers))
}

/// The bodies of the heredocs `line` opens, in order, read from the lines
/// after it: each up to the line that is its marker's name (after leading
/// tabs, for `<<-`), kept with their line endings; a body never closed is
/// an error. `current_line` counts the lines read.
fn read_heredocs(
    scanner: &mut LineScanner<'_>,
    line: &[u8],
    current_line: &mut usize,
) -> Result<Vec<Heredoc>, ErrorKind> {
    let mut heredocs = Vec::new();
    for marker in markers_in_line(line).map_err(ErrorKind::HeredocLexing)? {
        let mut content = Vec::new();
        let mut terminated = false;
        for line in scanner.by_ref() {
            *current_line += 1;
            let mut candidate = trim_newline(line.bytes);
            if marker.chomp {
                let tabs = candidate.iter().take_while(|&&b| b == b'\t').count();
                candidate = &candidate[tabs..];
            }
            if candidate == marker.name.as_bytes() {
                terminated = true;
                break;
            }
            content.extend_from_slice(line.bytes);
        }
        if !terminated {
            return Err(ErrorKind::UnterminatedHeredoc(marker.name));
        }
        heredocs.push(Heredoc {
            name: marker.name,
            fd: marker.fd,
            expand: marker.expand,
            chomp: marker.chomp,
            content,
        });
    }
    Ok(heredocs)
}

/// BuildKit's `canContainHeredoc`: RUN, COPY, ADD (directly or as the first
/// ONBUILD trigger), not in JSON form.
fn can_contain_heredoc(node: &Node) -> bool {
    let mut stmt = &node.statement;
    if stmt.keyword() == Some("onbuild") {
        if let Some(t) = node.triggers.first() {
            stmt = t;
        }
    }
    matches!(stmt.keyword(), Some("run" | "copy" | "add")) && !stmt.json
}

/// A comment line: `#` after leading white space.
fn is_comment(line: &[u8]) -> bool {
    trim_left_space(line).first() == Some(&b'#')
}

/// Go's `bytes.TrimRight(s, "\r\n")`.
fn trim_newline(line: &[u8]) -> &[u8] {
    let mut end = line.len();
    while end > 0 && matches!(line[end - 1], b'\r' | b'\n') {
        end -= 1;
    }
    &line[..end]
}

/// BuildKit's continuation regexp `([^E])E[ \t]*$|^E[ \t]*$` for escape
/// character E: a trailing E (spaces and tabs after it allowed) continues
/// the line unless another E precedes it. Returns the line without the E
/// and whether the logical line ends here.
fn trim_continuation(line: &[u8], escape: u8) -> (&[u8], bool) {
    let mut end = line.len();
    while end > 0 && matches!(line[end - 1], b' ' | b'\t') {
        end -= 1;
    }
    if end == 0 || line[end - 1] != escape {
        return (line, true);
    }
    let at = end - 1;
    if at == 0 || line[at - 1] != escape {
        (&line[..at], false)
    } else {
        (line, true)
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuation_rule() {
        assert_eq!(
            trim_continuation(b"RUN a \\", b'\\'),
            (&b"RUN a "[..], false)
        );
        assert_eq!(
            trim_continuation(b"RUN a \\ \t", b'\\'),
            (&b"RUN a "[..], false)
        );
        assert_eq!(trim_continuation(b"\\", b'\\'), (&b""[..], false));
        assert_eq!(trim_continuation(b"a\\\\", b'\\'), (&b"a\\\\"[..], true));
        assert_eq!(trim_continuation(b"a`", b'`'), (&b"a"[..], false));
        assert_eq!(trim_continuation(b"a\\", b'`'), (&b"a\\"[..], true));
        assert_eq!(trim_continuation(b"", b'\\'), (&b""[..], true));
    }

    fn dump(src: &str) -> String {
        parse_raw("Dockerfile", src.as_bytes()).unwrap().dump()
    }

    #[test]
    fn heredocs_are_read_and_skipped() {
        let raw = parse_raw(
            "Dockerfile",
            b"FROM a\nRUN <<A <<-B\nx\nA\n\ty\n\tB\nRUN z\n",
        )
        .unwrap();
        assert_eq!(raw.dump(), "(from \"a\")\n(run \"<<A <<-B\")\n(run \"z\")");
        let docs = &raw.nodes[1].heredocs;
        assert_eq!(docs[0].content, b"x\n");
        assert_eq!(docs[1].content, b"\ty\n");
        assert_eq!((raw.nodes[1].start_line, raw.nodes[1].end_line), (2, 6));
    }

    #[test]
    fn comments_and_empty_lines_inside_continuations() {
        let src = "FROM a\nRUN a \\\n# c\n\n  b\n";
        assert_eq!(dump(src), "(from \"a\")\n(run \"a   b\")");
        let raw = parse_raw("Dockerfile", src.as_bytes()).unwrap();
        assert_eq!(raw.warnings.len(), 1);
    }

    #[test]
    fn bom_crlf_and_escape_directive() {
        assert_eq!(
            dump("\u{feff}# escape=`\r\nFROM a\r\nRUN x `\r\n y\r\n"),
            "(from \"a\")\n(run \"x  y\")"
        );
    }

    #[test]
    fn onbuild_chains_are_flat() {
        let raw = parse_raw("Dockerfile", b"ONBUILD ONBUILD RUN x").unwrap();
        assert_eq!(raw.nodes[0].triggers.len(), 2);
        assert_eq!(raw.dump(), "(onbuild (onbuild (run \"x\")))");
    }

    #[test]
    fn very_deep_onbuild_chains_stay_linear() {
        let src = format!("{}RUN x\n", "ONBUILD \\\n".repeat(20_000));
        let raw = parse_raw("Dockerfile", src.as_bytes()).unwrap();
        assert_eq!(raw.nodes[0].triggers.len(), 20_000);
        let dump = raw.dump();
        assert!(dump.starts_with("(onbuild (onbuild "));
        assert!(dump.ends_with(&format!("(run \"x\"){}", ")".repeat(20_000))));
    }

    #[test]
    fn errors() {
        let e = |s: &str| parse_raw("Dockerfile", s.as_bytes()).unwrap_err();
        assert_eq!(e("").kind, ErrorKind::NoInstructions);
        assert_eq!(e("# only\n\n").kind, ErrorKind::NoInstructions);
        assert_eq!(
            e("RUN <<EOF\nx\n").kind,
            ErrorKind::UnterminatedHeredoc("EOF".into())
        );
        let dup = e("# escape=`\n# escape=`\nFROM a");
        assert_eq!(dup.kind, ErrorKind::DuplicateDirective("escape".into()));
        assert_eq!(dup.position, Position { line: 2, column: 1 });
        let env = e("FROM a\nENV  PATH");
        assert_eq!(env.position, Position { line: 2, column: 6 });
    }

    /// BuildKit's TestParseWarnsOnEmptyContinutationLine.
    #[test]
    fn warns_on_empty_continuation_lines_only() {
        let src = "\nFROM alpine:3.6\n\nRUN valid \\\n    continuation\n\nRUN something \\\n\n    following \\\n\n    more\n\nRUN another \\\n\n    thing\n\nRUN non-indented \\\n# this is a comment\n   after-comment\n\nRUN indented \\\n    # this is an indented comment\n    comment\n\t";
        let raw = parse_raw("Dockerfile", src.as_bytes()).unwrap();
        assert_eq!(raw.warnings.len(), 2);
        assert!(raw.warnings[0]
            .message
            .contains("RUN something     following     more"));
        assert!(raw.warnings[1].message.contains("RUN another     thing"));
    }

    /// BuildKit's TestParseReturnsScannerErrors.
    #[test]
    fn scanner_errors_are_reported() {
        let src = format!("\n\t\tFROM image\n\t\tLABEL test={}\n", "a".repeat(65_536));
        let err = parse_raw("Dockerfile", src.as_bytes()).unwrap_err();
        assert_eq!(err.kind, ErrorKind::LineTooLong);
    }
}
