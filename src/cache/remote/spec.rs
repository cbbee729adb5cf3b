//! `--cache-to` / `--cache-from` values in buildx's syntax: CSV fields
//! `key=value`, keys case-insensitive, `type=` required, and a value with
//! no `=` at all is a registry ref (each comma-separated field its own
//! entry), as docker/buildx `util/buildflags/cache.go` (`ParseCacheEntry`,
//! `CacheOptionsEntry.UnmarshalText`) reads them. Unlike buildx, which
//! hands unknown attributes to BuildKit to ignore, kiln refuses a key or
//! type it does not know: a typo must not silently export nothing.

use std::path::PathBuf;

use crate::image::layer::Compression;
use crate::image::ImageRef;

/// Which results an export holds (BuildKit's `mode=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExportMode {
    /// The steps the final image is made of (BuildKit's default).
    #[default]
    Min,
    /// Every step of every stage built.
    Max,
}

/// Where a cache goes (`--cache-to`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheTo {
    /// An OCI artifact pushed to `ref`.
    Registry {
        reference: ImageRef,
        options: ExportOptions,
    },
    /// An OCI image layout directory.
    Local {
        dest: PathBuf,
        options: ExportOptions,
    },
    /// The cache description inside the built image's config.
    Inline,
}

/// What a `--cache-to` exports, however it travels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportOptions {
    pub mode: ExportMode,
    /// Compression of layer blobs the store does not already have.
    /// zstd by default: see [`DEFAULT_COMPRESSION`].
    pub compression: Compression,
    /// `compression=` was given: every layer gets a blob in it. Without
    /// it, a blob the store already has in another compression is reused
    /// (BuildKit's reuse unless `force-compression=true`; kiln takes an
    /// explicit `compression=` as forced).
    pub compression_given: bool,
    /// Export `RUN --mount=type=cache` directories too.
    pub cache_mounts: bool,
    /// A failed export is a warning, not a failed build (buildx's rule).
    pub ignore_error: bool,
}

/// The cache's layer compression when `compression=` is not given: zstd,
/// where buildx defaults to gzip for caches and images alike (moby/buildkit
/// `util/compression/compression.go`, `var Default = Gzip`). A cache is
/// kiln's own artifact, read only by kiln, so it need not suit every image
/// client; and a cold export is bound by compressing its layers: gzip of a
/// 430 MB layer took 17 s (debug) where multi-threaded zstd at level 3 is
/// about ten times faster (bench/RESULTS.md, "Build farm"). An image
/// pushed from the build keeps gzip (docker's default), and a layer that
/// already has a blob in the store in some compression reuses it
/// (`export::describe`). `compression=gzip` stays available.
pub const DEFAULT_COMPRESSION: Compression = Compression::Zstd;

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions {
            mode: ExportMode::Min,
            compression: DEFAULT_COMPRESSION,
            compression_given: false,
            cache_mounts: false,
            ignore_error: false,
        }
    }
}

impl CacheTo {
    /// Whether a failure of this export is only a warning.
    pub fn ignore_error(&self) -> bool {
        match self {
            CacheTo::Registry { options, .. } | CacheTo::Local { options, .. } => {
                options.ignore_error
            }
            CacheTo::Inline => false,
        }
    }
}

/// Where a cache comes from (`--cache-from`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheFrom {
    /// A cache artifact, or an image with an inline cache, in a registry.
    Registry(ImageRef),
    /// An OCI image layout directory a `type=local` export wrote.
    Local(PathBuf),
}

impl std::fmt::Display for CacheFrom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CacheFrom::Registry(r) => write!(f, "{r}"),
            CacheFrom::Local(p) => write!(f, "{}", p.display()),
        }
    }
}

/// A `--cache-to`/`--cache-from` value kiln cannot use.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SpecError {
    #[error("--{flag} {spec:?}: unterminated quote")]
    UnterminatedQuote { flag: &'static str, spec: String },
    #[error("--{flag} {spec:?}: field {field:?} is not key=value")]
    NotKeyValue {
        flag: &'static str,
        spec: String,
        field: String,
    },
    #[error("--{flag} {spec:?}: type= is required (registry, local{})", if *.flag == "cache-to" { " or inline" } else { "" })]
    NoType { flag: &'static str, spec: String },
    #[error("--{flag} {spec:?}: unknown type {kind:?} (expected registry, local{})", if *.flag == "cache-to" { " or inline" } else { "" })]
    UnknownType {
        flag: &'static str,
        spec: String,
        kind: String,
    },
    #[error("--{flag} {spec:?}: unknown key {key:?} for type={kind} (expected {expected})")]
    UnknownKey {
        flag: &'static str,
        spec: String,
        kind: String,
        key: String,
        expected: &'static str,
    },
    #[error("--{flag} {spec:?}: {key}={value:?}: expected {expected}")]
    BadValue {
        flag: &'static str,
        spec: String,
        key: String,
        value: String,
        expected: &'static str,
    },
    #[error("--{flag} {spec:?}: {key}= is required for type={kind}")]
    Missing {
        flag: &'static str,
        spec: String,
        kind: String,
        key: &'static str,
    },
}

/// One entry's type and attributes, keys lower-cased, in order.
struct Entry {
    kind: Option<String>,
    attrs: Vec<(String, String)>,
}

/// Splits a value into entries as buildx does: no `=` anywhere means a
/// list of registry refs.
fn entries(flag: &'static str, spec: &str) -> Result<Vec<Entry>, SpecError> {
    let fields = crate::csv::fields(spec).map_err(|_| SpecError::UnterminatedQuote {
        flag,
        spec: spec.into(),
    })?;
    if !spec.contains('=') {
        return Ok(fields
            .into_iter()
            .filter(|f| !f.is_empty())
            .map(|f| Entry {
                kind: Some("registry".into()),
                attrs: vec![("ref".into(), f)],
            })
            .collect());
    }
    let mut entry = Entry {
        kind: None,
        attrs: Vec::new(),
    };
    for field in fields {
        let Some((k, v)) = field.split_once('=') else {
            return Err(SpecError::NotKeyValue {
                flag,
                spec: spec.into(),
                field,
            });
        };
        let k = k.trim().to_ascii_lowercase();
        if k == "type" {
            entry.kind = Some(v.to_string());
        } else {
            entry.attrs.push((k, v.to_string()));
        }
    }
    if entry.kind.as_deref().is_none_or(str::is_empty) {
        return Err(SpecError::NoType {
            flag,
            spec: spec.into(),
        });
    }
    Ok(vec![entry])
}

fn bool_value(flag: &'static str, spec: &str, key: &str, v: &str) -> Result<bool, SpecError> {
    // Go's strconv.ParseBool, which BuildKit uses for these attributes.
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(SpecError::BadValue {
            flag,
            spec: spec.into(),
            key: key.into(),
            value: v.into(),
            expected: "true or false",
        }),
    }
}

fn reference(flag: &'static str, spec: &str, v: &str) -> Result<ImageRef, SpecError> {
    ImageRef::parse(v).map_err(|_| SpecError::BadValue {
        flag,
        spec: spec.into(),
        key: "ref".into(),
        value: v.into(),
        expected: "an image reference such as registry.example/app:cache",
    })
}

/// Parses one `--cache-to` value.
pub fn parse_cache_to(spec: &str) -> Result<Vec<CacheTo>, SpecError> {
    const FLAG: &str = "cache-to";
    let mut out = Vec::new();
    for entry in entries(FLAG, spec)? {
        let kind = entry.kind.unwrap_or_default();
        let expected = match kind.as_str() {
            "registry" => "ref, mode, compression, cache-mounts, ignore-error",
            "local" => "dest, mode, compression, cache-mounts, ignore-error",
            "inline" => "nothing",
            _ => {
                return Err(SpecError::UnknownType {
                    flag: FLAG,
                    spec: spec.into(),
                    kind,
                })
            }
        };
        let mut options = ExportOptions::default();
        let mut target = None;
        for (k, v) in entry.attrs {
            match (kind.as_str(), k.as_str()) {
                ("registry", "ref") => target = Some(Target::Ref(reference(FLAG, spec, &v)?)),
                ("local", "dest") => target = Some(Target::Dir(PathBuf::from(v))),
                ("registry" | "local", "mode") => {
                    options.mode = match v.as_str() {
                        "min" => ExportMode::Min,
                        "max" => ExportMode::Max,
                        _ => {
                            return Err(SpecError::BadValue {
                                flag: FLAG,
                                spec: spec.into(),
                                key: k,
                                value: v,
                                expected: "min or max",
                            })
                        }
                    }
                }
                ("registry" | "local", "compression") => {
                    options.compression_given = true;
                    options.compression = match v.as_str() {
                        "gzip" => Compression::Gzip,
                        "zstd" => Compression::Zstd,
                        _ => {
                            return Err(SpecError::BadValue {
                                flag: FLAG,
                                spec: spec.into(),
                                key: k,
                                value: v,
                                expected: "gzip or zstd",
                            })
                        }
                    }
                }
                ("registry" | "local", "cache-mounts") => {
                    options.cache_mounts = bool_value(FLAG, spec, &k, &v)?
                }
                ("registry" | "local", "ignore-error") => {
                    options.ignore_error = bool_value(FLAG, spec, &k, &v)?
                }
                _ => {
                    return Err(SpecError::UnknownKey {
                        flag: FLAG,
                        spec: spec.into(),
                        kind,
                        key: k,
                        expected,
                    })
                }
            }
        }
        let missing = |key| SpecError::Missing {
            flag: FLAG,
            spec: spec.into(),
            kind: kind.clone(),
            key,
        };
        out.push(match (kind.as_str(), target) {
            ("inline", _) => CacheTo::Inline,
            ("registry", Some(Target::Ref(reference))) => CacheTo::Registry { reference, options },
            ("registry", _) => return Err(missing("ref")),
            ("local", Some(Target::Dir(dest))) => CacheTo::Local { dest, options },
            _ => return Err(missing("dest")),
        });
    }
    Ok(out)
}

enum Target {
    Ref(ImageRef),
    Dir(PathBuf),
}

/// Parses one `--cache-from` value.
pub fn parse_cache_from(spec: &str) -> Result<Vec<CacheFrom>, SpecError> {
    const FLAG: &str = "cache-from";
    let mut out = Vec::new();
    for entry in entries(FLAG, spec)? {
        let kind = entry.kind.unwrap_or_default();
        let (want, expected) = match kind.as_str() {
            "registry" => ("ref", "ref"),
            "local" => ("src", "src"),
            _ => {
                return Err(SpecError::UnknownType {
                    flag: FLAG,
                    spec: spec.into(),
                    kind,
                })
            }
        };
        let mut value = None;
        for (k, v) in entry.attrs {
            if k != want {
                return Err(SpecError::UnknownKey {
                    flag: FLAG,
                    spec: spec.into(),
                    kind,
                    key: k,
                    expected,
                });
            }
            value = Some(v);
        }
        let Some(v) = value else {
            return Err(SpecError::Missing {
                flag: FLAG,
                spec: spec.into(),
                kind,
                key: want,
            });
        };
        out.push(if want == "ref" {
            CacheFrom::Registry(reference(FLAG, spec, &v)?)
        } else {
            CacheFrom::Local(PathBuf::from(v))
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn to(spec: &str) -> CacheTo {
        let mut v = parse_cache_to(spec).unwrap();
        assert_eq!(v.len(), 1, "{spec}");
        v.remove(0)
    }

    #[test]
    fn registry_export_reads_every_key_and_defaults_to_min_zstd() {
        let CacheTo::Registry { reference, options } =
            to("type=registry,ref=127.0.0.1:5000/app:cache")
        else {
            panic!()
        };
        assert_eq!(reference.to_string(), "127.0.0.1:5000/app:cache");
        assert_eq!(options, ExportOptions::default());
        assert_eq!(options.compression, Compression::Zstd);
        let CacheTo::Registry { options, .. } = to(
            "TYPE=registry,Ref=r/a:c,mode=max,compression=zstd,cache-mounts=true,ignore-error=1",
        ) else {
            panic!()
        };
        assert_eq!(
            options,
            ExportOptions {
                mode: ExportMode::Max,
                compression: Compression::Zstd,
                compression_given: true,
                cache_mounts: true,
                ignore_error: true,
            }
        );
    }

    #[test]
    fn local_and_inline_exports() {
        assert_eq!(
            to("type=local,dest=/tmp/c,mode=max"),
            CacheTo::Local {
                dest: "/tmp/c".into(),
                options: ExportOptions {
                    mode: ExportMode::Max,
                    ..ExportOptions::default()
                }
            }
        );
        assert_eq!(to("type=inline"), CacheTo::Inline);
    }

    #[test]
    fn bare_refs_are_registry_imports_one_per_field() {
        let v = parse_cache_from("r/a:1,r/b:2").unwrap();
        assert_eq!(v.len(), 2);
        assert!(matches!(&v[1], CacheFrom::Registry(r) if r.to_string().ends_with("r/b:2")));
        assert_eq!(
            parse_cache_from("type=local,src=\"/a,b\"").unwrap(),
            [CacheFrom::Local("/a,b".into())]
        );
    }

    #[test]
    fn unknown_keys_types_and_values_are_errors_naming_the_flag() {
        let e = parse_cache_to("type=registry,ref=r/a:c,mdoe=max").unwrap_err();
        assert!(e.to_string().contains("--cache-to"), "{e}");
        assert!(e.to_string().contains("unknown key \"mdoe\""), "{e}");
        let e = parse_cache_to("type=s3,bucket=x").unwrap_err();
        assert!(e.to_string().contains("unknown type \"s3\""), "{e}");
        let e = parse_cache_to("type=registry,ref=r/a:c,mode=all").unwrap_err();
        assert!(e.to_string().contains("expected min or max"), "{e}");
        let e = parse_cache_to("type=registry,mode=max").unwrap_err();
        assert!(e.to_string().contains("ref= is required"), "{e}");
        let e = parse_cache_to("type=inline,mode=max").unwrap_err();
        assert!(e.to_string().contains("unknown key \"mode\""), "{e}");
        let e = parse_cache_from("type=local,dest=/x").unwrap_err();
        assert!(e.to_string().contains("--cache-from"), "{e}");
        assert!(e.to_string().contains("unknown key \"dest\""), "{e}");
        let e = parse_cache_from("ref=r/a:c").unwrap_err();
        assert!(e.to_string().contains("type= is required"), "{e}");
        let e = parse_cache_from("type=registry,ref=UPPER/Case").unwrap_err();
        assert!(e.to_string().contains("image reference"), "{e}");
    }
}
