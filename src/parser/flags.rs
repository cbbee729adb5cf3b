//! Instruction flags (`--from=x`, `--link`), checked like BuildKit's
//! `BFlags.Parse` (instructions/bflag.go): unknown names, repeats of
//! single-valued flags, missing values and non-boolean booleans are errors,
//! and a lone `--` ends the flags.

use super::error::ErrorKind;
use super::node::RawFlag;
use super::position::Position;

/// How a flag takes its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagKind {
    /// `--link`, `--link=true|false`.
    Bool,
    /// `--from=x`; at most once.
    String,
    /// `--mount=x`, repeatable.
    Strings,
}

/// The flags an instruction accepts and the values found.
pub struct Flags {
    spec: &'static [(&'static str, FlagKind)],
    bools: Vec<Option<bool>>,
    strings: Vec<Vec<String>>,
}

impl Flags {
    /// Parses `raw` against `spec`. Errors point at the offending flag.
    pub fn parse(
        spec: &'static [(&'static str, FlagKind)],
        raw: &[RawFlag],
    ) -> Result<Flags, (ErrorKind, Position)> {
        let mut flags = Flags {
            spec,
            bools: vec![None; spec.len()],
            strings: vec![Vec::new(); spec.len()],
        };
        let mut used = vec![false; spec.len()];
        for flag in raw {
            let at = |kind| (kind, flag.position);
            let text = flag.text.as_str();
            if text == "--" {
                break;
            }
            let (flag_name, value) = match text.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (text, None),
            };
            let name = flag_name.strip_prefix("--").unwrap_or(flag_name);
            let Some(idx) = spec.iter().position(|(n, _)| *n == name) else {
                let options = spec.iter().map(|(n, _)| *n);
                return Err(at(ErrorKind::UnknownFlag {
                    flag: flag_name.to_string(),
                    suggestion: suggest(name, options, true).map(|s| format!("--{s}")),
                }));
            };
            let kind = spec[idx].1;
            if used[idx] && kind != FlagKind::Strings {
                return Err(at(ErrorKind::DuplicateFlag(flag_name.to_string())));
            }
            used[idx] = true;
            match kind {
                FlagKind::Bool => {
                    let v = value.unwrap_or("");
                    if value.is_some() && v.is_empty() {
                        return Err(at(ErrorKind::MissingFlagValue(flag_name.to_string())));
                    }
                    flags.bools[idx] = Some(match v.to_lowercase().as_str() {
                        "" | "true" => true,
                        "false" => false,
                        _ => {
                            return Err(at(ErrorKind::NotABool {
                                flag: flag_name.to_string(),
                                value: v.to_string(),
                            }))
                        }
                    });
                }
                FlagKind::String | FlagKind::Strings => {
                    let Some(v) = value else {
                        return Err(at(ErrorKind::MissingFlagValue(flag_name.to_string())));
                    };
                    flags.strings[idx].push(v.to_string());
                }
            }
        }
        Ok(flags)
    }

    fn index(&self, name: &str) -> Option<usize> {
        self.spec.iter().position(|(n, _)| *n == name)
    }

    /// A boolean flag: `None` if not given.
    pub fn bool(&self, name: &str) -> Option<bool> {
        self.index(name).and_then(|i| self.bools[i])
    }

    /// A single-valued flag; an empty value reads as unset, as in BuildKit
    /// where the empty string is the default.
    pub fn string(&self, name: &str) -> Option<String> {
        self.index(name)
            .and_then(|i| self.strings[i].last().cloned())
            .filter(|s| !s.is_empty())
    }

    /// A single-valued flag exactly as given, empty value included.
    pub fn raw_string(&self, name: &str) -> Option<String> {
        self.index(name)
            .and_then(|i| self.strings[i].last().cloned())
    }

    /// Every value of a repeatable flag, in order.
    pub fn strings(&self, name: &str) -> Vec<String> {
        self.index(name)
            .map(|i| self.strings[i].clone())
            .unwrap_or_default()
    }
}

/// BuildKit's `suggest.WrapError`: the closest option within edit distance
/// 2, or `None` (also for an exact match, which means the error is about
/// something else). Case-insensitive matching keeps the user's casing style.
pub fn suggest<'a>(
    value: &str,
    options: impl Iterator<Item = &'a str>,
    case_sensitive: bool,
) -> Option<String> {
    let val = if case_sensitive {
        value.to_string()
    } else {
        value.to_lowercase()
    };
    let mut best: Option<String> = None;
    let mut min = 3;
    for opt in options {
        let opt = if case_sensitive {
            opt.to_string()
        } else {
            opt.to_lowercase()
        };
        if opt == val {
            return None;
        }
        let d = levenshtein(&val, &opt);
        if d < min {
            min = d;
            best = Some(if case_sensitive {
                opt
            } else if value == value.to_lowercase() {
                opt.to_lowercase()
            } else if value == value.to_uppercase() {
                opt.to_uppercase()
            } else {
                opt
            });
        }
    }
    best
}

/// Edit distance over characters, each insertion, deletion or
/// substitution costing 1 (agext/levenshtein with default parameters).
pub(crate) fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &[(&str, FlagKind)] = &[
        ("from", FlagKind::String),
        ("link", FlagKind::Bool),
        ("exclude", FlagKind::Strings),
    ];

    fn raw(texts: &[&str]) -> Vec<RawFlag> {
        texts
            .iter()
            .map(|t| RawFlag {
                text: t.to_string(),
                position: Position::default(),
            })
            .collect()
    }

    fn err(texts: &[&str]) -> String {
        match Flags::parse(SPEC, &raw(texts)) {
            Ok(_) => panic!("{texts:?} should fail"),
            Err((k, _)) => k.to_string(),
        }
    }

    #[test]
    fn values() {
        let f = Flags::parse(
            SPEC,
            &raw(&["--from=a", "--link=FALSE", "--exclude=x", "--exclude=y"]),
        )
        .unwrap();
        assert_eq!(f.string("from").as_deref(), Some("a"));
        assert_eq!(f.bool("link"), Some(false));
        assert_eq!(f.strings("exclude"), vec!["x", "y"]);
        let f = Flags::parse(SPEC, &raw(&["--link", "--from="])).unwrap();
        assert_eq!(f.bool("link"), Some(true));
        assert_eq!(f.string("from"), None);
    }

    #[test]
    fn errors_match_buildkit() {
        assert_eq!(
            err(&["--fromm=a"]),
            "unknown flag: --fromm (did you mean --from?)"
        );
        assert_eq!(err(&["--zzzzzz"]), "unknown flag: --zzzzzz");
        assert_eq!(
            err(&["--from=a", "--from=b"]),
            "duplicate flag specified: --from"
        );
        assert_eq!(err(&["--from"]), "missing a value on flag: --from");
        assert_eq!(err(&["--link="]), "missing a value on flag: --link");
        assert_eq!(
            err(&["--link=yes"]),
            "expecting boolean value for flag --link, not: yes"
        );
    }

    #[test]
    fn suggestions() {
        assert_eq!(
            suggest("RUm", ["RUN", "CMD"].into_iter(), false).as_deref(),
            Some("run")
        );
        assert_eq!(
            suggest("RNU", ["RUN", "CMD"].into_iter(), false).as_deref(),
            Some("RUN")
        );
        assert_eq!(suggest("xyzzy", ["RUN"].into_iter(), false), None);
    }
}
