//! How an error is shown to a user: its message, then each cause, `: `-joined.
//!
//! kiln keeps one convention for errors: an error's own message never
//! repeats its cause (no `{source}` in a `#[error(...)]`); the cause is
//! reached through [`Error::source`]. Whatever prints an error for a user
//! (the CLI, progress output, warnings, a container init reporting to kiln)
//! prints the whole chain with [`Chain`], the way anyhow's `{:#}` does, so
//! the errno or HTTP status at the bottom is never lost.

use std::error::Error;
use std::fmt;

/// Displays an error and all its causes, `: `-joined:
/// `failed to create the container's namespaces (clone): EPERM: Operation not permitted`.
///
/// A cause whose text is already part of what was printed is skipped: some
/// foreign errors (HTTP and database clients) put their cause in their own
/// message as well as in `source()`, and a user should not read it twice.
pub struct Chain<'a>(pub &'a (dyn Error + 'a));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut shown = self.0.to_string();
        f.write_str(&shown)?;
        let mut cause = self.0.source();
        while let Some(c) = cause {
            let text = c.to_string();
            if !text.is_empty() && !shown.contains(&text) {
                f.write_str(": ")?;
                f.write_str(&text)?;
                shown.push_str(": ");
                shown.push_str(&text);
            }
            cause = c.source();
        }
        Ok(())
    }
}

impl fmt::Debug for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::Chain;

    #[derive(Debug, thiserror::Error)]
    #[error("failed to {what}")]
    struct Outer {
        what: &'static str,
        #[source]
        source: Middle,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("reading {path}")]
    struct Middle {
        path: &'static str,
        #[source]
        source: std::io::Error,
    }

    /// An error that, like some foreign clients, repeats its cause.
    #[derive(Debug, thiserror::Error)]
    #[error("request failed")]
    struct Repeats {
        source: std::io::Error,
    }

    fn errno(code: i32) -> std::io::Error {
        std::io::Error::from_raw_os_error(code)
    }

    #[test]
    fn an_error_without_cause_shows_its_message_alone() {
        let err = errno(libc::ENOENT);
        assert_eq!(Chain(&err).to_string(), err.to_string());
    }

    #[test]
    fn every_cause_is_shown_in_order() {
        let err = Outer {
            what: "load the config",
            source: Middle {
                path: "/etc/kiln.json",
                source: errno(libc::EACCES),
            },
        };
        assert_eq!(
            Chain(&err).to_string(),
            "failed to load the config: reading /etc/kiln.json: Permission denied (os error 13)"
        );
    }

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        let err = Repeats {
            source: errno(libc::ECONNREFUSED),
        };
        assert_eq!(
            Chain(&err).to_string(),
            "request failed: Connection refused (os error 111)"
        );
    }

    #[test]
    fn the_errno_survives_a_boxed_error() {
        let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(Middle {
            path: "/x",
            source: errno(libc::EPERM),
        });
        assert_eq!(
            Chain(&*boxed).to_string(),
            "reading /x: Operation not permitted (os error 1)"
        );
    }
}
