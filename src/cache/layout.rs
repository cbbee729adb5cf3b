//! Where everything under `--root` lives: one type names every path, so
//! that the store, the executor, the context's digest cache, pulls and
//! containers cannot disagree about them, and ARCHITECTURE.md's list of
//! the store's contents is checked against it (the test below).
//!
//! Only the places are named here; what is inside each belongs to the
//! module that owns it (named on each method).

use crate::image::digest::Digest;
use std::path::{Path, PathBuf};

/// The SQLite metadata database (`db.rs`).
const DATABASE: &str = "kiln.db";
/// Content-addressed blobs by sha256 hex.
const BLOBS: &str = "blobs/sha256";
/// Unpacked layers by chain ID hex.
const SNAPSHOTS: &str = "snapshots";
/// Each process's scratch dir (`scratch.rs`).
const TMP: &str = "tmp";
/// Resumable downloads of a pull (`transfer::ingest`).
const INGEST: &str = "ingest";
/// `ADD <url>` downloads kept per URL (`exec::http_source`).
const HTTP: &str = "http";
/// Git checkouts by remote and commit (`exec::git_source`).
const GIT: &str = "git";
/// A COPY's last result per lineage (`copy_index.rs`).
const COPY_INDEX: &str = "copy-index";
/// File digests of contexts by stat stamp (`context::stat_cache`).
const CONTEXT_CACHE: &str = "context-cache";
/// `RUN --mount=type=cache` directories (`exec::cache_mount`).
const CACHE_MOUNTS: &str = "cache-mounts";
/// What a GC sweep deleted, until its commit is known (`trash.rs`).
const TRASH: &str = "trash";
/// `kiln run` containers' state dirs (`container::reap`, `cli::run`).
const CONTAINERS: &str = "containers";
/// `--name` links to container IDs.
const CONTAINER_NAMES: &str = "containers/names";
/// The lower dir of images without layers (`container::image`).
const EMPTY: &str = "empty";
/// Where pushed and pulled blobs came from (`transfer::sources`).
const BLOB_SOURCES: &str = "blob-sources";
/// Registry logins (`image::registry::LoginFile::in_root`).
const AUTH_FILE: &str = "auth.json";
/// kiln's settings: `insecure-registries`
/// (`image::registry::ClientOptions::for_root`) and the build cache's `gc`
/// cap (`cache::cache_prune`).
const SETTINGS: &str = "config.json";
/// A missed step's lock, held while one build runs it (`cache::step_lock`).
const LOCKS: &str = "locks";
/// What went into each step's last record, for `--explain`
/// (`cache::step_inputs`).
const STEP_INPUTS: &str = "step-inputs";
/// Named and anonymous volumes of `kiln run` and `kiln volume`
/// (`volume::store`).
const VOLUMES: &str = "volumes";
/// Container networks: their state and its lock (`network::state`).
const NETWORKS: &str = "networks";

/// Every path above, relative to the root.
#[cfg(test)]
const ALL: [&str; 21] = [
    DATABASE,
    BLOBS,
    SNAPSHOTS,
    TMP,
    INGEST,
    HTTP,
    GIT,
    COPY_INDEX,
    CONTEXT_CACHE,
    CACHE_MOUNTS,
    TRASH,
    CONTAINERS,
    CONTAINER_NAMES,
    EMPTY,
    BLOB_SOURCES,
    AUTH_FILE,
    SETTINGS,
    LOCKS,
    STEP_INPUTS,
    VOLUMES,
    NETWORKS,
];

/// The paths of the store at one `--root`. Cheap to clone; creates nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreLayout {
    root: PathBuf,
}

impl StoreLayout {
    pub fn new(root: &Path) -> StoreLayout {
        StoreLayout {
            root: root.to_path_buf(),
        }
    }

    /// The `--root` directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `kiln.db`, the metadata database.
    pub fn database(&self) -> PathBuf {
        self.root.join(DATABASE)
    }

    /// `blobs/sha256/`: the directory of all blobs.
    pub fn blobs(&self) -> PathBuf {
        self.root.join(BLOBS)
    }

    /// Where a blob's file lives (it may not exist).
    pub fn blob(&self, digest: &Digest) -> PathBuf {
        self.blobs().join(digest.hex())
    }

    /// `snapshots/`: the directory of all unpacked layers.
    pub fn snapshots(&self) -> PathBuf {
        self.root.join(SNAPSHOTS)
    }

    /// Where a snapshot's directory lives (it may not exist).
    pub fn snapshot(&self, chain_id: &Digest) -> PathBuf {
        self.snapshots().join(chain_id.hex())
    }

    /// `tmp/`: the parent of every process's scratch dir.
    pub fn tmp(&self) -> PathBuf {
        self.root.join(TMP)
    }

    /// `ingest/`: a pull's resumable `*.partial` downloads.
    pub fn ingest(&self) -> PathBuf {
        self.root.join(INGEST)
    }

    /// `http/`: `ADD <url>` downloads, one subdirectory per URL.
    pub fn http_downloads(&self) -> PathBuf {
        self.root.join(HTTP)
    }

    /// `git/`: Git checkouts, one directory per remote, commit and
    /// whether `.git` is kept, renamed into place once complete.
    pub fn git_checkouts(&self) -> PathBuf {
        self.root.join(GIT)
    }

    /// `copy-index/`: what each COPY lineage last wrote.
    pub fn copy_indexes(&self) -> PathBuf {
        self.root.join(COPY_INDEX)
    }

    /// `context-cache/`: the digest caches of build contexts.
    pub fn context_cache(&self) -> PathBuf {
        self.root.join(CONTEXT_CACHE)
    }

    /// `cache-mounts/`: `RUN --mount=type=cache` directories and locks.
    pub fn cache_mounts(&self) -> PathBuf {
        self.root.join(CACHE_MOUNTS)
    }

    /// `trash/`: files of rows a GC sweep deleted.
    pub fn trash(&self) -> PathBuf {
        self.root.join(TRASH)
    }

    /// `containers/`: one state dir per `kiln run` container.
    pub fn containers(&self) -> PathBuf {
        self.root.join(CONTAINERS)
    }

    /// `containers/names/`: `--name` links to container IDs.
    pub fn container_names(&self) -> PathBuf {
        self.root.join(CONTAINER_NAMES)
    }

    /// `empty/`: the lower dir of images without layers, never written.
    pub fn empty(&self) -> PathBuf {
        self.root.join(EMPTY)
    }

    /// `blob-sources/`: the repositories each blob came from.
    pub fn blob_sources(&self) -> PathBuf {
        self.root.join(BLOB_SOURCES)
    }

    /// `auth.json`: registry logins. `image::registry` sits below the
    /// store and names it itself; a test checks that the two agree.
    pub fn auth_file(&self) -> PathBuf {
        self.root.join(AUTH_FILE)
    }

    /// `config.json`: kiln's settings (`insecure-registries`, read by
    /// `image::registry::ClientOptions::for_root`, which sits below the
    /// store; the `gc` cap, read by `cache::cache_prune`).
    pub fn settings(&self) -> PathBuf {
        self.root.join(SETTINGS)
    }

    /// `locks/`: one lock file per cache key being run (`cache::step_lock`).
    pub fn step_locks(&self) -> PathBuf {
        self.root.join(LOCKS)
    }

    /// `step-inputs/`: one summary per step lineage (`cache::step_inputs`).
    pub fn step_inputs(&self) -> PathBuf {
        self.root.join(STEP_INPUTS)
    }

    /// `volumes/`: one dir per volume, `<name>/_data` and its metadata
    /// (`volume::store`).
    pub fn volumes(&self) -> PathBuf {
        self.root.join(VOLUMES)
    }

    /// `networks/`: `state.json` and its `lock` (`network::state`).
    pub fn networks(&self) -> PathBuf {
        self.root.join(NETWORKS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// The paths ARCHITECTURE.md's store section lists: each `<root>/…`
    /// line up to its first placeholder (`<hex>`, `*.partial`, `[.doomed]`).
    fn documented() -> BTreeSet<String> {
        let doc =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("ARCHITECTURE.md"))
                .expect("reading ARCHITECTURE.md");
        let section = doc
            .split("\n## ")
            .find(|s| s.starts_with("The store"))
            .expect("ARCHITECTURE.md has a `## The store` section");
        section
            .lines()
            .filter_map(|l| l.trim_start().strip_prefix("<root>/"))
            .map(|l| {
                let path = l.split_whitespace().next().unwrap_or_default();
                let fixed: Vec<&str> = path
                    .split('/')
                    .take_while(|seg| !seg.is_empty() && !seg.contains(['<', '*', '[']))
                    .collect();
                fixed.join("/")
            })
            .collect()
    }

    #[test]
    fn the_layout_is_the_store_list_in_architecture_md() {
        let layout: BTreeSet<String> = ALL.iter().map(|p| p.to_string()).collect();
        assert_eq!(layout.len(), ALL.len(), "ALL lists a path twice");
        assert_eq!(
            documented(),
            layout,
            "ARCHITECTURE.md's store section and cache::layout differ"
        );
    }

    #[test]
    fn every_path_is_under_the_root_where_the_constants_say() {
        let l = StoreLayout::new(Path::new("/r"));
        let named = [
            l.database(),
            l.blobs(),
            l.snapshots(),
            l.tmp(),
            l.ingest(),
            l.http_downloads(),
            l.git_checkouts(),
            l.copy_indexes(),
            l.context_cache(),
            l.cache_mounts(),
            l.trash(),
            l.containers(),
            l.container_names(),
            l.empty(),
            l.blob_sources(),
            l.auth_file(),
            l.settings(),
            l.step_locks(),
            l.step_inputs(),
            l.volumes(),
            l.networks(),
        ];
        let named: BTreeSet<PathBuf> = named.into_iter().collect();
        let all: BTreeSet<PathBuf> = ALL.iter().map(|p| Path::new("/r").join(p)).collect();
        assert_eq!(named, all, "a method and ALL disagree");
        let d: Digest = format!("sha256:{}", "ab".repeat(32)).parse().unwrap();
        assert_eq!(l.blob(&d), Path::new("/r/blobs/sha256").join(d.hex()));
        assert_eq!(l.snapshot(&d), Path::new("/r/snapshots").join(d.hex()));
    }

    #[test]
    fn the_registry_reads_its_login_file_from_the_layout() {
        let l = StoreLayout::new(Path::new("/r"));
        let login = crate::image::registry::LoginFile::in_root(l.root());
        assert_eq!(login.path(), l.auth_file());
    }
}
