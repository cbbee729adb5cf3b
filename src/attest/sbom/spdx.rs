//! The SPDX 2.3 JSON document of a package list (spdx.github.io
//! `spdx-spec/v2.3`: document creation information, package information
//! with `PACKAGE-MANAGER`/`purl` external references, relationships).

use serde_json::{json, Value};

use super::{Ecosystem, Package};
use crate::image::Digest;

/// The document about `packages` of the image named `name`, created at
/// `created` (RFC 3339, seconds). Its namespace is made unique by the
/// digest of what it lists and when.
pub fn document(packages: &[Package], name: &str, created: &str) -> Value {
    let mut listing = String::new();
    for p in packages {
        listing.push_str(&p.purl);
        listing.push('\n');
    }
    listing.push_str(created);
    let unique = Digest::sha256_of(listing.as_bytes());
    let pkgs: Vec<Value> = packages.iter().map(package).collect();
    let relationships: Vec<Value> = packages
        .iter()
        .map(|p| {
            json!({
                "spdxElementId": "SPDXRef-DOCUMENT",
                "relationshipType": "DESCRIBES",
                "relatedSpdxElement": spdx_id(p),
            })
        })
        .collect();
    json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": name,
        "documentNamespace": format!("https://kiln.invalid/spdx/{}-{}", sanitize(name), unique.hex()),
        "creationInfo": {
            "created": created,
            "creators": [format!("Tool: kiln-{}", env!("CARGO_PKG_VERSION"))],
        },
        "packages": pkgs,
        "relationships": relationships,
    })
}

fn package(p: &Package) -> Value {
    let source = match p.ecosystem {
        Ecosystem::Deb => "acquired package info from DPKG DB",
        Ecosystem::Apk => "acquired package info from APK DB",
        Ecosystem::Python => "acquired package info from installed python package manifest file",
        Ecosystem::Npm => "acquired package info from installed node module manifest file",
    };
    json!({
        "name": p.name,
        "SPDXID": spdx_id(p),
        "versionInfo": p.version,
        "supplier": p.supplier.as_deref().unwrap_or("NOASSERTION"),
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": p.license.as_deref().map(expression).unwrap_or_else(|| "NOASSERTION".into()),
        "copyrightText": "NOASSERTION",
        "sourceInfo": format!("{source}: {}", p.location),
        "externalRefs": [{
            "referenceCategory": "PACKAGE-MANAGER",
            "referenceType": "purl",
            "referenceLocator": p.purl,
        }],
    })
}

/// `SPDXRef-Package-<ecosystem>-<name>-<16 hex of the purl's digest>`:
/// unique per package and within SPDX's `[A-Za-z0-9.-]` alphabet.
fn spdx_id(p: &Package) -> String {
    let kind = match p.ecosystem {
        Ecosystem::Deb => "deb",
        Ecosystem::Apk => "apk",
        Ecosystem::Python => "python",
        Ecosystem::Npm => "npm",
    };
    let d = Digest::sha256_of(p.purl.as_bytes());
    format!(
        "SPDXRef-Package-{kind}-{}-{}",
        sanitize(&p.name),
        &d.hex()[..16]
    )
}

/// A declared license as an SPDX license expression: kept when it already
/// reads as one (ids joined by `AND`/`OR`/`WITH`), else a `LicenseRef-`
/// of its text (`Apache 2.0` → `LicenseRef-Apache-2.0`).
pub fn expression(text: &str) -> String {
    let is_id = |t: &str| {
        !t.is_empty()
            && t.trim_matches(|c| c == '(' || c == ')')
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+' | ':'))
    };
    let tokens: Vec<&str> = text.split_whitespace().collect();
    let valid = !tokens.is_empty()
        && tokens.iter().enumerate().all(|(i, t)| {
            if i % 2 == 1 {
                matches!(*t, "AND" | "OR" | "WITH")
            } else {
                is_id(t)
            }
        })
        && tokens.len() % 2 == 1;
    if valid {
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    } else {
        format!("LicenseRef-{}", sanitize(text))
    }
}

/// Keeps `[A-Za-z0-9.-]`, the rest as `-`.
fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn licenses_become_expressions() {
        assert_eq!(expression("MIT"), "MIT");
        assert_eq!(expression("MPL-2.0 AND MIT"), "MPL-2.0 AND MIT");
        assert_eq!(
            expression("GPL-2.0-or-later WITH Classpath-exception-2.0"),
            "GPL-2.0-or-later WITH Classpath-exception-2.0"
        );
        assert_eq!(expression("Apache 2.0"), "LicenseRef-Apache-2.0");
        assert_eq!(expression("MIT AND"), "LicenseRef-MIT-AND");
    }

    #[test]
    fn document_lists_packages_with_purls() {
        let p = Package {
            ecosystem: Ecosystem::Deb,
            name: "libc6".into(),
            version: "2.36-9".into(),
            license: Some("LGPL-2.1+".into()),
            supplier: None,
            purl: "pkg:deb/debian/libc6@2.36-9?arch=amd64".into(),
            location: "/var/lib/dpkg/status".into(),
        };
        let d = document(&[p], "sbom", "2026-01-01T00:00:00Z");
        assert_eq!(d["spdxVersion"], "SPDX-2.3");
        assert_eq!(d["SPDXID"], "SPDXRef-DOCUMENT");
        let pkg = &d["packages"][0];
        assert_eq!(pkg["name"], "libc6");
        assert_eq!(pkg["versionInfo"], "2.36-9");
        assert_eq!(pkg["licenseDeclared"], "LGPL-2.1+");
        assert_eq!(pkg["externalRefs"][0]["referenceType"], "purl");
        assert_eq!(
            pkg["externalRefs"][0]["referenceLocator"],
            "pkg:deb/debian/libc6@2.36-9?arch=amd64"
        );
        assert_eq!(d["relationships"][0]["relatedSpdxElement"], pkg["SPDXID"]);
        assert!(pkg["SPDXID"]
            .as_str()
            .unwrap()
            .starts_with("SPDXRef-Package-deb-libc6-"));
    }
}
