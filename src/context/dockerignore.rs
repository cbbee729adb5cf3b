//! `.dockerignore`: which files of the build context a build never sees.
//!
//! Semantics are Docker's, i.e. moby/patternmatcher as docker, buildx and
//! BuildKit use it:
//! - The file is read line by line (`ignorefile.ReadAll`): a UTF-8 byte order
//!   mark is dropped, lines starting with `#` are comments, lines are trimmed,
//!   blank ones skipped, a leading `!` marks an exception, and each pattern is
//!   cleaned like Go's `filepath.Clean` with one leading `/` removed (patterns
//!   are always relative to the context root).
//! - `*` and `?` stay within one path element, `**` spans any number of
//!   elements, `[...]` is a character class, `\` escapes (Unix).
//! - A path is excluded when the last pattern matching it, or matching one of
//!   its parent directories, is not an exception (patternmatcher's
//!   `MatchesOrParentMatches`). So `docs` + `!docs/README.md` keeps only the
//!   README of `docs`.
//! - A malformed pattern (bad `[` class, trailing `\`, lone `!`) rejects the
//!   whole file, naming the pattern and its line.
//!
//! For walking a context, [`DockerIgnore::matches_in_dir`] reuses the parent
//! directory's per-pattern results, and [`DockerIgnore::can_skip_dir`] tells
//! when no exception could re-include anything below an excluded directory,
//! so the walk need not descend (BuildKit's fsutil prunes the same way, but
//! only when every exception is a literal path).

mod glob;

use std::io;
use std::path::{Path, PathBuf};
use thiserror::Error;

pub use glob::PatternError;
use glob::{clean, Glob};

/// The largest ignore file read: BuildKit's bound for the Dockerfile and
/// ignore files, 16 MiB (moby/buildkit `frontend/dockerui/readfile.go`
/// `maxFileSize`).
pub const MAX_IGNORE_FILE_SIZE: u64 = 16 << 20;

/// Why ignore rules could not be loaded.
#[derive(Debug, Error)]
pub enum IgnoreError {
    /// A malformed pattern; `file` and `line` are set when it came from a
    /// file.
    #[error("{}invalid pattern {pattern:?}: {reason}", location(.file.as_deref(), *.line))]
    InvalidPattern {
        file: Option<String>,
        line: Option<usize>,
        pattern: String,
        reason: PatternError,
    },
    /// The ignore file is larger than [`MAX_IGNORE_FILE_SIZE`].
    #[error("{} exceeds maximum allowed size of {limit} bytes", .path.display())]
    TooLarge { path: PathBuf, limit: u64 },
    /// The ignore file exists but could not be read.
    #[error("failed to read ignore file {}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn location(file: Option<&str>, line: Option<usize>) -> String {
    match (file, line) {
        (Some(file), Some(line)) => format!("{file}:{line}: "),
        (Some(file), None) => format!("{file}: "),
        (None, Some(line)) => format!("line {line}: "),
        (None, None) => String::new(),
    }
}

/// One compiled pattern.
#[derive(Debug, Clone)]
pub struct IgnorePattern {
    text: String,
    exception: bool,
    line: Option<usize>,
    glob: Glob,
}

impl IgnorePattern {
    /// The cleaned pattern, without its `!`.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether this is a `!` exception, which re-includes what it matches.
    pub fn is_exception(&self) -> bool {
        self.exception
    }

    /// The 1-based line of the ignore file it came from, if any.
    pub fn line(&self) -> Option<usize> {
        self.line
    }
}

/// Compiled ignore rules for one build context.
#[derive(Debug, Clone, Default)]
pub struct DockerIgnore {
    patterns: Vec<IgnorePattern>,
    /// Indices of the exception patterns, the only ones that can stop a
    /// subtree from being skipped.
    exceptions: Vec<usize>,
}

/// Which patterns matched a directory or one of its parents; handed from a
/// directory to its entries by [`DockerIgnore::matches_in_dir`]. The default
/// value stands for the context root (nothing matched).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParentMatches(Vec<bool>);

impl DockerIgnore {
    /// Compiles patterns given one per item, as patternmatcher's `New` does:
    /// each is trimmed and cleaned, empty ones are skipped, a leading `!`
    /// marks an exception.
    pub fn new<I, S>(patterns: I) -> Result<Self, IgnoreError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut ignore = Self::default();
        for pattern in patterns {
            ignore.push(pattern.as_ref(), pattern.as_ref(), None, None)?;
        }
        Ok(ignore)
    }

    /// Parses the text of an ignore file; `file_name` only labels errors.
    pub fn parse(text: &str, file_name: &str) -> Result<Self, IgnoreError> {
        let mut ignore = Self::default();
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        for (index, line) in text.split('\n').enumerate() {
            // bufio.ScanLines drops the `\r` of a CRLF ending.
            let line = line.strip_suffix('\r').unwrap_or(line);
            // A comment is recognised before trimming: ` #x` is a pattern.
            if line.starts_with('#') {
                continue;
            }
            let written = line.trim();
            if written.is_empty() {
                continue;
            }
            let (exception, rest) = match written.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, written),
            };
            let mut pattern = if rest.is_empty() {
                String::new()
            } else {
                clean(rest)
            };
            // `/foo` means `foo`: the context root is the only root.
            if pattern.len() > 1 && pattern.starts_with('/') {
                pattern.remove(0);
            }
            if exception {
                pattern.insert(0, '!');
            }
            ignore.push(&pattern, written, Some(file_name), Some(index + 1))?;
        }
        Ok(ignore)
    }

    /// Reads and parses the ignore file at `path`.
    pub fn read(path: &Path) -> Result<Self, IgnoreError> {
        use std::io::Read;
        let read = |source| IgnoreError::Read {
            path: path.to_path_buf(),
            source,
        };
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_IGNORE_FILE_SIZE + 1).read_to_end(&mut bytes))
            .map_err(read)?;
        if bytes.len() as u64 > MAX_IGNORE_FILE_SIZE {
            return Err(IgnoreError::TooLarge {
                path: path.to_path_buf(),
                limit: MAX_IGNORE_FILE_SIZE,
            });
        }
        // Go reads bytes; a non-UTF-8 pattern could only match non-UTF-8
        // names, which this API does not take, so lossy decoding loses nothing.
        Self::parse(
            &String::from_utf8_lossy(&bytes),
            &path.display().to_string(),
        )
    }

    /// The rules for building `context_dir` with `dockerfile`: from the file
    /// [`ignore_file_for`] picks, or none when there is no ignore file.
    pub fn load(context_dir: &Path, dockerfile: &Path) -> Result<Self, IgnoreError> {
        match ignore_file_for(context_dir, dockerfile)? {
            Some(path) => Self::read(&path),
            None => Ok(Self::default()),
        }
    }

    /// Compiles one pattern as patternmatcher's `New` does; `written` is what
    /// the user wrote, for the error message.
    fn push(
        &mut self,
        pattern: &str,
        written: &str,
        file: Option<&str>,
        line: Option<usize>,
    ) -> Result<(), IgnoreError> {
        let invalid = |reason| IgnoreError::InvalidPattern {
            file: file.map(str::to_string),
            line,
            pattern: written.trim().to_string(),
            reason,
        };
        let pattern = pattern.trim();
        if pattern.is_empty() {
            return Ok(());
        }
        let cleaned = clean(pattern);
        let (exception, body) = match cleaned.strip_prefix('!') {
            Some("") => return Err(invalid(PatternError::EmptyException)),
            Some(body) => (true, body),
            None => (false, cleaned.as_str()),
        };
        let glob = Glob::compile(body).map_err(invalid)?;
        if exception {
            self.exceptions.push(self.patterns.len());
        }
        self.patterns.push(IgnorePattern {
            text: body.to_string(),
            exception,
            line,
            glob,
        });
        Ok(())
    }

    /// The compiled patterns, in file order.
    pub fn patterns(&self) -> &[IgnorePattern] {
        &self.patterns
    }

    /// Whether there are no patterns (nothing is ever excluded).
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether any pattern is a `!` exception.
    pub fn has_exceptions(&self) -> bool {
        !self.exceptions.is_empty()
    }

    /// Whether `rel_path` (slash-separated, relative to the context root) is
    /// excluded from the context. The root itself (`.`, ``) never is.
    pub fn matches(&self, rel_path: &str) -> bool {
        let path = clean(rel_path);
        if path == "." {
            return false;
        }
        // The last pattern that matches the path or a parent decides, so
        // search from the end and stop at the first hit.
        for pattern in self.patterns.iter().rev() {
            let parents = path.match_indices('/').map(|(i, _)| &path[..i]);
            if pattern.glob.is_match(&path) || parents.into_iter().any(|p| pattern.glob.is_match(p))
            {
                return !pattern.exception;
            }
        }
        false
    }

    /// [`matches`](Self::matches) for a walk: `rel_path` must be clean and
    /// relative (as a walker builds it), and `parent` the [`ParentMatches`]
    /// returned for its directory (the default value for entries of the
    /// root). Returns whether the path is excluded and the matches to hand to
    /// its own entries if it is a directory. Each pattern is tried once per
    /// path instead of once per path and ancestor.
    pub fn matches_in_dir(&self, rel_path: &str, parent: &ParentMatches) -> (bool, ParentMatches) {
        let mut matched = Vec::with_capacity(self.patterns.len());
        let mut excluded = false;
        for (i, pattern) in self.patterns.iter().enumerate() {
            let hit = parent.0.get(i).copied().unwrap_or(false) || pattern.glob.is_match(rel_path);
            if hit {
                excluded = !pattern.exception;
            }
            matched.push(hit);
        }
        (excluded, ParentMatches(matched))
    }

    /// Whether some exception pattern might re-include a path strictly below
    /// directory `rel_dir`. Conservative: it may say yes needlessly, never no
    /// wrongly.
    pub fn may_reinclude_below(&self, rel_dir: &str) -> bool {
        let dir = clean(rel_dir);
        self.exceptions
            .iter()
            .any(|&i| self.patterns[i].glob.may_match_below(&dir))
    }

    /// Whether a walk can skip directory `rel_dir` and everything below it:
    /// the directory is excluded and no exception can re-include anything
    /// inside. (Everything below an excluded directory is excluded unless an
    /// exception matches it, because parents' matches count for children.)
    pub fn can_skip_dir(&self, rel_dir: &str) -> bool {
        self.matches(rel_dir) && !self.may_reinclude_below(rel_dir)
    }
}

/// The ignore files a build of `context_dir` with `dockerfile` may use, in
/// order of precedence: `<dockerfile>.dockerignore` next to the Dockerfile
/// (a Dockerfile-specific ignore file), then `<context>/.dockerignore`.
pub fn ignore_file_candidates(context_dir: &Path, dockerfile: &Path) -> [PathBuf; 2] {
    let mut specific = dockerfile.as_os_str().to_os_string();
    specific.push(".dockerignore");
    [PathBuf::from(specific), context_dir.join(".dockerignore")]
}

/// The first of [`ignore_file_candidates`] that exists, or `None` when
/// neither does. Errors other than "not found" (e.g. permission denied on
/// the directory) are returned rather than taken as absence, since silently
/// sending files the user meant to ignore would leak them into the build.
pub fn ignore_file_for(
    context_dir: &Path,
    dockerfile: &Path,
) -> Result<Option<PathBuf>, IgnoreError> {
    for candidate in ignore_file_candidates(context_dir, dockerfile) {
        match std::fs::metadata(&candidate) {
            Ok(_) => return Ok(Some(candidate)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(source) => {
                return Err(IgnoreError::Read {
                    path: candidate,
                    source,
                })
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests;
