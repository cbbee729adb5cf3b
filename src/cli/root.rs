//! Where kiln keeps its store when `--root` is not given.

use std::path::PathBuf;

/// `$KILN_ROOT`, else `/var/lib/kiln` for root, else `$XDG_DATA_HOME/kiln`
/// (falling back to `~/.local/share/kiln` as the XDG spec says).
pub fn default_root() -> PathBuf {
    resolve_root(
        std::env::var_os("KILN_ROOT").map(PathBuf::from),
        nix::unistd::geteuid().is_root(),
        std::env::var_os("XDG_DATA_HOME").map(PathBuf::from),
        std::env::var_os("HOME").map(PathBuf::from),
    )
}

fn resolve_root(
    kiln_root: Option<PathBuf>,
    is_root: bool,
    xdg_data_home: Option<PathBuf>,
    home: Option<PathBuf>,
) -> PathBuf {
    if let Some(dir) = kiln_root.filter(|d| !d.as_os_str().is_empty()) {
        return dir;
    }
    if is_root {
        return PathBuf::from("/var/lib/kiln");
    }
    let data = xdg_data_home
        .filter(|d| d.is_absolute())
        .or_else(|| home.map(|h| h.join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    data.join("kiln")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_var_wins() {
        let r = resolve_root(Some("/x".into()), true, None, None);
        assert_eq!(r, PathBuf::from("/x"));
    }

    #[test]
    fn root_user_uses_var_lib() {
        assert_eq!(
            resolve_root(None, true, None, None),
            PathBuf::from("/var/lib/kiln")
        );
    }

    #[test]
    fn user_uses_xdg_then_home() {
        let r = resolve_root(None, false, Some("/d".into()), Some("/h".into()));
        assert_eq!(r, PathBuf::from("/d/kiln"));
        let r = resolve_root(None, false, None, Some("/h".into()));
        assert_eq!(r, PathBuf::from("/h/.local/share/kiln"));
        // A relative XDG_DATA_HOME is invalid per the spec and ignored.
        let r = resolve_root(None, false, Some("rel".into()), Some("/h".into()));
        assert_eq!(r, PathBuf::from("/h/.local/share/kiln"));
    }
}
