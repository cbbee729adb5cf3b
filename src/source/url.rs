//! URLs of remote build sources (`ADD <url>`), as BuildKit reads them:
//! which are HTTP(S) downloads and which Git repositories, the name
//! `ADD <url> <dir>/` gives the file, and the password-redacted form kiln
//! prints of a URL.
//!
//! Pure string rules with no I/O: the lowering (`frontend`) uses them to
//! choose the op and name its progress line, the executor (`exec`) to name
//! the downloaded file and its errors; both sit above this module.

/// Whether `src` is an `http://` or `https://` source (and not a Git one).
pub fn is_http_url(src: &str) -> bool {
    (src.starts_with("http://") || src.starts_with("https://")) && !is_git_url(src)
}

/// Whether `src` names a Git repository as BuildKit's `dfgitutil` would
/// take it: `git://`, `git@host:`, `ssh://`, or an HTTP(S) URL whose path
/// ends in `.git`.
pub fn is_git_url(src: &str) -> bool {
    if src.starts_with("git://") || src.starts_with("git@") || src.starts_with("ssh://") {
        return true;
    }
    if src.starts_with("http://") || src.starts_with("https://") {
        return url_path(src).trim_end_matches('/').ends_with(".git");
    }
    false
}

/// `url` with the password of its user info replaced by `xxxxx`, as
/// BuildKit shows URLs (`urlutil.RedactCredentials`): what kiln prints of
/// a URL, progress names and errors alike, goes through here.
pub fn redact_password(url: &str) -> String {
    match split_password(url) {
        Some((before, _, after)) => format!("{before}xxxxx{after}"),
        None => url.to_string(),
    }
}

/// `url` split around the password of its user info (`scheme://user:`,
/// the password, `@host/path`), if it has one.
fn split_password(url: &str) -> Option<(&str, &str, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    // The last `@` ends the user info: a password may contain `@` only
    // percent-encoded, but a lenient parser would still split there.
    let (userinfo, _) = rest[..authority_end].rsplit_once('@')?;
    let (user, password) = userinfo.split_once(':')?;
    let start = scheme.len() + 3 + user.len() + 1;
    Some((&url[..start], password, &url[start + password.len()..]))
}

/// `text` (a message that may quote `url`) with `url`'s password hidden
/// wherever the message repeats the user info.
pub fn redact_in(text: &str, url: &str) -> String {
    match split_password(url) {
        Some((before, password, _)) if !password.is_empty() => {
            let user_start = before.find("://").map_or(0, |i| i + 3);
            let user = &before[user_start..];
            text.replace(&format!("{user}{password}@"), &format!("{user}xxxxx@"))
        }
        _ => text.to_string(),
    }
}

/// The decoded path of an absolute URL (Go's `url.URL.Path`).
fn url_path(url: &str) -> String {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path_start = after_scheme.find('/').unwrap_or(after_scheme.len());
    let path = &after_scheme[path_start..];
    let end = path.find(['?', '#']).unwrap_or(path.len());
    percent_decode(&path[..end])
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((hi * 16 + lo) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The name `ADD <url> <dir>/` gives the file: the URL path's last element,
/// or `__unnamed__` (BuildKit's Dockerfile frontend).
pub fn file_name_for(url: &str) -> String {
    let path = url_path(url);
    let trimmed = path.trim_end_matches('/');
    match trimmed.rsplit('/').next() {
        Some(base) if !base.is_empty() && base != "." && base != ".." => base.to_string(),
        _ => "__unnamed__".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_follow_the_url_path() {
        for (url, name) in [
            ("https://example.com/a/b/tool.tar.gz", "tool.tar.gz"),
            ("https://example.com/a/b/tool?x=1#frag", "tool"),
            ("https://example.com/dir/", "dir"),
            ("https://example.com/", "__unnamed__"),
            ("https://example.com", "__unnamed__"),
            ("http://h:8080/with%20space", "with space"),
            ("http://h/a/..", "__unnamed__"),
        ] {
            assert_eq!(file_name_for(url), name, "{url}");
        }
    }

    #[test]
    fn passwords_are_redacted_from_urls() {
        let check = |url: &str, want: &str| assert_eq!(redact_password(url), want, "{url}");
        check(
            "https://user:secret@host/a/b?q=1",
            "https://user:xxxxx@host/a/b?q=1",
        );
        check("https://user:@host/", "https://user:xxxxx@host/");
        check("http://u:p:q@h:8080", "http://u:xxxxx@h:8080");
        check("https://a:b@c@host/x", "https://a:xxxxx@host/x");
        check("https://user@host/x", "https://user@host/x");
        check("https://host/a:b@c", "https://host/a:b@c");
        check("https://host/x?u=a:b@c", "https://host/x?u=a:b@c");
        check("not a url", "not a url");
    }

    #[test]
    fn client_messages_quoting_the_url_are_redacted() {
        let url = "https://me:pw@h/x";
        for (text, want) in [
            (
                "bad uri: https://me:pw@h/x is missing host",
                "bad uri: https://me:xxxxx@h/x is missing host",
            ),
            ("io: Connection refused", "io: Connection refused"),
        ] {
            assert_eq!(redact_in(text, url), want);
        }
        assert_eq!(redact_in("me:pw@h", "https://h/x"), "me:pw@h");
    }

    #[test]
    fn git_urls_are_not_http_sources() {
        assert!(is_git_url("https://github.com/moby/buildkit.git"));
        assert!(is_git_url("https://github.com/moby/buildkit.git#v0.12"));
        assert!(is_git_url("git@github.com:moby/buildkit.git"));
        assert!(!is_http_url("https://github.com/moby/buildkit.git"));
        assert!(is_http_url("https://example.com/file.tar.gz"));
        assert!(!is_http_url("file.txt"));
    }
}
