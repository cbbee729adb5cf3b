//! Variable lookup for word expansion.
//!
//! The lexer only ever asks "is NAME set, and to what?", so the environment is
//! a one-method trait: the Dockerfile lowering can pass its own build-arg/ENV
//! scope without copying it, and tests can pass a plain map.

use std::collections::{BTreeMap, HashMap};

/// Where the lexer looks variables up.
///
/// Names are compared exactly (case-sensitive), as BuildKit does on Unix
/// (its `NormalizeEnvKey` only folds case on Windows). A variable that is set
/// to the empty string is *set*: `${NULL-x}` keeps the empty value while
/// `${NULL:-x}` gives `x`.
pub trait Env {
    /// The value of `name`, or `None` when it is unset.
    fn get(&self, name: &str) -> Option<&str>;
}

impl<T: Env + ?Sized> Env for &T {
    fn get(&self, name: &str) -> Option<&str> {
        (**self).get(name)
    }
}

impl Env for HashMap<String, String> {
    fn get(&self, name: &str) -> Option<&str> {
        HashMap::get(self, name).map(String::as_str)
    }
}

impl Env for BTreeMap<String, String> {
    fn get(&self, name: &str) -> Option<&str> {
        BTreeMap::get(self, name).map(String::as_str)
    }
}

/// An ordered environment: variables keep the order in which they were first
/// set, and setting a name again replaces its value in place.
///
/// The order matters to callers that turn the scope back into a process
/// environment (`KEY=VALUE` list in an image config), which Docker keeps in
/// definition order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvMap {
    vars: Vec<(String, String)>,
    index: HashMap<String, usize>,
}

impl EnvMap {
    /// An empty environment.
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds an environment from `KEY=VALUE` strings, as BuildKit's
    /// `BuildEnvs` does: the first `=` splits key from value, an entry with no
    /// `=` sets the key to the empty string, and a later entry wins.
    pub fn from_assignments<I, S>(assignments: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut env = Self::new();
        for assignment in assignments {
            let assignment = assignment.as_ref();
            let (key, value) = assignment.split_once('=').unwrap_or((assignment, ""));
            env.set(key, value);
        }
        env
    }

    /// Sets `key` to `value`, replacing an earlier value in place.
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<String>) {
        let key = key.into();
        let value = value.into();
        match self.index.get(&key) {
            Some(&slot) => self.vars[slot].1 = value,
            None => {
                self.index.insert(key.clone(), self.vars.len());
                self.vars.push((key, value));
            }
        }
    }

    /// The variables in definition order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.vars.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// How many variables are set.
    pub fn len(&self) -> usize {
        self.vars.len()
    }

    /// Whether no variable is set.
    pub fn is_empty(&self) -> bool {
        self.vars.is_empty()
    }
}

impl Env for EnvMap {
    fn get(&self, name: &str) -> Option<&str> {
        self.index.get(name).map(|&slot| self.vars[slot].1.as_str())
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for EnvMap {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut env = Self::new();
        for (k, v) in iter {
            env.set(k, v);
        }
        env
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignments_split_on_first_equals_and_later_wins() {
        let env = EnvMap::from_assignments(["foo=bar", "car=hat", "car=bike", "bare", "eq=a=b"]);
        assert_eq!(env.get("foo"), Some("bar"));
        assert_eq!(env.get("car"), Some("bike"));
        assert_eq!(env.get("bare"), Some(""));
        assert_eq!(env.get("eq"), Some("a=b"));
        assert_eq!(env.get("missing"), None);
        let order: Vec<_> = env.iter().map(|(k, _)| k).collect();
        assert_eq!(order, ["foo", "car", "bare", "eq"]);
    }

    #[test]
    fn lookup_is_case_sensitive() {
        let env: EnvMap = [("PWD", "/home")].into_iter().collect();
        assert_eq!(env.get("PWD"), Some("/home"));
        assert_eq!(env.get("pwd"), None);
    }
}
