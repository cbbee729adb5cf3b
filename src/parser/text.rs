//! Go string semantics over raw bytes.
//!
//! BuildKit's parser is written in Go, where a `string` is an arbitrary byte
//! sequence that is *decoded* as UTF-8 only where a function asks for runes,
//! and an invalid byte then reads as U+FFFD with a width of one byte
//! (`utf8.DecodeRune`). To print exactly what BuildKit prints, the parser keeps
//! bytes and uses the functions here wherever the Go code decodes: trimming
//! with `unicode.IsSpace`, lower-casing with `strings.ToLower`, and the
//! Unicode classes (`IsPrint`, `IsLetter`, `IsDigit`) of Go's tables
//! (Unicode 15.0, hence the pinned `unicode-general-category` 0.6).

use std::borrow::Cow;
use unicode_general_category::{get_general_category, GeneralCategory as Gc};

/// The character Go substitutes for an invalid byte (`utf8.RuneError`).
pub const RUNE_ERROR: char = '\u{FFFD}';

/// Decodes the first rune of `bytes` like Go's `utf8.DecodeRune`.
///
/// Returns `None` for empty input. An invalid or truncated sequence yields
/// `(Err(byte), 1)`: Go reads it as U+FFFD of width one, but callers that
/// copy bytes through (Go slicing) need the original byte back.
pub fn decode_rune(bytes: &[u8]) -> Option<(Result<char, u8>, usize)> {
    let b0 = *bytes.first()?;
    if b0 < 0x80 {
        return Some((Ok(char::from(b0)), 1));
    }
    // Expected length and the allowed range of the second byte, per the
    // UTF-8 well-formed byte sequence table (RFC 3629 section 4); this is
    // exactly what Go accepts (no overlongs, no surrogates, <= U+10FFFF).
    let (len, lo, hi) = match b0 {
        0xC2..=0xDF => (2, 0x80, 0xBF),
        0xE0 => (3, 0xA0, 0xBF),
        0xE1..=0xEC | 0xEE..=0xEF => (3, 0x80, 0xBF),
        0xED => (3, 0x80, 0x9F),
        0xF0 => (4, 0x90, 0xBF),
        0xF1..=0xF3 => (4, 0x80, 0xBF),
        0xF4 => (4, 0x80, 0x8F),
        _ => return Some((Err(b0), 1)),
    };
    if bytes.len() < len {
        return Some((Err(b0), 1));
    }
    let b1 = bytes[1];
    if b1 < lo || b1 > hi || bytes[2..len].iter().any(|b| !(0x80..=0xBF).contains(b)) {
        return Some((Err(b0), 1));
    }
    let mut cp = u32::from(b0) & (0x7F >> len);
    for b in &bytes[1..len] {
        cp = (cp << 6) | (u32::from(*b) & 0x3F);
    }
    // The table above only admits scalar values, so this cannot fail; fall
    // back to the invalid-byte reading rather than panic if it ever did.
    match char::from_u32(cp) {
        Some(c) => Some((Ok(c), len)),
        None => Some((Err(b0), 1)),
    }
}

/// Iterates `(byte offset, rune as Go reads it, width)`: invalid bytes read
/// as U+FFFD with width one, like Go's `for i, r := range s`.
pub fn runes(bytes: &[u8]) -> impl Iterator<Item = (usize, char, usize)> + '_ {
    let mut pos = 0;
    std::iter::from_fn(move || {
        let (r, w) = decode_rune(&bytes[pos..])?;
        let at = pos;
        pos += w;
        Some((at, r.unwrap_or(RUNE_ERROR), w))
    })
}

/// Converts bytes to text the way Go does when it decodes a string rune by
/// rune: every invalid byte becomes one U+FFFD. (Rust's `from_utf8_lossy`
/// replaces maximal invalid subparts instead, which can differ.)
pub fn go_lossy(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => Cow::Owned(runes(bytes).map(|(_, r, _)| r).collect()),
    }
}

/// Go's `unicode.IsSpace`: the Unicode White_Space property, which is what
/// Rust's `char::is_whitespace` implements too.
pub fn is_space(c: char) -> bool {
    c.is_whitespace()
}

/// Go's `unicode.IsSpace(rune(b))` applied to a single *byte*, as BuildKit's
/// flag splitter and HEALTHCHECK parser do: bytes 0x85 and 0xA0 count as
/// spaces there even when they are part of a multi-byte character.
pub fn is_space_byte(b: u8) -> bool {
    matches!(b, b'\t' | b'\n' | 0x0B | 0x0C | b'\r' | b' ' | 0x85 | 0xA0)
}

/// Go's `bytes.TrimLeftFunc(s, unicode.IsSpace)`.
pub fn trim_left_space(bytes: &[u8]) -> &[u8] {
    let mut pos = 0;
    while let Some((r, w)) = decode_rune(&bytes[pos..]) {
        match r {
            Ok(c) if is_space(c) => pos += w,
            _ => break,
        }
    }
    &bytes[pos..]
}

/// Go's `strings.TrimSpace`: trims Unicode white space at both ends.
pub fn trim_space(bytes: &[u8]) -> &[u8] {
    let start = trim_left_space(bytes);
    let mut end = start.len();
    // Walk back over whole runes; a rune ends at `end` if decoding from its
    // lead byte covers exactly up to `end`.
    'outer: while end > 0 {
        for back in 1..=4.min(end) {
            let at = end - back;
            if let Some((Ok(c), w)) = decode_rune(&start[at..end]) {
                if w == back {
                    if is_space(c) {
                        end = at;
                        continue 'outer;
                    }
                    break 'outer;
                }
            }
        }
        break;
    }
    &start[..end]
}

/// Go's `strings.ToLower`: ASCII-only input is lowered byte-wise; otherwise
/// every rune goes through `unicode.ToLower` and invalid bytes become U+FFFD.
pub fn to_lower(bytes: &[u8]) -> Cow<'_, [u8]> {
    if bytes.is_ascii() {
        if bytes.iter().any(u8::is_ascii_uppercase) {
            return Cow::Owned(bytes.to_ascii_lowercase());
        }
        return Cow::Borrowed(bytes);
    }
    let mut out = String::with_capacity(bytes.len());
    for (_, r, _) in runes(bytes) {
        out.push(simple_lower(r));
    }
    Cow::Owned(out.into_bytes())
}

/// The instruction keywords, lower-case, as BuildKit's dispatch table has them.
pub const KEYWORDS: [&str; 18] = [
    "add",
    "arg",
    "cmd",
    "copy",
    "entrypoint",
    "env",
    "expose",
    "from",
    "healthcheck",
    "label",
    "maintainer",
    "onbuild",
    "run",
    "shell",
    "stopsignal",
    "user",
    "volume",
    "workdir",
];

/// The keyword an instruction name selects: `strings.ToLower(name)` looked
/// up in BuildKit's dispatch table, without allocating for ASCII names.
pub fn keyword(name: &[u8]) -> Option<&'static str> {
    if name.is_ascii() {
        return KEYWORDS
            .into_iter()
            .find(|k| k.as_bytes().eq_ignore_ascii_case(name));
    }
    let lower = to_lower(name);
    KEYWORDS.into_iter().find(|k| k.as_bytes() == &*lower)
}

/// Go's `unicode.ToLower`: the simple (one-to-one) case mapping. Rust's
/// `char::to_lowercase` is the full mapping, which differs only for U+0130.
pub fn simple_lower(c: char) -> char {
    if c == '\u{130}' {
        return 'i';
    }
    let mut it = c.to_lowercase();
    match (it.next(), it.next()) {
        (Some(l), None) => l,
        _ => c,
    }
}

/// Go's `strconv.IsPrint` (= `unicode.IsPrint`): letters, marks, numbers,
/// punctuation, symbols and the ASCII space.
pub fn is_print(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    matches!(
        get_general_category(c),
        Gc::UppercaseLetter
            | Gc::LowercaseLetter
            | Gc::TitlecaseLetter
            | Gc::ModifierLetter
            | Gc::OtherLetter
            | Gc::NonspacingMark
            | Gc::SpacingMark
            | Gc::EnclosingMark
            | Gc::DecimalNumber
            | Gc::LetterNumber
            | Gc::OtherNumber
            | Gc::ConnectorPunctuation
            | Gc::DashPunctuation
            | Gc::OpenPunctuation
            | Gc::ClosePunctuation
            | Gc::InitialPunctuation
            | Gc::FinalPunctuation
            | Gc::OtherPunctuation
            | Gc::MathSymbol
            | Gc::CurrencySymbol
            | Gc::ModifierSymbol
            | Gc::OtherSymbol
    )
}

/// Go's `unicode.IsLetter`: general category L.
pub fn is_letter(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_alphabetic();
    }
    matches!(
        get_general_category(c),
        Gc::UppercaseLetter
            | Gc::LowercaseLetter
            | Gc::TitlecaseLetter
            | Gc::ModifierLetter
            | Gc::OtherLetter
    )
}

/// Go's `unicode.IsDigit`: general category Nd.
pub fn is_digit(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_digit();
    }
    get_general_category(c) == Gc::DecimalNumber
}

/// Counts runes the way Go would (one per invalid byte); used for columns.
pub fn rune_count(bytes: &[u8]) -> usize {
    runes(bytes).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_matches_go_for_invalid_sequences() {
        assert_eq!(decode_rune(b"\xe2\x82A"), Some((Err(0xe2), 1)));
        assert_eq!(decode_rune(b"\xed\xa0\x80"), Some((Err(0xed), 1)));
        assert_eq!(decode_rune(b"\xc0\x80"), Some((Err(0xc0), 1)));
        assert_eq!(decode_rune("é".as_bytes()), Some((Ok('é'), 2)));
        assert_eq!(decode_rune("𝄞".as_bytes()), Some((Ok('𝄞'), 4)));
        assert_eq!(decode_rune(b""), None);
    }

    #[test]
    fn lossy_replaces_each_invalid_byte() {
        assert_eq!(go_lossy(b"a\xe2\x82b"), "a\u{FFFD}\u{FFFD}b");
        assert_eq!(go_lossy(b"plain"), "plain");
    }

    #[test]
    fn trim_space_handles_unicode_and_invalid_bytes() {
        assert_eq!(trim_space(" \u{a0}x y\u{2028}\t".as_bytes()), b"x y");
        assert_eq!(trim_space(b"\xff "), b"\xff");
        assert_eq!(trim_space(b"   "), b"");
        assert_eq!(trim_left_space(b"\n\tab "), b"ab ");
    }

    #[test]
    fn to_lower_follows_go() {
        assert_eq!(&*to_lower(b"RUN"), b"run");
        assert_eq!(&*to_lower("WOR\u{212A}DIR".as_bytes()), b"workdir");
        assert_eq!(&*to_lower("\u{130}".as_bytes()), b"i");
        assert_eq!(&*to_lower(b"A\xffB\xc3\xa9"), "a\u{FFFD}bé".as_bytes());
    }

    #[test]
    fn keywords_follow_go_lowercasing() {
        assert_eq!(keyword(b"RUN"), Some("run"));
        assert_eq!(keyword(b"rUn"), Some("run"));
        assert_eq!(keyword("WOR\u{212A}DIR".as_bytes()), Some("workdir"));
        assert_eq!(keyword(b"RUNN"), None);
        assert_eq!(keyword(b"R\xffN"), None);
    }

    #[test]
    fn print_classes() {
        assert!(is_print('♥'));
        assert!(!is_print('\u{a0}'));
        assert!(!is_print('\u{ad}'));
        assert!(!is_print('\u{2028}'));
        assert!(is_print('\u{FFFD}'));
        assert!(is_letter('é') && !is_letter('1'));
        assert!(is_digit('٣') && !is_digit('x'));
    }

    #[test]
    fn byte_spaces_include_latin1() {
        assert!(is_space_byte(0xa0) && is_space_byte(0x85) && !is_space_byte(0xc3));
    }
}
