//! `COPY` and `ADD`: a file op copying sources onto the stage's root.
//!
//! Sources come from the build context, or with `--from` from an earlier
//! stage (by name or index) or an image; heredoc sources are inline files
//! (expanded unless their marker was quoted), ADD's URLs are HTTP source
//! vertices (re-checked every build; the copy keys on their content).
//! Git sources are refused for COPY, as BuildKit's `dispatchCopy` refuses
//! them; ADD copies a repository's checkout (a Git source vertex). The copy rules
//! themselves (destination, ownership, modes, archives) are the
//! executor's, `crate::exec::copy`.
//!
//! `--link` without `--chmod` lowers as BuildKit does: the copy is a file
//! op on an empty tree (its destination made absolute here, `--chown`
//! numeric), and a merge op stacks its result on the stage's root, so a
//! new base reruns only the merge and the image keeps the same layer.
//! With `--chmod` it is a plain copy, as in BuildKit.

use super::named::NamedContext;
use super::names::{display, StepCounter};
use super::stage::StageState;
use super::{LowerError, Lowerer, MAX_FROM_NESTING};
use crate::error_chain::Chain;
use crate::image::reference::ImageRef;
use crate::parser::{Add, Copy, InlineSource, Span};
use crate::shell::Lexer;
use crate::solver::{
    CopyFiles, CopySource, FileAction, FileOp, GitSource, Input, InputList, MergeOp, Op, VertexId,
    VertexInfo,
};
use crate::source::git_ref::GitRef;
use crate::source::url::{is_git_url, is_http_url, redact_password};

/// COPY and ADD seen alike.
pub(super) struct CopyInput<'a> {
    add: bool,
    sources: &'a [String],
    inline: &'a [InlineSource],
    dest: &'a str,
    from: Option<&'a str>,
    chown: Option<&'a str>,
    chmod: Option<&'a str>,
    link: bool,
    parents: bool,
    exclude: &'a [String],
    checksum: Option<&'a str>,
    unpack: Option<bool>,
    keep_git_dir: Option<bool>,
}

impl<'a> CopyInput<'a> {
    /// A COPY instruction.
    pub fn from_copy(c: &'a Copy) -> CopyInput<'a> {
        CopyInput {
            add: false,
            sources: &c.sources,
            inline: &c.inline,
            dest: &c.dest,
            from: c.from.as_deref(),
            chown: c.chown.as_deref(),
            chmod: c.chmod.as_deref(),
            link: c.link,
            parents: c.parents,
            exclude: &c.exclude,
            checksum: None,
            unpack: None,
            keep_git_dir: None,
        }
    }

    /// An ADD instruction.
    pub fn from_add(a: &'a Add) -> CopyInput<'a> {
        CopyInput {
            add: true,
            sources: &a.sources,
            inline: &a.inline,
            dest: &a.dest,
            from: None,
            chown: a.chown.as_deref(),
            chmod: a.chmod.as_deref(),
            link: a.link,
            parents: false,
            exclude: &a.exclude,
            checksum: a.checksum.as_deref(),
            unpack: a.unpack,
            keep_git_dir: a.keep_git_dir,
        }
    }
}

/// `--chown` for a linked copy, which cannot read the base's passwd and
/// group files: numeric ids, or `root` (BuildKit's `llb.WithUser` takes
/// `root` as 0 without a lookup); `None` if a name would need a lookup.
fn link_chown(chown: &str) -> Option<String> {
    let id = |part: &str| -> Option<String> {
        match part {
            "root" => Some("0".into()),
            _ if part.is_empty() || part.parse::<u32>().is_ok() => Some(part.into()),
            _ => None,
        }
    };
    match chown.split_once(':') {
        Some((user, group)) => Some(format!("{}:{}", id(user)?, id(group)?)),
        None => id(chown),
    }
}

/// The destination of a linked copy made absolute as BuildKit's
/// `pathRelativeToWorkingDir` does in the frontend (the copy's key then
/// does not depend on the stage's WORKDIR): joined to `workdir`, cleaned,
/// a trailing `/` (or `/.`, or a bare `.`) kept as a trailing `/`.
fn link_dest(workdir: &str, dest: &str) -> String {
    let dest = if dest.is_empty() || dest == "." {
        "./"
    } else {
        dest
    };
    let mut out = super::stage::normalize_workdir(workdir, dest);
    if (dest.ends_with('/') || dest.ends_with("/.")) && out != "/" {
        out.push('/');
    }
    out
}

/// Where a copy writes and as whom, in the terms of its file op.
struct Placement {
    dest: String,
    workdir: String,
    chown: Option<String>,
}

/// A COPY/ADD's sources: as copied, as the history shows them, and the
/// Git source vertex of an `ADD <git url>`.
type NamedSources = (Vec<CopySource>, Vec<String>, Option<VertexId>);

/// What the history says a COPY/ADD did: `COPY --chown=… src… dest #
/// buildkit`, flags and sources as expanded (BuildKit's `dispatchCopy`).
fn copy_history(
    word: &str,
    c: &CopyInput<'_>,
    chown: Option<&str>,
    chmod: Option<&str>,
    shown_sources: &[String],
    dest: &str,
) -> String {
    let mut history = String::from(word);
    if c.parents {
        history.push_str(" --parents");
    }
    if let Some(ch) = chown {
        history.push_str(&format!(" --chown={ch}"));
    }
    if let Some(m) = chmod {
        history.push_str(&format!(" --chmod={m}"));
    }
    for s in shown_sources {
        history.push(' ');
        history.push_str(s);
    }
    history.push_str(&format!(" {dest} # buildkit"));
    history
}

impl Lowerer<'_> {
    /// Lowers a COPY or ADD: its sources, a file op copying them, and for
    /// `--link` a merge onto the stage; the stage's root becomes the result.
    pub(super) fn dispatch_copy(
        &mut self,
        st: &mut StageState,
        counter: &mut StepCounter,
        c: &CopyInput<'_>,
        span: &Span,
        onbuild: bool,
        stage_index: usize,
    ) -> Result<(), LowerError> {
        let word = if c.add { "ADD" } else { "COPY" };
        let checksum = c.checksum.map(|v| self.expand(st, v, span)).transpose()?;
        // BuildKit copies `--link` (without `--chmod`) onto scratch and
        // merges the result onto the stage (dockerfile2llb `dispatchCopy`):
        // the copy sees nothing of the base, so neither its key nor its
        // layer depends on it.
        let linked = c.link && c.chmod.is_none();
        let mut inputs = InputList::new();
        let base = if linked {
            None
        } else {
            st.root.map(|r| inputs.add(r))
        };
        let (mut sources, mut shown_sources, git) =
            self.named_sources(st, c, checksum.as_ref(), &mut inputs, span)?;
        for (source, shown) in self.inline_sources(st, c, span)? {
            shown_sources.push(shown);
            sources.push(source);
        }
        let dest = self.expand(st, c.dest, span)?;
        let chown = c.chown.map(|v| self.expand(st, v, span)).transpose()?;
        let chmod = c.chmod.map(|v| self.expand(st, v, span)).transpose()?;
        let exclude = c
            .exclude
            .iter()
            .map(|p| self.expand(st, p, span))
            .collect::<Result<Vec<_>, _>>()?;
        if checksum.is_some() {
            self.check_checksum_sources(c, &sources, git.is_some(), span)?;
        }
        let placement = if linked {
            self.linked_placement(word, &st.workdir, &dest, chown.as_deref(), span)?
        } else {
            Placement {
                dest: dest.clone(),
                workdir: st.workdir.clone(),
                chown: chown.clone(),
            }
        };
        let has_paths = sources.iter().any(|s| matches!(s, CopySource::Path { .. }));
        let source = if let Some(git) = git {
            Some(inputs.add(git))
        } else if !has_paths {
            None
        } else {
            let v = match c.from {
                Some(from) => self.source_state(from, stage_index, span)?,
                None => Some(self.context_vertex()?),
            };
            v.map(|v| inputs.add(v))
        };
        let history = copy_history(
            word,
            c,
            chown.as_deref(),
            chmod.as_deref(),
            &shown_sources,
            &dest,
        );
        let action = CopyFiles {
            source,
            sources,
            dest: placement.dest,
            workdir: placement.workdir,
            chown: placement.chown,
            chmod,
            link: linked,
            parents: c.parents,
            exclude,
            add: c.add,
            // A git source checks its own (the commit, `GitSource`).
            checksum: if git.is_some() { None } else { checksum },
            unpack: c.unpack,
            keep_git_dir: c.keep_git_dir,
        };
        let op = Op::File(FileOp {
            base,
            actions: vec![FileAction::CopyFiles(action)],
            source_date_epoch: self.opts.source_date_epoch,
        });
        let text = display(&self.lexer, &span.original, &st.env);
        let name = counter.next(&text, onbuild);
        let ignore_cache = self.stage_ignores_cache(stage_index);
        let mut info = VertexInfo::at(name, self.location(span));
        info.ignore_cache = ignore_cache;
        let mut v = self.graph.add(op, inputs, info)?;
        let parent = st.root;
        if let (true, Some(root)) = (linked, parent) {
            // The merge shares the copy's step number (BuildKit's progress
            // group), named `LINK <instruction>`.
            let name = counter.again(&format!("LINK {text}"), onbuild);
            let mut info = VertexInfo::at(name, self.location(span));
            info.ignore_cache = ignore_cache;
            let merge = Op::Merge(MergeOp {
                inputs: vec![Input(0), Input(1)],
            });
            v = self.graph.add(merge, vec![root, v], info)?;
        }
        st.root = Some(v);
        st.commit(history, Some((v, parent)), &self.opts.created);
        Ok(())
    }

    /// What each source word names, after expansion: a git repository
    /// (ADD only: a Git source vertex whose whole checkout is copied, as
    /// BuildKit's `dispatchCopy` copies `/` of its `llb.Git` to the
    /// destination), a URL (ADD only: an HTTP source vertex added to
    /// `inputs`, whose content the copy's key covers, BuildKit's
    /// `llb.HTTP`), else a path in the context or `--from`. Also returns
    /// the words as the history shows them, and the Git source vertex.
    fn named_sources(
        &mut self,
        st: &StageState,
        c: &CopyInput<'_>,
        checksum: Option<&String>,
        inputs: &mut InputList,
        span: &Span,
    ) -> Result<NamedSources, LowerError> {
        let mut sources = Vec::with_capacity(c.sources.len() + c.inline.len());
        let mut shown_sources = Vec::new();
        let mut git = None;
        for src in c.sources {
            let src = self.expand(st, src, span)?;
            shown_sources.push(src.clone());
            // Git first: `https://host/repo.git` is a repository, not a file.
            if is_git_url(&src) {
                if !c.add {
                    return Err(self.err(span, "source can't be a git ref for COPY"));
                }
                // kiln's copy reads its paths from one input: a repository
                // is ADD's only source (BuildKit copies each source apart).
                if c.sources.len() + c.inline.len() != 1 || c.from.is_some() {
                    return Err(self.err(
                        span,
                        format!(
                            "ADD of git repository {} must be the instruction's only source",
                            redact_password(&src)
                        ),
                    ));
                }
                GitRef::parse(&src).map_err(|e| self.err(span, Chain(&e).to_string()))?;
                let source = GitSource {
                    url: src.clone(),
                    keep_git_dir: c.keep_git_dir.unwrap_or(false),
                    checksum: checksum.cloned(),
                };
                let info = VertexInfo::at(redact_password(&src), self.location(span));
                git = Some(self.graph.add(Op::Git(source), vec![], info)?);
                sources.push(CopySource::Path { path: "/".into() });
                continue;
            }
            if is_http_url(&src) {
                if !c.add {
                    return Err(self.err(span, "source can't be a URL for COPY"));
                }
                let http = self.http_vertex(&src, checksum.cloned(), span)?;
                sources.push(CopySource::Url {
                    url: src,
                    input: inputs.add(http),
                });
            } else {
                sources.push(CopySource::Path { path: src });
            }
        }
        Ok((sources, shown_sources, git))
    }

    /// The heredoc sources as inline files: expanded unless their marker
    /// was quoted, with the raw lexer (quotes are the file's own), each
    /// with its `<<NAME` as the history shows it.
    fn inline_sources(
        &self,
        st: &StageState,
        c: &CopyInput<'_>,
        span: &Span,
    ) -> Result<Vec<(CopySource, String)>, LowerError> {
        let raw = Lexer {
            skip_process_quotes: true,
            ..Lexer::new('\\')
        };
        let mut out = Vec::with_capacity(c.inline.len());
        for doc in c.inline {
            let text = String::from_utf8_lossy(&doc.data).into_owned();
            let data = if doc.expand {
                raw.process_word(&text, &st.env)
                    .map_err(|e| self.err(span, Chain(&e).to_string()))?
                    .value
            } else {
                text
            };
            let source = CopySource::Inline {
                name: doc.path.clone(),
                data: data.into_bytes(),
            };
            out.push((source, format!("<<{}", doc.path)));
        }
        Ok(out)
    }

    /// `ADD --checksum` verifies one download or one Git commit (a prefix
    /// of the commit ID, BuildKit's `llb.GitChecksum`): refused with
    /// several sources or with one that is neither (BuildKit's errors).
    fn check_checksum_sources(
        &self,
        c: &CopyInput<'_>,
        sources: &[CopySource],
        git: bool,
        span: &Span,
    ) -> Result<(), LowerError> {
        let single_url = git || matches!(sources, [CopySource::Url { .. }]);
        if c.sources.len() != 1 {
            return Err(self.err(span, "checksum can't be specified for multiple sources"));
        }
        if !single_url {
            return Err(self.err(span, "checksum can't be specified for non-HTTP(S) sources"));
        }
        Ok(())
    }

    /// Where a linked copy writes, which cannot depend on the stage it is
    /// merged onto: the destination made absolute, `/` as its working
    /// directory, and `--chown` only as numeric ids (no passwd to read).
    fn linked_placement(
        &self,
        word: &str,
        workdir: &str,
        dest: &str,
        chown: Option<&str>,
        span: &Span,
    ) -> Result<Placement, LowerError> {
        let chown = chown
            .map(|ch| link_chown(ch).ok_or(ch))
            .transpose()
            .map_err(|ch| {
                self.err(
                    span,
                    format!(
                        "{word} --link --chown={ch}: user and group names need the base image's /etc/passwd and /etc/group, which a linked copy does not read; use numeric ids"
                    ),
                )
            })?;
        Ok(Placement {
            dest: link_dest(workdir, dest),
            workdir: "/".to_string(),
            chown,
        })
    }

    /// The root filesystem a `--from` names: an earlier stage by index or
    /// name, else an image (`None`: an empty filesystem).
    pub(super) fn source_state(
        &mut self,
        from: &str,
        stage_index: usize,
        span: &Span,
    ) -> Result<Option<VertexId>, LowerError> {
        let count = self.df.stages.len();
        let stage = match from.parse::<i64>() {
            Ok(n) if n < 0 || n as usize >= count => {
                return Err(self.err(span, format!("invalid stage index {n}")))
            }
            Ok(n) => Some(n as usize),
            Err(_) => self.stage_by_name(from, count),
        };
        if let Some(j) = stage {
            if j >= stage_index {
                let current = self.stage_label(stage_index);
                return Err(self.err(
                    span,
                    format!(
                        "cannot copy from stage {from:?}, it needs to be defined before current stage {current:?}"
                    ),
                ));
            }
            // A `--from` lowers the stage it names from inside this one:
            // the only recursion left over stages, so its depth is bounded.
            if self.from_depth >= MAX_FROM_NESTING {
                return Err(self.err(
                    span,
                    format!(
                        "--from={from}: stages reached through --from are nested more than {MAX_FROM_NESTING} deep"
                    ),
                ));
            }
            self.from_depth += 1;
            let state = self.stage(j);
            self.from_depth -= 1;
            return Ok(state?.root);
        }
        let reference = match self.named(from) {
            // A directory's files are read as a context is.
            Some((key, NamedContext::Files { exclude })) => {
                return Ok(Some(self.named_files_vertex(&key, &exclude)?))
            }
            Some((_, NamedContext::Image(reference))) => reference,
            None => ImageRef::parse(from)
                .map_err(|e| self.err(span, format!("--from={from}: {e}", e = Chain(&e))))?,
        };
        // An image named by `--from` is for the target platform, as
        // BuildKit's implicit stage for it is.
        let platform = self.opts.platform.clone();
        let image = self.resolve_image(&reference, from, span, &platform)?;
        let name = format!("FROM {}", super::stage::pinned_name(&reference, &image));
        self.image_root(&image, span, name, &platform)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linked_destinations_are_absolute_with_their_trailing_slash() {
        fn check(workdir: &str, dest: &str, expected: &str) {
            assert_eq!(link_dest(workdir, dest), expected, "{workdir} + {dest}");
        }
        check("/", "/app/f", "/app/f");
        check("/srv", "/app/", "/app/");
        check("/srv", "app", "/srv/app");
        check("/srv", "app/", "/srv/app/");
        check("/srv", ".", "/srv/");
        check("/srv", "", "/srv/");
        check("/srv", "./", "/srv/");
        check("/srv", "a/.", "/srv/a/");
        check("/srv/x", "../y", "/srv/y");
        check("/", "../..", "/");
        check("/", ".", "/");
        check("/srv", "//a//b/./", "/a/b/");
    }

    #[test]
    fn linked_chown_takes_ids_and_root_only() {
        fn check(chown: &str, expected: Option<&str>) {
            assert_eq!(link_chown(chown).as_deref(), expected, "{chown}");
        }
        check("1000", Some("1000"));
        check("1000:1001", Some("1000:1001"));
        check("root", Some("0"));
        check("root:root", Some("0:0"));
        check("0:", Some("0:"));
        check("app", None);
        check("1000:staff", None);
        check("-1", None);
    }
}
