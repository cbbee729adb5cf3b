//! "did you mean ...?" suggestions, by BuildKit's rule (moby/buildkit
//! `util/suggest/error.go`, `WrapErrorMaybe`): the closest option by
//! Levenshtein distance wins if that distance is below 3; an option equal
//! to the value means the error had another cause, so nothing is suggested.

/// The option to suggest for `value`, if any: the parser's rule for flag
/// names ([`crate::parser::suggest`]), over stage and variable names.
pub fn suggest(value: &str, options: &[String], case_sensitive: bool) -> Option<String> {
    crate::parser::suggest(value, options.iter().map(String::as_str), case_sensitive)
}

/// `message` with BuildKit's suggestion suffix when one applies.
pub fn with_suggestion(
    message: String,
    value: &str,
    options: &[String],
    case_sensitive: bool,
) -> String {
    match suggest(value, options, case_sensitive) {
        Some(m) => format!("{message} (did you mean {m}?)"),
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::levenshtein;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn distances() {
        assert_eq!(levenshtein("buidler", "builder"), 2);
        assert_eq!(levenshtein("", "abc"), 3);
        assert_eq!(levenshtein("kitten", "sitting"), 3);
    }

    #[test]
    fn suggests_below_distance_three_and_never_for_an_exact_match() {
        let opts = names(&["builder", "test"]);
        assert_eq!(suggest("buidler", &opts, true).as_deref(), Some("builder"));
        assert_eq!(suggest("bldr", &opts, true), None);
        assert_eq!(suggest("builder", &opts, true), None);
        assert_eq!(suggest("BUIDLER", &opts, true), None);
        assert_eq!(suggest("BUIDLER", &opts, false).as_deref(), Some("BUILDER"));
        assert_eq!(
            with_suggestion("x".into(), "tst", &opts, true),
            "x (did you mean test?)"
        );
    }
}
