//! Dockerfile text → typed AST with spans. Knows nothing of images or builds.
//!
//! The parser reproduces BuildKit's Dockerfile frontend parser
//! (`frontend/dockerfile/parser` and `frontend/dockerfile/instructions` of
//! moby/buildkit) rule for rule, because a Dockerfile means what BuildKit
//! makes of it: which lines continue, which JSON falls back to shell form,
//! which flags are accepted, where heredocs end.
//!
//! # Two layers
//!
//! 1. **Raw** ([`parse_raw`] → [`RawDockerfile`]): BuildKit's `parser.Parse`.
//!    Lines are joined, comments and directives handled, each instruction
//!    split into name, flags and arguments by the same per-instruction rules,
//!    heredoc bodies read. Unknown instruction names are accepted, as in
//!    BuildKit. [`RawDockerfile::dump`] prints BuildKit's AST dump byte for
//!    byte (`kiln debug parse --format buildkit`).
//! 2. **Typed** ([`parse`] → [`Dockerfile`]): BuildKit's
//!    `instructions.Parse`. Every instruction becomes a typed struct with its
//!    flags parsed; unknown instructions and flags, wrong argument counts,
//!    bad durations and the like are errors. Instructions are grouped into
//!    [`Stage`]s; `ARG`s before the first `FROM` are [`Dockerfile::global_args`].
//!    This is what the lowering to a build graph consumes.
//!
//! # Using it
//!
//! ```
//! use kiln::parser::{parse, CommandLine, InstructionKind};
//!
//! let src = b"ARG V=1\nFROM alpine:$V AS base\nRUN --mount=type=cache,target=/c make\n";
//! let df = parse("Dockerfile", src).expect("valid Dockerfile");
//! assert_eq!(df.global_args[0].arg.definitions[0].name, "V");
//! let stage = &df.stages[0];
//! assert_eq!((stage.base.as_str(), stage.name.as_deref()), ("alpine:$V", Some("base")));
//! match &stage.instructions[0].kind {
//!     InstructionKind::Run(run) => {
//!         assert_eq!(run.command, CommandLine::Shell("make".into()));
//!         assert_eq!(run.mounts, ["type=cache,target=/c"]);
//!     }
//!     other => panic!("unexpected {other:?}"),
//! }
//!
//! let err = parse("Dockerfile", b"FROM a\nCOPY --fomr=x a b\n").unwrap_err();
//! assert_eq!((err.position.line, err.position.column), (2, 6));
//! assert!(err.to_string().starts_with("Dockerfile:2:6: unknown flag: --fomr"));
//! ```
//!
//! Note that the AST has a struct named `Copy` (the instruction); import
//! the names you need rather than `parser::*`, which would shadow the
//! `Copy` trait.
//!
//! # Invariants
//!
//! * **Nothing is expanded.** Words keep `$VAR`, quotes and escapes as written;
//!   expansion needs build arguments and belongs to the shell module and the
//!   lowering (BuildKit also expands in its dispatcher, not its parser).
//! * **Bytes in, exact bytes out.** The raw layer works on bytes with Go's
//!   string semantics (module `text`) so that invalid UTF-8, CRLF, BOMs and odd
//!   white space give the same tree as BuildKit. The typed layer decodes text
//!   with U+FFFD for invalid bytes, except heredoc bodies (file contents).
//! * **Never panics, never recurses on input depth.** ONBUILD chains are
//!   flat, JSON nesting is validated iteratively; the fuzz target in `fuzz/`
//!   checks this.
//! * Every error carries file, line and column and quotes the line
//!   ([`ParseError`]).
//!
//! # Module map
//!
//! | module | owns | BuildKit counterpart |
//! | --- | --- | --- |
//! | `scanner` | physical lines, 64 KiB line limit | `bufio.Scanner` + `scanLines` |
//! | `directive` | `# syntax/escape/check` block | directives.go |
//! | `reader` | the line loop: continuations, comments, heredoc bodies | `Parse` in parser.go |
//! | `statement` | name/flags/args split, per-instruction argument rules | split_command.go, line_parsers.go |
//! | `json` | exec-form arrays | `parseJSON` (`encoding/json`) |
//! | `heredoc`, `words` | heredoc markers and the shell word split behind them | parser.go, shell/lex.go |
//! | `dump` | the AST dump, Go `%q` quoting | `Node.Dump`, `strconv.Quote` |
//! | `flags`, `healthcheck`, `instructions` | typed instructions | instructions/{bflag,parse}.go |
//! | `grammar` | the pest grammar (`grammar/dockerfile.pest`): directive, heredoc marker and JSON array syntax | regexps and JSON syntax |
//! | `position` | lines and columns, also inside joined continuation lines | `Range`/`Position` (kiln adds columns) |
//! | `text` | Go string semantics over bytes | `strings`, `unicode`, `utf8` |
//!
//! Where BuildKit differs from its own documentation, BuildKit wins. Notable
//! cases kept on purpose: a second `# escape=` *inside* the directive block
//! is an error, but after any other line it is an ordinary comment; invalid
//! JSON in exec form silently becomes shell form, while valid JSON with a
//! non-string item is an error; non-ASCII bytes in flags are read as Latin-1.

#![warn(missing_docs)]

mod ast;
mod directive;
mod dump;
mod error;
mod flags;
mod grammar;
mod healthcheck;
mod heredoc;
mod instructions;
mod json;
mod node;
mod position;
mod reader;
mod scanner;
mod statement;
mod text;
mod words;

#[cfg(test)]
pub(crate) use flags::levenshtein;
/// BuildKit's "did you mean …?" rule, shared with the lowering's stage
/// and variable names.
pub use flags::suggest;

pub use ast::{
    Add, Arg, ArgDefinition, Cmd, CommandLine, Copy, Dockerfile, Entrypoint, Env, Expose,
    GlobalArg, Healthcheck, HealthcheckConfig, InlineSource, Instruction, InstructionKind,
    KeyValue, Label, Maintainer, NetworkMode, Onbuild, Run, SecurityMode, Shell, Span, Stage,
    StopSignal, User, Volume, Workdir,
};
pub use dump::go_quote;
pub use error::{ErrorKind, ParseError};
pub use heredoc::{chomp as chomp_heredoc, marker as heredoc_marker, Heredoc, HeredocMarker};
pub use node::{Directive, Node, RawDockerfile, RawFlag, Statement, Warning};
pub use position::Position;
pub use reader::parse_raw;

/// Parses and checks a Dockerfile. `file` names it in error messages
/// (usually `Dockerfile`).
pub fn parse(file: &str, source: &[u8]) -> Result<Dockerfile, ParseError> {
    parse_raw(file, source)?.to_typed()
}

impl RawDockerfile {
    /// Checks the raw tree and builds the typed AST (BuildKit's
    /// `instructions.Parse`).
    pub fn to_typed(&self) -> Result<Dockerfile, ParseError> {
        instructions::build(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_layers_from_one_source() {
        let src = b"FROM alpine\nRUN echo hi\n";
        let raw = parse_raw("Dockerfile", src).expect("raw parse");
        assert_eq!(raw.dump(), "(from \"alpine\")\n(run \"echo hi\")");
        assert_eq!(
            raw.to_typed().expect("typed"),
            parse("Dockerfile", src).expect("typed")
        );
    }

    #[test]
    fn raw_accepts_what_typed_rejects() {
        let src = b"FROM a\nFOO bar\n";
        assert!(parse_raw("Dockerfile", src).is_ok());
        let err = parse("Dockerfile", src).expect_err("unknown instruction");
        assert_eq!(err.position, Position { line: 2, column: 1 });
    }
}
