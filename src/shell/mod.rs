//! Shell-style word expansion for Dockerfile instructions.
//!
//! Dockerfile instructions (`ENV`, `ARG`, `COPY`, `WORKDIR`, `FROM`, ...) expand
//! variables the way BuildKit's `frontend/dockerfile/shell` lexer does, which
//! mimics a subset of POSIX sh: single and double quotes, an escape character
//! (`\`, or `` ` `` after `# escape=`), `$v`, `${v}` and the `${v:-w}`,
//! `${v-w}`, `${v:+w}`, `${v+w}`, `${v:?m}`, `${v?m}`, `${v#p}`, `${v##p}`,
//! `${v%p}`, `${v%%p}`, `${v/p/r}`, `${v//p/r}` operators, nested to any depth.
//! There is no command substitution, arithmetic, globbing or field splitting
//! other than [`Lexer::process_words`]'s split on whitespace.
//!
//! Rules kept from BuildKit (its test files are our conformance suite):
//! - `$` not followed by a name is literal (`$.` stays `$.`); positional
//!   (`$1`, `${001}`) and special (`$@ $* $# $? $- $$ $! $0`) parameters are
//!   ordinary names that are never set.
//! - `${}`, `${:...}` and `${{...}` are errors; so is any operator outside the
//!   list above (`${v:=w}`, `${v=w}`).
//! - Inside double quotes the escape character only escapes `"`, `$` and
//!   itself; elsewhere it escapes any character, and a trailing one vanishes.
//! - Names are case-sensitive; a variable set to the empty string is set.
//! - Every name looked up is reported as matched or unmatched, so the caller
//!   can warn about unused build args and key caches on the args a step used.
//!
//! Known differences from BuildKit, none reachable by a real Dockerfile:
//! name characters use Rust's `is_alphabetic`/`is_numeric`, where Go uses the
//! Unicode categories L and Nd (they differ for combining marks and number
//! forms such as `²`); and the word splitting of [`Lexer::process_words`]
//! keeps the text before a nested `${v:-w}` operator, where BuildKit's current
//! `lex.go` shares one word buffer between nesting levels and drops that text.

mod env;
mod pattern;
mod word;

use std::collections::BTreeSet;
use thiserror::Error;

pub use env::{Env, EnvMap};
pub use pattern::PatternError;

/// Why a word could not be expanded. Offsets are byte offsets into the word
/// given to the lexer; the caller adds the file and line.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ShellError {
    /// A quote was opened and the word ended before it was closed.
    #[error(
        "unterminated {quote} quote opened at byte {offset}: expected a closing {quote} quote"
    )]
    UnterminatedQuote {
        /// `single` or `double`.
        quote: &'static str,
        offset: usize,
    },
    /// `${` without its closing `}`.
    #[error("missing '}}' for the '${{' at byte {offset}")]
    MissingBrace { offset: usize },
    /// `${}`, `${:...}` or `${{...}`: no variable name after `${`.
    #[error("bad substitution at byte {offset}: expected a variable name after '${{'")]
    BadSubstitution { offset: usize },
    /// An operator the lexer does not support, such as `:=` or `=`.
    #[error(
        "unsupported modifier '{modifier}' in substitution at byte {offset}: \
         expected one of '}}', '-', '+', '?', ':-', ':+', ':?', '#', '##', '%', '%%', '/', '//'"
    )]
    UnsupportedModifier { modifier: String, offset: usize },
    /// `${v/pattern` without the `/` that ends the pattern.
    #[error("missing '/' after the pattern of the '${{' at byte {offset}")]
    MissingSlash { offset: usize },
    /// `${v?message}` or `${v:?message}` with `v` unset (or empty).
    #[error("{name}: {message}")]
    Required {
        name: String,
        message: String,
        offset: usize,
    },
    /// `${...}` operands nested deeper than [`word::MAX_NESTING`].
    #[error("substitutions nested more than {limit} deep at byte {offset}")]
    NestedTooDeep { offset: usize, limit: usize },
    /// A `#`, `%` or `/` pattern that cannot be compiled.
    #[error("invalid pattern '{pattern}' in the substitution at byte {offset}")]
    InvalidPattern {
        pattern: String,
        offset: usize,
        #[source]
        source: PatternError,
    },
}

/// The result of expanding one word.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expanded {
    /// The word with quotes removed, escapes applied and variables
    /// substituted; whitespace inside it is kept.
    pub value: String,
    /// The same expansion split into words (see [`Lexer::process_words`]).
    pub words: Vec<String>,
    /// Names that were looked up and set (BuildKit's `Matched`).
    pub matched: BTreeSet<String>,
    /// Names that were looked up and unset (BuildKit's `Unmatched`).
    pub unmatched: BTreeSet<String>,
}

/// Expands Dockerfile words; one value holds the escape character and the
/// mode switches BuildKit's `shell.Lex` has.
///
/// A `Lexer` holds no state between calls, so one can be shared freely.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lexer {
    /// The escape character: `\` by default, `` ` `` when the Dockerfile
    /// starts with `# escape=``.
    pub escape: char,
    /// Keep quote characters in the output (BuildKit `RawQuotes`), used when a
    /// later stage will parse the quotes again.
    pub raw_quotes: bool,
    /// Keep escape characters in the output (BuildKit `RawEscapes`).
    pub raw_escapes: bool,
    /// Treat quotes as ordinary characters (BuildKit `SkipProcessQuotes`).
    pub skip_process_quotes: bool,
    /// Leave references to unset variables as written, e.g. `${v:-w}`
    /// stays `${v:-w}` (BuildKit `SkipUnsetEnv`), so a later pass with a
    /// fuller environment can expand them.
    pub skip_unset_env: bool,
}

impl Default for Lexer {
    fn default() -> Self {
        Self::new('\\')
    }
}

impl Lexer {
    /// A lexer with the given escape character and every mode switch off.
    pub fn new(escape: char) -> Self {
        Self {
            escape,
            raw_quotes: false,
            raw_escapes: false,
            skip_process_quotes: false,
            skip_unset_env: false,
        }
    }

    /// Expands one word (BuildKit `ProcessWordWithMatches`): quotes removed,
    /// escapes applied, variables substituted, and the names looked up.
    pub fn process_word(&self, word: &str, env: &impl Env) -> Result<Expanded, ShellError> {
        word::expand(self, word, env)
    }

    /// Expands `word` and splits the result into words (BuildKit
    /// `ProcessWords`): unquoted whitespace, including whitespace that comes
    /// from a variable's value, separates words; quoted or escaped whitespace
    /// does not; empty words are dropped.
    pub fn process_words(&self, word: &str, env: &impl Env) -> Result<Vec<String>, ShellError> {
        word::expand(self, word, env).map(|expanded| expanded.words)
    }
}

#[cfg(test)]
mod tests;
