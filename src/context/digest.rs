//! Content digests of context selections, the part of a cache key a
//! `COPY` from the context contributes (like BuildKit's contenthash).
//!
//! - a file's digest covers its header (type, permission bits, uid, gid)
//!   and the sha256 of its bytes;
//! - a symlink's covers its header and target (it is not followed inside
//!   a tree);
//! - a directory's is a Merkle combination of its header and each child's
//!   name and digest, in name order;
//! - a selection's covers each matched path and its digest.
//!
//! **Never** mtimes: a fresh checkout of the same tree has the same digest.
//! Reading is the expensive part, so file bytes are hashed in parallel and
//! remembered by stat stamp in a [`FileDigestCache`]: an unchanged context
//! is only stat'ed on the next build.

use rayon::prelude::*;
use sha2::{Digest as _, Sha256};
use std::cell::RefCell;
use std::fs::File;
use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use super::scan::{ContextTree, Entry, EntryKind, PathFilter};
use super::stat_cache::{FileDigestCache, FileStamp};
use super::wildcard::{clean_components, context_can_hold, split_wildcards, Pattern, PatternError};
use crate::image::Digest;

/// Symlink hops allowed while resolving a selection (Linux's MAXSYMLINKS).
const MAX_SYMLINK_HOPS: usize = 40;
/// Read buffer per hashing thread.
const READ_BUFFER: usize = 256 * 1024;

/// What to digest: a path in the context, as a `COPY` source names it.
#[derive(Clone, Copy)]
pub struct Selection<'a> {
    /// Relative to the context root; `/`, `.` and `` mean all of it.
    pub path: &'a str,
    /// A `COPY` source: unescaped `*`, `?` and `[...]` are wildcards and
    /// only what BuildKit's context transfer sends for the source is seen
    /// ([`crate::context::wildcard`]'s rules, the copy's too).
    pub wildcard: bool,
    /// Follow a symlink at the selected path itself (parents always are).
    pub follow_links: bool,
    /// `COPY --exclude` and friends, on paths relative to each match.
    pub filter: Option<&'a dyn PathFilter>,
}

impl<'a> Selection<'a> {
    /// One path, symlinks followed, no wildcards, no filter.
    pub fn path(path: &'a str) -> Selection<'a> {
        Selection {
            path,
            wildcard: false,
            follow_links: true,
            filter: None,
        }
    }
}

/// Why a selection cannot be digested.
#[derive(Debug, thiserror::Error)]
pub enum ContentDigestError {
    /// BuildKit's checksum wording (moby/buildkit
    /// `cache/contenthash/checksum.go` `checksum`: `%q` of the absolute
    /// path, then `: not found`).
    #[error("\"/{path}\": not found", path = path.escape_debug())]
    NotFound { path: String },
    #[error("{path:?}: too many levels of symbolic links")]
    SymlinkLoop { path: String },
    #[error(transparent)]
    Pattern(#[from] PatternError),
    #[error("cannot read {path} from the build context")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// How much work digesting took; the second build of an unchanged context
/// should show only cache hits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DigestStats {
    pub files_read: u64,
    pub bytes_read: u64,
    pub cache_hits: u64,
}

/// What a selection resolved to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    Root,
    Entry(usize),
}

/// Digests selections of one scanned context, sharing work between them
/// (each file is read at most once per digester). It owns what it needs,
/// so an executor can keep it as a context source's output.
pub struct ContextDigester {
    tree: Arc<ContextTree>,
    cache: Arc<dyn FileDigestCache>,
    /// Files whose timestamps are not older than this (ns since the epoch)
    /// may be changing while read; their digests are not remembered.
    trust_before_ns: i64,
    /// Index one past each entry's subtree.
    ends: Vec<usize>,
    contents: Vec<OnceLock<[u8; 32]>>,
    nodes: Vec<OnceLock<[u8; 32]>>,
    files_read: AtomicU64,
    bytes_read: AtomicU64,
    cache_hits: AtomicU64,
}

impl ContextDigester {
    /// A digester over `tree`, remembering file digests in `cache`.
    pub fn new(tree: Arc<ContextTree>, cache: Arc<dyn FileDigestCache>) -> Self {
        let n = tree.entries().len();
        ContextDigester {
            trust_before_ns: coarse_now_ns(),
            ends: subtree_ends(tree.entries()),
            contents: (0..n).map(|_| OnceLock::new()).collect(),
            nodes: (0..n).map(|_| OnceLock::new()).collect(),
            tree,
            cache,
            files_read: AtomicU64::new(0),
            bytes_read: AtomicU64::new(0),
            cache_hits: AtomicU64::new(0),
        }
    }

    /// The scanned context.
    pub fn tree(&self) -> &ContextTree {
        &self.tree
    }

    /// Work done so far.
    pub fn stats(&self) -> DigestStats {
        DigestStats {
            files_read: self.files_read.load(Ordering::Relaxed),
            bytes_read: self.bytes_read.load(Ordering::Relaxed),
            cache_hits: self.cache_hits.load(Ordering::Relaxed),
        }
    }

    /// The content digest of the regular file at `rel` (relative to the
    /// context root, no leading slash); `None` for anything else. Memoized
    /// like every file digest, so asking after [`Self::digest`] read it is
    /// free.
    pub fn file_digest(&self, rel: &str) -> Result<Option<Digest>, ContentDigestError> {
        let Some(i) = self.tree.find(rel) else {
            return Ok(None);
        };
        if self.tree.entries()[i].kind != EntryKind::File {
            return Ok(None);
        }
        Ok(Some(Digest::from_sha256_bytes(&self.content(i)?)))
    }

    /// The digest of everything `selection` names. A wildcard matching
    /// nothing digests as an empty selection (whether that is an error is
    /// the copy's decision); a missing plain path is an error.
    pub fn digest(&self, selection: &Selection<'_>) -> Result<Digest, ContentDigestError> {
        let matched = self.matched(selection)?;

        // Read every file first, in parallel; the Merkle fold below is cheap.
        let files: Vec<usize> = matched
            .iter()
            .flat_map(|&(_, target)| self.files_under(target, selection.filter))
            .collect();
        files
            .par_iter()
            // Enough files per task that a warm run (cache lookups only)
            // is not all scheduling overhead.
            .with_min_len(64)
            .try_for_each(|&i| self.content(i).map(|_| ()))?;

        let mut h = Sha256::new();
        h.update(b"kiln.selection.v1\0");
        for (path, target) in &matched {
            let node = match selection.filter {
                None => Some(self.node(*target)?),
                Some(filter) => self.filtered_node(*target, filter)?,
            };
            if let Some(node) = node {
                h.update((path.len() as u64).to_le_bytes());
                h.update(path.as_bytes());
                h.update(node);
            }
        }
        Ok(Digest::from_sha256_bytes(&h.finalize()))
    }

    /// The paths `selection` names and what each resolves to.
    fn matched(
        &self,
        selection: &Selection<'_>,
    ) -> Result<Vec<(String, Target)>, ContentDigestError> {
        let path = clean(selection.path);
        if selection.wildcard {
            self.select_source(&path, selection.follow_links)
        } else {
            Ok(vec![(
                path.clone(),
                self.resolve(&path, selection.follow_links)?,
            )])
        }
    }

    /// What a `COPY` source names, as the copy expands it
    /// ([`crate::context::wildcard::resolve_wildcards`]): a literal path,
    /// or the entries below its literal directory (symlinks followed) that
    /// match the pattern, in path order. A missing or unsent literal
    /// directory matches nothing here (BuildKit's `wildcardPrefix` finds no
    /// key and the checksum is of nothing); the copy then fails on it.
    fn select_source(
        &self,
        path: &str,
        follow_links: bool,
    ) -> Result<Vec<(String, Target)>, ContentDigestError> {
        let (dir, pattern_text) = split_wildcards(path);
        let dir = dir.trim_start_matches('/');
        if pattern_text.is_empty() {
            if !context_can_hold(dir) {
                return Err(ContentDigestError::NotFound {
                    path: dir.to_string(),
                });
            }
            return Ok(vec![(dir.to_string(), self.resolve(dir, follow_links)?)]);
        }
        let pattern = Pattern::new(&pattern_text)?;
        if !context_can_hold(dir) {
            return Ok(Vec::new());
        }
        let base = match self.resolve(dir, true) {
            Ok(base) => base,
            Err(ContentDigestError::NotFound { .. }) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let entries = self.tree.entries();
        let (range, skip) = match base {
            Target::Root => (0..entries.len(), 0),
            Target::Entry(i) if entries[i].kind == EntryKind::Dir => {
                (i + 1..self.ends[i], entries[i].path.len() + 1)
            }
            Target::Entry(_) => return Ok(Vec::new()),
        };
        let mut matched = Vec::new();
        for i in range {
            let rel = &entries[i].path[skip..];
            if !pattern.matches(rel) {
                continue;
            }
            let shown = if dir.is_empty() {
                rel.to_string()
            } else {
                format!("{dir}/{rel}")
            };
            let target = if follow_links {
                self.resolve(&entries[i].path, true)?
            } else {
                Target::Entry(i)
            };
            matched.push((shown, target));
        }
        Ok(matched)
    }

    /// The context paths (relative, no leading `/`) whose content the
    /// digest of `selection` covers: every entry under each selected path,
    /// with a selected symlink followed as the selection says (the
    /// selection's filter is not applied). What a `COPY` of the same
    /// source reads must be exactly these.
    pub fn selected_paths(
        &self,
        selection: &Selection<'_>,
    ) -> Result<std::collections::BTreeSet<String>, ContentDigestError> {
        let matched = self.matched(selection)?;
        let entries = self.tree.entries();
        let mut out = std::collections::BTreeSet::new();
        for (_, target) in matched {
            let range = match target {
                Target::Root => 0..entries.len(),
                Target::Entry(i) => i..self.ends[i],
            };
            out.extend(range.map(|i| entries[i].path.clone()));
        }
        Ok(out)
    }

    /// Resolves `path` inside the context, following symlinks in parent
    /// components and, if `follow_final`, in the last one. Links never
    /// leave the context: `..` stops at its root and absolute targets
    /// start from it, as a COPY source is scoped to the context.
    fn resolve(&self, path: &str, follow_final: bool) -> Result<Target, ContentDigestError> {
        let mut pending: std::collections::VecDeque<String> = path
            .split('/')
            .filter(|c| !c.is_empty())
            .map(String::from)
            .collect();
        let mut resolved: Vec<String> = Vec::new();
        let mut hops = 0;
        while let Some(component) = pending.pop_front() {
            match component.as_str() {
                "." => continue,
                ".." => {
                    resolved.pop();
                    continue;
                }
                _ => {}
            }
            resolved.push(component);
            let joined = resolved.join("/");
            let Some(i) = self.tree.find(&joined) else {
                return Err(ContentDigestError::NotFound {
                    path: path.to_string(),
                });
            };
            let entry = &self.tree.entries()[i];
            if entry.kind == EntryKind::Symlink && (follow_final || !pending.is_empty()) {
                hops += 1;
                if hops > MAX_SYMLINK_HOPS {
                    return Err(ContentDigestError::SymlinkLoop {
                        path: path.to_string(),
                    });
                }
                let target = entry.link_target.as_deref().unwrap_or("");
                resolved.pop();
                if target.starts_with('/') {
                    resolved.clear();
                }
                for part in target.split('/').rev().filter(|c| !c.is_empty()) {
                    pending.push_front(part.to_string());
                }
            }
        }
        if resolved.is_empty() {
            return Ok(Target::Root);
        }
        // Every prefix was found above, so the full path is present.
        let joined = resolved.join("/");
        self.tree
            .find(&joined)
            .map(Target::Entry)
            .ok_or(ContentDigestError::NotFound {
                path: path.to_string(),
            })
    }

    /// Regular files under `target` (itself included) that `filter` keeps.
    fn files_under(&self, target: Target, filter: Option<&dyn PathFilter>) -> Vec<usize> {
        let entries = self.tree.entries();
        let range = match target {
            Target::Root => 0..entries.len(),
            Target::Entry(i) => i..self.ends[i],
        };
        let prefix = self.filter_prefix(target);
        range
            .filter(|&i| entries[i].kind == EntryKind::File)
            .filter(|&i| filter.is_none_or(|f| !f.excluded(&entries[i].path[prefix..])))
            .collect()
    }

    /// How much of an entry's path to drop to get the path a selection
    /// filter sees: relative to a selected directory (as BuildKit applies
    /// `COPY --exclude` inside the source), or a selected file's name.
    fn filter_prefix(&self, target: Target) -> usize {
        match target {
            Target::Root => 0,
            Target::Entry(i) => {
                let entry = &self.tree.entries()[i];
                if entry.kind == EntryKind::Dir {
                    entry.path.len() + 1
                } else {
                    entry.path.rfind('/').map_or(0, |p| p + 1)
                }
            }
        }
    }

    /// The content digest of file `i`, from the cache if its stamp matches.
    fn content(&self, i: usize) -> Result<[u8; 32], ContentDigestError> {
        if let Some(d) = self.contents[i].get() {
            return Ok(*d);
        }
        let entry = &self.tree.entries()[i];
        let stamp = FileStamp {
            size: entry.size,
            mtime_ns: entry.mtime_ns,
            ctime_ns: entry.ctime_ns,
            ino: entry.ino,
            dev: entry.dev,
        };
        if let Some(d) = self.cache.get(&entry.path, &stamp) {
            self.cache_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(*self.contents[i].get_or_init(|| d));
        }
        let host = self.tree.host_path(&entry.path);
        let (d, len) = hash_file(&host).map_err(|source| ContentDigestError::Read {
            path: host.clone(),
            source,
        })?;
        self.files_read.fetch_add(1, Ordering::Relaxed);
        self.bytes_read.fetch_add(len, Ordering::Relaxed);
        if entry.mtime_ns < self.trust_before_ns && entry.ctime_ns < self.trust_before_ns {
            self.cache.put(&entry.path, stamp, d);
        }
        Ok(*self.contents[i].get_or_init(|| d))
    }

    /// The Merkle digest of `target` with nothing filtered out.
    fn node(&self, target: Target) -> Result<[u8; 32], ContentDigestError> {
        let i = match target {
            Target::Root => {
                let mut h = Sha256::new();
                h.update(b"dir\0");
                // The context root's own mode and owner are the host's, not
                // the build's: leave them out.
                for child in self.children(None) {
                    self.child_into(&mut h, child, self.node(Target::Entry(child))?);
                }
                return Ok(h.finalize().into());
            }
            Target::Entry(i) => i,
        };
        if let Some(d) = self.nodes[i].get() {
            return Ok(*d);
        }
        let entry = &self.tree.entries()[i];
        let mut h = Sha256::new();
        header_into(&mut h, entry);
        match entry.kind {
            EntryKind::File => h.update(self.content(i)?),
            EntryKind::Dir => {
                for child in self.children(Some(i)) {
                    self.child_into(&mut h, child, self.node(Target::Entry(child))?);
                }
            }
            _ => {}
        }
        Ok(*self.nodes[i].get_or_init(|| h.finalize().into()))
    }

    /// Like [`Self::node`], leaving out what `filter` excludes (the
    /// selected directory itself is never filtered, only its contents);
    /// `None` if everything is excluded.
    fn filtered_node(
        &self,
        target: Target,
        filter: &dyn PathFilter,
    ) -> Result<Option<[u8; 32]>, ContentDigestError> {
        let prefix = self.filter_prefix(target);
        let mut h = Sha256::new();
        let index = match target {
            Target::Root => {
                h.update(b"dir\0");
                None
            }
            Target::Entry(i) if self.tree.entries()[i].kind == EntryKind::Dir => {
                header_into(&mut h, &self.tree.entries()[i]);
                Some(i)
            }
            Target::Entry(i) => return self.filtered_walk(i, filter, prefix),
        };
        for child in self.children(index) {
            if let Some(d) = self.filtered_walk(child, filter, prefix)? {
                self.child_into(&mut h, child, d);
            }
        }
        Ok(Some(h.finalize().into()))
    }

    /// Entry `i` under a filtered selection; an excluded directory is kept
    /// only if a `!` pattern brought something inside it back.
    fn filtered_walk(
        &self,
        i: usize,
        filter: &dyn PathFilter,
        prefix: usize,
    ) -> Result<Option<[u8; 32]>, ContentDigestError> {
        let entry = &self.tree.entries()[i];
        let rel = &entry.path[prefix..];
        let excluded = filter.excluded(rel);
        if excluded && (entry.kind != EntryKind::Dir || filter.can_skip_dir(rel)) {
            return Ok(None);
        }
        let mut h = Sha256::new();
        header_into(&mut h, entry);
        match entry.kind {
            EntryKind::File => h.update(self.content(i)?),
            EntryKind::Dir => {
                let mut kept = 0;
                for child in self.children(Some(i)) {
                    if let Some(d) = self.filtered_walk(child, filter, prefix)? {
                        self.child_into(&mut h, child, d);
                        kept += 1;
                    }
                }
                if excluded && kept == 0 {
                    return Ok(None);
                }
            }
            _ => {}
        }
        Ok(Some(h.finalize().into()))
    }

    /// Direct children of entry `parent` (or of the root).
    fn children(&self, parent: Option<usize>) -> impl Iterator<Item = usize> + '_ {
        let (mut next, end) = match parent {
            None => (0, self.tree.entries().len()),
            Some(i) => (i + 1, self.ends[i]),
        };
        std::iter::from_fn(move || {
            if next >= end {
                return None;
            }
            let child = next;
            next = self.ends[child];
            Some(child)
        })
    }

    fn child_into(&self, h: &mut Sha256, child: usize, digest: [u8; 32]) {
        let path = &self.tree.entries()[child].path;
        let name = path.rsplit('/').next().unwrap_or(path);
        h.update((name.len() as u64).to_le_bytes());
        h.update(name.as_bytes());
        h.update(digest);
    }
}

/// The header fields that matter to a copy: type, permission bits, owner,
/// link target, device number. Not mtime, not size (the content covers it).
fn header_into(h: &mut Sha256, entry: &Entry) {
    let tag: &[u8] = match entry.kind {
        EntryKind::File => b"file\0",
        EntryKind::Dir => b"dir\0",
        EntryKind::Symlink => b"link\0",
        EntryKind::Fifo => b"fifo\0",
        EntryKind::Socket => b"sock\0",
        EntryKind::CharDevice => b"chr\0",
        EntryKind::BlockDevice => b"blk\0",
    };
    h.update(tag);
    h.update(entry.mode.to_le_bytes());
    h.update(entry.uid.to_le_bytes());
    h.update(entry.gid.to_le_bytes());
    let target = entry.link_target.as_deref().unwrap_or("");
    h.update((target.len() as u64).to_le_bytes());
    h.update(target.as_bytes());
    let rdev = match entry.kind {
        EntryKind::CharDevice | EntryKind::BlockDevice => entry.rdev,
        _ => 0,
    };
    h.update(rdev.to_le_bytes());
}

/// For each entry, the index one past its subtree (entries are in
/// component order, so a directory's descendants follow it contiguously).
fn subtree_ends(entries: &[Entry]) -> Vec<usize> {
    let mut ends: Vec<usize> = (1..=entries.len()).collect();
    let mut open: Vec<usize> = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        while let Some(&dir) = open.last() {
            let dir_path = &entries[dir].path;
            let inside = entry.path.len() > dir_path.len()
                && entry.path.as_bytes()[dir_path.len()] == b'/'
                && entry.path.starts_with(dir_path.as_str());
            if inside {
                break;
            }
            ends[dir] = i;
            open.pop();
        }
        if entry.kind == EntryKind::Dir {
            open.push(i);
        }
    }
    for dir in open {
        ends[dir] = entries.len();
    }
    ends
}

/// A selection path cleaned lexically, as the copy cleans it
/// ([`clean_components`]): `./a//b/` → `a/b`, `a/../b` → `b`; `/`, `.`
/// and `` → ``.
fn clean(path: &str) -> String {
    clean_components(path).join("/")
}

fn hash_file(path: &std::path::Path) -> io::Result<([u8; 32], u64)> {
    thread_local! {
        static BUFFER: RefCell<Vec<u8>> = RefCell::new(vec![0; READ_BUFFER]);
    }
    let mut file = File::open(path)?;
    BUFFER.with_borrow_mut(|buf| {
        let mut h = Sha256::new();
        let mut total = 0u64;
        loop {
            let n = match file.read(buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            h.update(&buf[..n]);
            total += n as u64;
        }
        Ok((h.finalize().into(), total))
    })
}

#[cfg(test)]
/// Test support: waits until the kernel's timestamp clock has moved past every ctime in
/// `root`, so the digest cache may trust what it reads (see
/// `ContextDigester::trust_before_ns`). Not a timing assertion: it only
/// waits for a condition.
pub(crate) fn settle(root: &std::path::Path) {
    let tree = crate::context::scan::scan(root, &crate::context::scan::IncludeAll).unwrap();
    let newest = tree.entries().iter().map(|e| e.ctime_ns).max().unwrap_or(0);
    let start = std::time::Instant::now();
    while coarse_now_ns() <= newest {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(5),
            "clock did not advance"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// The kernel's coarse realtime clock, which is what file timestamps are
/// taken from: a write after this instant gets a timestamp at or after it.
fn coarse_now_ns() -> i64 {
    use nix::time::{clock_gettime, ClockId};
    match clock_gettime(ClockId::CLOCK_REALTIME_COARSE) {
        Ok(ts) => ts.tv_sec() * 1_000_000_000 + ts.tv_nsec(),
        // No clock: trust nothing, so nothing is remembered wrongly.
        Err(_) => i64::MIN,
    }
}

#[cfg(test)]
mod tests;
