//! What each op of the build graph does: [`executor::BuildExecutor`] is
//! the solver's executor for real builds, running image and context
//! sources, RUN ([`run`], in kiln's runtime) and file ops ([`file_op`]).
//!
//! - [`executor`]: op dispatch, the build's shared [`ExecContext`];
//! - [`run`]: RUN on an overlay of the base's snapshots, mounts, logs;
//! - [`file_op`]: COPY/ADD, WORKDIR's mkdir, inline files;
//! - [`http_source`]: `ADD <url>` downloads, re-checked every build and
//!   kept per URL with their ETag/Last-Modified; [`fetch`] is its HTTP
//!   GET (URL passwords hidden in what kiln prints, `source::url`);
//! - [`git_source`]: Git checkouts (`ADD <git url>`, git contexts) by
//!   remote and commit, through the system `git`;
//! - [`merge`]: root filesystems stacked (`COPY --link` on its base);
//! - [`rootfs`]: results as snapshot stacks, new layers committed;
//! - [`context`]: the scanned build context and its digests;
//! - [`context_view`]: the context with ignored entries hidden (an overlay);
//! - [`stack_view`]: a layer stack mounted as one directory;
//! - [`cache_mount`]: `RUN --mount=type=cache` directories;
//! - [`secret_file`]: `RUN --mount=type=secret` files, each on a tmpfs;
//! - [`ssh_agent`]: `RUN --mount=type=ssh` agent sockets (`--ssh`);
//! - [`mount_stubs`]: the mount points a RUN leaves, removed as BuildKit does;
//! - [`upper_diff`]: a RUN's upper dir cut down to BuildKit's layer.
//!
//! COPY and ADD themselves: [`copy::copy`] writes the files an instruction
//! adds into a new, empty layer directory that is later stacked
//! (overlayfs) on the parent image's layers.
//!
//! - [`copy`]: the op itself ([`copy::CopySpec`] in, [`copy::CopyStats`]
//!   out) and the COPY/ADD rules, BuildKit's;
//! - [`parent_fs`]: the read-only view of the image being copied onto
//!   ([`parent_fs::MergedDir`], [`parent_fs::LayerStack`]);
//! - [`dest`]: the new layer seen on top of that view: lookups, symlink
//!   resolution inside the rootfs, directory copy-up;
//! - [`tree`]: copying entries and directory trees (parallel);
//! - source wildcards are [`crate::context::wildcard`]'s, shared with the
//!   cache key;
//! - [`chmod`]: `--chmod` octal and symbolic modes;
//! - [`archive`]: ADD's tar auto-extraction;
//! - [`attrs`]: owner, mode, times and xattrs of written entries.
//!
//! **Invariant:** a copy writes only below `out_layer` and only reads the
//! source root and the parent view; symlinks are resolved inside the rootfs
//! (destination) or the source root (sources), never on the host.

pub mod archive;
pub mod attrs;
pub mod cache_mount;
pub mod chmod;
pub mod context;
pub mod context_view;
pub mod copy;
pub mod copy_reuse;
pub mod dest;
pub mod executor;
pub mod fetch;
pub mod file_op;
pub mod git_source;
pub mod http_source;
pub mod merge;
pub mod mount_stubs;
pub mod parent_fs;
pub mod rootfs;
pub mod run;
pub mod secret_file;
pub mod ssh_agent;
pub mod stack_view;
pub mod tree;
pub mod upper_diff;

pub use executor::{Artifact, BuildExecutor, ContextDir, ExecContext};
pub use rootfs::Rootfs;

#[cfg(test)]
mod fixture;
