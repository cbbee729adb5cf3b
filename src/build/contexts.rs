//! Contexts that are not the local directory: `--build-context NAME=VALUE`
//! (buildx's values, docker/buildx `build/opt.go` `toSolveOpt`, read by
//! BuildKit's `frontend/dockerui/namedcontext.go` `NamedContext.load`),
//! and a Git or HTTP(S) URL as the main context (BuildKit's
//! `frontend/dockerui/context.go`, `DetectGitContext`/`DetectHTTPContext`).
//!
//! Every value is made local before lowering: a Git repository is checked
//! out into the store (`exec::git_source`, keyed by commit), a download is
//! fetched into the store (`exec::http_source`), so the lowering sees only
//! directories (read as contexts, each with its own `.dockerignore`) and
//! images (resolved as base images are, from the store or pulled).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use crate::cache::Store;
use crate::context::dockerignore::{DockerIgnore, IgnoreError};
use crate::error_chain::Chain;
use crate::exec::git_source::{self, GitSourceError};
use crate::exec::http_source::{self, HttpSourceError};
use crate::exec::ContextDir;
use crate::frontend::dockerfile::{context_key, source_name, NamedContext};
use crate::image::layer::budget::ExpansionBudget;
use crate::image::reference::ImageRef;
use crate::solver::HttpSource;
use crate::source::git_ref::{GitRef, GitRefError};
use crate::source::url::{is_git_url, redact_password};
use crate::transfer::archive::layout_dir::{load_layout_dir, LayoutPick};

/// What a `--build-context` value names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContextValue {
    /// A local directory (buildx: any value that is not a URL or a
    /// `docker-image://`, `oci-layout://` reference).
    Dir(PathBuf),
    /// `docker-image://REF`: an image, from the store or pulled.
    Image(ImageRef),
    /// `docker-image://scratch`: nothing (BuildKit's `llb.Scratch`).
    Scratch,
    /// `oci-layout://PATH[:TAG|@DIGEST]`: an image of an OCI layout
    /// directory (the tag defaults to `latest`, buildx's rule).
    OciLayout { dir: PathBuf, pick: LayoutPick },
    /// A Git repository (`https://…/repo.git#ref:subdir`, `git@…`,
    /// `git://`, `ssh://`).
    Git(GitRef),
    /// An HTTP(S) URL that is not a repository: BuildKit fetches it as a
    /// single file named `context` (`llb.HTTP(…, llb.Filename("context"))`).
    Url(String),
}

/// Why a `--build-context` (or a remote main context) cannot be used.
/// Messages name the flag and the value.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("--build-context {spec:?}: expected NAME=VALUE")]
    Syntax { spec: String },
    #[error("--build-context {spec:?}: {message}")]
    InvalidName { spec: String, message: String },
    #[error("--build-context {name}: unsupported context source {scheme:?} (expected a directory, docker-image://, oci-layout://, an http(s) URL or a git URL)")]
    Unsupported { name: String, scheme: String },
    #[error("--build-context {name}: invalid image reference {value:?}")]
    Image {
        name: String,
        value: String,
        #[source]
        source: crate::image::reference::ReferenceError,
    },
    #[error("--build-context {name}: {}: not a directory", path.display())]
    NotADirectory { name: String, path: PathBuf },
    #[error("--build-context {name} given twice")]
    Duplicate { name: String },
    #[error("{what}: invalid git URL")]
    GitUrl {
        what: String,
        #[source]
        source: GitRefError,
    },
    #[error("{what}")]
    Git {
        what: String,
        #[source]
        source: GitSourceError,
    },
    #[error("{what}: fetching {url}")]
    Http {
        what: String,
        url: String,
        #[source]
        source: Box<HttpSourceError>,
    },
    #[error("{what}: loading the OCI layout {}", dir.display())]
    Layout {
        what: String,
        dir: PathBuf,
        #[source]
        source: Box<crate::transfer::archive::ArchiveError>,
    },
    #[error("{what}: reading its .dockerignore")]
    Ignore {
        what: String,
        #[source]
        source: IgnoreError,
    },
    #[error("{what}: {op}")]
    Io {
        what: String,
        op: String,
        #[source]
        source: std::io::Error,
    },
}

/// Parses one `--build-context NAME=VALUE` into its lookup key (see
/// [`context_key`]) and value. Local directories are checked here, so a
/// typo fails before anything runs.
pub fn parse(spec: &str) -> Result<(String, ContextValue), ContextError> {
    let (name, value) = spec
        .split_once('=')
        .filter(|(n, v)| !n.is_empty() && !v.is_empty())
        .ok_or_else(|| ContextError::Syntax {
            spec: spec.to_string(),
        })?;
    let key = context_key(name).map_err(|message| ContextError::InvalidName {
        spec: spec.to_string(),
        message,
    })?;
    let value = if let Some(reference) = value.strip_prefix("docker-image://") {
        if reference == "scratch" {
            ContextValue::Scratch
        } else {
            ContextValue::Image(ImageRef::parse(reference).map_err(|source| {
                ContextError::Image {
                    name: name.to_string(),
                    value: reference.to_string(),
                    source,
                }
            })?)
        }
    } else if let Some(layout) = value.strip_prefix("oci-layout://") {
        oci_layout(name, layout)?
    } else if is_git_url(value) {
        ContextValue::Git(GitRef::parse(value).map_err(|source| ContextError::GitUrl {
            what: format!("--build-context {name}"),
            source,
        })?)
    } else if value.starts_with("http://") || value.starts_with("https://") {
        ContextValue::Url(value.to_string())
    } else if let Some((scheme, _)) = value.split_once("://") {
        // `target:` (bake), `input:` … are BuildKit's but not kiln's.
        return Err(ContextError::Unsupported {
            name: name.to_string(),
            scheme: format!("{scheme}://"),
        });
    } else {
        let path = PathBuf::from(value);
        if !path.is_dir() {
            return Err(ContextError::NotADirectory {
                name: name.to_string(),
                path,
            });
        }
        ContextValue::Dir(std::fs::canonicalize(&path).unwrap_or(path))
    };
    Ok((key, value))
}

/// `PATH[:TAG|@DIGEST]` of `oci-layout://` (docker/buildx `build/opt.go`,
/// `toSolveOpt`: cut at `@`, then at the first `:`; tag `latest` by
/// default).
fn oci_layout(name: &str, value: &str) -> Result<ContextValue, ContextError> {
    let bad = |message: String| ContextError::InvalidName {
        spec: format!("{name}=oci-layout://{value}"),
        message,
    };
    let (rest, digest) = match value.split_once('@') {
        Some((p, d)) => (p, Some(d)),
        None => (value, None),
    };
    let (path, tag) = match rest.split_once(':') {
        Some((p, t)) => (p, t),
        None => (rest, "latest"),
    };
    let pick = match digest {
        Some(d) => LayoutPick::Digest(d.parse().map_err(|_| {
            bad(format!(
                "invalid digest {d:?}: expected sha256:<64 hex digits>"
            ))
        })?),
        None => LayoutPick::Tag(tag.to_string()),
    };
    let dir = PathBuf::from(path);
    if !dir.join("index.json").is_file() {
        return Err(bad(format!(
            "{path}: not an OCI layout directory (no index.json)"
        )));
    }
    Ok(ContextValue::OciLayout { dir, pick })
}

/// The named contexts made ready: what the lowering is told, and the
/// directories the executor reads by context source name.
#[derive(Debug, Default)]
pub struct Resolved {
    pub lowering: BTreeMap<String, NamedContext>,
    pub dirs: HashMap<String, ContextDir>,
    /// The Git checkouts among them, kept from `kiln builder prune` while
    /// this is alive.
    pub leases: Vec<git_source::CheckoutLease>,
}

/// Makes every named context local: Git checkouts and downloads go to the
/// store; directories get their own `.dockerignore` (BuildKit reads
/// `.dockerignore` at the named context's root, `NamedContext.load`).
pub fn resolve(store: &Store, named: &[(String, ContextValue)]) -> Result<Resolved, ContextError> {
    let mut out = Resolved::default();
    for (key, value) in named {
        if out.lowering.contains_key(key) {
            return Err(ContextError::Duplicate { name: key.clone() });
        }
        let what = format!("--build-context {key}");
        let dir = match value {
            ContextValue::Image(reference) => {
                out.lowering
                    .insert(key.clone(), NamedContext::Image(reference.clone()));
                continue;
            }
            ContextValue::OciLayout { dir, pick } => {
                let reference = load_layout(store, key, dir, pick, &what)?;
                out.lowering
                    .insert(key.clone(), NamedContext::Image(reference));
                continue;
            }
            ContextValue::Dir(dir) => dir.clone(),
            ContextValue::Scratch => empty_dir(store, &what)?,
            ContextValue::Git(git) => {
                let checkout = git_source::checkout(store, git, false, None).map_err(|source| {
                    ContextError::Git {
                        what: what.clone(),
                        source,
                    }
                })?;
                out.leases.push(checkout.lease);
                checkout.dir
            }
            ContextValue::Url(url) => download_as_context_file(store, url, &what)?,
        };
        let ignore = own_dockerignore(&dir, &what)?;
        let exclude = ignore.patterns().iter().map(super::pattern_text).collect();
        out.lowering
            .insert(key.clone(), NamedContext::Files { exclude });
        out.dirs
            .insert(source_name(key), ContextDir { dir, ignore });
    }
    Ok(out)
}

/// Loads the layout's image into the store, known only by
/// `NAME@<manifest digest>` (BuildKit's dummy reference for the same, in
/// `namedcontext.go`), and returns that reference.
fn load_layout(
    store: &Store,
    key: &str,
    dir: &Path,
    pick: &LayoutPick,
    what: &str,
) -> Result<ImageRef, ContextError> {
    let name = ImageRef::parse(key)
        .map(|r| r.name())
        .unwrap_or_else(|_| key.to_string());
    let pinned = |d: &crate::image::Digest| ImageRef::parse(&format!("{name}@{d}")).ok();
    let image =
        load_layout_dir(store, dir, pick, pinned).map_err(|source| ContextError::Layout {
            what: what.to_string(),
            dir: dir.to_path_buf(),
            source: Box::new(source),
        })?;
    pinned(&image.manifest_digest).ok_or_else(|| ContextError::Io {
        what: what.to_string(),
        op: format!("naming the image of {}", dir.display()),
        source: std::io::Error::other("not a valid reference"),
    })
}

/// `DIR/.dockerignore`, or no rules.
fn own_dockerignore(dir: &Path, what: &str) -> Result<DockerIgnore, ContextError> {
    let path = dir.join(".dockerignore");
    if !path.is_file() {
        return Ok(DockerIgnore::default());
    }
    DockerIgnore::read(&path).map_err(|source| ContextError::Ignore {
        what: what.to_string(),
        source,
    })
}

fn empty_dir(store: &Store, what: &str) -> Result<PathBuf, ContextError> {
    let dir = scratch(store, "empty-context", what)?;
    std::fs::create_dir_all(&dir).map_err(|source| ContextError::Io {
        what: what.to_string(),
        op: "creating an empty context".into(),
        source,
    })?;
    Ok(dir)
}

fn scratch(store: &Store, name: &str, what: &str) -> Result<PathBuf, ContextError> {
    store.scratch_path(name).map_err(|e| ContextError::Io {
        what: what.to_string(),
        op: "preparing a scratch dir".into(),
        source: std::io::Error::other(Chain(&e).to_string()),
    })
}

/// Downloads `url` (conditionally, kept per URL as `ADD <url>` keeps it)
/// into a scratch dir as its one file, `context`.
fn download_as_context_file(store: &Store, url: &str, what: &str) -> Result<PathBuf, ContextError> {
    let remote = fetch(store, url, what)?;
    let dir = scratch(store, "url-context", what)?;
    let io = |op: &str| {
        let op = op.to_string();
        move |source| ContextError::Io {
            what: what.to_string(),
            op,
            source,
        }
    };
    std::fs::create_dir_all(&dir).map_err(io("creating the context dir"))?;
    std::fs::copy(&remote.file, dir.join("context")).map_err(io("copying the download"))?;
    Ok(dir)
}

fn fetch(store: &Store, url: &str, what: &str) -> Result<http_source::RemoteFile, ContextError> {
    let source = HttpSource {
        url: url.to_string(),
        checksum: None,
    };
    http_source::fetch(store, &source).map_err(|source| ContextError::Http {
        what: what.to_string(),
        url: redact_password(url),
        source: Box::new(source),
    })
}

/// What a remote main context became.
#[derive(Debug)]
pub enum MainContext {
    /// A directory to build (a checkout, an unpacked archive); a
    /// checkout's lease must be held until the build ends.
    Dir(PathBuf, Option<git_source::CheckoutLease>),
    /// The URL was not an archive: BuildKit then takes its content as the
    /// Dockerfile, with no context.
    Dockerfile(Vec<u8>),
}

/// `kiln build <git url>`: the checkout (its `#ref:subdir` applied).
pub fn git_main_context(store: &Store, url: &str) -> Result<MainContext, ContextError> {
    let what = format!("git context {}", redact_password(url));
    let git = GitRef::parse(url).map_err(|source| ContextError::GitUrl {
        what: what.clone(),
        source,
    })?;
    let checkout = git_source::checkout(store, &git, false, None)
        .map_err(|source| ContextError::Git { what, source })?;
    Ok(MainContext::Dir(checkout.dir, Some(checkout.lease)))
}

/// `kiln build <http(s) url>`: an archive (tar, possibly compressed) is
/// unpacked as the context; anything else is the Dockerfile (BuildKit's
/// `dockerui` main context: `isArchive` on the first bytes).
pub fn url_main_context(store: &Store, url: &str) -> Result<MainContext, ContextError> {
    let what = format!("remote context {}", redact_password(url));
    let remote = fetch(store, url, &what)?;
    let file = std::fs::File::open(&remote.file).map_err(|source| ContextError::Io {
        what: what.clone(),
        op: "opening the download".into(),
        source,
    })?;
    let dir = scratch(store, "url-context", &what)?;
    let mut budget = ExpansionBudget::from_env();
    match super::input::read_stdin(file, &dir, &mut budget).map_err(|e| ContextError::Io {
        what: what.clone(),
        op: "unpacking".into(),
        source: std::io::Error::other(Chain(&e).to_string()),
    })? {
        super::input::StdinInput::Context => Ok(MainContext::Dir(dir, None)),
        super::input::StdinInput::Dockerfile(data) => Ok(MainContext::Dockerfile(data)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_told_apart_as_buildx_does() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display().to_string();
        assert!(
            matches!(parse(&format!("src={d}")).unwrap(), (k, ContextValue::Dir(_)) if k == "src")
        );
        assert!(matches!(
            parse("alpine:latest=docker-image://busybox").unwrap(),
            (k, ContextValue::Image(_)) if k == "alpine"
        ));
        assert!(matches!(
            parse("base=docker-image://scratch").unwrap().1,
            ContextValue::Scratch
        ));
        assert!(matches!(
            parse("repo=https://h/r.git#main:sub").unwrap().1,
            ContextValue::Git(g) if g.subdir.as_deref() == Some("sub")
        ));
        assert!(matches!(
            parse("t=https://h/ctx.tar.gz").unwrap().1,
            ContextValue::Url(_)
        ));
    }

    #[test]
    fn bad_values_name_the_flag() {
        for (spec, expected) in [
            (
                "novalue",
                "--build-context \"novalue\": expected NAME=VALUE",
            ),
            ("x=", "--build-context \"x=\": expected NAME=VALUE"),
            (
                "x=oci-layout://dir",
                "--build-context \"x=oci-layout://dir\": dir: not an OCI layout directory",
            ),
            (
                "x=oci-layout://d@sha256:12",
                "--build-context \"x=oci-layout://d@sha256:12\": invalid digest",
            ),
            (
                "x=ftp://h/f",
                "--build-context x: unsupported context source \"ftp://\"",
            ),
            (
                "x=/nonexistent/kiln",
                "--build-context x: /nonexistent/kiln: not a directory",
            ),
            (
                "x=docker-image://UPPER",
                "--build-context x: invalid image reference \"UPPER\"",
            ),
            (
                "Bad Name=.",
                "--build-context \"Bad Name=.\": invalid context name Bad Name",
            ),
        ] {
            let e = Chain(&parse(spec).unwrap_err()).to_string();
            assert!(e.starts_with(expected), "{spec}: {e}");
        }
    }
}
