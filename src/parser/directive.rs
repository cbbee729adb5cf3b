//! Parser directives: `# syntax=`, `# escape=`, `# check=`.
//!
//! BuildKit (directives.go) looks at every line until the first one that is
//! not a directive: an instruction, an empty line, or any other comment
//! (even `# foo=bar` with an unknown name) ends the search, and a directive
//! after that point is an ordinary comment. Each directive may appear once;
//! a repeat *while still in the directive block* is an error
//! (`only one escape parser directive can be used`). The line is matched by
//! the `directive` rule of the grammar (BuildKit's
//! `^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$`).

use super::error::ErrorKind;
use super::grammar::{DockerfileGrammar, Rule};
use super::node::Directive;
use super::text::go_lossy;
use pest::Parser;

/// Directive names BuildKit recognises.
const KNOWN: [&str; 3] = ["syntax", "escape", "check"];

/// State of the directive block at the top of a file.
pub struct DirectiveParser {
    done: bool,
    escape: u8,
    found: Vec<Directive>,
}

impl DirectiveParser {
    pub fn new() -> Self {
        DirectiveParser {
            done: false,
            escape: b'\\',
            found: Vec::new(),
        }
    }

    /// The escape character in force (`\` unless `# escape=` changed it).
    pub fn escape(&self) -> u8 {
        self.escape
    }

    /// The directives seen, in order.
    pub fn into_found(self) -> Vec<Directive> {
        self.found
    }

    /// Looks at one line (newline and, for a first line, leading space
    /// already trimmed). Returns whether it was a directive.
    pub fn parse_line(&mut self, line: &[u8], line_no: usize) -> Result<bool, ErrorKind> {
        if self.done {
            return Ok(false);
        }
        let text = go_lossy(line);
        let Some((name, value)) = split_directive(&text) else {
            self.done = true;
            return Ok(false);
        };
        let name = name.to_ascii_lowercase();
        if !KNOWN.contains(&name.as_str()) {
            self.done = true;
            return Ok(false);
        }
        if self.found.iter().any(|d| d.name == name) {
            return Err(ErrorKind::DuplicateDirective(name));
        }
        if name == "escape" {
            self.escape = match value {
                "`" => b'`',
                "\\" => b'\\',
                other => return Err(ErrorKind::InvalidEscapeToken(other.to_string())),
            };
        }
        self.found.push(Directive {
            name,
            value: value.to_string(),
            line: line_no,
        });
        Ok(true)
    }
}

/// Matches the directive grammar; returns the name and value.
fn split_directive(text: &str) -> Option<(&str, &str)> {
    let pairs = DockerfileGrammar::parse(Rule::directive, text).ok()?;
    let mut name = None;
    let mut value = None;
    for p in pairs.flatten() {
        match p.as_rule() {
            Rule::directive_name => name = Some(p.as_str()),
            Rule::directive_value => value = Some(p.as_str()),
            _ => {}
        }
    }
    Some((name?, value?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directive_syntax_matches_buildkit_regexp() {
        assert_eq!(split_directive("# escape=`"), Some(("escape", "`")));
        assert_eq!(
            split_directive("#syntax = docker/dockerfile:1  "),
            Some(("syntax", "docker/dockerfile:1"))
        );
        assert_eq!(split_directive("# a = b c "), Some(("a", "b c")));
        // Only space after `=`: the lazy group backtracks to the last space.
        assert_eq!(split_directive("# escape= \t"), Some(("escape", "\t")));
        assert_eq!(split_directive("# escape="), None);
        assert_eq!(split_directive("# 1x=y"), None);
        assert_eq!(split_directive("# not a directive"), None);
        assert_eq!(split_directive("FROM x"), None);
        assert_eq!(
            split_directive("# a=\u{b}x\u{b}"),
            Some(("a", "\u{b}x\u{b}"))
        );
    }

    #[test]
    fn long_space_runs_parse_in_linear_time() {
        let line = format!("# syntax=a{}b{}", " ".repeat(60_000), " ".repeat(60_000));
        let (_, value) = split_directive(&line).expect("a directive");
        assert_eq!(value.len(), 60_002);
    }

    #[test]
    fn block_ends_at_first_non_directive() {
        let mut d = DirectiveParser::new();
        assert_eq!(d.parse_line(b"# syntax=x", 1), Ok(true));
        assert_eq!(d.parse_line(b"# escape=`", 2), Ok(true));
        assert_eq!(d.escape(), b'`');
        assert_eq!(
            d.parse_line(b"# Escape=\\", 3),
            Err(ErrorKind::DuplicateDirective("escape".into()))
        );
        assert_eq!(d.parse_line(b"", 4), Ok(false));
        assert_eq!(d.parse_line(b"# check=skip=all", 5), Ok(false));
        assert_eq!(d.into_found().len(), 2);
    }

    #[test]
    fn unknown_name_ends_block_and_bad_escape_fails() {
        let mut d = DirectiveParser::new();
        assert_eq!(d.parse_line(b"# foo=bar", 1), Ok(false));
        assert_eq!(d.parse_line(b"# escape=`", 2), Ok(false));
        let mut d = DirectiveParser::new();
        assert_eq!(
            d.parse_line(b"# escape = ``", 1),
            Err(ErrorKind::InvalidEscapeToken("``".into()))
        );
    }
}
