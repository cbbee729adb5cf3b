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
    pub name: String,
    pub fd: u64,
    pub expand: bool,
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
