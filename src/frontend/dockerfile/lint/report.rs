//! How check results are shown: the list buildx prints after a build, and
//! the report of `--check` (buildx `build --call=check`).

use super::Warning;
use crate::frontend::dockerfile::source::excerpt;

/// What buildx prints after a build with warnings
/// (docker/buildx `commands/build.go`, `printWarnings`, without `--debug`):
/// a blank line, ` N warning(s) found (use --debug to expand):`, then
/// ` - Rule: message (line N)` per warning. Empty when there are none.
pub fn short_list(warnings: &[Warning]) -> String {
    if warnings.is_empty() {
        return String::new();
    }
    let count = match warnings.len() {
        1 => "1 warning found".to_string(),
        n => format!("{n} warnings found"),
    };
    let mut out = format!("\n {count} (use --debug to expand):\n");
    for w in warnings {
        out.push_str(&format!(" - {}\n", w.short()));
    }
    out
}

/// The same list expanded, as buildx prints it with `--debug`: after each
/// warning its rule's description, `More info: URL` and the Dockerfile
/// excerpt, then a blank line.
pub fn expanded_list(file: &str, dockerfile: &[u8], warnings: &[Warning]) -> String {
    if warnings.is_empty() {
        return String::new();
    }
    let mut out = match warnings.len() {
        1 => "\n 1 warning found:\n".to_string(),
        n => format!("\n {n} warnings found:\n"),
    };
    for w in warnings {
        out.push_str(&format!(
            " - {}\n{}\nMore info: {}\n",
            w.short(),
            w.rule.description,
            w.rule.url
        ));
        out.push_str(&excerpt(file, dockerfile, w.line, w.end_line).unwrap_or_default());
        out.push('\n');
    }
    out
}

/// The `--check` report (docker/buildx `printResult` for `lint`, moby/buildkit
/// `frontend/subrequests/lint/lint.go`, `Warning.PrintTo`):
/// `Check complete, N warnings have been found!`, then per warning a blank
/// line, `WARNING: Rule - URL`, the message and the Dockerfile excerpt; or
/// `Check complete, no warnings found.`
pub fn check_report(file: &str, dockerfile: &[u8], warnings: &[Warning]) -> String {
    let mut out = match warnings.len() {
        0 => return "Check complete, no warnings found.\n".into(),
        1 => String::from("Check complete, 1 warning has been found!\n"),
        n => format!("Check complete, {n} warnings have been found!\n"),
    };
    for w in warnings {
        out.push_str(&format!(
            "\nWARNING: {} - {}\n{}\n",
            w.rule.name, w.rule.url, w.message
        ));
        out.push_str(&excerpt(file, dockerfile, w.line, w.end_line).unwrap_or_default());
    }
    out
}
