//! A subset of Go's `text/template` for `--format`, evaluated over the JSON
//! form of what a command prints (field names as in that JSON).
//!
//! Supported: literal text; `{{.}}`, `{{.A.B}}` field/map-key paths;
//! `{{json X}}`, `{{index X KEY...}}`, `{{join X "sep"}}`, `{{len X}}`,
//! `{{upper X}}`, `{{lower X}}`; `{{-`/`-}}` whitespace trimming. Values
//! print as Go's `fmt` prints them: slices `[a b]`, maps `map[k:v]` (keys
//! sorted), structs `{v1 v2}`, nil slices `[]`, nil maps `map[]`, other
//! nils `<nil>`, a missing map key `<no value>`. Not supported: `range`,
//! `if`, variables, pipes (`|`); struct fields print in JSON key order.

use serde_json::Value;

/// A template error, worded like Go's.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TemplateError {
    #[error("template parsing error: {0}")]
    Parse(String),
    #[error("template: executing at <{0}>: {1}")]
    Exec(String, String),
}

/// Fields docker declares as maps (printed `map[...]`).
const MAP_FIELDS: &[&str] = &[
    "Labels",
    "ExposedPorts",
    "Volumes",
    "Annotations",
    "Options",
];
/// Fields docker declares as slices (nil prints `[]`).
const SLICE_FIELDS: &[&str] = &[
    "Cmd",
    "Entrypoint",
    "Env",
    "Shell",
    "OnBuild",
    "RepoTags",
    "RepoDigests",
    "Layers",
];

#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Text(String),
    Action(Vec<Arg>),
}

#[derive(Debug, Clone, PartialEq)]
enum Arg {
    Word(String),
    Path(Vec<String>),
    Str(String),
    Int(i64),
}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    pieces: Vec<Piece>,
}

impl Template {
    pub fn parse(src: &str) -> Result<Template, TemplateError> {
        let mut pieces = Vec::new();
        let mut rest = src;
        while let Some(start) = rest.find("{{") {
            let mut text = rest[..start].to_string();
            let after = &rest[start + 2..];
            let end = after
                .find("}}")
                .ok_or_else(|| TemplateError::Parse(format!("unclosed action in {src:?}")))?;
            let mut inner = &after[..end];
            if let Some(i) = inner.strip_prefix('-') {
                inner = i;
                text = text.trim_end().to_string();
            }
            let mut trim_next = false;
            if let Some(i) = inner.strip_suffix('-') {
                inner = i;
                trim_next = true;
            }
            if !text.is_empty() {
                pieces.push(Piece::Text(text));
            }
            pieces.push(Piece::Action(parse_args(inner)?));
            rest = &after[end + 2..];
            if trim_next {
                rest = rest.trim_start();
            }
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_string()));
        }
        Ok(Template { pieces })
    }

    /// Renders against `data`.
    pub fn render(&self, data: &Value) -> Result<String, TemplateError> {
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Action(args) => out.push_str(&eval(args, data)?.print()),
            }
        }
        Ok(out)
    }
}

fn parse_args(inner: &str) -> Result<Vec<Arg>, TemplateError> {
    let mut args = Vec::new();
    let mut chars = inner.trim().chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        if c == '"' {
            chars.next();
            let mut s = String::new();
            loop {
                match chars.next() {
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some('n') => s.push('\n'),
                        Some('t') => s.push('\t'),
                        Some(o) => s.push(o),
                        None => {
                            return Err(TemplateError::Parse("unterminated quoted string".into()))
                        }
                    },
                    Some(o) => s.push(o),
                    None => return Err(TemplateError::Parse("unterminated quoted string".into())),
                }
            }
            args.push(Arg::Str(s));
            continue;
        }
        let mut w = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() {
                break;
            }
            w.push(c);
            chars.next();
        }
        if w == "|" || w.starts_with('$') || w.starts_with('(') {
            return Err(TemplateError::Parse(format!("unsupported template syntax {w:?} (pipes, variables and parentheses are not supported)")));
        }
        if let Some(path) = w.strip_prefix('.') {
            let comps = if path.is_empty() {
                Vec::new()
            } else {
                path.split('.').map(str::to_string).collect()
            };
            args.push(Arg::Path(comps));
        } else if let Ok(n) = w.parse() {
            args.push(Arg::Int(n));
        } else {
            args.push(Arg::Word(w));
        }
    }
    if args.is_empty() {
        return Err(TemplateError::Parse("missing value for command".into()));
    }
    Ok(args)
}

/// A value with what Go would know about its declared type.
#[derive(Debug, Clone)]
enum Val {
    Json(Value, Kind),
    NoValue,
    Text(String),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Map,
    Slice,
    Other,
}

fn kind_of(field: Option<&str>) -> Kind {
    match field {
        Some(f) if MAP_FIELDS.contains(&f) => Kind::Map,
        Some(f) if SLICE_FIELDS.contains(&f) => Kind::Slice,
        _ => Kind::Other,
    }
}

impl Val {
    fn print(&self) -> String {
        match self {
            Val::Json(v, k) => go_fmt(v, *k),
            Val::NoValue => "<no value>".into(),
            Val::Text(s) => s.clone(),
        }
    }
}

fn go_fmt(v: &Value, kind: Kind) -> String {
    match v {
        Value::Null => match kind {
            Kind::Map => "map[]".into(),
            Kind::Slice => "[]".into(),
            Kind::Other => "<nil>".into(),
        },
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(a) => {
            let items: Vec<String> = a.iter().map(|x| go_fmt(x, Kind::Other)).collect();
            format!("[{}]", items.join(" "))
        }
        Value::Object(o) => {
            if kind == Kind::Map {
                let items: Vec<String> = o
                    .iter()
                    .map(|(k, x)| format!("{k}:{}", go_fmt(x, Kind::Other)))
                    .collect();
                format!("map[{}]", items.join(" "))
            } else {
                let items: Vec<String> =
                    o.iter().map(|(k, x)| go_fmt(x, kind_of(Some(k)))).collect();
                format!("{{{}}}", items.join(" "))
            }
        }
    }
}

fn arg_value(arg: &Arg, data: &Value) -> Result<Val, TemplateError> {
    match arg {
        Arg::Str(s) => Ok(Val::Text(s.clone())),
        Arg::Int(n) => Ok(Val::Json(Value::from(*n), Kind::Other)),
        Arg::Word(w) => Err(TemplateError::Exec(
            w.clone(),
            format!("function {w:?} not defined"),
        )),
        Arg::Path(comps) => {
            let mut cur = data;
            let mut kind = Kind::Other;
            for (i, c) in comps.iter().enumerate() {
                let shown = format!(".{}", comps[..=i].join("."));
                match cur {
                    Value::Object(o) => match o.get(c) {
                        Some(v) => {
                            cur = v;
                            kind = if kind == Kind::Map {
                                Kind::Other
                            } else {
                                kind_of(Some(c))
                            };
                        }
                        None if kind == Kind::Map => return Ok(Val::NoValue),
                        None => {
                            return Err(TemplateError::Exec(
                                shown,
                                format!("can't evaluate field {c}"),
                            ));
                        }
                    },
                    Value::Null if kind == Kind::Map => return Ok(Val::NoValue),
                    _ => {
                        return Err(TemplateError::Exec(
                            shown,
                            format!("can't evaluate field {c} in a non-struct value"),
                        ));
                    }
                }
            }
            Ok(Val::Json(cur.clone(), kind))
        }
    }
}

fn eval(args: &[Arg], data: &Value) -> Result<Val, TemplateError> {
    let Arg::Word(f) = &args[0] else {
        if args.len() > 1 {
            return Err(TemplateError::Parse(
                "can't give argument to non-function".into(),
            ));
        }
        return arg_value(&args[0], data);
    };
    let need = |n: usize| -> Result<(), TemplateError> {
        if args.len() - 1 != n {
            return Err(TemplateError::Exec(
                f.clone(),
                format!(
                    "wrong number of args for {f}: want {n} got {}",
                    args.len() - 1
                ),
            ));
        }
        Ok(())
    };
    let json_of = |v: Val| -> Value {
        match v {
            Val::Json(j, _) => j,
            Val::Text(s) => Value::String(s),
            Val::NoValue => Value::Null,
        }
    };
    match f.as_str() {
        "json" => {
            need(1)?;
            let v = json_of(arg_value(&args[1], data)?);
            Ok(Val::Text(serde_json::to_string(&v).unwrap_or_default()))
        }
        "len" => {
            need(1)?;
            let n = match json_of(arg_value(&args[1], data)?) {
                Value::Array(a) => a.len(),
                Value::Object(o) => o.len(),
                Value::String(s) => s.len(),
                Value::Null => 0,
                _ => {
                    return Err(TemplateError::Exec(
                        f.clone(),
                        "len of a non-collection".into(),
                    ))
                }
            };
            Ok(Val::Text(n.to_string()))
        }
        "upper" | "lower" => {
            need(1)?;
            let s = arg_value(&args[1], data)?.print();
            Ok(Val::Text(if f == "upper" {
                s.to_uppercase()
            } else {
                s.to_lowercase()
            }))
        }
        "join" => {
            need(2)?;
            let sep = arg_value(&args[2], data)?.print();
            match json_of(arg_value(&args[1], data)?) {
                Value::Array(a) => Ok(Val::Text(
                    a.iter()
                        .map(|x| go_fmt(x, Kind::Other))
                        .collect::<Vec<_>>()
                        .join(&sep),
                )),
                Value::Null => Ok(Val::Text(String::new())),
                _ => Err(TemplateError::Exec(f.clone(), "join of a non-slice".into())),
            }
        }
        "index" => {
            if args.len() < 3 {
                return Err(TemplateError::Exec(
                    f.clone(),
                    "index needs a collection and a key".into(),
                ));
            }
            let mut cur = json_of(arg_value(&args[1], data)?);
            for k in &args[2..] {
                cur = match (cur, k) {
                    (Value::Array(a), Arg::Int(i)) => {
                        a.get(*i as usize).cloned().ok_or_else(|| {
                            TemplateError::Exec(f.clone(), format!("index out of range: {i}"))
                        })?
                    }
                    (Value::Object(o), Arg::Str(s)) => match o.get(s) {
                        Some(v) => v.clone(),
                        None => return Ok(Val::NoValue),
                    },
                    (Value::Null, _) => return Ok(Val::NoValue),
                    _ => {
                        return Err(TemplateError::Exec(
                            f.clone(),
                            "cannot index this value".into(),
                        ))
                    }
                };
            }
            Ok(Val::Json(cur, Kind::Other))
        }
        other => Err(TemplateError::Exec(
            other.to_string(),
            format!("function {other:?} not defined"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(tpl: &str, expected: &str) {
        let data = serde_json::json!({
            "Id": "sha256:abc",
            "RepoTags": ["busybox:latest", "bb:1"],
            "Size": 4261550,
            "Config": {
                "Cmd": ["sh", "-c", "echo"],
                "Entrypoint": null,
                "Env": ["PATH=/bin"],
                "Labels": {"b": "2", "a": "1"},
                "ExposedPorts": {"80/tcp": {}},
                "Healthcheck": null,
                "User": ""
            },
            "RootFS": {"Type": "layers", "Layers": ["sha256:l1"]}
        });
        let got = Template::parse(tpl).and_then(|t| t.render(&data));
        let got = match got {
            Ok(s) => s,
            Err(e) => format!("ERR {e}"),
        };
        assert_eq!(got, expected, "template {tpl:?}");
    }

    #[test]
    fn renders_like_go_templates() {
        check("{{.Id}}", "sha256:abc");
        check("id={{.Id}} size={{.Size}}", "id=sha256:abc size=4261550");
        check("{{.Config.Cmd}}", "[sh -c echo]");
        check("{{.Config.Entrypoint}}", "[]");
        check("{{.Config.Labels}}", "map[a:1 b:2]");
        check("{{.Config.Labels.a}}", "1");
        check("{{.Config.Labels.zz}}", "<no value>");
        check("{{.Config.ExposedPorts}}", "map[80/tcp:{}]");
        check("{{.Config.Healthcheck}}", "<nil>");
        check("{{json .Config.Cmd}}", r#"["sh","-c","echo"]"#);
        check(
            "{{json .RootFS}}",
            r#"{"Layers":["sha256:l1"],"Type":"layers"}"#,
        );
        check("{{index .RepoTags 1}}", "bb:1");
        check(r#"{{index .Config.Labels "b"}}"#, "2");
        check(r#"{{join .RepoTags ","}}"#, "busybox:latest,bb:1");
        check("{{len .RepoTags}}", "2");
        check("{{upper .Config.Labels.a}}x", "1x");
        check("a {{- .Id -}} b", "asha256:abcb");
        check("{{.RootFS}}", "{[sha256:l1] layers}");
    }

    #[test]
    fn reports_errors() {
        check(
            "{{.Nope}}",
            "ERR template: executing at <.Nope>: can't evaluate field Nope",
        );
        check(
            "{{.Id",
            "ERR template parsing error: unclosed action in \"{{.Id\"",
        );
        check(
            "{{frob .Id}}",
            "ERR template: executing at <frob>: function \"frob\" not defined",
        );
        check("{{.Id | json}}", "ERR template parsing error: unsupported template syntax \"|\" (pipes, variables and parentheses are not supported)");
    }
}
