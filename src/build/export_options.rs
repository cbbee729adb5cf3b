//! The image options of `-o type=oci|docker` and `--annotation`, with
//! BuildKit's names and defaults:
//!
//! - `compression=uncompressed|gzip|zstd` (default gzip), `compression-level=N`,
//!   `force-compression=true` (moby/buildkit `util/compression`,
//!   `ParseAttributes`); `estargz` is refused: kiln cannot write it;
//! - `oci-mediatypes=true|false`, by default true for `type=oci` and false
//!   for `type=docker` (`exporter/oci/export.go`, `Resolve`); zstd forces
//!   OCI types on, as BuildKit's `EnableOCITypes` does, since Docker's
//!   media types have no zstd layer;
//! - `annotation.K=V`, `annotation-manifest.K=V`,
//!   `annotation-manifest-descriptor.K=V` (optionally `[PLATFORM]` after
//!   the type), and buildx's `--annotation [TYPE[PLATFORM]:]K=V`, whose
//!   default type is the manifest; `type=image|registry` outputs take the
//!   manifest's (stored, so pushed), archives both (`exporter/containerimage/exptypes/
//!   annotations.go`, `ParseAnnotationKey`; docker/buildx
//!   `util/buildflags/annotations.go`). kiln builds one platform, so index
//!   annotations are refused as BuildKit refuses them for a
//!   single-platform export (`exporter/containerimage/writer.go`,
//!   "index annotations not supported for single platform export"), and a
//!   platform-scoped one applies only when it names the host's platform.

use crate::image::layer::Compression;
use crate::transfer::archive::ManifestOptions;

/// How an image archive output writes the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveOptions {
    /// The asked layer compression.
    pub compression: Compression,
    /// Levels, media types, annotations.
    pub manifest: ManifestOptions,
}

/// The keys [`ArchiveOptions::set`] takes besides annotations.
pub const ARCHIVE_KEYS: &[&str] = &[
    "compression",
    "compression-level",
    "force-compression",
    "oci-mediatypes",
    "annotation.*",
];

impl ArchiveOptions {
    /// BuildKit's defaults for `kind` (`oci` or `docker`).
    pub fn defaults(kind: &str) -> ArchiveOptions {
        ArchiveOptions {
            compression: Compression::Gzip,
            manifest: ManifestOptions {
                keep_compressed: true,
                docker_media_types: kind == "docker",
                ..ManifestOptions::default()
            },
        }
    }

    /// Applies one `key=value` of the output; `Ok(false)` when `key` is
    /// not an image option.
    pub fn set(&mut self, key: &str, value: &str) -> Result<bool, String> {
        match key {
            "compression" => {
                self.compression = match value {
                    "uncompressed" => Compression::None,
                    "gzip" => Compression::Gzip,
                    "zstd" => Compression::Zstd,
                    "estargz" => {
                        return Err("compression=estargz is not supported (kiln writes \
                                    uncompressed, gzip or zstd layers)"
                            .into())
                    }
                    other => {
                        return Err(format!(
                            "compression={other:?}: expected uncompressed, gzip or zstd"
                        ))
                    }
                }
            }
            "compression-level" => {
                let level = value
                    .parse::<i32>()
                    .map_err(|_| format!("compression-level={value:?}: expected an integer"))?;
                self.manifest.compression_level = Some(level);
            }
            "force-compression" => {
                self.manifest.keep_compressed = !parse_bool(key, value)?;
            }
            "oci-mediatypes" => {
                self.manifest.docker_media_types = !parse_bool(key, value)?;
            }
            _ => match parse_annotation_key(key)? {
                Some(Annotation::Manifest(k)) => {
                    self.manifest
                        .manifest_annotations
                        .insert(k, value.to_string());
                }
                Some(Annotation::Descriptor(k)) => {
                    self.manifest
                        .descriptor_annotations
                        .insert(k, value.to_string());
                }
                Some(Annotation::OtherPlatform) => {}
                None => return Ok(false),
            },
        }
        Ok(true)
    }

    /// Checks what only the whole set can tell: the level against the
    /// compression; zstd turns OCI media types on.
    pub fn finish(mut self) -> Result<ArchiveOptions, String> {
        if let Some(level) = self.manifest.compression_level {
            self.compression.check_level(level)?;
        }
        if self.compression == Compression::Zstd && self.manifest.docker_media_types {
            tracing::warn!("forcibly turning on oci-mediatype mode for zstd");
            self.manifest.docker_media_types = false;
        }
        Ok(self)
    }
}

/// Applies `key=value` of a `type=image|registry` output when `key` is an
/// annotation: the manifest's go into `manifest` (the stored and pushed
/// manifest, as BuildKit's image exporter writes them); `Ok(false)` for a
/// key that is not an annotation.
pub fn set_image_annotation(
    manifest: &mut std::collections::BTreeMap<String, String>,
    key: &str,
    value: &str,
) -> Result<bool, String> {
    match parse_annotation_key(key)? {
        Some(Annotation::Manifest(k)) => {
            manifest.insert(k, value.to_string());
            Ok(true)
        }
        // A single manifest is pushed without an index to describe it.
        Some(Annotation::Descriptor(_)) => Err(format!(
            "{key}: manifest descriptor annotations are written only by type=oci and \
             type=docker outputs (an image is pushed without an index)"
        )),
        Some(Annotation::OtherPlatform) => Ok(true),
        None => Ok(false),
    }
}

/// Where an annotation goes.
#[derive(Debug, PartialEq, Eq)]
enum Annotation {
    Manifest(String),
    Descriptor(String),
    /// Scoped to a platform kiln does not build: ignored, as BuildKit
    /// ignores it for the platforms it did not build.
    OtherPlatform,
}

/// `annotation[-TYPE][[PLATFORM]].KEY` as BuildKit parses it; `None` for a
/// key that is not an annotation.
fn parse_annotation_key(key: &str) -> Result<Option<Annotation>, String> {
    let Some(rest) = key.strip_prefix("annotation") else {
        return Ok(None);
    };
    if !rest.starts_with(['-', '.', '[']) {
        return Ok(None);
    }
    let (kind, rest) = match rest.strip_prefix('-') {
        Some(r) => {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            (&r[..end], &r[end..])
        }
        None => ("", rest),
    };
    let (platform, rest) = match rest.strip_prefix('[') {
        Some(r) => match r.split_once(']') {
            Some((p, rest)) => (Some(p), rest),
            None => return Err(format!("could not fully parse annotation {key}")),
        },
        None => (None, rest),
    };
    let name = match rest.strip_prefix('.') {
        Some(n) if !n.is_empty() && !n.contains(char::is_whitespace) => n.to_string(),
        _ => return Err(format!("could not fully parse annotation {key}")),
    };
    if let Some(p) = platform {
        let host = super::host_platform().to_string();
        let p = p.trim().to_ascii_lowercase();
        if p != host && !host.starts_with(&format!("{p}/")) {
            return Ok(Some(Annotation::OtherPlatform));
        }
    }
    match kind {
        "" | "manifest" => Ok(Some(Annotation::Manifest(name))),
        "manifest-descriptor" => Ok(Some(Annotation::Descriptor(name))),
        "index" | "index-descriptor" => {
            Err("index annotations not supported for single platform export".into())
        }
        other => Err(format!("unrecognized annotation type {other}")),
    }
}

/// `--annotation [TYPE[PLATFORM]:]KEY=VALUE` as the output key it stands
/// for (`annotation-TYPE[PLATFORM].KEY`) and its value (docker/buildx
/// `util/buildflags/annotations.go`, `ParseAnnotations`).
pub fn parse_annotation_flag(flag: &str) -> Result<(String, String), String> {
    let (key, value) = flag
        .split_once('=')
        .ok_or_else(|| format!("invalid annotation {flag:?}, expected key=value"))?;
    let (kind, name) = match key.split_once(':') {
        Some((kind, name)) => (Some(kind), name),
        None => (None, key),
    };
    if name.is_empty() || name.contains(char::is_whitespace) {
        return Err(format!(
            "invalid annotation format, expected <type>:<key>=<value>, got {flag:?}"
        ));
    }
    let output_key = match kind {
        None => format!("annotation.{name}"),
        Some(kind) => {
            let (t, platform) = match kind.split_once('[') {
                Some((t, p)) => (t, format!("[{p}")),
                None => (kind, String::new()),
            };
            match t {
                "manifest" | "manifest-descriptor" | "index" | "index-descriptor" => {}
                other => return Err(format!("unknown annotation type {other:?}")),
            }
            format!("annotation-{t}{platform}.{name}")
        }
    };
    // Checked now, so a bad one fails before the build.
    parse_annotation_key(&output_key)?;
    Ok((output_key, value.to_string()))
}

/// Go's `strconv.ParseBool`; a bare key means true (BuildKit's
/// `parseBoolWithDefault`).
fn parse_bool(key: &str, v: &str) -> Result<bool, String> {
    match v {
        "" | "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(format!("non-bool value {v:?} specified for {key}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(kind: &str, pairs: &[(&str, &str)]) -> Result<ArchiveOptions, String> {
        let mut o = ArchiveOptions::defaults(kind);
        for (k, v) in pairs {
            assert!(o.set(k, v)?, "{k} not taken");
        }
        o.finish()
    }

    #[test]
    fn defaults_follow_buildkits_exporters() {
        let oci = with("oci", &[]).unwrap();
        assert_eq!(oci.compression, Compression::Gzip);
        assert!(!oci.manifest.docker_media_types && oci.manifest.keep_compressed);
        assert!(with("docker", &[]).unwrap().manifest.docker_media_types);
        let o = with(
            "docker",
            &[("oci-mediatypes", "true"), ("force-compression", "")],
        )
        .unwrap();
        assert!(!o.manifest.docker_media_types && !o.manifest.keep_compressed);
        // zstd has no Docker media type.
        let z = with("docker", &[("compression", "zstd")]).unwrap();
        assert!(!z.manifest.docker_media_types);
        let l = with(
            "oci",
            &[("compression", "zstd"), ("compression-level", "19")],
        )
        .unwrap();
        assert_eq!(l.manifest.compression_level, Some(19));
    }

    #[test]
    fn bad_values_say_what_was_expected() {
        let err = |pairs: &[(&str, &str)]| with("oci", pairs).unwrap_err();
        assert!(err(&[("compression", "estargz")]).contains("not supported"));
        assert!(err(&[("compression", "xz")]).contains("expected uncompressed, gzip or zstd"));
        assert!(err(&[("compression-level", "hi")]).contains("expected an integer"));
        assert!(err(&[("compression-level", "12")]).contains("out of range for gzip (0-9)"));
        assert!(err(&[("oci-mediatypes", "maybe")]).contains("oci-mediatypes"));
        assert!(err(&[("annotation-index.a", "b")]).contains("single platform"));
        assert!(err(&[("annotation-layer.a", "b")]).contains("unrecognized annotation type"));
    }

    #[test]
    fn annotations_by_key_and_flag() {
        let host = crate::build::host_platform().to_string();
        let o = with(
            "oci",
            &[
                ("annotation.a", "1"),
                ("annotation-manifest.b", "2"),
                ("annotation-manifest-descriptor.c", "3"),
                (&format!("annotation-manifest[{host}].d"), "4"),
                ("annotation-manifest[linux/s390x].e", "5"),
            ],
        )
        .unwrap();
        let m = &o.manifest.manifest_annotations;
        assert_eq!(m.keys().collect::<Vec<_>>(), ["a", "b", "d"]);
        assert_eq!(o.manifest.descriptor_annotations["c"], "3");
        let mut unknown = ArchiveOptions::defaults("oci");
        assert_eq!(unknown.set("dest", "x"), Ok(false));
        assert_eq!(unknown.set("annotations", "x"), Ok(false));

        let flag = |f: &str| parse_annotation_flag(f);
        assert_eq!(
            flag("k=v=w").unwrap(),
            ("annotation.k".into(), "v=w".into())
        );
        assert_eq!(
            flag("manifest-descriptor:org.x=1").unwrap(),
            ("annotation-manifest-descriptor.org.x".into(), "1".into())
        );
        assert_eq!(
            flag(&format!("manifest[{host}]:k=v")).unwrap().0,
            format!("annotation-manifest[{host}].k")
        );
        assert!(flag("novalue").unwrap_err().contains("expected key=value"));
        assert!(flag("layer:k=v")
            .unwrap_err()
            .contains("unknown annotation type"));
        assert!(flag("index:k=v").unwrap_err().contains("single platform"));
    }
}
