//! `COPY` source wildcards, with Go's `filepath.Match` semantics (what
//! BuildKit uses): `*` is any run of non-`/` characters, `?` one non-`/`
//! character, `[a-z]`/`[^a-z]` a class, `\c` a literal `c`. A pattern
//! matches a path with the same number of components, each matching.

/// Why a wildcard pattern is malformed (Go's `ErrBadPattern`).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("syntax error in pattern {0:?}")]
pub struct PatternError(pub String);

/// Whether `s` contains wildcard syntax (otherwise it names one path).
pub fn has_wildcard(s: &str) -> bool {
    s.contains(['*', '?', '['])
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
        // From Go's path/filepath match_test.go.
        for (pattern, path, expected) in [
            ("abc", "abc", Ok(true)),
            ("*", "abc", Ok(true)),
            ("*c", "abc", Ok(true)),
            ("a*", "a", Ok(true)),
            ("a*", "abc", Ok(true)),
            ("a*", "ab/c", Ok(false)),
            ("a*/b", "abc/b", Ok(true)),
            ("a*/b", "a/c/b", Ok(false)),
            ("a*b*c*d*e*/f", "axbxcxdxe/f", Ok(true)),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/f", Ok(true)),
            ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", Ok(false)),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", Ok(false)),
            ("a*b?c*x", "abxbbxdbxebxczzx", Ok(true)),
            ("a*b?c*x", "abxbbxdbxebxczzy", Ok(false)),
            ("ab[c]", "abc", Ok(true)),
            ("ab[b-d]", "abc", Ok(true)),
            ("ab[e-g]", "abc", Ok(false)),
            ("ab[^c]", "abc", Ok(false)),
            ("ab[^b-d]", "abc", Ok(false)),
            ("ab[^e-g]", "abc", Ok(true)),
            ("a\\*b", "a*b", Ok(true)),
            ("a\\*b", "ab", Ok(false)),
            ("a?b", "a☺b", Ok(true)),
            ("a[^a]b", "a☺b", Ok(true)),
            ("a???b", "a☺b", Ok(false)),
            ("[a-ζ]*", "α", Ok(true)),
            ("*[a-ζ]", "A", Ok(false)),
            ("a?b", "a/b", Ok(false)),
            ("a*b", "a/b", Ok(false)),
            ("[\\]a]", "]", Ok(true)),
            ("[\\-]", "-", Ok(true)),
            ("[x\\-]", "z", Ok(false)),
            ("[\\-x]", "-", Ok(true)),
            ("[]a]", "]", Err(())),
            ("[-]", "-", Err(())),
            ("[x-]", "x", Err(())),
            ("\\", "a", Err(())),
            ("[a-b-c]", "a", Err(())),
            ("[", "a", Err(())),
            ("[^", "a", Err(())),
            ("a[", "a", Err(())),
            ("*x", "xxx", Ok(true)),
        ] {
            check(pattern, path, expected);
        }
    }

    #[test]
    fn wildcard_syntax_is_detected() {
        assert!(has_wildcard("src/*.rs"));
        assert!(has_wildcard("file?.txt"));
        assert!(!has_wildcard("src/main.rs"));
        assert!(Pattern::new("a[").is_err());
        assert!(Pattern::new("src/*.rs").is_ok());
    }
}
