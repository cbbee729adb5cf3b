//! `--provenance` / `--sbom`: what the build knows, handed to
//! [`crate::attest`], and where the documents go.
//!
//! Like BuildKit, attestations travel with an image in an index (a push,
//! `-o type=oci`) or as files beside an exported filesystem (`-o
//! type=local|tar`). kiln's store keeps one manifest per image, as docker's
//! classic image store does, where buildx's docker driver refuses
//! attestations ("Attestation is not supported for the docker driver");
//! so a build whose only outputs are the store (or a `type=docker`
//! archive, which `docker load` reads through `manifest.json`) is refused
//! the same way, before anything runs.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use crate::attest::provenance::{BuildFacts, BuildStep, Material};
use crate::attest::{self, AttestOptions, Predicate};
use crate::frontend::dockerfile::BuildPlan;
use crate::image::oci::{Descriptor, Platform};
use crate::image::timestamp::format_rfc3339;
use crate::image::{Digest, ImageRef};
use crate::solver::{MountKind, Network, Op};
use crate::transfer::Attached;

use super::export::Export;
use super::BuildOptions;

/// Why attestations cannot be made as asked.
#[derive(Debug, thiserror::Error)]
pub enum AttestError {
    #[error("attestations need an output that can hold them: push the image (--push, -o type=registry) or export it (-o type=oci|local|tar); kiln's store, like docker's classic image store (buildx: \"Attestation is not supported for the docker driver\"), keeps one manifest per image")]
    NoCarrier,
    #[error("scanning the image for its SBOM")]
    View(#[from] crate::exec::stack_view::ViewError),
    #[error("hashing {path} for the attestations' subjects")]
    Hash {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// The attestations of one build, made once and stated about each output.
#[derive(Debug, Clone)]
pub struct Attestations {
    pub predicates: Vec<Predicate>,
    /// The image's platform (the subjects' package URLs carry it).
    pub platform: Platform,
}

/// Refuses attestations no output can carry (see the module doc).
pub fn check_outputs(opts: &BuildOptions, push: bool) -> Result<(), AttestError> {
    let carried = push
        || opts.exports.iter().any(|e| {
            matches!(
                e,
                Export::Oci { .. } | Export::Local { .. } | Export::Tar { .. }
            )
        });
    if opts.attest.any() && !carried {
        return Err(AttestError::NoCarrier);
    }
    Ok(())
}

impl Attestations {
    /// The attachment of these attestations to an image manifest named
    /// `names`: one attestation manifest.
    pub fn attach(&self, manifest: &Descriptor, names: &[ImageRef]) -> Vec<Attached> {
        if self.predicates.is_empty() {
            return Vec::new();
        }
        let a = attest::attach(&self.predicates, &manifest.digest, names, &self.platform);
        vec![Attached {
            descriptor: a.descriptor,
            manifest: a.manifest,
            blobs: a.blobs,
        }]
    }

    /// The statement files BuildKit's local and tar exporters write beside
    /// the filesystem at `root`: each predicate about every regular file
    /// (its path and sha256), indented by two spaces (moby/buildkit
    /// `exporter/local/fs.go`, `CreateFS`).
    pub fn files(&self, root: &Path) -> Result<Vec<(String, Vec<u8>)>, AttestError> {
        if self.predicates.is_empty() {
            return Ok(Vec::new());
        }
        let mut subjects = Vec::new();
        file_subjects(root, root, &mut subjects)?;
        Ok(self
            .predicates
            .iter()
            .map(|p| {
                let st = p.about(subjects.clone());
                (
                    p.file_name.clone(),
                    serde_json::to_vec_pretty(&st).unwrap_or_default(),
                )
            })
            .collect())
    }
}

/// Every regular file under `dir`, sorted, never through a symlink.
fn file_subjects(
    root: &Path,
    dir: &Path,
    out: &mut Vec<attest::Subject>,
) -> Result<(), AttestError> {
    let io = |p: &Path| {
        let path = p.display().to_string();
        move |source| AttestError::Hash { path, source }
    };
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(io(dir))?
        .filter_map(Result::ok)
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let ft = e.file_type().map_err(io(&path))?;
        if ft.is_dir() {
            file_subjects(root, &path, out)?;
        } else if ft.is_file() {
            let mut hasher = <sha2::Sha256 as sha2::Digest>::new();
            let mut f = std::fs::File::open(&path).map_err(io(&path))?;
            let mut buf = vec![0u8; 1 << 16];
            loop {
                let n = f.read(&mut buf).map_err(io(&path))?;
                if n == 0 {
                    break;
                }
                sha2::Digest::update(&mut hasher, &buf[..n]);
            }
            let digest = Digest::from_sha256_bytes(&sha2::Digest::finalize(hasher));
            let rel = path.strip_prefix(root).unwrap_or(&path);
            out.push(attest::Subject::new(&rel.to_string_lossy(), &digest));
        }
    }
    Ok(())
}

/// What the build knows for a provenance: BuildKit's frontend attributes
/// as buildx sends them (docker/buildx `build/opt.go`, `toSolveOpt`:
/// `build-arg:`, `label:`, `target`, `no-cache`, `force-network-mode`;
/// `filename` from `-f`), the locals, the base images reachable from the
/// target with their digests and the files `ADD` downloaded, the secrets and SSH agents its steps mount,
/// whether any step had a network, and (for `mode=max`) the steps.
pub struct Facts<'a> {
    pub store: &'a crate::cache::Store,
    pub opts: &'a BuildOptions,
    pub plan: &'a BuildPlan,
    /// Base images as the Dockerfile named them, with the manifest digest
    /// each resolved to.
    pub bases: &'a [(ImageRef, Digest)],
    /// When the build started (Unix seconds, nanoseconds).
    pub started: (i64, u32),
}

impl Facts<'_> {
    /// The facts, `finished` being now.
    pub fn collect(&self) -> BuildFacts {
        let opts = self.opts;
        let mut args = BTreeMap::new();
        for (k, v) in &opts.build_args {
            args.insert(format!("build-arg:{k}"), v.clone());
        }
        for (k, v) in &opts.labels {
            args.insert(format!("label:{k}"), v.clone());
        }
        if let Some(t) = &opts.target {
            args.insert("target".into(), t.clone());
        }
        if opts.no_cache {
            args.insert("no-cache".into(), String::new());
        }
        match opts.network {
            crate::runtime::Network::Host => {
                args.insert("force-network-mode".into(), "host".into());
            }
            crate::runtime::Network::None => {
                args.insert("force-network-mode".into(), "none".into());
            }
            _ => {}
        }
        args.insert("filename".into(), super::dockerfile_name(opts));
        let mut locals = Vec::new();
        if opts.context.is_some() {
            locals.push("context".to_string());
        }
        locals.push("dockerfile".to_string());
        let mut facts = BuildFacts {
            args,
            locals,
            started: format_rfc3339(self.started.0, self.started.1),
            finished: now(),
            invocation_id: invocation_id(),
            builder_platform: Platform::host().to_string(),
            dockerfile: Some((super::dockerfile_name(opts), opts.dockerfile.clone())),
            ..Default::default()
        };
        let Some(target) = self.plan.target else {
            return facts;
        };
        let reachable = self.plan.graph.reachable_from(target).unwrap_or_default();
        let mut index = BTreeMap::new();
        for id in &reachable {
            let Some(v) = self.plan.graph.get(*id) else {
                continue;
            };
            match v.op() {
                Op::Image(src) => facts
                    .materials
                    .push(self.material(&src.reference, &src.platform)),
                // `ADD <url>`: BuildKit's HTTP materials (the URL and the
                // digest of what was downloaded).
                Op::Http(src) => {
                    let (uri, digest) = crate::exec::http_source::material(self.store, src);
                    facts.materials.push(Material { uri, digest });
                }
                Op::Exec(exec) => {
                    facts.network_access |= exec.network != Network::None;
                    for m in &exec.mounts {
                        let (list, id, required) = match &m.kind {
                            MountKind::Secret { id, required, .. } => {
                                (&mut facts.secrets, id, *required)
                            }
                            MountKind::Ssh { id, required, .. } => (&mut facts.ssh, id, *required),
                            _ => continue,
                        };
                        if !list.iter().any(|(i, _)| i == id) {
                            list.push((id.clone(), !required));
                        }
                    }
                }
                _ => {}
            }
            index.insert(*id, facts.steps.len());
            facts.steps.push(BuildStep {
                digest: v.definition_digest().clone(),
                op: serde_json::to_value(v.op()).unwrap_or_default(),
                inputs: v
                    .inputs()
                    .iter()
                    .filter_map(|i| index.get(i).copied())
                    .collect(),
                line: v
                    .info()
                    .location
                    .as_deref()
                    .and_then(|l| l.rsplit(':').next())
                    .and_then(|n| n.parse().ok()),
            });
        }
        // Two stages from one base image name it once.
        let mut seen = Vec::new();
        facts.materials.retain(|m| {
            let new = !seen.contains(m);
            if new {
                seen.push(m.clone());
            }
            new
        });
        facts
    }

    /// A base image as BuildKit's provenance names it: the reference as
    /// written (the tag, not the pin the lowering added) as a package URL
    /// with the platform, and the digest it resolved to (kiln's store
    /// keeps the platform's manifest, so that is the digest, where
    /// BuildKit records what the tag resolved to, an index for a
    /// multi-platform image).
    fn material(&self, pinned: &ImageRef, platform: &Platform) -> Material {
        let digest = pinned.digest().cloned();
        let asked = self
            .bases
            .iter()
            .find(|(r, d)| Some(d) == digest.as_ref() && r.name() == pinned.name())
            .map(|(r, _)| r.clone())
            .unwrap_or_else(|| pinned.clone());
        // A tag names the image (`name:tag` and `name:tag@digest` alike);
        // a reference written with a digest only keeps it.
        let named = match asked.tag() {
            Some(tag) => asked.with_tag(tag),
            None => asked,
        };
        Material {
            uri: attest::purl::image(&named, Some(platform)),
            digest,
        }
    }
}

/// The attestations `options` ask for: the provenance of `facts`, the
/// SBOM of the filesystem at `root` (named `name`).
pub fn make(
    options: &AttestOptions,
    facts: Option<BuildFacts>,
    root: Option<&Path>,
    name: &str,
    epoch: Option<i64>,
) -> Attestations {
    let mut predicates = Vec::new();
    if let (Some(p), Some(f)) = (&options.provenance, facts) {
        predicates.push(attest::provenance::predicate(&f, p));
    }
    if let (Some(_), Some(root)) = (&options.sbom, root) {
        let created = match epoch {
            Some(e) => format_rfc3339(e, 0),
            None => format_rfc3339(now_secs().0, 0),
        };
        predicates.push(attest::sbom_predicate(root, name, &created));
    }
    Attestations {
        predicates,
        platform: Platform::host(),
    }
}

/// Unix seconds and nanoseconds now.
pub fn now_secs() -> (i64, u32) {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (d.as_secs() as i64, d.subsec_nanos())
}

fn now() -> String {
    let (s, n) = now_secs();
    format_rfc3339(s, n)
}

/// A build invocation ID as BuildKit's `identity.NewID` makes them: 25
/// base-36 characters of randomness.
fn invocation_id() -> String {
    let mut bytes = [0u8; 16];
    let random = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    let mut n = u128::from_le_bytes(bytes);
    if random.is_err() {
        let (s, ns) = now_secs();
        n = (s as u128) << 32 ^ ns as u128 ^ (std::process::id() as u128) << 96;
    }
    let mut out = String::with_capacity(25);
    for _ in 0..25 {
        let d = (n % 36) as u32;
        n /= 36;
        out.push(char::from_digit(d, 36).unwrap_or('0'));
    }
    out
}
