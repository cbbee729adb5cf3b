//! The external tools that define the formats kiln reads and writes
//! (skopeo, umoci, GNU tar), run as the checks' reference: any failure
//! of theirs fails the test with what the tool said.

use std::process::Command;

/// Runs `cmd args...` and returns its stdout, failing the test with the
/// command's stderr when it cannot start or exits non-zero.
#[track_caller]
pub fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {cmd} {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// [`run`] for tools that print JSON (`skopeo inspect`): the parsed
/// stdout.
#[track_caller]
pub fn run_json(cmd: &str, args: &[&str]) -> serde_json::Value {
    let out = run(cmd, args);
    serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("{cmd} {args:?} printed no JSON ({e}):\n{out}"))
}
