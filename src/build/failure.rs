//! How a failed step reads, as buildx shows BuildKit's error: the
//! Dockerfile excerpt around the instruction (moby/buildkit
//! `solver/errdefs/source.go`, `Source.Print`, fed by the source map the
//! Dockerfile frontend attaches to each vertex) and, for a `RUN`, the
//! executor's error: `process "/bin/sh -c exit 3" did not complete
//! successfully: exit code: 3` (moby/buildkit
//! `solver/llbsolver/ops/exec.go`, `Exec`, wrapping the executor's
//! `ExitError`, whose text is `exit code: N`).

use crate::frontend::dockerfile::source::excerpt;
use crate::parser::{go_quote, Dockerfile};
use crate::solver::ExecError;

/// BuildKit's message for a RUN whose process `args` failed with `error`;
/// `None` for failures other than an exit status or a signal.
pub(super) fn run_message(args: &[String], error: &ExecError) -> Option<String> {
    let code = match error {
        ExecError::ExitCode(code) => *code,
        // runc reports a process killed by a signal as 128 + the signal.
        ExecError::Signal(sig) => 128 + sig,
        _ => return None,
    };
    Some(format!(
        "process {} did not complete successfully: exit code: {code}",
        go_quote(args.join(" ").as_bytes())
    ))
}

/// The excerpt of the instruction at `location` (`Dockerfile:12`), the
/// whole instruction marked (continuation lines and heredocs included).
pub(super) fn location_excerpt(df: &Dockerfile, source: &[u8], location: &str) -> Option<String> {
    let (file, line) = location.rsplit_once(':')?;
    let line: usize = line.parse().ok()?;
    let end = df
        .stages
        .iter()
        .flat_map(|st| std::iter::once(&st.span).chain(st.instructions.iter().map(|i| &i.span)))
        .find(|s| s.line == line)
        .map_or(line, |s| s.end_line);
    excerpt(file, source, line, end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_messages_read_like_buildkit() {
        let args = vec![
            "/bin/sh".to_string(),
            "-c".into(),
            "echo \"hi\"; exit 3".into(),
        ];
        assert_eq!(
            run_message(&args, &ExecError::ExitCode(3)).as_deref(),
            Some(
                r#"process "/bin/sh -c echo \"hi\"; exit 3" did not complete successfully: exit code: 3"#
            )
        );
        assert_eq!(
            run_message(&args[..2], &ExecError::Signal(9)).as_deref(),
            Some(r#"process "/bin/sh -c" did not complete successfully: exit code: 137"#)
        );
    }

    #[test]
    fn excerpt_marks_every_line_of_the_instruction() {
        let src = b"FROM busybox\nRUN a \\\n  && b\nCMD x\n";
        let df = crate::parser::parse("Dockerfile", src).expect("parses");
        assert_eq!(
            location_excerpt(&df, src, "Dockerfile:2").unwrap(),
            "Dockerfile:2\n--------------------\n   1 |     FROM busybox\n   2 | >>> RUN a \\\n   3 | >>>   && b\n   4 |     CMD x\n--------------------\n"
        );
        assert_eq!(location_excerpt(&df, src, "nowhere"), None);
    }
}
