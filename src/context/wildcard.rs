//! `COPY` source wildcards: the one place that decides what a source path
//! names, for both the cache key ([`crate::context::digest`]) and the copy
//! ([`resolve_wildcards`]), so the two can never disagree on which files a
//! step reads.
//!
//! Matching is Go's `filepath.Match` (what BuildKit uses): `*` is any run
//! of non-`/` characters, `?` one non-`/` character, `[a-z]`/`[^a-z]` a
//! class, `\c` a literal `c`. A pattern matches a path with the same
//! number of components, each matching.
//!
//! Which sources are patterns at all is fsutil's rule (see
//! [`contains_wildcards`]), and a source from the build context only sees
//! what BuildKit's context transfer would send for it (see
//! [`context_can_hold`]).

mod expand;
#[cfg(test)]
pub(crate) mod go_match_cases;

pub use expand::{resolve_wildcards, SourceRoot, WildcardError};

/// Why a wildcard pattern is malformed (Go's `ErrBadPattern`).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("syntax error in pattern {0:?}")]
pub struct PatternError(pub String);

/// Whether one path component holds a wildcard: an unescaped `*`, `?` or
/// `[` (a `\` escapes the character after it). This is BuildKit's rule in
/// all three places that ask: tonistiigi/fsutil `copy/copy.go`
/// `containsWildcards` (the copy), moby/buildkit
/// `solver/llbsolver/ops/file.go` `addSelector`/`containsWildcards` (whether
/// the cache key's selector is a wildcard one) and
/// `cache/contenthash/checksum.go` `containsWildcards` (`wildcardPrefix`).
pub fn contains_wildcards(component: &str) -> bool {
    let bytes = component.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 1,
            b'*' | b'?' | b'[' => return true,
            _ => {}
        }
        i += 1;
    }
    false
}

/// The components of a `/`-separated source path cleaned lexically, as
/// BuildKit's frontend cleans a source before anything resolves it (Go
/// `path.Join("/", p)`): empty and `.` components dropped, `..` removing
/// the one before it, clamped at the root. So `link/../f` is `f` whatever
/// `link` points to, for the key and the copy alike.
pub fn clean_components(path: &str) -> Vec<&str> {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts
}

/// Splits a `/`-separated source path before its first component with a
/// wildcard (fsutil `copy.go` `splitWildcards`): the literal directory,
/// absolute (`/` for the root), and the pattern below it, empty when the
/// path has no wildcard (then the first part is the whole path). The path
/// is cleaned first ([`clean_components`]), as `splitWildcards`'s
/// `filepath.Join` does.
pub fn split_wildcards(path: &str) -> (String, String) {
    let parts = clean_components(path);
    match parts.iter().position(|p| contains_wildcards(p)) {
        None => (format!("/{}", parts.join("/")), String::new()),
        Some(i) => (format!("/{}", parts[..i].join("/")), parts[i..].join("/")),
    }
}

/// Whether the build context, as BuildKit sends it for a `COPY` naming
/// the literal path `literal`, can hold that path.
///
/// BuildKit does not give a build the whole context: the Dockerfile
/// frontend lists every `COPY` source as a `FollowPaths` entry of the
/// local source, and fsutil turns those into include patterns
/// (tonistiigi/fsutil `filter.go` `NewFilterFS`), matched with
/// moby/patternmatcher, where `\` escapes. The pattern `a\*b` selects the
/// file `a*b`, never `a\*b`; in general a name with a backslash can never
/// match itself as a pattern (each escape drops a character), so such a
/// literal path is missing from what the build sees, the checksum fails
/// (moby/buildkit `cache/contenthash/checksum.go` `checksum`:
/// `"/a\\*b": not found`) and, below a wildcard, the copy finds no base
/// directory.
///
/// Kiln applies this per source. BuildKit sends the union of every
/// `COPY`'s paths, so a Dockerfile that also copies the whole context
/// (`COPY . /`) would let BuildKit find `a\*b` literally; kiln still
/// refuses it.
pub fn context_can_hold(literal: &str) -> bool {
    !literal.contains('\\')
}

/// A compiled wildcard pattern, one token list per path component.
#[derive(Debug)]
pub struct Pattern {
    components: Vec<Vec<Token>>,
}

impl Pattern {
    /// Compiles `pattern` (`/`-separated, relative); malformed syntax is an
    /// error even if nothing would be matched.
    pub fn new(pattern: &str) -> Result<Pattern, PatternError> {
        let components = pattern
            .split('/')
            .map(|p| compile(p).map_err(|()| PatternError(pattern.to_string())))
            .collect::<Result<_, _>>()?;
        Ok(Pattern { components })
    }

    /// Whether `path` (same form as the pattern) matches.
    pub fn matches(&self, path: &str) -> bool {
        let mut names = path.split('/');
        for tokens in &self.components {
            match names.next() {
                Some(name) if match_component(tokens, name) => {}
                _ => return false,
            }
        }
        names.next().is_none()
    }

    /// How many path components the pattern has.
    pub fn component_count(&self) -> usize {
        self.components.len()
    }

    /// Whether the `depth`-th component (0-based) matches one `name`; lets a
    /// directory walk prune at each level instead of matching whole paths.
    pub fn matches_component(&self, depth: usize, name: &str) -> bool {
        self.components
            .get(depth)
            .is_some_and(|tokens| match_component(tokens, name))
    }
}

/// Whether `path` matches `pattern`, both `/`-separated and relative.
pub fn matches(pattern: &str, path: &str) -> Result<bool, PatternError> {
    Ok(Pattern::new(pattern)?.matches(path))
}

#[derive(Debug)]
enum Token {
    Star,
    AnyChar,
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
    Literal(char),
}

impl Token {
    fn matches(&self, c: char) -> bool {
        match self {
            Token::Star => true,
            Token::AnyChar => true,
            Token::Literal(l) => *l == c,
            Token::Class { negated, ranges } => {
                ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated
            }
        }
    }
}

fn compile(pattern: &str) -> Result<Vec<Token>, ()> {
    let mut tokens = Vec::new();
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        let token = match c {
            '*' => Token::Star,
            '?' => Token::AnyChar,
            '\\' => Token::Literal(chars.next().ok_or(())?),
            '[' => {
                let negated = chars.next_if_eq(&'^').is_some();
                let mut ranges = Vec::new();
                loop {
                    let c = chars.next().ok_or(())?;
                    if c == ']' && !ranges.is_empty() {
                        break;
                    }
                    let lo = class_char(c, &mut chars)?;
                    let hi = if chars.next_if_eq(&'-').is_some() {
                        let c = chars.next().ok_or(())?;
                        class_char(c, &mut chars)?
                    } else {
                        lo
                    };
                    if hi < lo {
                        return Err(());
                    }
                    ranges.push((lo, hi));
                }
                Token::Class { negated, ranges }
            }
            c => Token::Literal(c),
        };
        tokens.push(token);
    }
    Ok(tokens)
}

fn class_char(c: char, chars: &mut std::iter::Peekable<std::str::Chars>) -> Result<char, ()> {
    match c {
        '\\' => chars.next().ok_or(()),
        '-' | ']' => Err(()),
        c => Ok(c),
    }
}

/// Greedy matching with one backtrack point per `*`: linear in practice,
/// never exponential on hostile patterns.
fn match_component(tokens: &[Token], name: &str) -> bool {
    let s: Vec<char> = name.chars().collect();
    let (mut t, mut i) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while i < s.len() {
        match tokens.get(t) {
            Some(Token::Star) => {
                star = Some((t, i));
                t += 1;
                continue;
            }
            Some(token) if token.matches(s[i]) => {
                t += 1;
                i += 1;
                continue;
            }
            _ => {}
        }
        match star {
            Some((st, si)) => {
                star = Some((st, si + 1));
                t = st + 1;
                i = si + 1;
            }
            None => return false,
        }
    }
    tokens[t..].iter().all(|tok| matches!(tok, Token::Star))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(pattern: &str, path: &str, expected: Result<bool, ()>) {
        let got = matches(pattern, path).map_err(|_| ());
        assert_eq!(got, expected, "{pattern:?} vs {path:?}");
    }

    #[test]
    fn go_filepath_match_cases() {
        for &(pattern, path, expected) in super::go_match_cases::CASES {
            check(pattern, path, expected);
        }
    }

    #[test]
    fn go_filepath_match_escapes_in_classes() {
        for (pattern, path, expected) in [
            ("[x\\-]", "x", Ok(true)),
            ("[x\\-]", "-", Ok(true)),
            ("[^bc", "a", Err(())),
            ("[\\", "a", Err(())),
        ] {
            check(pattern, path, expected);
        }
    }

    #[test]
    fn backslash_escapes_a_wildcard_character() {
        assert!(contains_wildcards("a*"));
        assert!(contains_wildcards("[ab]"));
        assert!(contains_wildcards("a\\\\*"));
        assert!(!contains_wildcards("a\\*b"));
        assert!(!contains_wildcards("a\\?b\\["));
        assert!(!contains_wildcards("plain"));
        assert!(Pattern::new("a[").is_err());
        assert!(Pattern::new("src/*.rs").is_ok());
    }

    #[test]
    fn split_stops_at_the_first_wildcard_component() {
        let split = |p: &str| split_wildcards(p);
        assert_eq!(split("/a/b*/c"), ("/a".into(), "b*/c".into()));
        assert_eq!(split("/*.txt"), ("/".into(), "*.txt".into()));
        assert_eq!(split("/a/b"), ("/a/b".into(), String::new()));
        assert_eq!(split("a\\*b"), ("/a\\*b".into(), String::new()));
        assert_eq!(split("a\\b/*"), ("/a\\b".into(), "*".into()));
        assert_eq!(split("./x/../../*.txt"), ("/".into(), "*.txt".into()));
    }

    #[test]
    fn backslashed_literals_are_not_in_the_transferred_context() {
        assert!(context_can_hold("/src/a*b"));
        assert!(!context_can_hold("/a\\*b"));
        assert!(!context_can_hold("/dir\\x"));
    }
}
