//! `# check=skip=A,B;error=true` (or the `BUILDKIT_DOCKERFILE_CHECK` build
//! argument): which checks run and whether a warning fails the build.
//! Parsed as moby/buildkit `frontend/dockerfile/linter/linter.go`,
//! `ParseLintOptions`, does, error texts included.

/// What `# check=` asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckConfig {
    /// `skip=all`: no check runs.
    pub skip_all: bool,
    /// `skip=A,B`: these rules do not run.
    pub skip: Vec<String>,
    /// `error=true`: any warning fails the build.
    pub error: bool,
    /// `experimental=...`: kiln implements no experimental rule, so this
    /// is accepted and kept only for completeness.
    pub experimental: Vec<String>,
}

/// A `# check=` value BuildKit would refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckConfigError {
    #[error("invalid check option {0:?}")]
    Invalid(String),
    #[error("failed to parse check option {part:?}: strconv.ParseBool: parsing {value:?}: invalid syntax")]
    Bool { part: String, value: String },
}

impl CheckConfig {
    /// Parses a `check` directive value.
    pub fn parse(value: &str) -> Result<CheckConfig, CheckConfigError> {
        let value = value.trim();
        let mut config = CheckConfig::default();
        if value.is_empty() {
            return Ok(config);
        }
        // Go's strings.SplitN(s, ";", 3): the third part keeps any further `;`.
        for part in value.splitn(3, ';') {
            let Some((key, v)) = part.split_once('=') else {
                return Err(CheckConfigError::Invalid(part.to_string()));
            };
            match key.trim() {
                "skip" => match v.trim() {
                    "all" => config.skip_all = true,
                    list => config.skip = list.split(',').map(|r| r.trim().to_string()).collect(),
                },
                "experimental" => {
                    config.experimental = v.split(',').map(|r| r.trim().to_string()).collect()
                }
                "error" => {
                    config.error =
                        parse_go_bool(v.trim()).ok_or_else(|| CheckConfigError::Bool {
                            part: part.to_string(),
                            value: v.trim().to_string(),
                        })?
                }
                other => return Err(CheckConfigError::Invalid(other.to_string())),
            }
        }
        Ok(config)
    }

    /// Whether `rule` runs under this configuration.
    pub fn enabled(&self, rule: &str) -> bool {
        !self.skip_all && !self.skip.iter().any(|r| r == rule)
    }
}

/// Go's `strconv.ParseBool`.
fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_parse_like_buildkit() {
        let c = CheckConfig::parse(" skip = StageNameCasing, FromAsCasing ;error=true").unwrap();
        assert_eq!(c.skip, ["StageNameCasing", "FromAsCasing"]);
        assert!(c.error && !c.skip_all);
        assert!(!c.enabled("FromAsCasing") && c.enabled("UndefinedVar"));
        let all = CheckConfig::parse("skip=all").unwrap();
        assert!(all.skip_all && !all.enabled("StageNameCasing"));
        assert_eq!(CheckConfig::parse("").unwrap(), CheckConfig::default());
        assert!(CheckConfig::parse("error=T").unwrap().error);
    }

    #[test]
    fn bad_options_fail_with_buildkits_text() {
        assert_eq!(
            CheckConfig::parse("skip").unwrap_err().to_string(),
            "invalid check option \"skip\""
        );
        assert_eq!(
            CheckConfig::parse("foo=bar").unwrap_err().to_string(),
            "invalid check option \"foo\""
        );
        assert_eq!(
            CheckConfig::parse("error=yes").unwrap_err().to_string(),
            "failed to parse check option \"error=yes\": strconv.ParseBool: parsing \"yes\": invalid syntax"
        );
    }
}
