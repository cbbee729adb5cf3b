//! The pest grammar for the static parts of the syntax (`grammar/dockerfile.pest`):
//! parser directives, heredoc markers and exec-form JSON arrays. The stateful
//! line handling around them is hand-written (see the module map in `mod.rs`).

/// Parser generated from `grammar/dockerfile.pest`.
#[derive(pest_derive::Parser)]
#[grammar = "../grammar/dockerfile.pest"]
pub struct DockerfileGrammar;
