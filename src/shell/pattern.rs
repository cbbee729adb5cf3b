//! Shell patterns of `${v#p}`, `${v%p}` and `${v/p/r}`.
//!
//! BuildKit turns these patterns into Go regular expressions
//! (`convertShellPatternToRegex` in `frontend/dockerfile/shell/lex.go`): `*` is
//! `.*` (lazy for `#`/`%`, greedy for `##`/`%%` and `/`), `?` is `.`, `\*`,
//! `\?` and `\\` are literal, `\}` and `\/` drop the backslash, any other
//! escape is an error, and everything else, brackets included, is literal (so
//! unlike POSIX sh, `[a-z]` is not a class). This module matches the same
//! language without a regex engine, on `char`s, keeping two regex details that
//! change results: `.` never matches a newline, and for `//` the replacement is
//! expanded as a Go regexp template (`$0`/`${0}` is the match, `$$` a dollar).

use thiserror::Error;

/// Why a substitution pattern was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PatternError {
    /// A backslash escaped something other than `*`, `?`, `\`, `}` or `/`.
    #[error("invalid escape '\\{0}': expected one of \\*, \\?, \\\\, \\}}, \\/")]
    InvalidEscape(char),
    /// The pattern ended with a lone backslash.
    #[error("trailing '\\': expected a character to escape")]
    TrailingEscape,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Literal(char),
    /// `?`: any one character except newline (Go's `.`).
    Any,
    /// `*`: any run of characters without a newline (Go's `.*`).
    Star,
}

/// A compiled substitution pattern.
#[derive(Debug, Clone)]
pub(crate) struct Pattern {
    tokens: Vec<Token>,
}

impl Pattern {
    /// Compiles `pattern`, as BuildKit's converter reads it.
    pub(crate) fn compile(pattern: &str) -> Result<Self, PatternError> {
        let mut chars = pattern.chars().peekable();
        // Go's text/scanner drops a byte order mark at the very start of its
        // input, and BuildKit reads the pattern through one.
        if chars.peek() == Some(&'\u{feff}') {
            chars.next();
        }
        let mut tokens = Vec::with_capacity(pattern.len());
        while let Some(ch) = chars.next() {
            let token = match ch {
                '*' => Token::Star,
                '?' => Token::Any,
                '\\' => match chars.peek() {
                    // `}` and `/` had to be escaped to fit inside `${...}`; the
                    // backslash is not part of the pattern.
                    Some('}' | '/') => continue,
                    Some(&c @ ('*' | '?' | '\\')) => {
                        chars.next();
                        Token::Literal(c)
                    }
                    Some(&c) => return Err(PatternError::InvalidEscape(c)),
                    None => return Err(PatternError::TrailingEscape),
                },
                c => Token::Literal(c),
            };
            tokens.push(token);
        }
        Ok(Self { tokens })
    }

    /// Marks the states reachable without input from those already set
    /// (a `*` may match nothing). Epsilon moves only go forward, so one pass
    /// suffices.
    fn close(&self, states: &mut [bool]) {
        for i in 0..self.tokens.len() {
            if states[i] && self.tokens[i] == Token::Star {
                states[i + 1] = true;
            }
        }
    }

    /// Advances `from` over `ch` into `to`; returns whether any state is live.
    fn step(&self, from: &[bool], ch: char, to: &mut [bool]) -> bool {
        to.fill(false);
        let mut live = false;
        for (i, token) in self.tokens.iter().enumerate() {
            if !from[i] {
                continue;
            }
            match *token {
                Token::Literal(l) if l == ch => to[i + 1] = true,
                Token::Any if ch != '\n' => to[i + 1] = true,
                Token::Star if ch != '\n' => to[i] = true,
                _ => continue,
            }
            live = true;
        }
        if live {
            self.close(to);
        }
        live
    }

    /// End offsets `e` (ascending) such that `text[start..e]` matches the
    /// whole pattern.
    fn ends_from(&self, text: &str, start: usize) -> Vec<usize> {
        let accept = self.tokens.len();
        let mut states = vec![false; accept + 1];
        let mut next = vec![false; accept + 1];
        states[0] = true;
        self.close(&mut states);
        let mut ends = Vec::new();
        if states[accept] {
            ends.push(start);
        }
        for (i, ch) in text[start..].char_indices() {
            if !self.step(&states, ch, &mut next) {
                break;
            }
            std::mem::swap(&mut states, &mut next);
            if states[accept] {
                ends.push(start + i + ch.len_utf8());
            }
        }
        ends
    }

    /// The shortest or longest prefix of `text` that matches, as its length.
    ///
    /// Go's backtracking preference for lazy (`.*?`) or greedy (`.*`) stars
    /// yields exactly the shortest or longest anchored match for patterns made
    /// of literals, `.` and stars, so computing all ends and picking one is
    /// equivalent.
    fn prefix_len(&self, text: &str, longest: bool) -> Option<usize> {
        let ends = self.ends_from(text, 0);
        if longest {
            ends.last().copied()
        } else {
            ends.first().copied()
        }
    }

    /// The leftmost match starting at or after `from`, longest at that start
    /// (Go's leftmost-first result for an all-greedy pattern).
    fn find_at(&self, text: &str, from: usize) -> Option<(usize, usize)> {
        let starts = text[from..]
            .char_indices()
            .map(|(i, _)| from + i)
            .chain(std::iter::once(text.len()));
        for start in starts {
            if let Some(&end) = self.ends_from(text, start).last() {
                return Some((start, end));
            }
        }
        None
    }
}

/// `${v#p}` / `${v##p}`: removes the shortest (or, when `longest`, the longest)
/// prefix of `value` matching `pattern`.
pub(crate) fn trim_prefix(
    pattern: &str,
    value: &str,
    longest: bool,
) -> Result<String, PatternError> {
    let compiled = Pattern::compile(pattern)?;
    Ok(match compiled.prefix_len(value, longest) {
        Some(len) => value[len..].to_string(),
        None => value.to_string(),
    })
}

/// `${v%p}` / `${v%%p}`: removes the shortest (or longest) matching suffix.
///
/// BuildKit reverses both the pattern (keeping each backslash before the
/// character it escapes) and the value, then trims a prefix; doing the same
/// keeps its acceptance of odd patterns identical (e.g. a lone trailing
/// backslash turns into an escape of the character before it).
pub(crate) fn trim_suffix(
    pattern: &str,
    value: &str,
    longest: bool,
) -> Result<String, PatternError> {
    let reversed_pattern = reverse_pattern(pattern);
    let reversed_value: String = value.chars().rev().collect();
    let trimmed = trim_prefix(&reversed_pattern, &reversed_value, longest)?;
    Ok(trimmed.chars().rev().collect())
}

/// Reverses a pattern while keeping `\x` pairs in order (`a\*c` → `c\*a`).
fn reverse_pattern(pattern: &str) -> String {
    let chars: Vec<char> = pattern.chars().collect();
    let Some(last) = chars.len().checked_sub(1) else {
        return String::new();
    };
    let mut out = vec!['\0'; chars.len()];
    let mut i = 0;
    while i <= last {
        let out_idx = last - i;
        if chars[i] == '\\' && i != last {
            out[out_idx - 1] = '\\';
            out[out_idx] = chars[i + 1];
            i += 2;
        } else {
            out[out_idx] = chars[i];
            i += 1;
        }
    }
    out.into_iter().collect()
}

/// `${v/p/r}` (first match) and `${v//p/r}` (every match).
pub(crate) fn replace(
    pattern: &str,
    value: &str,
    replacement: &str,
    all: bool,
) -> Result<String, PatternError> {
    let compiled = Pattern::compile(pattern)?;
    if !all {
        // BuildKit splices the replacement in literally here (no template).
        return Ok(match compiled.find_at(value, 0) {
            Some((start, end)) => format!("{}{}{}", &value[..start], replacement, &value[end..]),
            None => value.to_string(),
        });
    }
    // Go's Regexp.ReplaceAllString: successive non-overlapping matches; an
    // empty match right after the previous match is not replaced; the search
    // always advances by at least one character.
    let mut out = String::with_capacity(value.len());
    let mut last_end = 0;
    let mut search = 0;
    while search <= value.len() {
        let Some((start, end)) = compiled.find_at(value, search) else {
            break;
        };
        out.push_str(&value[last_end..start]);
        if end > last_end || start == 0 {
            expand_template(&mut out, replacement, &value[start..end]);
        }
        last_end = end;
        let width = value[search..].chars().next().map_or(0, char::len_utf8);
        search = if search + width > end {
            search + width
        } else if search + 1 > end {
            search + 1
        } else {
            end
        };
    }
    out.push_str(&value[last_end..]);
    Ok(out)
}

/// Go's `Regexp.Expand` for a pattern without capture groups: `$$` is a
/// dollar, `$0`/`${0}` the whole match, any other `$name`/`${name}` nothing,
/// and a `$` not followed by a valid name stays literal.
fn expand_template(out: &mut String, template: &str, matched: &str) {
    let mut rest = template;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        rest = &rest[dollar + 1..];
        if let Some(after) = rest.strip_prefix('$') {
            out.push('$');
            rest = after;
            continue;
        }
        let (braced, body) = match rest.strip_prefix('{') {
            Some(body) => (true, body),
            None => (false, rest),
        };
        let name_len: usize = body
            .chars()
            .take_while(|&c| c.is_alphabetic() || c.is_numeric() || c == '_')
            .map(char::len_utf8)
            .sum();
        let name = &body[..name_len];
        let after_name = &body[name_len..];
        let after = if braced {
            after_name.strip_prefix('}')
        } else {
            Some(after_name)
        };
        match after {
            Some(after) if !name.is_empty() => {
                if name == "0" {
                    out.push_str(matched);
                }
                rest = after;
            }
            _ => out.push('$'),
        }
    }
    out.push_str(rest);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_prefix(pattern: &str, value: &str, longest: bool, expected: &str) {
        let got = trim_prefix(pattern, value, longest).expect("valid pattern");
        assert_eq!(
            got, expected,
            "trim_prefix({pattern:?}, {value:?}, longest={longest})"
        );
    }

    fn check_suffix(pattern: &str, value: &str, longest: bool, expected: &str) {
        let got = trim_suffix(pattern, value, longest).expect("valid pattern");
        assert_eq!(
            got, expected,
            "trim_suffix({pattern:?}, {value:?}, longest={longest})"
        );
    }

    fn check_replace(pattern: &str, value: &str, repl: &str, all: bool, expected: &str) {
        let got = replace(pattern, value, repl, all).expect("valid pattern");
        assert_eq!(
            got, expected,
            "replace({pattern:?}, {value:?}, {repl:?}, all={all})"
        );
    }

    #[test]
    fn prefix_shortest_and_longest() {
        check_prefix("*x*y", "xxyy", false, "y");
        check_prefix("*", "xxyy", false, "xxyy");
        check_prefix("*x", "xxyy", true, "yy");
        check_prefix("", "xxyy", true, "xxyy");
        check_prefix("?\\?", "???y", false, "?y");
        check_prefix("nomatch", "xxyy", false, "xxyy");
        check_prefix("()[]{\\}^$.\\*\\?|\\\\", "()[]{}^$.*?|\\x", false, "x");
    }

    #[test]
    fn suffix_shortest_and_longest() {
        check_suffix("\\**", "xx**", true, "xx");
        check_suffix("\\**\\*", "a***yy*", true, "a");
        check_suffix("x", "xxyy", false, "xxyy");
        check_suffix("y*", "xxyy", false, "xxy");
        check_suffix("y*", "xxyy", true, "xx");
        check_suffix("", "xxyy", true, "xxyy");
    }

    #[test]
    fn wildcards_do_not_cross_newlines() {
        check_prefix("*b", "a\nb", true, "a\nb");
        check_prefix("a?b", "a\nb", false, "a\nb");
        check_replace("a*", "ab\ncd", "X", true, "X\ncd");
    }

    #[test]
    fn replace_first_and_all() {
        check_replace("\\*/", "/foo*/*/*.txt", ".", false, "/foo.*/*.txt");
        check_replace("\\*/", "/foo*/*/*.txt", ".", true, "/foo..*.txt");
        check_replace("/tmp", "/tmp/tmp/bar.txt", "", false, "/tmp/bar.txt");
        check_replace("/tmp", "/tmp/tmp/bar.txt", "", true, "/bar.txt");
        check_replace("/?/", "/a/foo/b/c.txt", "/", true, "/foo/c.txt");
        check_replace("\\/", "/tmp/foo.txt", "\\/", true, "\\/tmp\\/foo.txt");
        check_replace("", "xxyy", "ww", false, "wwxxyy");
        check_replace("", "xy", "-", true, "-x-y-");
        check_replace("", "xxyy", "", true, "xxyy");
        check_replace("x?", "xxyy", "-", true, "-yy");
        // the empty match right after a match is not replaced
        check_replace("*", "ab", "x", true, "x");
    }

    #[test]
    fn replace_all_expands_go_templates() {
        check_replace("b", "abc", "[$0]", true, "a[b]c");
        check_replace("b", "abc", "[${0}]", true, "a[b]c");
        check_replace("b", "abc", "$$", true, "a$c");
        check_replace("b", "abc", "$name", true, "ac");
        check_replace("b", "abc", "$-", true, "a$-c");
        check_replace("b", "abc", "${0", true, "a${0c");
        // first-match replacement is spliced in literally
        check_replace("b", "abc", "[$0]", false, "a[$0]c");
    }

    #[test]
    fn invalid_escapes_are_rejected() {
        assert_eq!(
            Pattern::compile("\\x").unwrap_err(),
            PatternError::InvalidEscape('x')
        );
        assert_eq!(
            Pattern::compile("\\").unwrap_err(),
            PatternError::TrailingEscape
        );
        assert_eq!(
            Pattern::compile("\\\\\\").unwrap_err(),
            PatternError::TrailingEscape
        );
        assert!(Pattern::compile("(()[]{\\}^$.\\*\\?|\\\\").is_ok());
    }

    #[test]
    fn reverse_pattern_keeps_escape_pairs() {
        for (pattern, expected) in [
            ("a\\*c", "c\\*a"),
            ("\\\\\\ab", "b\\a\\\\"),
            ("ab\\", "\\ba"),
            ("👽\\🚀🖖", "🖖\\🚀👽"),
            ("\\\\b", "b\\\\"),
            ("", ""),
        ] {
            assert_eq!(
                reverse_pattern(pattern),
                expected,
                "reverse_pattern({pattern:?})"
            );
        }
    }
}
