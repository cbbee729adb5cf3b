//! One logical line → one [`Statement`]: BuildKit's `splitCommand`,
//! `extractBuilderFlags` and the per-instruction line parsers
//! (line_parsers.go).
//!
//! These rules are procedural and byte-oriented in BuildKit, so they are
//! ported by hand: the flag splitter reads *bytes* (a non-ASCII byte is taken
//! as a Latin-1 character, and bytes 0x85/0xA0 count as spaces), the word
//! splitter for ENV/LABEL/ARG reads runes, the HEALTHCHECK type splitter reads
//! bytes again. Keeping each quirk is what makes the dump identical.

use super::error::ErrorKind;
use super::json::{parse_json_array, JsonArray};
use super::node::{RawFlag, Statement};
use super::position::{LineMap, Position};
use super::text::{decode_rune, is_space, is_space_byte, keyword, trim_space, RUNE_ERROR};

/// A parsed statement and, for ONBUILD, the trigger text still to parse
/// (with its offset in the joined line).
pub struct Parsed<'l> {
    pub statement: Statement,
    pub trigger: Option<(&'l [u8], usize)>,
}

/// An error with the position it refers to.
pub type StatementError = (ErrorKind, Position);

/// Go regexp `[\t\v\f\r ]` (BuildKit's `reWhitespace`).
fn is_re_ws(b: u8) -> bool {
    matches!(b, b'\t' | 0x0B | 0x0C | b'\r' | b' ')
}

/// Offset of `sub` inside `outer` (both from the same buffer).
fn offset_in(outer: &[u8], sub: &[u8]) -> usize {
    (sub.as_ptr() as usize).saturating_sub(outer.as_ptr() as usize)
}

/// Parses `line` (which starts at `base` in the joined line) into a
/// statement: `splitCommand`, then the line parser for its name.
pub fn parse_statement<'l>(
    line: &'l [u8],
    base: usize,
    escape: u8,
    map: &mut LineMap<'_>,
) -> Result<Parsed<'l>, StatementError> {
    let trimmed = trim_space(line);
    let name_off = offset_in(line, trimmed);
    let (name, after) = match trimmed.iter().position(|&b| is_re_ws(b)) {
        None => (trimmed, None),
        Some(i) => {
            let run = trimmed[i..].iter().take_while(|&&b| is_re_ws(b)).count();
            (&trimmed[..i], Some(name_off + i + run))
        }
    };
    let mut flags = Vec::new();
    let mut args: &[u8] = &[];
    if let Some(after) = after {
        let (rest, words) = extract_flags(&line[after..], escape);
        for (text, off) in words {
            let position = map.position(base + after + off);
            flags.push(RawFlag { text, position });
        }
        args = trim_space(rest);
    }
    let args_off = if args.is_empty() {
        line.len()
    } else {
        offset_in(line, args)
    };
    let args_position = map.position(base + args_off);
    let err = |kind| (kind, args_position);
    let mut json = false;
    let mut trigger = None;
    let parsed_args: Vec<Vec<u8>> = match keyword(name).unwrap_or("") {
        "add" | "copy" | "volume" => {
            let (a, j) = maybe_json_to_list(args).map_err(err)?;
            json = j;
            a
        }
        "cmd" | "entrypoint" | "run" | "shell" => {
            let (a, j) = maybe_json(args).map_err(err)?;
            json = j;
            a
        }
        "healthcheck" => {
            let (a, j) = health_config(args).map_err(err)?;
            json = j;
            a
        }
        "env" => name_val(args, "ENV", escape).map_err(err)?,
        "label" => name_val(args, "LABEL", escape).map_err(err)?,
        "arg" => words(args, escape),
        "expose" | "from" => whitespace_delimited(args),
        "maintainer" | "stopsignal" | "user" | "workdir" => string(args),
        "onbuild" => {
            if !args.is_empty() {
                trigger = Some((args, base + args_off));
            }
            Vec::new()
        }
        // parseIgnore: unknown instructions keep one empty argument.
        _ => vec![Vec::new()],
    };
    Ok(Parsed {
        statement: Statement {
            name: name.to_vec(),
            flags,
            args: parsed_args,
            json,
            args_position,
        },
        trigger,
    })
}

/// `extractBuilderFlags`: leading `--words`, byte by byte. Returns the rest
/// of the line and each flag with its offset in `line`.
fn extract_flags(line: &[u8], escape: u8) -> (&[u8], Vec<(String, usize)>) {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote,
    }
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut word = String::new();
    let mut word_start = 0;
    let mut quote = 0u8;
    let mut blank_ok = false;
    let mut pos = 0;
    let len = line.len();
    while pos <= len {
        let ch = if pos < len { line[pos] } else { 0 };
        if phase == Phase::Spaces {
            if pos == len {
                break;
            }
            if is_space_byte(ch) {
                pos += 1;
                continue;
            }
            if ch != b'-' || pos + 1 == len || line[pos + 1] != b'-' {
                return (&line[pos..], words);
            }
            phase = Phase::Word;
            word_start = pos;
        }
        if pos == len {
            if word != "--" && (blank_ok || !word.is_empty()) {
                words.push((word, word_start));
            }
            break;
        }
        if phase == Phase::Word {
            if is_space_byte(ch) {
                phase = Phase::Spaces;
                if word == "--" {
                    return (&line[pos..], words);
                }
                if blank_ok || !word.is_empty() {
                    words.push((std::mem::take(&mut word), word_start));
                }
                word.clear();
                blank_ok = false;
                pos += 1;
                continue;
            }
            if ch == b'\'' || ch == b'"' {
                quote = ch;
                blank_ok = true;
                phase = Phase::Quote;
                pos += 1;
                continue;
            }
            let mut ch = ch;
            if ch == escape {
                if pos + 1 == len {
                    pos += 1;
                    continue;
                }
                pos += 1;
                ch = line[pos];
            }
            // Go's `WriteRune(rune(byte))`: the byte as a Latin-1 character.
            word.push(char::from(ch));
            pos += 1;
            continue;
        }
        // Phase::Quote
        if ch == quote {
            phase = Phase::Word;
            pos += 1;
            continue;
        }
        let mut ch = ch;
        if ch == escape {
            if pos + 1 == len {
                phase = Phase::Word;
                pos += 1;
                continue;
            }
            pos += 1;
            ch = line[pos];
        }
        word.push(char::from(ch));
        pos += 1;
    }
    (&[], words)
}

/// Go's `regexp.Split` with BuildKit's `reWhitespace`; `limit` as Go's `n`
/// (None for -1).
fn split_ws(s: &[u8], limit: Option<usize>) -> Vec<&[u8]> {
    if s.is_empty() {
        return vec![s];
    }
    let mut out = Vec::new();
    let (mut beg, mut end, mut i) = (0, 0, 0);
    while let Some(start) = s[i..].iter().position(|&b| is_re_ws(b)).map(|p| p + i) {
        let stop = start + s[start..].iter().take_while(|&&b| is_re_ws(b)).count();
        if limit.is_some_and(|n| out.len() + 1 == n) {
            break;
        }
        end = start;
        if stop != 0 {
            out.push(&s[beg..end]);
        }
        beg = stop;
        i = stop;
    }
    if end != s.len() {
        out.push(&s[beg..]);
    }
    out
}

/// `parseStringsWhitespaceDelimited`.
fn whitespace_delimited(rest: &[u8]) -> Vec<Vec<u8>> {
    if rest.is_empty() {
        return Vec::new();
    }
    split_ws(rest, None)
        .into_iter()
        .map(<[u8]>::to_vec)
        .collect()
}

/// `parseString`: the whole rest as one argument.
fn string(rest: &[u8]) -> Vec<Vec<u8>> {
    if rest.is_empty() {
        Vec::new()
    } else {
        vec![rest.to_vec()]
    }
}

/// `parseMaybeJSON`: exec form if valid JSON, else the rest as one string.
fn maybe_json(rest: &[u8]) -> Result<(Vec<Vec<u8>>, bool), ErrorKind> {
    if rest.is_empty() {
        return Ok((Vec::new(), false));
    }
    match parse_json_array(rest) {
        JsonArray::Strings(v) => Ok((v.into_iter().map(String::into_bytes).collect(), true)),
        JsonArray::NotStrings => Err(ErrorKind::JsonNotStrings),
        JsonArray::Invalid => Ok((vec![rest.to_vec()], false)),
    }
}

/// `parseMaybeJSONToList`: exec form if valid JSON, else whitespace-split.
fn maybe_json_to_list(rest: &[u8]) -> Result<(Vec<Vec<u8>>, bool), ErrorKind> {
    match parse_json_array(rest) {
        JsonArray::Strings(v) => Ok((v.into_iter().map(String::into_bytes).collect(), true)),
        JsonArray::NotStrings => Err(ErrorKind::JsonNotStrings),
        JsonArray::Invalid => Ok((whitespace_delimited(rest), false)),
    }
}

/// `parseHealthConfig`: a type word (split on *bytes* that Go's
/// `unicode.IsSpace(rune(b))` accepts) followed by a maybe-JSON command.
fn health_config(rest: &[u8]) -> Result<(Vec<Vec<u8>>, bool), ErrorKind> {
    let sep = rest
        .iter()
        .position(|&b| is_space_byte(b))
        .unwrap_or(rest.len());
    let next = sep
        + rest[sep..]
            .iter()
            .take_while(|&&b| is_space_byte(b))
            .count();
    if sep == 0 {
        return Ok((Vec::new(), false));
    }
    let (cmd, json) = maybe_json(&rest[next..])?;
    let mut args = Vec::with_capacity(cmd.len() + 1);
    args.push(rest[..sep].to_vec());
    args.extend(cmd);
    Ok((args, json))
}

/// `parseWords`: space-separated words, quotes and escapes kept, each
/// invalid UTF-8 byte written as U+FFFD (Go's `WriteRune(RuneError)`).
fn words(rest: &[u8], escape: u8) -> Vec<Vec<u8>> {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote,
    }
    let escape = char::from(escape);
    let decode = |at: usize| match decode_rune(&rest[at..]) {
        Some((r, w)) => (r.unwrap_or(RUNE_ERROR), w),
        None => ('\0', 0),
    };
    let mut out = Vec::new();
    let mut phase = Phase::Spaces;
    let mut quote = '\0';
    let mut blank_ok = false;
    let mut buf = String::new();
    let (mut ch, mut width) = ('\0', 0);
    let mut pos = 0;
    let len = rest.len();
    while pos <= len {
        if pos != len {
            (ch, width) = decode(pos);
        }
        if phase == Phase::Spaces {
            if pos == len {
                break;
            }
            if is_space(ch) {
                pos += width;
                continue;
            }
            phase = Phase::Word;
        }
        if pos == len {
            if blank_ok || !buf.is_empty() {
                out.push(std::mem::take(&mut buf).into_bytes());
            }
            break;
        }
        if phase == Phase::Word {
            if is_space(ch) {
                phase = Phase::Spaces;
                if blank_ok || !buf.is_empty() {
                    out.push(std::mem::take(&mut buf).into_bytes());
                }
                buf.clear();
                blank_ok = false;
                pos += width;
                continue;
            }
            if ch == '\'' || ch == '"' {
                quote = ch;
                blank_ok = true;
                phase = Phase::Quote;
            }
            if ch == escape {
                if pos + width == len {
                    pos += width;
                    continue;
                }
                buf.push(ch);
                pos += width;
                (ch, width) = decode(pos);
            }
            buf.push(ch);
            pos += width;
            continue;
        }
        // Phase::Quote
        if ch == quote {
            phase = Phase::Word;
        }
        if ch == escape && quote != '\'' {
            if pos + width == len {
                phase = Phase::Word;
                pos += width;
                continue;
            }
            pos += width;
            buf.push(ch);
            (ch, width) = decode(pos);
        }
        buf.push(ch);
        pos += width;
    }
    out
}

/// `parseNameVal` for ENV and LABEL: `k=v ...` words, or the legacy `k v`
/// form (everything after the first run of spaces is the value). Produces
/// key, value, separator triplets.
fn name_val(rest: &[u8], key: &str, escape: u8) -> Result<Vec<Vec<u8>>, ErrorKind> {
    let ws = words(rest, escape);
    let Some(first) = ws.first() else {
        return Ok(Vec::new());
    };
    if !first.contains(&b'=') {
        let parts = split_ws(rest, Some(2));
        if parts.len() < 2 {
            return Err(ErrorKind::MissingValue(key.to_string()));
        }
        return Ok(vec![parts[0].to_vec(), parts[1].to_vec(), Vec::new()]);
    }
    let mut out = Vec::with_capacity(ws.len() * 3);
    for word in ws {
        let Some(eq) = word.iter().position(|&b| b == b'=') else {
            return Err(ErrorKind::MissingEquals(super::dump::go_quote(&word)));
        };
        out.push(word[..eq].to_vec());
        out.push(word[eq + 1..].to_vec());
        out.push(b"=".to_vec());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Statement, ErrorKind> {
        let src = line.as_bytes();
        let mut map = LineMap::new(src);
        map.push(0, 1, 0, 0);
        parse_statement(src, 0, b'\\', &mut map)
            .map(|p| p.statement)
            .map_err(|e| e.0)
    }

    fn args(line: &str) -> Vec<String> {
        parse(line)
            .unwrap()
            .args
            .into_iter()
            .map(|a| String::from_utf8(a).unwrap())
            .collect()
    }

    #[test]
    fn flags_and_positions() {
        let s = parse("COPY --from=a  --chown=\"1 2\" -- src dst").unwrap();
        let flags: Vec<_> = s
            .flags
            .iter()
            .map(|f| (f.text.as_str(), f.position.column))
            .collect();
        assert_eq!(flags, vec![("--from=a", 6), ("--chown=1 2", 16)]);
        assert_eq!(s.args_position.column, 33);
        assert_eq!(
            args("COPY --from=a  --chown=\"1 2\" -- src dst"),
            vec!["src", "dst"]
        );
    }

    #[test]
    fn flag_bytes_are_latin1() {
        let s = parse("COPY --from=é a b").unwrap();
        assert_eq!(s.flags[0].text, "--from=Ã©");
    }

    #[test]
    fn env_forms() {
        assert_eq!(args("ENV a b c"), vec!["a", "b c", ""]);
        assert_eq!(
            args("ENV a=1 b=\"x y\""),
            vec!["a", "1", "=", "b", "\"x y\"", "="]
        );
        assert_eq!(
            parse("ENV PATH"),
            Err(ErrorKind::MissingValue("ENV".into()))
        );
        assert_eq!(
            parse("ENV a=1 b"),
            Err(ErrorKind::MissingEquals("\"b\"".into()))
        );
    }

    #[test]
    fn json_and_shell_forms() {
        assert!(parse("CMD [\"a\"]").unwrap().json);
        assert_eq!(args("CMD [\"a\"] x"), vec!["[\"a\"] x"]);
        assert_eq!(args("COPY a  b"), vec!["a", "b"]);
        assert_eq!(parse("RUN [[\"x\"]]"), Err(ErrorKind::JsonNotStrings));
    }

    #[test]
    fn health_and_unknown() {
        assert_eq!(args("HEALTHCHECK CMD [\"a\"]"), vec!["CMD", "a"]);
        assert_eq!(args("HEALTHCHECK NONE"), vec!["NONE"]);
        assert_eq!(args("FOO bar"), vec![""]);
    }

    #[test]
    fn split_ws_matches_go() {
        assert_eq!(split_ws(b"a  b c", Some(2)), vec![&b"a"[..], b"b c"]);
        assert_eq!(split_ws(b"a ", None), vec![&b"a"[..], b""]);
        assert_eq!(split_ws(b"", None), vec![&b""[..]]);
    }

    /// BuildKit's TestParseWords.
    #[test]
    fn words_like_buildkit() {
        let w = |s: &str| -> Vec<String> {
            words(s.as_bytes(), b'\\')
                .into_iter()
                .map(|w| String::from_utf8(w).unwrap())
                .collect()
        };
        assert_eq!(w("foo"), vec!["foo"]);
        assert_eq!(w("foo bar"), vec!["foo", "bar"]);
        assert_eq!(w("foo\\ bar"), vec!["foo\\ bar"]);
        assert_eq!(w("foo=bar"), vec!["foo=bar"]);
        assert_eq!(w("foo bar 'abc xyz'"), vec!["foo", "bar", "'abc xyz'"]);
        assert_eq!(w("foo bar \"abc xyz\""), vec!["foo", "bar", "\"abc xyz\""]);
        assert_eq!(w("àöû"), vec!["àöû"]);
        assert_eq!(w("föo bàr \"âbc xÿz\""), vec!["föo", "bàr", "\"âbc xÿz\""]);
        let invalid: Vec<Vec<u8>> = words(b"a\xffb", b'\\');
        assert_eq!(invalid, vec!["a\u{FFFD}b".as_bytes().to_vec()]);
    }
}
