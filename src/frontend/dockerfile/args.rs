//! Build arguments: the global scope `FROM` lines see, and the proxy
//! variables every `RUN` gets.
//!
//! BuildKit's scoping rules, kept here:
//! - the global scope holds the automatic platform ARGs (`TARGETPLATFORM`,
//!   `TARGETOS`, `TARGETARCH`, `TARGETVARIANT`, `BUILDPLATFORM`, `BUILDOS`,
//!   `BUILDARCH`, `BUILDVARIANT`) and `TARGETSTAGE` (the stage being
//!   built), then every `ARG` before the first `FROM`, in order: a
//!   `--build-arg` wins, else the default expanded with the scope so far;
//! - a stage sees none of them until it declares `ARG NAME` (taking the
//!   global value when it has no default and no `--build-arg`);
//! - `HTTP_PROXY`, `HTTPS_PROXY`, `FTP_PROXY`, `NO_PROXY`, `ALL_PROXY`
//!   (either case) given as `--build-arg` reach every `RUN` without being
//!   declared, and stay out of the cache key and the history.

use super::{error_at, LowerError, LowerOptions};
use crate::parser::Dockerfile;
use crate::shell::{EnvMap, Lexer};

/// The proxy build arguments BuildKit passes to every `RUN` undeclared.
pub const PROXY_ARGS: &[&str] = &[
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "FTP_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
];

/// Whether `name` is one of [`PROXY_ARGS`] in either case.
pub fn is_proxy_arg(name: &str) -> bool {
    PROXY_ARGS.iter().any(|p| p.eq_ignore_ascii_case(name))
}

/// Build args that are never "unused": proxies, BuildKit's own
/// `BUILDKIT_*` settings, `SOURCE_DATE_EPOCH` and the automatic platform
/// ARGs.
pub(super) fn is_builtin_arg(name: &str) -> bool {
    is_proxy_arg(name)
        || name.starts_with("BUILDKIT_")
        || matches!(
            name,
            "SOURCE_DATE_EPOCH"
                | "BUILDPLATFORM"
                | "BUILDOS"
                | "BUILDARCH"
                | "BUILDVARIANT"
                | "TARGETPLATFORM"
                | "TARGETOS"
                | "TARGETARCH"
                | "TARGETVARIANT"
                | "TARGETSTAGE"
        )
}

/// The proxy variables among the build args, as `KEY=value`.
pub(super) fn proxy_env(opts: &LowerOptions) -> Vec<String> {
    opts.build_args
        .iter()
        .filter(|(k, _)| is_proxy_arg(k))
        .map(|(k, v)| format!("{k}={v}"))
        .collect()
}

/// The global scope: platform ARGs, `TARGETSTAGE`, then the ARGs before
/// the first `FROM`.
pub(super) fn global_args(
    df: &Dockerfile,
    opts: &LowerOptions,
    lexer: &Lexer,
    target_stage: &str,
) -> Result<EnvMap, LowerError> {
    let p = &opts.platform;
    let variant = p.variant.clone().unwrap_or_default();
    let platform = p.to_string();
    let mut env = EnvMap::new();
    // kiln builds on the platform it targets: BUILD* equal TARGET*.
    let automatic = [
        ("BUILDPLATFORM", platform.clone()),
        ("BUILDOS", p.os.clone()),
        ("BUILDARCH", p.architecture.clone()),
        ("BUILDVARIANT", variant.clone()),
        ("TARGETPLATFORM", platform),
        ("TARGETOS", p.os.clone()),
        ("TARGETARCH", p.architecture.clone()),
        ("TARGETVARIANT", variant),
        ("TARGETSTAGE", target_stage.to_string()),
    ];
    for (k, v) in automatic {
        let v = opts.build_args.get(k).cloned().unwrap_or(v);
        env.set(k, v);
    }
    for global in &df.global_args {
        for def in &global.arg.definitions {
            if let Some(v) = opts.build_args.get(&def.name) {
                env.set(def.name.clone(), v.clone());
            } else if let Some(default) = &def.default {
                let v = lexer
                    .process_word(default, &env)
                    .map_err(|e| error_at(opts, &global.span, e.to_string()))?;
                env.set(def.name.clone(), v.value);
            }
        }
    }
    Ok(env)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_names_match_in_either_case_only() {
        for (name, expected) in [
            ("HTTP_PROXY", true),
            ("http_proxy", true),
            ("No_Proxy", true),
            ("all_proxy", true),
            ("PROXY", false),
            ("HTTP_PROXY_X", false),
        ] {
            assert_eq!(is_proxy_arg(name), expected, "{name}");
        }
    }
}
