//! The raw syntax tree: what BuildKit's `parser.Parse` produces.
//!
//! One [`Node`] per instruction, holding the words exactly as BuildKit's
//! line parsers split them: no variable expansion, quotes kept where BuildKit
//! keeps them, bytes kept where BuildKit keeps bytes. Unknown instruction
//! names are accepted here (BuildKit's parser does too); the typed layer
//! ([`super::ast`]) rejects them. [`RawDockerfile::dump`] prints BuildKit's
//! dump of this tree.

use super::heredoc::Heredoc;
use super::position::Position;
use serde::Serialize;

/// A parsed Dockerfile at BuildKit's parser level.
#[derive(Debug, Clone)]
pub struct RawDockerfile {
    /// File name used in error messages (`Dockerfile` by default).
    pub file: String,
    /// The escape character in force: `\` or `` ` `` (`# escape=`).
    pub escape: char,
    /// Parser directives found at the top of the file, in order.
    pub directives: Vec<Directive>,
    /// Instructions in file order.
    pub nodes: Vec<Node>,
    /// Non-fatal findings (empty continuation lines), as BuildKit warns.
    pub warnings: Vec<Warning>,
    /// The source, kept to quote the offending line in typed-layer errors.
    pub(crate) source: Vec<u8>,
}

/// A parser directive such as `# syntax=docker/dockerfile:1`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Directive {
    /// Lower-cased name: `syntax`, `escape` or `check`.
    pub name: String,
    /// The value with surrounding white space removed.
    pub value: String,
    /// 1-based line of the directive.
    pub line: usize,
}

/// A non-fatal finding worth showing to the user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    /// 1-based line the warning refers to.
    pub line: usize,
    /// What is wrong, in words.
    pub message: String,
}

/// One instruction.
#[derive(Debug, Clone)]
pub struct Node {
    /// The instruction itself.
    pub statement: Statement,
    /// For `ONBUILD`, the trigger chain, outermost first: `ONBUILD RUN x`
    /// has one trigger (`RUN x`); `ONBUILD ONBUILD RUN x` two. Kept flat
    /// rather than nested so that absurdly deep chains cannot exhaust the
    /// stack when the tree is walked or dropped.
    pub triggers: Vec<Statement>,
    /// Heredoc bodies read after the instruction line, in marker order.
    pub heredocs: Vec<Heredoc>,
    /// The logical line after continuation joining and comment removal
    /// (BuildKit's `Original`).
    pub original: Vec<u8>,
    /// First and last physical line (1-based), heredoc bodies included.
    pub start_line: usize,
    /// Last physical line (1-based).
    pub end_line: usize,
    /// Where the instruction name starts.
    pub position: Position,
    /// Comment lines directly above the instruction (`# text` → `text`),
    /// as BuildKit keeps them for stage and ARG descriptions.
    pub comments: Vec<String>,
}

/// An instruction name with its flags and arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// The name as written (case preserved).
    pub name: Vec<u8>,
    /// `--name[=value]` words before the arguments.
    pub flags: Vec<RawFlag>,
    /// The arguments as BuildKit's line parser for this instruction split
    /// them. ENV and LABEL hold key, value, separator triplets (separator
    /// `=` or empty for the legacy `ENV k v`); HEALTHCHECK holds the type
    /// word then the command; unknown instructions hold one empty string.
    pub args: Vec<Vec<u8>>,
    /// The arguments were a JSON array (exec form).
    pub json: bool,
    /// Where the arguments (after the flags) start.
    pub args_position: Position,
}

/// A flag word, quotes and escapes removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawFlag {
    /// The word as BuildKit builds it: byte by byte, each byte taken as a
    /// Latin-1 character, so non-ASCII flag values come out as BuildKit's
    /// (mis)decoded text.
    pub text: String,
    /// Where the flag starts.
    pub position: Position,
}

impl Statement {
    /// The instruction keyword (`"run"`, `"copy"`, ...) the name selects,
    /// as BuildKit's case-insensitive dispatch sees it; `None` if unknown.
    pub fn keyword(&self) -> Option<&'static str> {
        super::text::keyword(&self.name)
    }
}

impl Node {
    /// The statement whose arguments carry the command: the innermost
    /// trigger for ONBUILD, the instruction itself otherwise.
    pub fn innermost(&self) -> &Statement {
        self.triggers.last().unwrap_or(&self.statement)
    }
}
