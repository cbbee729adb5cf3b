//! UndefinedVar: a word the frontend expands names a variable that is
//! neither in the stage's environment nor a declared ARG (moby/buildkit
//! `dockerfile2llb/convert.go`, `reportUnmatchedVariables`, called for
//! every word an instruction expands; RUN/CMD/ENTRYPOINT are left to the
//! shell and never checked). The lowering knows the environment, base
//! image's `ENV` included, so it calls this as it expands.

use std::collections::BTreeSet;

use super::rules::UNDEFINED_VAR;
use super::Warning;
use crate::frontend::dockerfile::suggest::suggest;

/// Names never reported (`nonEnvArgs`: BuildKit's SBOM settings).
const NON_ENV_ARGS: [&str; 2] = ["BUILDKIT_SBOM_SCAN_CONTEXT", "BUILDKIT_SBOM_SCAN_STAGE"];

/// Warnings for `unmatched` names of one expansion at lines
/// `line..=end_line` (only ever in a stage being lowered, so no stage is
/// recorded): names not among `declared` ARGs, each with a
/// suggestion among the `known` variables (case-sensitive, as on Linux).
pub fn undefined_vars(
    unmatched: &BTreeSet<String>,
    declared: &[&str],
    known: &[String],
    (line, end_line): (usize, usize),
) -> Vec<Warning> {
    unmatched
        .iter()
        .filter(|name| !declared.contains(&name.as_str()) && !NON_ENV_ARGS.contains(&name.as_str()))
        .map(|name| {
            let mut message = format!("Usage of undefined variable '${name}'");
            if let Some(m) = suggest(name, known, true) {
                message.push_str(&format!(" (did you mean ${m}?)"));
            }
            Warning {
                rule: &UNDEFINED_VAR,
                message,
                line,
                end_line,
                stage: None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_args_are_not_undefined_and_close_names_are_suggested() {
        let unmatched: BTreeSet<String> = ["foo", "PAHT", "declared", "BUILDKIT_SBOM_SCAN_STAGE"]
            .map(String::from)
            .into();
        let known = vec!["PATH".to_string(), "HOME".into()];
        let got: Vec<String> = undefined_vars(&unmatched, &["declared"], &known, (3, 3))
            .iter()
            .map(Warning::short)
            .collect();
        assert_eq!(
            got,
            [
                "UndefinedVar: Usage of undefined variable '$PAHT' (did you mean $PATH?) (line 3)",
                "UndefinedVar: Usage of undefined variable '$foo' (line 3)",
            ]
        );
    }
}
