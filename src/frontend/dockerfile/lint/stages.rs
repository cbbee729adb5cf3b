//! Checks of `FROM` lines: stage names, the `AS` keyword, `--platform`
//! and the global ARGs a base name uses. Each cites the BuildKit function
//! that emits it (moby/buildkit `frontend/dockerfile/instructions/parse.go`
//! and `frontend/dockerfile/dockerfile2llb/convert.go`).

use std::collections::BTreeSet;

use super::rules::*;
use super::{header, Findings};
use crate::image::reference::ImageRef;
use crate::parser::Dockerfile;
use crate::shell::{EnvMap, Lexer};
use crate::solver::Platform;

/// Stage names BuildKit reserves (`reservedStageNames` in parse.go).
const RESERVED: [&str; 2] = ["context", "scratch"];

pub(super) fn check(df: &Dockerfile, platform: &Platform, f: &mut Findings) {
    let lexer = Lexer::new(df.escape);
    let env = default_global_env(df, platform, &lexer);
    // `unusedFromArgsCheckKeys`: the global ARGs (`outline.allArgs`, with
    // or without a value) and the global scope's names; a stage's own
    // ARGs are not visible to FROM lines.
    let mut known: BTreeSet<String> = env.iter().map(|(k, _)| k.to_string()).collect();
    known.insert("TARGETSTAGE".into());
    for g in &df.global_args {
        known.extend(g.arg.definitions.iter().map(|d| d.name.clone()));
    }
    let known: Vec<String> = known.into_iter().collect();
    let mut seen = BTreeSet::new();
    for st in &df.stages {
        let lines = (st.span.line, st.span.end_line);
        let (from, args) = header(&st.span.original);
        if args.len() >= 3 {
            let (as_kw, raw_name) = (args[1], args[2]);
            // parseFrom: the name as written must be lower case.
            if raw_name != raw_name.to_lowercase() {
                f.add(
                    &STAGE_NAME_CASING,
                    lines,
                    format!("Stage name '{raw_name}' should be lowercase"),
                );
            }
            // doesFromCaseMatchAsCase: only when FROM itself is consistently
            // cased (ConsistentInstructionCasing covers the rest).
            let from_lower = from == from.to_lowercase();
            let from_upper = from == from.to_uppercase();
            let mismatch = if from_lower {
                as_kw != as_kw.to_lowercase()
            } else if from_upper {
                as_kw != as_kw.to_uppercase()
            } else {
                false
            };
            if mismatch {
                f.add(
                    &FROM_AS_CASING,
                    lines,
                    format!("'{as_kw}' and '{from}' keywords' casing do not match"),
                );
            }
        }
        if let Some(name) = &st.name {
            // dispatchContext: reserved names, then duplicates.
            if RESERVED.contains(&name.as_str()) {
                f.add(
                    &RESERVED_STAGE_NAME,
                    lines,
                    format!("Stage name should not use the same name as reserved stage {name:?}"),
                );
            }
            if !seen.insert(name.clone()) {
                f.add(
                    &DUPLICATE_STAGE_NAME,
                    lines,
                    format!("Duplicate stage name {name:?}, stage names should be unique"),
                );
            }
        }
        if let Some(raw) = &st.platform {
            check_platform(
                raw,
                st.name.as_deref().unwrap_or(""),
                platform,
                &lexer,
                &env,
                lines,
                f,
            );
            undefined_args(raw, &lexer, &env, &known, lines, f);
        }
        undefined_args(&st.base, &lexer, &env, &known, lines, f);
        // validateBaseImagesWithDefaultArgs: with only the defaults, the
        // base must still parse as an image reference (even a stage name:
        // `FROM BUILDER` warns, as in BuildKit).
        if let Ok(e) = lexer.process_word(&st.base, &env) {
            if e.value.is_empty() || ImageRef::parse(&e.value).is_err() {
                f.add(
                    &INVALID_DEFAULT_ARG_IN_FROM,
                    lines,
                    format!(
                        "Default value for ARG {} results in empty or invalid base image name",
                        st.base
                    ),
                );
            }
        }
    }
}

/// `reportRedundantTargetPlatform` and `reportConstPlatformDisallowed`.
fn check_platform(
    raw: &str,
    stage: &str,
    host: &Platform,
    lexer: &Lexer,
    env: &EnvMap,
    lines: (usize, usize),
    f: &mut Findings,
) {
    let Ok(e) = lexer.process_word(raw, env) else {
        return;
    };
    if e.matched.len() == 1 && e.unmatched.is_empty() && e.matched.contains("TARGETPLATFORM") {
        if Some(e.value.as_str()) == crate::shell::Env::get(env, "TARGETPLATFORM") {
            f.add(
                &REDUNDANT_TARGET_PLATFORM,
                lines,
                format!(
                    "Setting platform to predefined {raw} in FROM is redundant as this is the default behavior"
                ),
            );
        }
        return;
    }
    if !e.matched.is_empty() || !e.unmatched.is_empty() {
        return;
    }
    // A constant platform is fine when the stage's name says which one
    // it is for (`FROM --platform=linux/arm64 x AS build-arm64`). As in
    // containerd's `platforms.Parse`, an OS alone means the host's
    // architecture.
    let mut parts = e.value.split('/');
    let os = parts.next().unwrap_or_default().to_lowercase();
    let arch = match parts.next() {
        Some(a) => a.to_lowercase(),
        None => host.architecture.clone(),
    };
    if os.is_empty() || arch.is_empty() || stage.contains(&os) || stage.contains(&arch) {
        return;
    }
    f.add(
        &FROM_PLATFORM_FLAG_CONST_DISALLOWED,
        lines,
        format!(
            "FROM --platform flag should not use constant value {:?}",
            e.value
        ),
    );
}

/// `reportUnusedFromArgs`: a variable a FROM line uses that no ARG
/// declares.
fn undefined_args(
    word: &str,
    lexer: &Lexer,
    env: &EnvMap,
    known: &[String],
    lines: (usize, usize),
    f: &mut Findings,
) {
    let Ok(e) = lexer.process_word(word, env) else {
        return;
    };
    for name in &e.unmatched {
        if known.contains(name) {
            continue;
        }
        let message = crate::frontend::dockerfile::suggest::with_suggestion(
            format!("FROM argument '{name}' is not declared"),
            name,
            known,
            true,
        );
        f.add(&UNDEFINED_ARG_IN_FROM, lines, message);
    }
}

/// The global scope with no `--build-arg`: automatic platform ARGs and
/// the global ARGs' defaults.
fn default_global_env(df: &Dockerfile, p: &Platform, lexer: &Lexer) -> EnvMap {
    let mut env = EnvMap::new();
    let variant = p.variant.clone().unwrap_or_default();
    for (k, v) in [
        ("BUILDPLATFORM", p.to_string()),
        ("BUILDOS", p.os.clone()),
        ("BUILDARCH", p.architecture.clone()),
        ("BUILDVARIANT", variant.clone()),
        ("TARGETPLATFORM", p.to_string()),
        ("TARGETOS", p.os.clone()),
        ("TARGETARCH", p.architecture.clone()),
        ("TARGETVARIANT", variant),
    ] {
        env.set(k, v);
    }
    for g in &df.global_args {
        for def in &g.arg.definitions {
            if let Some(default) = &def.default {
                if let Ok(v) = lexer.process_word(default, &env) {
                    env.set(def.name.clone(), v.value);
                }
            }
        }
    }
    env
}
