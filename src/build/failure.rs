//! How a failed step reads, as buildx shows BuildKit's error: the
//! Dockerfile excerpt around the instruction (moby/buildkit
//! `solver/errdefs/source.go`, `Source.Print`, fed by the source map the
//! Dockerfile frontend attaches to each vertex); a RUN's own error is
//! [`crate::solver::ExecError::process_message`].

use super::BuildError;
use crate::frontend::dockerfile::source::excerpt;
use crate::frontend::dockerfile::LowerError;
use crate::parser::Dockerfile;

/// `err` with the excerpt of its instruction in front, when it is a
/// lowering error at an instruction.
pub(super) fn with_excerpt(err: BuildError, df: &Dockerfile, source: &[u8]) -> BuildError {
    let BuildError::Lower(error) = err else {
        return err;
    };
    let excerpt = match &error {
        LowerError::Instruction { file, line, .. } => {
            location_excerpt(df, source, &format!("{file}:{line}"))
        }
        _ => None,
    };
    match excerpt {
        Some(excerpt) => BuildError::LowerAt { excerpt, error },
        None => BuildError::Lower(error),
    }
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
