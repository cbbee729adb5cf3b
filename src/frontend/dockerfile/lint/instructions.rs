//! Checks of the instructions inside stages, in BuildKit's words
//! (moby/buildkit `frontend/dockerfile/dockerfile2llb/convert.go`: the
//! `dispatch*` functions, `validateCommandCasing`, `validateUsedOnce`,
//! `validateNoSecretKey`; `frontend/dockerfile/instructions/parse.go`).

use super::rules::*;
use super::{header, Findings};
use crate::parser::{CommandLine, Dockerfile, InstructionKind, Span};

pub(super) fn check(df: &Dockerfile, f: &mut Findings) {
    casing(df, f);
    for w in &df.warnings {
        f.add(
            &NO_EMPTY_CONTINUATION,
            (w.line, w.line),
            "Empty continuation line".into(),
        );
    }
    // instructions/parse.go, for every stage.
    for inst in df.stages.iter().flat_map(|st| &st.instructions) {
        if let InstructionKind::Maintainer(_) = inst.kind {
            f.add(
                &MAINTAINER_DEPRECATED,
                (inst.span.line, inst.span.end_line),
                "Maintainer instruction is deprecated in favor of using label".into(),
            );
        }
    }
    // The rest is checked as each stage is dispatched, with what a stage
    // built on an earlier one inherits (its SHELL, whether a WORKDIR was
    // set). Global ARGs are not checked for secrets: BuildKit checks ARGs
    // in `dispatchArg`, which only stages' ARGs go through.
    let mut shells = vec![false; df.stages.len()];
    let mut workdirs = vec![false; df.stages.len()];
    for (i, st) in df.stages.iter().enumerate() {
        f.stage = Some(i);
        let base = st.base.to_lowercase();
        let parent = df.stages[..i]
            .iter()
            .position(|s| s.name.as_deref() == Some(base.as_str()));
        let mut shell_set = parent.is_some_and(|j| shells[j]);
        let mut workdir_set = parent.is_some_and(|j| workdirs[j]);
        let mut used_once: [Option<&Span>; 3] = [None, None, None];
        for inst in &st.instructions {
            let span = &inst.span;
            let lines = (span.line, span.end_line);
            let name = header(&span.original).0;
            match &inst.kind {
                InstructionKind::Shell(_) => shell_set = true,
                InstructionKind::Cmd(c) => {
                    used_once_check(&mut used_once[0], span, f);
                    json_args(&c.command, shell_set, name, lines, f);
                }
                InstructionKind::Entrypoint(e) => {
                    used_once_check(&mut used_once[1], span, f);
                    json_args(&e.command, shell_set, name, lines, f);
                }
                InstructionKind::Healthcheck(_) => used_once_check(&mut used_once[2], span, f),
                InstructionKind::Workdir(w) => {
                    // A path from a variable is judged after expansion in
                    // BuildKit; unexpanded here, it is left alone.
                    if !workdir_set && !w.path.starts_with('/') && !w.path.starts_with('$') {
                        f.add(
                            &WORKDIR_RELATIVE_PATH,
                            lines,
                            format!(
                                "Relative workdir {:?} can have unexpected results if the base image changes",
                                w.path
                            ),
                        );
                    }
                    workdir_set = true;
                }
                InstructionKind::Env(e) => {
                    if e.vars.iter().any(|kv| kv.legacy) {
                        legacy(name, lines, f);
                    }
                    for kv in &e.vars {
                        secret_key("ENV", &kv.key, span, f);
                    }
                }
                InstructionKind::Label(l) if l.labels.iter().any(|kv| kv.legacy) => {
                    legacy(name, lines, f)
                }
                InstructionKind::Arg(a) => {
                    for d in &a.definitions {
                        secret_key("ARG", &d.name, span, f);
                    }
                }
                InstructionKind::Expose(e) => {
                    for port in &e.ports {
                        let proto = port.split_once('/').map(|(_, p)| p).unwrap_or("");
                        if proto != proto.to_lowercase() {
                            f.add(
                                &EXPOSE_PROTO_CASING,
                                lines,
                                format!("Defined protocol '{port}' in EXPOSE instruction should be lowercase"),
                            );
                        }
                    }
                }
                _ => {}
            }
        }
        shells[i] = shell_set;
        workdirs[i] = workdir_set;
    }
}

/// `validateCommandCasing`: every instruction name (FROM lines included,
/// global ARGs not) should be all lower or all upper case, as most are;
/// a tie counts as upper case.
fn casing(df: &Dockerfile, f: &mut Findings) {
    let spans: Vec<&Span> = df
        .stages
        .iter()
        .flat_map(|st| std::iter::once(&st.span).chain(st.instructions.iter().map(|i| &i.span)))
        .collect();
    let (mut lower, mut upper) = (0, 0);
    for s in &spans {
        let name = header(&s.original).0;
        if name == name.to_lowercase() {
            lower += 1;
        } else if name == name.to_uppercase() {
            upper += 1;
        }
    }
    let majority_lower = lower > upper;
    for s in spans {
        let name = header(&s.original).0;
        let wanted = if majority_lower && name != name.to_lowercase() {
            "lowercase"
        } else if !majority_lower && name != name.to_uppercase() {
            "uppercase"
        } else {
            continue;
        };
        f.add(
            &CONSISTENT_INSTRUCTION_CASING,
            (s.line, s.end_line),
            format!("Command '{name}' should match the case of the command majority ({wanted})"),
        );
    }
}

/// `validateUsedOnce`: the earlier of two CMD/ENTRYPOINT/HEALTHCHECK in a
/// stage is the one reported, since it has no effect (named as the later
/// one spells it).
fn used_once_check<'a>(last: &mut Option<&'a Span>, span: &'a Span, f: &mut Findings) {
    if let Some(prev) = last.replace(span) {
        let name = header(&span.original).0;
        f.add(
            &MULTIPLE_INSTRUCTIONS_DISALLOWED,
            (prev.line, prev.end_line),
            format!("Multiple {name} instructions should not be used in the same stage because only the last one will be used"),
        );
    }
}

/// `dispatchCmd`/`dispatchEntrypoint`: shell form without a `SHELL`.
fn json_args(
    cmd: &CommandLine,
    shell_set: bool,
    name: &str,
    lines: (usize, usize),
    f: &mut Findings,
) {
    if matches!(cmd, CommandLine::Shell(_)) && !shell_set {
        f.add(
            &JSON_ARGS_RECOMMENDED,
            lines,
            format!("JSON arguments recommended for {name} to prevent unintended behavior related to OS signals"),
        );
    }
}

fn legacy(name: &str, lines: (usize, usize), f: &mut Findings) {
    f.add(
        &LEGACY_KEY_VALUE_FORMAT,
        lines,
        format!(
            "\"{name} key=value\" should be used instead of legacy \"{name} key value\" format"
        ),
    );
}

/// `validateNoSecretKey`: a name with a `_`-separated word that names a
/// secret (case-insensitively), unless another word is `public`.
fn secret_key(instruction: &str, key: &str, span: &Span, f: &mut Findings) {
    const DENY: [&str; 10] = [
        "apikey",
        "auth",
        "credential",
        "credentials",
        "key",
        "password",
        "pword",
        "passwd",
        "secret",
        "token",
    ];
    let words: Vec<String> = key.split('_').map(str::to_lowercase).collect();
    let has = |set: &[&str]| words.iter().any(|w| set.contains(&w.as_str()));
    if has(&DENY) && !has(&["public"]) {
        f.add(
            &SECRETS_USED_IN_ARG_OR_ENV,
            (span.line, span.end_line),
            format!(
                "Do not use ARG or ENV instructions for sensitive data ({instruction} {key:?})"
            ),
        );
    }
}
