//! What each op of the build graph does. This part covers the file op of
//! COPY and ADD: [`copy::copy`] writes the files an instruction adds into a
//! new, empty layer directory that is later stacked (overlayfs) on the
//! parent image's layers.
//!
//! - [`copy`]: the op itself ([`copy::CopySpec`] in, [`copy::CopyStats`]
//!   out) and the COPY/ADD rules, BuildKit's;
//! - [`parent_fs`]: the read-only view of the image being copied onto
//!   ([`parent_fs::MergedDir`], [`parent_fs::LayerStack`]);
//! - [`dest`]: the new layer seen on top of that view: lookups, symlink
//!   resolution inside the rootfs, directory copy-up;
//! - [`tree`]: copying entries and directory trees (parallel);
//! - [`wildcard`]: source wildcards (Go `filepath.Match`);
//! - [`chmod`]: `--chmod` octal and symbolic modes;
//! - [`archive`]: ADD's tar auto-extraction;
//! - [`fetch`]: ADD's URL downloads;
//! - [`attrs`]: owner, mode, times and xattrs of written entries.
//!
//! **Invariant:** a copy writes only below `out_layer` and only reads the
//! source root and the parent view; symlinks are resolved inside the rootfs
//! (destination) or the source root (sources), never on the host.

pub mod archive;
pub mod attrs;
pub mod chmod;
pub mod copy;
pub mod dest;
pub mod fetch;
pub mod parent_fs;
pub mod tree;
pub mod wildcard;

#[cfg(test)]
mod fixture;
