//! Git sources (`ADD <git url>`, a git build context, a git
//! `--build-context`): checked out through the system `git`, kept in the
//! store by remote and commit.
//!
//! As BuildKit's git source (moby/buildkit `source/git/source.go`,
//! `CacheKey` and `Snapshot`): the ref is resolved to a commit with
//! `git ls-remote` on every build (a full commit ID is taken as it is),
//! and the checkout is keyed by that commit, so a moved branch fetches
//! again and an unchanged one reuses the checkout it already has, reading
//! nothing but the remote's refs. The fetch is shallow (`git init`,
//! `git fetch --depth=1 origin <commit>`, checkout of `FETCH_HEAD`); `.git`
//! is kept only when asked (`--keep-git-dir`, BuildKit's `KeepGitDir`).
//!
//! ```text
//! <root>/git/<sha256 of remote, commit, keep-git-dir>/   the checkout
//! ```
//!
//! **Crash safety and concurrency:** a checkout is made in this process's
//! scratch dir and renamed into place whole; a build killed mid-fetch
//! leaves only scratch (removed once its owner is dead), and of two builds
//! fetching the same commit the second finds the first one's checkout
//! already in place and drops its own. Checkouts are never written once
//! in place. A build holds a shared `flock` on `<key>.lock` from before it
//! looks for a checkout until it ends ([`CheckoutLease`]); [`prune`]
//! (`kiln builder prune`) removes only checkouts it can lock exclusively,
//! so never one a build uses. Lock files are never deleted (a deleted one
//! could be locked by a build and a prune at once).

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::cache::Store;
use crate::image::digest::Digest;
use crate::source::git_ref::GitRef;

/// Why a Git source could not be checked out. Remotes in messages have
/// their password hidden.
#[derive(Debug, thiserror::Error)]
pub enum GitSourceError {
    /// `git` itself could not be started.
    #[error("running git for {remote}: is git installed?")]
    Spawn {
        remote: String,
        #[source]
        source: std::io::Error,
    },
    /// A git command failed; `stderr` is its last words.
    #[error("git {what} of {remote} failed: {stderr}")]
    Command {
        what: &'static str,
        remote: String,
        stderr: String,
    },
    /// The remote has no such branch or tag (BuildKit's wording).
    #[error("repository {remote} does not contain ref {reference}")]
    MissingRef { remote: String, reference: String },
    /// `ADD --checksum=` (or `commit=`) names another commit (BuildKit's
    /// wording, `source/git/source.go`).
    #[error("{remote}: expected checksum to match {expected}, got {actual}")]
    Checksum {
        remote: String,
        expected: String,
        actual: String,
    },
    /// `#ref:subdir` names no directory of the checkout.
    #[error("{remote}: subdirectory {subdir:?} is not a directory of commit {commit}")]
    Subdir {
        remote: String,
        subdir: String,
        commit: String,
    },
    /// Preparing or placing the checkout failed.
    #[error("{}: {op}", path.display())]
    Io {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
}

/// A checkout in use: a shared `flock` on its lock file, released when
/// the last clone is dropped (or the process dies).
#[derive(Debug, Clone)]
pub struct CheckoutLease {
    _file: std::sync::Arc<std::fs::File>,
}

/// A checked-out commit.
#[derive(Debug, Clone)]
pub struct GitCheckout {
    /// Keeps [`prune`] away from the checkout while it is used.
    pub lease: CheckoutLease,
    /// The commit the ref resolved to.
    pub commit: String,
    /// The checkout's root in the store (never written).
    pub root: PathBuf,
    /// The source itself: the root, or its `subdir`.
    pub dir: PathBuf,
    /// Whether this build fetched it (`false`: the store had it).
    pub fetched: bool,
}

/// Checks `git` out as BuildKit's git source does (see the module doc);
/// `checksum` (`ADD --checksum`, or the URL's `commit=`) must be a prefix
/// of the commit.
pub fn checkout(
    store: &Store,
    git: &GitRef,
    keep_git_dir: bool,
    checksum: Option<&str>,
) -> Result<GitCheckout, GitSourceError> {
    let commit = resolve_commit(git)?;
    let expected = checksum.or(git.commit.as_deref());
    if let Some(expected) = expected {
        if !commit.starts_with(expected) {
            return Err(GitSourceError::Checksum {
                remote: git.shown(),
                expected: expected.to_string(),
                actual: commit,
            });
        }
    }
    let key = Digest::sha256_of(format!("{}\0{commit}\0{keep_git_dir}", git.remote).as_bytes());
    let parent = store.layout().git_checkouts();
    let root = parent.join(key.hex());
    let lease = lock(&parent, key.hex(), rustix::fs::FlockOperation::LockShared)
        .map_err(|source| GitSourceError::Io {
            path: parent.join(format!("{}.lock", key.hex())),
            op: "locking the checkout",
            source,
        })?
        .map(|file| CheckoutLease {
            _file: std::sync::Arc::new(file),
        })
        .ok_or_else(|| GitSourceError::Io {
            path: parent.join(format!("{}.lock", key.hex())),
            op: "locking the checkout",
            source: std::io::Error::from(std::io::ErrorKind::WouldBlock),
        })?;
    let mut fetched = false;
    if !root.is_dir() {
        fetch_into_place(store, git, &commit, keep_git_dir, &parent, &root)?;
        fetched = true;
    }
    let dir = match &git.subdir {
        None => root.clone(),
        Some(sub) => {
            // Resolved inside the checkout: a symlink in the repository
            // never leads out of it.
            let dir = crate::fs::path_in_root::resolve_in_root(&root, Path::new(sub)).map_err(
                |source| GitSourceError::Io {
                    path: root.join(sub),
                    op: "resolving the subdirectory",
                    source,
                },
            )?;
            if !dir.is_dir() {
                return Err(GitSourceError::Subdir {
                    remote: git.shown(),
                    subdir: sub.clone(),
                    commit,
                });
            }
            dir
        }
    };
    Ok(GitCheckout {
        lease,
        commit,
        root,
        dir,
        fetched,
    })
}

/// Opens (creating) `<parent>/<name>.lock` and locks it as `how`;
/// `Ok(None)` when a non-blocking lock is taken by someone else.
fn lock(
    parent: &Path,
    name: &str,
    how: rustix::fs::FlockOperation,
) -> std::io::Result<Option<std::fs::File>> {
    std::fs::create_dir_all(parent)?;
    let file = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(parent.join(format!("{name}.lock")))?;
    match rustix::fs::flock(&file, how) {
        Ok(()) => Ok(Some(file)),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Removes every checkout no build uses (`kiln builder prune`): each one
/// it can lock exclusively is renamed into scratch, then deleted. Returns
/// how many went.
pub fn prune(store: &Store) -> std::io::Result<usize> {
    let parent = store.layout().git_checkouts();
    let entries = match std::fs::read_dir(&parent) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry?;
        if !entry.file_type()?.is_dir() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        let how = rustix::fs::FlockOperation::NonBlockingLockExclusive;
        let Some(_held) = lock(&parent, &name, how)? else {
            continue;
        };
        let trash = store
            .scratch_path("git-pruned")
            .map_err(|e| std::io::Error::other(crate::error_chain::Chain(&e).to_string()))?;
        std::fs::rename(entry.path(), &trash)?;
        crate::cache::scratch::remove_tree(&trash)?;
        removed += 1;
    }
    Ok(removed)
}

/// The commit `git`'s ref names now: a full commit ID as it is, else the
/// first match of `git ls-remote` (a tag's peeled `^{}` commit first), or
/// the remote's `HEAD` without a ref.
fn resolve_commit(git: &GitRef) -> Result<String, GitSourceError> {
    if git.reference_is_commit() {
        return Ok(git
            .reference
            .clone()
            .unwrap_or_default()
            .to_ascii_lowercase());
    }
    let reference = git.reference.clone().unwrap_or_else(|| "HEAD".to_string());
    let out = run_git(
        None,
        &["ls-remote", "--", &git.remote, &reference],
        git,
        "ls-remote",
    )?;
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<(&str, &str)> = text.lines().filter_map(|l| l.split_once('\t')).collect();
    // ls-remote matches by suffix: `main` also matches `refs/heads/x/main`.
    // Prefer the exact names BuildKit's `git checkout` would take.
    let wanted = [
        reference.clone(),
        format!("refs/tags/{reference}^{{}}"),
        format!("refs/tags/{reference}"),
        format!("refs/heads/{reference}"),
    ];
    for w in &wanted {
        if let Some((sha, _)) = lines.iter().find(|(_, name)| name == w) {
            return Ok(sha.to_string());
        }
    }
    if let Some((sha, _)) = lines.first() {
        return Ok(sha.to_string());
    }
    // A short commit ID is not a ref: BuildKit fetches it as it is.
    if reference.len() >= 7 && reference.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(GitSourceError::MissingRef {
            remote: git.shown(),
            reference: format!(
                "{reference} (abbreviated commit IDs cannot be fetched; give all 40 digits)"
            ),
        });
    }
    Err(GitSourceError::MissingRef {
        remote: git.shown(),
        reference,
    })
}

/// Fetches `commit` into a scratch dir and renames it to `root`; a
/// checkout another build put there first wins.
fn fetch_into_place(
    store: &Store,
    git: &GitRef,
    commit: &str,
    keep_git_dir: bool,
    parent: &Path,
    root: &Path,
) -> Result<(), GitSourceError> {
    let io = |path: &Path, op: &'static str| {
        let path = path.to_path_buf();
        move |source| GitSourceError::Io { path, op, source }
    };
    let tmp = store.scratch_path("git").map_err(|e| GitSourceError::Io {
        path: store.layout().tmp(),
        op: "preparing a scratch dir",
        source: std::io::Error::other(crate::error_chain::Chain(&e).to_string()),
    })?;
    std::fs::create_dir_all(&tmp).map_err(io(&tmp, "creating the checkout dir"))?;
    let result = (|| {
        run_git(Some(&tmp), &["init", "-q"], git, "init")?;
        run_git(
            Some(&tmp),
            &["remote", "add", "origin", &git.remote],
            git,
            "remote add",
        )?;
        fetch(&tmp, git, commit)?;
        let head = run_git(Some(&tmp), &["rev-parse", "FETCH_HEAD"], git, "rev-parse")?;
        let fetched = String::from_utf8_lossy(&head.stdout).trim().to_string();
        if fetched != commit {
            // The branch moved between ls-remote and fetch: the checkout
            // must be the commit it is keyed by.
            return Err(GitSourceError::Command {
                what: "fetch",
                remote: git.shown(),
                stderr: format!("fetched {fetched}, expected {commit} (the ref moved; retry)"),
            });
        }
        run_git(
            Some(&tmp),
            &[
                "-c",
                "advice.detachedHead=false",
                "checkout",
                "-q",
                "FETCH_HEAD",
            ],
            git,
            "checkout",
        )?;
        if keep_git_dir {
            // The kept `.git` goes into an image: never with the URL's
            // password (BuildKit's git source redacts the remote it keeps).
            let shown = git.shown();
            if shown != git.remote {
                run_git(
                    Some(&tmp),
                    &["remote", "set-url", "origin", &shown],
                    git,
                    "remote set-url",
                )?;
            }
        } else {
            let dotgit = tmp.join(".git");
            std::fs::remove_dir_all(&dotgit).map_err(io(&dotgit, "removing .git"))?;
        }
        std::fs::create_dir_all(parent).map_err(io(parent, "creating the checkout cache"))?;
        Ok(())
    })();
    if let Err(e) = result {
        let _ = crate::cache::scratch::remove_tree(&tmp);
        return Err(e);
    }
    if let Err(e) = std::fs::rename(&tmp, root) {
        let _ = crate::cache::scratch::remove_tree(&tmp);
        // A concurrent build placed the same checkout first.
        if !root.is_dir() {
            return Err(io(root, "placing the checkout")(e));
        }
    }
    tracing::debug!(remote = %git.shown(), commit, "git checkout stored");
    Ok(())
}

/// Fetches `commit` into the repository at `dir`: shallow by commit ID
/// first; then, as BuildKit retries (`util/gitutil/git_cli.go`,
/// `ErrShallowNotSupported`), without `--depth` for a server that cannot
/// serve shallow fetches (Git's dumb HTTP), and by the ref's name for one
/// that does not serve commits by ID. The first error is the one shown.
fn fetch(dir: &Path, git: &GitRef, commit: &str) -> Result<(), GitSourceError> {
    let reference = git.reference.as_deref().unwrap_or("HEAD");
    let attempts: [&[&str]; 4] = [
        &["fetch", "-q", "--depth=1", "--no-tags", "origin", commit],
        &["fetch", "-q", "--no-tags", "origin", commit],
        &["fetch", "-q", "--depth=1", "--no-tags", "origin", reference],
        &["fetch", "-q", "--no-tags", "origin", reference],
    ];
    let mut first = None;
    for args in attempts {
        match run_git(Some(dir), args, git, "fetch") {
            Ok(_) => return Ok(()),
            Err(e) => {
                tracing::debug!(error = %crate::error_chain::Chain(&e), "git fetch attempt failed");
                first.get_or_insert(e);
            }
        }
    }
    Err(first.expect("at least one attempt"))
}

/// Runs `git args` (in `dir`) with no terminal prompts and no user or
/// system configuration, as BuildKit runs it (`util/gitutil/git_cli.go`:
/// `GIT_TERMINAL_PROMPT=0`, `GIT_CONFIG_NOSYSTEM=1`); fails with its
/// stderr.
fn run_git(
    dir: Option<&Path>,
    args: &[&str],
    git: &GitRef,
    what: &'static str,
) -> Result<Output, GitSourceError> {
    let mut cmd = Command::new("git");
    if let Some(d) = dir {
        cmd.current_dir(d);
    }
    cmd.args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .stdin(std::process::Stdio::null());
    // A killed kiln must not leave a fetch running (it would go on
    // writing into a scratch dir nobody owns), nor the helpers git starts
    // (`git remote-http`, ...), which a parent-death signal on git alone
    // would orphan: git runs as init of a PID namespace of its own, whose
    // end kills every process in it, under a waiter that dies with kiln.
    // SAFETY: between fork and exec only async-signal-safe calls are made
    // (prctl, unshare, fork, close, waitpid, _exit), on no shared state.
    unsafe {
        cmd.pre_exec(|| {
            die_with_parent()?;
            isolate_pids()
        });
    }
    let out = cmd.output().map_err(|source| GitSourceError::Spawn {
        remote: git.shown(),
        source,
    })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let last = stderr
            .lines()
            .rfind(|l| !l.trim().is_empty())
            .unwrap_or("no output")
            .to_string();
        return Err(GitSourceError::Command {
            what,
            remote: git.shown(),
            stderr: crate::source::url::redact_in(&last, &git.remote),
        });
    }
    Ok(out)
}

/// `PR_SET_PDEATHSIG`: SIGKILL when the thread that forked us ends.
///
/// # Safety
/// Only called between fork and exec (async-signal-safe).
unsafe fn die_with_parent() -> std::io::Result<()> {
    // SAFETY: prctl with integer arguments touches no memory of ours.
    if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Moves what is about to exec into a new PID namespace, as its init:
/// this process forks; the child (pid 1 there, dying with its parent)
/// returns to exec git, the parent stays as a waiter that closes every
/// descriptor (so the spawner's exec-error pipe and git's output pipes
/// end when git ends) and exits as git did. Without the privilege to
/// unshare, git runs as it is (its helpers then outlive a killed kiln).
///
/// # Safety
/// Only called between fork and exec (async-signal-safe).
unsafe fn isolate_pids() -> std::io::Result<()> {
    // SAFETY: unshare and fork take no pointers; in the child only
    // async-signal-safe calls follow.
    unsafe {
        if libc::unshare(libc::CLONE_NEWPID) != 0 {
            return Ok(());
        }
        let pid = libc::fork();
        if pid < 0 {
            return Err(std::io::Error::last_os_error());
        }
        if pid == 0 {
            // Init of the namespace: its death kills the namespace.
            return die_with_parent();
        }
        libc::syscall(libc::SYS_close_range, 0u32, u32::MAX, 0u32);
        let mut status = 0;
        loop {
            let r = libc::waitpid(pid, &mut status, 0);
            if r == pid {
                break;
            }
            if r < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                libc::_exit(127);
            }
        }
        if libc::WIFEXITED(status) {
            libc::_exit(libc::WEXITSTATUS(status));
        }
        libc::_exit(128 + libc::WTERMSIG(status));
    }
}
