//! `--output`: where a build's result goes besides the image store.
//!
//! - `type=image` (the default): the store, named with `-t` (or
//!   `name=`), pushed to the names' registries with `push=true`;
//!   `type=registry` is `type=image,push=true` (buildx's spelling);
//! - `type=local,dest=DIR`: the final root filesystem copied into DIR
//!   (owners, modes, symlinks and times kept; whiteouts already applied);
//! - `type=tar,dest=FILE`: the final root filesystem as one tar, as
//!   BuildKit's tar exporter writes it (moby/buildkit exporter/tar);
//! - `type=oci|docker,dest=FILE`: the image as an OCI layout or
//!   docker-archive tar (kiln save's code; gzip layers, as BuildKit's
//!   exporters write them), named with the build's `-t` names.
//!
//! Files are written only at their destination: a file output is made
//! under a temporary name next to it and renamed over it (a symlink there
//! is replaced, not followed); a directory output replaces what is in
//! the way, symlinks included, and never writes through one.

use std::path::{Path, PathBuf};

use crate::cache::{Image, Store};
use crate::exec::stack_view::StackView;
use crate::exec::Rootfs;
use crate::image::layer::diff::{write_tar, DiffOptions};
use crate::image::layer::Compression;
use crate::image::reference::ImageRef;
use crate::transfer::archive::{destination, save, Format, SaveOptions};

/// One `--output`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Export {
    /// The store (what every build does anyway), under `names`, and
    /// pushed to their registries when `push` is set.
    Image(ImageOutput),
    /// The root filesystem into a directory.
    Local { dest: PathBuf },
    /// The root filesystem as a tar file.
    Tar { dest: PathBuf },
    /// An OCI layout tar.
    Oci { dest: PathBuf },
    /// A `docker load` tar.
    Docker { dest: PathBuf },
}

/// `type=image|registry`: names for the image and whether to push it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ImageOutput {
    /// `name=` values; replaced by the build's `-t` names when it has
    /// any, as buildx does (docker/buildx `build/opt.go`, `toSolveOpt`:
    /// "fill in image exporter names from tags").
    pub names: Vec<ImageRef>,
    /// `push=true` (or `type=registry`, or `--push`).
    pub push: bool,
}

/// The keys each `--output` type takes. Unlike BuildKit, whose image
/// exporter keeps any key it does not know as image metadata
/// (moby/buildkit `exporter/containerimage/export.go`,
/// `imageExporter.Resolve`, its `default:` case), kiln refuses an unknown
/// key: a misspelt `push=true` must never be silently dropped.
const IMAGE_KEYS: &[&str] = &["type", "name", "push"];
const FILE_KEYS: &[&str] = &["type", "dest"];
/// The types `--output` knows.
const TYPES: &str = "image, registry, local, tar, oci, docker";

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("invalid --output {value:?}: {reason}")]
    Invalid { value: String, reason: String },
    #[error("writing {path}")]
    Archive {
        path: PathBuf,
        #[source]
        source: Box<crate::transfer::archive::ArchiveError>,
    },
    #[error("exporting to {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("exporting")]
    View(#[from] crate::exec::stack_view::ViewError),
    #[error("writing {path}")]
    Tar {
        path: PathBuf,
        #[source]
        source: crate::image::layer::diff::DiffError,
    },
}

impl std::str::FromStr for Export {
    type Err = ExportError;

    /// Parses `type=local,dest=out` (or docker's shorthand: a bare path
    /// means `type=local,dest=PATH`; `-` is refused).
    fn from_str(value: &str) -> Result<Export, ExportError> {
        let invalid = |reason: &str| ExportError::Invalid {
            value: value.to_string(),
            reason: reason.to_string(),
        };
        if !value.contains('=') {
            if value == "-" || value.is_empty() {
                return Err(invalid("writing a tar to stdout is not supported"));
            }
            return Ok(Export::Local {
                dest: PathBuf::from(value),
            });
        }
        let mut fields = Vec::new();
        for field in value.split(',') {
            match field.split_once('=') {
                Some((k, v)) => fields.push((k, v)),
                // BuildKit's boolean options may be given bare (`push`).
                None => fields.push((field, "")),
            }
        }
        let kind = match fields.iter().find(|(k, _)| *k == "type") {
            Some((_, t)) => *t,
            None => return Err(invalid("type= is required")),
        };
        let keys = match kind {
            "image" | "moby" | "registry" => IMAGE_KEYS,
            "local" | "tar" | "oci" | "docker" => FILE_KEYS,
            other => {
                return Err(invalid(&format!(
                    "unknown type {other:?} (expected one of: {TYPES})"
                )))
            }
        };
        if let Some((k, _)) = fields.iter().find(|(k, _)| !keys.contains(k)) {
            return Err(invalid(&format!(
                "unknown key {k:?} for type={kind} (expected: {})",
                keys.join(", ")
            )));
        }
        if matches!(kind, "image" | "moby" | "registry") {
            let mut out = ImageOutput {
                push: kind == "registry",
                names: Vec::new(),
            };
            for (k, v) in &fields {
                match *k {
                    "name" => out.names.push(ImageRef::parse(v).map_err(|e| {
                        invalid(&format!("name={v:?} is not an image reference: {e}"))
                    })?),
                    "push" => {
                        out.push = parse_bool(v).ok_or_else(|| {
                            invalid(&format!("push={v:?}: expected true or false"))
                        })?
                    }
                    _ => {}
                }
            }
            return Ok(Export::Image(out));
        }
        let dest = fields
            .iter()
            .find(|(k, _)| *k == "dest")
            .map(|(_, d)| PathBuf::from(d));
        let need_dest = |d: Option<PathBuf>| d.ok_or_else(|| invalid("dest= is required"));
        match kind {
            "local" => Ok(Export::Local {
                dest: need_dest(dest)?,
            }),
            "oci" => Ok(Export::Oci {
                dest: need_dest(dest)?,
            }),
            "tar" => Ok(Export::Tar {
                dest: need_dest(dest)?,
            }),
            _ => Ok(Export::Docker {
                dest: need_dest(dest)?,
            }),
        }
    }
}

/// Go's `strconv.ParseBool`, which BuildKit's exporters use; a bare key
/// (empty value) means true.
fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "" | "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// Writes the build's result (whose filesystem is `rootfs`) to `export`.
pub fn export(
    store: &Store,
    image: &Image,
    tags: &[ImageRef],
    rootfs: &Rootfs,
    export: &Export,
) -> Result<(), ExportError> {
    match export {
        // Named when written, pushed by `build::publish`.
        Export::Image(_) => Ok(()),
        Export::Oci { dest } => archive(store, image, tags, Format::Oci, dest),
        Export::Docker { dest } => archive(store, image, tags, Format::Docker, dest),
        Export::Tar { dest } => {
            let view = StackView::new(store, &rootfs.dirs(store), false)?;
            write_new_file(dest, |out| {
                write_tar(view.path(), out, DiffOptions::default())
                    .map(drop)
                    .map_err(|source| ExportError::Tar {
                        path: dest.to_path_buf(),
                        source,
                    })
            })
        }
        Export::Local { dest } => {
            let view = StackView::new(store, &rootfs.dirs(store), false)?;
            let io = |path: &Path| {
                let path = path.to_path_buf();
                move |source| ExportError::Io { path, source }
            };
            std::fs::create_dir_all(dest).map_err(io(dest))?;
            crate::cache::copy_tree(view.path(), dest).map_err(io(dest))
        }
    }
}

/// Writes the image as an archive at `dest` (saved by `tags`, so a
/// multi-platform name is written as its index, else by ID).
pub(super) fn archive(
    store: &Store,
    image: &Image,
    tags: &[ImageRef],
    format: Format,
    dest: &Path,
) -> Result<(), ExportError> {
    let specs: Vec<String> = if tags.is_empty() {
        vec![image.id.to_string()]
    } else {
        tags.iter().map(|t| t.to_string()).collect()
    };
    let opts = SaveOptions {
        format,
        compression: Compression::Gzip,
    };
    write_new_file(dest, |out| {
        save(store, &specs, &opts, out)
            .map(drop)
            .map_err(|source| ExportError::Archive {
                path: dest.to_path_buf(),
                source: Box::new(source),
            })
    })
}

/// Makes the file `dest` with `write`, via a temporary file next to it
/// renamed over it, so a failed export leaves nothing half-written and a
/// symlink at `dest` is replaced, not followed.
fn write_new_file(
    dest: &Path,
    write: impl FnOnce(&mut std::io::BufWriter<std::fs::File>) -> Result<(), ExportError>,
) -> Result<(), ExportError> {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "image.tar".into());
    let dir = match dest.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let tmp = dir.join(format!(".{name}.kiln-build-{}", std::process::id()));
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ExportError::Io { path, source }
    };
    // A FIFO or a device is written in place, never renamed over.
    if let Some(file) = destination::open_in_place(dest).map_err(io(dest))? {
        let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
        write(&mut out)?;
        return out
            .into_inner()
            .map(drop)
            .map_err(|e| e.into_error())
            .map_err(io(dest));
    }
    let result = (|| {
        // A new file, never one found there: a leftover of a killed build
        // is removed, and a symlink planted under this name is not
        // followed out of `dest`'s directory.
        let _ = std::fs::remove_file(&tmp);
        let file = std::fs::File::options()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(io(&tmp))?;
        let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
        write(&mut out)?;
        out.into_inner()
            .map_err(|e| e.into_error())
            .map_err(io(&tmp))?;
        std::fs::rename(&tmp, dest).map_err(io(dest))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_specs() {
        let p = |s: &str| s.parse::<Export>();
        assert_eq!(
            p("type=local,dest=out").unwrap(),
            Export::Local { dest: "out".into() }
        );
        assert_eq!(p("out").unwrap(), Export::Local { dest: "out".into() });
        assert_eq!(
            p("type=image,name=x").unwrap(),
            Export::Image(ImageOutput {
                names: vec![ImageRef::parse("x").unwrap()],
                push: false
            })
        );
        assert_eq!(
            p("type=registry,name=x").unwrap(),
            Export::Image(ImageOutput {
                names: vec![ImageRef::parse("x").unwrap()],
                push: true
            })
        );
        assert_eq!(
            p("type=image,name=x,push=true").unwrap(),
            p("type=registry,name=x").unwrap()
        );
        assert_eq!(p("type=image,push").unwrap(), p("type=registry").unwrap());
        assert_eq!(
            p("type=registry,push=false").unwrap(),
            p("type=image").unwrap()
        );
        assert_eq!(
            p("type=oci,dest=a.tar").unwrap(),
            Export::Oci {
                dest: "a.tar".into()
            }
        );
        assert_eq!(
            p("type=tar,dest=fs.tar").unwrap(),
            Export::Tar {
                dest: "fs.tar".into()
            }
        );
        assert!(p("type=local").is_err());
        assert!(p("type=zip,dest=x").is_err());
        assert!(p("-").is_err());
    }

    /// Regression: `push=true` with a typo (or any key kiln does not
    /// know) was accepted and ignored.
    #[test]
    fn unknown_output_keys_and_types_name_the_valid_ones() {
        let err = |s: &str| s.parse::<Export>().unwrap_err().to_string();
        let e = err("type=image,name=x,psuh=true");
        assert!(
            e.contains("unknown key \"psuh\"") && e.contains("name, push"),
            "{e}"
        );
        let e = err("type=local,dest=out,name=x");
        assert!(
            e.contains("unknown key \"name\"") && e.contains("dest"),
            "{e}"
        );
        let e = err("type=zip,dest=x");
        assert!(e.contains("\"zip\"") && e.contains("registry"), "{e}");
        let e = err("type=image,push=maybe");
        assert!(e.contains("push=\"maybe\""), "{e}");
        let e = err("type=image,name=UPPER");
        assert!(e.contains("name=\"UPPER\""), "{e}");
    }
}
