//! `kiln build --explain`: why a step missed the cache.
//!
//! BuildKit users cannot tell (moby/buildkit#1251 "why was the cache
//! invalidated?", #2383 "debug cache misses"): a key is one digest. So
//! each build cache record keeps a small summary of what went into its key
//! ([`StepInputs`]: the op as defined, a base image's resolved digest, and
//! per input either the step it came from or the content digests of the
//! context paths it read), and a step that misses is compared with the
//! newest record of "the same step" (same [`lineage`]), naming the first
//! input that differs.

use serde::{Deserialize, Serialize};

use super::key::InputKey;
use super::op::Op;
use crate::image::Digest;

/// What went into a step's cache key, kept with its record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepInputs {
    /// The step's progress name (`[stage-1 2/3] RUN make`).
    pub name: String,
    /// The op as defined (its canonical fields, as JSON).
    pub op: serde_json::Value,
    /// A base image's resolved manifest digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<Digest>,
    /// Each input, in order.
    pub inputs: Vec<InputSummary>,
}

/// One input of a step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum InputSummary {
    /// The result of another step: its name and key.
    Step { name: String, key: Digest },
    /// Paths read from a local context and their content digests, and
    /// the files under each (a bounded list, by path).
    Content {
        paths: Vec<(String, Digest)>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        files: Vec<Vec<(String, Digest)>>,
    },
}

impl StepInputs {
    /// The summary of a step named `name` running `op` on `inputs`
    /// (`names` gives the input steps' names, in order).
    pub fn new(
        name: &str,
        op: &Op,
        image: Option<&Digest>,
        inputs: &[InputKey],
        names: &[String],
    ) -> StepInputs {
        let inputs = inputs
            .iter()
            .enumerate()
            .map(|(i, input)| match input {
                InputKey::Vertex(key) => InputSummary::Step {
                    name: names.get(i).cloned().unwrap_or_default(),
                    key: key.digest().clone(),
                },
                InputKey::Content(selected) => InputSummary::Content {
                    paths: selected
                        .iter()
                        .map(|s| (s.selector.path.clone(), s.digest.clone()))
                        .collect(),
                    files: Vec::new(),
                },
            })
            .collect();
        StepInputs {
            name: name.to_string(),
            op: serde_json::to_value(op).unwrap_or_default(),
            image: image.cloned(),
            inputs,
        }
    }
}

impl StepInputs {
    /// Adds the files each context input's selections read (`files[i]`:
    /// input `i`'s, one list per selection).
    pub fn with_files(mut self, files: Vec<Vec<Vec<(String, Digest)>>>) -> StepInputs {
        for (input, read) in self.inputs.iter_mut().zip(files) {
            if let InputSummary::Content { files, .. } = input {
                *files = read;
            }
        }
        self
    }
}

/// What makes two steps of different builds "the same step": the same
/// kind of op at the same position of the same stage (the progress name's
/// `[stage N` before the step count, which grows when instructions are
/// added), so a step whose command or inputs changed is still found.
pub fn lineage(name: &str, op: &Op) -> Digest {
    let position = match (name.strip_prefix('['), name.find('/')) {
        (Some(_), Some(slash)) => &name[..slash],
        _ => name,
    };
    let kind = match op {
        Op::Image(_) => "image",
        Op::Context(_) => "context",
        Op::Http(_) => "http",
        Op::Git(_) => "git",
        Op::Exec(_) => "exec",
        Op::File(_) => "file",
        Op::Merge(_) => "merge",
    };
    Digest::sha256_of(format!("kiln.step-lineage.v1\0{position}\0{kind}").as_bytes())
}

/// The first input of `new` that differs from `old`, in words: the base
/// image digest, then the op's definition (command, environment and build
/// args, other fields), then the inputs in order.
pub fn first_difference(old: &StepInputs, new: &StepInputs) -> String {
    if old.image != new.image {
        return format!(
            "base image digest changed: {} -> {}",
            show(&old.image),
            show(&new.image)
        );
    }
    if old.op != new.op {
        return op_difference(&old.op, &new.op);
    }
    for (i, input) in new.inputs.iter().enumerate() {
        match (old.inputs.get(i), input) {
            (Some(a), b) if a == b => continue,
            (
                Some(InputSummary::Content {
                    paths: before,
                    files: old_files,
                }),
                InputSummary::Content {
                    paths: after,
                    files: new_files,
                },
            ) => return content_difference(before, after, old_files, new_files),
            (_, InputSummary::Step { name, .. }) => {
                return format!("its input changed: {name}");
            }
            (_, InputSummary::Content { .. }) => {
                return "the context paths it reads changed".into();
            }
        }
    }
    if old.inputs.len() != new.inputs.len() {
        return "its inputs changed".into();
    }
    "its inputs are the same as the cached record's (the key format changed)".into()
}

fn show(d: &Option<Digest>) -> String {
    d.as_ref().map_or("none".into(), |d| d.to_string())
}

/// The first context path whose content differs; under a directory (or
/// a wildcard), the first file that changed, appeared or went.
fn content_difference(
    before: &[(String, Digest)],
    after: &[(String, Digest)],
    old_files: &[Vec<(String, Digest)>],
    new_files: &[Vec<(String, Digest)>],
) -> String {
    for (i, (path, digest)) in after.iter().enumerate() {
        match before.iter().position(|(p, _)| p == path) {
            Some(j) if &before[j].1 == digest => {}
            Some(j) => {
                let inner = match (old_files.get(j), new_files.get(i)) {
                    (Some(a), Some(b)) => file_difference(a, b),
                    _ => None,
                };
                return match inner {
                    Some(file) if &file != path => {
                        format!("file {file:?} changed in the context (under {path:?})")
                    }
                    _ => format!("file {path:?} changed in the context"),
                };
            }
            None => return format!("now reads {path:?} from the context"),
        }
    }
    for (path, _) in before {
        if !after.iter().any(|(p, _)| p == path) {
            return format!("no longer reads {path:?} from the context");
        }
    }
    "the context paths it reads changed".into()
}

/// The first file (by path) whose digest differs, or that is in one list
/// only.
fn file_difference(before: &[(String, Digest)], after: &[(String, Digest)]) -> Option<String> {
    let old: std::collections::BTreeMap<&str, &Digest> =
        before.iter().map(|(p, d)| (p.as_str(), d)).collect();
    let new: std::collections::BTreeMap<&str, &Digest> =
        after.iter().map(|(p, d)| (p.as_str(), d)).collect();
    let mut paths: Vec<&str> = old.keys().chain(new.keys()).copied().collect();
    paths.sort_unstable();
    paths.dedup();
    paths
        .into_iter()
        .find(|p| old.get(p) != new.get(p))
        .map(str::to_string)
}

/// The first field of the op's definition that differs; for a RUN's
/// environment, the variable (a build arg or an ENV).
fn op_difference(old: &serde_json::Value, new: &serde_json::Value) -> String {
    if let (Some(a), Some(b)) = (old.get("env"), new.get("env")) {
        if a != b {
            return env_difference(a, b);
        }
    }
    if let (Some(a), Some(b)) = (old.get("args"), new.get("args")) {
        if a != b {
            return format!("command changed: {} -> {}", joined(a), joined(b));
        }
    }
    match first_field(old, new, String::new()) {
        Some((path, a, b)) => format!("definition changed at {path}: {a} -> {b}"),
        None => "definition changed".into(),
    }
}

fn joined(args: &serde_json::Value) -> String {
    let words: Vec<&str> = args
        .as_array()
        .map(|a| a.iter().filter_map(|w| w.as_str()).collect())
        .unwrap_or_default();
    format!("{:?}", words.join(" "))
}

/// `env` is a list of `K=V`: the first variable added, removed or changed.
fn env_difference(old: &serde_json::Value, new: &serde_json::Value) -> String {
    let vars = |v: &serde_json::Value| -> Vec<(String, String)> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e.as_str())
                    .map(|e| {
                        let (k, v) = e.split_once('=').unwrap_or((e, ""));
                        (k.to_string(), v.to_string())
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let (a, b) = (vars(old), vars(new));
    for (k, v) in &b {
        match a.iter().find(|(ka, _)| ka == k) {
            Some((_, va)) if va == v => {}
            Some((_, va)) => return format!("build arg or env {k} changed: {va:?} -> {v:?}"),
            None => return format!("build arg or env {k} added: {v:?}"),
        }
    }
    for (k, _) in &a {
        if !b.iter().any(|(kb, _)| kb == k) {
            return format!("build arg or env {k} removed");
        }
    }
    "environment order changed".into()
}

/// The path of the first leaf that differs, with both values.
fn first_field(
    a: &serde_json::Value,
    b: &serde_json::Value,
    path: String,
) -> Option<(String, String, String)> {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            keys.into_iter().find_map(|k| {
                let (va, vb) = (
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                );
                (va != vb).then(|| first_field(va, vb, format!("{path}.{k}")))?
            })
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            x.iter().zip(y).enumerate().find_map(|(i, (va, vb))| {
                (va != vb).then(|| first_field(va, vb, format!("{path}[{i}]")))?
            })
        }
        _ if a != b => Some((
            path.trim_start_matches('.').to_string(),
            a.to_string(),
            b.to_string(),
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::solver::op::Exec;

    fn d(s: &str) -> Digest {
        Digest::sha256_of(s.as_bytes())
    }

    fn run(args: &[&str], env: &[&str], inputs: Vec<InputSummary>) -> StepInputs {
        StepInputs {
            name: "[2/3] RUN x".into(),
            op: serde_json::to_value(Op::Exec(Exec::on_rootfs(args, env))).unwrap(),
            image: None,
            inputs,
        }
    }

    #[test]
    fn names_the_first_input_that_differs() {
        let base = || InputSummary::Step {
            name: "[1/3] FROM busybox".into(),
            key: d("base"),
        };
        let a = run(&["sh", "-c", "make"], &["V=1"], vec![base()]);
        let b = run(&["sh", "-c", "make"], &["V=2"], vec![base()]);
        assert_eq!(
            first_difference(&a, &b),
            "build arg or env V changed: \"1\" -> \"2\""
        );
        let c = run(&["sh", "-c", "make all"], &["V=1"], vec![base()]);
        assert!(first_difference(&a, &c).starts_with("command changed"));
        let other = InputSummary::Step {
            name: "[1/3] FROM busybox".into(),
            key: d("other"),
        };
        let e = run(&["sh", "-c", "make"], &["V=1"], vec![other]);
        assert_eq!(
            first_difference(&a, &e),
            "its input changed: [1/3] FROM busybox"
        );
        let files = |x: &str| InputSummary::Content {
            paths: vec![("a.txt".into(), d("a")), ("b.txt".into(), d(x))],
            files: Vec::new(),
        };
        let f = run(&["true"], &[], vec![files("b")]);
        let g = run(&["true"], &[], vec![files("b2")]);
        assert_eq!(
            first_difference(&f, &g),
            "file \"b.txt\" changed in the context"
        );
        let mut h = f.clone();
        h.image = Some(d("img2"));
        let mut i = f.clone();
        i.image = Some(d("img1"));
        assert!(first_difference(&i, &h).starts_with("base image digest changed: sha256:"));
        // Under a directory: the file inside that changed.
        let dir = |x: &str| InputSummary::Content {
            paths: vec![(".".into(), d(x))],
            files: vec![vec![("src/a.rs".into(), d("a")), ("src/b.rs".into(), d(x))]],
        };
        let j = run(&["true"], &[], vec![dir("1")]);
        let k = run(&["true"], &[], vec![dir("2")]);
        assert_eq!(
            first_difference(&j, &k),
            "file \"src/b.rs\" changed in the context (under \".\")"
        );
    }

    #[test]
    fn lineage_ignores_the_step_count_and_the_command() {
        let op = Op::Exec(Exec::on_rootfs(&["a"], &[]));
        assert_eq!(
            lineage("[stage-1 2/3] RUN a", &op),
            lineage("[stage-1 2/4] RUN b", &op)
        );
        assert_ne!(
            lineage("[stage-1 2/3] RUN a", &op),
            lineage("[stage-1 3/3] RUN a", &op)
        );
    }
}
