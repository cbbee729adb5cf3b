//! A Git source as BuildKit writes it: `https://host/repo.git#ref:subdir`,
//! `git@host:repo.git#ref`, `ssh://`, `git://`, and the CSV fragment form
//! `##ref=main,subdir=dir,commit=SHA` (moby/buildkit `util/gitutil/
//! git_url.go`, `ParseURL` and `splitGitFragment`; `git_ref.go`,
//! `ParseGitRef`: an HTTP(S) URL is a repository only when its path ends
//! in `.git`).
//!
//! Pure string rules: the CLI (`kiln build <git url>`, `--build-context`),
//! the lowering (`ADD <git url>`) and the executor's fetch share them.

use super::url::{is_git_url, redact_password};

/// A parsed Git source.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GitRef {
    /// What `git` is given: the URL without its fragment.
    pub remote: String,
    /// The branch, tag or commit asked for (`None`: the remote's `HEAD`).
    pub reference: Option<String>,
    /// The directory inside the repository used as the source (`None`:
    /// the root).
    pub subdir: Option<String>,
    /// `commit=` of the CSV form: the commit the ref must resolve to.
    pub commit: Option<String>,
}

/// Why a Git source cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GitRefError {
    /// Not a Git URL at all (no `git://`, `ssh://`, `git@`, `.git`).
    #[error("{0} is not a git repository URL (expected git://, ssh://, git@host:path or an http(s) URL ending in .git)")]
    NotGit(String),
    /// A fragment BuildKit refuses.
    #[error("invalid fragment of {url}: {message}")]
    Fragment { url: String, message: String },
}

impl GitRef {
    /// Parses `url` (a password in it is hidden in errors).
    pub fn parse(url: &str) -> Result<GitRef, GitRefError> {
        if !is_git_url(url) {
            return Err(GitRefError::NotGit(redact_password(url)));
        }
        let (remote, fragment) = match url.split_once('#') {
            Some((r, f)) => (r, Some(f)),
            None => (url, None),
        };
        let mut out = GitRef {
            remote: remote.to_string(),
            reference: None,
            subdir: None,
            commit: None,
        };
        let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_string());
        match fragment {
            None | Some("") => {}
            Some(f) if f.starts_with('#') => {
                for field in f[1..].split(',').filter(|f| !f.is_empty()) {
                    let bad = |message: String| GitRefError::Fragment {
                        url: redact_password(url),
                        message,
                    };
                    let (key, value) = field.split_once('=').ok_or_else(|| {
                        bad(format!("invalid field '{field}' must be a key=value pair"))
                    })?;
                    match key.to_ascii_lowercase().as_str() {
                        "ref" => out.reference = non_empty(value),
                        "commit" => out.commit = non_empty(value),
                        "subdir" => out.subdir = non_empty(value),
                        _ => {
                            return Err(bad(format!(
                                "unexpected key '{key}' in '{field}' (supported keys: ref, commit, subdir)"
                            )))
                        }
                    }
                }
                if out.reference.is_none() {
                    out.reference = out.commit.clone();
                }
            }
            Some(f) => {
                let (r, sub) = f.split_once(':').unwrap_or((f, ""));
                out.reference = non_empty(r);
                out.subdir = non_empty(sub);
            }
        }
        if let Some(sub) = &out.subdir {
            // BuildKit cleans the subdir inside the checkout; kiln also
            // resolves it inside the checkout's root when it is used.
            let cleaned = sub.trim_matches('/').to_string();
            out.subdir = non_empty(&cleaned);
        }
        Ok(out)
    }

    /// The remote with any password hidden, for messages.
    pub fn shown(&self) -> String {
        redact_password(&self.remote)
    }

    /// Whether the ref is already a full commit ID (no `ls-remote`
    /// needed): 40 (SHA-1) or 64 (SHA-256) hex digits.
    pub fn reference_is_commit(&self) -> bool {
        self.reference.as_deref().is_some_and(|r| {
            (r.len() == 40 || r.len() == 64) && r.bytes().all(|b| b.is_ascii_hexdigit())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(url: &str, remote: &str, reference: Option<&str>, subdir: Option<&str>) {
        let g = GitRef::parse(url).unwrap();
        assert_eq!(g.remote, remote, "{url}");
        assert_eq!(g.reference.as_deref(), reference, "{url}");
        assert_eq!(g.subdir.as_deref(), subdir, "{url}");
    }

    #[test]
    fn fragments_name_ref_and_subdir_as_buildkit() {
        check("https://h/r.git", "https://h/r.git", None, None);
        check(
            "https://h/r.git#main",
            "https://h/r.git",
            Some("main"),
            None,
        );
        check(
            "https://h/r.git#main:sub/dir",
            "https://h/r.git",
            Some("main"),
            Some("sub/dir"),
        );
        check("https://h/r.git#:sub", "https://h/r.git", None, Some("sub"));
        check(
            "git@github.com:o/r.git#v1",
            "git@github.com:o/r.git",
            Some("v1"),
            None,
        );
        check(
            "git://127.0.0.1:9/r#t:/d/",
            "git://127.0.0.1:9/r",
            Some("t"),
            Some("d"),
        );
        check(
            "ssh://git@h/r.git##ref=dev,subdir=x",
            "ssh://git@h/r.git",
            Some("dev"),
            Some("x"),
        );
        let g = GitRef::parse("https://h/r.git##commit=abc").unwrap();
        assert_eq!(g.reference.as_deref(), Some("abc"));
        assert_eq!(g.commit.as_deref(), Some("abc"));
    }

    #[test]
    fn non_git_urls_and_bad_fragments_are_refused() {
        assert!(matches!(
            GitRef::parse("https://h/archive.tar.gz"),
            Err(GitRefError::NotGit(_))
        ));
        let e = GitRef::parse("https://h/r.git##branch=x").unwrap_err();
        assert!(e.to_string().contains("unexpected key 'branch'"), "{e}");
        let e = GitRef::parse("https://h/r.git##ref").unwrap_err();
        assert!(e.to_string().contains("key=value"), "{e}");
    }

    #[test]
    fn full_commit_ids_skip_the_ref_lookup() {
        let sha = "0123456789abcdef0123456789abcdef01234567";
        assert!(GitRef::parse(&format!("git://h/r#{sha}"))
            .unwrap()
            .reference_is_commit());
        assert!(!GitRef::parse("git://h/r#0123abc")
            .unwrap()
            .reference_is_commit());
        assert!(!GitRef::parse("git://h/r#main")
            .unwrap()
            .reference_is_commit());
    }
}
