//! Telling apart why a registry request failed: a connection error worth
//! retrying, a name that does not resolve, a certificate that is not
//! trusted (never retried, and reported with the CAs that were read), or a
//! TLS handshake with a server that speaks plain HTTP.

use super::endpoint::Endpoint;
use super::transport::{protocol, Call};
use super::trust::HostTrust;
use super::RegistryError;
use crate::error_chain::Chain;
use ureq::http::StatusCode;

/// What a failed request means: retry, give up, or (on a skip-verify host
/// that may serve plain HTTP) try HTTP.
pub(super) fn classify(
    endpoint: &Endpoint,
    trust: &HostTrust,
    http_fallback: bool,
    call: &Call,
    e: ureq::Error,
) -> SendError {
    let Some(tls) = tls_failure(&e) else {
        return classify_other(endpoint, call, e);
    };
    match tls {
        // rustls' own checks: the registry's certificate chain is not
        // trusted, names another host, or is out of date. Retrying
        // cannot change that (it used to be retried five times).
        TlsFailure::Certificate(reason) => {
            let trusted = trust.describe_sources();
            SendError::Fatal(RegistryError::Certificate {
                registry: endpoint.name.clone(),
                url: call.url.clone(),
                reason,
                trusted,
                host: endpoint.host().to_string(),
            })
        }
        TlsFailure::Other(reason) if http_fallback => SendError::NotTls(reason),
        TlsFailure::Other(reason) => {
            let hint = if reason.contains("CertificateRequired")
                || reason.contains("BadCertificate")
                || reason.contains("HandshakeFailure")
            {
                let have = match &trust.client_cert {
                    Some(c) => format!("kiln presented {}", c.display()),
                    None => "kiln presented none".to_string(),
                };
                format!(
                    " (the registry may require a client certificate, NAME.cert and NAME.key in certs.d/{}/; {have})",
                    endpoint.host()
                )
            } else {
                format!(
                    " (if the registry serves plain HTTP, pass --insecure-registry {})",
                    endpoint.name
                )
            };
            SendError::Fatal(RegistryError::Connect {
                registry: endpoint.name.clone(),
                url: call.url.clone(),
                reason: format!("TLS: {reason}{hint}"),
            })
        }
    }
}

pub(super) enum SendError {
    Retryable(String),
    Fatal(RegistryError),
    /// The TLS handshake failed for a reason other than the certificate
    /// (on a plain-HTTP server: a "corrupt message").
    NotTls(String),
}

/// A TLS handshake failure, told apart from I/O trouble.
enum TlsFailure {
    Certificate(String),
    Other(String),
}

/// rustls reports handshake failures as `io::Error`s wrapping its own
/// error (its `complete_io`), which ureq passes on as `Error::Io`; they
/// must not be mistaken for retryable connection errors.
fn tls_failure(e: &ureq::Error) -> Option<TlsFailure> {
    let rustls_error = match e {
        ureq::Error::Rustls(r) => r,
        ureq::Error::Io(io) => io.get_ref()?.downcast_ref::<rustls::Error>()?,
        ureq::Error::Tls(msg) => return Some(TlsFailure::Other(msg.to_string())),
        _ => return None,
    };
    Some(match rustls_error {
        rustls::Error::InvalidCertificate(c) => {
            TlsFailure::Certificate(describe_certificate_error(c))
        }
        other => TlsFailure::Other(other.to_string()),
    })
}

/// rustls' reason with the words docker users search for.
fn describe_certificate_error(c: &rustls::CertificateError) -> String {
    use rustls::CertificateError as C;
    let kind = match c {
        C::UnknownIssuer => "signed by an unknown authority",
        C::NotValidForName | C::NotValidForNameContext { .. } => "name mismatch",
        C::Expired | C::ExpiredContext { .. } => "expired",
        C::NotValidYet | C::NotValidYetContext { .. } => "not yet valid",
        _ => "invalid",
    };
    format!("{kind}: {c}")
}

fn classify_other(endpoint: &Endpoint, call: &Call, e: ureq::Error) -> SendError {
    match e {
        // A name that does not resolve fails at once, as containerd's
        // resolver and BuildKit fail (no retry loop around resolution):
        // retrying it only delayed "did you mean builder?" by seconds.
        ureq::Error::HostNotFound => SendError::Fatal(RegistryError::Connect {
            registry: endpoint.name.clone(),
            url: call.url.clone(),
            reason: "host name not found (DNS)".into(),
        }),
        ureq::Error::Io(ref io) if is_failed_lookup(io) => {
            SendError::Fatal(RegistryError::Connect {
                registry: endpoint.name.clone(),
                url: call.url.clone(),
                reason: format!("host name not found (DNS): {io}", io = Chain(io)),
            })
        }
        ureq::Error::Io(_)
        | ureq::Error::Timeout(_)
        | ureq::Error::ConnectionFailed
        | ureq::Error::Protocol(_) => SendError::Retryable(Chain(&e).to_string()),
        ureq::Error::Tls(_) => SendError::Fatal(RegistryError::Connect {
            registry: endpoint.name.clone(),
            url: call.url.clone(),
            reason: format!(
                "TLS: {e} (if the registry serves plain HTTP, pass --insecure-registry {})",
                endpoint.name,
                e = Chain(&e)
            ),
        }),
        other => SendError::Fatal(protocol(call, other.to_string())),
    }
}

/// std's resolver reports a failed lookup as a plain `io::Error`
/// ("failed to lookup address information: …", getaddrinfo's message).
fn is_failed_lookup(e: &std::io::Error) -> bool {
    e.to_string().starts_with("failed to lookup address")
}

pub(super) fn is_retryable_status(s: StatusCode) -> bool {
    s == StatusCode::TOO_MANY_REQUESTS || s.is_server_error()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_name_lookup_is_not_retried() {
        // What `"x.invalid:443".to_socket_addrs()` returns where the name
        // does not resolve.
        let dns = std::io::Error::other(
            "failed to lookup address information: Name or service not known",
        );
        assert!(is_failed_lookup(&dns));
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert!(!is_failed_lookup(&refused));
    }

    #[test]
    fn certificate_errors_say_which_check_failed() {
        use rustls::CertificateError as C;
        for (e, want) in [
            (C::UnknownIssuer, "signed by an unknown authority"),
            (C::NotValidForName, "name mismatch"),
            (C::Expired, "expired"),
        ] {
            let io = std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                rustls::Error::InvalidCertificate(e),
            );
            match tls_failure(&ureq::Error::Io(io)) {
                Some(TlsFailure::Certificate(reason)) => {
                    assert!(reason.starts_with(want), "{reason}")
                }
                _ => panic!("{want}: not a certificate failure"),
            }
        }
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert!(tls_failure(&ureq::Error::Io(refused)).is_none());
    }
}
