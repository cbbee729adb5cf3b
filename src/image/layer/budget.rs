//! How much one archive may expand to on disk: the bound kept while a tar
//! (a layer, an `ADD` archive, a context on stdin) is unpacked.
//!
//! A tar's stated sizes are the sender's word: a 10 KiB tar can declare a
//! 2 GiB sparse file, a small gzip stream can inflate to terabytes. Neither
//! BuildKit (which unpacks `ADD` archives and layers with containerd's
//! `archive.Apply` / docker's `pkg/archive`, writing every declared byte)
//! nor docker set a limit; kiln charges every entry's logical size (what a
//! later `diff` or copy would read back, holes included) to one budget per
//! archive and stops with an error naming the archive and the limit once it
//! is spent. The default is far above any real layer; `KILN_MAX_ARCHIVE_SIZE`
//! (bytes) changes it.

/// The default bound: 64 GiB of logical file content per archive.
pub const DEFAULT_MAX_ARCHIVE_SIZE: u64 = 64 << 30;

/// The environment variable overriding [`DEFAULT_MAX_ARCHIVE_SIZE`].
pub const MAX_ARCHIVE_SIZE_ENV: &str = "KILN_MAX_ARCHIVE_SIZE";

/// The archive's budget was spent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} expands to more than {limit} bytes (the limit per archive; set {MAX_ARCHIVE_SIZE_ENV} to change it)")]
pub struct TooLarge {
    /// The archive, as the user knows it (`layer sha256:...`, `ADD foo.tar`).
    pub what: String,
    /// The limit in bytes.
    pub limit: u64,
}

/// What one archive may still write.
#[derive(Debug, Clone)]
pub struct ExpansionBudget {
    limit: u64,
    used: u64,
}

impl ExpansionBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: u64) -> ExpansionBudget {
        ExpansionBudget { limit, used: 0 }
    }

    /// The configured budget: `KILN_MAX_ARCHIVE_SIZE` when set to a number,
    /// else [`DEFAULT_MAX_ARCHIVE_SIZE`].
    pub fn from_env() -> ExpansionBudget {
        let limit = std::env::var(MAX_ARCHIVE_SIZE_ENV)
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(DEFAULT_MAX_ARCHIVE_SIZE);
        ExpansionBudget::new(limit)
    }

    /// The limit in bytes.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Charges `bytes` (one entry's logical size) for the archive `what`.
    pub fn charge(&mut self, bytes: u64, what: &str) -> Result<(), TooLarge> {
        match self.used.checked_add(bytes) {
            Some(used) if used <= self.limit => {
                self.used = used;
                Ok(())
            }
            _ => Err(TooLarge {
                what: what.to_string(),
                limit: self.limit,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_until_the_limit_and_names_the_archive() {
        let mut b = ExpansionBudget::new(10);
        b.charge(4, "x").unwrap();
        b.charge(6, "x").unwrap();
        let err = b.charge(1, "layer sha256:ab").unwrap_err();
        assert_eq!(err.limit, 10);
        assert!(err
            .to_string()
            .starts_with("layer sha256:ab expands to more than 10 bytes"));
        assert!(ExpansionBudget::new(u64::MAX).charge(u64::MAX, "x").is_ok());
        let mut b = ExpansionBudget::new(u64::MAX);
        b.charge(u64::MAX, "x").unwrap();
        assert!(b.charge(1, "x").is_err(), "overflow is over the limit");
    }
}
