//! Image formats and names: digests, image references, and (later) OCI and
//! Docker manifests, configs, archives and the registry client.
//!
//! Nothing here touches the store or the runtime; these are value types and
//! codecs the store, the registry client and the exporters share.

pub mod change;
pub mod digest;
pub mod layer;
pub mod oci;
pub mod reference;
pub mod registry;
pub mod timestamp;

pub use digest::{Digest, DigestError};
pub use reference::{ImageRef, ReferenceError};
