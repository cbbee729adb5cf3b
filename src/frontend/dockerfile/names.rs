//! How steps are named in progress output and written in the history, in
//! BuildKit's spelling: `[stage 2/5] RUN make`, `CMD ["sh" "-c" "x"]`.

use crate::parser::go_quote;
use crate::shell::{Env, Lexer};

/// Numbers a stage's steps: `[name i/total] ` (the name only when the
/// Dockerfile has several stages), padded like BuildKit's `%*d`.
#[derive(Debug, Clone, Default)]
pub(super) struct StepCounter {
    /// The stage name shown (empty with a single stage).
    pub stage: String,
    /// Steps numbered so far.
    pub index: usize,
    /// Steps of the stage.
    pub total: usize,
}

impl StepCounter {
    /// The next step's progress name for `text`.
    pub fn next(&mut self, text: &str, onbuild: bool) -> String {
        if self.total == 0 {
            return text.to_string();
        }
        self.index += 1;
        let width = self.total.to_string().len();
        let mut out = String::from("[");
        if !self.stage.is_empty() {
            out.push_str(&self.stage);
            out.push(' ');
        }
        out.push_str(&format!("{:>width$}/{}] ", self.index, self.total));
        if onbuild {
            out.push_str("ONBUILD ");
        }
        out + text
    }

    /// Another vertex of the step just numbered, with the same number
    /// (BuildKit's progress groups: `COPY --link`'s merge).
    pub fn again(&mut self, text: &str, onbuild: bool) -> String {
        self.index = self.index.saturating_sub(1);
        self.next(text, onbuild)
    }
}

/// The instruction word upper-cased, the rest as is (`uppercaseCmd`).
pub(super) fn uppercase_cmd(text: &str) -> String {
    match text.split_once(' ') {
        Some((word, rest)) => format!("{} {rest}", word.to_uppercase()),
        None => text.to_uppercase(),
    }
}

/// The instruction text with variables expanded, for display; left as
/// written when it does not expand (`processCmdEnv`).
pub(super) fn display(lexer: &Lexer, text: &str, env: &impl Env) -> String {
    match lexer.process_word(text, env) {
        Ok(e) => uppercase_cmd(&e.value),
        Err(_) => uppercase_cmd(text),
    }
}

/// Go's `%q` of a `[]string`: `["a" "b c"]`.
pub(super) fn go_quoted_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| go_quote(s.as_bytes())).collect();
    format!("[{}]", quoted.join(" "))
}

/// Go's `%v` of a `[]string`: `[a b c]`.
pub(super) fn go_list(items: &[String]) -> String {
    format!("[{}]", items.join(" "))
}

/// A summary of a heredoc for a step's name: its first line, `...` if
/// there are more (`summarizeHeredoc`).
pub(super) fn summarize_heredoc(doc: &str) -> String {
    let doc = doc.trim();
    let doc = doc.replace("\r\n", "\n");
    let mut lines = doc.split('\n');
    let first = lines.next().unwrap_or_default().to_string();
    if lines.next().is_some() {
        first + "..."
    } else {
        first
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_numbered_with_padding_and_stage_names() {
        let mut c = StepCounter {
            stage: "build".into(),
            index: 0,
            total: 12,
        };
        assert_eq!(c.next("FROM x", false), "[build  1/12] FROM x");
        c.index = 9;
        assert_eq!(c.next("RUN y", true), "[build 10/12] ONBUILD RUN y");
        let mut single = StepCounter {
            total: 2,
            ..StepCounter::default()
        };
        assert_eq!(single.next("RUN a", false), "[1/2] RUN a");
    }

    #[test]
    fn go_formats() {
        let items = vec!["/bin/sh".to_string(), "-c".into(), "echo \"hi\"".into()];
        assert_eq!(go_quoted_list(&items), r#"["/bin/sh" "-c" "echo \"hi\""]"#);
        assert_eq!(go_list(&items[..2]), "[/bin/sh -c]");
        assert_eq!(summarize_heredoc("\n a\nb\n"), "a...");
        assert_eq!(summarize_heredoc("one\n"), "one");
        assert_eq!(uppercase_cmd("run echo Hi"), "RUN echo Hi");
    }
}
