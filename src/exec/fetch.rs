//! `ADD <http(s) URL>`: downloading a remote file the way BuildKit's HTTP
//! source does (`source/http`), so that the copy can then treat it as any
//! other file.
//!
//! - The file name is the last element of the URL path (the frontend's
//!   `path.Base(u.Path)`), `__unnamed__` when the path has none
//!   (`source::url::file_name_for`).
//! - The file is created with mode 0600 and owner 0:0; its mtime is the
//!   response's `Last-Modified`, or the Unix epoch when there is none.
//! - A status outside 200..=399 fails ("invalid response status 404").
//! - Errors name the URL with its password hidden ([`redact_password`],
//!   with the other URL rules in `source::url`):
//!   build logs and CI output are no place for credentials.
//! - `--checksum`, the per-URL store and what dependents key on are the
//!   HTTP source's ([`super::http_source`]), the only caller of [`get`].
//! - Git URLs (`git@...`, `git://`, `https://.../repo.git`) are recognised
//!   (`source::url::is_git_url`) so the lowering makes them Git sources
//!   (`super::git_source`), never downloads.
//! - [`get`] sends a stored copy's [`Validators`] (`If-None-Match`, else
//!   `If-Modified-Since`) so that an unchanged resource costs a `304` and
//!   no body; [`super::http_source`] keeps those copies per URL.

use std::fs::OpenOptions;
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use thiserror::Error;

use crate::exec::attrs::{set_times, Time};
use crate::image::digest::{Digest, DigestWriter};
use crate::source::url::{redact_in, redact_password};

/// Why a download failed.
#[derive(Debug, Error)]
pub enum FetchError {
    /// Connecting or talking HTTP failed.
    #[error("failed to download {url}: {reason}")]
    Request {
        /// The URL, password hidden.
        url: String,
        /// The client's error as text, password hidden: some of the
        /// client's messages quote the URL (`bad uri: ... is missing host`).
        reason: String,
    },
    /// The server answered with an error status (BuildKit's wording).
    #[error("failed to download {url}: invalid response status {status}")]
    Status {
        /// The URL, password hidden.
        url: String,
        /// The HTTP status.
        status: u16,
    },
    /// Reading the body or writing the file failed.
    #[error("failed to download {url} to {path}")]
    Write {
        /// The URL, password hidden.
        url: String,
        /// The local file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
}

/// A downloaded file.
#[derive(Debug, Clone)]
pub struct Download {
    /// Where it was written.
    pub path: PathBuf,
    /// sha256 of the content.
    pub digest: Digest,
    /// Content length in bytes.
    pub size: u64,
}

/// The validators of a stored copy of a resource: sent back so that an
/// unchanged resource is answered `304 Not Modified` without its body
/// (RFC 9110 section 13.1).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Validators {
    /// The `ETag` response header, as received (`W/` prefix included).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// The `Last-Modified` response header, as received.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
}

impl Validators {
    /// Whether there is nothing to send (the request is unconditional).
    pub fn is_empty(&self) -> bool {
        self.etag.is_none() && self.last_modified.is_none()
    }

    /// The conditional request headers. An ETag is the exact validator:
    /// a server that gets both evaluates `If-None-Match` and ignores
    /// `If-Modified-Since` (RFC 9110 section 13.2.2), so the date is only
    /// sent without one (BuildKit sends only `If-None-Match`; the date
    /// spares a download from servers that give no ETag).
    pub fn request_headers(&self) -> Vec<(&'static str, String)> {
        match (&self.etag, &self.last_modified) {
            (Some(etag), _) => vec![("If-None-Match", etag.clone())],
            (None, Some(date)) => vec![("If-Modified-Since", date.clone())],
            (None, None) => Vec::new(),
        }
    }

    /// Whether a `304` whose `ETag` is `answered` is about the copy these
    /// validators describe. ETags compare weakly, as `If-None-Match` does
    /// (RFC 9110 section 8.8.3.2); a 304 without an ETag refers to the one
    /// that was sent (BuildKit's rule, moby/buildkit#905).
    pub fn not_modified_matches(&self, answered: Option<&str>) -> bool {
        match (answered, &self.etag) {
            (None, _) => !self.is_empty(),
            (Some(got), Some(sent)) => weak_etag(got) == weak_etag(sent),
            // A date was sent and the server names an ETag it never gave:
            // it does not describe the stored copy.
            (Some(_), None) => false,
        }
    }
}

/// An ETag without its weakness prefix, for weak comparison.
fn weak_etag(etag: &str) -> &str {
    let etag = etag.trim();
    etag.strip_prefix("W/").unwrap_or(etag)
}

/// What a (possibly conditional) GET returned.
#[derive(Debug)]
pub enum Fetched {
    /// `304 Not Modified` to a conditional request: the stored copy is
    /// current. `etag` is the response's, if it sent one.
    NotModified { etag: Option<String> },
    /// A body, written (fsynced, mtime from `Last-Modified`) to the path
    /// asked for, with the response's validators.
    Body {
        download: Download,
        validators: Validators,
    },
}

/// GETs `url`, sending `validators` as conditional headers, and writes a
/// body to `path` (a new file, mode 0600, synced to disk, its mtime the
/// response's `Last-Modified` or the Unix epoch).
pub fn get(url: &str, validators: &Validators, path: &Path) -> Result<Fetched, FetchError> {
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(30)))
        .user_agent(concat!("kiln/", env!("CARGO_PKG_VERSION")))
        .build();
    let agent = ureq::Agent::new_with_config(config);
    let mut request = agent.get(url);
    for (name, value) in validators.request_headers() {
        request = request.header(name, value);
    }
    let mut response = request.call().map_err(|e| FetchError::Request {
        url: redact_password(url),
        reason: redact_in(&e.to_string(), url),
    })?;
    let status = response.status().as_u16();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let got = Validators {
        etag: header("etag"),
        last_modified: header("last-modified"),
    };
    if status == 304 && !validators.is_empty() {
        return Ok(Fetched::NotModified { etag: got.etag });
    }
    if !(200..400).contains(&status) || status == 304 {
        return Err(FetchError::Status {
            url: redact_password(url),
            status,
        });
    }
    let mtime = got
        .last_modified
        .as_deref()
        .and_then(parse_http_date)
        .unwrap_or(0);
    let write_err = |source| FetchError::Write {
        url: redact_password(url),
        path: path.to_path_buf(),
        source,
    };
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(write_err)?;
    let mut writer = DigestWriter::new(file);
    io::copy(&mut response.body_mut().as_reader(), &mut writer).map_err(write_err)?;
    let (file, digest, size) = writer.finish();
    let time = Time {
        sec: mtime,
        nsec: 0,
    };
    set_times(path, time, time).map_err(write_err)?;
    file.sync_all().map_err(write_err)?;
    drop(file);
    Ok(Fetched::Body {
        download: Download {
            path: path.to_path_buf(),
            digest,
            size,
        },
        validators: got,
    })
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Parses an HTTP date in the three formats Go's `http.ParseTime` accepts
/// (IMF-fixdate, RFC 850, asctime) to seconds since the epoch.
pub fn parse_http_date(text: &str) -> Option<i64> {
    let parts: Vec<&str> = text.split_whitespace().collect();
    let (day, month, year, clock) = match parts.as_slice() {
        // Sun, 06 Nov 1994 08:49:37 GMT
        [_, d, m, y, t, "GMT"] => (d.parse().ok()?, *m, y.parse().ok()?, *t),
        // Sunday, 06-Nov-94 08:49:37 GMT
        [_, dmy, t, "GMT"] => {
            let mut it = dmy.split('-');
            let d = it.next()?.parse().ok()?;
            let m = it.next()?;
            let y: i64 = it.next()?.parse().ok()?;
            (d, m, if y < 70 { 2000 + y } else { 1900 + y }, *t)
        }
        // Sun Nov  6 08:49:37 1994
        [_, m, d, t, y] => (d.parse().ok()?, *m, y.parse().ok()?, *t),
        _ => return None,
    };
    let month = MONTHS.iter().position(|&m| m == month)? as i64 + 1;
    let mut hms = clock.split(':').map(|v| v.parse::<i64>());
    let (h, mi, s) = (hms.next()?.ok()?, hms.next()?.ok()?, hms.next()?.ok()?);
    let day: i64 = day;
    if !(1..=31).contains(&day) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + h * 3600 + mi * 60 + s)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn download_errors_hide_the_password() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("body");
        // A port just freed: the connection is refused.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("bind")
            .port();
        let refused = format!("http://user:secret@127.0.0.1:{port}/f");
        for url in [refused.as_str(), "http://user:secret@/f"] {
            let err = get(url, &Validators::default(), &path).expect_err(url);
            let text = crate::error_chain::Chain(&err).to_string();
            assert!(text.contains("user:xxxxx@"), "{text}");
            assert!(!text.contains("secret"), "{text}");
        }
    }

    #[test]
    fn conditional_headers_prefer_the_etag() {
        let v = |etag: Option<&str>, date: Option<&str>| Validators {
            etag: etag.map(str::to_string),
            last_modified: date.map(str::to_string),
        };
        let date = "Sun, 06 Nov 1994 08:49:37 GMT";
        for (validators, headers) in [
            (v(None, None), vec![]),
            (
                v(Some("\"a\""), Some(date)),
                vec![("If-None-Match", "\"a\"".to_string())],
            ),
            (
                v(Some("W/\"a\""), None),
                vec![("If-None-Match", "W/\"a\"".to_string())],
            ),
            (
                v(None, Some(date)),
                vec![("If-Modified-Since", date.to_string())],
            ),
        ] {
            assert_eq!(validators.request_headers(), headers, "{validators:?}");
        }
    }

    #[test]
    fn not_modified_answers_must_name_the_etag_sent() {
        let sent = Validators {
            etag: Some("W/\"v1\"".into()),
            last_modified: None,
        };
        assert!(sent.not_modified_matches(Some("\"v1\"")));
        assert!(sent.not_modified_matches(Some("W/\"v1\"")));
        assert!(sent.not_modified_matches(None));
        assert!(!sent.not_modified_matches(Some("\"v2\"")));
        let dated = Validators {
            etag: None,
            last_modified: Some("Sun, 06 Nov 1994 08:49:37 GMT".into()),
        };
        assert!(dated.not_modified_matches(None));
        assert!(!dated.not_modified_matches(Some("\"v1\"")));
        assert!(!Validators::default().not_modified_matches(None));
    }

    #[test]
    fn http_dates_in_all_three_formats() {
        let want = Some(784_111_777);
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), want);
        assert_eq!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), want);
        assert_eq!(parse_http_date("Sun Nov  6 08:49:37 1994"), want);
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(parse_http_date("yesterday"), None);
        assert_eq!(parse_http_date("Sun, 06 Foo 1994 08:49:37 GMT"), None);
    }
}
