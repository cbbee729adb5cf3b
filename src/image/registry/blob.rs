//! Blob operations: download (verified, resumable), existence checks,
//! cross-repository mounts and uploads (distribution spec "Pulling blobs",
//! "Pushing blobs", "Mounting a blob from another repository").

use super::auth::Scope;
use super::client::RegistryClient;
use super::response::{status_error, Subject};
use super::transport::{protocol, Call, Payload, ReadSeek};
use super::RegistryError;
use crate::error_chain::Chain;
use crate::image::digest::Algorithm;
use crate::image::Digest;
use sha2::{Digest as _, Sha256};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::time::Instant;
use ureq::http::{header, Method, StatusCode};

/// Read size while streaming a blob.
const BUF_SIZE: usize = 256 * 1024;

/// An upload the registry has opened: where to send the bytes.
#[derive(Debug, Clone)]
pub struct UploadSession {
    repository: String,
    /// Absolute URL from the last `Location` header; the spec says each
    /// response's `Location` replaces the previous one.
    location: String,
}

/// The running hash and length of what has been written so far; kept
/// across tries so a resumed download continues rather than restarts.
struct Received {
    hasher: Sha256,
    len: u64,
}

impl RegistryClient {
    /// `HEAD` a blob: its size if the repository has it, `None` if not.
    pub fn blob_exists(
        &self,
        repository: &str,
        digest: &Digest,
    ) -> Result<Option<u64>, RegistryError> {
        let mut call = Call {
            method: Method::HEAD,
            url: self.blob_url(repository, digest),
            headers: Vec::new(),
            payload: Payload::Empty,
            scope: Scope::pull(repository),
            repository,
        };
        let mut resp = self.transport.send(&mut call)?;
        match resp.status() {
            StatusCode::OK => Ok(Some(
                resp.headers()
                    .get(header::CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0),
            )),
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(status_error(&call, &mut resp, Some(Subject::Blob(digest)))),
        }
    }

    /// Streams a blob into `dest`, checking its size (if `expected_size` is
    /// given) and digest. A connection lost mid-body is resumed with a
    /// `Range` request (or by skipping what was already written if the
    /// registry ignores ranges). On `Err`, what reached `dest` is garbage
    /// the caller must discard; [`RegistryClient::get_blob_to_file`] does
    /// that itself. `progress` gets the bytes received so far.
    pub fn get_blob(
        &self,
        repository: &str,
        digest: &Digest,
        expected_size: Option<u64>,
        dest: &mut dyn Write,
        progress: &mut dyn FnMut(u64),
    ) -> Result<u64, RegistryError> {
        let mut received = Received {
            hasher: Sha256::new(),
            len: 0,
        };
        self.download(
            repository,
            digest,
            expected_size,
            dest,
            &mut received,
            progress,
        )
    }

    /// Downloads a blob into `file`, resuming after whatever `file` already
    /// holds (a previous, interrupted download: its bytes are hashed, then
    /// the rest is asked for with `Range`). On a digest or size mismatch the
    /// file is truncated to zero, so nothing unverified is kept.
    pub fn get_blob_to_file(
        &self,
        repository: &str,
        digest: &Digest,
        expected_size: Option<u64>,
        file: &mut File,
        progress: &mut dyn FnMut(u64),
    ) -> Result<u64, RegistryError> {
        self.get_blob_to_file_and(
            repository,
            digest,
            expected_size,
            file,
            &mut io::sink(),
            progress,
        )
    }

    /// [`RegistryClient::get_blob_to_file`] that also streams the whole
    /// blob, the resumed prefix first, into `copy`: a pull feeds the store
    /// while the partial file is kept for a later resume, instead of
    /// copying the file once complete. `copy` sees unverified bytes; its
    /// reader must check the digest itself (the store does).
    pub fn get_blob_to_file_and(
        &self,
        repository: &str,
        digest: &Digest,
        expected_size: Option<u64>,
        file: &mut File,
        copy: &mut dyn Write,
        progress: &mut dyn FnMut(u64),
    ) -> Result<u64, RegistryError> {
        let what = || format!("reading partial download of {digest}");
        let mut received = Received {
            hasher: Sha256::new(),
            len: 0,
        };
        let held = file
            .metadata()
            .map_err(|e| RegistryError::io(what(), e))?
            .len();
        if expected_size.is_some_and(|s| held > s) {
            // Longer than the blob: not a prefix of it.
            file.set_len(0).map_err(|e| RegistryError::io(what(), e))?;
        }
        file.seek(SeekFrom::Start(0))
            .map_err(|e| RegistryError::io(what(), e))?;
        let mut buf = vec![0u8; BUF_SIZE];
        loop {
            let n = file
                .read(&mut buf)
                .map_err(|e| RegistryError::io(what(), e))?;
            if n == 0 {
                break;
            }
            received.hasher.update(&buf[..n]);
            received.len += n as u64;
            copy.write_all(&buf[..n])
                .map_err(|e| RegistryError::io(format!("passing on blob {digest}"), e))?;
        }
        if received.len > 0 {
            tracing::debug!(%digest, offset = received.len, "resuming download");
            progress(received.len);
        }
        let mut tee = Tee { file, copy };
        let result = self.download(
            repository,
            digest,
            expected_size,
            &mut tee,
            &mut received,
            progress,
        );
        let file = tee.file;
        match &result {
            Err(RegistryError::DigestMismatch { .. } | RegistryError::SizeMismatch { .. }) => {
                let _ = file.set_len(0);
                let _ = file.seek(SeekFrom::Start(0));
            }
            Ok(_) => file
                .flush()
                .map_err(|e| RegistryError::io(format!("writing blob {digest}"), e))?,
            Err(_) => {}
        }
        result
    }

    fn download(
        &self,
        repository: &str,
        digest: &Digest,
        expected_size: Option<u64>,
        dest: &mut dyn Write,
        received: &mut Received,
        progress: &mut dyn FnMut(u64),
    ) -> Result<u64, RegistryError> {
        let registry = self.endpoint().name.clone();
        if digest.algorithm() != Algorithm::Sha256 {
            return Err(RegistryError::Protocol {
                method: "GET".into(),
                url: self.blob_url(repository, digest),
                reason: "only sha256 blobs can be verified".into(),
            });
        }
        let size_mismatch = |actual| RegistryError::SizeMismatch {
            registry: registry.clone(),
            repository: repository.to_string(),
            digest: digest.clone(),
            expected: expected_size.unwrap_or(0),
            actual,
        };
        let attempts = self.transport.retry.attempts.max(1);
        let mut buf = vec![0u8; BUF_SIZE];
        let mut tries = 0;
        // A resumed file may already hold the whole blob: only verify it.
        let mut done = expected_size.is_some_and(|s| s > 0 && s == received.len);
        // When the last byte of this blob arrived (or the download began).
        let mut heard = Instant::now();
        let stall_timeout = self.transport.retry.stall_timeout;
        while !done {
            tries += 1;
            let offset = received.len;
            let mut headers = Vec::new();
            if offset > 0 {
                headers.push(("Range", format!("bytes={offset}-")));
            }
            let mut call = Call {
                method: Method::GET,
                url: self.blob_url(repository, digest),
                headers,
                payload: Payload::Empty,
                scope: Scope::pull(repository),
                repository,
            };
            let mut resp = self.transport.send(&mut call)?;
            let content_length = resp
                .headers()
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            // Bytes at the start of this response that we already have.
            let mut skip = match resp.status() {
                StatusCode::OK => offset,
                StatusCode::PARTIAL_CONTENT => {
                    let start = content_range_start(&resp);
                    if start != Some(offset) {
                        return Err(protocol(
                            &call,
                            format!("asked for bytes from {offset}, got Content-Range starting at {start:?}"),
                        ));
                    }
                    0
                }
                _ => {
                    return Err(status_error(&call, &mut resp, Some(Subject::Blob(digest))));
                }
            };
            if let (Some(size), Some(len)) = (expected_size, content_length) {
                let total = len + (offset - skip);
                if total != size {
                    // The registry says outright it has other content.
                    return Err(size_mismatch(total));
                }
            }
            let mut reader = resp.body_mut().as_reader();
            let failure = loop {
                let n = match reader.read(&mut buf) {
                    Ok(0) => break None,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => break Some(Chain(&e).to_string()),
                };
                let mut chunk = &buf[..n];
                if skip > 0 {
                    let drop = (skip as usize).min(chunk.len());
                    chunk = &chunk[drop..];
                    skip -= drop as u64;
                }
                if chunk.is_empty() {
                    continue;
                }
                dest.write_all(chunk)
                    .map_err(|e| RegistryError::io(format!("writing blob {digest}"), e))?;
                received.hasher.update(chunk);
                received.len += chunk.len() as u64;
                heard = Instant::now();
                if expected_size.is_some_and(|s| received.len > s) {
                    return Err(size_mismatch(received.len));
                }
                progress(received.len);
            };
            let short = expected_size.is_some_and(|s| received.len < s);
            if failure.is_none() && !short {
                done = true;
                continue;
            }
            let why = failure.unwrap_or_else(|| "body ended early".into());
            // Retrying a registry that sent nothing for the whole stall
            // timeout would only wait that long again (605 s in all with
            // five tries of 120 s reads).
            if heard.elapsed() >= stall_timeout {
                tracing::debug!(%digest, "giving up, stalled: {why}");
                return Err(RegistryError::Stalled {
                    registry,
                    what: format!(
                        "blob {digest} of {repository} after {} bytes{}",
                        received.len,
                        expected_size
                            .map(|s| format!(" of {s}"))
                            .unwrap_or_default()
                    ),
                    waited: heard.elapsed(),
                    last: why,
                });
            }
            if tries >= attempts {
                tracing::debug!(%digest, "giving up: {why}");
                return Err(RegistryError::ConnectionClosed {
                    registry,
                    what: format!("blob {digest} of {repository} ({why})"),
                    received: received.len,
                    of_total: expected_size
                        .map(|s| format!(" of {s}"))
                        .unwrap_or_default(),
                    attempts: tries,
                });
            }
            let wait = self.transport.retry.backoff(tries + 1, None);
            tracing::debug!(%digest, offset = received.len, ?wait, "download interrupted ({why}); resuming");
            std::thread::sleep(wait);
        }
        let actual = Digest::from_sha256_bytes(&received.hasher.clone().finalize());
        if actual != *digest {
            return Err(RegistryError::DigestMismatch {
                what: format!("blob {digest} from {registry}/{repository}"),
                expected: digest.clone(),
                actual,
            });
        }
        Ok(received.len)
    }

    /// Opens an upload (`POST /v2/<repo>/blobs/uploads/`).
    pub fn start_upload(&self, repository: &str) -> Result<UploadSession, RegistryError> {
        let url = format!("{}{repository}/blobs/uploads/", self.endpoint().v2_url());
        let mut call = Call {
            method: Method::POST,
            url,
            headers: Vec::new(),
            payload: Payload::Empty,
            scope: Scope::push(repository),
            repository,
        };
        let mut resp = self.transport.send(&mut call)?;
        if resp.status() != StatusCode::ACCEPTED {
            return Err(status_error(&call, &mut resp, None));
        }
        Ok(UploadSession {
            repository: repository.to_string(),
            location: next_location(&call, &resp)?,
        })
    }

    /// Asks the registry to mount `digest` from `from_repository` (same
    /// registry) into `repository`: `None` when mounted (201); when the
    /// registry declines it opens an ordinary upload instead (202), returned
    /// so the caller uploads there without another round trip.
    pub fn mount_blob(
        &self,
        repository: &str,
        digest: &Digest,
        from_repository: &str,
    ) -> Result<Option<UploadSession>, RegistryError> {
        let url = format!(
            "{}{repository}/blobs/uploads/?mount={}&from={}",
            self.endpoint().v2_url(),
            super::transport::query_escape(&digest.to_string()),
            super::transport::query_escape(from_repository),
        );
        let mut call = Call {
            method: Method::POST,
            url,
            headers: Vec::new(),
            payload: Payload::Empty,
            scope: Scope::push(repository).and_pull(from_repository),
            repository,
        };
        let mut resp = self.transport.send(&mut call)?;
        match resp.status() {
            StatusCode::CREATED => Ok(None),
            StatusCode::ACCEPTED => Ok(Some(UploadSession {
                repository: repository.to_string(),
                location: next_location(&call, &resp)?,
            })),
            _ => Err(status_error(&call, &mut resp, Some(Subject::Blob(digest)))),
        }
    }

    /// Uploads a blob of `size` bytes read from `reader` (from its start):
    /// opens an upload and sends the content. The registry checks the
    /// digest when the upload is closed.
    pub fn push_blob(
        &self,
        repository: &str,
        digest: &Digest,
        size: u64,
        reader: &mut dyn ReadSeek,
        progress: &mut dyn FnMut(u64),
    ) -> Result<(), RegistryError> {
        let session = self.start_upload(repository)?;
        self.upload_blob(session, digest, size, reader, progress)
    }

    /// Sends a blob's bytes into an open upload: one `PUT` for blobs up to
    /// the chunk size, else `PATCH` chunks with `Content-Range` and a final
    /// empty `PUT ?digest=` (distribution spec: monolithic vs chunked).
    pub fn upload_blob(
        &self,
        session: UploadSession,
        digest: &Digest,
        size: u64,
        reader: &mut dyn ReadSeek,
        progress: &mut dyn FnMut(u64),
    ) -> Result<(), RegistryError> {
        let repository = session.repository.as_str();
        let mut location = session.location.clone();
        let digest_param = super::transport::query_escape(&digest.to_string());
        let mut offset = 0u64;
        if size > self.chunk_size {
            while offset < size {
                let len = self.chunk_size.min(size - offset);
                let mut call = Call {
                    method: Method::PATCH,
                    url: location.clone(),
                    headers: vec![
                        ("Content-Type", "application/octet-stream".into()),
                        ("Content-Range", format!("{}-{}", offset, offset + len - 1)),
                    ],
                    payload: Payload::Stream {
                        reader: &mut *reader,
                        start: offset,
                        len,
                        progress: &mut *progress,
                    },
                    scope: Scope::push(repository),
                    repository,
                };
                let mut resp = self.transport.send(&mut call)?;
                if resp.status() != StatusCode::ACCEPTED {
                    return Err(status_error(&call, &mut resp, Some(Subject::Blob(digest))));
                }
                location = next_location(&call, &resp)?;
                offset += len;
            }
        }
        let url = with_query(&location, "digest", &digest_param);
        let len = size - offset;
        let mut call = Call {
            method: Method::PUT,
            url,
            headers: vec![("Content-Type", "application/octet-stream".into())],
            payload: if len == 0 {
                Payload::Empty
            } else {
                Payload::Stream {
                    reader,
                    start: offset,
                    len,
                    progress,
                }
            },
            scope: Scope::push(repository),
            repository,
        };
        let mut resp = self.transport.send(&mut call)?;
        if resp.status() != StatusCode::CREATED {
            return Err(status_error(&call, &mut resp, Some(Subject::Blob(digest))));
        }
        Ok(())
    }
}

impl RegistryClient {
    /// Sends the next bytes of a blob whose size and digest are not known
    /// yet into an open upload (`PATCH` with `Content-Range`): an upload
    /// streamed while the blob is being made. `offset` is the bytes sent
    /// before; close it with [`RegistryClient::finish_upload`].
    pub fn upload_chunk(
        &self,
        session: &mut UploadSession,
        offset: u64,
        bytes: &[u8],
    ) -> Result<(), RegistryError> {
        let end = offset + bytes.len() as u64;
        let mut call = Call {
            method: Method::PATCH,
            url: session.location.clone(),
            headers: vec![
                ("Content-Type", "application/octet-stream".into()),
                (
                    "Content-Range",
                    format!("{offset}-{}", end.saturating_sub(1)),
                ),
            ],
            payload: Payload::Bytes(bytes),
            scope: Scope::push(&session.repository),
            repository: &session.repository,
        };
        let mut resp = self.transport.send(&mut call)?;
        if resp.status() != StatusCode::ACCEPTED {
            return Err(status_error(&call, &mut resp, None));
        }
        session.location = next_location(&call, &resp)?;
        Ok(())
    }

    /// Closes an upload whose bytes were all sent by
    /// [`RegistryClient::upload_chunk`] (an empty `PUT ?digest=`); the
    /// registry checks the digest.
    pub fn finish_upload(
        &self,
        session: UploadSession,
        digest: &Digest,
    ) -> Result<(), RegistryError> {
        let digest_param = super::transport::query_escape(&digest.to_string());
        let mut call = Call {
            method: Method::PUT,
            url: with_query(&session.location, "digest", &digest_param),
            headers: vec![("Content-Type", "application/octet-stream".into())],
            payload: Payload::Empty,
            scope: Scope::push(&session.repository),
            repository: &session.repository,
        };
        let mut resp = self.transport.send(&mut call)?;
        if resp.status() != StatusCode::CREATED {
            return Err(status_error(&call, &mut resp, Some(Subject::Blob(digest))));
        }
        Ok(())
    }
}

/// Writes to the partial file and passes the same bytes on.
struct Tee<'a> {
    file: &'a mut File,
    copy: &'a mut dyn Write,
}

impl Write for Tee<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // All of it to both, or an error: a short write to one side would
        // leave the two disagreeing.
        self.file.write_all(buf)?;
        self.copy.write_all(buf)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()?;
        self.copy.flush()
    }
}

/// The start of a `Content-Range: bytes START-END/TOTAL` header.
fn content_range_start(resp: &ureq::http::Response<ureq::Body>) -> Option<u64> {
    let v = resp.headers().get(header::CONTENT_RANGE)?.to_str().ok()?;
    let range = v.trim().strip_prefix("bytes")?.trim_start();
    range.split('-').next()?.trim().parse().ok()
}

/// The absolute URL of a response's `Location`.
fn next_location(
    call: &Call,
    resp: &ureq::http::Response<ureq::Body>,
) -> Result<String, RegistryError> {
    let loc = resp
        .headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| protocol(call, "upload response has no Location header".into()))?;
    Ok(resolve_location(&call.url, loc))
}

/// Resolves a `Location` against the URL of the request it answered
/// (RFC 3986 §5.2 for the forms registries send: absolute, scheme-relative,
/// absolute-path and path-relative).
pub(crate) fn resolve_location(request_url: &str, location: &str) -> String {
    if location.starts_with("http://") || location.starts_with("https://") {
        return location.to_string();
    }
    let (scheme, rest) = request_url
        .split_once("://")
        .unwrap_or(("https", request_url));
    if let Some(net) = location.strip_prefix("//") {
        return format!("{scheme}://{net}");
    }
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let origin = format!("{scheme}://{}", &rest[..authority_end]);
    if location.starts_with('/') {
        return format!("{origin}{location}");
    }
    let path = &rest[authority_end..];
    let path = path.split(['?', '#']).next().unwrap_or("");
    let dir = match path.rfind('/') {
        Some(i) => &path[..=i],
        None => "/",
    };
    format!("{origin}{dir}{location}")
}

/// Adds `key=value` (already escaped) to a URL that may have a query.
pub(crate) fn with_query(url: &str, key: &str, value: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{key}={value}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(request: &str, location: &str, want: &str) {
        assert_eq!(resolve_location(request, location), want, "{location}");
    }

    #[test]
    fn resolves_locations() {
        let req = "http://127.0.0.1:5000/v2/a/b/blobs/uploads/";
        check(
            req,
            "https://s3.example/up?x=1",
            "https://s3.example/up?x=1",
        );
        check(req, "//other:1/u", "http://other:1/u");
        check(
            req,
            "/v2/a/b/blobs/uploads/uuid?_state=xyz",
            "http://127.0.0.1:5000/v2/a/b/blobs/uploads/uuid?_state=xyz",
        );
        check(
            req,
            "uuid",
            "http://127.0.0.1:5000/v2/a/b/blobs/uploads/uuid",
        );
        check(
            "https://h/v2/r/blobs/uploads/old?q=1",
            "new",
            "https://h/v2/r/blobs/uploads/new",
        );
    }

    #[test]
    fn appends_query_params() {
        assert_eq!(
            with_query("http://h/u", "digest", "d"),
            "http://h/u?digest=d"
        );
        assert_eq!(
            with_query("http://h/u?_state=s", "digest", "d"),
            "http://h/u?_state=s&digest=d"
        );
    }
}
