//! How steps are named in progress output and written in the history, in
//! BuildKit's spelling: `[stage 2/5] RUN make`, `CMD ["sh" "-c" "x"]`.

use crate::parser::go_quote;
use crate::shell::{Env, Lexer};
use crate::solver::Platform;

/// Numbers a stage's steps: `[name i/total] ` (the name only when the
/// Dockerfile has several stages), padded like BuildKit's `%*d`; in a
/// multi-platform build the stage's platform comes first,
/// `[linux/amd64->arm64 name i/total] ` (moby/buildkit
/// `frontend/dockerfile/dockerfile2llb/convert.go`, `prefixCommand`).
#[derive(Debug, Clone, Default)]
pub(super) struct StepCounter {
    /// The stage's platform, shown in a multi-platform build only.
    pub platform: Option<Platform>,
    /// [`target_suffix`] for the instruction being named.
    pub target: String,
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
        if let Some(platform) = &self.platform {
            out.push_str(&format!("{platform}{} ", self.target));
        }
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

/// BuildKit's `formatTargetPlatform` with `platformFromEnv` (moby/buildkit
/// `frontend/dockerfile/dockerfile2llb/convert.go`): when the `TARGET*`
/// args in scope name another platform than the stage's `base` (a
/// `$BUILDPLATFORM` stage cross-building), `->arm64` for another
/// architecture of the same OS, `->os/arch` for another OS; else nothing.
pub(super) fn target_suffix(base: &Platform, env: &impl Env) -> String {
    let parsed = env
        .get("TARGETPLATFORM")
        .and_then(|v| Platform::parse(v).ok());
    let target = match parsed {
        Some(p) => p,
        None => {
            let part = |name| env.get(name).unwrap_or("");
            let (os, arch, variant) = (part("TARGETOS"), part("TARGETARCH"), part("TARGETVARIANT"));
            if [os, arch, variant].iter().all(|v| v.is_empty()) {
                return String::new();
            }
            let os = if os.is_empty() { &base.os } else { os };
            let arch = if arch.is_empty() {
                &base.architecture
            } else {
                arch
            };
            Platform::new(os, arch, Some(variant).filter(|v| !v.is_empty()))
        }
    };
    let p = target.normalized();
    if p.os != base.os {
        return format!("->{p}");
    }
    if p.architecture == base.architecture {
        return String::new();
    }
    match &p.variant {
        Some(v) => format!("->{}/{v}", p.architecture),
        None => format!("->{}", p.architecture),
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
            ..StepCounter::default()
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

    /// BuildKit's names in a multi-platform build: the stage's platform,
    /// and the target when the stage's `TARGET*` args name another.
    #[test]
    fn multi_platform_steps_name_the_stage_platform_and_a_cross_target() {
        let amd64 = Platform::linux_amd64();
        let mut c = StepCounter {
            platform: Some(amd64.clone()),
            stage: "build".into(),
            total: 2,
            ..StepCounter::default()
        };
        assert_eq!(c.next("FROM x", false), "[linux/amd64 build 1/2] FROM x");
        let env = |pairs: &[(&str, &str)]| {
            let mut m = crate::shell::EnvMap::new();
            for (k, v) in pairs {
                m.set(*k, *v);
            }
            m
        };
        c.target = target_suffix(&amd64, &env(&[("TARGETARCH", "arm64")]));
        assert_eq!(
            c.next("RUN y", false),
            "[linux/amd64->arm64 build 2/2] RUN y"
        );
        let cases = [
            (vec![("TARGETPLATFORM", "linux/arm/v7")], "->arm/v7"),
            (vec![("TARGETPLATFORM", "windows/amd64")], "->windows/amd64"),
            (vec![("TARGETOS", "linux"), ("TARGETARCH", "amd64")], ""),
            (vec![("TARGETPLATFORM", "linux/x86_64")], ""),
            (vec![("OTHER", "arm64")], ""),
        ];
        for (pairs, want) in cases {
            assert_eq!(target_suffix(&amd64, &env(&pairs)), want, "{pairs:?}");
        }
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
