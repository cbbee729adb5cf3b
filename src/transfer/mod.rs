//! Moving images between a registry and the store: `pull` and `push`.
//!
//! The registry client (`image::registry`) knows HTTP and digests but not
//! the store; the store knows blobs, snapshots and images but not HTTP.
//! This module is the only place both meet.

pub mod ingest;
pub mod progress;
