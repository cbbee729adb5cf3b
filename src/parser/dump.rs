//! BuildKit's AST dump (`Node.Dump()` in parser.go), byte for byte.
//!
//! One line per instruction: `(name ["--flag" ...] "arg" ...)`, the name
//! lower-cased with Go's `strings.ToLower` and printed raw, flags as Go's
//! `%q` of a `[]string`, every argument as Go's `strconv.Quote`. An ONBUILD
//! trigger nests: `(onbuild (run "x"))`.

use super::node::{RawDockerfile, Statement};
use super::text::{decode_rune, is_print, to_lower, trim_space};

/// Go's `strconv.Quote` of a byte string: `\a \b \f \n \r \t \v`, `\xHH` for
/// invalid bytes and ASCII controls, `\uHHHH`/`\UHHHHHHHH` for other
/// non-printable runes, printable Unicode as is.
pub fn go_quote(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push('"');
    let mut pos = 0;
    while let Some((r, w)) = decode_rune(&bytes[pos..]) {
        pos += w;
        match r {
            Err(b) => push_hex(&mut out, "\\x", u32::from(b), 2),
            Ok(c @ ('"' | '\\')) => {
                out.push('\\');
                out.push(c);
            }
            Ok(c) if is_print(c) => out.push(c),
            Ok('\u{7}') => out.push_str("\\a"),
            Ok('\u{8}') => out.push_str("\\b"),
            Ok('\u{c}') => out.push_str("\\f"),
            Ok('\n') => out.push_str("\\n"),
            Ok('\r') => out.push_str("\\r"),
            Ok('\t') => out.push_str("\\t"),
            Ok('\u{b}') => out.push_str("\\v"),
            Ok(c) if c < ' ' || c == '\u{7f}' => push_hex(&mut out, "\\x", c as u32, 2),
            Ok(c) if (c as u32) < 0x10000 => push_hex(&mut out, "\\u", c as u32, 4),
            Ok(c) => push_hex(&mut out, "\\U", c as u32, 8),
        }
    }
    out.push('"');
    out
}

fn push_hex(out: &mut String, prefix: &str, value: u32, width: usize) {
    use std::fmt::Write;
    out.push_str(prefix);
    // Writing to a String cannot fail.
    let _ = write!(out, "{value:0width$x}");
}

/// The lower-cased name and the `%q` flags of a statement.
fn dump_head(stmt: &Statement) -> String {
    let mut s = String::from_utf8_lossy(&to_lower(&stmt.name)).into_owned();
    if !stmt.flags.is_empty() {
        s.push_str(" [");
        for (i, f) in stmt.flags.iter().enumerate() {
            if i > 0 {
                s.push(' ');
            }
            s.push_str(&go_quote(f.text.as_bytes()));
        }
        s.push(']');
    }
    s
}

/// Dumps a statement with its arguments, trimmed as Go's `Dump` trims.
fn dump_statement(stmt: &Statement) -> String {
    let mut s = dump_head(stmt);
    for arg in &stmt.args {
        s.push(' ');
        s.push_str(&go_quote(arg));
    }
    trim(s)
}

fn trim(s: String) -> String {
    let t = trim_space(s.as_bytes());
    if t.len() == s.len() {
        return s;
    }
    String::from_utf8_lossy(t).into_owned()
}

impl RawDockerfile {
    /// BuildKit's `result.AST.Dump()`: the conformance fixtures' `result`
    /// files are this string followed by a newline.
    pub fn dump(&self) -> String {
        let mut out = String::new();
        for node in &self.nodes {
            out.push('(');
            // An ONBUILD level dumps as `onbuild [flags] (inner)`. Its name
            // is always some casing of ONBUILD, so Go's per-level TrimSpace
            // changes nothing and the nesting can be written front to back
            // in linear time, however deep the chain.
            let chain: Vec<&Statement> = std::iter::once(&node.statement)
                .chain(&node.triggers)
                .collect();
            let (innermost, outer) = chain
                .split_last()
                .map_or((&node.statement, &[][..]), |(l, o)| (*l, o));
            for stmt in outer {
                out.push_str(&dump_head(stmt));
                out.push_str(" (");
            }
            out.push_str(&dump_statement(innermost));
            for _ in outer {
                out.push(')');
            }
            out.push_str(")\n");
        }
        trim(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_matches_go_strconv() {
        assert_eq!(go_quote(b"plain"), "\"plain\"");
        assert_eq!(go_quote(b"a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(go_quote(b"\x07\x08\x0c\n\r\t\x0b"), r#""\a\b\f\n\r\t\v""#);
        assert_eq!(go_quote(b"\x00\x01\x7f"), r#""\x00\x01\x7f""#);
        assert_eq!(go_quote(b"\xff\xfe"), r#""\xff\xfe""#);
        assert_eq!(go_quote("♥ ☃ é".as_bytes()), "\"♥ ☃ é\"");
        assert_eq!(
            go_quote("\u{a0}\u{ad}\u{2028}".as_bytes()),
            r#""\u00a0\u00ad\u2028""#
        );
        assert_eq!(go_quote("\u{e0000}".as_bytes()), r#""\U000e0000""#);
        assert_eq!(go_quote("\u{FFFD}".as_bytes()), "\"\u{FFFD}\"");
    }
}
