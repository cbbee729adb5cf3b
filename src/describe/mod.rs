//! What kiln shows of an image in the store: docker's `image inspect` JSON
//! ([`inspect`]) and `history` rows ([`history`]).
//!
//! These read stored images (`cache::Image`), so they sit above the store;
//! the value types they print come from `image`.

pub mod history;
pub mod inspect;
