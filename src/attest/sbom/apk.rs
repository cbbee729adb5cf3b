//! Alpine's installed database, `lib/apk/db/installed`: one paragraph per
//! package of `X:value` lines (apk-tools `doc/apk-package.5`, the
//! "installed database" keys: `P` name, `V` version, `A` architecture,
//! `L` license, `o` origin, `m` maintainer).

/// One installed Alpine package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApkPackage {
    pub name: String,
    pub version: String,
    pub architecture: String,
    pub license: Option<String>,
    pub origin: Option<String>,
    pub maintainer: Option<String>,
}

/// The packages of an installed database.
pub fn parse(text: &str) -> Vec<ApkPackage> {
    let mut out = Vec::new();
    let mut cur: Option<ApkPackage> = None;
    let empty = || ApkPackage {
        name: String::new(),
        version: String::new(),
        architecture: String::new(),
        license: None,
        origin: None,
        maintainer: None,
    };
    for line in text.lines().chain(std::iter::once("")) {
        if line.trim().is_empty() {
            if let Some(p) = cur.take().filter(|p| !p.name.is_empty()) {
                out.push(p);
            }
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let p = cur.get_or_insert_with(empty);
        let value = value.trim().to_string();
        match key {
            "P" => p.name = value,
            "V" => p.version = value,
            "A" => p.architecture = value,
            "L" => p.license = Some(value).filter(|v| !v.is_empty()),
            "o" => p.origin = Some(value).filter(|v| !v.is_empty()),
            "m" => p.maintainer = Some(value).filter(|v| !v.is_empty()),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alpine_installed_database() {
        let pkgs = parse(include_str!("../../../testdata/attest/apk/installed"));
        let names: Vec<&str> = pkgs.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["musl", "busybox", "ca-certificates-bundle"]);
        assert_eq!(pkgs[0].version, "1.2.4_git20230717-r4");
        assert_eq!(pkgs[0].architecture, "x86_64");
        assert_eq!(pkgs[0].license.as_deref(), Some("MIT"));
        assert_eq!(pkgs[2].origin.as_deref(), Some("ca-certificates"));
        assert_eq!(pkgs[1].license.as_deref(), Some("GPL-2.0-only"));
    }
}
