//! Parse errors: what went wrong, where, with the offending line quoted.
//!
//! Displayed as
//!
//! ```text
//! Dockerfile:3:6: unknown flag: --fomr (did you mean --from?)
//!     3 | COPY --fomr=build /app /app
//!       |      ^
//! ```

use super::position::Position;
use super::text::go_lossy;

/// What is wrong, in words. Messages follow BuildKit's, lower-cased.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ErrorKind {
    #[error("file with no instructions")]
    /// The file has no instruction (empty, or only comments).
    NoInstructions,
    #[error("dockerfile line greater than max allowed size of 65535")]
    /// A line longer than BuildKit's 64 KiB scanner buffer.
    LineTooLong,
    #[error("only one {0} parser directive can be used")]
    /// A parser directive repeated in the directive block.
    DuplicateDirective(String),
    #[error("invalid escape token '{0}' does not match ` or \\")]
    /// `# escape=` with something other than `\` or `` ` ``.
    InvalidEscapeToken(String),
    #[error("unterminated heredoc (no line {0:?} closes it)")]
    /// The file ended before the heredoc's terminator line.
    UnterminatedHeredoc(String),
    #[error("heredoc: {0}")]
    /// A heredoc marker the shell lexer rejects (unbalanced quotes).
    HeredocLexing(String),
    #[error("when using JSON array syntax, arrays must be comprised of strings only")]
    /// Exec form with a non-string item (number, nested array, ...).
    JsonNotStrings,
    #[error("{0} must have two arguments")]
    /// Legacy `ENV key` / `LABEL key` without a value.
    MissingValue(String),
    #[error("syntax error - can't find = in {0}. must be of the form: name=value")]
    /// A `key=value` list with an item lacking `=`.
    MissingEquals(String),
    #[error("unknown instruction: {name}{}", suggestion_suffix(.suggestion))]
    /// An instruction name BuildKit does not know.
    UnknownInstruction {
        /// The name as written.
        name: String,
        /// A close known name, if any.
        suggestion: Option<String>,
    },
    #[error("unknown flag: {flag}{}", suggestion_suffix(.suggestion))]
    /// A flag the instruction does not accept.
    UnknownFlag {
        /// The flag as written (`--name`).
        flag: String,
        /// A close known name, if any.
        suggestion: Option<String>,
    },
    #[error("duplicate flag specified: {0}")]
    /// A single-valued flag given twice.
    DuplicateFlag(String),
    #[error("missing a value on flag: {0}")]
    /// A flag that needs `=value` without one.
    MissingFlagValue(String),
    #[error("expecting boolean value for flag {flag}, not: {value}")]
    /// A boolean flag with a value other than true/false.
    NotABool {
        /// The flag as written (`--name`).
        flag: String,
        /// The value given.
        value: String,
    },
    #[error("{0} requires the arguments to be in JSON form")]
    /// An instruction that requires exec (JSON) form, given shell form.
    NotJson(String),
    #[error("no build stage in current context")]
    /// An instruction other than ARG before the first FROM.
    NoStage,
    /// Any other instruction-level rule (argument counts, values).
    #[error("{0}")]
    Instruction(String),
}

fn suggestion_suffix(s: &Option<String>) -> String {
    s.as_ref()
        .map(|m| format!(" (did you mean {m}?)"))
        .unwrap_or_default()
}

/// An error with its location in a Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", render(.file, *.position, .source_line.as_deref(), .kind))]
pub struct ParseError {
    /// File name as given to the parser.
    pub file: String,
    /// Where the problem is.
    pub position: Position,
    /// The offending physical line (without its line ending), if it exists.
    pub source_line: Option<String>,
    /// What the problem is (part of the message, so not a `source()`).
    pub kind: ErrorKind,
}

impl ParseError {
    /// Builds an error at `position`, quoting that line of `source`.
    pub fn new(file: &str, source: &[u8], position: Position, kind: ErrorKind) -> Self {
        ParseError {
            file: file.to_string(),
            position,
            source_line: line_text(source, position.line),
            kind,
        }
    }
}

/// The text of 1-based line `line`, without its line ending.
fn line_text(source: &[u8], line: usize) -> Option<String> {
    let bytes = source
        .split_inclusive(|&b| b == b'\n')
        .nth(line.checked_sub(1)?)?;
    let mut end = bytes.len();
    while end > 0 && matches!(bytes[end - 1], b'\n' | b'\r') {
        end -= 1;
    }
    Some(go_lossy(&bytes[..end]).into_owned())
}

/// `file:line:col: message`, then the line with a caret under the column.
fn render(file: &str, position: Position, source_line: Option<&str>, kind: &ErrorKind) -> String {
    use std::fmt::Write;
    let Position { line, column } = position;
    let mut out = format!("{file}:{line}:{column}: {kind}");
    if let Some(src) = source_line {
        let gutter = line.to_string().len().max(4);
        // Keep tabs under tabs so the caret lines up in a terminal.
        let pad: String = src
            .chars()
            .take(column.saturating_sub(1))
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        // Writing to a String cannot fail.
        let _ = write!(out, "\n {line:>gutter$} | {src}\n {:>gutter$} | {pad}^", "");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_quotes_the_line_with_a_caret() {
        let src = b"FROM a\n\tCOPY --x a b\n";
        let e = ParseError::new(
            "Dockerfile",
            src,
            Position { line: 2, column: 7 },
            ErrorKind::UnknownFlag {
                flag: "--x".into(),
                suggestion: None,
            },
        );
        assert_eq!(
            e.to_string(),
            "Dockerfile:2:7: unknown flag: --x\n    2 | \tCOPY --x a b\n      | \t     ^"
        );
    }

    #[test]
    fn missing_line_is_not_shown() {
        let e = ParseError::new(
            "Dockerfile",
            b"",
            Position { line: 1, column: 1 },
            ErrorKind::NoInstructions,
        );
        assert_eq!(e.to_string(), "Dockerfile:1:1: file with no instructions");
    }
}
