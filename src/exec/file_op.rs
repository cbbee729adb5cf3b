//! File ops: COPY/ADD (via [`crate::exec::copy`]), WORKDIR's mkdir and
//! inline files, each writing one new layer directory stacked on the base.
//!
//! The new layer sees its base through a [`LayerStack`] (no mount); a
//! `COPY --from` source with several layers is read through a mounted
//! [`StackView`]. A file op holds exactly one action: the Dockerfile
//! lowering never makes more, and stacking several actions' writes in one
//! layer would need each to see the previous ones.

use crate::error_chain::Chain;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::copy::{self, CopySpec, SourceKind};
use super::copy_reuse::CopyReuse;
use super::dest::{DestFs, Escape, Located, NewDir};
use super::parent_fs::{LayerStack, ParentFs};
use super::stack_view::StackView;
use super::tree::Reuse;
use super::{Artifact, ExecContext};
use crate::runtime::user::resolve_chown;
use crate::solver::{CancelToken, Chown, CopyFiles, CopySource, ExecError, FileAction, FileOp};
use crate::source::url::redact_password;

/// Runs `op` over `inputs` (the vertex's input outputs, in order).
/// A fired `cancel` stops a copy between files ([`ExecError::Cancelled`]).
pub fn run(
    cx: &ExecContext,
    op: &FileOp,
    inputs: &[Artifact],
    cancel: &CancelToken,
) -> Result<super::Rootfs, ExecError> {
    let base = match op.base {
        Some(i) => input_rootfs(inputs, i.index())?,
        None => super::Rootfs::default(),
    };
    let [action] = op.actions.as_slice() else {
        return Err(ExecError::msg(format!(
            "a file op with {} actions is not supported (one action per op)",
            op.actions.len()
        )));
    };
    let store = &cx.store;
    let out = store
        .scratch_path("layer")
        .map_err(|e| ExecError::with_context("preparing a layer directory", e))?;
    std::fs::create_dir(&out)
        .map_err(|e| ExecError::with_context(format!("creating {}", out.display()), e))?;
    // Overlay lookup order: the top layer first.
    let mut parents = base.dirs(store);
    parents.reverse();
    let view = LayerStack::new(parents);
    let mut reuse = None;
    let result = match action {
        FileAction::CopyFiles(c) => {
            // Clamping mtimes (SOURCE_DATE_EPOCH) rewrites files in place:
            // never on links into another snapshot.
            let incremental = op.source_date_epoch.is_none();
            copy_files(cx, c, inputs, &view, &out, incremental, cancel).map(|r| reuse = r)
        }
        FileAction::Mkdir {
            path,
            mode,
            make_parents,
            chown,
        } => mkdir(cx, &view, &out, path, *mode, *make_parents, chown.as_ref()),
        FileAction::Mkfile {
            path, mode, data, ..
        } => mkfile(&out, path, *mode, data),
    };
    if let Err(e) = result {
        let _ = crate::cache::scratch::remove_tree(&out);
        return Err(e);
    }
    let rootfs = base
        .commit(store, &out, op.source_date_epoch)
        .map_err(|e| ExecError::with_context("storing the new layer", e))?;
    if let (Some(reuse), Some(top)) = (reuse, rootfs.top()) {
        if rootfs.layers.len() > base.layers.len() {
            tracing::debug!("copy linked {} unchanged files", reuse.linked());
            reuse.save(store, top);
        }
    }
    Ok(rootfs)
}

/// The root filesystem of input `i`.
pub(super) fn input_rootfs(inputs: &[Artifact], i: usize) -> Result<super::Rootfs, ExecError> {
    match inputs.get(i) {
        Some(Artifact::Rootfs(r)) => Ok(r.clone()),
        Some(Artifact::Context(_)) => Err(ExecError::msg(
            "the build context cannot be used as a root filesystem",
        )),
        Some(Artifact::Remote(r)) => Err(ExecError::msg(format!(
            "the download of {} cannot be used as a root filesystem",
            redact_password(&r.url)
        ))),
        None => Err(ExecError::msg(format!("missing input #{i}"))),
    }
}

fn copy_files(
    cx: &ExecContext,
    c: &CopyFiles,
    inputs: &[Artifact],
    view: &LayerStack,
    out: &Path,
    incremental: bool,
    cancel: &CancelToken,
) -> Result<Option<CopyReuse>, ExecError> {
    let store = &cx.store;
    let mut reuse = None;
    // Keeps a mounted source view alive for the copy.
    let mut _source_view = None;
    let (root, kind): (PathBuf, SourceKind) = match c.source.map(|i| inputs.get(i.index())) {
        None => {
            let empty = store
                .scratch_path("no-source")
                .map_err(|e| ExecError::with_context("preparing an empty source", e))?;
            std::fs::create_dir(&empty)
                .map_err(|e| ExecError::with_context("preparing an empty source", e))?;
            (empty, SourceKind::Context)
        }
        Some(Some(Artifact::Context(ctx))) => {
            let root = ctx
                .source_root(|| store.scratch_path("context").map_err(std::io::Error::other))
                .map_err(|e| ExecError::with_context("reading the build context", e))?;
            // ADD may unpack archives: only plain copies are linked.
            if incremental && !c.add {
                reuse = Some(CopyReuse::new(store, c, ctx.clone(), root.clone()));
            }
            (root, SourceKind::Context)
        }
        Some(Some(Artifact::Rootfs(r))) => {
            let v = StackView::new(store, &r.dirs(store), false)
                .map_err(|e| ExecError::with_context("mounting the source stage", e))?;
            let root = v.path().to_path_buf();
            _source_view = Some(v);
            (root, SourceKind::Stage)
        }
        Some(Some(Artifact::Remote(_))) => {
            return Err(ExecError::msg("a download cannot be a path source"))
        }
        Some(None) => return Err(ExecError::msg("copy source input is missing")),
    };
    let sources = c
        .sources
        .iter()
        .map(|s| {
            Ok(match s {
                CopySource::Path { path } => copy::CopySource::Path(path.clone()),
                CopySource::Url { url, input } => match inputs.get(input.index()) {
                    Some(Artifact::Remote(remote)) => copy::CopySource::Remote {
                        url: url.clone(),
                        file: remote.file.clone(),
                    },
                    _ => {
                        return Err(ExecError::msg(format!(
                            "{} was not downloaded",
                            redact_password(url)
                        )))
                    }
                },
                CopySource::Inline { name, data } => copy::CopySource::Heredoc {
                    name: name.clone(),
                    content: String::from_utf8_lossy(data).into_owned(),
                },
            })
        })
        .collect::<Result<Vec<_>, ExecError>>()?;
    let spec = CopySpec {
        sources,
        dest: c.dest.clone(),
        workdir: c.workdir.clone(),
        source_kind: kind,
        chown: c.chown.clone(),
        chmod: c.chmod.clone(),
        link: c.link,
        parents: c.parents,
        exclude: c.exclude.clone(),
        follow_symlinks: true,
        is_add: c.add,
        keep_git_dir: c.keep_git_dir,
        unpack: c.unpack,
    };
    let linker = reuse.as_ref().map(|r| r as &dyn Reuse);
    copy::copy(&spec, &root, view, out, linker, Some(cancel)).map_err(|e| {
        if cancel.is_cancelled() {
            ExecError::Cancelled
        } else {
            ExecError::msg(Chain(&e).to_string())
        }
    })?;
    Ok(reuse)
}

/// `mkdir -p` as BuildKit's file op does it for WORKDIR: an existing
/// directory is left alone (no layer), missing ones are created with
/// `mode`, owned by `chown` (names looked up in the base's passwd/group).
fn mkdir(
    cx: &ExecContext,
    view: &LayerStack,
    out: &Path,
    path: &str,
    mode: u32,
    make_parents: bool,
    chown: Option<&Chown>,
) -> Result<(), ExecError> {
    let fs = DestFs::new(out, Some(view));
    let err = |e: super::dest::DestError| ExecError::msg(Chain(&e).to_string());
    init_layer_root(view, out)?;
    let rel = fs
        .resolve(Path::new(""), Path::new(path), true, Escape::Clamp)
        .map_err(err)?;
    if let Some(Located::Parent(_, meta)) = fs.lookup(&rel).map_err(err)? {
        if meta.is_dir() {
            return Ok(());
        }
    }
    let (uid, gid) = match chown {
        None => (0, 0),
        Some(c) => {
            let spec = match &c.group {
                Some(g) => format!("{}:{g}", c.user),
                None => c.user.clone(),
            };
            owner_ids(cx, &fs, &spec)?
        }
    };
    if !make_parents {
        if let Some(parent) = rel.parent().filter(|p| !p.as_os_str().is_empty()) {
            if fs.lookup(parent).map_err(err)?.is_none() {
                return Err(ExecError::msg(format!(
                    "mkdir {path}: parent does not exist"
                )));
            }
        }
    }
    fs.mkdir_all(&rel, NewDir { uid, gid, mode }).map_err(err)?;
    Ok(())
}

/// The layer root takes the base's root mode and owner (overlayfs shows
/// the top layer's root).
fn init_layer_root(view: &LayerStack, out: &Path) -> Result<(), ExecError> {
    use std::os::unix::fs::MetadataExt;
    let io = |e: std::io::Error| ExecError::with_context(format!("preparing {}", out.display()), e);
    let (mode, uid, gid) = match view.locate(Path::new("")).map_err(io)? {
        Some(host) => {
            let md = std::fs::metadata(host).map_err(io)?;
            (md.mode() & 0o7777, md.uid(), md.gid())
        }
        None => (0o755, 0, 0),
    };
    std::os::unix::fs::lchown(out, Some(uid), Some(gid)).map_err(io)?;
    std::fs::set_permissions(out, std::fs::Permissions::from_mode(mode)).map_err(io)
}

/// Resolves `user[:group]` against `/etc/passwd` and `/etc/group` as the
/// base image has them (numeric ids need no entry).
fn owner_ids(cx: &ExecContext, fs: &DestFs<'_>, spec: &str) -> Result<(u32, u32), ExecError> {
    let numeric = spec
        .split(':')
        .all(|p| p.is_empty() || p.parse::<i64>().is_ok());
    let fail = |e: crate::runtime::user::UserError| {
        ExecError::msg(format!("user {spec}: {e}", e = Chain(&e)))
    };
    if numeric {
        return resolve_chown(Path::new("/nonexistent"), spec).map_err(fail);
    }
    let tmp = cx
        .store
        .scratch_path("users")
        .map_err(|e| ExecError::with_context("preparing a user lookup", e))?;
    let result = lookup_owner(fs, spec, &tmp);
    let _ = crate::cache::scratch::remove_tree(&tmp);
    result
}

fn lookup_owner(fs: &DestFs<'_>, spec: &str, tmp: &Path) -> Result<(u32, u32), ExecError> {
    let fail = |e: crate::runtime::user::UserError| {
        ExecError::msg(format!("user {spec}: {e}", e = Chain(&e)))
    };
    std::fs::create_dir_all(tmp.join("etc"))
        .map_err(|e| ExecError::with_context("preparing a user lookup", e))?;
    for file in ["etc/passwd", "etc/group"] {
        let rel = fs
            .resolve(Path::new(""), Path::new(file), true, Escape::Clamp)
            .map_err(|e| ExecError::msg(Chain(&e).to_string()))?;
        if let Some(Located::Parent(host, meta)) = fs
            .lookup_parent(&rel)
            .map_err(|e| ExecError::msg(Chain(&e).to_string()))?
        {
            if meta.is_file() {
                std::fs::copy(&host, tmp.join(file))
                    .map_err(|e| ExecError::with_context(format!("reading /{file}"), e))?;
            }
        }
    }
    resolve_chown(tmp, spec).map_err(fail)
}

/// An inline file (a heredoc script), in an independent layer.
fn mkfile(out: &Path, path: &str, mode: u32, data: &[u8]) -> Result<(), ExecError> {
    let rel = path.trim_start_matches('/');
    if rel.is_empty() || rel.split('/').any(|c| c == "..") {
        return Err(ExecError::msg(format!("invalid inline file path {path:?}")));
    }
    let host = out.join(rel);
    let io = |e: std::io::Error| ExecError::with_context(format!("writing {path}"), e);
    if let Some(parent) = host.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    std::fs::write(&host, data).map_err(io)?;
    std::fs::set_permissions(&host, std::fs::Permissions::from_mode(mode)).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn cx(root: &Path) -> ExecContext {
        crate::exec::fixture::exec_context(root)
    }

    fn mkdir_op(path: &str, user: Option<&str>) -> FileOp {
        FileOp {
            base: Some(crate::solver::Input(0)),
            actions: vec![FileAction::Mkdir {
                path: path.into(),
                mode: 0o755,
                make_parents: true,
                chown: user.map(|u| Chown {
                    user: u.into(),
                    group: None,
                }),
            }],
            source_date_epoch: None,
        }
    }

    #[test]
    fn workdir_mkdir_of_an_existing_dir_adds_an_empty_layer_and_new_dirs_are_the_users() {
        let t = tempfile::tempdir().unwrap();
        let cx = cx(&t.path().join("root"));
        let base_dir = cx.store.scratch_path("base").unwrap();
        std::fs::create_dir_all(base_dir.join("etc")).unwrap();
        std::fs::create_dir_all(base_dir.join("existing")).unwrap();
        std::fs::write(base_dir.join("etc/passwd"), "app:x:1234:4321::/:/bin/sh\n").unwrap();
        std::fs::write(base_dir.join("etc/group"), "app:x:4321:\n").unwrap();
        let base = super::super::Rootfs::default()
            .commit(&cx.store, &base_dir, None)
            .unwrap();
        let inputs = [Artifact::Rootfs(base.clone())];
        let same = run(
            &cx,
            &mkdir_op("/existing", Some("app")),
            &inputs,
            &CancelToken::new(),
        )
        .unwrap();
        // BuildKit's mkdir of an existing directory: an empty diff, still a
        // layer (the empty tar).
        assert_eq!(same.layers.len(), 2);
        assert_eq!(same.layers[..1], base.layers[..]);
        let top = cx.store.snapshot_path(same.top().unwrap());
        assert_eq!(std::fs::read_dir(top).unwrap().count(), 0);
        let made = run(
            &cx,
            &mkdir_op("/srv/app/data", Some("app")),
            &inputs,
            &CancelToken::new(),
        )
        .unwrap();
        assert_eq!(made.layers.len(), 2);
        let top = cx.store.snapshot_path(made.top().unwrap());
        let md = std::fs::metadata(top.join("srv/app/data")).unwrap();
        assert_eq!(
            (md.uid(), md.gid(), md.mode() & 0o7777),
            (1234, 4321, 0o755)
        );
        // A user the image does not know owns nothing: BuildKit's readUser
        // (moby/buildkit solver/llbsolver/ops/user_linux.go) leaves 0:0.
        let unknown = run(
            &cx,
            &mkdir_op("/x", Some("nobody-here")),
            &inputs,
            &CancelToken::new(),
        )
        .unwrap();
        let top = cx.store.snapshot_path(unknown.top().unwrap());
        let md = std::fs::metadata(top.join("x")).unwrap();
        assert_eq!((md.uid(), md.gid()), (0, 0));
    }

    #[test]
    fn inline_files_and_error_chains() {
        let t = tempfile::tempdir().unwrap();
        let cx = cx(&t.path().join("root"));
        let op = FileOp {
            base: None,
            actions: vec![FileAction::Mkfile {
                path: "/EOF".into(),
                mode: 0o755,
                data: b"#!/bin/sh\necho hi\n".to_vec(),
                chown: None,
            }],
            source_date_epoch: None,
        };
        let out = run(&cx, &op, &[], &CancelToken::new()).unwrap();
        let f = cx.store.snapshot_path(out.top().unwrap()).join("EOF");
        assert_eq!(std::fs::metadata(&f).unwrap().mode() & 0o777, 0o755);
        let inner = std::io::Error::other("inner cause");
        let outer = ExecError::with_context("outer", inner);
        assert_eq!(
            crate::error_chain::Chain(&outer).to_string(),
            "outer: inner cause"
        );
    }
}
