//! Registry authentication: `WWW-Authenticate` challenges and bearer tokens.
//!
//! The flow is Docker's token protocol
//! (distribution `docs/spec/auth/token.md`): a request answered 401 carries
//! `WWW-Authenticate: Bearer realm="…",service="…",scope="…"`; the client
//! GETs `realm?service=…&scope=…` (with Basic credentials if it has any,
//! anonymously otherwise), receives `{"token": …, "expires_in": …}` and
//! retries with `Authorization: Bearer`. Tokens are cached per set of scopes
//! until shortly before they expire. Registries that answer `Basic` instead
//! (distribution with htpasswd) get the credentials on every request.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One authentication scheme a registry asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

/// Parses a `WWW-Authenticate` value (RFC 7235: one or more
/// `scheme param=value, …` challenges, values as tokens or quoted strings).
/// Unknown schemes are skipped; the result keeps the header's order.
pub(crate) fn parse_challenges(header: &str) -> Vec<Challenge> {
    let mut out = Vec::new();
    let mut current: Option<(String, Vec<(String, String)>)> = None;
    let mut rest = header.trim();
    while !rest.is_empty() {
        rest = rest.trim_start_matches([',', ' ', '\t']);
        if rest.is_empty() {
            break;
        }
        let end = rest
            .find(|c: char| c == '=' || c == ',' || c.is_whitespace())
            .unwrap_or(rest.len());
        let token = &rest[..end];
        let after = rest[end..].trim_start_matches([' ', '\t']);
        if let Some(value_part) = after.strip_prefix('=') {
            let (value, remaining) = parse_value(value_part.trim_start());
            if let Some((_, params)) = current.as_mut() {
                params.push((token.to_ascii_lowercase(), value));
            }
            rest = remaining;
        } else {
            if let Some(done) = current.take() {
                out.extend(to_challenge(done));
            }
            current = Some((token.to_ascii_lowercase(), Vec::new()));
            rest = after;
        }
    }
    if let Some(done) = current.take() {
        out.extend(to_challenge(done));
    }
    out
}

/// A parameter value: a quoted string (with `\` escapes) or a token.
fn parse_value(s: &str) -> (String, &str) {
    if let Some(body) = s.strip_prefix('"') {
        let mut value = String::new();
        let mut chars = body.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, escaped)) = chars.next() {
                        value.push(escaped);
                    }
                }
                '"' => return (value, &body[i + 1..]),
                _ => value.push(c),
            }
        }
        (value, "")
    } else {
        let end = s.find([',', ' ', '\t']).unwrap_or(s.len());
        (s[..end].to_string(), &s[end..])
    }
}

fn to_challenge((scheme, params): (String, Vec<(String, String)>)) -> Option<Challenge> {
    let get = |k: &str| {
        params
            .iter()
            .find(|(name, _)| name == k)
            .map(|(_, v)| v.clone())
    };
    match scheme.as_str() {
        "basic" => Some(Challenge::Basic),
        "bearer" => Some(Challenge::Bearer {
            realm: get("realm")?,
            service: get("service"),
            scope: get("scope"),
        }),
        _ => None,
    }
}

/// The access a request needs, as token scopes:
/// `repository:NAME:pull` or `repository:NAME:pull,push`, plus
/// `repository:OTHER:pull` for a cross-repository mount.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Scope(Vec<String>);

impl Scope {
    /// No repository access: `/v2/` pings.
    pub(crate) fn none() -> Scope {
        Scope(Vec::new())
    }

    pub(crate) fn pull(repository: &str) -> Scope {
        Scope(vec![format!("repository:{repository}:pull")])
    }

    pub(crate) fn push(repository: &str) -> Scope {
        Scope(vec![format!("repository:{repository}:pull,push")])
    }

    /// This scope plus pull access to `repository` (the source of a mount).
    pub(crate) fn and_pull(mut self, repository: &str) -> Scope {
        self.0.push(format!("repository:{repository}:pull"));
        self
    }

    /// Adds a scope the registry named in its challenge, if not already in.
    pub(crate) fn with(mut self, extra: Option<&str>) -> Scope {
        if let Some(s) = extra {
            if !s.is_empty() && !self.0.iter().any(|have| have == s) {
                self.0.push(s.to_string());
            }
        }
        self
    }

    pub(crate) fn items(&self) -> &[String] {
        &self.0
    }

    fn key(&self) -> String {
        self.0.join(" ")
    }
}

/// How long before its stated expiry a token stops being reused, so a
/// request does not set out with a token that dies in flight.
const EXPIRY_MARGIN: Duration = Duration::from_secs(10);
/// The token spec's default lifetime when `expires_in` is absent.
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(60);

/// What a client has learned about a registry's auth, shared by threads.
#[derive(Debug, Default)]
pub(crate) struct AuthState {
    inner: Mutex<AuthInner>,
}

#[derive(Debug, Default)]
struct AuthInner {
    /// The scheme from the last 401; `None` until the registry asks.
    challenge: Option<Challenge>,
    tokens: HashMap<String, (String, Instant)>,
}

impl AuthState {
    pub(crate) fn challenge(&self) -> Option<Challenge> {
        self.lock().challenge.clone()
    }

    pub(crate) fn set_challenge(&self, c: Challenge) {
        self.lock().challenge = Some(c);
    }

    /// A cached, unexpired token for exactly this scope.
    pub(crate) fn token(&self, scope: &Scope) -> Option<String> {
        let inner = self.lock();
        let (token, expires) = inner.tokens.get(&scope.key())?;
        (Instant::now() + EXPIRY_MARGIN < *expires).then(|| token.clone())
    }

    pub(crate) fn store_token(&self, scope: &Scope, token: String, lifetime: Option<Duration>) {
        let expires = Instant::now() + lifetime.unwrap_or(DEFAULT_TOKEN_LIFETIME);
        self.lock().tokens.insert(scope.key(), (token, expires));
    }

    /// Drops a token the registry rejected, so the next request fetches anew.
    pub(crate) fn forget_token(&self, scope: &Scope) {
        self.lock().tokens.remove(&scope.key());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, AuthInner> {
        // A panic elsewhere while holding the lock leaves plain data behind;
        // the cache is still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The token server's answer (`token` or the OAuth2 `access_token`).
#[derive(Debug, serde::Deserialize)]
pub(crate) struct TokenResponse {
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub access_token: Option<String>,
    #[serde(default)]
    pub expires_in: Option<u64>,
}

impl TokenResponse {
    pub(crate) fn into_token(self) -> Option<(String, Option<Duration>)> {
        let t = self.token.or(self.access_token).filter(|t| !t.is_empty())?;
        Some((t, self.expires_in.map(Duration::from_secs)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(header: &str, want: &[Challenge]) {
        assert_eq!(parse_challenges(header), want, "{header}");
    }

    fn bearer(realm: &str, service: Option<&str>, scope: Option<&str>) -> Challenge {
        Challenge::Bearer {
            realm: realm.into(),
            service: service.map(Into::into),
            scope: scope.map(Into::into),
        }
    }

    #[test]
    fn parses_challenges() {
        check(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
            &[bearer(
                "https://auth.docker.io/token",
                Some("registry.docker.io"),
                Some("repository:library/busybox:pull"),
            )],
        );
        check(r#"Basic realm="Registry Realm""#, &[Challenge::Basic]);
        check(
            r#"bearer realm=http://x/t, service = "s\"q""#,
            &[bearer("http://x/t", Some("s\"q"), None)],
        );
        check(
            r#"Negotiate, Basic realm="a", Bearer realm="b",scope="repository:x:pull,push""#,
            &[
                Challenge::Basic,
                bearer("b", None, Some("repository:x:pull,push")),
            ],
        );
        check("Bearer service=\"no realm\"", &[]);
        check("", &[]);
    }

    #[test]
    fn scopes_and_token_cache() {
        let s = Scope::push("a/b")
            .and_pull("c/d")
            .with(Some("repository:a/b:pull,push"));
        assert_eq!(
            s.items(),
            ["repository:a/b:pull,push", "repository:c/d:pull"]
        );
        let state = AuthState::default();
        assert_eq!(state.token(&s), None);
        state.store_token(&s, "t1".into(), Some(Duration::from_secs(300)));
        assert_eq!(state.token(&s).as_deref(), Some("t1"));
        assert_eq!(state.token(&Scope::pull("a/b")), None);
        // A token about to expire is not handed out.
        state.store_token(&s, "t2".into(), Some(Duration::from_secs(1)));
        assert_eq!(state.token(&s), None);
        state.store_token(&s, "t3".into(), None);
        state.forget_token(&s);
        assert_eq!(state.token(&s), None);
    }
}
