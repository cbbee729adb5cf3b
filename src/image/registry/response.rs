//! What a registry's unsuccessful answers mean: the distribution spec's
//! error bodies (`{"errors": [{"code", "message", "detail"}]}`) mapped to
//! the [`RegistryError`] a user should see.

use super::transport::Call;
use super::RegistryError;
use ureq::http::{Response, StatusCode};
use ureq::Body;

/// How much of an error body is read for its message.
const ERROR_BODY_LIMIT: u64 = 64 * 1024;

/// What a failed response was about, for choosing the error.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Subject<'a> {
    Manifest(&'a str),
    Blob(&'a super::Digest),
}

/// Maps a non-success response to the error a user should see: 404s by
/// the registry's error code (`MANIFEST_UNKNOWN`, `NAME_UNKNOWN`,
/// `BLOB_UNKNOWN`, distribution spec "Error Codes"), 403 as denied.
pub(crate) fn status_error(
    call: &Call,
    resp: &mut Response<Body>,
    subject: Option<Subject>,
) -> RegistryError {
    let status = resp.status();
    let (codes, detail) = read_error_body(resp);
    let registry = registry_of(&call.url);
    let repository = call.repository.to_string();
    let has = |c: &str| codes.iter().any(|x| x == c);
    if status == StatusCode::NOT_FOUND {
        if has("NAME_UNKNOWN") {
            return RegistryError::RepositoryNotFound {
                registry,
                repository,
                hint: String::new(),
            };
        }
        match subject {
            Some(Subject::Manifest(r)) => {
                return RegistryError::ManifestUnknown {
                    registry,
                    repository,
                    reference: r.to_string(),
                }
            }
            Some(Subject::Blob(d)) => {
                return RegistryError::BlobUnknown {
                    registry,
                    repository,
                    digest: d.clone(),
                }
            }
            None => {}
        }
    }
    if status == StatusCode::FORBIDDEN {
        return RegistryError::Forbidden {
            registry,
            repository,
            detail: detail.trim_start_matches(": ").to_string(),
        };
    }
    RegistryError::UnexpectedStatus {
        method: call.method.to_string(),
        url: call.url.clone(),
        status: status.as_u16(),
        detail,
    }
}

/// `host[:port]` of a URL, for messages.
fn registry_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest).to_string()
}

/// `": CODE message; CODE message"` from a registry error body, or the
/// start of a non-JSON body; empty when there is nothing useful.
pub(crate) fn read_error_detail(resp: &mut Response<Body>) -> String {
    read_error_body(resp).1
}

fn read_error_body(resp: &mut Response<Body>) -> (Vec<String>, String) {
    let body = resp
        .body_mut()
        .with_config()
        .limit(ERROR_BODY_LIMIT)
        .read_to_vec()
        .unwrap_or_default();
    parse_error_body(&body)
}

/// The distribution spec's `{"errors": [{"code", "message", "detail"}]}`.
fn parse_error_body(body: &[u8]) -> (Vec<String>, String) {
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<ErrorItem>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorItem {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    if let Ok(parsed) = serde_json::from_slice::<Errors>(body) {
        let codes: Vec<String> = parsed.errors.iter().map(|e| e.code.clone()).collect();
        let text: Vec<String> = parsed
            .errors
            .iter()
            .map(|e| format!("{} {}", e.code, e.message).trim().to_string())
            .collect();
        let detail = if text.is_empty() {
            String::new()
        } else {
            format!(": {}", text.join("; "))
        };
        return (codes, detail);
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return (Vec::new(), String::new());
    }
    let short: String = text.chars().take(200).collect();
    (Vec::new(), format!(": {}", short.replace('\n', " ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies() {
        let (codes, detail) = parse_error_body(
            br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"x"}}]}"#,
        );
        assert_eq!(codes, ["MANIFEST_UNKNOWN"]);
        assert_eq!(detail, ": MANIFEST_UNKNOWN manifest unknown");
        assert_eq!(parse_error_body(b""), (vec![], String::new()));
        assert_eq!(parse_error_body(b"oops\n").1, ": oops");
        assert_eq!(registry_of("http://127.0.0.1:5000/v2/x"), "127.0.0.1:5000");
    }
}
