//! Moving images between the store and the outside: a registry ([`pull`],
//! [`push`]), an archive file ([`archive`]: `save`/`load`) or a root
//! filesystem tarball ([`import`]).
//!
//! The registry client (`image::registry`) knows HTTP and digests but not
//! the store; the store (`cache`) knows blobs, snapshots and images but not
//! HTTP. This module is the only place both meet.
//!
//! **Invariant:** an image becomes visible (listed, runnable) only by the
//! final `commit_image` of a pull (or load, or import); everything before
//! is either in the resumable ingest dir or held by this process's store
//! lease.

pub mod archive;
pub mod attached;
pub mod import;
pub mod ingest;
pub mod parallel;
pub mod progress;
pub mod pull;
pub mod push;
pub mod sources;

pub use attached::Attached;
pub use pull::{pull, PullReport};
pub use push::{push, push_attached, PushOptions, PushReport};

use crate::cache::StoreError;
use crate::image::registry::RegistryError;

/// Why a pull or push failed.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{what}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("image {image}: {reason}")]
    BadImage { image: String, reason: String },
}

impl TransferError {
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        TransferError::Io {
            what: what.into(),
            source,
        }
    }
}
