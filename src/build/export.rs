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
//!   docker-archive tar (kiln save's code), named with the build's `-t`
//!   names, with BuildKit's image options ([`super::export_options`]:
//!   gzip layers by default, compression, levels, media types,
//!   annotations).
//!
//! `dest=-` (and a `tar` or `oci` output without `dest`, and `-o -`, a
//! tar) writes to stdout, refused when stdout is a terminal and for more
//! than one output, as buildx does (docker/buildx `build/opt.go`,
//! `CreateExports`).
//!
//! With attestations (`--provenance`, `--sbom`), `type=oci` names an image
//! index holding the image manifest and its attestation manifest, and
//! `type=local`/`type=tar` get `provenance.json` / `sbom.spdx.json` beside
//! the filesystem (BuildKit's local and tar exporters, moby/buildkit
//! `exporter/local/fs.go`, `CreateFS`); `type=docker` carries none.
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
use crate::image::reference::ImageRef;
use crate::transfer::archive::{destination, save_attached, Format, SaveOptions};

use super::attestations::Attestations;

use super::export_options::{set_image_annotation, ArchiveOptions, ARCHIVE_KEYS};

/// One `--output`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Export {
    /// The store (what every build does anyway), under `names`, and
    /// pushed to their registries when `push` is set.
    Image(ImageOutput),
    /// The root filesystem into a directory.
    Local { dest: PathBuf },
    /// The root filesystem as a tar file.
    Tar { dest: Destination },
    /// An OCI layout tar.
    Oci {
        dest: Destination,
        options: ArchiveOptions,
    },
    /// A `docker load` tar.
    Docker {
        dest: Destination,
        options: ArchiveOptions,
    },
}

/// Where a file output goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    File(PathBuf),
    /// `dest=-`.
    Stdout,
}

impl Export {
    /// Whether the output is written to stdout.
    pub fn to_stdout(&self) -> bool {
        matches!(
            self,
            Export::Tar {
                dest: Destination::Stdout
            } | Export::Oci {
                dest: Destination::Stdout,
                ..
            } | Export::Docker {
                dest: Destination::Stdout,
                ..
            }
        )
    }
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
    /// Annotations of the image manifest (`annotation.K=V`, `--annotation`),
    /// in the stored manifest and so in the pushed one.
    pub annotations: std::collections::BTreeMap<String, String>,
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
    #[error(transparent)]
    Attest(Box<super::attestations::AttestError>),
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
    /// means `type=local,dest=PATH`, and `-` a tar on stdout, buildx's
    /// `ParseExports`).
    fn from_str(value: &str) -> Result<Export, ExportError> {
        let invalid = |reason: &str| ExportError::Invalid {
            value: value.to_string(),
            reason: reason.to_string(),
        };
        if !value.contains('=') {
            if value.is_empty() {
                return Err(invalid("type= is required"));
            }
            if value == "-" {
                return Ok(Export::Tar {
                    dest: Destination::Stdout,
                });
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
        let is_archive = matches!(kind, "oci" | "docker");
        let mut archive = ArchiveOptions::defaults(kind);
        for (k, v) in &fields {
            if keys.contains(k) {
                continue;
            }
            let taken = if is_archive {
                archive.set(k, v).map_err(|reason| invalid(&reason))?
            } else if keys == IMAGE_KEYS {
                // Checked here, kept by the image branch below.
                let mut scratch = std::collections::BTreeMap::new();
                set_image_annotation(&mut scratch, k, v).map_err(|reason| invalid(&reason))?
            } else {
                false
            };
            if !taken {
                let mut valid = keys.to_vec();
                if is_archive {
                    valid.extend_from_slice(ARCHIVE_KEYS);
                } else if k.starts_with("annotation") && keys != IMAGE_KEYS
                    || ARCHIVE_KEYS.contains(k)
                {
                    return Err(invalid(&format!(
                        "{k} is not supported for type={kind} (kiln writes image options only \
                         into type=oci and type=docker outputs)"
                    )));
                }
                return Err(invalid(&format!(
                    "unknown key {k:?} for type={kind} (expected: {})",
                    valid.join(", ")
                )));
            }
        }
        if matches!(kind, "image" | "moby" | "registry") {
            let mut out = ImageOutput {
                push: kind == "registry",
                ..ImageOutput::default()
            };
            for (k, v) in &fields {
                match *k {
                    k if k.starts_with("annotation") => {
                        set_image_annotation(&mut out.annotations, k, v)
                            .map_err(|reason| invalid(&reason))?;
                    }
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
        let dest = fields.iter().find(|(k, _)| *k == "dest").map(|(_, d)| *d);
        // buildx writes tar and oci outputs without a dest to stdout; a
        // docker one would go to the docker daemon, which kiln has not.
        let file = |d: Option<&str>| match d {
            Some("-") => Ok(Destination::Stdout),
            Some(path) if !path.is_empty() => Ok(Destination::File(PathBuf::from(path))),
            Some(_) => Err(invalid("dest= is required")),
            None if kind == "docker" => Err(invalid("dest= is required")),
            None => Ok(Destination::Stdout),
        };
        let archive = || archive.clone().finish().map_err(|reason| invalid(&reason));
        match kind {
            "local" => match dest {
                Some(d) if !d.is_empty() && d != "-" => Ok(Export::Local {
                    dest: PathBuf::from(d),
                }),
                Some("-") => Err(invalid("type=local writes a directory, not stdout")),
                _ => Err(invalid("dest= is required")),
            },
            "oci" => Ok(Export::Oci {
                dest: file(dest)?,
                options: archive()?,
            }),
            "tar" => Ok(Export::Tar { dest: file(dest)? }),
            _ => Ok(Export::Docker {
                dest: file(dest)?,
                options: archive()?,
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

/// Writes the build's result (whose filesystem is `rootfs`) to `export`,
/// with `attestations` where the output can hold them.
pub fn export(
    store: &Store,
    image: &Image,
    tags: &[ImageRef],
    rootfs: &Rootfs,
    export: &Export,
    attestations: Option<&Attestations>,
) -> Result<(), ExportError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ExportError::Io { path, source }
    };
    match export {
        // Named when written, pushed by `build::publish`.
        Export::Image(_) => Ok(()),
        Export::Oci { dest, options } => {
            let attach = |d: &crate::image::oci::Descriptor| match attestations {
                Some(a) => a.attach(d, tags),
                None => Vec::new(),
            };
            archive(store, image, tags, Format::Oci, options, dest, &attach)
        }
        Export::Docker { dest, options } => archive(
            store,
            image,
            tags,
            Format::Docker,
            options,
            dest,
            &crate::transfer::attached::nothing,
        ),
        Export::Tar { dest } => {
            let view = StackView::new(store, &rootfs.dirs(store), false)?;
            let files = statement_files(view.path(), attestations)?;
            write_to(dest, |out, path| {
                let tar_err = |source| ExportError::Tar {
                    path: path.to_path_buf(),
                    source,
                };
                if files.is_empty() {
                    return write_tar(view.path(), out, DiffOptions::default())
                        .map(drop)
                        .map_err(tar_err);
                }
                // The filesystem's tar without its end marker, then the
                // statements, then the marker.
                let (held, _) = write_tar(
                    view.path(),
                    trailer::HoldBack::new(out),
                    DiffOptions::default(),
                )
                .map_err(tar_err)?;
                let mut b = tar::Builder::new(held.into_inner());
                for (name, bytes) in &files {
                    let mut h = tar::Header::new_ustar();
                    h.set_size(bytes.len() as u64);
                    h.set_mode(0o600);
                    h.set_entry_type(tar::EntryType::Regular);
                    b.append_data(&mut h, name, bytes.as_slice())
                        .map_err(io(path))?;
                }
                b.finish().map_err(io(path))
            })
        }
        Export::Local { dest } => {
            let view = StackView::new(store, &rootfs.dirs(store), false)?;
            let files = statement_files(view.path(), attestations)?;
            std::fs::create_dir_all(dest).map_err(io(dest))?;
            crate::cache::copy_tree(view.path(), dest).map_err(io(dest))?;
            for (name, bytes) in files {
                let path = dest.join(&name);
                // Replaces whatever the image had under that name (a
                // symlink included: never written through).
                let _ = std::fs::remove_file(&path);
                use std::io::Write;
                use std::os::unix::fs::OpenOptionsExt;
                std::fs::File::options()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)
                    .and_then(|mut f| f.write_all(&bytes))
                    .map_err(io(&path))?;
            }
            Ok(())
        }
    }
}

/// The statement files about the filesystem at `root`.
fn statement_files(
    root: &Path,
    attestations: Option<&Attestations>,
) -> Result<Vec<(String, Vec<u8>)>, ExportError> {
    match attestations {
        Some(a) => a.files(root).map_err(|e| ExportError::Attest(Box::new(e))),
        None => Ok(Vec::new()),
    }
}

/// A writer that keeps back the last 1,024 bytes written: the two zero
/// blocks ending a tar archive, so entries can follow.
mod trailer {
    use std::io::{self, Write};

    const END: usize = 1024;

    pub struct HoldBack<W: Write> {
        inner: W,
        held: Vec<u8>,
    }

    impl<W: Write> HoldBack<W> {
        pub fn new(inner: W) -> Self {
            HoldBack {
                inner,
                held: Vec::with_capacity(2 * END),
            }
        }

        /// The writer, the held-back end marker dropped.
        pub fn into_inner(self) -> W {
            self.inner
        }
    }

    impl<W: Write> Write for HoldBack<W> {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.held.extend_from_slice(buf);
            if self.held.len() > END {
                let n = self.held.len() - END;
                self.inner.write_all(&self.held[..n])?;
                self.held.drain(..n);
            }
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            self.inner.flush()
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        /// The last 1,024 bytes never reach the writer, however the
        /// writes were split.
        #[test]
        fn holds_back_exactly_the_end_marker() {
            let data: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
            let mut h = HoldBack::new(Vec::new());
            for chunk in data.chunks(333) {
                h.write_all(chunk).unwrap();
            }
            assert_eq!(h.into_inner(), &data[..data.len() - END]);
            let mut h = HoldBack::new(Vec::new());
            h.write_all(&data[..1000]).unwrap();
            assert!(h.into_inner().is_empty());
        }
    }
}

/// Writes the image as an archive at `dest`, with its attestation
/// manifest when there are attestations.
pub(super) fn archive(
    store: &Store,
    image: &Image,
    tags: &[ImageRef],
    format: Format,
    options: &ArchiveOptions,
    dest: &Destination,
    attach: crate::transfer::attached::Attach<'_>,
) -> Result<(), ExportError> {
    let specs: Vec<String> = if tags.is_empty() {
        vec![image.id.to_string()]
    } else {
        tags.iter().map(|t| t.to_string()).collect()
    };
    let opts = SaveOptions {
        format,
        compression: options.compression,
        manifest: options.manifest.clone(),
    };
    write_to(dest, |out, path| {
        save_attached(store, &specs, &opts, out, attach)
            .map(drop)
            .map_err(|source| ExportError::Archive {
                path: path.to_path_buf(),
                source: Box::new(source),
            })
    })
}

/// Writes a file output with `write` (given the writer and the path its
/// errors name): into `dest`'s file (see [`write_new_file`]) or to stdout.
fn write_to(
    dest: &Destination,
    write: impl FnOnce(&mut dyn std::io::Write, &Path) -> Result<(), ExportError>,
) -> Result<(), ExportError> {
    match dest {
        Destination::File(path) => write_new_file(path, |out| write(out, path)),
        Destination::Stdout => {
            let path = Path::new("stdout");
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
            write(&mut out, path)?;
            std::io::Write::flush(&mut out).map_err(|source| ExportError::Io {
                path: path.to_path_buf(),
                source,
            })
        }
    }
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
                push: false,
                ..ImageOutput::default()
            })
        );
        assert_eq!(
            p("type=registry,name=x").unwrap(),
            Export::Image(ImageOutput {
                names: vec![ImageRef::parse("x").unwrap()],
                push: true,
                ..ImageOutput::default()
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
                dest: Destination::File("a.tar".into()),
                options: ArchiveOptions::defaults("oci"),
            }
        );
        assert_eq!(
            p("type=tar,dest=fs.tar").unwrap(),
            Export::Tar {
                dest: Destination::File("fs.tar".into())
            }
        );
        assert!(p("type=local").is_err());
        assert!(p("type=zip,dest=x").is_err());
    }

    /// `dest=-`, a tar or oci output without dest, and `-o -` (a tar) go to
    /// stdout, as in buildx; a docker one needs a dest (buildx would load
    /// it into the docker daemon) and a local one a directory.
    #[test]
    fn stdout_destinations_follow_buildx() {
        let p = |s: &str| s.parse::<Export>();
        for (spec, stdout) in [
            ("-", true),
            ("type=tar,dest=-", true),
            ("type=tar", true),
            ("type=oci", true),
            ("type=docker,dest=-", true),
            ("type=oci,dest=x.tar", false),
        ] {
            assert_eq!(p(spec).unwrap().to_stdout(), stdout, "{spec}");
        }
        assert!(matches!(p("-").unwrap(), Export::Tar { .. }));
        for bad in ["type=docker", "type=local,dest=-", "type=tar,dest="] {
            assert!(p(bad).is_err(), "{bad}");
        }
    }

    /// The image options are taken by oci and docker outputs only; the
    /// others name where they belong.
    #[test]
    fn image_options_belong_to_archive_outputs() {
        let p = |s: &str| s.parse::<Export>();
        let Ok(Export::Docker { options, .. }) =
            p("type=docker,dest=a,compression=zstd,compression-level=3,annotation.k=v")
        else {
            panic!("not parsed")
        };
        assert_eq!(options.compression, crate::image::layer::Compression::Zstd);
        assert_eq!(options.manifest.manifest_annotations["k"], "v");
        let err = |s: &str| p(s).unwrap_err().to_string();
        let e = err("type=image,compression=zstd");
        assert!(
            e.contains("compression is not supported for type=image"),
            "{e}"
        );
        let e = err("type=tar,dest=a,annotation.k=v");
        assert!(e.contains("not supported for type=tar"), "{e}");
        let e = err("type=oci,dest=a,compresion=zstd");
        assert!(
            e.contains("unknown key \"compresion\"") && e.contains("compression-level"),
            "{e}"
        );
        let e = err("type=oci,dest=a,compression=estargz");
        assert!(e.contains("estargz is not supported"), "{e}");
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
