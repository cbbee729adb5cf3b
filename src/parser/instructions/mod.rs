//! Raw nodes → typed instructions and stages: BuildKit's
//! `instructions.Parse` / `ParseInstruction` (instructions/parse.go).
//!
//! Checks happen in BuildKit's order per instruction (argument counts, then
//! flags, then values), so the first error reported is the one BuildKit
//! reports. Some BuildKit leniencies are kept on purpose: `ARG` and
//! `STOPSIGNAL` ignore flags, `HEALTHCHECK NONE` ignores flags, and an
//! ONBUILD trigger is only checked for being ONBUILD, FROM or MAINTAINER.

use super::ast::*;
use super::error::{ErrorKind, ParseError};
use super::flags::{suggest, FlagKind, Flags};
use super::heredoc::{chomp, marker};
use super::node::{Node, RawDockerfile};
use super::position::Position;
use super::text::{go_lossy, to_lower, trim_space, KEYWORDS};

type Failure = (ErrorKind, Position);

const NO_FLAGS: &[(&str, FlagKind)] = &[];
const COPY_FLAGS: &[(&str, FlagKind)] = &[
    ("chown", FlagKind::String),
    ("from", FlagKind::String),
    ("chmod", FlagKind::String),
    ("link", FlagKind::Bool),
    ("exclude", FlagKind::Strings),
    ("parents", FlagKind::Bool),
];
const ADD_FLAGS: &[(&str, FlagKind)] = &[
    ("chown", FlagKind::String),
    ("chmod", FlagKind::String),
    ("link", FlagKind::Bool),
    ("keep-git-dir", FlagKind::Bool),
    ("checksum", FlagKind::String),
    ("unpack", FlagKind::Bool),
    ("exclude", FlagKind::Strings),
];
const RUN_FLAGS: &[(&str, FlagKind)] = &[
    ("device", FlagKind::Strings),
    ("mount", FlagKind::Strings),
    ("network", FlagKind::String),
    ("security", FlagKind::String),
];
const FROM_FLAGS: &[(&str, FlagKind)] = &[("platform", FlagKind::String)];

/// What one node turns into.
enum Parsed {
    Stage(Stage),
    Instruction(InstructionKind),
}

/// Checks every node and groups instructions into stages.
pub fn build(raw: &RawDockerfile) -> Result<Dockerfile, ParseError> {
    let mut global_args = Vec::new();
    let mut stages: Vec<Stage> = Vec::new();
    for node in &raw.nodes {
        let fail = |(kind, pos): Failure| ParseError::new(&raw.file, &raw.source, pos, kind);
        let span = span_of(node);
        match parse_node(node, &span).map_err(fail)? {
            Parsed::Stage(stage) => stages.push(stage),
            Parsed::Instruction(InstructionKind::Arg(arg)) if stages.is_empty() => {
                global_args.push(GlobalArg { span, arg });
            }
            Parsed::Instruction(kind) => match stages.last_mut() {
                Some(stage) => stage.instructions.push(Instruction { span, kind }),
                None => return Err(fail((ErrorKind::NoStage, node.position))),
            },
        }
    }
    Ok(Dockerfile {
        directives: raw.directives.clone(),
        escape: raw.escape,
        global_args,
        stages,
        warnings: raw.warnings.clone(),
    })
}

fn span_of(node: &Node) -> Span {
    Span {
        line: node.position.line,
        column: node.position.column,
        end_line: node.end_line,
        original: go_lossy(trim_space(&node.original)).into_owned(),
    }
}

fn text(bytes: &[u8]) -> String {
    go_lossy(bytes).into_owned()
}

/// BuildKit's `getComment`: a comment line `name description` above the
/// instruction describes `name`.
fn comment_for(comments: &[String], name: &str) -> Option<String> {
    if name.is_empty() {
        return None;
    }
    let prefix = format!("{name} ");
    comments
        .iter()
        .find_map(|c| c.strip_prefix(&prefix).map(str::to_string))
        .filter(|c| !c.is_empty())
}

fn parse_node(node: &Node, span: &Span) -> Result<Parsed, Failure> {
    let stmt = &node.statement;
    let args: Vec<String> = stmt.args.iter().map(|a| text(a)).collect();
    let at = node.position;
    let args_at = stmt.args_position;
    let fail = |msg: String| (ErrorKind::Instruction(msg), at);
    let flags = |spec| Flags::parse(spec, &stmt.flags);
    let kind = match stmt.keyword().unwrap_or("") {
        "from" => return from(node, &args, span).map(Parsed::Stage),
        "env" => {
            flags(NO_FLAGS)?;
            InstructionKind::Env(Env {
                vars: key_values(&args, "ENV").map_err(fail)?,
            })
        }
        "label" => {
            flags(NO_FLAGS)?;
            InstructionKind::Label(Label {
                labels: key_values(&args, "LABEL").map_err(fail)?,
            })
        }
        "maintainer" => {
            let name = exactly_one(&args, "MAINTAINER").map_err(fail)?;
            flags(NO_FLAGS)?;
            InstructionKind::Maintainer(Maintainer { name })
        }
        "workdir" => {
            let path = exactly_one(&args, "WORKDIR").map_err(fail)?;
            flags(NO_FLAGS)?;
            InstructionKind::Workdir(Workdir { path })
        }
        "user" => {
            let user = exactly_one(&args, "USER").map_err(fail)?;
            flags(NO_FLAGS)?;
            InstructionKind::User(User { user })
        }
        "stopsignal" => InstructionKind::StopSignal(StopSignal {
            signal: exactly_one(&args, "STOPSIGNAL").map_err(fail)?,
        }),
        "expose" => {
            if args.is_empty() {
                return Err(fail(at_least_one("EXPOSE")));
            }
            flags(NO_FLAGS)?;
            let mut ports = args;
            ports.sort();
            InstructionKind::Expose(Expose { ports })
        }
        "volume" => InstructionKind::Volume(volume(node, &args)?),
        "arg" => InstructionKind::Arg(arg(&args, &node.comments).map_err(fail)?),
        "shell" => {
            flags(NO_FLAGS)?;
            if args.is_empty() {
                return Err(fail(at_least_one("SHELL")));
            }
            if !stmt.json {
                return Err((ErrorKind::NotJson("SHELL".into()), args_at));
            }
            InstructionKind::Shell(Shell { shell: args })
        }
        "cmd" => {
            flags(NO_FLAGS)?;
            InstructionKind::Cmd(Cmd {
                command: command_line(args, stmt.json),
            })
        }
        "entrypoint" => {
            flags(NO_FLAGS)?;
            InstructionKind::Entrypoint(Entrypoint {
                command: command_line(args, stmt.json),
            })
        }
        "run" => InstructionKind::Run(run(node, args)?),
        "copy" => InstructionKind::Copy(copy(node, &args)?),
        "add" => InstructionKind::Add(add(node, &args)?),
        "healthcheck" => InstructionKind::Healthcheck(super::healthcheck::parse(
            &args,
            stmt.json,
            &stmt.flags,
            at,
        )?),
        "onbuild" => InstructionKind::Onbuild(onbuild(node)?),
        _ => {
            let name = text(&stmt.name);
            return Err((
                ErrorKind::UnknownInstruction {
                    suggestion: suggest(&name, KEYWORDS.into_iter(), false),
                    name,
                },
                at,
            ));
        }
    };
    Ok(Parsed::Instruction(kind))
}

/// VOLUME: at least one path, no flags; each path trimmed of whitespace
/// and none empty (the error points at the arguments).
fn volume(node: &Node, args: &[String]) -> Result<Volume, Failure> {
    let stmt = &node.statement;
    if args.is_empty() {
        return Err((
            ErrorKind::Instruction(at_least_one("VOLUME")),
            node.position,
        ));
    }
    Flags::parse(NO_FLAGS, &stmt.flags)?;
    let mut paths = Vec::with_capacity(args.len());
    for v in args {
        let v = v.trim_matches(char::is_whitespace);
        if v.is_empty() {
            return Err((
                ErrorKind::Instruction("VOLUME specified can not be an empty string".into()),
                stmt.args_position,
            ));
        }
        paths.push(v.to_string());
    }
    Ok(Volume { paths })
}

/// COPY: a destination after at least one source (the arguments are
/// checked before the flags), COPY's flags, heredoc sources inline.
fn copy(node: &Node, args: &[String]) -> Result<Copy, Failure> {
    let fail = |msg: String| (ErrorKind::Instruction(msg), node.position);
    if args.len() < 2 {
        return Err(fail(no_destination("COPY")));
    }
    let f = Flags::parse(COPY_FLAGS, &node.statement.flags)?;
    let (sources, inline, dest) = sources_and_dest(node, args, "COPY").map_err(fail)?;
    Ok(Copy {
        sources,
        inline,
        dest,
        from: f.string("from"),
        chown: f.string("chown"),
        chmod: f.string("chmod"),
        link: f.bool("link").unwrap_or(false),
        parents: f.bool("parents").unwrap_or(false),
        exclude: f.strings("exclude"),
    })
}

/// ADD: as COPY, with ADD's flags (no `--from`, `--parents`; git and
/// archive options instead).
fn add(node: &Node, args: &[String]) -> Result<Add, Failure> {
    let fail = |msg: String| (ErrorKind::Instruction(msg), node.position);
    if args.len() < 2 {
        return Err(fail(no_destination("ADD")));
    }
    let f = Flags::parse(ADD_FLAGS, &node.statement.flags)?;
    let (sources, inline, dest) = sources_and_dest(node, args, "ADD").map_err(fail)?;
    Ok(Add {
        sources,
        inline,
        dest,
        chown: f.string("chown"),
        chmod: f.string("chmod"),
        link: f.bool("link").unwrap_or(false),
        keep_git_dir: f.bool("keep-git-dir"),
        checksum: f.string("checksum"),
        unpack: f.bool("unpack"),
        exclude: f.strings("exclude"),
    })
}

fn at_least_one(cmd: &str) -> String {
    format!("{cmd} requires at least one argument")
}

fn no_destination(cmd: &str) -> String {
    format!("{cmd} requires at least two arguments, but only one was provided. Destination could not be determined")
}

fn exactly_one(args: &[String], cmd: &str) -> Result<String, String> {
    match args {
        [one] => Ok(one.clone()),
        _ => Err(format!("{cmd} requires exactly one argument")),
    }
}

/// `handleJSONArgs`: exec form as is, shell form joined into one string.
fn command_line(args: Vec<String>, json: bool) -> CommandLine {
    if json {
        CommandLine::Exec(args)
    } else {
        CommandLine::Shell(args.join(" "))
    }
}

/// `parseKvps`: key, value, separator triplets.
fn key_values(args: &[String], cmd: &str) -> Result<Vec<KeyValue>, String> {
    if args.is_empty() {
        return Err(at_least_one(cmd));
    }
    if !args.len().is_multiple_of(3) {
        return Err(format!("bad input to {cmd}, too many arguments"));
    }
    args.chunks(3)
        .map(|kv| {
            if kv[0].is_empty() {
                return Err(format!("{cmd} names can not be blank"));
            }
            Ok(KeyValue {
                key: kv[0].clone(),
                value: kv[1].clone(),
                legacy: kv[2].is_empty(),
            })
        })
        .collect()
}

fn arg(args: &[String], comments: &[String]) -> Result<Arg, String> {
    if args.is_empty() {
        return Err(at_least_one("ARG"));
    }
    let mut definitions = Vec::with_capacity(args.len());
    for a in args {
        let (name, default) = match a.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (a.clone(), None),
        };
        if default.is_some() && name.is_empty() {
            return Err("ARG names can not be blank".into());
        }
        definitions.push(ArgDefinition {
            comment: comment_for(comments, &name),
            name,
            default,
        });
    }
    Ok(Arg { definitions })
}

/// BuildKit's `validStageName`: `^[a-z][a-z0-9-_.]*$` on the lower-cased name.
fn valid_stage_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z'))
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '-' | '_' | '.'))
}

/// Go's `strings.EqualFold(s, "as")`: `ſ` (U+017F) folds to `s`.
fn is_as(word: &str) -> bool {
    let mut c = word.chars();
    matches!(
        (c.next(), c.next(), c.next()),
        (Some('a' | 'A'), Some('s' | 'S' | 'ſ'), None)
    )
}

fn from(node: &Node, args: &[String], span: &Span) -> Result<Stage, Failure> {
    let at = node.position;
    let name = match args {
        [_, keyword, name] if is_as(keyword) => {
            let lower = String::from_utf8_lossy(&to_lower(name.as_bytes())).into_owned();
            if !valid_stage_name(&lower) {
                return Err((
                    ErrorKind::Instruction(format!(
                        "invalid name for build stage: {}, name can't start with a number or contain symbols",
                        super::dump::go_quote(name.as_bytes())
                    )),
                    node.statement.args_position,
                ));
            }
            Some(lower)
        }
        [_] => None,
        _ => {
            return Err((
                ErrorKind::Instruction("FROM requires either one or three arguments".into()),
                at,
            ))
        }
    };
    let flags = Flags::parse(FROM_FLAGS, &node.statement.flags)?;
    Ok(Stage {
        base: args[0].clone(),
        comment: name.as_deref().and_then(|n| comment_for(&node.comments, n)),
        name,
        platform: flags.string("platform"),
        span: span.clone(),
        instructions: Vec::new(),
    })
}

fn run(node: &Node, args: Vec<String>) -> Result<Run, Failure> {
    let stmt = &node.statement;
    let flags = Flags::parse(RUN_FLAGS, &stmt.flags)?;
    let flag_at = |name: &str| {
        stmt.flags
            .iter()
            .rev()
            .find(|f| f.text.starts_with(&format!("--{name}")))
            .map_or(node.position, |f| f.position)
    };
    let network = match flags.raw_string("network").as_deref() {
        None | Some("default") => NetworkMode::Default,
        Some("none") => NetworkMode::None,
        Some("host") => NetworkMode::Host,
        Some(other) => {
            return Err((
                ErrorKind::Instruction(format!(
                    "invalid network mode {}",
                    super::dump::go_quote(other.as_bytes())
                )),
                flag_at("network"),
            ))
        }
    };
    let security = match flags.raw_string("security").as_deref() {
        None | Some("sandbox") => SecurityMode::Sandbox,
        Some("insecure") => SecurityMode::Insecure,
        Some(other) => {
            return Err((
                ErrorKind::Instruction(format!(
                    "security {} is not valid",
                    super::dump::go_quote(other.as_bytes())
                )),
                flag_at("security"),
            ))
        }
    };
    Ok(Run {
        command: command_line(args, stmt.json),
        heredocs: node.heredocs.clone(),
        mounts: flags.strings("mount"),
        network,
        security,
        devices: flags.strings("device"),
    })
}

/// `parseSourcesAndDest`: heredoc markers among the sources become inline
/// sources; a heredoc destination is an error.
fn sources_and_dest(
    node: &Node,
    args: &[String],
    cmd: &str,
) -> Result<(Vec<String>, Vec<InlineSource>, String), String> {
    let (dest, srcs) = match args.split_last() {
        Some((d, s)) => (d.clone(), s),
        None => return Err(no_destination(cmd)),
    };
    if marker(&dest).is_some() {
        return Err(format!("{cmd} cannot accept a heredoc as a destination"));
    }
    let mut sources = Vec::new();
    let mut inline = Vec::new();
    for src in srcs {
        match marker(src) {
            Some(m) => {
                // Last body with that name wins, as with BuildKit's map.
                let content = node
                    .heredocs
                    .iter()
                    .rev()
                    .find(|h| h.name == m.name)
                    .map(|h| h.content.clone())
                    .unwrap_or_default();
                inline.push(InlineSource {
                    data: if m.chomp { chomp(&content) } else { content },
                    path: m.name,
                    expand: m.expand,
                });
            }
            None => sources.push(src.clone()),
        }
    }
    Ok((sources, inline, dest))
}

fn onbuild(node: &Node) -> Result<Onbuild, Failure> {
    let at = node.position;
    let Some(first) = node.triggers.first() else {
        return Err((ErrorKind::Instruction(at_least_one("ONBUILD")), at));
    };
    Flags::parse(NO_FLAGS, &node.statement.flags)?;
    let trigger = go_lossy(trim_space(&first.name)).to_uppercase();
    let trigger_at = node.statement.args_position;
    match trigger.as_str() {
        "ONBUILD" => {
            return Err((
                ErrorKind::Instruction(
                    "chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".into(),
                ),
                trigger_at,
            ))
        }
        "MAINTAINER" | "FROM" => {
            return Err((
                ErrorKind::Instruction(format!("{trigger} isn't allowed as an ONBUILD trigger")),
                trigger_at,
            ))
        }
        _ => {}
    }
    // `(?i)^\s*ONBUILD\s*` removed from the original line (Go `\s` is
    // [\t\n\f\r ]).
    let is_re_space = |b: &u8| matches!(b, b'\t' | b'\n' | 0x0C | b'\r' | b' ');
    let mut rest: &[u8] = &node.original;
    let lead = rest.iter().take_while(|b| is_re_space(b)).count();
    if rest.len() >= lead + 7 && rest[lead..lead + 7].eq_ignore_ascii_case(b"ONBUILD") {
        rest = &rest[lead + 7..];
        let sp = rest.iter().take_while(|b| is_re_space(b)).count();
        rest = &rest[sp..];
    }
    let mut expression = rest.to_vec();
    for h in &node.heredocs {
        expression.push(b'\n');
        expression.extend_from_slice(&h.content);
        expression.extend_from_slice(h.name.as_bytes());
    }
    Ok(Onbuild {
        trigger,
        expression: text(&expression),
    })
}

#[cfg(test)]
mod tests;
