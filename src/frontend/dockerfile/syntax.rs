//! `# syntax=`: which frontend builds the file.
//!
//! In BuildKit the directive names a frontend image that the built-in
//! Dockerfile frontend hands the whole build to (moby/buildkit
//! `frontend/dockerfile/builder/build.go` forwards when `# syntax=` is set;
//! `frontend/dockerfile/parser/directives.go`, `DetectSyntax`). kiln runs
//! no frontend images: it *is* the Dockerfile frontend. So
//! `docker/dockerfile[-upstream]:<any tag>` (what nearly every Dockerfile
//! names) is built by kiln itself, and any other image is refused with
//! the line named, because building a file meant for another frontend
//! with kiln's would silently give a different result.

use crate::image::reference::ImageRef;
use crate::parser::Dockerfile;

/// The repositories of the official Dockerfile frontend images.
const DOCKERFILE_FRONTENDS: [&str; 2] = ["docker/dockerfile", "docker/dockerfile-upstream"];

/// A `# syntax=` naming a frontend kiln cannot be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: # syntax={value}: kiln builds with its own Dockerfile frontend and cannot run other frontends (remove the directive or name docker/dockerfile)")]
pub struct ForeignFrontend {
    /// The Dockerfile's name.
    pub file: String,
    /// The directive's line.
    pub line: usize,
    /// The directive's value.
    pub value: String,
}

/// Checks the `# syntax=` directive of `df`, if any.
pub fn check_syntax(df: &Dockerfile, file: &str) -> Result<(), ForeignFrontend> {
    let Some(d) = df.directives.iter().find(|d| d.name == "syntax") else {
        return Ok(());
    };
    // BuildKit takes the first word only (`# syntax=img arg=...`).
    let image = d.value.split_whitespace().next().unwrap_or_default();
    let ours = ImageRef::parse(image).is_ok_and(|r| {
        r.registry() == "docker.io" && DOCKERFILE_FRONTENDS.contains(&r.repository())
    });
    if ours {
        tracing::debug!(syntax = %d.value, "built with kiln's own Dockerfile frontend");
        return Ok(());
    }
    Err(ForeignFrontend {
        file: file.to_string(),
        line: d.line,
        value: d.value.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(src: &str) -> Result<(), String> {
        let df = crate::parser::parse("Dockerfile", src.as_bytes()).expect("parses");
        check_syntax(&df, "Dockerfile").map_err(|e| e.to_string())
    }

    #[test]
    fn dockerfile_frontends_are_kilns_own() {
        for ok in [
            "FROM scratch\n",
            "# syntax=docker/dockerfile:1\nFROM scratch\n",
            "# syntax=docker/dockerfile:1.7-labs\nFROM scratch\n",
            "# syntax=docker.io/docker/dockerfile-upstream:master\nFROM scratch\n",
            "#syntax=docker/dockerfile@sha256:ac85f380a63b13dfcefa89046420e1781752bab202122f8f50032edf31be0021\nFROM scratch\n",
        ] {
            assert_eq!(check(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn foreign_frontend_is_refused_with_its_line() {
        assert_eq!(
            check("# escape=`\n# syntax=example.com/other-frontend:1\nFROM scratch\n"),
            Err("Dockerfile:2: # syntax=example.com/other-frontend:1: kiln builds with its own Dockerfile frontend and cannot run other frontends (remove the directive or name docker/dockerfile)".into())
        );
        assert!(check("# syntax=tonistiigi/dockerfile:runmount\nFROM scratch\n").is_err());
    }
}
