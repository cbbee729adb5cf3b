//! The build context: which local files a build may read, the rules
//! (`.dockerignore`) that decide which of them are sent to the build, and
//! content digests of the parts each step reads.
//!
//! [`scan`] walks the context once (metadata only, `.dockerignore` applied
//! through [`scan::PathFilter`]); [`digest::ContextDigester`] digests the
//! selections `COPY`/`ADD`/bind mounts name, reading each file at most once
//! and, with a [`stat_cache::StatCacheFile`], not at all when its stat is
//! unchanged since the last build.

pub mod digest;
pub mod dockerignore;
pub mod scan;
pub mod stat_cache;
pub mod wildcard;
