//! COPY and ADD as one file op: [`copy`] writes what the instruction adds
//! into an empty layer directory, to be stacked as an overlay layer on the
//! parent image.
//!
//! The semantics are BuildKit's (Dockerfile frontend `dispatchCopy`, file
//! op `docopy`, fsutil `copy.Copy`); where kiln differs it says so:
//!
//! - **Destination**: relative to `WORKDIR`; a trailing `/` (or `/.`) makes
//!   it a directory, created if missing. Otherwise a file source is written
//!   at the path itself, unless that is an existing directory, where it
//!   goes inside. Missing directories (parents, and the destination of a
//!   directory source) are created owned by the `--chown` owner (fsutil's
//!   `MkdirAll` chowns what it creates) or root, mode 0755 or, as BuildKit
//!   does since v0.21 (fsutil#228, moby/buildkit#4945, moby/moby#49851),
//!   the `--chmod` mode. Existing directories are left as they are.
//!   Symlinks in the destination, the last component included, resolve
//!   inside the rootfs.
//! - **More than one source** (after wildcard expansion) needs a
//!   destination that is a directory: written with a trailing `/`, `.`, or
//!   existing as a directory; otherwise kiln fails with the Dockerfile
//!   reference's message. BuildKit does not check (moby/buildkit#4550 is
//!   open) and lets the last source win; the legacy builder checked.
//! - **Sources** are cleaned and clamped to the source root (`../x` is
//!   `/x`); a directory's contents are copied, not the directory; a
//!   top-level symlink is followed (the frontend sets `FollowSymlinks`),
//!   symlinks inside directories are copied as symlinks. A missing
//!   non-wildcard source fails; a wildcard matching nothing copies nothing
//!   (`AllowEmptyWildcard`).
//! - **Owner**: `--chown` names are looked up in the destination image's
//!   `/etc/passwd` and `/etc/group` (numeric ids need no entry; a name
//!   that is not there is not an error, see
//!   [`crate::runtime::user::resolve_chown`]); without it
//!   context files become 0:0 (BuildKit's context transfer resets owners)
//!   and `COPY --from` keeps the source owners.
//! - **Mode**: `--chmod` (octal or symbolic, see [`crate::exec::chmod`])
//!   applies to every copied file and directory and to created ones.
//! - **Times**: atime and mtime are kept; the directory a directory's
//!   contents are copied into keeps its own times if it existed (fsutil
//!   restores them after the copy) and has the copy's time if the copy
//!   made it. (Cache keys are the solver's business and never read
//!   mtimes.)
//! - **`--link`**: the frontend runs the copy with no base (nothing of the
//!   parent is visible, so its key and layer do not depend on it) and
//!   stacks the result on the stage with a merge op ([`crate::exec::merge`]);
//!   here `link` only makes the destination be created whole (0755
//!   parents), never resolved through the parent's symlinks. `--chown`
//!   names are refused by the frontend (there is no passwd to read). As in
//!   BuildKit, `--link` with `--chmod` is a plain copy.
//! - **`--parents`**: the source's path below the source root (or below a
//!   `/./` pivot) is kept: `COPY --parents a/b/c.txt /dst/` writes
//!   `/dst/a/b/c.txt`.
//! - **`--exclude`**: `.dockerignore`-syntax patterns relative to each
//!   copied directory.
//! - **Heredocs** become files named after the heredoc word, mode 0644,
//!   owner 0:0 (or `--chown`), mtime the time of the copy.
//! - **ADD** extracts local archives ([`crate::exec::archive`]) unless
//!   `--unpack=false`; a URL arrives already downloaded (and its
//!   `--checksum` checked) by the HTTP source ([`crate::exec::http_source`])
//!   and is copied as a file, extracted only with `--unpack=true`.
//!
//! A failed copy leaves `out_layer` partly written: the caller discards the
//! directory. `out_layer`'s own mode and owner are set to the parent's root
//! directory's (0755 root:root for an independent layer), because overlayfs
//! shows the top layer's root.

use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::context::dockerignore::{DockerIgnore, IgnoreError};
use crate::context::wildcard::WildcardError;
use crate::exec::archive::{self, ArchiveError};
use crate::exec::attrs::set_owner;
use crate::exec::chmod::{Chmod, ChmodError};
use crate::exec::dest::{image_path, DestError, DestFs, Escape, NewDir};
use crate::exec::parent_fs::ParentFs;
use crate::exec::tree::{self, Counters, TreeError, TreeOptions};
use crate::runtime::user::{resolve_chown, UserError};
use crate::solver::CancelToken;
use sources::{clean_abs, expand_sources, source_host, Item, Scratch};

/// One source of a COPY/ADD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopySource {
    /// A path or wildcard pattern in the source root (`./src`, `*.txt`,
    /// `/abs/path`, `dir/./sub` with `--parents`). Never a URL: ADD's URLs
    /// are downloaded by the HTTP source and arrive as [`CopySource::Remote`].
    Path(String),
    /// A heredoc (`COPY <<EOF /file`): its word names the file, `content` is
    /// the text after expansion.
    Heredoc {
        /// The heredoc word, used as the file name.
        name: String,
        /// The file content.
        content: String,
    },
    /// A file an HTTP source already downloaded (`ADD <url>`), its
    /// `--checksum` already checked there: copied as a download is (name,
    /// mode and mtime of `file`, owner 0:0 unless `--chown`, extracted only
    /// with `--unpack=true`). ADD only.
    Remote {
        /// The URL it came from, to name it in messages (password hidden).
        url: String,
        /// The local copy; its name is the name the file gets.
        file: PathBuf,
    },
}

/// Where the source root comes from, which decides default ownership.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// The build context: files become 0:0 unless `--chown`.
    Context,
    /// Another stage's or an image's rootfs (`COPY --from`): owners kept.
    Stage,
}

/// A COPY or ADD, as the Dockerfile lowering builds it: values are already
/// expanded (ARG/ENV), paths as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopySpec {
    /// Sources, in order.
    pub sources: Vec<CopySource>,
    /// The destination as written (absolute, or relative to `workdir`).
    pub dest: String,
    /// The stage's WORKDIR at this instruction.
    pub workdir: String,
    /// What the source root is.
    pub source_kind: SourceKind,
    /// `--chown=user[:group]`.
    pub chown: Option<String>,
    /// `--chmod=mode`.
    pub chmod: Option<String>,
    /// `--link`.
    pub link: bool,
    /// `--parents`.
    pub parents: bool,
    /// `--exclude` patterns.
    pub exclude: Vec<String>,
    /// Follow a source path that is itself a symlink (the Dockerfile
    /// frontend always does; `false` copies the link).
    pub follow_symlinks: bool,
    /// ADD rather than COPY.
    pub is_add: bool,
    /// `ADD --keep-git-dir` (kept for the record: the Git source already
    /// left `.git` out of its checkout unless asked).
    pub keep_git_dir: Option<bool>,
    /// `ADD --unpack=`; `None` is the default (local archives extracted,
    /// remote ones not).
    pub unpack: Option<bool>,
}

impl CopySpec {
    /// A plain `COPY sources... dest` from the build context with WORKDIR
    /// `/`; set the other fields as the flags say.
    pub fn new(sources: Vec<CopySource>, dest: impl Into<String>) -> CopySpec {
        CopySpec {
            sources,
            dest: dest.into(),
            workdir: "/".to_string(),
            source_kind: SourceKind::Context,
            chown: None,
            chmod: None,
            link: false,
            parents: false,
            exclude: Vec::new(),
            follow_symlinks: true,
            is_add: false,
            keep_git_dir: None,
            unpack: None,
        }
    }

    fn instruction(&self) -> &'static str {
        if self.is_add {
            "ADD"
        } else {
            "COPY"
        }
    }
}

/// What a copy wrote, for progress output.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CopyStats {
    /// Non-directory entries written.
    pub files: u64,
    /// Directories copied or extracted.
    pub dirs: u64,
    /// Bytes of file content written.
    pub bytes: u64,
}

/// Why a COPY/ADD failed.
#[derive(Debug, Error)]
pub enum CopyError {
    /// The flags do not go together (BuildKit's frontend messages).
    #[error("{0}")]
    InvalidSpec(String),
    /// Several sources into a destination that is not a directory.
    #[error("when using {instruction} with more than one source file, the destination must be a directory and end with a / (destination {dest})")]
    DestNotDirectory {
        /// COPY or ADD.
        instruction: &'static str,
        /// The destination as written.
        dest: String,
    },
    /// A source that does not exist in the source root.
    #[error("failed to copy {path}: not found in {root}")]
    SourceNotFound {
        /// The source path in the source root.
        path: String,
        /// "build context" or "source stage".
        root: &'static str,
    },
    /// `--chown` could not be resolved.
    #[error("--chown={spec}")]
    Chown {
        /// The flag's value.
        spec: String,
        /// Why.
        #[source]
        source: UserError,
    },
    /// A bad `--exclude` pattern.
    #[error("--exclude")]
    Exclude(#[source] IgnoreError),
    /// A bad `--chmod`.
    #[error(transparent)]
    Chmod(#[from] ChmodError),
    /// A bad or unresolvable wildcard source.
    #[error(transparent)]
    Wildcard(#[from] WildcardError),
    /// The destination could not be prepared.
    #[error(transparent)]
    Dest(#[from] DestError),
    /// Copying entries failed.
    #[error(transparent)]
    Tree(#[from] TreeError),
    /// Extracting an archive failed.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// Other I/O (scratch files, source resolution).
    #[error("failed to {op} {path}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The path concerned.
        path: String,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
}

/// The destination as BuildKit's `pathRelativeToWorkingDir` gives it, and
/// whether it is written as a directory (trailing `/` or `/.`).
fn normalize_dest(workdir: &str, dest: &str) -> (String, bool) {
    let joined = if dest.starts_with('/') {
        dest.to_string()
    } else {
        format!("{}/{}", workdir, dest)
    };
    let dir_syntax = dest.ends_with('/') || dest.ends_with("/.");
    (clean_abs(&joined), dir_syntax)
}

/// Performs `spec` with sources from `source_root` (the build context,
/// already filtered by `.dockerignore`, or a stage's rootfs), onto the image
/// seen through `parent_view`, writing only the new files into the empty
/// directory `out_layer`.
pub fn copy(
    spec: &CopySpec,
    source_root: &Path,
    parent_view: &dyn ParentFs,
    out_layer: &Path,
    reuse: Option<&dyn tree::Reuse>,
    cancel: Option<&CancelToken>,
) -> Result<CopyStats, CopyError> {
    validate(spec)?;
    let chmod = spec.chmod.as_deref().map(Chmod::parse).transpose()?;
    let exclude = if spec.exclude.is_empty() {
        None
    } else {
        Some(DockerIgnore::new(&spec.exclude).map_err(CopyError::Exclude)?)
    };
    let mut scratch = Scratch::new();
    let chown = match spec.chown.as_deref() {
        Some(s) if !s.is_empty() => Some(chown_ids(s, parent_view, out_layer, &mut scratch)?),
        _ => None,
    };
    // BuildKit's frontend only builds an independent (merged) layer for
    // `--link` without `--chmod`.
    let independent = spec.link && chmod.is_none();
    let fs = DestFs::new(
        out_layer,
        if independent { None } else { Some(parent_view) },
    );
    init_layer_root(&fs, parent_view, independent)?;

    let items = expand_sources(spec, source_root, chown, &mut scratch)?;
    let (dest, dir_syntax) = normalize_dest(&spec.workdir, &spec.dest);
    let dest_path = Path::new(&dest);
    // Directories the copy creates take the --chown owner and, since
    // BuildKit v0.21 (fsutil#228 for moby/buildkit#4945), the --chmod mode
    // (applied to a 0755 directory for symbolic modes).
    let new_dir = NewDir {
        uid: chown.map_or(0, |c| c.0),
        gid: chown.map_or(0, |c| c.1),
        mode: chmod
            .as_ref()
            .map_or(0o755, |c| c.apply(libc::S_IFDIR | 0o755)),
    };
    if items.len() > 1 && !dir_syntax && spec.dest != "." && !spec.dest.ends_with("..") {
        let resolved = fs.resolve(Path::new(""), dest_path, true, Escape::Clamp)?;
        if !fs.lookup(&resolved)?.is_some_and(|l| l.meta().is_dir()) {
            return Err(CopyError::DestNotDirectory {
                instruction: spec.instruction(),
                dest: spec.dest.clone(),
            });
        }
    }

    let counters = Counters::default();
    for item in &items {
        copy_item(
            &fs,
            item,
            spec,
            dest_path,
            dir_syntax,
            new_dir,
            chmod.as_ref(),
            exclude.as_ref(),
            reuse,
            cancel,
            &counters,
        )?;
    }
    let load = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    Ok(CopyStats {
        files: load(&counters.files),
        dirs: load(&counters.dirs),
        bytes: load(&counters.bytes),
    })
}

/// The checks left to the copy once the frontend made its own (BuildKit's
/// `dispatchCopy`: Git sources refused, `--checksum` only on one URL, which
/// the HTTP source then verifies).
fn validate(spec: &CopySpec) -> Result<(), CopyError> {
    let invalid = |m: &str| Err(CopyError::InvalidSpec(m.to_string()));
    if !spec.is_add
        && spec
            .sources
            .iter()
            .any(|s| matches!(s, CopySource::Remote { .. }))
    {
        return invalid("source can't be a URL for COPY");
    }
    if spec.sources.is_empty() {
        return invalid("no source files were specified");
    }
    Ok(())
}

/// Gives the layer root the parent's root mode and owner (overlayfs shows
/// the top layer's root directory), or 0755 root:root for an independent
/// layer.
fn init_layer_root(
    fs: &DestFs<'_>,
    parent: &dyn ParentFs,
    independent: bool,
) -> Result<(), CopyError> {
    let root = fs.layer();
    let io_err = |op| {
        move |source| CopyError::Io {
            op,
            path: root.display().to_string(),
            source,
        }
    };
    let (mode, uid, gid) = match parent
        .locate(Path::new(""))
        .map_err(io_err("read parent root"))?
    {
        Some(host) if !independent => {
            let meta = std::fs::metadata(&host).map_err(io_err("read parent root"))?;
            (meta.mode() & 0o7777, meta.uid(), meta.gid())
        }
        _ => (0o755, 0, 0),
    };
    set_owner(root, uid, gid).map_err(io_err("chown layer root"))?;
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(mode))
        .map_err(io_err("chmod layer root"))
}

/// Resolves `--chown` against the parent image's passwd and group files
/// (copied, symlinks resolved inside the image, into a scratch rootfs for
/// [`resolve_chown`]).
fn chown_ids(
    spec: &str,
    parent: &dyn ParentFs,
    layer: &Path,
    scratch: &mut Scratch,
) -> Result<(u32, u32), CopyError> {
    let chown_err = |source| CopyError::Chown {
        spec: spec.to_string(),
        source,
    };
    let numeric = spec
        .split(':')
        .all(|p| p.is_empty() || p.parse::<i64>().is_ok());
    if numeric {
        return resolve_chown(Path::new("/nonexistent"), spec).map_err(chown_err);
    }
    let rootfs = scratch.subdir("chown-rootfs")?;
    let view = DestFs::new(layer, Some(parent));
    std::fs::create_dir(rootfs.join("etc")).map_err(|source| CopyError::Io {
        op: "create",
        path: rootfs.join("etc").display().to_string(),
        source,
    })?;
    for file in ["etc/passwd", "etc/group"] {
        let rel = view.resolve(Path::new(""), Path::new(file), true, Escape::Clamp)?;
        if let Some(crate::exec::dest::Located::Parent(host, meta)) = view.lookup_parent(&rel)? {
            if meta.is_file() {
                std::fs::copy(&host, rootfs.join(file)).map_err(|source| CopyError::Io {
                    op: "read",
                    path: image_path(&rel),
                    source,
                })?;
            }
        }
    }
    resolve_chown(&rootfs, spec).map_err(chown_err)
}

/// Copies one expanded source to the destination.
#[allow(clippy::too_many_arguments)]
fn copy_item(
    fs: &DestFs<'_>,
    item: &Item,
    spec: &CopySpec,
    dest: &Path,
    dir_syntax: bool,
    new_dir: NewDir,
    chmod: Option<&Chmod>,
    exclude: Option<&DockerIgnore>,
    reuse: Option<&dyn tree::Reuse>,
    cancel: Option<&CancelToken>,
    counters: &Counters,
) -> Result<(), CopyError> {
    let src = source_host(item)?;
    let src_meta = std::fs::symlink_metadata(&src).map_err(|source| CopyError::Io {
        op: "stat source",
        path: item.label.clone(),
        source,
    })?;
    let root = Path::new("");
    if item.unpack && src_meta.is_file() && archive::is_archive(&src) {
        let dest_rel = fs.resolve(root, dest, true, Escape::Clamp)?;
        // BuildKit's unpack makes the destination 0755 whatever --chmod says.
        fs.mkdir_all(
            &dest_rel,
            NewDir {
                mode: 0o755,
                ..new_dir
            },
        )?;
        let owner = spec
            .chown
            .as_ref()
            .filter(|c| !c.is_empty())
            .map(|_| (new_dir.uid, new_dir.gid));
        archive::extract(fs, &src, &item.label, &dest_rel, owner, counters)?;
        return Ok(());
    }
    // fsutil's Copy: make the destination directory (or its parent) first.
    let ensure = if dir_syntax {
        dest
    } else {
        dest.parent().unwrap_or(root)
    };
    let ensure_rel = fs.resolve(root, ensure, true, Escape::Clamp)?;
    fs.mkdir_all(&ensure_rel, new_dir)?;
    let dest_rel = fs.resolve(root, dest, true, Escape::Clamp)?;
    let existing = fs.lookup(&dest_rel)?;
    let opts = TreeOptions {
        src_root: &item.root,
        owner: item.owner,
        chmod,
        include: item.include.as_ref(),
        exclude,
        reuse,
        cancel,
    };
    if src_meta.is_dir() {
        let fresh = match &existing {
            Some(found) if !found.meta().is_dir() => {
                return Err(DestError::NotADirectory(image_path(&dest_rel)).into());
            }
            _ => fs.mkdir_all(&dest_rel, new_dir)?,
        };
        tree::copy_dir_contents(fs, &src, &dest_rel, fresh, &opts, counters)?;
        // fsutil#140 (moby/buildkit#2884): a directory that existed keeps
        // its times; one the copy created keeps the time it was made.
        if let Some(before) = &existing {
            tree::restore_dir_times(fs, &dest_rel, before.meta())?;
        }
        return Ok(());
    }
    let target = match &existing {
        Some(found) if found.meta().is_dir() => {
            let base = PathBuf::from(crate::context::scan::name_bytes(&item.rel).into_owned())
                .file_name()
                .map(PathBuf::from)
                .unwrap_or_default();
            dest_rel.join(base)
        }
        _ => dest_rel,
    };
    if let Some(parent) = target.parent() {
        fs.mkdir_all(parent, new_dir)?;
    }
    tree::copy_single(fs, &src, &src_meta, &target, &opts, counters)?;
    Ok(())
}

mod sources;

#[cfg(test)]
mod tests;
