//! Heredocs: `RUN <<EOF`, `COPY <<-"EOF" /dst`, several on one line.
//!
//! BuildKit (parser.go) looks for heredocs only on RUN, COPY and ADD lines
//! (also as the trigger of an ONBUILD) that are not in JSON form and contain
//! `<<`. It splits the whole logical line into words with its shell lexer
//! (see [`super::words`]) and matches each word against
//! `^(\d*)<<(-?)\s*([^<]*)$` (the `heredoc_marker` rule of the grammar).
//! The rest of the word, lexed again with and without quote removal, gives
//! the terminator name and whether the body is expanded: any quoting in the
//! word disables expansion, as in POSIX shells. Bodies are then read from the
//! following physical lines, in order, up to a line equal to the name (after
//! stripping leading tabs for `<<-`).

use super::grammar::{DockerfileGrammar, Rule};
use super::text::go_lossy;
use super::words::process_words;
use pest::Parser;
use serde::Serialize;

/// A heredoc as BuildKit's parser records it on an instruction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Heredoc {
    /// The terminator word with quotes removed (`EOF` for `<<"EOF"`).
    pub name: String,
    /// The file descriptor written before `<<` (`2<<EOF`), 0 if none. An
    /// out-of-range number saturates, like Go's `strconv.ParseUint`.
    pub fd: u64,
    /// False when any part of the terminator word was quoted: the body is
    /// then used verbatim instead of being variable-expanded.
    pub expand: bool,
    /// `<<-`: leading tabs are stripped from the terminator line and, by the
    /// consumer, from the body lines ([`chomp`]).
    pub chomp: bool,
    /// The body bytes exactly as written, each line with its own line ending
    /// (`\r\n` included), the terminator line excluded.
    #[serde(serialize_with = "super::ast::serialize_lossy")]
    pub content: Vec<u8>,
}

/// The marker part of a heredoc, as found in a word (`ParseHeredoc`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeredocMarker {
    /// The terminator word, quotes removed.
    pub name: String,
    /// File descriptor before `<<` (0 if none).
    pub fd: u64,
    /// Whether the body is variable-expanded (unquoted marker).
    pub expand: bool,
    /// `<<-`: strip leading tabs.
    pub chomp: bool,
}

/// Parses one word as a heredoc marker, like BuildKit's `ParseHeredoc`:
/// `Ok(None)` if the word is not a marker; `Err` with BuildKit's message if
/// the shell lexer rejects the terminator word.
pub fn parse_marker(word: &str) -> Result<Option<HeredocMarker>, String> {
    let Ok(mut pairs) = DockerfileGrammar::parse(Rule::heredoc_marker, word) else {
        return Ok(None);
    };
    let mut fd = 0u64;
    let mut chomp = false;
    let mut rest = "";
    for part in pairs.next().map(|p| p.into_inner()).into_iter().flatten() {
        match part.as_rule() {
            Rule::heredoc_fd => fd = parse_uint_saturating(part.as_str()),
            Rule::heredoc_chomp => chomp = true,
            Rule::heredoc_word => rest = part.as_str(),
            _ => {}
        }
    }
    if rest.is_empty() {
        return Ok(None);
    }
    // Lex the terminator with and without quote removal: if the quote
    // counts differ, part of the word was quoted and expansion is off.
    let words = process_words(rest, false, false)?;
    if words.len() != 1 {
        return Ok(None);
    }
    let raw = process_words(rest, true, false)?;
    if raw.len() != words.len() {
        return Err(format!(
            "internal lexing of heredoc produced inconsistent results: {rest}"
        ));
    }
    let quotes = |s: &str| s.chars().filter(|c| matches!(c, '\'' | '"')).count();
    let name = words.into_iter().next().unwrap_or_default();
    Ok(Some(HeredocMarker {
        expand: quotes(&name) == quotes(&raw[0]),
        name,
        fd,
        chomp,
    }))
}

/// `MustParseHeredoc`: [`parse_marker`] with errors read as "not a marker".
/// The typed layer uses it on COPY/ADD sources and destinations.
pub fn marker(word: &str) -> Option<HeredocMarker> {
    parse_marker(word).ok().flatten()
}

/// All heredoc markers of a logical instruction line, in order
/// (`heredocsFromLine`). A line the lexer cannot split has none.
pub fn markers_in_line(line: &[u8]) -> Result<Vec<HeredocMarker>, String> {
    let text = go_lossy(line);
    let words = process_words(&text, true, true).unwrap_or_default();
    let mut out = Vec::new();
    for word in &words {
        if let Some(m) = parse_marker(word)? {
            out.push(m);
        }
    }
    Ok(out)
}

/// Strips the leading tabs of every line, as BuildKit's
/// `ChompHeredocContent` (`(?m)^\t+`) does for `<<-` bodies.
pub fn chomp(content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len());
    let mut at_line_start = true;
    for &b in content {
        if at_line_start && b == b'\t' {
            continue;
        }
        at_line_start = b == b'\n';
        out.push(b);
    }
    out
}

/// Go's `strconv.ParseUint(s, 10, 0)` with the error ignored: empty is 0,
/// overflow is the maximum.
fn parse_uint_saturating(digits: &str) -> u64 {
    digits
        .bytes()
        .try_fold(0u64, |acc, d| {
            acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        })
        .unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(name: &str, fd: u64, expand: bool, chomp: bool) -> Option<HeredocMarker> {
        Some(HeredocMarker {
            name: name.into(),
            fd,
            expand,
            chomp,
        })
    }

    #[test]
    fn markers() {
        assert_eq!(marker("<<EOF"), m("EOF", 0, true, false));
        assert_eq!(marker("<<-EOF"), m("EOF", 0, true, true));
        assert_eq!(marker("<<\"EOF\""), m("EOF", 0, false, false));
        assert_eq!(marker("<<'EOF'"), m("EOF", 0, false, false));
        assert_eq!(marker("2<<EOF"), m("EOF", 2, true, false));
        assert_eq!(marker("<< EOF"), m("EOF", 0, true, false));
        assert_eq!(marker("<<E\"O\"F"), m("EOF", 0, false, false));
        assert_eq!(
            marker("99999999999999999999999<<X"),
            m("X", u64::MAX, true, false)
        );
        assert_eq!(marker("<<"), None);
        assert_eq!(marker("<<-"), None);
        assert_eq!(marker("<<<EOF"), None);
        assert_eq!(marker("a<<EOF"), None);
        assert_eq!(marker("EOF"), None);
    }

    #[test]
    fn markers_in_a_line() {
        let found = markers_in_line(b"COPY <<A <<-\"B\" /dst").unwrap();
        let names: Vec<_> = found
            .iter()
            .map(|h| (h.name.as_str(), h.expand, h.chomp))
            .collect();
        assert_eq!(names, vec![("A", true, false), ("B", false, true)]);
        // An unbalanced quote anywhere makes BuildKit see no heredoc at all.
        assert!(markers_in_line(b"RUN <<EOF 'x").unwrap().is_empty());
    }

    #[test]
    fn chomp_strips_leading_tabs_per_line() {
        assert_eq!(chomp(b"\t\ta\n\tb\t\n c\n"), b"a\nb\t\n c\n");
    }
}

/// BuildKit's own heredoc parser tests (parser_heredoc_test.go), run
/// through the whole reader.
#[cfg(test)]
mod buildkit_cases {
    use crate::parser::parse_raw;

    const DOCKERFILE: &str = "
FROM alpine:3.6

ENV NAME=me

RUN ls

USER <<INVALID
INVALID

RUN <<EMPTY
EMPTY

RUN 3<<EMPTY2
EMPTY2

RUN \"<<NOHEREDOC\"

RUN <<INDENT
\tfoo
\tbar
INDENT

RUN <<-UNINDENT
\tbaz
\tquux
UNINDENT

RUN <<-UNINDENT2
\tbaz
\tquux
\tUNINDENT2

RUN <<-EXPAND
\texpand $NAME
EXPAND

RUN <<-'NOEXPAND'
\tdon't expand $NAME
NOEXPAND

RUN <<COPY
echo hello world
echo foo bar
COPY

RUN <<COMMENT
# internal comment
echo hello world
echo foo bar # trailing comment
COMMENT

RUN --mount=type=cache,target=/foo <<MOUNT
echo hello
MOUNT

COPY <<FILE1 <<FILE2 /dest
content 1
FILE1
content 2
FILE2

COPY <<EOF /quotes
\"foo\"
'bar'
EOF

COPY <<X <<Y /dest
Y
X
X
Y

RUN <<COMPLEX python3
print('hello world')
COMPLEX

COPY <<file.txt /dest
hello world
file.txt

RUN <<eo'f'
echo foo
eof

RUN <<eo\\'f
echo foo
eo'f

RUN <<'e'o\\'f
echo foo
eo'f

RUN <<'one two'
echo bar
one two

RUN <<$EOF
$EOF

RUN <<  EOF
EOF

RUN <<  EOF  > foo
EOF
\t";

    /// (name, content, expand, chomp, fd) per heredoc, per instruction
    /// after FROM.
    type Expected = &'static [(&'static str, &'static str, bool, bool, u64)];

    const EXPECTED: &[Expected] = &[
        &[],
        &[],
        &[],
        &[],
        &[("EMPTY", "", true, false, 0)],
        &[("EMPTY2", "", true, false, 3)],
        &[],
        &[("INDENT", "\tfoo\n\tbar\n", true, false, 0)],
        &[("UNINDENT", "\tbaz\n\tquux\n", true, true, 0)],
        &[("UNINDENT2", "\tbaz\n\tquux\n", true, true, 0)],
        &[("EXPAND", "\texpand $NAME\n", true, true, 0)],
        &[("NOEXPAND", "\tdon't expand $NAME\n", false, true, 0)],
        &[("COPY", "echo hello world\necho foo bar\n", true, false, 0)],
        &[(
            "COMMENT",
            "# internal comment\necho hello world\necho foo bar # trailing comment\n",
            true,
            false,
            0,
        )],
        &[("MOUNT", "echo hello\n", true, false, 0)],
        &[
            ("FILE1", "content 1\n", true, false, 0),
            ("FILE2", "content 2\n", true, false, 0),
        ],
        &[("EOF", "\"foo\"\n'bar'\n", true, false, 0)],
        &[("X", "Y\n", true, false, 0), ("Y", "X\n", true, false, 0)],
        &[("COMPLEX", "print('hello world')\n", true, false, 0)],
        &[("file.txt", "hello world\n", true, false, 0)],
        &[("eof", "echo foo\n", false, false, 0)],
        &[("eo'f", "echo foo\n", true, false, 0)],
        &[("eo'f", "echo foo\n", false, false, 0)],
        &[("one two", "echo bar\n", false, false, 0)],
        &[("$EOF", "", true, false, 0)],
        &[("EOF", "", true, false, 0)],
        &[("EOF", "", true, false, 0)],
    ];

    #[test]
    fn extracts_heredocs_like_buildkit() {
        let raw = parse_raw("Dockerfile", DOCKERFILE.as_bytes()).expect("parses");
        assert_eq!(raw.nodes.len(), EXPECTED.len() + 1);
        for (i, (node, expected)) in raw.nodes[1..].iter().zip(EXPECTED).enumerate() {
            let got: Vec<_> = node
                .heredocs
                .iter()
                .map(|h| {
                    (
                        h.name.as_str(),
                        String::from_utf8_lossy(&h.content).into_owned(),
                        h.expand,
                        h.chomp,
                        h.fd,
                    )
                })
                .collect();
            let want: Vec<_> = expected
                .iter()
                .map(|&(n, c, e, ch, fd)| (n, c.to_string(), e, ch, fd))
                .collect();
            assert_eq!(
                got,
                want,
                "instruction {} ({:?})",
                i + 2,
                String::from_utf8_lossy(&node.original)
            );
        }
    }

    #[test]
    fn json_form_has_no_heredocs() {
        let raw = parse_raw(
            "Dockerfile",
            b"FROM alpine:3.6\nRUN [\"whoami\"]\nRUN [\"<<EOF\"]\nRUN [\"<<'EOF'\"]\n",
        )
        .expect("parses");
        assert!(raw.nodes.iter().all(|n| n.heredocs.is_empty()));
        assert_eq!(raw.nodes.len(), 4);
    }

    #[test]
    fn marker_helpers() {
        use super::{markers_in_line, parse_marker};
        for ok in [
            "<<EOF",
            "<<'EOF'",
            "<<\"EOF\"",
            "<<-EOF",
            "<<-'EOF'",
            "<<-\"EOF\"",
            "<<EO\"F\"",
            "<< EOF",
            "<<- EOF",
        ] {
            assert_eq!(
                parse_marker(ok).unwrap().map(|m| m.name).as_deref(),
                Some("EOF"),
                "{ok}"
            );
        }
        for bad in ["<<'EOF", "<<\"EOF", "<<EOF'", "<<EOF\""] {
            assert!(parse_marker(bad).is_err(), "{bad}");
        }
        for not in ["", "EOF", "<<", "<<-", "<EOF", "<<<EOF", "<<EOF sh"] {
            assert_eq!(parse_marker(not), Ok(None), "{not}");
        }
        let names = |line: &str| -> Vec<String> {
            markers_in_line(line.as_bytes())
                .unwrap()
                .into_iter()
                .map(|m| m.name)
                .collect()
        };
        assert_eq!(names("RUN << -EOF"), vec!["-EOF"]);
        assert_eq!(names("RUN 4<<EOF"), vec!["EOF"]);
        assert_eq!(names("RUN <<EOF <<EOF2"), vec!["EOF", "EOF2"]);
        assert!(names("RUN '<<EOF'").is_empty());
        assert!(names("RUN \"<<EOF\"").is_empty());
    }
}
