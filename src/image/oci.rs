//! OCI image-spec and Docker image formats: descriptors, manifests, indexes
//! and image configs, as serde types.
//!
//! kiln's own types rather than `oci-spec`'s because the store must keep
//! fields it does not know (Docker's `Healthcheck`, `OnBuild`, `Shell`,
//! vendor extensions) when it reads a config and writes it back: an image
//! ID is the digest of the config bytes, so losing a field changes the
//! image. Every struct carries an `extra` map for that (serde `flatten`).
//! Maps are `BTreeMap` so that a config kiln writes serializes the same way
//! every time (stable digests).

pub mod image_index;
pub mod media;
mod platform;

pub use platform::{host_architecture, Platform, PlatformError};

use super::digest::Digest;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Unknown JSON members kept verbatim.
pub type Extra = BTreeMap<String, serde_json::Value>;

/// A content descriptor: what a manifest says about a blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Descriptor {
    #[serde(rename = "mediaType")]
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Descriptor {
    /// A descriptor with only the three required fields.
    pub fn new(media_type: &str, digest: Digest, size: u64) -> Descriptor {
        Descriptor {
            media_type: media_type.to_string(),
            digest,
            size,
            annotations: None,
            platform: None,
            extra: Extra::new(),
        }
    }
}

/// An image manifest (OCI image-spec `manifest.md`, or Docker schema 2,
/// which has the same shape).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    #[serde(rename = "mediaType", default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// An image index (OCI) or manifest list (Docker).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Index {
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    #[serde(rename = "mediaType", default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// An image config (OCI image-spec `config.md`, plus Docker's fields).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<ContainerConfig>,
    pub rootfs: RootFs,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<History>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl ImageConfig {
    /// The config's bytes as BuildKit writes them, so that the same
    /// image has the same ID (config digest) whichever of the two built
    /// it: the top-level keys sorted (BuildKit's exporter re-marshals the
    /// config as a Go map, moby/buildkit exporter/containerimage/writer.go
    /// `patchImageConfig`), nested objects in their struct order, and
    /// `created` always present (null when unknown), and
    /// `<`, `>`, `&`, U+2028 and U+2029 escaped as Go's `encoding/json`
    /// escapes them (a `RUN a && b` history entry reads `a \u0026\u0026 b`).
    pub fn to_buildkit_json(&self) -> serde_json::Result<Vec<u8>> {
        fn put<T: Serialize + ?Sized>(
            fields: &mut BTreeMap<String, String>,
            key: &str,
            value: &T,
        ) -> serde_json::Result<()> {
            fields.insert(key.to_string(), serde_json::to_string(value)?);
            Ok(())
        }
        let mut fields = BTreeMap::new();
        for (k, v) in &self.extra {
            put(&mut fields, k, v)?;
        }
        // `patchImageConfig` writes `"created": null` when no history
        // entry has a time either.
        put(&mut fields, "created", &self.created)?;
        if let Some(v) = &self.author {
            put(&mut fields, "author", v)?;
        }
        put(&mut fields, "architecture", &self.architecture)?;
        put(&mut fields, "os", &self.os)?;
        if let Some(v) = &self.variant {
            put(&mut fields, "variant", v)?;
        }
        if let Some(v) = &self.config {
            put(&mut fields, "config", v)?;
        }
        put(&mut fields, "rootfs", &self.rootfs)?;
        if !self.history.is_empty() {
            put(&mut fields, "history", &self.history)?;
        }
        let mut out = String::from("{");
        for (i, (k, v)) in fields.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&serde_json::to_string(k)?);
            out.push(':');
            out.push_str(v);
        }
        out.push('}');
        Ok(go_escape_html(&out).into_bytes())
    }
}

/// Go's `encoding/json` HTML-safe escaping of already-encoded JSON: these
/// characters can only stand inside strings there, so replacing them
/// everywhere keeps the document's meaning.
fn go_escape_html(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// The `PATH` a container gets when its image sets none. BuildKit's
/// Dockerfile frontend writes it into every stage's config that lacks one
/// (moby/buildkit `frontend/dockerfile/dockerfile2llb/convert.go`,
/// `toDispatchState`: "make sure that PATH is always set", with
/// `util/system.DefaultPathEnv`), and docker sets it for a container
/// (moby `oci/defaults.go`, `DefaultPathEnv`). One constant, so that the
/// lowering and the runtime's environment rule cannot disagree.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The runtime defaults of an image (`config` in the image config).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// `{"80/tcp": {}}`: Docker encodes a set as a map to empty objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// The layer list of an image config: diff IDs bottom to top.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    pub diff_ids: Vec<Digest>,
}

impl Default for RootFs {
    fn default() -> Self {
        RootFs {
            kind: "layers".to_string(),
            diff_ids: Vec::new(),
        }
    }
}

/// One step of an image's history; `empty_layer` steps made no layer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
    #[serde(flatten)]
    pub extra: Extra,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_round_trips_unknown_fields() {
        let text = r#"{"architecture":"amd64","os":"linux","config":{"Cmd":["sh"],"Healthcheck":{"Test":["NONE"]},"ArgsEscaped":true},"rootfs":{"type":"layers","diff_ids":[]},"moby.buildkit.buildinfo.v1":"x"}"#;
        let c: ImageConfig = serde_json::from_str(text).unwrap();
        let back = serde_json::to_value(&c).unwrap();
        assert_eq!(back["config"]["Healthcheck"]["Test"][0], "NONE");
        assert_eq!(back["config"]["ArgsEscaped"], true);
        assert_eq!(back["moby.buildkit.buildinfo.v1"], "x");
        assert_eq!(back["config"]["Cmd"][0], "sh");
    }

    /// BuildKit's exporter writes the config as a Go map (top-level keys
    /// sorted, nested structs in field order) with Go's HTML escaping.
    #[test]
    fn configs_are_written_with_buildkits_key_order_and_escaping() {
        let text = r#"{"created":"2024-01-01T00:00:00Z","architecture":"amd64","os":"linux","config":{"Env":["A=<b>"],"Cmd":["sh"],"WorkingDir":"/"},"rootfs":{"type":"layers","diff_ids":[]},"history":[{"created":"2024-01-01T00:00:00Z","created_by":"RUN a && b","empty_layer":true}],"moby.buildkit.cache.v0":"x"}"#;
        let c: ImageConfig = serde_json::from_str(text).unwrap();
        let bytes = String::from_utf8(c.to_buildkit_json().unwrap()).unwrap();
        assert_eq!(
            bytes,
            r#"{"architecture":"amd64","config":{"Env":["A=\u003cb\u003e"],"Cmd":["sh"],"WorkingDir":"/"},"created":"2024-01-01T00:00:00Z","history":[{"created":"2024-01-01T00:00:00Z","created_by":"RUN a \u0026\u0026 b","empty_layer":true}],"moby.buildkit.cache.v0":"x","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#
        );
        let back: ImageConfig = serde_json::from_str(&bytes).unwrap();
        assert_eq!(back, c);
        let timeless = ImageConfig {
            architecture: "amd64".into(),
            os: "linux".into(),
            ..Default::default()
        };
        let bytes = String::from_utf8(timeless.to_buildkit_json().unwrap()).unwrap();
        assert_eq!(
            bytes,
            r#"{"architecture":"amd64","created":null,"os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#
        );
    }

    #[test]
    fn manifest_parses_docker_schema2() {
        let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let text = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"{}","digest":"{d}","size":1}},"layers":[{{"mediaType":"{}","digest":"{d}","size":2}}]}}"#,
            media::DOCKER_MANIFEST,
            media::DOCKER_CONFIG,
            media::DOCKER_LAYER_GZIP
        );
        let m: Manifest = serde_json::from_str(&text).unwrap();
        assert_eq!(m.layers[0].size, 2);
        assert!(media::is_layer(&m.layers[0].media_type));
        assert!(media::is_config(&m.config.media_type));
    }
}
