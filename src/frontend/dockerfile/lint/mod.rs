//! BuildKit's build checks ("lint rules", docs.docker.com/reference/build-checks/):
//! the rules BuildKit enables by default, with its names, messages and
//! links, the `# check=` directive, and the two ways results are shown
//! (after a build, and as `kiln build --check`'s report).
//!
//! Checks read the typed AST only, never images or the store; the build
//! merges them with what the lowering found ([`merge`]) and judges
//! `error=true` before any step runs. As in BuildKit, checks made while a
//! stage is dispatched ([`Warning::stage`]) count in a build only for the
//! stages it needs, in `--check` for all. Where BuildKit decides with a base
//! image's config (JSONArgsRecommended looks for an inherited `SHELL`),
//! kiln sees only the Dockerfile; that case is noted at the rule.
//!
//! | module | rules |
//! | --- | --- |
//! | `stages` | StageNameCasing, FromAsCasing, DuplicateStageName, ReservedStageName, RedundantTargetPlatform, FromPlatformFlagConstDisallowed, UndefinedArgInFrom, InvalidDefaultArgInFrom |
//! | `instructions` | ConsistentInstructionCasing, NoEmptyContinuation, JSONArgsRecommended, MaintainerDeprecated, WorkdirRelativePath, MultipleInstructionsDisallowed, LegacyKeyValueFormat, SecretsUsedInArgOrEnv, ExposeProtoCasing |
//! | `undefined` | UndefinedVar, found by the lowering (it needs each stage's environment, base image included) and merged with [`merge`] |
//!
//! Not implemented: InvalidBaseImagePlatform (a stored base image for
//! another platform is not used: the stage's platform is pulled, or the
//! build fails naming both), and the experimental CopyIgnoredFile and
//! InvalidDefinitionDescription.

mod config;
mod instructions;
mod report;
pub mod rules;
mod stages;
mod undefined;

pub use config::{CheckConfig, CheckConfigError};
pub use report::{check_report, expanded_list, short_list};
pub use rules::Rule;
pub use undefined::undefined_vars;

use crate::parser::Dockerfile;
use crate::solver::Platform;

/// One finding: a rule, its message and the lines it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The rule broken.
    pub rule: &'static Rule,
    /// BuildKit's message for it (its `Detail`).
    pub message: String,
    /// First line of the instruction (1-based).
    pub line: usize,
    /// Last line of the instruction.
    pub end_line: usize,
    /// The stage whose dispatch BuildKit checks this in (`None`: a check
    /// of the whole file). A build checks only the stages it needs,
    /// `--check` all of them (dockerfile2llb `ConvertOpt.AllStages`).
    pub stage: Option<usize>,
}

impl Warning {
    /// BuildKit's one-line form (`linter.LintFormatShort`):
    /// `Rule: message (line N)`.
    pub fn short(&self) -> String {
        format!("{}: {} (line {})", self.rule.name, self.message, self.line)
    }
}

/// `# check=error=true` and warnings were found (`Linter.Error`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("lint violation found for rules: {}", rules.join(", "))]
pub struct LintViolation {
    /// Each broken rule once, in order of first appearance (BuildKit's
    /// order is a Go map's, so unspecified).
    pub rules: Vec<String>,
}

/// Runs every enabled check on `df`; warnings come sorted by line, as
/// BuildKit's report sorts them (`LintResults.PrintTo`).
pub fn check(df: &Dockerfile, config: &CheckConfig, platform: &Platform) -> Vec<Warning> {
    let mut f = Findings {
        config,
        stage: None,
        out: Vec::new(),
    };
    stages::check(df, platform, &mut f);
    instructions::check(df, &mut f);
    f.out.sort_by_key(|w| w.line);
    f.out
}

/// All warnings of a build: the checks of the AST and those the lowering
/// found (`dispatch`, kept only when their rule is enabled), sorted by
/// line, identical ones once (buildx `dedupWarnings`). With `lowered`
/// (which stages the build needed), a stage's dispatch checks count only
/// if it was needed.
pub fn merge(
    config: &CheckConfig,
    ast: Vec<Warning>,
    dispatch: &[Warning],
    lowered: Option<&[bool]>,
) -> Vec<Warning> {
    let needed = |w: &Warning| match (w.stage, lowered) {
        (Some(i), Some(lowered)) => lowered.get(i).copied().unwrap_or(true),
        _ => true,
    };
    let mut all: Vec<Warning> = ast.into_iter().filter(|w| needed(w)).collect();
    for w in dispatch {
        if config.enabled(w.rule.name) && !all.contains(w) {
            all.push(w.clone());
        }
    }
    all.sort_by_key(|w| w.line);
    all
}

/// The error `# check=error=true` turns `warnings` into, if any.
pub fn violation(config: &CheckConfig, warnings: &[Warning]) -> Option<LintViolation> {
    if !config.error || warnings.is_empty() {
        return None;
    }
    let mut rules: Vec<String> = Vec::new();
    for w in warnings {
        if !rules.iter().any(|r| r == w.rule.name) {
            rules.push(w.rule.name.to_string());
        }
    }
    Some(LintViolation { rules })
}

/// Collects the warnings of enabled rules.
struct Findings<'c> {
    config: &'c CheckConfig,
    /// The stage being dispatched, for checks BuildKit makes there.
    stage: Option<usize>,
    out: Vec<Warning>,
}

impl Findings<'_> {
    fn add(&mut self, rule: &'static Rule, (line, end_line): (usize, usize), message: String) {
        if self.config.enabled(rule.name) {
            self.out.push(Warning {
                rule,
                message,
                line,
                end_line,
                stage: self.stage,
            });
        }
    }
}

/// An instruction's name as written and its arguments after the flags,
/// from its logical line (`FROM --platform=x img AS name` →
/// `("FROM", ["img", "AS", "name"])`).
fn header(original: &str) -> (&str, Vec<&str>) {
    let mut words = original.split_whitespace();
    let name = words.next().unwrap_or_default();
    let args = words.skip_while(|w| w.starts_with("--")).collect();
    (name, args)
}

#[cfg(test)]
mod tests;
