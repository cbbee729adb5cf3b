//! The shell word splitter BuildKit's parser runs to find heredoc markers.
//!
//! BuildKit detects heredocs by running its shell lexer
//! (`frontend/dockerfile/shell/lex.go`, `ProcessWords`) over the instruction
//! line with an empty environment and `SkipUnsetEnv`, so every `$VAR` and
//! `${VAR...}` is kept as text. Which words come out decides which heredocs
//! the parser reads, so this is a faithful port of exactly that mode:
//! escape character `\` whatever the `# escape=` directive says, quotes kept
//! or removed (`raw_quotes`), escapes kept or removed (`raw_escapes`),
//! `<<` followed by spaces kept in one word, and the lexer's quirks,
//! including one that drops the text of a word before a `${...}` that has a
//! modifier (its words buffer is shared with nested substitutions).
//!
//! Variable *expansion* is not done here; that is the shell module's job.

use super::text::{is_digit, is_letter, is_space};

/// How deeply `${...}` substitutions may nest. BuildKit (Go, growable
/// stacks) has no limit; here each level recurses, so absurd nesting is
/// refused instead of overflowing the stack. Only heredoc detection on such
/// a line is affected (a line the lexer rejects has no heredocs).
const MAX_NESTING: usize = 200;

/// Splits `input` into words as `ProcessWords` does with an empty
/// environment and `SkipUnsetEnv`. Errors carry BuildKit's message.
pub fn process_words(
    input: &str,
    raw_quotes: bool,
    raw_escapes: bool,
) -> Result<Vec<String>, String> {
    let mut chars: Vec<char> = input.chars().collect();
    // text/scanner ignores a byte order mark at the very start.
    if chars.first() == Some(&'\u{FEFF}') {
        chars.remove(0);
    }
    let mut lexer = Lexer {
        chars,
        pos: 0,
        raw_quotes,
        raw_escapes,
        words_buf: String::new(),
        depth: 0,
    };
    lexer
        .stop_on(None, raw_escapes)
        .map(|(_, words)| words)
        .map_err(|e| {
            format!(
                "failed to process {}: {e}",
                super::dump::go_quote(input.as_bytes())
            )
        })
}

struct Lexer {
    chars: Vec<char>,
    pos: usize,
    raw_quotes: bool,
    raw_escapes: bool,
    /// Shared by every nesting level, as in BuildKit (see module docs).
    words_buf: String,
    /// Current `${...}` nesting.
    depth: usize,
}

/// BuildKit's `wordsStruct`, minus the buffer that lives in the lexer.
struct Words {
    words: Vec<String>,
    in_word: bool,
}

impl Words {
    fn add_char(&mut self, buf: &mut String, ch: char) {
        if is_space(ch) && self.in_word {
            if !buf.is_empty() {
                self.words.push(std::mem::take(buf));
                self.in_word = false;
            }
        } else if !is_space(ch) {
            self.add_raw_char(buf, ch);
        }
    }

    fn add_raw_char(&mut self, buf: &mut String, ch: char) {
        buf.push(ch);
        self.in_word = true;
    }

    fn add_raw_string(&mut self, buf: &mut String, s: &str) {
        buf.push_str(s);
        self.in_word = true;
    }

    fn finish(mut self, buf: &mut String) -> Vec<String> {
        if !buf.is_empty() {
            self.words.push(std::mem::take(buf));
        }
        self.words
    }
}

impl Lexer {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    /// `processStopOn`: reads until `stop` (or the end) and returns the
    /// processed text and the words. The escape mode is switched for the
    /// duration of the call, like BuildKit's deferred reset.
    fn stop_on(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> Result<(String, Vec<String>), String> {
        let saved = self.raw_escapes;
        self.raw_escapes = raw_escapes;
        let out = self.stop_on_inner(stop);
        self.raw_escapes = saved;
        out
    }

    fn stop_on_inner(&mut self, stop: Option<char>) -> Result<(String, Vec<String>), String> {
        let mut result = String::new();
        self.words_buf.clear();
        let mut words = Words {
            words: Vec::new(),
            in_word: false,
        };
        while let Some(ch) = self.peek() {
            if stop == Some(ch) {
                self.next();
                let mut buf = std::mem::take(&mut self.words_buf);
                let w = words.finish(&mut buf);
                self.words_buf = buf;
                return Ok((result, w));
            }
            match ch {
                '$' => {
                    let tmp = self.dollar()?;
                    result.push_str(&tmp);
                    for c in tmp.chars() {
                        words.add_char(&mut self.words_buf, c);
                    }
                }
                '<' => {
                    let tmp = self.possible_heredoc();
                    result.push_str(&tmp);
                    words.add_raw_string(&mut self.words_buf, &tmp);
                }
                '\'' => {
                    let tmp = self.single_quote()?;
                    result.push_str(&tmp);
                    words.add_raw_string(&mut self.words_buf, &tmp);
                }
                '"' => {
                    let tmp = self.double_quote()?;
                    result.push_str(&tmp);
                    words.add_raw_string(&mut self.words_buf, &tmp);
                }
                _ => {
                    self.next();
                    let mut ch = ch;
                    if ch == '\\' {
                        if self.raw_escapes {
                            words.add_raw_char(&mut self.words_buf, ch);
                            result.push(ch);
                        }
                        match self.next() {
                            None => break,
                            Some(c) => {
                                ch = c;
                                words.add_raw_char(&mut self.words_buf, c);
                            }
                        }
                    } else {
                        words.add_char(&mut self.words_buf, ch);
                    }
                    result.push(ch);
                }
            }
        }
        if let Some(stop) = stop {
            return Err(format!(
                "unexpected end of statement while looking for matching {stop}"
            ));
        }
        let mut buf = std::mem::take(&mut self.words_buf);
        let w = words.finish(&mut buf);
        self.words_buf = buf;
        Ok((result, w))
    }

    fn single_quote(&mut self) -> Result<String, String> {
        let mut result = String::new();
        let open = self.next();
        if self.raw_quotes {
            result.extend(open);
        }
        loop {
            match self.next() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching single-quote"
                            .into(),
                    )
                }
                Some('\'') => {
                    if self.raw_quotes {
                        result.push('\'');
                    }
                    return Ok(result);
                }
                Some(c) => result.push(c),
            }
        }
    }

    fn double_quote(&mut self) -> Result<String, String> {
        let mut result = String::new();
        let open = self.next();
        if self.raw_quotes {
            result.extend(open);
        }
        loop {
            match self.peek() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching double-quote"
                            .into(),
                    )
                }
                Some('"') => {
                    self.next();
                    if self.raw_quotes {
                        result.push('"');
                    }
                    return Ok(result);
                }
                Some('$') => {
                    let v = self.dollar()?;
                    result.push_str(&v);
                }
                Some(mut ch) => {
                    self.next();
                    if ch == '\\' {
                        if self.raw_escapes {
                            result.push(ch);
                        }
                        match self.peek() {
                            // A trailing escape is dropped; the loop then
                            // reports the missing closing quote.
                            None => continue,
                            Some(c @ ('"' | '$' | '\\')) => {
                                self.next();
                                ch = c;
                            }
                            Some(_) => {}
                        }
                    }
                    result.push(ch);
                }
            }
        }
    }

    /// `processDollar` with every variable unset and `SkipUnsetEnv`: the
    /// reference is kept as text (normalised the way BuildKit prints it).
    fn dollar(&mut self) -> Result<String, String> {
        self.depth += 1;
        let out = if self.depth > MAX_NESTING {
            Err("substitutions nested too deeply".to_string())
        } else {
            self.dollar_inner()
        };
        self.depth -= 1;
        out
    }

    fn dollar_inner(&mut self) -> Result<String, String> {
        self.next(); // '$'
        if self.peek() != Some('{') {
            let name = self.name();
            return Ok(format!("${name}"));
        }
        self.next(); // '{'
        match self.peek() {
            None => return Err("syntax error: missing '}'".into()),
            Some('{' | '}' | ':') => return Err("syntax error: bad substitution".into()),
            Some(_) => {}
        }
        let name = self.name();
        let ch = self.next();
        // Go's string(rune(EOF)) is U+FFFD.
        let mut chs = String::from(ch.unwrap_or('\u{FFFD}'));
        match ch {
            Some('}') => Ok(format!("${{{name}}}")),
            Some(':' | '+' | '-' | '?' | '#' | '%') => {
                let mut modifier = ch;
                let null_is_unset = ch == Some(':');
                if null_is_unset {
                    modifier = self.next();
                    chs.push(modifier.unwrap_or('\u{FFFD}'));
                }
                let raw = matches!(modifier, Some('#' | '%'));
                if null_is_unset && raw {
                    return Err(format!("unsupported modifier ({chs}) in substitution"));
                }
                let word = match self.stop_on(Some('}'), raw) {
                    Ok((w, _)) => w,
                    Err(_) if self.peek().is_none() => {
                        return Err("syntax error: missing '}'".into())
                    }
                    Err(e) => return Err(e),
                };
                Ok(format!("${{{name}{chs}{word}}}"))
            }
            Some('/') => {
                if self.peek() == Some('/') {
                    // `${a//x/y}`: BuildKit prints the unset form with one slash.
                    self.next();
                }
                let pattern = match self.stop_on(Some('/'), true) {
                    Ok((w, _)) => w,
                    Err(_) if self.peek().is_none() => {
                        return Err("syntax error: missing '/' in ${}".into())
                    }
                    Err(e) => return Err(e),
                };
                let replacement = match self.stop_on(Some('}'), true) {
                    Ok((w, _)) => w,
                    Err(_) if self.peek().is_none() => {
                        return Err("syntax error: missing '}'".into())
                    }
                    Err(e) => return Err(e),
                };
                Ok(format!("${{{name}/{pattern}/{replacement}}}"))
            }
            _ => Err(format!("unsupported modifier ({chs}) in substitution")),
        }
    }

    /// `processName`: a run of digits, one special parameter, or a name of
    /// letters, digits and `_`.
    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.peek() {
            if name.is_empty() && is_digit(ch) {
                while let Some(d) = self.peek().filter(|c| is_digit(*c)) {
                    self.next();
                    name.push(d);
                }
                return name;
            }
            if name.is_empty() && matches!(ch, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0') {
                self.next();
                return ch.to_string();
            }
            if !is_letter(ch) && !is_digit(ch) && ch != '_' {
                break;
            }
            self.next();
            name.push(ch);
        }
        name
    }

    /// `processPossibleHeredoc`: `<<` plus any tabs, CRs and spaces after it
    /// stay in the current word, so `<< EOF` is one word.
    fn possible_heredoc(&mut self) -> String {
        self.next();
        if self.peek() != Some('<') {
            return "<".into();
        }
        self.next();
        let mut out = String::from("<<");
        while let Some(c @ ('\t' | '\r' | ' ')) = self.peek() {
            self.next();
            out.push(c);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> Vec<String> {
        process_words(s, true, true).unwrap()
    }

    #[test]
    fn raw_mode_keeps_quotes_and_escapes() {
        assert_eq!(
            raw(r#"RUN <<"EOF" a\ b 'c d'"#),
            vec!["RUN", "<<\"EOF\"", "a\\ b", "'c d'"]
        );
        assert_eq!(
            raw("RUN cat << EOF > out"),
            vec!["RUN", "cat", "<< EOF", ">", "out"]
        );
        assert_eq!(
            raw("COPY <<-EOF1 <<EOF2 /dst"),
            vec!["COPY", "<<-EOF1", "<<EOF2", "/dst"]
        );
    }

    #[test]
    fn cooked_mode_removes_quotes() {
        assert_eq!(
            process_words(r#""EOF""#, false, false).unwrap(),
            vec!["EOF"]
        );
        assert_eq!(
            process_words(r#"'E'OF"#, true, false).unwrap(),
            vec!["'E'OF"]
        );
        assert_eq!(
            process_words(r#"a\"b"#, false, false).unwrap(),
            vec!["a\"b"]
        );
    }

    #[test]
    fn variables_stay_as_text() {
        assert_eq!(
            raw("$FOO ${BAR} ${A:-x}"),
            vec!["$FOO", "${BAR}", "${A:-x}"]
        );
        assert_eq!(raw("${a//x/y}"), vec!["${a/x/y}"]);
        assert_eq!(raw("$1 $@"), vec!["$1", "$@"]);
    }

    #[test]
    fn shared_buffer_quirk_drops_prefix() {
        // BuildKit's nested processStopOn resets the shared words buffer.
        assert_eq!(raw("<<${A:-EOF}"), vec!["${A:-EOF}"]);
    }

    #[test]
    fn errors_carry_buildkit_messages() {
        let e = process_words("RUN 'open", true, true).unwrap_err();
        assert!(
            e.ends_with("unexpected end of statement while looking for matching single-quote"),
            "{e}"
        );
        assert!(process_words("${", true, true)
            .unwrap_err()
            .contains("missing '}'"));
        assert!(process_words("${}", true, true)
            .unwrap_err()
            .contains("bad substitution"));
        assert!(process_words("${a:#b}", true, true)
            .unwrap_err()
            .contains("unsupported modifier (:#)"));
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed() {
        let deep = format!("{}x{}", "${a:-".repeat(5000), "}".repeat(5000));
        assert!(process_words(&deep, true, true)
            .unwrap_err()
            .contains("nested too deeply"));
        let ok = format!("{}x{}", "${a:-".repeat(3), "}".repeat(3));
        assert_eq!(process_words(&ok, true, true).unwrap(), vec![ok.clone()]);
    }
}
