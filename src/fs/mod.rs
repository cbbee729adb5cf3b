//! Filesystem rules below every other module: resolving a path inside a
//! root directory as if it were `/` ([`path_in_root`]), which the context's
//! wildcard expansion, the executor's copies and the runtime's user lookup
//! all need and none of them owns.

pub mod path_in_root;
