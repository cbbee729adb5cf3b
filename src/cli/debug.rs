//! `kiln debug ...`: developer tools that show kiln's view of its input.

use super::CliError;
use clap::{Subcommand, ValueEnum};
use std::path::{Path, PathBuf};

/// Subcommands of `kiln debug`.
#[derive(Debug, Subcommand)]
pub enum DebugCommand {
    /// Parse a Dockerfile and print its syntax tree.
    Parse {
        /// Output format.
        #[arg(long, value_enum, default_value_t = ParseFormat::Json)]
        format: ParseFormat,
        /// The Dockerfile to parse (`-` for stdin).
        file: PathBuf,
    },
}

/// How `kiln debug parse` prints the AST.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ParseFormat {
    /// BuildKit's AST dump, byte for byte.
    Buildkit,
    /// kiln's typed AST as JSON, with spans.
    Json,
}

pub fn run(cmd: DebugCommand, _root: &Path) -> Result<i32, CliError> {
    match cmd {
        DebugCommand::Parse { format, file } => parse(&file, format),
    }
}

fn parse(file: &Path, format: ParseFormat) -> Result<i32, CliError> {
    let _ = (file, format);
    Err(CliError("parser not wired yet".into()))
}
