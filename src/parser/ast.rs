//! The typed AST: what a lowering step (Dockerfile → build graph) consumes.
//!
//! Mirrors BuildKit's `instructions` package: a [`Dockerfile`] is the
//! global `ARG`s that precede the first `FROM`, then [`Stage`]s, each a `FROM`
//! and its [`Instruction`]s. Every instruction has its flags parsed and
//! checked (unknown flag, missing value, bad boolean are errors here, as in
//! BuildKit) and its [`Span`] in the source.
//!
//! Nothing is expanded: image names, paths, ENV values, `--mount` specs keep
//! `$VARS`, quotes and escapes exactly as written, because their meaning
//! depends on build arguments known only at lowering time (BuildKit expands
//! them in its dispatcher, not its parser). Text that was not valid UTF-8 is
//! decoded with U+FFFD replacements, except heredoc bodies, which stay bytes
//! (they become file contents).

use super::heredoc::Heredoc;
use super::node::{Directive, Warning};
use serde::{Serialize, Serializer};

/// A parsed, checked Dockerfile.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Dockerfile {
    /// Parser directives (`syntax`, `escape`, `check`) in file order.
    pub directives: Vec<Directive>,
    /// The escape character in force: `\` or `` ` ``.
    pub escape: char,
    /// `ARG` instructions before the first `FROM` (BuildKit's meta args):
    /// usable in `FROM` lines and, when redeclared, inside stages.
    pub global_args: Vec<GlobalArg>,
    /// Build stages in file order; a stage's index is its position here.
    pub stages: Vec<Stage>,
    /// Non-fatal findings (empty continuation lines).
    pub warnings: Vec<Warning>,
}

impl Dockerfile {
    /// The value of a parser directive, if present (`syntax`, `check`, ...).
    pub fn directive(&self, name: &str) -> Option<&str> {
        self.directives
            .iter()
            .find(|d| d.name == name)
            .map(|d| d.value.as_str())
    }

    /// The stage a `--from=`/`FROM` reference names, by (case-insensitive)
    /// name. Numeric indexes are the lowering's business.
    pub fn stage_by_name(&self, name: &str) -> Option<&Stage> {
        let lower = name.to_lowercase();
        self.stages
            .iter()
            .find(|s| s.name.as_deref() == Some(lower.as_str()))
    }
}

/// Where an instruction is and how it read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Span {
    /// 1-based line of the instruction name.
    pub line: usize,
    /// 1-based column (characters) of the instruction name.
    pub column: usize,
    /// Last line, continuation lines and heredoc bodies included.
    pub end_line: usize,
    /// The logical line, continuations joined and trimmed (what BuildKit
    /// shows in progress output and history).
    pub original: String,
}

/// An `ARG` before the first `FROM`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GlobalArg {
    pub span: Span,
    pub arg: Arg,
}

/// A `FROM` line and the instructions up to the next one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stage {
    /// The image reference or stage name as written (unexpanded).
    pub base: String,
    /// `AS name`, lower-cased (BuildKit compares stage names lower-cased).
    pub name: Option<String>,
    /// `--platform=` value, unexpanded.
    pub platform: Option<String>,
    /// A `# name description` comment right above `FROM ... AS name`.
    pub comment: Option<String>,
    pub span: Span,
    pub instructions: Vec<Instruction>,
}

/// One instruction inside a stage.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Instruction {
    pub span: Span,
    #[serde(flatten)]
    pub kind: InstructionKind,
}

/// The instructions, with their parsed flags. (`FROM` starts a [`Stage`].)
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "instruction", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum InstructionKind {
    Run(Run),
    Cmd(Cmd),
    Entrypoint(Entrypoint),
    Shell(Shell),
    Env(Env),
    Label(Label),
    Arg(Arg),
    Copy(Copy),
    Add(Add),
    Workdir(Workdir),
    User(User),
    Volume(Volume),
    Expose(Expose),
    StopSignal(StopSignal),
    Healthcheck(Healthcheck),
    Onbuild(Onbuild),
    Maintainer(Maintainer),
}

/// A command in exec (JSON) or shell form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandLine {
    /// `["a", "b"]`: run as is. May be empty (`CMD []`).
    Exec(Vec<String>),
    /// Shell form: the text is run with the stage's shell. Empty when the
    /// instruction had no arguments at all (`RUN`, `CMD`), where BuildKit
    /// keeps an empty command line and still marks it as shell form.
    Shell(String),
}

/// `RUN`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Run {
    pub command: CommandLine,
    /// Heredoc bodies (`RUN <<EOF`), unchomped; see [`Heredoc::chomp`].
    pub heredocs: Vec<Heredoc>,
    /// `--mount=` values, raw (parsed during lowering, after expansion).
    pub mounts: Vec<String>,
    /// `--network=`.
    pub network: NetworkMode,
    /// `--security=`.
    pub security: SecurityMode,
    /// `--device=` values, raw.
    pub devices: Vec<String>,
}

/// `RUN --network=`: BuildKit accepts exactly these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    #[default]
    Default,
    None,
    Host,
}

/// `RUN --security=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SecurityMode {
    #[default]
    Sandbox,
    Insecure,
}

/// `CMD`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cmd {
    pub command: CommandLine,
}

/// `ENTRYPOINT`. BuildKit treats an empty exec form (`ENTRYPOINT []`) as
/// "no entrypoint".
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entrypoint {
    pub command: CommandLine,
}

/// `SHELL ["sh", "-c"]` (JSON form is required; never empty).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Shell {
    pub shell: Vec<String>,
}

/// One `key=value` of ENV or LABEL, unexpanded (quotes still in place).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
    /// Written in the legacy `ENV key value` form (no `=`).
    pub legacy: bool,
}

/// `ENV`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Env {
    pub vars: Vec<KeyValue>,
}

/// `LABEL`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Label {
    pub labels: Vec<KeyValue>,
}

/// `ARG name[=default] ...`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Arg {
    pub definitions: Vec<ArgDefinition>,
}

/// One declared build argument.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArgDefinition {
    pub name: String,
    /// The default, unexpanded (`Some("")` for `ARG x=`).
    pub default: Option<String>,
    /// A `# name description` comment right above the ARG.
    pub comment: Option<String>,
}

/// A source given inline as a heredoc (`COPY <<EOF /dst`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InlineSource {
    /// The heredoc name, used as the file name.
    pub path: String,
    /// The body; leading tabs already removed for `<<-`.
    #[serde(serialize_with = "serialize_lossy")]
    pub data: Vec<u8>,
    /// Whether variables in `data` are expanded (unquoted marker).
    pub expand: bool,
}

/// `COPY`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Copy {
    /// Source paths (context or `--from` stage/image), unexpanded.
    pub sources: Vec<String>,
    /// Heredoc sources, in order.
    pub inline: Vec<InlineSource>,
    pub dest: String,
    pub from: Option<String>,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub link: bool,
    pub parents: bool,
    pub exclude: Vec<String>,
}

/// `ADD`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Add {
    pub sources: Vec<String>,
    pub inline: Vec<InlineSource>,
    pub dest: String,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub link: bool,
    /// `--keep-git-dir`, if given.
    pub keep_git_dir: Option<bool>,
    pub checksum: Option<String>,
    /// `--unpack`, if given.
    pub unpack: Option<bool>,
    pub exclude: Vec<String>,
}

/// `WORKDIR`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Workdir {
    pub path: String,
}

/// `USER`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    pub user: String,
}

/// `VOLUME` (paths trimmed, never empty).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Volume {
    pub paths: Vec<String>,
}

/// `EXPOSE`: ports sorted as BuildKit sorts them (byte order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Expose {
    pub ports: Vec<String>,
}

/// `STOPSIGNAL`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StopSignal {
    pub signal: String,
}

/// `HEALTHCHECK`. In JSON: `"mode": "none"` or `"mode": "check"` plus the
/// config fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum Healthcheck {
    /// `HEALTHCHECK NONE`: disable any inherited check.
    None,
    Check(HealthcheckConfig),
}

/// The image-config health check. Durations are nanoseconds; 0 means
/// "not set" (inherit the default), as in the OCI/Docker config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HealthcheckConfig {
    /// `["CMD", args...]` (exec form) or `["CMD-SHELL", command]`.
    pub test: Vec<String>,
    pub interval_ns: u64,
    pub timeout_ns: u64,
    pub start_period_ns: u64,
    pub start_interval_ns: u64,
    pub retries: u32,
}

/// `ONBUILD`: stored as text, parsed when a child image builds FROM it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Onbuild {
    /// The trigger instruction name, upper-cased (`RUN`).
    pub trigger: String,
    /// The trigger as BuildKit records it in the image config: the line
    /// without `ONBUILD`, then for each heredoc `\n` + body + name.
    pub expression: String,
}

/// `MAINTAINER` (deprecated).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Maintainer {
    pub name: String,
}

impl Heredoc {
    /// The body as a consumer uses it: leading tabs stripped for `<<-`.
    pub fn chomped_content(&self) -> Vec<u8> {
        if self.chomp {
            super::heredoc::chomp(&self.content)
        } else {
            self.content.clone()
        }
    }
}

/// Serializes bytes as (lossily decoded) text, for JSON output.
pub fn serialize_lossy<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&super::text::go_lossy(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shape_is_tagged_and_flat() {
        let inst = Instruction {
            span: Span {
                line: 2,
                column: 1,
                end_line: 2,
                original: "USER me".into(),
            },
            kind: InstructionKind::User(User { user: "me".into() }),
        };
        let v = serde_json::to_value(&inst).expect("serializes");
        assert_eq!(v["instruction"], "USER");
        assert_eq!(v["user"], "me");
        assert_eq!(v["span"]["line"], 2);
        let shell = serde_json::to_value(CommandLine::Shell("x".into())).expect("serializes");
        assert_eq!(shell, serde_json::json!({"shell": "x"}));
    }

    #[test]
    fn healthcheck_json() {
        let none = serde_json::to_value(InstructionKind::Healthcheck(Healthcheck::None))
            .expect("serializes");
        assert_eq!(
            none,
            serde_json::json!({"instruction": "HEALTHCHECK", "mode": "none"})
        );
        let check = Healthcheck::Check(HealthcheckConfig {
            test: vec!["CMD".into(), "true".into()],
            interval_ns: 1,
            timeout_ns: 0,
            start_period_ns: 0,
            start_interval_ns: 0,
            retries: 2,
        });
        let v = serde_json::to_value(InstructionKind::Healthcheck(check)).expect("serializes");
        assert_eq!(
            (v["mode"].as_str(), v["retries"].as_u64()),
            (Some("check"), Some(2))
        );
    }

    #[test]
    fn bytes_serialize_as_text() {
        let src = InlineSource {
            path: "f".into(),
            data: b"a\xffb".to_vec(),
            expand: true,
        };
        let v = serde_json::to_value(&src).expect("serializes");
        assert_eq!(v["data"], "a\u{FFFD}b");
    }
}
