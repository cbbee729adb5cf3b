//! What `kiln inspect` shows for an image: docker's `ImageInspect` JSON
//! shape (field names, order and null-vs-missing as docker prints them).

use super::history;
use crate::cache::Image;
use crate::image::timestamp::format_rfc3339;
use crate::image::ImageRef;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// docker's image inspect object.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct InspectView {
    pub id: String,
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    pub parent: String,
    pub comment: String,
    pub created: String,
    pub author: String,
    pub config: ConfigView,
    pub architecture: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    pub os: String,
    pub size: u64,
    #[serde(rename = "RootFS")]
    pub rootfs: RootFsView,
    pub metadata: MetadataView,
}

/// docker's `container.Config` as shown for images.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ConfigView {
    pub hostname: String,
    pub domainname: String,
    pub user: String,
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, Value>>,
    pub tty: bool,
    pub open_stdin: bool,
    pub stdin_once: bool,
    pub env: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args_escaped: Option<Value>,
    pub image: String,
    pub volumes: Option<BTreeMap<String, Value>>,
    pub working_dir: String,
    pub entrypoint: Option<Vec<String>>,
    pub on_build: Option<Value>,
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shell: Option<Value>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RootFsView {
    #[serde(rename = "Type")]
    pub kind: String,
    pub layers: Vec<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct MetadataView {
    pub last_tag_time: String,
}

/// Builds the inspect view of a stored image.
pub fn view(image: &Image) -> InspectView {
    let c = &image.config;
    let cc = c.config.clone().unwrap_or_default();
    let extra = |k: &str| cc.extra.get(k).cloned();
    let comment = c
        .extra
        .get("comment")
        .and_then(|v| v.as_str())
        .map(str::to_string)
        .or_else(|| history::last_comment(image))
        .unwrap_or_default();
    InspectView {
        id: image.id.to_string(),
        repo_tags: image.names.iter().map(ImageRef::familiar).collect(),
        repo_digests: image.repo_digests.iter().map(ImageRef::familiar).collect(),
        parent: String::new(),
        comment,
        created: c
            .created
            .clone()
            .unwrap_or_else(|| "0001-01-01T00:00:00Z".into()),
        author: c.author.clone().unwrap_or_default(),
        config: ConfigView {
            hostname: String::new(),
            domainname: String::new(),
            user: cc.user.clone().unwrap_or_default(),
            attach_stdin: false,
            attach_stdout: false,
            attach_stderr: false,
            exposed_ports: cc.exposed_ports.clone(),
            tty: false,
            open_stdin: false,
            stdin_once: false,
            env: cc.env.clone(),
            cmd: cc.cmd.clone(),
            healthcheck: extra("Healthcheck"),
            args_escaped: extra("ArgsEscaped"),
            image: String::new(),
            volumes: cc.volumes.clone(),
            working_dir: cc.working_dir.clone().unwrap_or_default(),
            entrypoint: cc.entrypoint.clone(),
            on_build: extra("OnBuild"),
            labels: cc.labels.clone(),
            stop_signal: cc.stop_signal.clone(),
            shell: extra("Shell"),
        },
        architecture: c.architecture.clone(),
        variant: c.variant.clone(),
        os: c.os.clone(),
        size: image.size,
        rootfs: RootFsView {
            kind: c.rootfs.kind.clone(),
            layers: c.rootfs.diff_ids.iter().map(|d| d.to_string()).collect(),
        },
        metadata: MetadataView {
            last_tag_time: format_rfc3339(image.added, 0),
        },
    }
}

/// The views as docker prints them: a JSON array, 4-space indented.
pub fn to_json(views: &[InspectView]) -> String {
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    // Serializing plain structs of strings and maps cannot fail.
    let _ = views.serialize(&mut ser);
    String::from_utf8_lossy(&out).into_owned()
}
