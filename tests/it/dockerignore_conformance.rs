//! moby/patternmatcher's test vectors (../shared/conformance/dockerignore/
//! matches.jsonl), read in place. Every vector runs, `unix_only` ones too:
//! `match` vectors check whether the path is excluded, `error` vectors that
//! the patterns are rejected. Each vector runs twice: with the patterns as
//! a list (patternmatcher's `New`) and as the lines of an ignore file.

use kiln::context::dockerignore::DockerIgnore;
use serde_json::Value;

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/conformance/dockerignore/matches.jsonl"
);

/// What one vector expects: Some(excluded) or None for "rejected".
fn expectation(vector: &Value) -> Option<bool> {
    if vector.get("error").and_then(Value::as_bool) == Some(true) {
        return None;
    }
    Some(
        vector["match"]
            .as_bool()
            .expect("vector has neither match nor error"),
    )
}

/// Runs one vector through `compile`; returns a failure description.
fn check(
    vector: &Value,
    how: &str,
    compile: impl Fn(&[&str]) -> Result<DockerIgnore, String>,
) -> Option<String> {
    let patterns: Vec<&str> = vector["patterns"]
        .as_array()
        .expect("patterns is an array")
        .iter()
        .map(|p| p.as_str().expect("pattern is a string"))
        .collect();
    let path = vector["path"].as_str().expect("path is a string");
    let got = match compile(&patterns) {
        Ok(ignore) => Ok(ignore.matches(path)),
        Err(e) => Err(e),
    };
    match (expectation(vector), got) {
        (Some(want), Ok(got)) if want == got => None,
        (None, Err(_)) => None,
        (want, got) => Some(format!(
            "{how}: {vector}\n    expected {want:?} (None = error), got {got:?}"
        )),
    }
}

#[test]
fn patternmatcher_vectors() {
    let text = std::fs::read_to_string(FIXTURE)
        .unwrap_or_else(|e| panic!("cannot read fixture {FIXTURE}: {e}"));
    let mut failures = Vec::new();
    let mut ran = 0;
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let vector: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("matches.jsonl:{}: bad JSON: {e}", index + 1));
        ran += 1;
        let as_list = check(&vector, "as list", |patterns| {
            DockerIgnore::new(patterns).map_err(|e| e.to_string())
        });
        let as_file = check(&vector, "as file", |patterns| {
            DockerIgnore::parse(&patterns.join("\n"), ".dockerignore").map_err(|e| e.to_string())
        });
        for failure in [as_list, as_file].into_iter().flatten() {
            failures.push(format!("matches.jsonl:{}: {failure}", index + 1));
        }
    }
    assert!(ran >= 137, "ran only {ran} vectors");
    assert!(
        failures.is_empty(),
        "{} failures in {ran} vectors:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
