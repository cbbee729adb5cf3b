//! Debian's package database: `var/lib/dpkg/status` (deb822 paragraphs,
//! one per package; dpkg(1) `Status:` says whether it is installed) and
//! distroless's `var/lib/dpkg/status.d/<name>` files (the same paragraphs
//! without `Status:`, one file per package, `*.md5sums` beside them), as
//! syft's dpkg cataloger reads them (anchore/syft `syft/pkg/cataloger/
//! debian/parse_dpkg_db.go`).

/// One installed Debian package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebPackage {
    pub name: String,
    pub version: String,
    pub architecture: String,
    /// The source package when it differs (`Source: glibc (2.36-9)` → `glibc`).
    pub source: Option<String>,
    pub maintainer: Option<String>,
}

/// The installed packages of a status file. A paragraph with a `Status:`
/// that does not end in `installed` (removed, config-files, half-installed)
/// is left out; one without `Status:` (status.d) is installed.
pub fn parse(text: &str) -> Vec<DebPackage> {
    paragraphs(text)
        .into_iter()
        .filter_map(|fields| {
            let get = |k: &str| {
                fields
                    .iter()
                    .find(|(f, _)| f.eq_ignore_ascii_case(k))
                    .map(|(_, v)| v.trim().to_string())
            };
            if let Some(status) = get("Status") {
                if status.split_whitespace().last() != Some("installed") {
                    return None;
                }
            }
            let name = get("Package").filter(|n| !n.is_empty())?;
            let source = get("Source")
                .and_then(|s| s.split_whitespace().next().map(str::to_string))
                .filter(|s| s != &name);
            Some(DebPackage {
                name,
                version: get("Version").unwrap_or_default(),
                architecture: get("Architecture").unwrap_or_default(),
                source,
                maintainer: get("Maintainer"),
            })
        })
        .collect()
}

/// deb822 paragraphs: `Field: value` lines, continuation lines starting
/// with a space or tab, paragraphs separated by blank lines.
pub fn paragraphs(text: &str) -> Vec<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut cur: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
        } else if line.starts_with(' ') || line.starts_with('\t') {
            if let Some((_, v)) = cur.last_mut() {
                v.push('\n');
                v.push_str(line.trim());
            }
        } else if let Some((k, v)) = line.split_once(':') {
            cur.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// The licenses a machine-readable `debian/copyright` (DEP-5) declares:
/// the first word of each `License:` field, in order, once each.
pub fn copyright_licenses(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for p in paragraphs(text) {
        for (k, v) in p {
            if k.eq_ignore_ascii_case("License") {
                if let Some(first) = v.lines().next().map(str::trim).filter(|s| !s.is_empty()) {
                    if !out.iter().any(|o| o == first) {
                        out.push(first.to_string());
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = include_str!("../../../testdata/attest/dpkg/status");

    #[test]
    fn installed_packages_of_a_debian_status_file() {
        let pkgs = parse(STATUS);
        let names: Vec<&str> = pkgs.iter().map(|p| p.name.as_str()).collect();
        // `oldpkg` is deinstalled (config-files only).
        assert_eq!(names, ["base-files", "libc6", "bash"]);
        let libc = &pkgs[1];
        assert_eq!(libc.version, "2.36-9+deb12u4");
        assert_eq!(libc.architecture, "amd64");
        assert_eq!(libc.source.as_deref(), Some("glibc"));
        assert_eq!(
            libc.maintainer.as_deref(),
            Some("GNU Libc Maintainers <debian-glibc@lists.debian.org>")
        );
        // `Source: bash` is the package itself.
        assert_eq!(pkgs[2].source, None);
    }

    #[test]
    fn distroless_status_d_entries_have_no_status_field() {
        let text = include_str!("../../../testdata/attest/dpkg/status.d/tzdata");
        let pkgs = parse(text);
        assert_eq!(pkgs.len(), 1);
        assert_eq!(pkgs[0].name, "tzdata");
        assert_eq!(pkgs[0].version, "2024a-0+deb12u1");
    }

    #[test]
    fn dep5_copyright_licenses() {
        let text = include_str!("../../../testdata/attest/dpkg/copyright");
        assert_eq!(copyright_licenses(text), ["GPL-3+", "BSD-3-clause"]);
    }
}
