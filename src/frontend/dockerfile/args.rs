//! Build arguments: the global scope `FROM` lines see, and the proxy
//! variables every `RUN` gets.
//!
//! BuildKit's scoping rules, kept here:
//! - the global scope holds the automatic platform ARGs (`TARGETPLATFORM`,
//!   `TARGETOS`, `TARGETARCH`, `TARGETVARIANT`, `BUILDPLATFORM`, `BUILDOS`,
//!   `BUILDARCH`, `BUILDVARIANT`) and `TARGETSTAGE` (the stage being
//!   built, `default` for an unnamed last stage), then every `ARG` before the first `FROM`, in order: a
//!   `--build-arg` wins, else the default expanded with the scope so far;
//! - a stage sees none of them until it declares `ARG NAME` (taking the
//!   global value when it has no default and no `--build-arg`);
//! - `HTTP_PROXY`, `HTTPS_PROXY`, `FTP_PROXY`, `NO_PROXY`, `ALL_PROXY`
//!   (either case) given as `--build-arg` reach every `RUN` without being
//!   declared, and stay out of the cache key and the history.

use super::{error_at, LowerError, LowerOptions};
use crate::error_chain::Chain;
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

/// What a `RUN` gets from proxy build args, as BuildKit gives it: each of
/// the five proxies given in either case sets both the upper- and the
/// lower-case variable (`HTTP_PROXY=v`, `http_proxy=v`), in the order
/// http, https, ftp, no, all; when both cases are given, the later one in
/// byte order (the lower-case one) wins; empty values set nothing
/// (moby/buildkit dockerfile2llb/convert.go `proxyEnvFromBuildArgs`,
/// solver/llbsolver/ops/exec.go `proxyEnvList`).
pub(super) fn proxy_env(opts: &LowerOptions) -> Vec<String> {
    let mut values: [Option<&str>; 5] = [None; 5];
    // `build_args` is a BTreeMap: keys come sorted as Go's `slices.Sort`
    // sorts them, so a later key replaces an earlier one the same way.
    for (k, v) in &opts.build_args {
        if let Some(i) = PROXY_ARGS.iter().position(|p| p.eq_ignore_ascii_case(k)) {
            values[i] = Some(v);
        }
    }
    let mut env = Vec::new();
    for (name, value) in PROXY_ARGS.iter().zip(values) {
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            env.push(format!("{name}={v}"));
            env.push(format!("{}={v}", name.to_ascii_lowercase()));
        }
    }
    env
}

/// The global scope: platform ARGs, `TARGETSTAGE`, then the ARGs before
/// the first `FROM`.
pub(super) fn global_args(
    df: &Dockerfile,
    opts: &LowerOptions,
    lexer: &Lexer,
    target_stage: &str,
) -> Result<EnvMap, LowerError> {
    let (t, b) = (&opts.platform, &opts.build_platform);
    let mut env = EnvMap::new();
    // BuildKit's `defaultArgs` (dockerfile2llb/platform.go): each
    // platform formatted by containerd's `Format` after `Normalize`, the
    // variant empty when there is none.
    let automatic = [
        ("BUILDPLATFORM", b.to_string()),
        ("BUILDOS", b.os.clone()),
        ("BUILDARCH", b.architecture.clone()),
        ("BUILDVARIANT", b.variant.clone().unwrap_or_default()),
        ("TARGETPLATFORM", t.to_string()),
        ("TARGETOS", t.os.clone()),
        ("TARGETARCH", t.architecture.clone()),
        ("TARGETVARIANT", t.variant.clone().unwrap_or_default()),
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
                    .map_err(|e| error_at(opts, &global.span, Chain(&e).to_string()))?;
                env.set(def.name.clone(), v.value);
            }
        }
    }
    Ok(env)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies(args: &[(&str, &str)]) -> Vec<String> {
        let opts = LowerOptions {
            file_name: "Dockerfile".into(),
            build_args: args
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            target: None,
            labels: Default::default(),
            source_date_epoch: None,
            created: None,
            platform: crate::solver::Platform::linux_amd64(),
            build_platform: crate::solver::Platform::linux_amd64(),
            platform_implicit: false,
            multi_platform: false,
            context_exclude: Vec::new(),
            network: crate::solver::Network::Sandbox,
            step_flags: Default::default(),
            named_contexts: Default::default(),
        };
        proxy_env(&opts)
    }

    /// moby/buildkit `proxyEnvFromBuildArgs` + `proxyEnvList`; its test
    /// `testBuiltinArgs` gives `http_proxy` and reads `$HTTP_PROXY`.
    #[test]
    fn proxy_args_set_both_cases_and_lower_case_wins() {
        assert_eq!(
            proxies(&[("http_proxy", "hp"), ("NO_PROXY", "np")]),
            [
                "HTTP_PROXY=hp",
                "http_proxy=hp",
                "NO_PROXY=np",
                "no_proxy=np"
            ]
        );
        assert_eq!(
            proxies(&[("HTTP_PROXY", "upper"), ("http_proxy", "lower")]),
            ["HTTP_PROXY=lower", "http_proxy=lower"]
        );
        assert_eq!(
            proxies(&[("Https_Proxy", "s"), ("all_proxy", "a"), ("FTP_PROXY", "")]),
            [
                "HTTPS_PROXY=s",
                "https_proxy=s",
                "ALL_PROXY=a",
                "all_proxy=a"
            ]
        );
        assert!(proxies(&[("PROXY", "x")]).is_empty());
    }

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
