//! SLSA provenance as BuildKit writes it (moby/buildkit
//! `solver/llbsolver/provenance/predicate.go`, `NewPredicate`;
//! `solver/llbsolver/provenance.go`, `NewProvenanceCreator`;
//! `docs/attestations/slsa-definitions.md`).
//!
//! The predicate is built from [`BuildFacts`], what the build knows once
//! it is solved; this module knows nothing of Dockerfiles or the store.
//! `mode=min` drops every `build-arg:` and `label:` argument (and then
//! says the parameters are incomplete), the secret and SSH ids; `mode=max`
//! keeps them and adds the build steps (`buildConfig`) and the Dockerfile
//! with each step's lines (`metadata.…#metadata.source`). Secret values
//! never reach the facts at all.

use base64::Engine;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

use super::spec::{ProvenanceMode, ProvenanceOptions, SlsaVersion};
use super::statement::{Predicate, PREDICATE_SLSA02, PREDICATE_SLSA1};
use crate::image::Digest;

/// BuildKit's v0.2 `buildType` (`provenancetypes.BuildKitBuildType`).
pub const BUILD_TYPE_V02: &str = "https://mobyproject.org/buildkit@v1";
/// BuildKit's v1 `buildType` (slsa-definitions.md, `buildDefinition.buildType`).
pub const BUILD_TYPE_V1: &str =
    "https://github.com/moby/buildkit/blob/master/docs/attestations/slsa-definitions.md";
/// The extension key of BuildKit's own metadata.
const KEY_METADATA: &str = "https://mobyproject.org/buildkit@v1#metadata";
const KEY_HERMETIC: &str = "https://mobyproject.org/buildkit@v1#hermetic";

/// An external artifact the build used: a base image (its package URL),
/// a git repository or a downloaded file, with its immutable digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Material {
    pub uri: String,
    pub digest: Option<Digest>,
}

/// One step of the build graph for `mode=max`'s `buildConfig`.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildStep {
    /// The op's definition digest (`digestMapping`'s key).
    pub digest: Digest,
    /// The op as kiln defines it (kiln has no LLB protobuf to show).
    pub op: Value,
    /// Indexes (into the step list) of the steps its inputs come from.
    pub inputs: Vec<usize>,
    /// The Dockerfile line the step came from.
    pub line: Option<u32>,
}

/// What the build knows that a provenance records.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BuildFacts {
    /// The frontend attributes as buildx sends them: `build-arg:K`,
    /// `label:K`, `target`, `filename`, `no-cache`, `force-network-mode`.
    pub args: BTreeMap<String, String>,
    /// Local directories the build read (`context`, `dockerfile`).
    pub locals: Vec<String>,
    pub materials: Vec<Material>,
    /// `(id, optional)` of every secret and SSH agent the steps mounted.
    pub secrets: Vec<(String, bool)>,
    pub ssh: Vec<(String, bool)>,
    /// Whether any step ran with a network.
    pub network_access: bool,
    /// RFC 3339 times.
    pub started: String,
    pub finished: String,
    pub invocation_id: String,
    /// The builder's platform (`invocation.environment.platform`).
    pub builder_platform: String,
    /// The steps of the target, inputs first (used by `mode=max`).
    pub steps: Vec<BuildStep>,
    /// The Dockerfile's name and text (used by `mode=max`).
    pub dockerfile: Option<(String, Vec<u8>)>,
}

/// The provenance predicate asked for by `options`.
pub fn predicate(facts: &BuildFacts, options: &ProvenanceOptions) -> Predicate {
    let v02 = predicate_v02(facts, options);
    let (predicate_type, body) = match options.version {
        SlsaVersion::V02 => (PREDICATE_SLSA02, v02),
        SlsaVersion::V1 => (PREDICATE_SLSA1, to_v1(&v02)),
    };
    Predicate {
        predicate_type: predicate_type.to_string(),
        body,
        file_name: "provenance.json".to_string(),
    }
}

/// The v0.2 predicate, field by field as `NewPredicate` and
/// `NewProvenanceCreator` fill it.
fn predicate_v02(facts: &BuildFacts, options: &ProvenanceOptions) -> Value {
    let max = options.mode == ProvenanceMode::Max;
    let mut args = facts.args.clone();
    // `filename` becomes the config source's entry point.
    let entry_point = args.remove("filename");
    let mut parameters_complete = true;
    if !max {
        args.retain(|k, _| {
            let drop = k.starts_with("build-arg:") || k.starts_with("label:");
            parameters_complete &= !drop;
            !drop
        });
    }
    let mut parameters = Map::new();
    parameters.insert("frontend".into(), json!("dockerfile.v0"));
    if !args.is_empty() {
        parameters.insert("args".into(), json!(args));
    }
    if max {
        let ids = |v: &[(String, bool)]| -> Vec<Value> {
            v.iter()
                .map(|(id, optional)| {
                    let mut m = Map::new();
                    m.insert("id".into(), json!(id));
                    if *optional {
                        m.insert("optional".into(), json!(true));
                    }
                    Value::Object(m)
                })
                .collect()
        };
        if !facts.secrets.is_empty() {
            parameters.insert("secrets".into(), json!(ids(&facts.secrets)));
        }
        if !facts.ssh.is_empty() {
            parameters.insert("ssh".into(), json!(ids(&facts.ssh)));
        }
    }
    if !facts.locals.is_empty() {
        let locals: Vec<Value> = facts.locals.iter().map(|n| json!({"name": n})).collect();
        parameters.insert("locals".into(), json!(locals));
    }
    let mut config_source = Map::new();
    if let Some(e) = entry_point.filter(|e| !e.is_empty()) {
        config_source.insert("entryPoint".into(), json!(e));
    }
    // A local source cannot be pinned: the materials are incomplete, and
    // the build is then not hermetic either (`NewPredicate`).
    let materials_complete = facts.locals.is_empty();
    let mut metadata = Map::new();
    metadata.insert("buildInvocationID".into(), json!(facts.invocation_id));
    metadata.insert("buildStartedOn".into(), json!(facts.started));
    metadata.insert("buildFinishedOn".into(), json!(facts.finished));
    metadata.insert(
        "completeness".into(),
        json!({
            "parameters": parameters_complete,
            "environment": true,
            "materials": materials_complete,
        }),
    );
    metadata.insert("reproducible".into(), json!(options.reproducible));
    let mut bk = Map::new();
    if max {
        if let Some(source) = source_map(facts) {
            bk.insert("source".into(), source);
        }
    }
    metadata.insert(KEY_METADATA.into(), Value::Object(bk));
    if materials_complete && !facts.network_access {
        metadata.insert(KEY_HERMETIC.into(), json!(true));
    }
    let materials: Vec<Value> = facts.materials.iter().map(material_json).collect();
    let mut p = Map::new();
    p.insert("builder".into(), json!({"id": options.builder_id}));
    p.insert("buildType".into(), json!(BUILD_TYPE_V02));
    if !materials.is_empty() {
        p.insert("materials".into(), json!(materials));
    }
    p.insert(
        "invocation".into(),
        json!({
            "configSource": config_source,
            "parameters": parameters,
            "environment": {"platform": facts.builder_platform},
        }),
    );
    if max && !facts.steps.is_empty() {
        p.insert("buildConfig".into(), build_config(&facts.steps));
    }
    p.insert("metadata".into(), Value::Object(metadata));
    Value::Object(p)
}

fn material_json(m: &Material) -> Value {
    let mut o = Map::new();
    o.insert("uri".into(), json!(m.uri));
    if let Some(d) = &m.digest {
        let text = d.to_string();
        let algorithm = text.split_once(':').map_or("sha256", |(a, _)| a);
        o.insert("digest".into(), json!({ algorithm: d.hex() }));
    }
    Value::Object(o)
}

/// `buildConfig`: the steps as `step<N>` with their inputs as
/// `step<M>:0`, and the definition digest of each (BuildKit's
/// `AddBuildConfig` and `toBuildSteps`).
fn build_config(steps: &[BuildStep]) -> Value {
    let mut defs = Vec::with_capacity(steps.len());
    let mut mapping = Map::new();
    for (i, s) in steps.iter().enumerate() {
        let inputs: Vec<String> = s.inputs.iter().map(|j| format!("step{j}:0")).collect();
        let mut step = Map::new();
        step.insert("id".into(), json!(format!("step{i}")));
        step.insert("op".into(), s.op.clone());
        if !inputs.is_empty() {
            step.insert("inputs".into(), json!(inputs));
        }
        defs.push(Value::Object(step));
        mapping.insert(s.digest.to_string(), json!(format!("step{i}")));
    }
    json!({"llbDefinition": defs, "digestMapping": mapping})
}

/// `source`: the Dockerfile (base64, as Go writes `[]byte`) and which
/// lines each step came from (`pb.Locations`).
fn source_map(facts: &BuildFacts) -> Option<Value> {
    let (name, text) = facts.dockerfile.as_ref()?;
    let mut locations = Map::new();
    for (i, s) in facts.steps.iter().enumerate() {
        if let Some(line) = s.line {
            locations.insert(
                format!("step{i}"),
                json!({"locations": [{"ranges": [{"start": {"line": line}, "end": {"line": line}}]}]}),
            );
        }
    }
    Some(json!({
        "locations": locations,
        "infos": [{
            "filename": name,
            "language": "Dockerfile",
            "data": base64::engine::general_purpose::STANDARD.encode(text),
        }],
    }))
}

/// The v1 predicate from the v0.2 one, field for field as BuildKit's
/// `ConvertSLSA02ToSLSA1` (moby/buildkit
/// `solver/llbsolver/provenance/types/types.go`), with the field names of
/// the current `docs/attestations/slsa-definitions.md` ("SLSA v1":
/// `externalParameters.request`, `internalParameters.buildConfig` and
/// `builderPlatform`, `runDetails.metadata.buildkit_*`).
fn to_v1(p: &Value) -> Value {
    let inv = &p["invocation"];
    let meta = &p["metadata"];
    let mut external = Map::new();
    let cs = &inv["configSource"];
    let mut config_source = Map::new();
    for (from, to) in [("uri", "uri"), ("digest", "digest"), ("entryPoint", "path")] {
        if !cs[from].is_null() {
            config_source.insert(to.into(), cs[from].clone());
        }
    }
    external.insert("configSource".into(), Value::Object(config_source));
    external.insert("request".into(), inv["parameters"].clone());
    let mut internal = Map::new();
    if !p["buildConfig"].is_null() {
        internal.insert("buildConfig".into(), p["buildConfig"].clone());
    }
    internal.insert(
        "builderPlatform".into(),
        inv["environment"]["platform"].clone(),
    );
    let mut build_def = Map::new();
    build_def.insert("buildType".into(), json!(BUILD_TYPE_V1));
    build_def.insert("externalParameters".into(), Value::Object(external));
    build_def.insert("internalParameters".into(), Value::Object(internal));
    if let Some(m) = p["materials"].as_array() {
        build_def.insert("resolvedDependencies".into(), json!(m));
    }
    let mut run_meta = Map::new();
    run_meta.insert("invocationID".into(), meta["buildInvocationID"].clone());
    run_meta.insert("startedOn".into(), meta["buildStartedOn"].clone());
    run_meta.insert("finishedOn".into(), meta["buildFinishedOn"].clone());
    run_meta.insert("buildkit_metadata".into(), meta[KEY_METADATA].clone());
    run_meta.insert(
        "buildkit_hermetic".into(),
        json!(meta[KEY_HERMETIC].as_bool().unwrap_or(false)),
    );
    run_meta.insert(
        "buildkit_completeness".into(),
        json!({
            "request": meta["completeness"]["parameters"],
            "resolvedDependencies": meta["completeness"]["materials"],
        }),
    );
    run_meta.insert("buildkit_reproducible".into(), meta["reproducible"].clone());
    json!({
        "buildDefinition": build_def,
        "runDetails": {"builder": p["builder"], "metadata": run_meta},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> BuildFacts {
        let mut args = BTreeMap::new();
        args.insert("build-arg:VERSION".into(), "1.2".into());
        args.insert("label:team".into(), "core".into());
        args.insert("target".into(), "release".into());
        args.insert("filename".into(), "Dockerfile".into());
        BuildFacts {
            args,
            locals: vec!["context".into(), "dockerfile".into()],
            materials: vec![Material {
                uri: "pkg:docker/busybox@latest?platform=linux%2Famd64".into(),
                digest: Some(Digest::sha256_of(b"base")),
            }],
            secrets: vec![("token".into(), false)],
            ssh: vec![],
            network_access: true,
            started: "2026-01-01T00:00:00Z".into(),
            finished: "2026-01-01T00:00:01Z".into(),
            invocation_id: "abc".into(),
            builder_platform: "linux/amd64".into(),
            steps: vec![BuildStep {
                digest: Digest::sha256_of(b"op"),
                op: json!({"op": "exec", "args": ["sh"]}),
                inputs: vec![],
                line: Some(3),
            }],
            dockerfile: Some(("Dockerfile".into(), b"FROM busybox\n".to_vec())),
        }
    }

    #[test]
    fn min_mode_drops_build_args_labels_secrets_and_steps() {
        let p = predicate(&facts(), &ProvenanceOptions::default());
        assert_eq!(p.predicate_type, PREDICATE_SLSA02);
        let b = &p.body;
        assert_eq!(b["buildType"], BUILD_TYPE_V02);
        assert_eq!(b["builder"]["id"], "");
        assert_eq!(b["invocation"]["configSource"]["entryPoint"], "Dockerfile");
        let params = &b["invocation"]["parameters"];
        assert_eq!(params["frontend"], "dockerfile.v0");
        assert_eq!(params["args"], json!({"target": "release"}));
        assert!(params.get("secrets").is_none());
        assert_eq!(params["locals"][0]["name"], "context");
        assert_eq!(b["metadata"]["completeness"]["parameters"], false);
        assert_eq!(b["metadata"]["completeness"]["materials"], false);
        assert!(b.get("buildConfig").is_none());
        assert!(b["metadata"][KEY_METADATA].get("source").is_none());
        assert_eq!(
            b["materials"][0]["digest"]["sha256"],
            Digest::sha256_of(b"base").hex()
        );
        assert_eq!(b["invocation"]["environment"]["platform"], "linux/amd64");
    }

    #[test]
    fn max_mode_keeps_args_and_secret_ids_and_adds_steps_and_source() {
        let opts = ProvenanceOptions {
            mode: ProvenanceMode::Max,
            builder_id: "https://ci.example/run/1".into(),
            ..Default::default()
        };
        let b = predicate(&facts(), &opts).body;
        let params = &b["invocation"]["parameters"];
        assert_eq!(params["args"]["build-arg:VERSION"], "1.2");
        assert_eq!(params["args"]["label:team"], "core");
        assert_eq!(params["secrets"], json!([{"id": "token"}]));
        assert_eq!(b["metadata"]["completeness"]["parameters"], true);
        assert_eq!(b["builder"]["id"], "https://ci.example/run/1");
        assert_eq!(b["buildConfig"]["llbDefinition"][0]["id"], "step0");
        let src = &b["metadata"][KEY_METADATA]["source"];
        assert_eq!(src["infos"][0]["data"], "RlJPTSBidXN5Ym94Cg==");
        assert_eq!(
            src["locations"]["step0"]["locations"][0]["ranges"][0]["start"]["line"],
            3
        );
    }

    #[test]
    fn v1_moves_fields_as_buildkit_converts_them() {
        let opts = ProvenanceOptions {
            version: SlsaVersion::V1,
            ..Default::default()
        };
        let p = predicate(&facts(), &opts);
        assert_eq!(p.predicate_type, PREDICATE_SLSA1);
        let d = &p.body["buildDefinition"];
        assert_eq!(d["buildType"], BUILD_TYPE_V1);
        assert_eq!(
            d["externalParameters"]["configSource"]["path"],
            "Dockerfile"
        );
        assert_eq!(
            d["resolvedDependencies"][0]["uri"],
            "pkg:docker/busybox@latest?platform=linux%2Famd64"
        );
        assert_eq!(p.body["runDetails"]["metadata"]["invocationID"], "abc");
    }
}
