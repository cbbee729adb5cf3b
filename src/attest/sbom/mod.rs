//! An SBOM of a root filesystem, made in-process: the packages its
//! package databases list (Debian's dpkg, Alpine's apk, Python
//! distributions, npm packages), as the SPDX 2.3 JSON document BuildKit
//! attaches with predicate type `https://spdx.dev/Document` (moby/buildkit
//! `docs/attestations/sbom-protocol.md`; BuildKit runs a scanner image,
//! docker/buildkit-syft-scanner, kiln reads the databases itself).
//!
//! The rootfs is the image's, so it is hostile: fixed paths are resolved
//! inside it ([`crate::fs::path_in_root`]), the walk never follows a
//! symlink, and every file read is bounded ([`MAX_FILE`]).

mod apk;
mod dpkg;
mod npm;
mod python;
pub mod spdx;

use std::path::{Path, PathBuf};

use super::purl::Purl;
use crate::fs::path_in_root::resolve_in_root;

/// The largest database or manifest file read; a bigger one is skipped
/// with a warning (an image could otherwise make the build read gigabytes).
pub const MAX_FILE: u64 = 64 << 20;
/// How deep the walk for Python and npm packages goes.
const MAX_DEPTH: usize = 48;

/// Which ecosystem a package comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Ecosystem {
    Deb,
    Apk,
    Python,
    Npm,
}

/// One package found in the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    pub ecosystem: Ecosystem,
    pub name: String,
    pub version: String,
    /// The license as declared (free text; [`spdx`] makes it an expression).
    pub license: Option<String>,
    /// `Person: ...` / `Organization: ...` when the database says.
    pub supplier: Option<String>,
    pub purl: String,
    /// Where it was found (a path in the image), for `sourceInfo`.
    pub location: String,
}

/// The distribution the image says it is (`/etc/os-release`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct OsRelease {
    id: String,
    version_id: String,
}

/// Every package the databases under `root` list, sorted and without
/// duplicates (a lockfile and an installed `package.json` may both name
/// one).
pub fn scan(root: &Path) -> Vec<Package> {
    let os = os_release(root);
    let mut out = Vec::new();
    deb_packages(root, &os, &mut out);
    apk_packages(root, &os, &mut out);
    walk(root, root, 0, &mut out);
    out.sort_by(|a, b| {
        (a.ecosystem, &a.name, &a.version, &a.location).cmp(&(
            b.ecosystem,
            &b.name,
            &b.version,
            &b.location,
        ))
    });
    out.dedup_by(|a, b| a.ecosystem == b.ecosystem && a.name == b.name && a.version == b.version);
    out
}

/// Reads the file at `rel` inside `root` (symlinks resolved inside it),
/// or `None` when it is missing, not a regular file or too big.
fn read_in_root(root: &Path, rel: &str) -> Option<Vec<u8>> {
    let path = resolve_in_root(root, Path::new(rel)).ok()?;
    read_bounded(&path)
}

/// Reads a regular file (never through a final symlink) of at most
/// [`MAX_FILE`] bytes.
fn read_bounded(path: &Path) -> Option<Vec<u8>> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    if !meta.is_file() {
        return None;
    }
    if meta.len() > MAX_FILE {
        tracing::warn!(path = %path.display(), "sbom: file too big, skipped");
        return None;
    }
    use std::io::Read;
    let mut buf = Vec::with_capacity(meta.len() as usize);
    std::fs::File::open(path)
        .ok()?
        .take(MAX_FILE)
        .read_to_end(&mut buf)
        .ok()?;
    Some(buf)
}

fn os_release(root: &Path) -> OsRelease {
    let text = read_in_root(root, "etc/os-release")
        .or_else(|| read_in_root(root, "usr/lib/os-release"))
        .unwrap_or_default();
    let mut os = OsRelease::default();
    for line in String::from_utf8_lossy(&text).lines() {
        if let Some((k, v)) = line.split_once('=') {
            let v = v.trim().trim_matches('"').trim_matches('\'').to_string();
            match k.trim() {
                "ID" => os.id = v,
                "VERSION_ID" => os.version_id = v,
                _ => {}
            }
        }
    }
    os
}

/// `distro=<id>-<version>` as syft qualifies OS packages.
fn distro(os: &OsRelease) -> String {
    match (os.id.is_empty(), os.version_id.is_empty()) {
        (false, false) => format!("{}-{}", os.id, os.version_id),
        (false, true) => os.id.clone(),
        _ => String::new(),
    }
}

fn deb_packages(root: &Path, os: &OsRelease, out: &mut Vec<Package>) {
    let mut found = Vec::new();
    if let Some(text) = read_in_root(root, "var/lib/dpkg/status") {
        found.extend(
            dpkg::parse(&String::from_utf8_lossy(&text))
                .into_iter()
                .map(|p| (p, "/var/lib/dpkg/status".to_string())),
        );
    }
    if let Ok(dir) = resolve_in_root(root, Path::new("var/lib/dpkg/status.d")) {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        entries.sort();
        for path in entries {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if name.ends_with(".md5sums") {
                continue;
            }
            if let Some(text) = read_bounded(&path) {
                found.extend(
                    dpkg::parse(&String::from_utf8_lossy(&text))
                        .into_iter()
                        .map(|p| (p, format!("/var/lib/dpkg/status.d/{name}"))),
                );
            }
        }
    }
    let namespace = if os.id.is_empty() {
        "debian"
    } else {
        os.id.as_str()
    };
    for (p, location) in found {
        let copyright = read_in_root(root, &format!("usr/share/doc/{}/copyright", p.name))
            .map(|t| dpkg::copyright_licenses(&String::from_utf8_lossy(&t)))
            .unwrap_or_default();
        let purl = Purl::new("deb", &p.name, Some(&p.version))
            .in_namespace(namespace)
            .with("arch", &p.architecture)
            .with("upstream", p.source.as_deref().unwrap_or_default())
            .with("distro", &distro(os))
            .to_string();
        out.push(Package {
            ecosystem: Ecosystem::Deb,
            license: (!copyright.is_empty()).then(|| copyright.join(" AND ")),
            supplier: p.maintainer.map(|m| format!("Person: {m}")),
            name: p.name,
            version: p.version,
            purl,
            location,
        });
    }
}

fn apk_packages(root: &Path, os: &OsRelease, out: &mut Vec<Package>) {
    let Some(text) = read_in_root(root, "lib/apk/db/installed") else {
        return;
    };
    let namespace = if os.id.is_empty() {
        "alpine"
    } else {
        os.id.as_str()
    };
    for p in apk::parse(&String::from_utf8_lossy(&text)) {
        let purl = Purl::new("apk", &p.name, Some(&p.version))
            .in_namespace(namespace)
            .with("arch", &p.architecture)
            .with(
                "upstream",
                p.origin
                    .as_deref()
                    .filter(|o| *o != p.name)
                    .unwrap_or_default(),
            )
            .with("distro", &distro(os))
            .to_string();
        out.push(Package {
            ecosystem: Ecosystem::Apk,
            supplier: p.maintainer.map(|m| format!("Person: {m}")),
            license: p.license,
            name: p.name,
            version: p.version,
            purl,
            location: "/lib/apk/db/installed".to_string(),
        });
    }
}

/// Walks `dir` (never through a symlink) for Python metadata, npm
/// manifests and lockfiles.
fn walk(root: &Path, dir: &Path, depth: usize, out: &mut Vec<Package>) {
    if depth > MAX_DEPTH {
        return;
    }
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = rd.filter_map(Result::ok).collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let Ok(ft) = e.file_type() else { continue };
        let path = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        let rel = format!("/{}", path.strip_prefix(root).unwrap_or(&path).display());
        if depth == 0 && matches!(name.as_str(), "proc" | "sys" | "dev") {
            continue;
        }
        if ft.is_dir() {
            if name.ends_with(".dist-info") {
                python_package(&path.join("METADATA"), &rel, out);
            } else if name.ends_with(".egg-info") {
                python_package(&path.join("PKG-INFO"), &rel, out);
            } else if let Some(parent) = path.parent().and_then(|p| p.file_name()) {
                let parent = parent.to_string_lossy();
                let in_modules = parent == "node_modules"
                    || (parent.starts_with('@')
                        && path
                            .parent()
                            .and_then(|p| p.parent())
                            .and_then(|p| p.file_name())
                            == Some(std::ffi::OsStr::new("node_modules")));
                if in_modules && !name.starts_with('@') && !name.starts_with('.') {
                    npm_package(&path.join("package.json"), &rel, out);
                }
            }
            walk(root, &path, depth + 1, out);
        } else if ft.is_file() {
            if name.ends_with(".egg-info") {
                python_package(&path, &rel, out);
            } else if name == "package-lock.json" && !rel.contains("/node_modules/") {
                if let Some(bytes) = read_bounded(&path) {
                    for p in npm::parse_lock(&bytes) {
                        out.push(npm_entry(p, &rel));
                    }
                }
            }
        }
    }
}

fn python_package(metadata: &Path, location: &str, out: &mut Vec<Package>) {
    let Some(bytes) = read_bounded(metadata) else {
        return;
    };
    if let Some(p) = python::parse_metadata(&String::from_utf8_lossy(&bytes)) {
        out.push(Package {
            ecosystem: Ecosystem::Python,
            purl: Purl::new("pypi", &python::purl_name(&p.name), Some(&p.version)).to_string(),
            name: p.name,
            version: p.version,
            license: p.license,
            supplier: None,
            location: location.to_string(),
        });
    }
}

fn npm_package(manifest: &Path, location: &str, out: &mut Vec<Package>) {
    if let Some(p) = read_bounded(manifest).and_then(|b| npm::parse_package_json(&b)) {
        out.push(npm_entry(p, &format!("{location}/package.json")));
    }
}

fn npm_entry(p: npm::NpmPackage, location: &str) -> Package {
    let (scope, short) = npm::purl_parts(&p.name);
    let mut purl = Purl::new("npm", short, Some(&p.version));
    if let Some(s) = scope {
        purl = purl.in_namespace(s);
    }
    Package {
        ecosystem: Ecosystem::Npm,
        purl: purl.to_string(),
        name: p.name,
        version: p.version,
        license: p.license,
        supplier: None,
        location: location.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A rootfs with every database kind, and a symlink that must not be
    /// followed out of it.
    #[test]
    fn scan_finds_each_ecosystem_and_stays_inside_the_root() {
        let t = std::env::temp_dir().join(format!("kiln-sbom-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&t);
        let root = t.join("root");
        let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/attest");
        let put = |rel: &str, from: &str| {
            let p = root.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::copy(data.join(from), p).unwrap();
        };
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(
            root.join("etc/os-release"),
            "ID=debian\nVERSION_ID=\"12\"\n",
        )
        .unwrap();
        put("var/lib/dpkg/status", "dpkg/status");
        put("var/lib/dpkg/status.d/tzdata", "dpkg/status.d/tzdata");
        put("usr/share/doc/bash/copyright", "dpkg/copyright");
        put(
            "usr/lib/python3/dist-packages/requests-2.31.0.dist-info/METADATA",
            "python/METADATA",
        );
        put("app/package-lock.json", "npm/package-lock.json");
        put("app/node_modules/express/package.json", "npm/package.json");
        // An apk database reached only through a symlink leaving the root.
        let outside = t.join("outside/lib/apk/db");
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::copy(data.join("apk/installed"), outside.join("installed")).unwrap();
        std::os::unix::fs::symlink(t.join("outside/lib"), root.join("lib")).unwrap();

        let pkgs = scan(&root);
        let _ = std::fs::remove_dir_all(&t);
        let purls: Vec<&str> = pkgs.iter().map(|p| p.purl.as_str()).collect();
        assert!(
            purls.contains(
                &"pkg:deb/debian/libc6@2.36-9+deb12u4?arch=amd64&distro=debian-12&upstream=glibc"
            ),
            "{purls:#?}"
        );
        assert!(
            purls.contains(&"pkg:deb/debian/tzdata@2024a-0+deb12u1?arch=all&distro=debian-12"),
            "{purls:#?}"
        );
        assert!(purls.contains(&"pkg:pypi/requests@2.31.0"), "{purls:#?}");
        assert!(
            purls.contains(&"pkg:npm/%40babel/core@7.24.0"),
            "{purls:#?}"
        );
        assert!(purls.contains(&"pkg:npm/express@4.19.2"), "{purls:#?}");
        assert!(
            !purls.iter().any(|p| p.starts_with("pkg:apk/")),
            "followed a symlink out: {purls:#?}"
        );
        let bash = pkgs.iter().find(|p| p.name == "bash").unwrap();
        assert_eq!(bash.license.as_deref(), Some("GPL-3+ AND BSD-3-clause"));
        assert_eq!(
            bash.supplier.as_deref(),
            Some("Person: Matthias Klose <doko@debian.org>")
        );
    }
}
