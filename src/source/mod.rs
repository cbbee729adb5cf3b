//! Where build inputs from outside the context come from: the rules for
//! remote URLs ([`url`]) that the lowering and the executor share.

pub mod url;
