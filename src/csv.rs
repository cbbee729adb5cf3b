//! One CSV record split into fields, as Go's `encoding/csv` reads the
//! values of BuildKit's and buildx's comma-separated options (`RUN
//! --mount=type=cache,target=/x` through moby/buildkit
//! `frontend/dockerfile/instructions/commands_runmount.go` `parseMount`,
//! `--cache-to type=registry,ref=…` through docker/buildx
//! `util/buildflags/cache.go` with `csvvalue`): commas separate fields,
//! double quotes group (`"a,b"` is one field), `""` inside quotes is one
//! quote.

/// A quote opened and never closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unterminated quote")]
pub struct UnterminatedQuote;

/// The fields of `record`, empty ones included.
pub fn fields(record: &str) -> Result<Vec<String>, UnterminatedQuote> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = record.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    if quoted {
        return Err(UnterminatedQuote);
    }
    out.push(cur);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_group_and_double_quotes_escape() {
        assert_eq!(
            fields(r#"type=bind,"source=a,b",x="""y""""#).unwrap(),
            vec!["type=bind", "source=a,b", r#"x="y""#]
        );
        assert_eq!(fields("a,,b").unwrap(), vec!["a", "", "b"]);
        assert_eq!(fields("").unwrap(), vec![""]);
    }

    #[test]
    fn an_open_quote_is_an_error() {
        assert_eq!(fields(r#"a,"b"#), Err(UnterminatedQuote));
    }
}
