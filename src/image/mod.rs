//! Image formats and names: digests, image references, OCI and Docker
//! manifests and configs, layer tars, `--change` instructions and the
//! registry client.
//!
//! **Architecture Invariant:** nothing here touches the store or the
//! runtime (no `crate::` import at all, `tests/layering.rs`); these are
//! value types and codecs the store, the registry client and the exporters
//! share. What reads or writes the store (save/load, import, inspect,
//! history) lives above it, in `transfer` and `describe`.

pub mod change;
pub mod digest;
pub mod layer;
pub mod oci;
pub mod reference;
pub mod registry;
pub mod timestamp;

pub use digest::{Digest, DigestError};
pub use reference::{ImageRef, ReferenceError};
