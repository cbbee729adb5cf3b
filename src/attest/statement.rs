//! in-toto statements: a predicate (provenance, SBOM) about subjects named
//! by digest (github.com/in-toto/attestation `spec/v1/statement.md`).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::image::Digest;

/// The statement type BuildKit writes (moby/buildkit
/// `exporter/attestation/make.go`, `makeInTotoStatement`:
/// `intoto.StatementInTotoV1`).
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// The SPDX predicate type (in-toto-golang `PredicateSPDX`).
pub const PREDICATE_SPDX: &str = "https://spdx.dev/Document";
/// SLSA provenance v0.2.
pub const PREDICATE_SLSA02: &str = "https://slsa.dev/provenance/v0.2";
/// SLSA provenance v1.
pub const PREDICATE_SLSA1: &str = "https://slsa.dev/provenance/v1";

/// One statement, serialized in the order Go's `intoto.Statement` has.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Statement {
    #[serde(rename = "_type")]
    pub kind: String,
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    pub subject: Vec<Subject>,
    pub predicate: serde_json::Value,
}

/// What a statement is about: a name and its digests (`{"sha256": hex}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    pub name: String,
    pub digest: BTreeMap<String, String>,
}

impl Subject {
    /// A subject named `name` with `digest`.
    pub fn new(name: &str, digest: &Digest) -> Subject {
        let text = digest.to_string();
        let algorithm = text.split_once(':').map_or("sha256", |(a, _)| a);
        let mut d = BTreeMap::new();
        d.insert(algorithm.to_string(), digest.hex().to_string());
        Subject {
            name: name.to_string(),
            digest: d,
        }
    }
}

impl Statement {
    /// A statement of `predicate` (of `predicate_type`) about `subject`.
    pub fn new(predicate_type: &str, subject: Vec<Subject>, predicate: serde_json::Value) -> Self {
        Statement {
            kind: STATEMENT_TYPE.to_string(),
            predicate_type: predicate_type.to_string(),
            subject,
            predicate,
        }
    }
}

/// A predicate not yet bound to subjects: what a build made once, then
/// stated about each manifest (or file set) it is attached to.
#[derive(Debug, Clone, PartialEq)]
pub struct Predicate {
    pub predicate_type: String,
    pub body: serde_json::Value,
    /// The file name BuildKit's local and tar exporters give it
    /// (`provenance.json`, `sbom.spdx.json`: moby/buildkit
    /// `exporter/local/fs.go`, `CreateFS`, the base of the attestation's
    /// path).
    pub file_name: String,
}

impl Predicate {
    /// The statement about `subject`.
    pub fn about(&self, subject: Vec<Subject>) -> Statement {
        Statement::new(&self.predicate_type, subject, self.body.clone())
    }
}
