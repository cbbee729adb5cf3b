//! COPY/ADD sources: paths and wildcards in the source root, `--parents`
//! roots, heredocs and downloaded files, expanded into the items the copy
//! walks, plus the scratch directory heredocs are written to.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::{CopyError, CopySource, CopySpec, SourceKind};
use crate::context::dockerignore::DockerIgnore;
use crate::context::scan::name_bytes;
use crate::context::wildcard::{
    clean_components, contains_wildcards, resolve_wildcards, SourceRoot,
};
use crate::exec::attrs::Time;
use crate::fs::path_in_root::resolve_in_root;
use crate::source::url::redact_password;

/// A temporary directory for heredoc files and the `--chown` lookup,
/// removed when dropped.
pub(super) struct Scratch {
    dir: Option<PathBuf>,
}

impl Scratch {
    /// No directory until one is needed.
    pub(super) fn new() -> Scratch {
        Scratch { dir: None }
    }

    fn dir(&mut self) -> Result<&Path, CopyError> {
        if self.dir.is_none() {
            use std::sync::atomic::{AtomicU64, Ordering};
            static COUNTER: AtomicU64 = AtomicU64::new(0);
            let dir = std::env::temp_dir().join(format!(
                "kiln-copy-{}-{}-{}",
                std::process::id(),
                Time::now().nsec,
                COUNTER.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir(&dir).map_err(|source| CopyError::Io {
                op: "create scratch directory",
                path: dir.display().to_string(),
                source,
            })?;
            self.dir = Some(dir);
        }
        Ok(self.dir.as_deref().unwrap_or(Path::new("/")))
    }

    /// A new empty subdirectory.
    pub(super) fn subdir(&mut self, name: &str) -> Result<PathBuf, CopyError> {
        let dir = self.dir()?.join(name);
        std::fs::create_dir(&dir).map_err(|source| CopyError::Io {
            op: "create scratch directory",
            path: dir.display().to_string(),
            source,
        })?;
        Ok(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            if let Err(e) = std::fs::remove_dir_all(dir) {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot remove scratch directory");
            }
        }
    }
}

/// One thing to copy after sources are expanded.
pub(super) struct Item {
    /// The root the source path is in.
    pub(super) root: PathBuf,
    /// The path below `root` (no leading `/`; empty for the root).
    pub(super) rel: String,
    /// Owner of copied entries; `None` keeps the source's.
    pub(super) owner: Option<(u32, u32)>,
    pub(super) follow: bool,
    /// `--parents` include pattern matcher.
    pub(super) include: Option<DockerIgnore>,
    /// Try to extract it as an archive.
    pub(super) unpack: bool,
    /// How to name it in messages.
    pub(super) label: String,
}

/// Cleans a path like Go's `path.Join("/", p)`: absolute, no `.`/`..`
/// (clamped at `/`), no trailing slash.
pub(super) fn clean_abs(path: &str) -> String {
    format!("/{}", clean_components(path).join("/"))
}

/// Expands sources into items: wildcards resolved, heredocs written to
/// scratch files, downloaded files taken where the HTTP source left them.
pub(super) fn expand_sources(
    spec: &CopySpec,
    source_root: &Path,
    chown: Option<(u32, u32)>,
    scratch: &mut Scratch,
) -> Result<Vec<Item>, CopyError> {
    let root_name = match spec.source_kind {
        SourceKind::Context => "build context",
        SourceKind::Stage => "source stage",
    };
    let local_owner = match (chown, spec.source_kind) {
        (Some(ids), _) => Some(ids),
        (None, SourceKind::Context) => Some((0, 0)),
        (None, SourceKind::Stage) => None,
    };
    let mut items = Vec::new();
    for (index, source) in spec.sources.iter().enumerate() {
        match source {
            CopySource::Heredoc { name, content } => {
                let dir = scratch.subdir(&format!("heredoc-{index}"))?;
                let file = dir.join(name);
                let io_err = |source| CopyError::Io {
                    op: "write heredoc",
                    path: name.clone(),
                    source,
                };
                if name.is_empty() || name.contains('/') {
                    return Err(CopyError::InvalidSpec(format!(
                        "invalid heredoc file name {name:?}"
                    )));
                }
                std::fs::write(&file, content).map_err(io_err)?;
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644))
                    .map_err(io_err)?;
                items.push(Item {
                    root: dir,
                    rel: name.clone(),
                    owner: Some(chown.unwrap_or((0, 0))),
                    follow: false,
                    include: None,
                    unpack: false,
                    label: format!("<<{name}"),
                });
            }
            CopySource::Remote { url, file } => {
                // Messages name the URL; its password stays out of them.
                let label = redact_password(url);
                let (Some(dir), Some(name)) = (file.parent(), file.file_name()) else {
                    return Err(CopyError::InvalidSpec(format!(
                        "invalid download path {} for {label}",
                        file.display()
                    )));
                };
                items.push(Item {
                    root: dir.to_path_buf(),
                    rel: name.to_string_lossy().into_owned(),
                    owner: Some(chown.unwrap_or((0, 0))),
                    follow: false,
                    include: None,
                    unpack: spec.unpack == Some(true),
                    label,
                });
            }
            CopySource::Path(path) => {
                let (src, include) = if spec.parents {
                    parents_source(source_root, path, spec.follow_symlinks, root_name)?
                } else {
                    (clean_abs(path), None)
                };
                let kind = match spec.source_kind {
                    SourceKind::Context => SourceRoot::Context,
                    SourceKind::Stage => SourceRoot::Rootfs,
                };
                let matches = resolve_wildcards(source_root, &src, spec.follow_symlinks, kind)?;
                for rel in matches {
                    items.push(Item {
                        root: source_root.to_path_buf(),
                        label: format!("/{rel}"),
                        rel,
                        owner: local_owner,
                        follow: spec.follow_symlinks,
                        include: include.clone(),
                        unpack: spec.is_add && spec.unpack != Some(false),
                    });
                }
            }
        }
    }
    for item in &items {
        // A literal source must exist; wildcard matches do.
        let host = source_host(item)?;
        if let Err(e) = std::fs::symlink_metadata(&host) {
            if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENOTDIR) {
                return Err(CopyError::SourceNotFound {
                    path: item.label.clone(),
                    root: root_name,
                });
            }
        }
    }
    Ok(items)
}

/// `--parents`: the copy root (the part before a `/./` pivot, or `/`) and
/// an include matcher for the rest; a literal path must exist.
fn parents_source(
    root: &Path,
    path: &str,
    follow: bool,
    root_name: &'static str,
) -> Result<(String, Option<DockerIgnore>), CopyError> {
    let (base, pattern) = match path.split_once("/./") {
        Some((base, pattern)) => (base.to_string(), pattern.to_string()),
        None => ("/".to_string(), path.to_string()),
    };
    let pattern = clean_abs(&pattern).trim_start_matches('/').to_string();
    if !contains_wildcards(&base) && !contains_wildcards(&pattern) {
        let required = clean_abs(&format!("{base}/{pattern}"));
        let host = if follow {
            resolve_in_root(root, Path::new(&required))
        } else {
            resolve_in_root(
                root,
                Path::new(&required).parent().unwrap_or(Path::new("/")),
            )
            .map(|p| p.join(Path::new(&required).file_name().unwrap_or_default()))
        }
        .map_err(|source| CopyError::Io {
            op: "resolve source",
            path: required.clone(),
            source,
        })?;
        if std::fs::symlink_metadata(host).is_err() {
            return Err(CopyError::SourceNotFound {
                path: required,
                root: root_name,
            });
        }
    }
    // Included: what the pattern matches and everything below it; built as
    // "exclude everything except the pattern" to reuse .dockerignore rules.
    let include =
        DockerIgnore::new(["**".to_string(), format!("!{pattern}")]).map_err(CopyError::Exclude)?;
    Ok((clean_abs(&base), Some(include)))
}

/// The host path of an item's source, symlinks followed as asked.
pub(super) fn source_host(item: &Item) -> Result<PathBuf, CopyError> {
    let rel = PathBuf::from(name_bytes(&item.rel).into_owned());
    let rel = rel.as_path();
    let resolved = if item.follow || item.rel.is_empty() {
        resolve_in_root(&item.root, rel)
    } else {
        resolve_in_root(&item.root, rel.parent().unwrap_or(Path::new("")))
            .map(|p| p.join(rel.file_name().unwrap_or_default()))
    };
    resolved.map_err(|source| CopyError::Io {
        op: "resolve source",
        path: item.label.clone(),
        source,
    })
}
