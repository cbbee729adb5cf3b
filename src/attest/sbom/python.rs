//! Python distributions: the core metadata of each installed one
//! (`*.dist-info/METADATA`, `*.egg-info/PKG-INFO` or an `*.egg-info`
//! file), RFC 822 headers up to the first blank line (Python packaging
//! "Core metadata specifications"). `License-Expression` (metadata 2.4)
//! wins over the free-text `License`.

/// One installed Python distribution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PythonPackage {
    pub name: String,
    pub version: String,
    pub license: Option<String>,
}

/// The distribution a metadata file describes; `None` without a name.
pub fn parse_metadata(text: &str) -> Option<PythonPackage> {
    let mut name = None;
    let mut version = String::new();
    let mut license = None;
    let mut expression = None;
    for line in text.lines() {
        if line.trim().is_empty() {
            break; // the body (the long description) starts here
        }
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim().to_string();
        match k.trim().to_ascii_lowercase().as_str() {
            "name" => name = Some(v),
            "version" => version = v,
            "license" if !v.is_empty() && v != "UNKNOWN" => license = Some(v),
            "license-expression" if !v.is_empty() => expression = Some(v),
            _ => {}
        }
    }
    Some(PythonPackage {
        name: name.filter(|n| !n.is_empty())?,
        version,
        license: expression.or(license),
    })
}

/// The purl name of a distribution: lower case, `_` as `-` (purl-spec
/// `PURL-TYPES.rst`, pypi).
pub fn purl_name(name: &str) -> String {
    name.to_ascii_lowercase().replace('_', "-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dist_info_metadata_headers_only() {
        let p = parse_metadata(include_str!("../../../testdata/attest/python/METADATA")).unwrap();
        assert_eq!(p.name, "requests");
        assert_eq!(p.version, "2.31.0");
        // The `License:` line in the description body is not a header.
        assert_eq!(p.license.as_deref(), Some("Apache 2.0"));
    }

    #[test]
    fn license_expression_wins_and_names_normalize() {
        let p = parse_metadata(include_str!("../../../testdata/attest/python/PKG-INFO")).unwrap();
        assert_eq!(p.license.as_deref(), Some("PSF-2.0"));
        assert_eq!(purl_name(&p.name), "typing-extensions");
        assert!(parse_metadata("Version: 1\n").is_none());
    }
}
