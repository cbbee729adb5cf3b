//! One registry request: authorization, bounded retries with backoff, and
//! turning registry error bodies into [`RegistryError`]s.
//!
//! Retried: connection failures and timeouts, 5xx and 429 (honouring
//! `Retry-After`), as the distribution spec allows clients to. A request
//! body must be replayable to be retried, so uploads come as
//! [`Payload::Stream`] over a seekable reader.

use super::auth::{parse_challenges, AuthState, Challenge, Scope, TokenResponse};
use super::credentials::Credentials;
use super::endpoint::Endpoint;
use super::failure::{classify, is_retryable_status, SendError};
use super::proxy::ProxyEnv;
use super::response::{read_error_detail, status_error};
use super::trust::HostTrust;
use super::RegistryError;
use crate::error_chain::Chain;
use std::borrow::Cow;
use std::io::{Read, Seek, SeekFrom};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use ureq::http::{self, header, Method, Response, StatusCode};
use ureq::{Body, SendBody};

/// How often and how patiently a failed request is retried.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Total tries, including the first (at least 1).
    pub attempts: u32,
    /// Wait before the first retry; doubles after each.
    pub initial_backoff: Duration,
    /// Cap on one wait, including a registry's `Retry-After`.
    pub max_backoff: Duration,
    /// How long a transfer may go without receiving a byte, across all its
    /// tries, before kiln gives up on it: each read waits at most this
    /// long, and no retry starts once this much time has passed since the
    /// last byte. A slow transfer is never cut; a stalled one fails in
    /// about this time, not `attempts` times it.
    pub stall_timeout: Duration,
}

/// The default [`RetryPolicy::stall_timeout`].
pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(60);

/// Seconds overriding [`DEFAULT_STALL_TIMEOUT`] (fractions allowed), for
/// tests and for links where a minute of silence is normal.
pub const STALL_TIMEOUT_ENV: &str = "KILN_REGISTRY_STALL_TIMEOUT";

impl Default for RetryPolicy {
    /// Five tries over about three seconds: rides out a registry restart or
    /// a dropped connection without making a dead registry slow to report;
    /// the stall timeout from [`STALL_TIMEOUT_ENV`] when set.
    fn default() -> Self {
        let stall_timeout = std::env::var(STALL_TIMEOUT_ENV)
            .ok()
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s > 0.0)
            .map(Duration::from_secs_f64)
            .unwrap_or(DEFAULT_STALL_TIMEOUT);
        RetryPolicy {
            attempts: 5,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
            stall_timeout,
        }
    }
}

impl RetryPolicy {
    /// The wait before try number `next` (2, 3, …).
    pub(crate) fn backoff(&self, next: u32, retry_after: Option<Duration>) -> Duration {
        let exp = self
            .initial_backoff
            .saturating_mul(1u32 << (next.saturating_sub(2)).min(16));
        retry_after.unwrap_or(exp).min(self.max_backoff)
    }
}

/// Something that can be read again from a position: an upload body
/// (a file, a `Cursor`), so a failed request can be resent.
pub trait ReadSeek: Read + Seek {}
impl<T: Read + Seek> ReadSeek for T {}

/// A request body.
pub(crate) enum Payload<'a> {
    Empty,
    Bytes(&'a [u8]),
    /// `len` bytes of `reader` from `start`; sought back to `start` for each
    /// try. `progress` gets the absolute offset reached.
    Stream {
        reader: &'a mut dyn ReadSeek,
        start: u64,
        len: u64,
        progress: &'a mut dyn FnMut(u64),
    },
}

/// A request to send.
pub(crate) struct Call<'a> {
    pub method: Method,
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub payload: Payload<'a>,
    pub scope: Scope,
    /// The repository concerned, for error messages ("" for `/v2/`).
    pub repository: &'a str,
}

/// How a registry is reached, besides its URL: what TLS trusts, whether a
/// failed TLS handshake may fall back to plain HTTP, and the proxies.
pub(crate) struct Connection {
    pub trust: HostTrust,
    /// Skip-verify on a host that may serve plain HTTP: docker's handling
    /// of insecure registries (HTTPS without verification, then HTTP;
    /// moby `registry/service.go` `lookupV2Endpoints`) and podman's
    /// `--tls-verify=false` (containers/image `docker/docker_client.go`
    /// `detectPropertiesHelper`).
    pub http_fallback: bool,
    pub proxies: ProxyEnv,
}

/// A registry's connection, credentials and learned auth state; shared by
/// all threads working on one registry.
pub(crate) struct Transport {
    agent: ureq::Agent,
    pub(crate) endpoint: Endpoint,
    trust: HostTrust,
    http_fallback: bool,
    /// Set once the registry turned out to serve plain HTTP.
    fell_back: AtomicBool,
    proxies: ProxyEnv,
    creds: Option<Credentials>,
    pub(crate) retry: RetryPolicy,
    auth: AuthState,
}

impl Transport {
    pub(crate) fn new(
        endpoint: Endpoint,
        creds: Option<Credentials>,
        retry: RetryPolicy,
        connection: Connection,
    ) -> Transport {
        let config = ureq::Agent::config_builder();
        let agent = config
            .tls_config(connection.trust.tls.clone())
            // Proxies are chosen per request by `proxy::ProxyEnv`, not by
            // ureq's own reading of the environment.
            .proxy(None)
            // Statuses are the registry protocol; they are read, not thrown.
            .http_status_as_error(false)
            .user_agent(concat!("kiln/", env!("CARGO_PKG_VERSION")))
            .timeout_connect(Some(Duration::from_secs(30)))
            // A stalled transfer is a failure, but a slow one is not: bound
            // each read and write, never the whole body.
            .timeout_per_read(Some(retry.stall_timeout))
            .timeout_per_write(Some(Duration::from_secs(120)))
            .build()
            .new_agent();
        Transport {
            agent,
            endpoint,
            trust: connection.trust,
            http_fallback: connection.http_fallback,
            fell_back: AtomicBool::new(false),
            proxies: connection.proxies,
            creds,
            retry,
            auth: AuthState::default(),
        }
    }

    pub(crate) fn has_credentials(&self) -> bool {
        self.creds.is_some()
    }

    /// Sends `call`, answering auth challenges; returns any response that is
    /// not 401 (and not retryable), for the caller to interpret.
    pub(crate) fn send(&self, call: &mut Call) -> Result<Response<Body>, RegistryError> {
        // Up to two challenges per call: the first teaches us the scheme (or
        // the scope), the second means a cached token went stale.
        for _ in 0..3 {
            let (authorization, fresh) = self.authorization(&call.scope)?;
            let resp = self.send_with_retries(call, authorization.as_deref())?;
            if resp.status() != StatusCode::UNAUTHORIZED {
                return Ok(resp);
            }
            let challenges: Vec<Challenge> = resp
                .headers()
                .get_all(header::WWW_AUTHENTICATE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(parse_challenges)
                .collect();
            let chosen = challenges
                .iter()
                .find(|c| matches!(c, Challenge::Bearer { .. }))
                .or_else(|| challenges.first())
                .cloned();
            let Some(chosen) = chosen else {
                return Err(self.unauthorized(
                    call,
                    resp,
                    "the registry answered 401 without a Basic or Bearer challenge",
                ));
            };
            let sent_basic = authorization
                .as_deref()
                .is_some_and(|a| a.starts_with("Basic "));
            match &chosen {
                Challenge::Basic if self.creds.is_none() => {
                    return Err(self.unauthorized(call, resp, "the registry requires a login"));
                }
                Challenge::Basic if sent_basic => {
                    return Err(self.unauthorized(call, resp, "invalid username or password"));
                }
                Challenge::Bearer { scope, .. } => {
                    if fresh {
                        // A token just issued for this scope was refused: the
                        // account may not access the repository.
                        return Err(self.denied(call, resp));
                    }
                    call.scope =
                        std::mem::replace(&mut call.scope, Scope::none()).with(scope.as_deref());
                    self.auth.forget_token(&call.scope);
                }
                Challenge::Basic => {}
            }
            self.auth.set_challenge(chosen);
        }
        Err(RegistryError::Unauthorized {
            registry: self.endpoint.name.clone(),
            detail: format!(
                "{} {}: the registry kept answering 401",
                call.method, call.url
            ),
        })
    }

    /// The `Authorization` value for `scope`, and whether a bearer token was
    /// fetched just now.
    fn authorization(&self, scope: &Scope) -> Result<(Option<String>, bool), RegistryError> {
        match self.auth.challenge() {
            None => Ok((None, false)),
            Some(Challenge::Basic) => Ok((
                self.creds
                    .as_ref()
                    .map(|c| format!("Basic {}", c.basic_token())),
                false,
            )),
            Some(Challenge::Bearer { realm, service, .. }) => {
                if let Some(t) = self.auth.token(scope) {
                    return Ok((Some(format!("Bearer {t}")), false));
                }
                let (token, lifetime) = self.fetch_token(&realm, service.as_deref(), scope)?;
                self.auth.store_token(scope, token.clone(), lifetime);
                Ok((Some(format!("Bearer {token}")), true))
            }
        }
    }

    /// Asks the token server for a token (anonymously without credentials).
    fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scope: &Scope,
    ) -> Result<(String, Option<Duration>), RegistryError> {
        if let Some(c) = self.creds.as_ref().filter(|c| c.is_identity_token()) {
            return self.fetch_oauth_token(realm, service, scope, &c.password);
        }
        let mut url = realm.to_string();
        let mut sep = if url.contains('?') { '&' } else { '?' };
        for (k, v) in service
            .map(|s| ("service", s))
            .into_iter()
            .chain(scope.items().iter().map(|s| ("scope", s.as_str())))
        {
            url.push(sep);
            url.push_str(k);
            url.push('=');
            url.push_str(&query_escape(v));
            sep = '&';
        }
        let mut call = Call {
            method: Method::GET,
            url,
            headers: Vec::new(),
            payload: Payload::Empty,
            scope: Scope::none(),
            repository: "",
        };
        let basic = self
            .creds
            .as_ref()
            .map(|c| format!("Basic {}", c.basic_token()));
        let resp = self.send_with_retries(&mut call, basic.as_deref())?;
        self.read_token(realm, &call, resp)
    }

    /// OAuth2's refresh-token grant, for an identity token (what a
    /// credential helper returns with the username `<token>`): a form POST
    /// to the realm (distribution `registry/client/auth/session.go`
    /// `fetchTokenWithOAuth`; scopes space-separated).
    fn fetch_oauth_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scope: &Scope,
        refresh_token: &str,
    ) -> Result<(String, Option<Duration>), RegistryError> {
        let mut form = vec![
            ("grant_type", "refresh_token".to_string()),
            ("refresh_token", refresh_token.to_string()),
            ("client_id", "kiln".to_string()),
        ];
        if let Some(s) = service {
            form.push(("service", s.to_string()));
        }
        if !scope.items().is_empty() {
            form.push(("scope", scope.items().join(" ")));
        }
        let body: Vec<String> = form
            .iter()
            .map(|(k, v)| format!("{k}={}", query_escape(v)))
            .collect();
        let body = body.join("&");
        let mut call = Call {
            method: Method::POST,
            url: realm.to_string(),
            headers: vec![(
                "Content-Type",
                "application/x-www-form-urlencoded".to_string(),
            )],
            payload: Payload::Bytes(body.as_bytes()),
            scope: Scope::none(),
            repository: "",
        };
        let resp = self.send_with_retries(&mut call, None)?;
        self.read_token(realm, &call, resp)
    }

    /// The token in a token server's answer.
    fn read_token(
        &self,
        realm: &str,
        call: &Call,
        mut resp: Response<Body>,
    ) -> Result<(String, Option<Duration>), RegistryError> {
        let status = resp.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            let who = match &self.creds {
                Some(c) => format!("rejected the credentials of {}", c.username),
                None => "refused an anonymous token".to_string(),
            };
            return Err(RegistryError::Unauthorized {
                registry: self.endpoint.name.clone(),
                detail: format!(
                    "token server {realm} {who} (status {}){}",
                    status.as_u16(),
                    read_error_detail(&mut resp)
                ),
            });
        }
        if !status.is_success() {
            return Err(status_error(call, &mut resp, None));
        }
        let body = resp
            .body_mut()
            .with_config()
            .limit(1024 * 1024)
            .read_to_vec()
            .map_err(|e| protocol(call, format!("reading token: {e}", e = Chain(&e))))?;
        let parsed: TokenResponse = serde_json::from_slice(&body).map_err(|e| {
            protocol(
                call,
                format!("token response is not JSON: {e}", e = Chain(&e)),
            )
        })?;
        parsed
            .into_token()
            .ok_or_else(|| protocol(call, "token response has no token".into()))
    }

    /// Sends once, retrying connection errors, 5xx and 429.
    fn send_with_retries(
        &self,
        call: &mut Call,
        authorization: Option<&str>,
    ) -> Result<Response<Body>, RegistryError> {
        let policy = &self.retry;
        let attempts = policy.attempts.max(1);
        let mut last = String::new();
        let mut only_connect_errors = true;
        let mut retry_after = None;
        // Time since the registry last answered anything.
        let mut heard = Instant::now();
        for attempt in 1..=attempts {
            if attempt > 1 && heard.elapsed() >= policy.stall_timeout {
                return Err(RegistryError::Stalled {
                    registry: self.endpoint.name.clone(),
                    what: format!("{} {}", call.method, call.url),
                    waited: heard.elapsed(),
                    last,
                });
            }
            if attempt > 1 {
                let wait = policy.backoff(attempt, retry_after.take());
                tracing::debug!(%call.url, attempt, ?wait, "retrying: {last}");
                std::thread::sleep(wait);
            }
            match self.send_once(call, authorization) {
                Ok(mut resp) if is_retryable_status(resp.status()) => {
                    heard = Instant::now();
                    only_connect_errors = false;
                    retry_after = resp
                        .headers()
                        .get(header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    last = format!(
                        "status {}{}",
                        resp.status().as_u16(),
                        read_error_detail(&mut resp)
                    );
                }
                Ok(resp) => return Ok(resp),
                Err(SendError::Retryable(e)) => last = e,
                Err(SendError::Fatal(e)) => return Err(e),
                // `send_once` turns these into `Fatal` already.
                Err(SendError::NotTls(reason)) => {
                    return Err(RegistryError::Connect {
                        registry: self.endpoint.name.clone(),
                        url: call.url.clone(),
                        reason,
                    })
                }
            }
        }
        if only_connect_errors {
            Err(RegistryError::Connect {
                registry: self.endpoint.name.clone(),
                url: call.url.clone(),
                reason: format!("{last} (tried {attempts} times)"),
            })
        } else {
            Err(RegistryError::RetriesExhausted {
                method: call.method.to_string(),
                url: call.url.clone(),
                attempts,
                last,
            })
        }
    }

    /// `url`, on plain HTTP once the registry turned out to serve it.
    fn effective_url<'u>(&self, url: &'u str) -> Cow<'u, str> {
        if !self.fell_back.load(Ordering::Relaxed) {
            return Cow::Borrowed(url);
        }
        match url.strip_prefix("https://") {
            Some(rest) if rest.starts_with(self.endpoint.host()) => {
                Cow::Owned(format!("http://{rest}"))
            }
            _ => Cow::Borrowed(url),
        }
    }

    /// Sends once; a handshake with a skip-verify host that serves plain
    /// HTTP switches this transport to HTTP and sends again.
    fn send_once(
        &self,
        call: &mut Call,
        authorization: Option<&str>,
    ) -> Result<Response<Body>, SendError> {
        let was_plain = self.fell_back.load(Ordering::Relaxed);
        match self.send_once_as_is(call, authorization) {
            Err(SendError::NotTls(reason)) if self.http_fallback && !was_plain => {
                tracing::debug!(registry = %self.endpoint.name, "no TLS ({reason}); using plain HTTP");
                self.fell_back.store(true, Ordering::Relaxed);
                self.send_once_as_is(call, authorization)
            }
            other => other,
        }
        .map_err(|e| match e {
            SendError::NotTls(reason) => SendError::Fatal(RegistryError::Connect {
                registry: self.endpoint.name.clone(),
                url: call.url.clone(),
                reason,
            }),
            e => e,
        })
    }

    fn send_once_as_is(
        &self,
        call: &mut Call,
        authorization: Option<&str>,
    ) -> Result<Response<Body>, SendError> {
        let url = self.effective_url(&call.url).into_owned();
        let proxy = self.proxy_for(&url).map_err(SendError::Fatal)?;
        let mut builder = http::Request::builder()
            .method(call.method.clone())
            .uri(&url);
        for (k, v) in &call.headers {
            builder = builder.header(*k, v);
        }
        if let Some(a) = authorization {
            builder = builder.header(header::AUTHORIZATION, a);
        }
        let (method, url) = (call.method.to_string(), call.url.clone());
        let bad_request = |e: http::Error| {
            SendError::Fatal(RegistryError::Protocol {
                method: method.clone(),
                url: url.clone(),
                reason: Chain(&e).to_string(),
            })
        };
        let result = match &mut call.payload {
            Payload::Empty => {
                if matches!(call.method, Method::POST | Method::PUT | Method::PATCH) {
                    // Some registries refuse body-less uploads without it.
                    builder = builder.header(header::CONTENT_LENGTH, "0");
                }
                let req = builder.body(SendBody::none()).map_err(bad_request)?;
                self.agent.run(self.with_proxy(req, &proxy))
            }
            Payload::Bytes(bytes) => {
                let req = builder.body(*bytes).map_err(bad_request)?;
                self.agent.run(self.with_proxy(req, &proxy))
            }
            Payload::Stream {
                reader,
                start,
                len,
                progress,
            } => {
                reader
                    .seek(SeekFrom::Start(*start))
                    .map_err(|e| SendError::Fatal(RegistryError::io("rewinding upload", e)))?;
                let mut counting = Counting {
                    inner: (&mut **reader).take(*len),
                    at: *start,
                    progress: &mut **progress,
                };
                let req = builder
                    .header(header::CONTENT_LENGTH, len.to_string())
                    .body(SendBody::from_reader(&mut counting))
                    .map_err(bad_request)?;
                self.agent.run(self.with_proxy(req, &proxy))
            }
        };
        result.map_err(|e| self.classify(call, e))
    }

    /// The proxy for `url` ([`ProxyEnv::proxy_for`]).
    fn proxy_for(&self, url: &str) -> Result<Option<ureq::Proxy>, RegistryError> {
        let Ok(uri) = url.parse::<http::Uri>() else {
            return Ok(None);
        };
        let (Some(scheme), Some(host)) = (uri.scheme_str(), uri.host()) else {
            return Ok(None);
        };
        let Some(proxy) = self.proxies.proxy_for(scheme, host, uri.port_u16()) else {
            return Ok(None);
        };
        tracing::debug!(%url, %proxy, "through proxy");
        ureq::Proxy::new(&proxy)
            .map(Some)
            .map_err(|e| RegistryError::Connect {
                registry: self.endpoint.name.clone(),
                url: url.to_string(),
                reason: format!(
                    "invalid proxy {proxy:?} (from {}_PROXY): {e}",
                    scheme.to_ascii_uppercase()
                ),
            })
    }

    fn with_proxy<S: ureq::AsSendBody>(
        &self,
        req: http::Request<S>,
        proxy: &Option<ureq::Proxy>,
    ) -> http::Request<S> {
        match proxy {
            None => req,
            Some(p) => self
                .agent
                .configure_request(req)
                .proxy(Some(p.clone()))
                .build(),
        }
    }

    fn classify(&self, call: &Call, e: ureq::Error) -> SendError {
        classify(&self.endpoint, &self.trust, self.http_fallback, call, e)
    }

    /// 401 after the auth flow gave up.
    fn unauthorized(&self, call: &Call, mut resp: Response<Body>, why: &str) -> RegistryError {
        let mut detail = format!("{why}{}", read_error_detail(&mut resp));
        if self.creds.is_none() {
            detail.push_str(&format!(
                " (not logged in: run `kiln login {}`)",
                self.endpoint.name
            ));
        }
        let _ = call;
        RegistryError::Unauthorized {
            registry: self.endpoint.name.clone(),
            detail,
        }
    }

    /// A fresh token was refused: like docker's "pull access denied … may
    /// require 'docker login'".
    fn denied(&self, call: &Call, resp: Response<Body>) -> RegistryError {
        if call.repository.is_empty() {
            return self.unauthorized(call, resp, "the registry refused a fresh token");
        }
        let hint = match &self.creds {
            None => format!(
                " (not logged in: run `kiln login {}` if it is private)",
                self.endpoint.name
            ),
            Some(c) => format!(" for user {}", c.username),
        };
        RegistryError::RepositoryNotFound {
            registry: self.endpoint.name.clone(),
            repository: call.repository.to_string(),
            hint,
        }
    }
}

pub(crate) fn protocol(call: &Call, reason: String) -> RegistryError {
    RegistryError::Protocol {
        method: call.method.to_string(),
        url: call.url.clone(),
        reason,
    }
}

/// Percent-encodes a query value (RFC 3986 unreserved characters pass).
pub(crate) fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Reports the offset reached while an upload body is read.
struct Counting<'a, R> {
    inner: R,
    at: u64,
    progress: &'a mut dyn FnMut(u64),
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.at += n as u64;
        (self.progress)(self.at);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let p = RetryPolicy {
            stall_timeout: DEFAULT_STALL_TIMEOUT,
            attempts: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(350),
        };
        let waits: Vec<u128> = (2..=5).map(|n| p.backoff(n, None).as_millis()).collect();
        assert_eq!(waits, [100, 200, 350, 350]);
        assert_eq!(p.backoff(2, Some(Duration::from_secs(60))).as_millis(), 350);
    }

    #[test]
    fn escapes_queries() {
        assert_eq!(
            query_escape("repository:a/b:pull,push"),
            "repository%3Aa%2Fb%3Apull%2Cpush"
        );
    }
}
