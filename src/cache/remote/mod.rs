//! The build cache shared through a registry or a directory
//! (`--cache-to` / `--cache-from`), so throwaway CI runners and the
//! builders of a farm reuse each other's step results.
//!
//! A remote cache is an OCI artifact: an image manifest whose config is
//! kiln's cache description ([`description`]: cache key → chain of layer
//! diff IDs, with each layer's compressed blob) and whose layers are those
//! blobs. It lives at a registry ref or in an OCI image layout directory
//! ([`location`]); `type=inline` puts the description in the built image's
//! config instead, its layers being the image's own.
//!
//! Importing is lazy ([`import`]): only the description is read before the
//! build; its records answer the solver's "is this cached?", and a layer
//! blob is fetched (and verified) only when a result is taken. A cache that
//! cannot be used never fails a build: it is dropped with one warning.
//! Exporting ([`export`]) pushes blobs first and the manifest last, merged
//! with what the ref already holds.

pub mod description;
pub mod export;
pub mod import;
pub mod location;
pub mod spec;
pub mod stream;

pub use description::Description;
pub use export::ExportError;
pub use import::{Imports, RemoteResult};
pub use location::Location;
pub use spec::{CacheFrom, CacheTo, ExportMode, ExportOptions, SpecError};

use crate::image::registry::RegistryError;
use std::path::PathBuf;

/// Why a remote cache cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum RemoteCacheError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Store(#[from] super::StoreError),
    #[error("reading the cache description")]
    Description(#[from] description::DescriptionError),
    #[error("not a kiln cache: its manifest's config is {0:?}")]
    NotACache(String),
    #[error("an image without an inline kiln cache (build it with --cache-to type=inline)")]
    NoInlineCache,
    #[error("{what} is {size} bytes, more than the {limit} a cache description may be")]
    TooLarge { what: String, size: u64, limit: u64 },
    #[error("{path}: {op}")]
    Io {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {reason}")]
    Layout { path: PathBuf, reason: String },
    #[error("the cache does not describe layer {0}")]
    MissingLayer(crate::image::Digest),
}
