//! One `.dockerignore` pattern: syntax check, compilation and matching.
//!
//! moby/patternmatcher accepts a pattern only if Go's `filepath.Match` does,
//! then matches with a regular expression it derives from the pattern: `*` is
//! `[^/]*`, `?` is `[^/]`, `**` is `(.*/)?` (or `.*` at the end), `\x` is
//! `x`, `[...]` a character class. Patterns with no wildcard compare as plain
//! strings, `abc/**` as a prefix and `**abc` as a suffix (a shortcut that makes
//! `**file` match `dir/myfile`). This module reproduces those four kinds and
//! runs the regex-equivalent ones as a small NFA instead of a regex engine.
//!
//! Corners of the Go regex translation kept on purpose: `.*` never crosses a
//! newline, and an unescaped `^` outside brackets is a start-of-path anchor.
//! Corners not kept (no sane pattern relies on them): inside brackets `*` and
//! `?` are literal characters (Go's translation breaks the class apart), and
//! `\` before a letter or digit escapes it (Go's regex reads `\d`, `\n`, ...
//! as regex escapes and rejects unknown ones at match time).

use thiserror::Error;

/// Why a pattern is malformed (what Go's `filepath.Match` reports as
/// `ErrBadPattern`, plus the lone `!`).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PatternError {
    /// A `!` with nothing after it.
    #[error("expected a pattern after '!'")]
    EmptyException,
    /// A `\` at the very end.
    #[error("trailing '\\': expected a character to escape")]
    TrailingEscape,
    /// `[` whose class never closes.
    #[error("unterminated character class: expected ']'")]
    UnterminatedClass,
    /// `-` or `]` where a class needs a character (`[]a]`, `[-x]`, `[x-]`,
    /// `[a-b-c]`); escape it as `\-` or `\]`.
    #[error("expected a character in the class, found '{0}' (escape it as '\\{0}')")]
    ClassCharExpected(char),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(char),
    /// `?`: one character other than `/`.
    AnyInSegment,
    /// `*`: any run of characters other than `/`.
    StarInSegment,
    /// `**` before more pattern: `(.*/)?`, nothing or anything ending in `/`.
    AnyDirs,
    /// `**` at the end after other wildcards: `.*`.
    AnyRest,
    /// `^`: matches only at the start of the path (a regex anchor in Go).
    Start,
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

impl Token {
    fn class_matches(negated: bool, ranges: &[(char, char)], ch: char) -> bool {
        ranges.iter().any(|&(lo, hi)| lo <= ch && ch <= hi) != negated
    }
}

#[derive(Debug, Clone)]
enum Kind {
    /// No wildcard: the path must equal the pattern.
    Exact(String),
    /// `literal**`: the path must start with `literal`.
    Prefix(String),
    /// `**literal`: the path must end with `literal` (or equal it minus a
    /// leading `/`).
    Suffix(String),
    /// Anything else, as the NFA of the regex Go would build.
    Tokens(Vec<Token>),
}

/// A compiled pattern (without its `!`).
#[derive(Debug, Clone)]
pub(crate) struct Glob {
    kind: Kind,
}

impl Glob {
    /// Checks `pattern` (already cleaned, `!` removed) and compiles it.
    pub(crate) fn compile(pattern: &str) -> Result<Self, PatternError> {
        validate(pattern)?;
        let chars: Vec<char> = pattern.chars().collect();
        let mut tokens = Vec::with_capacity(chars.len());
        let mut kind = Detected::Exact;
        let mut i = 0;
        let mut first = true;
        while i < chars.len() {
            let ch = chars[i];
            i += 1;
            match ch {
                '*' if chars.get(i) == Some(&'*') => {
                    i += 1;
                    // `**/` is read as `**`.
                    if chars.get(i) == Some(&'/') {
                        i += 1;
                    }
                    if i == chars.len() {
                        if kind == Detected::Exact {
                            kind = Detected::Prefix;
                        } else {
                            tokens.push(Token::AnyRest);
                            kind = Detected::Tokens;
                        }
                    } else {
                        tokens.push(Token::AnyDirs);
                        kind = Detected::Tokens;
                    }
                    if first {
                        kind = Detected::Suffix;
                    }
                }
                '*' => {
                    tokens.push(Token::StarInSegment);
                    kind = Detected::Tokens;
                }
                '?' => {
                    tokens.push(Token::AnyInSegment);
                    kind = Detected::Tokens;
                }
                '\\' => {
                    // validate() guarantees a following character.
                    if let Some(&escaped) = chars.get(i) {
                        i += 1;
                        tokens.push(Token::Literal(escaped));
                        kind = Detected::Tokens;
                    }
                }
                '[' => {
                    let (token, next) = parse_class(&chars, i);
                    tokens.push(token);
                    i = next;
                    kind = Detected::Tokens;
                }
                ']' => {
                    tokens.push(Token::Literal(']'));
                    kind = Detected::Tokens;
                }
                '^' => tokens.push(Token::Start),
                c => tokens.push(Token::Literal(c)),
            }
            first = false;
        }
        let kind = match kind {
            Detected::Exact => Kind::Exact(pattern.to_string()),
            // The pattern ends with `**`, which is ASCII, so the slice is on
            // a character boundary.
            Detected::Prefix => Kind::Prefix(pattern[..pattern.len() - 2].to_string()),
            Detected::Suffix => Kind::Suffix(pattern[2..].to_string()),
            Detected::Tokens => Kind::Tokens(tokens),
        };
        Ok(Self { kind })
    }

    /// Whether the slash-separated `path` matches the whole pattern.
    pub(crate) fn is_match(&self, path: &str) -> bool {
        match &self.kind {
            Kind::Exact(s) => path == s,
            Kind::Prefix(p) => path.starts_with(p.as_str()),
            Kind::Suffix(s) => {
                path.ends_with(s.as_str()) || s.strip_prefix('/').is_some_and(|rest| path == rest)
            }
            Kind::Tokens(tokens) => Nfa { tokens }.run(path, true),
        }
    }

    /// Whether some path strictly below directory `dir` might match. May say
    /// yes when the answer is no (never the reverse): callers only use it to
    /// decide that a subtree can be skipped.
    pub(crate) fn may_match_below(&self, dir: &str) -> bool {
        let below = format!("{dir}/");
        match &self.kind {
            Kind::Exact(s) => s.starts_with(&below),
            Kind::Prefix(p) => {
                if p.len() <= below.len() {
                    below.starts_with(p.as_str())
                } else {
                    p.starts_with(&below)
                }
            }
            Kind::Suffix(_) => true,
            Kind::Tokens(tokens) => Nfa { tokens }.run(&below, false),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Detected {
    Exact,
    Prefix,
    Suffix,
    Tokens,
}

/// Parses a validated class whose `[` is at `start - 1`; returns the token
/// and the index after the closing `]`.
fn parse_class(chars: &[char], start: usize) -> (Token, usize) {
    let mut i = start;
    let negated = chars.get(i) == Some(&'^');
    if negated {
        i += 1;
    }
    let mut ranges = Vec::new();
    let read_char = |i: &mut usize| {
        if chars.get(*i) == Some(&'\\') {
            *i += 1;
        }
        let c = chars.get(*i).copied().unwrap_or_default();
        *i += 1;
        c
    };
    while i < chars.len() {
        if chars[i] == ']' && !ranges.is_empty() {
            i += 1;
            break;
        }
        let lo = read_char(&mut i);
        let hi = if chars.get(i) == Some(&'-') {
            i += 1;
            read_char(&mut i)
        } else {
            lo
        };
        ranges.push((lo, hi));
    }
    (Token::Class { negated, ranges }, i)
}

/// Go's `filepath.Match` syntax rules on Unix: `\` escapes the next
/// character; a class is `[`, an optional `^`, one or more items `c` or
/// `c-c` (where `c` is any character but `-` and `]`, or an escaped one),
/// then `]`.
fn validate(pattern: &str) -> Result<(), PatternError> {
    let mut chars = pattern.chars().peekable();
    while let Some(ch) = chars.next() {
        match ch {
            '\\' => {
                chars.next().ok_or(PatternError::TrailingEscape)?;
            }
            '[' => {
                if chars.peek() == Some(&'^') {
                    chars.next();
                }
                let mut items = 0;
                loop {
                    if chars.peek() == Some(&']') && items > 0 {
                        chars.next();
                        break;
                    }
                    class_char(&mut chars)?;
                    if chars.peek() == Some(&'-') {
                        chars.next();
                        class_char(&mut chars)?;
                    }
                    items += 1;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// One class character, as Go's `getEsc`: it must exist, must not be a bare
/// `-` or `]`, and must be followed by more pattern (the closing `]`).
fn class_char(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Result<char, PatternError> {
    let ch = match chars.next() {
        None => return Err(PatternError::UnterminatedClass),
        Some(c @ ('-' | ']')) => return Err(PatternError::ClassCharExpected(c)),
        Some('\\') => chars.next().ok_or(PatternError::UnterminatedClass)?,
        Some(c) => c,
    };
    if chars.peek().is_none() {
        return Err(PatternError::UnterminatedClass);
    }
    Ok(ch)
}

/// Thompson simulation of the token regex. State `2k` is "before token k",
/// `2k + 1` is "inside the `(.*/)?` of token k", `2n` accepts. Every epsilon
/// move goes forward, so one pass in state order closes a set.
struct Nfa<'a> {
    tokens: &'a [Token],
}

impl Nfa<'_> {
    /// Runs over `text`. With `whole`, reports whether the text matches
    /// completely; otherwise whether any state is still alive at its end.
    fn run(&self, text: &str, whole: bool) -> bool {
        let accept = 2 * self.tokens.len();
        let mut states = vec![false; accept + 1];
        let mut next = vec![false; accept + 1];
        states[0] = true;
        self.close(&mut states, true);
        for ch in text.chars() {
            next.fill(false);
            let mut live = false;
            for (k, token) in self.tokens.iter().enumerate() {
                let (before, inside) = (2 * k, 2 * k + 1);
                if states[inside] && ch != '\n' {
                    next[inside] = true;
                    if ch == '/' {
                        next[before + 2] = true;
                    }
                    live = true;
                }
                if !states[before] {
                    continue;
                }
                let target = match token {
                    Token::Literal(l) if *l == ch => before + 2,
                    Token::AnyInSegment if ch != '/' => before + 2,
                    Token::StarInSegment if ch != '/' => before,
                    Token::AnyRest if ch != '\n' => before,
                    Token::Class { negated, ranges }
                        if Token::class_matches(*negated, ranges, ch) =>
                    {
                        before + 2
                    }
                    _ => continue,
                };
                next[target] = true;
                live = true;
            }
            if !live {
                return false;
            }
            self.close(&mut next, false);
            std::mem::swap(&mut states, &mut next);
        }
        if whole {
            states[accept]
        } else {
            states.iter().any(|&s| s)
        }
    }

    fn close(&self, states: &mut [bool], at_start: bool) {
        for (k, token) in self.tokens.iter().enumerate() {
            let before = 2 * k;
            if !states[before] {
                continue;
            }
            match token {
                Token::StarInSegment | Token::AnyRest => states[before + 2] = true,
                Token::AnyDirs => {
                    states[before + 1] = true;
                    states[before + 2] = true;
                }
                Token::Start if at_start => states[before + 2] = true,
                _ => {}
            }
        }
    }
}

/// Go's `filepath.Clean` for slash-separated paths: drops empty and `.`
/// elements, resolves `..` lexically (never above a leading `/`), and gives
/// `.` for an empty result.
pub(crate) fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => match parts.last() {
                Some(&last) if last != ".." => {
                    parts.pop();
                }
                _ if rooted => {}
                _ => parts.push(".."),
            },
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}
