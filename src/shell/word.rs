//! The expansion state machine: one pass over a word, recursing into `${...}`
//! operands, in the order BuildKit's `shellWord` reads them (so error-or-not
//! and every odd corner match its test files).

use std::collections::BTreeSet;

use super::pattern::{self, PatternError};
use super::{Env, Expanded, Lexer, ShellError};

/// Expands `word` with `lexer`'s settings against `env`.
pub(super) fn expand<E: Env + ?Sized>(
    lexer: &Lexer,
    word: &str,
    env: &E,
) -> Result<Expanded, ShellError> {
    let mut scanner = Scanner {
        lexer,
        src: word,
        // Go's text/scanner, which BuildKit reads words with, skips a byte
        // order mark at the very start of its input.
        pos: if word.starts_with('\u{feff}') {
            '\u{feff}'.len_utf8()
        } else {
            0
        },
        env,
        raw_escapes: lexer.raw_escapes,
        matched: BTreeSet::new(),
        unmatched: BTreeSet::new(),
        depth: 0,
    };
    let mut value = String::with_capacity(word.len());
    let mut words = Words::default();
    scanner.scan(None, lexer.raw_escapes, &mut value, Some(&mut words))?;
    Ok(Expanded {
        value,
        words: words.finish(),
        matched: scanner.matched,
        unmatched: scanner.unmatched,
    })
}

/// How deep `${...}` operands may nest. BuildKit's `shell/lex.go` recurses
/// without a limit (`processDollar` → `processStopOn`, on Go's growable
/// stack); kiln's stack is fixed, so nesting past this is an error. No
/// real Dockerfile comes near it.
pub const MAX_NESTING: usize = 100;

struct Scanner<'a, E: Env + ?Sized> {
    lexer: &'a Lexer,
    src: &'a str,
    pos: usize,
    env: &'a E,
    /// Whether escape characters are kept. It changes while reading the
    /// operand of `#`, `%` and `/`, whose patterns need their backslashes, and
    /// quotes nested in such an operand see the change (as in BuildKit).
    raw_escapes: bool,
    matched: BTreeSet<String>,
    unmatched: BTreeSet<String>,
    /// How many `${...}` operands are being read inside each other.
    depth: usize,
}

impl<'a, E: Env + ?Sized> Scanner<'a, E> {
    fn peek(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    fn next(&mut self) -> Option<char> {
        let ch = self.peek()?;
        self.pos += ch.len_utf8();
        Some(ch)
    }

    /// Reads up to `stop` (consumed) or the end of the word, appending the
    /// expansion to `out` and, when given, feeding `words`. Returns whether
    /// `stop` was found.
    fn scan(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
        out: &mut String,
        words: Option<&mut Words>,
    ) -> Result<bool, ShellError> {
        // Each nested operand is a level of recursion: bound it rather
        // than overflow the stack on `${a:-${a:-${a:-...}}}`.
        if self.depth > MAX_NESTING {
            return Err(ShellError::NestedTooDeep {
                offset: self.pos,
                limit: MAX_NESTING,
            });
        }
        self.depth += 1;
        let saved = std::mem::replace(&mut self.raw_escapes, raw_escapes);
        let found = self.scan_with_current_escapes(stop, out, words);
        self.raw_escapes = saved;
        self.depth -= 1;
        found
    }

    fn scan_with_current_escapes(
        &mut self,
        stop: Option<char>,
        out: &mut String,
        mut words: Option<&mut Words>,
    ) -> Result<bool, ShellError> {
        let quotes = !self.lexer.skip_process_quotes;
        while let Some(ch) = self.peek() {
            if Some(ch) == stop {
                self.next();
                return Ok(true);
            }
            if ch == '$' {
                let text = self.dollar()?;
                out.push_str(&text);
                if let Some(words) = words.as_deref_mut() {
                    // A variable's value is split on its whitespace.
                    text.chars().for_each(|c| words.add_char(c));
                }
            } else if quotes && (ch == '\'' || ch == '"') {
                let text = if ch == '\'' {
                    self.single_quote()?
                } else {
                    self.double_quote()?
                };
                out.push_str(&text);
                if let Some(words) = words.as_deref_mut() {
                    words.add_raw_str(&text);
                }
            } else {
                self.next();
                if ch == self.lexer.escape {
                    if self.raw_escapes {
                        out.push(ch);
                        if let Some(words) = words.as_deref_mut() {
                            words.add_raw_char(ch);
                        }
                    }
                    // An escape at the very end of the word is dropped.
                    let Some(escaped) = self.next() else { break };
                    out.push(escaped);
                    if let Some(words) = words.as_deref_mut() {
                        words.add_raw_char(escaped);
                    }
                } else {
                    out.push(ch);
                    if let Some(words) = words.as_deref_mut() {
                        words.add_char(ch);
                    }
                }
            }
        }
        Ok(false)
    }

    /// `'...'`: everything literal up to the next `'`; nothing escapes it.
    fn single_quote(&mut self) -> Result<String, ShellError> {
        let start = self.pos;
        self.next();
        let mut out = String::new();
        if self.lexer.raw_quotes {
            out.push('\'');
        }
        loop {
            match self.next() {
                None => {
                    return Err(ShellError::UnterminatedQuote {
                        quote: "single",
                        offset: start,
                    })
                }
                Some('\'') => {
                    if self.lexer.raw_quotes {
                        out.push('\'');
                    }
                    return Ok(out);
                }
                Some(ch) => out.push(ch),
            }
        }
    }

    /// `"..."`: literal except `$` expansions; the escape character only
    /// escapes `"`, `$` and itself and is kept before anything else (sh rules,
    /// minus backquote command substitution, which Dockerfiles lack).
    fn double_quote(&mut self) -> Result<String, ShellError> {
        let start = self.pos;
        self.next();
        let mut out = String::new();
        if self.lexer.raw_quotes {
            out.push('"');
        }
        loop {
            match self.peek() {
                None => {
                    return Err(ShellError::UnterminatedQuote {
                        quote: "double",
                        offset: start,
                    })
                }
                Some('"') => {
                    self.next();
                    if self.lexer.raw_quotes {
                        out.push('"');
                    }
                    return Ok(out);
                }
                Some('$') => {
                    let text = self.dollar()?;
                    out.push_str(&text);
                }
                Some(_) => {
                    let mut ch = self.next().unwrap_or_default();
                    if ch == self.lexer.escape {
                        if self.raw_escapes {
                            out.push(ch);
                        }
                        match self.peek() {
                            // End of word: the missing quote is reported next.
                            None => continue,
                            Some(c) if c == '"' || c == '$' || c == self.lexer.escape => {
                                ch = c;
                                self.next();
                            }
                            Some(_) => {}
                        }
                    }
                    out.push(ch);
                }
            }
        }
    }

    /// Records the lookup of `name` and returns its value.
    fn lookup(&mut self, name: &str) -> Option<&'a str> {
        let env: &'a E = self.env;
        match env.get(name) {
            Some(value) => {
                self.matched.insert(name.to_string());
                Some(value)
            }
            None => {
                self.unmatched.insert(name.to_string());
                None
            }
        }
    }

    /// `$name` or `${...}`, with the scanner on the `$`.
    fn dollar(&mut self) -> Result<String, ShellError> {
        let start = self.pos;
        self.next();
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".to_string());
            }
            return Ok(match self.lookup(&name) {
                Some(value) => value.to_string(),
                None if self.lexer.skip_unset_env => format!("${name}"),
                None => String::new(),
            });
        }
        self.next();
        match self.peek() {
            None => return Err(ShellError::MissingBrace { offset: start }),
            Some('{' | '}' | ':') => return Err(ShellError::BadSubstitution { offset: start }),
            Some(_) => {}
        }
        let name = self.name();
        let op_offset = self.pos;
        match self.next() {
            None => Err(ShellError::MissingBrace { offset: start }),
            Some('}') => Ok(match self.lookup(&name) {
                Some(value) => value.to_string(),
                None if self.lexer.skip_unset_env => format!("${{{name}}}"),
                None => String::new(),
            }),
            Some(first @ (':' | '+' | '-' | '?' | '#' | '%')) => {
                self.operator(&name, first, start, op_offset)
            }
            Some('/') => self.substitute(&name, start),
            Some(other) => Err(ShellError::UnsupportedModifier {
                modifier: other.to_string(),
                offset: op_offset,
            }),
        }
    }

    /// `${name-w}` and its kin, with `first` (the character after the name)
    /// consumed.
    fn operator(
        &mut self,
        name: &str,
        first: char,
        start: usize,
        op_offset: usize,
    ) -> Result<String, ShellError> {
        let null_is_unset = first == ':';
        let op = if null_is_unset {
            self.next()
        } else {
            Some(first)
        };
        let mut modifier = first.to_string();
        if let (true, Some(op)) = (null_is_unset, op) {
            modifier.push(op);
        }
        let trims = matches!(op, Some('#' | '%'));
        if null_is_unset && trims {
            return Err(ShellError::UnsupportedModifier {
                modifier,
                offset: op_offset,
            });
        }
        // The operand of a trim keeps its escapes: they belong to the pattern.
        let mut operand = String::new();
        if !self.scan(Some('}'), trims, &mut operand, None)? {
            return Err(ShellError::MissingBrace { offset: start });
        }
        let value = self.lookup(name);
        if value.is_none() && self.lexer.skip_unset_env {
            return Ok(format!("${{{name}{modifier}{operand}}}"));
        }
        let unset_or_null = value.is_none() || (null_is_unset && value == Some(""));
        match op {
            Some('-') => Ok(if unset_or_null {
                operand
            } else {
                value.unwrap_or_default().to_string()
            }),
            Some('+') => Ok(if unset_or_null {
                String::new()
            } else {
                operand
            }),
            Some('?') => match value {
                Some(value) if !unset_or_null => Ok(value.to_string()),
                _ => {
                    let message = if !operand.is_empty() {
                        operand
                    } else if value.is_none() {
                        "is not allowed to be unset".to_string()
                    } else {
                        "is not allowed to be empty".to_string()
                    };
                    Err(ShellError::Required {
                        name: name.to_string(),
                        message,
                        offset: start,
                    })
                }
            },
            Some(op @ ('#' | '%')) => {
                // A doubled operator (`##`, `%%`) asks for the longest match.
                let (pattern, longest) = match operand.strip_prefix(op) {
                    Some(rest) => (rest, true),
                    None => (operand.as_str(), false),
                };
                let value = value.unwrap_or_default();
                let trimmed = if op == '#' {
                    pattern::trim_prefix(pattern, value, longest)
                } else {
                    pattern::trim_suffix(pattern, value, longest)
                };
                trimmed.map_err(|source| invalid_pattern(pattern, start, source))
            }
            _ => Err(ShellError::UnsupportedModifier {
                modifier,
                offset: op_offset,
            }),
        }
    }

    /// `${name/pattern/replacement}` and `${name//pattern/replacement}`, with
    /// the first `/` consumed.
    fn substitute(&mut self, name: &str, start: usize) -> Result<String, ShellError> {
        let all = self.peek() == Some('/');
        if all {
            self.next();
        }
        let mut pattern = String::new();
        if !self.scan(Some('/'), true, &mut pattern, None)? {
            return Err(ShellError::MissingSlash { offset: start });
        }
        let mut replacement = String::new();
        if !self.scan(Some('}'), true, &mut replacement, None)? {
            return Err(ShellError::MissingBrace { offset: start });
        }
        let value = self.lookup(name);
        if value.is_none() && self.lexer.skip_unset_env {
            // BuildKit writes a single `/` here even for `//`, turning a
            // replace-all into a replace-first on the later pass; keep the
            // operator as written instead.
            let slashes = if all { "//" } else { "/" };
            return Ok(format!("${{{name}{slashes}{pattern}/{replacement}}}"));
        }
        pattern::replace(&pattern, value.unwrap_or_default(), &replacement, all)
            .map_err(|source| invalid_pattern(&pattern, start, source))
    }

    /// A variable name: a run of digits (positional), one special-parameter
    /// character, or letters, digits and `_`. Empty when none follows.
    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.peek() {
            if name.is_empty() && is_digit(ch) {
                while let Some(digit) = self.peek().filter(|&c| is_digit(c)) {
                    name.push(digit);
                    self.next();
                }
                return name;
            }
            if name.is_empty() && is_special_param(ch) {
                self.next();
                return ch.to_string();
            }
            if !ch.is_alphabetic() && !is_digit(ch) && ch != '_' {
                break;
            }
            name.push(ch);
            self.next();
        }
        name
    }
}

fn invalid_pattern(pattern: &str, offset: usize, source: PatternError) -> ShellError {
    ShellError::InvalidPattern {
        pattern: pattern.to_string(),
        offset,
        source,
    }
}

/// Go's `unicode.IsDigit`, approximated: ASCII digits, plus Rust's numeric
/// characters beyond ASCII.
fn is_digit(ch: char) -> bool {
    ch.is_ascii_digit() || (!ch.is_ascii() && ch.is_numeric())
}

/// POSIX special parameters (XCU 2.5.2); a Dockerfile never sets them.
fn is_special_param(ch: char) -> bool {
    matches!(ch, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0')
}

/// Splits the expansion into words as it is produced, mirroring BuildKit's
/// `wordsStruct`: unquoted whitespace ends a word; quoted text and escaped
/// characters are added without splitting.
#[derive(Default)]
struct Words {
    words: Vec<String>,
    current: String,
    in_word: bool,
}

impl Words {
    fn add_char(&mut self, ch: char) {
        if ch.is_whitespace() {
            if self.in_word && !self.current.is_empty() {
                self.words.push(std::mem::take(&mut self.current));
                self.in_word = false;
            }
        } else {
            self.add_raw_char(ch);
        }
    }

    fn add_raw_char(&mut self, ch: char) {
        self.current.push(ch);
        self.in_word = true;
    }

    fn add_raw_str(&mut self, text: &str) {
        self.current.push_str(text);
        self.in_word = true;
    }

    fn finish(mut self) -> Vec<String> {
        if !self.current.is_empty() {
            self.words.push(self.current);
        }
        self.words
    }
}
