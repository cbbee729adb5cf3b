//! npm packages: a `node_modules/<name>/package.json` (or
//! `node_modules/@scope/<name>/package.json`) per installed package, and
//! `package-lock.json` files (lockfile v2/v3 `packages` keyed by
//! `node_modules/...` paths, v1 `dependencies` by name; npm docs,
//! "package-lock.json").

use serde_json::Value;

/// One npm package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NpmPackage {
    pub name: String,
    pub version: String,
    pub license: Option<String>,
}

/// The package a `package.json` describes; `None` without name or version.
pub fn parse_package_json(bytes: &[u8]) -> Option<NpmPackage> {
    let v: Value = serde_json::from_slice(bytes).ok()?;
    Some(NpmPackage {
        name: v["name"].as_str().filter(|s| !s.is_empty())?.to_string(),
        version: v["version"].as_str().filter(|s| !s.is_empty())?.to_string(),
        license: license(&v["license"]),
    })
}

/// The packages a lockfile pins (the root project itself left out).
pub fn parse_lock(bytes: &[u8]) -> Vec<NpmPackage> {
    let Ok(v) = serde_json::from_slice::<Value>(bytes) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if let Some(packages) = v["packages"].as_object() {
        for (path, p) in packages {
            // "" is the project; the name is what follows the last
            // `node_modules/` (scoped names keep their `@scope/`).
            let Some(idx) = path.rfind("node_modules/") else {
                continue;
            };
            let name = p["name"]
                .as_str()
                .unwrap_or(&path[idx + "node_modules/".len()..]);
            if let Some(version) = p["version"].as_str() {
                out.push(NpmPackage {
                    name: name.to_string(),
                    version: version.to_string(),
                    license: license(&p["license"]),
                });
            }
        }
    } else if let Some(deps) = v["dependencies"].as_object() {
        for (name, p) in deps {
            if let Some(version) = p["version"].as_str() {
                out.push(NpmPackage {
                    name: name.clone(),
                    version: version.to_string(),
                    license: None,
                });
            }
        }
    }
    out
}

/// `"MIT"` or the legacy `{"type": "MIT"}`.
fn license(v: &Value) -> Option<String> {
    v.as_str()
        .or_else(|| v["type"].as_str())
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// The purl namespace and name of a package (`@scope/name` → `@scope`, `name`).
pub fn purl_parts(name: &str) -> (Option<&str>, &str) {
    match name.split_once('/') {
        Some((scope, n)) if scope.starts_with('@') => (Some(scope), n),
        _ => (None, name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lockfile_v3_packages() {
        let pkgs = parse_lock(include_bytes!(
            "../../../testdata/attest/npm/package-lock.json"
        ));
        let got: Vec<(&str, &str)> = pkgs
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("@babel/core", "7.24.0"),
                ("left-pad", "1.3.0"),
                ("nested", "0.1.0")
            ]
        );
        assert_eq!(pkgs[1].license.as_deref(), Some("WTFPL"));
        assert_eq!(purl_parts("@babel/core"), (Some("@babel"), "core"));
    }

    #[test]
    fn package_json_of_an_installed_module() {
        let p = parse_package_json(include_bytes!("../../../testdata/attest/npm/package.json"))
            .unwrap();
        assert_eq!((p.name.as_str(), p.version.as_str()), ("express", "4.19.2"));
        assert_eq!(p.license.as_deref(), Some("MIT"));
        assert!(parse_package_json(br#"{"name":"x"}"#).is_none());
        assert!(parse_package_json(b"not json").is_none());
        let legacy = parse_package_json(br#"{"name":"x","version":"1","license":{"type":"BSD"}}"#);
        assert_eq!(legacy.unwrap().license.as_deref(), Some("BSD"));
    }
}
