//! The attestation flags of `kiln build`, in buildx's syntax.
//!
//! `--provenance VALUE` and `--sbom VALUE` are shorthands for `--attest
//! type=provenance,VALUE` and `--attest type=sbom,VALUE`; a bare boolean
//! means `disabled=!VALUE` (docker/buildx `util/buildflags/attests.go`,
//! `CanonicalizeAttest`). A spec is Go CSV whose fields are all `key=value`
//! (`invalid value X` otherwise), `type` names the attestation, `disabled`
//! takes Go's booleans, and one type given twice is an error (buildx's
//! `ConvertAttests`: "duplicate attestation field"). Unlike BuildKit, which
//! ignores attributes it does not know, kiln refuses them: a misspelt
//! `mode=max` must never silently give a `min` provenance.

use crate::csv;

/// How much a provenance attestation tells (BuildKit's `mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProvenanceMode {
    /// Build arguments, labels, secrets and SSH ids left out; the default
    /// of `--provenance=true` (docs.docker.com, "Provenance attestations",
    /// Mode).
    #[default]
    Min,
    /// Everything but secret values: build arguments, secret and SSH ids,
    /// the build steps and the Dockerfile.
    Max,
}

/// Which SLSA provenance schema is written (`version=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SlsaVersion {
    /// `https://slsa.dev/provenance/v0.2`, BuildKit's default.
    #[default]
    V02,
    /// `https://slsa.dev/provenance/v1`.
    V1,
}

/// `--provenance` / `--attest type=provenance`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProvenanceOptions {
    pub mode: ProvenanceMode,
    pub version: SlsaVersion,
    /// `builder-id=`: the predicate's `builder.id` (empty by default, as in
    /// BuildKit when buildx sets none).
    pub builder_id: String,
    /// `reproducible=`: copied into `metadata.reproducible`, never checked.
    pub reproducible: bool,
}

/// `--sbom` / `--attest type=sbom`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SbomOptions {}

/// The attestations a build asked for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AttestOptions {
    pub provenance: Option<ProvenanceOptions>,
    pub sbom: Option<SbomOptions>,
}

impl AttestOptions {
    /// Whether any attestation is asked for.
    pub fn any(&self) -> bool {
        self.provenance.is_some() || self.sbom.is_some()
    }

    /// Parses the flags: the `--attest` values, then `--provenance` and
    /// `--sbom` (each `None` when not given).
    pub fn parse(
        attest: &[String],
        provenance: Option<&str>,
        sbom: Option<&str>,
    ) -> Result<AttestOptions, SpecError> {
        let mut specs: Vec<Spec> = Vec::new();
        for a in attest {
            specs.push(Spec::parse(a, a, "--attest")?);
        }
        for (flag, kind, value) in [
            ("--provenance", "provenance", provenance),
            ("--sbom", "sbom", sbom),
        ] {
            if let Some(v) = value.filter(|v| !v.is_empty()) {
                specs.push(Spec::parse(&canonical(kind, v), v, flag)?);
            }
        }
        let mut out = AttestOptions::default();
        let mut seen: Vec<String> = Vec::new();
        for s in specs {
            if seen.contains(&s.kind) {
                return Err(SpecError::new(
                    &s.flag,
                    &s.text,
                    &format!("duplicate attestation field {}", s.kind),
                ));
            }
            seen.push(s.kind.clone());
            match s.kind.as_str() {
                "provenance" => out.provenance = s.provenance()?,
                "sbom" => out.sbom = s.sbom()?,
                other => {
                    return Err(s.error(&format!(
                        "unknown attestation type {other:?} (expected provenance or sbom)"
                    )))
                }
            }
        }
        Ok(out)
    }
}

/// buildx's `CanonicalizeAttest`: `true`/`false` (Go's booleans) become
/// `disabled=`, anything else is the attributes.
fn canonical(kind: &str, value: &str) -> String {
    match parse_bool(value) {
        Some(b) => format!("type={kind},disabled={}", !b),
        None => format!("type={kind},{value}"),
    }
}

/// One parsed `--attest` value.
struct Spec {
    flag: String,
    text: String,
    kind: String,
    disabled: bool,
    attrs: Vec<(String, String)>,
}

impl Spec {
    /// buildx's `Attest.UnmarshalText` of `text`; errors show `shown`
    /// (what the user typed, before a shorthand was canonicalized).
    fn parse(text: &str, shown: &str, flag: &str) -> Result<Spec, SpecError> {
        let err = |reason: &str| SpecError::new(flag, shown, reason);
        let fields = csv::fields(text).map_err(|_| err("unterminated quote"))?;
        let mut spec = Spec {
            flag: flag.to_string(),
            text: shown.to_string(),
            kind: String::new(),
            disabled: false,
            attrs: Vec::new(),
        };
        for field in fields {
            let Some((key, value)) = field.split_once('=') else {
                return Err(err(&format!("invalid value {field}: expected key=value")));
            };
            match key.trim().to_ascii_lowercase().as_str() {
                "type" => spec.kind = value.to_string(),
                "disabled" => {
                    spec.disabled = parse_bool(value).ok_or_else(|| {
                        err(&format!("invalid value {field}: expected true or false"))
                    })?
                }
                _ => spec.attrs.push((key.to_string(), value.to_string())),
            }
        }
        if spec.kind.is_empty() {
            return Err(err("attestation type not specified"));
        }
        Ok(spec)
    }

    fn error(&self, reason: &str) -> SpecError {
        SpecError::new(&self.flag, &self.text, reason)
    }

    /// The provenance attributes BuildKit reads (moby/buildkit
    /// `solver/llbsolver/provenance.go`, `NewProvenanceCreator`: `mode`
    /// min|max, `full` meaning max; `builder-id`; `reproducible`; and
    /// `version` v0.2|v1 from `provenance/types`, `ProvenanceSLSA`).
    fn provenance(&self) -> Result<Option<ProvenanceOptions>, SpecError> {
        let mut o = ProvenanceOptions::default();
        for (k, v) in &self.attrs {
            match k.as_str() {
                "mode" => {
                    o.mode = match v.as_str() {
                        "min" => ProvenanceMode::Min,
                        "max" | "full" => ProvenanceMode::Max,
                        _ => {
                            return Err(
                                self.error(&format!("invalid mode {v:?} (expected min or max)"))
                            )
                        }
                    }
                }
                "version" => {
                    o.version = match v.as_str() {
                        "v0.2" => SlsaVersion::V02,
                        "v1" => SlsaVersion::V1,
                        _ => {
                            return Err(self.error(&format!(
                                "invalid provenance SLSA version {v:?} (expected v0.2 or v1)"
                            )))
                        }
                    }
                }
                "builder-id" => o.builder_id = v.clone(),
                "reproducible" => {
                    o.reproducible = parse_bool(v).ok_or_else(|| {
                        self.error(&format!("reproducible={v:?}: expected true or false"))
                    })?
                }
                // Accepted for buildx's default spec; kiln has no inline
                // exporter that would drop it.
                "inline-only" => {}
                _ => {
                    return Err(self.error(&format!(
                        "unknown provenance attribute {k:?} (expected: mode, version, builder-id, reproducible)"
                    )))
                }
            }
        }
        Ok((!self.disabled).then_some(o))
    }

    /// The SBOM attributes: kiln's scanner is built in, so BuildKit's
    /// `generator=IMAGE` (a scanner image run over the result, moby/buildkit
    /// `frontend/attestations/sbom/sbom.go`) cannot be honoured.
    fn sbom(&self) -> Result<Option<SbomOptions>, SpecError> {
        if let Some((k, _)) = self.attrs.first() {
            let reason = if k == "generator" {
                "generator= is not supported: kiln scans the image itself (dpkg, apk, Python and npm packages)".to_string()
            } else {
                format!("unknown sbom attribute {k:?}")
            };
            return Err(self.error(&reason));
        }
        Ok((!self.disabled).then_some(SbomOptions {}))
    }
}

/// Go's `strconv.ParseBool`.
fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// A bad attestation flag: the flag, its value and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {flag} {value:?}: {reason}")]
pub struct SpecError {
    pub flag: String,
    pub value: String,
    pub reason: String,
}

impl SpecError {
    fn new(flag: &str, value: &str, reason: &str) -> SpecError {
        SpecError {
            flag: flag.to_string(),
            value: value.to_string(),
            reason: reason.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(attest: &[&str], p: Option<&str>, s: Option<&str>) -> Result<AttestOptions, String> {
        let attest: Vec<String> = attest.iter().map(|s| s.to_string()).collect();
        AttestOptions::parse(&attest, p, s).map_err(|e| e.to_string())
    }

    #[test]
    fn shorthands_are_buildx_canonical_specs() {
        let o = parse(&[], Some("true"), Some("1")).unwrap();
        assert_eq!(o.provenance, Some(ProvenanceOptions::default()));
        assert_eq!(o.sbom, Some(SbomOptions {}));
        let o = parse(&[], Some("false"), Some("false")).unwrap();
        assert!(!o.any());
        let o = parse(&[], Some("mode=max,builder-id=https://ci/1"), None).unwrap();
        let p = o.provenance.unwrap();
        assert_eq!(p.mode, ProvenanceMode::Max);
        assert_eq!(p.builder_id, "https://ci/1");
        let o = parse(&["type=provenance,mode=full,version=v1"], None, None).unwrap();
        let p = o.provenance.unwrap();
        assert_eq!((p.mode, p.version), (ProvenanceMode::Max, SlsaVersion::V1));
        let o = parse(&["type=sbom,disabled=true"], None, None).unwrap();
        assert!(o.sbom.is_none());
    }

    #[test]
    fn bad_values_name_the_flag_and_the_rule() {
        let e = parse(&[], Some("mode=mid"), None).unwrap_err();
        assert!(
            e.contains("--provenance") && e.contains("invalid mode \"mid\""),
            "{e}"
        );
        let e = parse(&[], None, Some("maybe")).unwrap_err();
        assert!(
            e.contains("--sbom") && e.contains("invalid value maybe"),
            "{e}"
        );
        let e = parse(&["mode=max"], None, None).unwrap_err();
        assert!(e.contains("attestation type not specified"), "{e}");
        let e = parse(&["type=provenance"], Some("true"), None).unwrap_err();
        assert!(e.contains("duplicate attestation field provenance"), "{e}");
        let e = parse(&["type=vex"], None, None).unwrap_err();
        assert!(e.contains("unknown attestation type \"vex\""), "{e}");
        let e = parse(&[], Some("mdoe=max"), None).unwrap_err();
        assert!(e.contains("unknown provenance attribute \"mdoe\""), "{e}");
        let e = parse(&[], None, Some("generator=docker/scout")).unwrap_err();
        assert!(e.contains("generator= is not supported"), "{e}");
        let e = parse(&["type=sbom,disabled=nope"], None, None).unwrap_err();
        assert!(e.contains("disabled=nope"), "{e}");
    }
}
