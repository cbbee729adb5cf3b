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
    /// Where the instruction is.
    pub span: Span,
    /// The declared arguments.
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
    /// Where the instruction is.
    pub span: Span,
    /// The instructions after `FROM`, in order.
    pub instructions: Vec<Instruction>,
}

/// One instruction inside a stage.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Instruction {
    /// Where the instruction is.
    pub span: Span,
    #[serde(flatten)]
    /// What the instruction is, with its arguments.
    pub kind: InstructionKind,
}

/// The instructions, with their parsed flags. (`FROM` starts a [`Stage`].)
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "instruction", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum InstructionKind {
    /// `RUN`: run a command in the stage.
    Run(Run),
    /// `CMD`: the default command of the image.
    Cmd(Cmd),
    /// `ENTRYPOINT`: the entrypoint of the image.
    Entrypoint(Entrypoint),
    /// `SHELL`: the shell used for shell-form commands.
    Shell(Shell),
    /// `ENV`: environment variables.
    Env(Env),
    /// `LABEL`: image labels.
    Label(Label),
    /// `ARG`: build arguments.
    Arg(Arg),
    /// `COPY`: files from the context, a stage or an image.
    Copy(Copy),
    /// `ADD`: like COPY, plus URLs, git and archive unpacking.
    Add(Add),
    /// `WORKDIR`: the working directory.
    Workdir(Workdir),
    /// `USER`: the user (and group) to run as.
    User(User),
    /// `VOLUME`: mount points recorded in the image config.
    Volume(Volume),
    /// `EXPOSE`: ports recorded in the image config.
    Expose(Expose),
    /// `STOPSIGNAL`: the signal that stops the container.
    StopSignal(StopSignal),
    /// `HEALTHCHECK`: the container health check.
    Healthcheck(Healthcheck),
    /// `ONBUILD`: a trigger for images built FROM this one.
    Onbuild(Onbuild),
    /// `MAINTAINER` (deprecated): the author label.
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
    /// The command, exec or shell form.
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
    /// The default network (BuildKit's `default`).
    Default,
    /// No network at all.
    None,
    /// The host's network (needs the `network.host` entitlement).
    Host,
}

/// `RUN --security=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SecurityMode {
    #[default]
    /// Normal sandboxed execution.
    Sandbox,
    /// Privileged execution (needs the `security.insecure` entitlement).
    Insecure,
}

/// `CMD`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cmd {
    /// The command, exec or shell form.
    pub command: CommandLine,
}

/// `ENTRYPOINT`. BuildKit treats an empty exec form (`ENTRYPOINT []`) as
/// "no entrypoint".
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entrypoint {
    /// The command, exec or shell form.
    pub command: CommandLine,
}

/// `SHELL ["sh", "-c"]` (JSON form is required; never empty).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Shell {
    /// The shell and its arguments, e.g. `["/bin/sh", "-c"]`.
    pub shell: Vec<String>,
}

/// One `key=value` of ENV or LABEL, unexpanded (quotes still in place).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyValue {
    /// The name, unexpanded.
    pub key: String,
    /// The value, unexpanded, quotes kept.
    pub value: String,
    /// Written in the legacy `ENV key value` form (no `=`).
    pub legacy: bool,
}

/// `ENV`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Env {
    /// The variables, in order.
    pub vars: Vec<KeyValue>,
}

/// `LABEL`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Label {
    /// The labels, in order.
    pub labels: Vec<KeyValue>,
}

/// `ARG name[=default] ...`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Arg {
    /// The arguments declared, in order.
    pub definitions: Vec<ArgDefinition>,
}

/// One declared build argument.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArgDefinition {
    /// The argument name.
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
    /// The destination path, unexpanded.
    pub dest: String,
    /// `--from=`: a stage name, stage index or image; `None` for the build context.
    pub from: Option<String>,
    /// `--chown=user[:group]`, unexpanded.
    pub chown: Option<String>,
    /// `--chmod=` (octal or symbolic), unexpanded.
    pub chmod: Option<String>,
    /// `--link`: copy into an independent layer.
    pub link: bool,
    /// `--parents`: keep the source paths' parent directories.
    pub parents: bool,
    /// `--exclude=` patterns, in order.
    pub exclude: Vec<String>,
}

/// `ADD`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Add {
    /// Source paths or URLs, unexpanded.
    pub sources: Vec<String>,
    /// Heredoc sources, in order.
    pub inline: Vec<InlineSource>,
    /// The destination path, unexpanded.
    pub dest: String,
    /// `--chown=user[:group]`, unexpanded.
    pub chown: Option<String>,
    /// `--chmod=` (octal or symbolic), unexpanded.
    pub chmod: Option<String>,
    /// `--link`: copy into an independent layer.
    pub link: bool,
    /// `--keep-git-dir`, if given.
    pub keep_git_dir: Option<bool>,
    /// `--checksum=` of the downloaded source.
    pub checksum: Option<String>,
    /// `--unpack`, if given.
    pub unpack: Option<bool>,
    /// `--exclude=` patterns, in order.
    pub exclude: Vec<String>,
}

/// `WORKDIR`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Workdir {
    /// The directory, unexpanded.
    pub path: String,
}

/// `USER`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    /// The user, unexpanded (`name`, `uid`, `uid:gid`, ...).
    pub user: String,
}

/// `VOLUME` (paths trimmed, never empty).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Volume {
    /// The mount points, unexpanded.
    pub paths: Vec<String>,
}

/// `EXPOSE`: ports sorted as BuildKit sorts them (byte order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Expose {
    /// The ports (`80`, `53/udp`), unexpanded.
    pub ports: Vec<String>,
}

/// `STOPSIGNAL`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StopSignal {
    /// The signal name or number, unexpanded.
    pub signal: String,
}

/// `HEALTHCHECK`. In JSON: `"mode": "none"` or `"mode": "check"` plus the
/// config fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum Healthcheck {
    /// `HEALTHCHECK NONE`: disable any inherited check.
    None,
    /// A check to run.
    Check(HealthcheckConfig),
}

/// The image-config health check. Durations are nanoseconds; 0 means
/// "not set" (inherit the default), as in the OCI/Docker config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HealthcheckConfig {
    /// `["CMD", args...]` (exec form) or `["CMD-SHELL", command]`.
    pub test: Vec<String>,
    /// `--interval`: time between checks.
    pub interval_ns: u64,
    /// `--timeout`: time before a check counts as failed.
    pub timeout_ns: u64,
    /// `--start-period`: grace period after start.
    pub start_period_ns: u64,
    /// `--start-interval`: time between checks during the start period.
    pub start_interval_ns: u64,
    /// `--retries`: consecutive failures before unhealthy (0: default).
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
    /// The maintainer, as written.
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
