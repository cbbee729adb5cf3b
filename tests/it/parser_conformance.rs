//! Conformance with BuildKit's parser: every fixture in
//! `../shared/conformance/` (BuildKit's own parser test files and 45
//! real-world Dockerfiles) must give BuildKit's AST dump byte for byte, or
//! fail where BuildKit fails. Checked through the library and through the
//! `kiln debug parse --format buildkit` binary. `testdata/parser/` adds
//! kiln's own cases for what the fixtures do not cover (heredoc variants,
//! CRLF + BOM + backtick escape, directive block, flags, byte quoting);
//! their `result` files were derived by hand from BuildKit's rules.

use std::path::{Path, PathBuf};
use std::process::Command;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/conformance");

/// One fixture: a Dockerfile and what BuildKit made of it.
struct Case {
    name: String,
    dockerfile: PathBuf,
    /// `None` when BuildKit rejects the file.
    expected: Option<String>,
}

/// The cases under `dir`; `negative` cases have no `result` and must fail.
/// A missing directory fails the test: fixtures are required.
fn cases(dir: &str, negative: bool) -> Vec<Case> {
    cases_in(FIXTURES, dir, negative)
}

fn cases_in(base: &str, dir: &str, negative: bool) -> Vec<Case> {
    let root = Path::new(base).join(dir);
    let entries = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("fixture dir {} missing: {e}", root.display()));
    let mut out: Vec<Case> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| {
            let path = e.path();
            let expected = if negative {
                None
            } else {
                let result = std::fs::read_to_string(path.join("result"))
                    .unwrap_or_else(|err| panic!("{}: no result file: {err}", path.display()));
                (result.trim_end() != "error").then_some(result)
            };
            Case {
                name: format!("{dir}/{}", e.file_name().to_string_lossy()),
                dockerfile: path.join("Dockerfile"),
                expected,
            }
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

fn all_cases() -> Vec<Case> {
    let parser = cases("buildkit-parser/testfiles", false);
    let negative = cases("buildkit-parser/testfiles-negative", true);
    let real = cases("real-world", false);
    assert_eq!(parser.len(), 33, "BuildKit parser cases");
    assert_eq!(negative.len(), 4, "BuildKit negative cases");
    assert_eq!(real.len(), 45, "real-world cases");
    let own = cases_in(
        concat!(env!("CARGO_MANIFEST_DIR"), "/testdata"),
        "parser",
        false,
    );
    assert!(own.len() >= 7, "kiln testdata cases");
    parser
        .into_iter()
        .chain(negative)
        .chain(real)
        .chain(own)
        .collect()
}

/// A readable line diff: every differing line, expected then actual.
fn diff(expected: &str, actual: &str) -> String {
    let (e, a): (Vec<_>, Vec<_>) = (expected.lines().collect(), actual.lines().collect());
    let mut out = String::new();
    for i in 0..e.len().max(a.len()) {
        let (x, y) = (e.get(i), a.get(i));
        if x != y {
            out.push_str(&format!(
                "  line {}:\n    - {}\n    + {}\n",
                i + 1,
                x.unwrap_or(&"<none>"),
                y.unwrap_or(&"<none>")
            ));
        }
    }
    if out.is_empty() && expected != actual {
        out.push_str("  (differs only in trailing newlines)\n");
    }
    out
}

/// Compares one outcome with the fixture; returns a failure report.
fn check(case: &Case, outcome: Result<String, String>) -> Option<String> {
    match (&case.expected, outcome) {
        (Some(expected), Ok(actual)) if *expected == actual => None,
        (Some(expected), Ok(actual)) => Some(format!(
            "{}: dump differs\n{}",
            case.name,
            diff(expected, &actual)
        )),
        (Some(_), Err(e)) => Some(format!(
            "{}: rejected, BuildKit accepts it:\n{e}",
            case.name
        )),
        (None, Err(_)) => None,
        (None, Ok(actual)) => Some(format!(
            "{}: accepted, BuildKit rejects it; dump:\n{actual}",
            case.name
        )),
    }
}

fn report(failures: Vec<String>) {
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn library_matches_buildkit_dump() {
    let failures: Vec<String> = all_cases()
        .iter()
        .filter_map(|case| {
            let src = std::fs::read(&case.dockerfile).expect("read Dockerfile");
            let outcome = kiln::parser::parse_raw("Dockerfile", &src)
                .map(|raw| raw.dump() + "\n")
                .map_err(|e| e.to_string());
            check(case, outcome)
        })
        .collect();
    report(failures);
}

#[test]
fn binary_matches_buildkit_dump() {
    let failures: Vec<String> = all_cases()
        .iter()
        .filter_map(|case| {
            let out = Command::new(env!("CARGO_BIN_EXE_kiln"))
                .args(["debug", "parse", "--format", "buildkit"])
                .arg(&case.dockerfile)
                .output()
                .expect("run kiln");
            let outcome = match out.status.code() {
                Some(0) => Ok(String::from_utf8_lossy(&out.stdout).into_owned()),
                Some(1) if out.stdout.is_empty() => {
                    Err(String::from_utf8_lossy(&out.stderr).into_owned())
                }
                other => Err(format!(
                    "unexpected exit {other:?}, stderr: {}",
                    String::from_utf8_lossy(&out.stderr)
                )),
            };
            check(case, outcome)
        })
        .collect();
    report(failures);
}

/// Real-world files BuildKit's parser accepts also pass kiln's typed layer
/// (they are buildable Dockerfiles) and encode as JSON; files it rejects are
/// rejected there too.
#[test]
fn typed_layer_agrees_on_fixtures() {
    let failures: Vec<String> = all_cases()
        .iter()
        // BuildKit's parser-only cases use made-up instructions, as does
        // kiln's `unknown-and-case`; the rest are meant to build.
        .filter(|c| {
            !c.name.starts_with("buildkit-parser/testfiles/") && !c.name.contains("unknown")
        })
        .filter_map(|case| {
            let src = std::fs::read(&case.dockerfile).expect("read Dockerfile");
            match (kiln::parser::parse("Dockerfile", &src), &case.expected) {
                (Ok(df), Some(_)) => serde_json::to_string(&df)
                    .err()
                    .map(|e| format!("{}: typed AST does not encode as JSON: {e}", case.name)),
                (Err(_), None) => None,
                (Err(e), Some(_)) => Some(format!("{}: typed layer rejects it:\n{e}", case.name)),
                (Ok(_), None) => Some(format!(
                    "{}: typed layer accepts it, BuildKit rejects it",
                    case.name
                )),
            }
        })
        .collect();
    report(failures);
}
