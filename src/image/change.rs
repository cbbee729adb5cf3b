//! `--change` for `kiln import`: Dockerfile instructions that edit an image
//! config (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, VOLUME, WORKDIR),
//! as `docker import --change` accepts them.
//!
//! Deliberately small and self-contained: one instruction per string, no
//! line continuations, variables or heredocs; the real Dockerfile parser
//! lives in `parser`. Quotes and backslashes in ENV/LABEL are handled the
//! way the Dockerfile parser does for simple cases.

use super::oci::ContainerConfig;
use std::collections::BTreeMap;

/// Why a `--change` string was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChangeError {
    #[error("--change {0:?}: {1} is not a valid change command (expected CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, VOLUME or WORKDIR)")]
    Unknown(String, String),
    #[error("--change {0:?}: {1}")]
    Invalid(String, String),
}

/// Applies one `--change` instruction to `config`.
pub fn apply(config: &mut ContainerConfig, change: &str) -> Result<(), ChangeError> {
    let text = change.trim();
    let (word, rest) = text
        .split_once(|c: char| c.is_whitespace())
        .map(|(w, r)| (w, r.trim()))
        .unwrap_or((text, ""));
    let invalid = |msg: &str| ChangeError::Invalid(change.to_string(), msg.to_string());
    match word.to_ascii_uppercase().as_str() {
        "CMD" => config.cmd = Some(command(rest)),
        "ENTRYPOINT" => config.entrypoint = Some(command(rest)),
        "USER" => {
            if rest.is_empty() {
                return Err(invalid("USER requires an argument"));
            }
            config.user = Some(rest.to_string());
        }
        "WORKDIR" => {
            if rest.is_empty() {
                return Err(invalid("WORKDIR requires an argument"));
            }
            // A relative WORKDIR is relative to the previous one (docker).
            let base = config.working_dir.clone().unwrap_or_else(|| "/".into());
            let joined = if rest.starts_with('/') {
                rest.to_string()
            } else {
                format!("{}/{rest}", base.trim_end_matches('/'))
            };
            config.working_dir = Some(joined);
        }
        "ENV" => {
            for (k, v) in pairs(rest, true).map_err(|m| invalid(&m))? {
                let env = config.env.get_or_insert_with(Vec::new);
                let prefix = format!("{k}=");
                env.retain(|e| !e.starts_with(&prefix) && e != &k);
                env.push(format!("{k}={v}"));
            }
        }
        "LABEL" => {
            let labels = config.labels.get_or_insert_with(BTreeMap::new);
            for (k, v) in pairs(rest, false).map_err(|m| invalid(&m))? {
                labels.insert(k, v);
            }
        }
        "EXPOSE" => {
            let words = split_words(rest).map_err(|m| invalid(&m))?;
            if words.is_empty() {
                return Err(invalid("EXPOSE requires at least one port"));
            }
            let ports = config.exposed_ports.get_or_insert_with(BTreeMap::new);
            for w in words {
                let (port, proto) = w.split_once('/').unwrap_or((&w, "tcp"));
                let ok = !port.is_empty()
                    && port.split('-').all(|p| p.parse::<u16>().is_ok())
                    && matches!(proto.to_ascii_lowercase().as_str(), "tcp" | "udp" | "sctp");
                if !ok {
                    return Err(invalid(&format!("invalid port {w:?}")));
                }
                ports.insert(
                    format!("{port}/{}", proto.to_ascii_lowercase()),
                    serde_json::json!({}),
                );
            }
        }
        "VOLUME" => {
            let vols = match json_array(rest) {
                Some(v) => v,
                None => split_words(rest).map_err(|m| invalid(&m))?,
            };
            if vols.is_empty() {
                return Err(invalid("VOLUME requires at least one path"));
            }
            let map = config.volumes.get_or_insert_with(BTreeMap::new);
            for v in vols {
                map.insert(v, serde_json::json!({}));
            }
        }
        _ => return Err(ChangeError::Unknown(change.to_string(), word.to_string())),
    }
    Ok(())
}

/// Exec form (a JSON array of strings) or shell form (`/bin/sh -c`).
fn command(rest: &str) -> Vec<String> {
    json_array(rest).unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into(), rest.into()])
}

fn json_array(rest: &str) -> Option<Vec<String>> {
    if !rest.starts_with('[') {
        return None;
    }
    serde_json::from_str(rest).ok()
}

/// `k=v k2="v 2"` pairs; with `legacy`, also `ENV key value with spaces`.
fn pairs(rest: &str, legacy: bool) -> Result<Vec<(String, String)>, String> {
    let words = split_words(rest)?;
    if words.is_empty() {
        return Err("requires at least one key=value".into());
    }
    if !words[0].contains('=') {
        if legacy {
            let (k, v) = rest
                .split_once(|c: char| c.is_whitespace())
                .ok_or("ENV requires a value")?;
            return Ok(vec![(k.to_string(), v.trim().to_string())]);
        }
        return Err(format!("{:?} is not key=value", words[0]));
    }
    words
        .into_iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(format!("{w:?} is not key=value")),
        })
        .collect()
}

/// Splits on unquoted whitespace, removing quotes and backslash escapes.
fn split_words(s: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\\' => {
                cur.push(chars.next().unwrap_or('\\'));
                in_word = true;
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => cur.push(c),
                        None => return Err("unterminated single quote".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\')) => cur.push(c),
                            Some(c) => {
                                cur.push('\\');
                                cur.push(c);
                            }
                            None => return Err("unterminated double quote".into()),
                        },
                        Some(c) => cur.push(c),
                        None => return Err("unterminated double quote".into()),
                    }
                }
            }
            c => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Applies `changes` to an empty config and compares its JSON.
    fn check(changes: &[&str], expected: serde_json::Value) {
        let mut c = ContainerConfig::default();
        for ch in changes {
            apply(&mut c, ch).unwrap_or_else(|e| panic!("{ch}: {e}"));
        }
        assert_eq!(serde_json::to_value(&c).unwrap(), expected, "{changes:?}");
    }

    #[test]
    fn applies_like_docker_import() {
        check(&[r#"CMD ["sh"]"#], serde_json::json!({"Cmd": ["sh"]}));
        check(
            &["CMD echo hi"],
            serde_json::json!({"Cmd": ["/bin/sh", "-c", "echo hi"]}),
        );
        check(
            &[r#"ENTRYPOINT ["/bin/busybox"]"#, "cmd [\"ls\", \"-l\"]"],
            serde_json::json!({"Entrypoint": ["/bin/busybox"], "Cmd": ["ls", "-l"]}),
        );
        check(
            &[
                "ENV A=1 B=\"two words\"",
                "ENV A=3",
                "ENV LEGACY some value",
            ],
            serde_json::json!({"Env": ["B=two words", "A=3", "LEGACY=some value"]}),
        );
        check(
            &["EXPOSE 80 53/udp 8000-8010"],
            serde_json::json!({"ExposedPorts": {"80/tcp": {}, "53/udp": {}, "8000-8010/tcp": {}}}),
        );
        check(
            &["LABEL a=b 'c d'=\"e\\\"f\""],
            serde_json::json!({"Labels": {"a": "b", "c d": "e\"f"}}),
        );
        check(
            &["USER 1000:1000"],
            serde_json::json!({"User": "1000:1000"}),
        );
        check(
            &[r#"VOLUME ["/data"]"#, "VOLUME /a /b"],
            serde_json::json!({"Volumes": {"/data": {}, "/a": {}, "/b": {}}}),
        );
        check(
            &["WORKDIR /app", "WORKDIR sub"],
            serde_json::json!({"WorkingDir": "/app/sub"}),
        );
    }

    #[test]
    fn refuses_bad_changes() {
        let mut c = ContainerConfig::default();
        for bad in [
            "RUN echo",
            "EXPOSE http",
            "ENV",
            "LABEL novalue",
            "USER",
            "ENV A=\"open",
        ] {
            assert!(apply(&mut c, bad).is_err(), "{bad} accepted");
        }
        let e = apply(&mut c, "FROM x").unwrap_err().to_string();
        assert!(e.contains("FROM is not a valid change command"), "{e}");
    }
}
