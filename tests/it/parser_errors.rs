//! Malformed Dockerfiles through the real binary: each must fail with
//! `Dockerfile:LINE:COL: message`, quote the offending line, exit with 1,
//! and never panic.

use std::process::{Command, Output};

/// Runs `kiln debug parse --format FORMAT Dockerfile` on `source`, from a
/// fresh directory so that the file is called just `Dockerfile`.
fn run(source: &[u8], format: &str) -> Output {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("Dockerfile"), source).expect("write Dockerfile");
    Command::new(env!("CARGO_BIN_EXE_kiln"))
        .current_dir(dir.path())
        .args(["debug", "parse", "--format", format, "Dockerfile"])
        .output()
        .expect("run kiln")
}

/// Asserts that `source` is rejected at `line:col` with a message containing
/// `message`, and that the error quotes line `line` of the source.
fn check(source: &str, line: usize, col: usize, message: &str) {
    check_format(source, "json", line, col, message);
}

fn check_format(source: &str, format: &str, line: usize, col: usize, message: &str) {
    let out = run(source.as_bytes(), format);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "exit code for {source:?}; stderr:\n{stderr}"
    );
    assert!(out.stdout.is_empty(), "no output expected for {source:?}");
    assert!(
        !stderr.contains("panicked"),
        "panic for {source:?}:\n{stderr}"
    );
    let prefix = format!("Dockerfile:{line}:{col}: ");
    let first = stderr.lines().next().unwrap_or_default();
    assert!(
        first.starts_with(&prefix),
        "expected {prefix:?} for {source:?}, got:\n{stderr}"
    );
    assert!(
        first.contains(message),
        "expected {message:?} for {source:?}, got:\n{stderr}"
    );
    if let Some(text) = source.lines().nth(line - 1) {
        let quoted = format!("{line} | {}", text.trim_end_matches('\r'));
        assert!(
            stderr.contains(&quoted),
            "expected the line quoted ({quoted:?}), got:\n{stderr}"
        );
    }
}

#[test]
fn unterminated_heredoc() {
    check(
        "FROM alpine\nRUN <<EOF\necho hi\n",
        2,
        1,
        "unterminated heredoc",
    );
    check(
        "FROM alpine\nCOPY <<A <<B /dst\na\nA\nb\n",
        2,
        1,
        "unterminated heredoc (no line \"B\"",
    );
}

#[test]
fn json_required_or_malformed() {
    check(
        "FROM alpine\nSHELL /bin/sh -c\n",
        2,
        7,
        "SHELL requires the arguments to be in JSON form",
    );
    check(
        "FROM alpine\nSHELL []\n",
        2,
        1,
        "SHELL requires at least one argument",
    );
    check(
        "FROM alpine\nCMD [ \"echo\", [ \"nested json\" ] ]\n",
        2,
        5,
        "arrays must be comprised of strings only",
    );
    check(
        "FROM alpine\nRUN [\"a\", 1]\n",
        2,
        5,
        "arrays must be comprised of strings only",
    );
}

#[test]
fn flags() {
    check(
        "FROM alpine\nCOPY --fomr=build a b\n",
        2,
        6,
        "unknown flag: --fomr (did you mean --from?)",
    );
    check("FROM alpine\nRUN --foo echo\n", 2, 5, "unknown flag: --foo");
    check(
        "FROM alpine\nCOPY --chmod 0755 a b\n",
        2,
        6,
        "missing a value on flag: --chmod",
    );
    check(
        "FROM alpine\nCOPY --link=maybe a b\n",
        2,
        6,
        "expecting boolean value for flag --link, not: maybe",
    );
    check(
        "FROM alpine\nCOPY --from=a --from=b a b\n",
        2,
        15,
        "duplicate flag specified: --from",
    );
    check(
        "FROM alpine\nRUN --network=bridge true\n",
        2,
        5,
        "invalid network mode \"bridge\"",
    );
    check(
        "FROM alpine\nRUN --security=root true\n",
        2,
        5,
        "security \"root\" is not valid",
    );
    check("FROM --plat=x alpine\n", 1, 6, "unknown flag: --plat");
    check("FROM alpine\nENV --x=1 a=b\n", 2, 5, "unknown flag: --x");
    check(
        "FROM alpine\nHEALTHCHECK --interval=5 CMD true\n",
        2,
        1,
        "missing unit in duration",
    );
}

#[test]
fn flag_position_follows_continuations() {
    check(
        "FROM alpine\nCOPY --link \\\n   --bogus=1 a b\n",
        3,
        4,
        "unknown flag: --bogus",
    );
}

#[test]
fn directives() {
    check_format(
        "# escape=`\n# escape=\\\nFROM alpine\n",
        "buildkit",
        2,
        1,
        "only one escape parser directive can be used",
    );
    check_format(
        "# syntax=a\n#syntax=b\nFROM alpine\n",
        "buildkit",
        2,
        1,
        "only one syntax parser directive",
    );
    check_format(
        "# escape = ``\nFROM alpine\n",
        "buildkit",
        1,
        1,
        "invalid escape token '``'",
    );
}

/// BuildKit treats a directive after the directive block as a comment, so
/// this is not an error: the escape character stays `\`.
#[test]
fn directive_after_an_instruction_is_a_comment() {
    let out = run(b"FROM alpine\n# escape=`\nRUN a \\\n  b\n", "buildkit");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "(from \"alpine\")\n(run \"a   b\")\n"
    );
}

#[test]
fn empty_and_comment_only_files() {
    check_format("", "buildkit", 1, 1, "file with no instructions");
    check_format(
        "# just a comment\n\n",
        "buildkit",
        1,
        1,
        "file with no instructions",
    );
    check("\u{feff}\n   \n", 1, 1, "file with no instructions");
}

#[test]
fn env_and_label_values() {
    check(
        "FROM alpine\nENV PATH\n",
        2,
        5,
        "ENV must have two arguments",
    );
    check(
        "FROM alpine\nLABEL foo\n",
        2,
        7,
        "LABEL must have two arguments",
    );
    check("FROM alpine\nENV a=1 b\n", 2, 5, "can't find = in \"b\"");
    check("FROM alpine\nENV =x\n", 2, 1, "ENV names can not be blank");
    check("FROM alpine\nARG =x\n", 2, 1, "ARG names can not be blank");
}

#[test]
fn instructions() {
    check("FROM alpine\nFOO bar\n", 2, 1, "unknown instruction: FOO");
    check(
        "FROM alpine\nRUNN true\n",
        2,
        1,
        "unknown instruction: RUNN (did you mean RUN?)",
    );
    check("RUN true\n", 1, 1, "no build stage in current context");
    check(
        "FROM\n",
        1,
        1,
        "FROM requires either one or three arguments",
    );
    check(
        "FROM a AS b c\n",
        1,
        1,
        "FROM requires either one or three arguments",
    );
    check(
        "FROM a AS 1bad\n",
        1,
        6,
        "invalid name for build stage: \"1bad\"",
    );
    check(
        "FROM a\nCOPY onlyone\n",
        2,
        1,
        "COPY requires at least two arguments",
    );
    check(
        "FROM a\nCOPY a <<EOF\nx\nEOF\n",
        2,
        1,
        "COPY cannot accept a heredoc as a destination",
    );
    check(
        "FROM a\nWORKDIR\n",
        2,
        1,
        "WORKDIR requires exactly one argument",
    );
    check(
        "FROM a\nEXPOSE\n",
        2,
        1,
        "EXPOSE requires at least one argument",
    );
    check(
        "FROM a\nVOLUME [\"\"]\n",
        2,
        8,
        "VOLUME specified can not be an empty string",
    );
    check(
        "FROM a\nHEALTHCHECK CMD\n",
        2,
        1,
        "missing command after HEALTHCHECK CMD",
    );
    check(
        "FROM a\nHEALTHCHECK NONE x\n",
        2,
        1,
        "HEALTHCHECK NONE takes no arguments",
    );
}

#[test]
fn onbuild_nesting() {
    check(
        "FROM a\nONBUILD ONBUILD RUN x\n",
        2,
        9,
        "chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed",
    );
    check(
        "FROM a\nONBUILD FROM b\n",
        2,
        9,
        "FROM isn't allowed as an ONBUILD trigger",
    );
    check(
        "FROM a\nONBUILD MAINTAINER me\n",
        2,
        9,
        "MAINTAINER isn't allowed as an ONBUILD trigger",
    );
    check(
        "FROM a\nONBUILD\n",
        2,
        1,
        "ONBUILD requires at least one argument",
    );
}

#[test]
fn line_too_long() {
    let mut src = String::from("FROM a\nRUN ");
    src.push_str(&"x".repeat(70_000));
    src.push('\n');
    let out = run(src.as_bytes(), "buildkit");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr
            .starts_with("Dockerfile:2:1: dockerfile line greater than max allowed size of 65535"),
        "{stderr}"
    );
}

#[test]
fn invalid_utf8_and_binary_garbage_do_not_panic() {
    let out = run(
        b"FROM a\nRUN \xff\xfe\x00\x01 [\n\x80COPY --x=\xc3 a b\n",
        "json",
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
    assert!(matches!(out.status.code(), Some(0 | 1)));
}

#[test]
fn stdin_is_accepted() {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(["debug", "parse", "--format", "buildkit", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn kiln");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"FROM alpine\nRUN echo hi\n")
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "(from \"alpine\")\n(run \"echo hi\")\n"
    );
}
