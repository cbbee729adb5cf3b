//! BuildKit's shell-lexer test files (`envVarTest`, `wordsTest`), read in place
//! from ../shared/conformance/buildkit-shell and parsed exactly as BuildKit's
//! `lex_test.go` reads them. Every `A` and `U` row must pass; `W` rows are
//! Windows-only and skipped.

use kiln::shell::{EnvMap, Lexer};

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/conformance/buildkit-shell"
);

fn read_fixture(name: &str) -> String {
    let path = format!("{FIXTURES}/{name}");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read fixture {path}: {e}"))
}

/// envVarTest: `PLATFORM | input | expected` with every field trimmed; lines
/// starting with `#` and blank lines skipped.
#[test]
fn env_var_test() {
    let text = read_fixture("envVarTest");
    let env = EnvMap::from_assignments(["PWD=/home", "SHELL=bash", "KOREAN=한국어", "NULL="]);
    let lexer = Lexer::default();
    let mut failures = Vec::new();
    let mut ran = 0;
    for (index, line) in text.lines().enumerate() {
        let line_no = index + 1;
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.trim().split('|').collect();
        assert_eq!(
            fields.len(),
            3,
            "envVarTest:{line_no}: expected 3 fields in {line:?}"
        );
        let (platform, input, expected) = (fields[0].trim(), fields[1].trim(), fields[2].trim());
        match platform {
            "A" | "U" => {}
            "W" => continue,
            other => panic!("envVarTest:{line_no}: unknown platform {other:?}"),
        }
        ran += 1;
        let got = match lexer.process_word(input, &env) {
            Ok(expanded) => expanded.value,
            Err(_) => "error".to_string(),
        };
        if got != expected {
            failures.push(format!(
                "envVarTest:{line_no}: input {input:?}: expected {expected:?}, got {got:?}"
            ));
        }
    }
    assert!(ran > 200, "envVarTest ran only {ran} rows");
    assert!(
        failures.is_empty(),
        "{} of {ran} rows failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// wordsTest: `input | w1,w2,...`; the input is trimmed but the expected side
/// only loses its leading spaces (trailing ones are significant). `ENV k=v`
/// lines extend the environment for the rows after them, the value keeping
/// its trailing spaces.
#[test]
fn words_test() {
    let text = read_fixture("wordsTest");
    let mut assignments: Vec<String> = Vec::new();
    let lexer = Lexer::default();
    let mut failures = Vec::new();
    let mut ran = 0;
    for (index, line) in text.lines().enumerate() {
        let line_no = index + 1;
        if line.starts_with('#') {
            continue;
        }
        if let Some(assignment) = line.strip_prefix("ENV ") {
            assignments.push(assignment.trim_start_matches(' ').to_string());
            continue;
        }
        let fields: Vec<&str> = line.split('|').collect();
        assert_eq!(
            fields.len(),
            2,
            "wordsTest:{line_no}: expected exactly one | in {line:?}"
        );
        let input = fields[0].trim();
        let expected: Vec<&str> = fields[1].trim_start_matches(' ').split(',').collect();
        ran += 1;
        let env = EnvMap::from_assignments(&assignments);
        let got = match lexer.process_words(input, &env) {
            Ok(words) => words,
            Err(_) => vec!["error".to_string()],
        };
        if got != expected {
            failures.push(format!(
                "wordsTest:{line_no}: input {input:?}: expected {expected:?}, got {got:?}"
            ));
        }
    }
    assert!(ran > 20, "wordsTest ran only {ran} rows");
    assert!(
        failures.is_empty(),
        "{} of {ran} rows failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
