//! `kiln debug ...`: developer tools that show kiln's view of its input.

use super::CliError;
use crate::error_chain::Chain;
use clap::{Subcommand, ValueEnum};
use std::io::{Read, Write};
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

/// Runs a `kiln debug` subcommand; returns the exit code.
pub fn run(cmd: DebugCommand, _root: &Path) -> Result<i32, CliError> {
    match cmd {
        DebugCommand::Parse { format, file } => parse(&file, format),
    }
}

/// Reads the Dockerfile (or stdin for `-`), parses it and prints the tree.
/// A parse error is printed as is and gives exit code 1.
fn parse(file: &Path, format: ParseFormat) -> Result<i32, CliError> {
    let (name, source) = read_source(file)?;
    let output = match format {
        ParseFormat::Buildkit => crate::parser::parse_raw(&name, &source).map(|raw| raw.dump()),
        ParseFormat::Json => crate::parser::parse(&name, &source).and_then(|df| {
            serde_json::to_string_pretty(&df).map_err(|e| {
                // Serializing plain data to a String cannot fail; report it
                // as an error rather than panic if it ever does.
                crate::parser::ParseError::new(
                    &name,
                    &source,
                    crate::parser::Position { line: 1, column: 1 },
                    crate::parser::ErrorKind::Instruction(format!(
                        "cannot encode the AST as JSON: {e}",
                        e = Chain(&e)
                    )),
                )
            })
        }),
    };
    match output {
        Ok(text) => {
            let mut out = std::io::stdout().lock();
            writeln!(out, "{text}")
                .map_err(|e| CliError(format!("cannot write output: {e}", e = Chain(&e))))?;
            Ok(0)
        }
        Err(err) => {
            eprintln!("{err}", err = Chain(&err));
            Ok(1)
        }
    }
}

/// The display name and bytes of the input.
fn read_source(file: &Path) -> Result<(String, Vec<u8>), CliError> {
    if file == Path::new("-") {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .map_err(|e| CliError(format!("cannot read stdin: {e}", e = Chain(&e))))?;
        return Ok(("<stdin>".to_string(), buf));
    }
    let bytes = std::fs::read(file).map_err(|e| {
        CliError(format!(
            "cannot read {}: {e}",
            file.display(),
            e = Chain(&e)
        ))
    })?;
    Ok((file.display().to_string(), bytes))
}
