//! Exec-form arguments: the JSON arrays of `RUN ["a", "b"]` and friends.
//!
//! BuildKit (`parseJSON` in line_parsers.go) trims leading space, requires a
//! `[`, and hands the rest to Go's `json.Unmarshal` into `[]any`. That gives
//! three outcomes, which this module reproduces:
//!
//! * valid JSON, an array of strings: exec form ([`JsonArray::Strings`]);
//! * valid JSON with any non-string element (number, nested array, ...): a
//!   hard parse error ([`JsonArray::NotStrings`]);
//! * anything else, including trailing text after `]` (Unmarshal rejects it)
//!   and nesting deeper than Go's limit of 10000: not JSON, and the caller
//!   falls back to the shell form ([`JsonArray::Invalid`]).
//!
//! The common case is matched by the `json_string_array` rule of the pest
//! grammar; the rare rest by a small iterative validator of Go's JSON syntax
//! (iterative so that deep nesting cannot exhaust the stack).

use super::grammar::{DockerfileGrammar, Rule};
use super::text::{go_lossy, trim_left_space};
use pest::Parser;

/// Go's `encoding/json` nesting limit (`maxNestingDepth`).
const MAX_DEPTH: usize = 10_000;

/// What Go's decoder makes of an exec-form argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonArray {
    /// A JSON array whose items are all strings.
    Strings(Vec<String>),
    /// Valid JSON, but not every item is a string.
    NotStrings,
    /// Not a JSON array at all (shell form).
    Invalid,
}

/// Classifies `rest` the way BuildKit's `parseJSON` does.
pub fn parse_json_array(rest: &[u8]) -> JsonArray {
    let rest = trim_left_space(rest);
    if rest.first() != Some(&b'[') {
        return JsonArray::Invalid;
    }
    // Go's decoder reads each invalid UTF-8 byte inside a string as U+FFFD,
    // and any such byte outside a string is a syntax error either way, so
    // the per-byte lossy text decides exactly like the bytes would.
    let text = go_lossy(rest);
    if let Ok(mut pairs) = DockerfileGrammar::parse(Rule::json_string_array, &text) {
        let strings = pairs
            .next()
            .map(|array| {
                array
                    .into_inner()
                    .filter(|p| p.as_rule() == Rule::json_string)
                    .map(|s| unquote(s.into_inner().as_str()))
                    .collect()
            })
            .unwrap_or_default();
        return JsonArray::Strings(strings);
    }
    if is_valid_json(text.as_bytes()) {
        JsonArray::NotStrings
    } else {
        JsonArray::Invalid
    }
}

/// Decodes the body of a JSON string already checked by the grammar, with Go's
/// rules for `\u` escapes: a valid surrogate pair combines, any other
/// surrogate becomes U+FFFD.
fn unquote(body: &str) -> String {
    let mut out = String::with_capacity(body.len());
    let mut chars = body.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some((_, esc)) = chars.next() else { break };
        match esc {
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'u' => {
                let first = hex4(&body[i + 2..]);
                for _ in 0..4 {
                    chars.next();
                }
                let Some(first) = first else { continue };
                if (0xD800..0xE000).contains(&first) {
                    // utf16.DecodeRune: only a high surrogate followed by an
                    // escaped low surrogate makes a pair; otherwise U+FFFD
                    // and the following escape is left alone.
                    let after = i + 6;
                    let second = body[after..]
                        .strip_prefix("\\u")
                        .and_then(hex4)
                        .filter(|lo| (0xDC00..0xE000).contains(lo));
                    if let (true, Some(lo)) = ((0xD800..0xDC00).contains(&first), second) {
                        let cp = 0x10000 + ((first - 0xD800) << 10) + (lo - 0xDC00);
                        out.push(char::from_u32(cp).unwrap_or('\u{FFFD}'));
                        for _ in 0..6 {
                            chars.next();
                        }
                    } else {
                        out.push('\u{FFFD}');
                    }
                } else {
                    out.push(char::from_u32(first).unwrap_or('\u{FFFD}'));
                }
            }
            other => out.push(other),
        }
    }
    out
}

fn hex4(s: &str) -> Option<u32> {
    let digits = s.get(..4)?;
    if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(digits, 16).ok()
}

/// Go's `json.Valid` (plus its depth limit): one JSON value with optional
/// white space around it.
fn is_valid_json(s: &[u8]) -> bool {
    let mut v = Validator { s, i: 0 };
    v.document()
}

struct Validator<'a> {
    s: &'a [u8],
    i: usize,
}

impl Validator<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn document(&mut self) -> bool {
        // Open containers, innermost last: b'[' or b'{'.
        let mut stack: Vec<u8> = Vec::new();
        loop {
            // Expecting a value.
            self.skip_ws();
            match self.peek() {
                Some(open @ (b'[' | b'{')) => {
                    self.i += 1;
                    stack.push(open);
                    if stack.len() > MAX_DEPTH {
                        return false;
                    }
                    self.skip_ws();
                    let close = if open == b'[' { b']' } else { b'}' };
                    if self.eat(close) {
                        stack.pop();
                    } else if open == b'[' {
                        continue;
                    } else if !self.member_key() {
                        return false;
                    } else {
                        continue;
                    }
                }
                Some(b'"') => {
                    if !self.string() {
                        return false;
                    }
                }
                Some(b'-' | b'0'..=b'9') => {
                    if !self.number() {
                        return false;
                    }
                }
                Some(b't') => {
                    if !self.literal(b"true") {
                        return false;
                    }
                }
                Some(b'f') => {
                    if !self.literal(b"false") {
                        return false;
                    }
                }
                Some(b'n') => {
                    if !self.literal(b"null") {
                        return false;
                    }
                }
                _ => return false,
            }
            // After a value: close containers or move to the next item.
            loop {
                self.skip_ws();
                match stack.last() {
                    None => return self.i == self.s.len(),
                    Some(&container) => {
                        let close = if container == b'[' { b']' } else { b'}' };
                        if self.eat(close) {
                            stack.pop();
                            continue;
                        }
                        if !self.eat(b',') {
                            return false;
                        }
                        if container == b'{' {
                            self.skip_ws();
                            if !self.member_key() {
                                return false;
                            }
                        }
                        break;
                    }
                }
            }
        }
    }

    /// `"key" :` inside an object.
    fn member_key(&mut self) -> bool {
        if self.peek() != Some(b'"') || !self.string() {
            return false;
        }
        self.skip_ws();
        self.eat(b':')
    }

    fn string(&mut self) -> bool {
        self.i += 1; // opening quote
        while let Some(b) = self.peek() {
            self.i += 1;
            match b {
                b'"' => return true,
                b'\\' => match self.peek() {
                    Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => self.i += 1,
                    Some(b'u') => {
                        self.i += 1;
                        for _ in 0..4 {
                            if !matches!(self.peek(), Some(h) if h.is_ascii_hexdigit()) {
                                return false;
                            }
                            self.i += 1;
                        }
                    }
                    _ => return false,
                },
                0x00..=0x1F => return false,
                _ => {}
            }
        }
        false
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.i += 1;
        }
        self.i - start
    }

    fn number(&mut self) -> bool {
        self.eat(b'-');
        match self.peek() {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return false,
        }
        if self.eat(b'.') && self.digits() == 0 {
            return false;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if self.digits() == 0 {
                return false;
            }
        }
        true
    }

    fn literal(&mut self, word: &[u8]) -> bool {
        if self.s[self.i..].starts_with(word) {
            self.i += word.len();
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> JsonArray {
        JsonArray::Strings(v.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn arrays_of_strings() {
        assert_eq!(parse_json_array(b"[]"), strings(&[]));
        assert_eq!(parse_json_array(b"[\"\"]"), strings(&[""]));
        assert_eq!(
            parse_json_array(b" [ \"a\" ,\t\"b\" ] "),
            strings(&["a", "b"])
        );
        assert_eq!(
            parse_json_array(br#"["\" \\ \/ \b \f \n \r \t \u0000"]"#),
            strings(&["\" \\ / \u{8} \u{c} \n \r \t \0"])
        );
    }

    #[test]
    fn surrogates_follow_go() {
        assert_eq!(parse_json_array(br#"["\ud83d\ude00"]"#), strings(&["😀"]));
        assert_eq!(parse_json_array(br#"["\ud83dx"]"#), strings(&["\u{FFFD}x"]));
        assert_eq!(
            parse_json_array(br#"["\ude00\u0041"]"#),
            strings(&["\u{FFFD}A"])
        );
        assert_eq!(parse_json_array(b"[\"\xff\"]"), strings(&["\u{FFFD}"]));
    }

    #[test]
    fn non_strings_are_an_error_not_a_fallback() {
        for bad in [
            "[\"a\",42,\"b\"]",
            "[\"a\",123.456,\"b\"]",
            "[\"a\",{},\"b\"]",
            "[\"a\",{\"c\": \"d\"},\"b\"]",
            "[\"a\",[\"c\"],\"b\"]",
            "[\"a\",true,\"b\"]",
            "[\"a\",null,\"b\"]",
            "[ \"echo\", [ \"nested json\" ] ]",
        ] {
            assert_eq!(
                parse_json_array(bad.as_bytes()),
                JsonArray::NotStrings,
                "{bad}"
            );
        }
    }

    #[test]
    fn invalid_json_falls_back() {
        for bad in [
            "['a']",
            "[\"a\"",
            "[\"a]",
            "[\"a\"] trailing",
            "[\"a\",]",
            "[01]",
            "[\"a\u{1}\"]",
            "not json",
            "[1.]",
            "[-]",
        ] {
            assert_eq!(
                parse_json_array(bad.as_bytes()),
                JsonArray::Invalid,
                "{bad}"
            );
        }
    }

    #[test]
    fn depth_limit_matches_go() {
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert_eq!(parse_json_array(ok.as_bytes()), JsonArray::NotStrings);
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert_eq!(parse_json_array(deep.as_bytes()), JsonArray::Invalid);
    }
}
