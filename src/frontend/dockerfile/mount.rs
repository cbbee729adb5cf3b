//! `RUN --mount=` values, parsed as BuildKit's `instructions.ParseMount`
//! does: comma-separated `key=value` fields (CSV quoting allowed), every
//! value variable-expanded, BuildKit's defaults per type.
//!
//! Secrets follow `dispatchSecret` (Dockerfile syntax 1.10+): the id is
//! `source=`, else `id=`, else the target's base name; `env=` puts the
//! secret in that variable instead of a file, or as well when a `target=`
//! is given; only without `env=` does the file default to
//! `/run/secrets/<id>`.
//!
//! SSH agents follow `dispatchSSH`: id `default` unless given, no source,
//! the target left to the lowering when not given.

use crate::solver::CacheSharing;

/// What kind of mount `type=` asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountType {
    Bind,
    Cache,
    Tmpfs,
    Secret,
    Ssh,
}

/// One parsed `--mount`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountSpec {
    /// `type=`.
    pub kind: MountType,
    /// Where it appears in the container (defaulted for secrets); empty
    /// for a secret given only as an environment variable.
    pub target: String,
    /// Path inside the source (`source=`); `None` means its root.
    pub source: Option<String>,
    /// `from=`: a stage or image providing the content.
    pub from: Option<String>,
    /// `ro`/`rw` (binds default to read-only).
    pub readonly: bool,
    /// Cache or secret id.
    pub id: Option<String>,
    /// Cache `sharing=`.
    pub sharing: CacheSharing,
    /// `mode=` (octal) of a cache dir or secret file.
    pub mode: Option<u32>,
    /// `uid=` owner of a cache dir or secret file.
    pub uid: Option<u32>,
    /// `gid=` group of a cache dir or secret file.
    pub gid: Option<u32>,
    /// Secret `required`: fail when it is not given.
    pub required: bool,
    /// Secret `env=`: the environment variable that gets its value.
    pub env: Option<String>,
    /// tmpfs size in bytes.
    pub size: Option<u64>,
}

/// Parses one `--mount` value; `expand` expands a value's variables.
///
/// In steps: the type first, wherever `type=` stands, since defaults
/// depend on it; then every field; then what the type fills in or
/// requires; then fields the type does not take are refused.
pub fn parse_mount(
    value: &str,
    expand: &dyn Fn(&str) -> Result<String, String>,
) -> Result<MountSpec, String> {
    let fields = split_csv(value)?;
    let kind = mount_type(&fields, expand)?;
    let mut m = MountSpec {
        kind,
        target: String::new(),
        source: None,
        from: None,
        readonly: kind == MountType::Bind,
        id: None,
        sharing: CacheSharing::Shared,
        mode: None,
        uid: None,
        gid: None,
        required: false,
        env: None,
        size: None,
    };
    for field in &fields {
        set_field(&mut m, field, expand)?;
    }
    complete_for_type(&mut m)?;
    refuse_fields_of_other_types(&m)?;
    if !m.target.starts_with('/') {
        // BuildKit resolves a relative target against the working
        // directory; the caller does that.
        m.target = m.target.trim_start_matches("./").to_string();
    }
    Ok(m)
}

/// The mount's `type=` (the last one given; `bind` without one), read
/// before the other fields wherever it stands.
fn mount_type(
    fields: &[String],
    expand: &dyn Fn(&str) -> Result<String, String>,
) -> Result<MountType, String> {
    let mut kind = MountType::Bind;
    for field in fields {
        if let Some(("type", v)) = field.split_once('=').map(|(k, v)| (k.trim(), v)) {
            kind = match expand(v)?.to_ascii_lowercase().as_str() {
                "bind" => MountType::Bind,
                "cache" => MountType::Cache,
                "tmpfs" => MountType::Tmpfs,
                "secret" => MountType::Secret,
                "ssh" => MountType::Ssh,
                other => return Err(format!("unsupported mount type {other:?}")),
            };
        }
    }
    Ok(kind)
}

/// Sets what one `key[=value]` field says (keys case-insensitive, the
/// value expanded); a flag without `=` is a boolean set to true.
fn set_field(
    m: &mut MountSpec,
    field: &str,
    expand: &dyn Fn(&str) -> Result<String, String>,
) -> Result<(), String> {
    let (key, raw) = match field.split_once('=') {
        Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v)),
        None => (field.trim().to_ascii_lowercase(), None),
    };
    let value = match raw {
        Some(v) => Some(expand(v)?),
        None => None,
    };
    let need = |key: &str| -> Result<String, String> {
        value
            .clone()
            .ok_or_else(|| format!("invalid field '{key}' must be a key=value pair"))
    };
    match key.as_str() {
        "type" => {}
        "target" | "dst" | "destination" => m.target = need(&key)?,
        "source" | "src" => m.source = Some(need(&key)?),
        "from" => m.from = Some(need(&key)?),
        "readonly" | "ro" => m.readonly = parse_bool(&key, value.as_deref())?,
        "readwrite" | "rw" => m.readonly = !parse_bool(&key, value.as_deref())?,
        "required" => m.required = parse_bool(&key, value.as_deref())?,
        "id" => m.id = Some(need(&key)?),
        "sharing" => {
            m.sharing = match need(&key)?.to_ascii_lowercase().as_str() {
                "shared" => CacheSharing::Shared,
                "private" => CacheSharing::Private,
                "locked" => CacheSharing::Locked,
                other => return Err(format!("unsupported sharing value {other:?}")),
            }
        }
        "mode" => {
            let v = need(&key)?;
            m.mode = Some(
                u32::from_str_radix(&v, 8).map_err(|_| format!("invalid value for mode: {v:?}"))?,
            );
        }
        "uid" => m.uid = Some(parse_id(&key, &need(&key)?)?),
        "gid" => m.gid = Some(parse_id(&key, &need(&key)?)?),
        "size" => m.size = Some(parse_size(&need(&key)?)?),
        "env" => m.env = Some(need(&key)?),
        other => return Err(format!("unexpected key '{other}' in '{field}'")),
    }
    Ok(())
}

/// What the type fills in or requires: a secret's id (from `source`, else
/// its target's base name) and default target `/run/secrets/<id>` (none
/// when it goes only to `env`); a cache's id defaults to its target;
/// every other type needs a target.
fn complete_for_type(m: &mut MountSpec) -> Result<(), String> {
    match m.kind {
        MountType::Secret => {
            if let Some(source) = m.source.take() {
                m.id = Some(source);
            }
            let id = match m.id.take().filter(|id| !id.is_empty()) {
                Some(id) => id,
                None if m.target.is_empty() => {
                    return Err("secret mount needs an id, a source or a target".into())
                }
                None => base_name(&m.target).to_string(),
            };
            if m.env.as_deref() == Some("") {
                return Err("secret mount env= needs a variable name".into());
            }
            if m.target.is_empty() && m.env.is_none() {
                m.target = format!("/run/secrets/{}", base_name(&id));
            }
            m.id = Some(id);
        }
        // moby/buildkit frontend/dockerfile/dockerfile2llb/convert_ssh.go
        // `dispatchSSH`: no source; an empty id is the client's `default`
        // agent; an empty target is filled in by the lowering
        // (`/run/buildkit/ssh_agent.N`, BuildKit's llb `ExecOp.Marshal`).
        MountType::Ssh => {
            if m.source.is_some() {
                return Err("ssh does not support source".into());
            }
            if m.id.as_deref().is_none_or(str::is_empty) {
                m.id = Some("default".into());
            }
        }
        _ if m.target.is_empty() => return Err("mount target is required".into()),
        MountType::Cache if m.id.as_deref().is_none_or(str::is_empty) => {
            m.id = Some(m.target.clone());
        }
        _ => {}
    }
    Ok(())
}

/// `env` is a secret's, `from` a bind's or cache's, `sharing` a cache's:
/// given to another type they are an error, not ignored.
fn refuse_fields_of_other_types(m: &MountSpec) -> Result<(), String> {
    if m.env.is_some() && m.kind != MountType::Secret {
        return Err("'env' is supported only for secret mounts".into());
    }
    if m.from.is_some() && !matches!(m.kind, MountType::Bind | MountType::Cache) {
        return Err("'from' is supported only for bind and cache mounts".into());
    }
    if m.kind != MountType::Cache && m.sharing != CacheSharing::Shared {
        return Err("'sharing' is supported only for cache mounts".into());
    }
    Ok(())
}

/// Go's `path.Base` for the non-empty paths a mount has.
fn base_name(path: &str) -> &str {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        return "/";
    }
    trimmed.rsplit('/').next().unwrap_or(trimmed)
}

fn parse_bool(key: &str, value: Option<&str>) -> Result<bool, String> {
    match value.map(str::to_ascii_lowercase).as_deref() {
        None | Some("true") | Some("1") => Ok(true),
        Some("false") | Some("0") => Ok(false),
        Some(other) => Err(format!("invalid value for {key}: {other:?}")),
    }
}

fn parse_id(key: &str, value: &str) -> Result<u32, String> {
    value
        .parse()
        .map_err(|_| format!("invalid value for {key}: {value:?}"))
}

/// A `size=` as BuildKit reads it (go-units `RAMInBytes`, see
/// [`crate::units`]), with BuildKit's message.
fn parse_size(value: &str) -> Result<u64, String> {
    crate::units::ram_in_bytes(value).ok_or_else(|| format!("invalid value for size: {value}"))
}

/// The mount's fields (Go's CSV rules, `crate::csv`), blank ones dropped.
fn split_csv(value: &str) -> Result<Vec<String>, String> {
    let fields =
        crate::csv::fields(value).map_err(|_| format!("unterminated quote in mount {value:?}"))?;
    Ok(fields
        .into_iter()
        .filter(|f| !f.trim().is_empty())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: &str) -> Result<MountSpec, String> {
        parse_mount(v, &|s| Ok(s.replace("$T", "/cache")))
    }

    #[test]
    fn defaults_per_type() {
        let b = parse("target=/src").unwrap();
        assert_eq!((b.kind, b.readonly), (MountType::Bind, true));
        let b = parse("type=bind,target=/src,rw,from=builder,source=/out").unwrap();
        assert_eq!(
            (b.readonly, b.from.as_deref(), b.source.as_deref()),
            (false, Some("builder"), Some("/out"))
        );
        let c = parse("type=cache,target=$T,sharing=locked,mode=0700,uid=1000").unwrap();
        assert_eq!(c.id.as_deref(), Some("/cache"));
        assert_eq!(c.target, "/cache");
        assert_eq!(
            (c.sharing, c.mode, c.uid),
            (CacheSharing::Locked, Some(0o700), Some(1000))
        );
        assert!(!c.readonly);
        let s = parse("type=secret,id=token").unwrap();
        assert_eq!(s.target, "/run/secrets/token");
        let s = parse("type=secret,target=/etc/key,required").unwrap();
        assert_eq!((s.id.as_deref(), s.required), (Some("key"), true));
        let t = parse("type=tmpfs,target=/t,size=64m").unwrap();
        assert_eq!(t.size, Some(64 << 20));
    }

    #[test]
    fn ssh_mounts_default_to_the_default_agent_and_no_target() {
        let m = parse("type=ssh").unwrap();
        assert_eq!(m.kind, MountType::Ssh);
        assert_eq!((m.id.as_deref(), m.target.as_str()), (Some("default"), ""));
        assert_eq!(
            (m.required, m.mode, m.uid, m.gid),
            (false, None, None, None)
        );
        let m = parse("type=ssh,id=gh,target=/a.sock,required,mode=0640,uid=1,gid=2").unwrap();
        assert_eq!(
            (m.id.as_deref(), m.target.as_str()),
            (Some("gh"), "/a.sock")
        );
        assert_eq!(
            (m.required, m.mode, m.uid, m.gid),
            (true, Some(0o640), Some(1), Some(2))
        );
    }

    #[test]
    fn tmpfs_sizes_read_as_go_units_ram_in_bytes() {
        assert_eq!(
            parse("type=tmpfs,target=/t,size=1.5k").unwrap().size,
            Some(1536)
        );
        let err = parse("type=tmpfs,target=/t,size=64mi").unwrap_err();
        assert_eq!(err, "invalid value for size: 64mi");
    }

    /// `value` parses as a secret with this id, target, env and required.
    #[track_caller]
    fn check_secret(value: &str, expected: (&str, &str, Option<&str>, bool)) {
        let m = parse(value).unwrap_or_else(|e| panic!("{value}: {e}"));
        assert_eq!(m.kind, MountType::Secret, "{value}");
        let got = (
            m.id.as_deref().unwrap_or_default(),
            m.target.as_str(),
            m.env.as_deref(),
            m.required,
        );
        assert_eq!(got, expected, "{value}");
    }

    #[test]
    fn secret_ids_targets_and_env() {
        let file = |id, target| (id, target, None, false);
        check_secret("type=secret,id=tok", file("tok", "/run/secrets/tok"));
        check_secret("type=secret,target=/etc/key", file("key", "/etc/key"));
        check_secret("type=secret,source=s,id=i", file("s", "/run/secrets/s"));
        check_secret("type=secret,id=a/b", file("a/b", "/run/secrets/b"));
        // env= alone: no file; with a target: both.
        check_secret(
            "type=secret,id=tok,env=TOKEN",
            ("tok", "", Some("TOKEN"), false),
        );
        check_secret(
            "type=secret,id=tok,env=TOKEN,target=/t,required",
            ("tok", "/t", Some("TOKEN"), true),
        );
        check_secret(
            "type=secret,env=TOKEN,target=/run/key",
            ("key", "/run/key", Some("TOKEN"), false),
        );
        check_secret(
            "type=secret,id=tok,env=$T,required=false",
            ("tok", "", Some("/cache"), false),
        );
    }

    #[test]
    fn errors() {
        for bad in [
            "type=nope,target=/x",
            "type=cache",
            "type=bind,target=/x,sharing=locked",
            "type=tmpfs,target=/x,from=a",
            "type=ssh,source=/x",
            "type=ssh,mode=9",
            "target=/x,bogus=1",
            "type=cache,target=/x,mode=99",
            "target=\"/x",
            "type=secret,env=TOKEN",
            "type=secret,id=tok,env=",
            "type=secret,id=tok,env",
            "type=cache,target=/x,env=V",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
