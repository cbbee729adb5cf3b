//! Named contexts (`--build-context NAME=VALUE`) in the lowering: a name
//! given one replaces, as BuildKit does (moby/buildkit `frontend/
//! dockerfile/dockerfile2llb/convert.go`, `toDispatchState`: a stage whose
//! name has a named context is not built, a `FROM` base, `COPY --from` or
//! `RUN --mount=from=` value that is not a stage looks for one before it
//! is taken as an image):
//! - a stage of that name (its instructions are not lowered);
//! - an image of that name in `FROM`, `COPY --from`, `RUN --mount=from=`.
//!
//! Names are compared as BuildKit's `dockerui.Client.NamedContext` does:
//! normalized as image references, familiar form, `:latest` dropped, so
//! `FROM docker.io/library/alpine:latest` finds `--build-context alpine=`.
//! The build resolves the values (directories, checkouts, images) before
//! lowering; here a context is only files or an image.

use super::stage::StageState;
use super::{LowerError, Lowerer};
use crate::image::reference::ImageRef;
use crate::parser::Span;
use crate::solver::{
    ContextSource, CopyFiles, FileAction, FileOp, Input, Op, VertexId, VertexInfo,
};

/// What a named context is, once the build resolved its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamedContext {
    /// A directory's files (a local directory, a Git checkout, an
    /// unpacked download): read as a context source named
    /// [`source_name`], with these `.dockerignore` patterns (its own
    /// directory's `.dockerignore`, BuildKit's rule).
    Files { exclude: Vec<String> },
    /// An image (`docker-image://`, `oci-layout://`), resolved as any
    /// base image is.
    Image(ImageRef),
}

/// The name a named context is looked up by (see the module doc), or why
/// `name` cannot name one (BuildKit: "invalid context name").
pub fn context_key(name: &str) -> Result<String, String> {
    let parsed = ImageRef::parse(name).map_err(|e| {
        format!(
            "invalid context name {name}: {}",
            crate::error_chain::Chain(&e)
        )
    })?;
    let familiar = parsed.familiar();
    Ok(familiar
        .strip_suffix(":latest")
        .unwrap_or(&familiar)
        .to_string())
}

/// The context source name the executor knows a named context's
/// directory by (never the main context's `context`).
pub fn source_name(key: &str) -> String {
    format!("context:{key}")
}

impl Lowerer<'_> {
    /// The named context `name` refers to, with its key.
    pub(super) fn named(&self, name: &str) -> Option<(String, NamedContext)> {
        if self.opts.named_contexts.is_empty() {
            return None;
        }
        let key = context_key(name).ok()?;
        let nc = self.opts.named_contexts.get(&key)?;
        Some((key, nc.clone()))
    }

    /// The context source vertex of named context `key` (BuildKit names
    /// it `[context NAME] load from client`).
    pub(super) fn named_files_vertex(
        &mut self,
        key: &str,
        exclude: &[String],
    ) -> Result<VertexId, LowerError> {
        let source = ContextSource {
            name: source_name(key),
            exclude: exclude.to_vec(),
            ..ContextSource::default()
        };
        Ok(self.graph.add(
            Op::Context(source),
            vec![],
            VertexInfo::named(format!("[context {key}] load from client")),
        )?)
    }

    /// A stage made of a named context's files: BuildKit uses the local
    /// source itself as the stage's filesystem, with no image config;
    /// kiln's stages are layer stacks, so its files are copied onto
    /// nothing, one layer, with a `FROM <name>` history entry for it.
    pub(super) fn files_stage(
        &mut self,
        key: &str,
        exclude: &[String],
        span: &Span,
    ) -> Result<StageState, LowerError> {
        let source = self.named_files_vertex(key, exclude)?;
        let op = Op::File(FileOp {
            base: None,
            actions: vec![FileAction::CopyFiles(CopyFiles::new(Input(0), "/", "/"))],
            source_date_epoch: self.opts.source_date_epoch,
        });
        let info = VertexInfo::at(format!("[context {key}] copy"), self.location(span));
        let root = self.graph.add(op, vec![source], info)?;
        let mut state = StageState::scratch(&self.opts.platform);
        state.root = Some(root);
        state.commit(
            format!("FROM {key}"),
            Some((root, None)),
            &self.opts.created,
        );
        Ok(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_names_are_normalized_as_buildkit() {
        assert_eq!(context_key("alpine").unwrap(), "alpine");
        assert_eq!(context_key("alpine:latest").unwrap(), "alpine");
        assert_eq!(context_key("docker.io/library/alpine").unwrap(), "alpine");
        assert_eq!(context_key("alpine:3.19").unwrap(), "alpine:3.19");
        assert_eq!(context_key("base").unwrap(), "base");
        assert!(context_key("Bad Name").is_err());
    }
}
