//! "did you mean ...?" suggestions, by BuildKit's rule (moby/buildkit
//! `util/suggest/error.go`, `WrapErrorMaybe`): the closest option by
//! Levenshtein distance wins if that distance is below 3; an option equal
//! to the value means the error had another cause, so nothing is suggested.

/// The option to suggest for `value`, if any. Without `case_sensitive`
/// the comparison ignores case and the answer takes the value's case when
/// the value is all lower or all upper case (BuildKit's `matchCase`).
pub fn suggest(value: &str, options: &[String], case_sensitive: bool) -> Option<String> {
    let fold = |s: &str| {
        if case_sensitive {
            s.to_string()
        } else {
            s.to_lowercase()
        }
    };
    let val = fold(value);
    let mut best: Option<String> = None;
    let mut min = 3;
    for opt in options {
        let opt = fold(opt);
        if opt == val {
            return None;
        }
        let d = levenshtein(&val, &opt);
        if d < min {
            min = d;
            best = Some(if case_sensitive {
                opt
            } else {
                match_case(&opt, value)
            });
        }
    }
    best
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

fn match_case(val: &str, orig: &str) -> String {
    if orig == orig.to_lowercase() {
        val.to_lowercase()
    } else if orig == orig.to_uppercase() {
        val.to_uppercase()
    } else {
        val.to_string()
    }
}

/// Edit distance over characters, each insertion, deletion or
/// substitution costing 1 (agext/levenshtein with default parameters).
pub fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

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
