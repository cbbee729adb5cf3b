//! Where build inputs from outside the context come from: the rules for
//! remote URLs ([`url`]) and Git sources ([`git_ref`]) that the CLI, the
//! lowering and the executor share.

pub mod git_ref;
pub mod url;
