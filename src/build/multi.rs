//! `kiln build --platform linux/amd64,linux/arm64`: one image per
//! platform, then an OCI image index over them, named and pushed as one
//! image (BuildKit's exporter: moby/buildkit
//! `exporter/containerimage/writer.go`, `Commit`, one manifest per
//! platform in the order asked, then the index).
//!
//! The platforms are built at once, each in its own thread with its own
//! solve, on the shared build cache: a step they share (a
//! `FROM --platform=$BUILDPLATFORM` stage, a context read) has one cache
//! key, and the store's per-key step lock lets one build run it while the
//! other waits and takes the result (BuildKit gets the same by solving
//! them in one graph). When one platform fails the others are cancelled
//! and the build fails with that platform's error, as in BuildKit, whose
//! Dockerfile frontend builds each target platform in one `errgroup`
//! (moby/buildkit `frontend/dockerui/build.go`, `Client.Build`: the first
//! error cancels the group's context and is the one returned).

use std::sync::{Arc, Mutex};

use super::publish::{self, Publish};
use super::{build, BuildError, BuildOptions, BuildResult, Export};
use crate::cache::Store;
use crate::image::oci::{image_index, Descriptor, Platform};
use crate::image::{Digest, ImageRef};
use crate::solver::progress::Numbering;
use crate::solver::CancelToken;

/// What the builds of one multi-platform build share.
#[derive(Debug, Clone, Default)]
pub struct PlatformSet {
    /// Cancelled when one platform fails: stops the others' solves.
    pub cancel: CancelToken,
    /// Their plain progress lines go to one stderr: one `#N` numbering.
    pub numbers: Numbering,
}

/// What a multi-platform build made.
#[derive(Debug)]
pub struct MultiBuild {
    /// The index's digest (what `--iidfile` gets, as with buildx).
    pub index: Digest,
    /// Each platform's build, in the order asked.
    pub platforms: Vec<(Platform, BuildResult)>,
    /// The names the index got.
    pub names: Vec<ImageRef>,
}

/// Builds `opts` for each of `platforms` (two or more, normalized,
/// distinct), records the index under the build's names and pushes it
/// when asked.
pub fn build_platforms(
    store: Arc<Store>,
    opts: &BuildOptions,
    platforms: &[Platform],
) -> Result<MultiBuild, BuildError> {
    let publish = Publish::plan(&opts.tags, &opts.exports)?;
    super::attestations::check_outputs(opts, publish.push)?;
    for e in &opts.exports {
        match e {
            Export::Image(_) => {}
            // Written from the store by name, as `kiln save` writes an
            // index (`transfer::archive`).
            Export::Oci { .. } | Export::Docker { .. } if !publish.names.is_empty() => {}
            Export::Oci { .. } | Export::Docker { .. } => {
                return Err(BuildError::Setup(format!(
                    "--output {}: a multi-platform archive needs a name for its index (-t NAME)",
                    export_kind(e)
                )))
            }
            Export::Local { .. } | Export::Tar { .. } => {
                return Err(BuildError::Setup(format!(
                    "--output {}: a multi-platform build exports only images (the store, --push, type=registry, type=oci, type=docker) yet",
                    export_kind(e)
                )))
            }
        }
    }
    let built = build_each(&store, opts, platforms)?;
    let mut manifests = Vec::with_capacity(built.len());
    let mut members = Vec::with_capacity(built.len());
    for (platform, result) in &built {
        let image = result
            .image
            .as_ref()
            .ok_or_else(|| BuildError::Setup(format!("the {platform} image was not stored")))?;
        let m = publish::stored_manifest(&store, image)?;
        manifests.push((
            Descriptor::new(&m.media_type, m.digest, m.size),
            platform.clone(),
        ));
        members.push(image.id.clone());
    }
    let index = image_index::assemble(&manifests, &[]);
    let bytes = image_index::to_bytes(&index);
    // Single-image commands (`kiln run NAME`) see the host's platform
    // when it was built, else the first.
    let host = super::host_platform();
    let default = built
        .iter()
        .position(|(p, _)| p.runs_on(&host).is_some())
        .unwrap_or(0);
    let digest = store.commit_index(&bytes, &members, &members[default], &publish.names)?;
    // Each platform's attestations, attached to its manifest as pushed or
    // written (found by the manifest's platform: its digest may change
    // when layers are compressed on the way).
    let attestations = |d: &Descriptor| -> Vec<crate::transfer::Attached> {
        let Some(platform) = &d.platform else {
            return Vec::new();
        };
        built
            .iter()
            .find(|(p, _)| p == platform)
            .and_then(|(_, r)| r.attestations.as_ref())
            .map(|a| a.attach(d, &publish.names))
            .unwrap_or_default()
    };
    for e in &opts.exports {
        let (format, options, dest, attach) = match e {
            Export::Oci { dest, options } => {
                (crate::transfer::archive::Format::Oci, options, dest, true)
            }
            Export::Docker { dest, options } => (
                crate::transfer::archive::Format::Docker,
                options,
                dest,
                false,
            ),
            _ => continue,
        };
        if let Some(image) = &built[default].1.image {
            let attach: crate::transfer::attached::Attach<'_> = match attach {
                true => &attestations,
                false => &crate::transfer::attached::nothing,
            };
            super::export::archive(&store, image, &publish.names, format, options, dest, attach)?;
        }
    }
    publish.push(
        &store,
        &super::registry_options(&store, opts)?,
        &progress(opts),
        &attestations,
    )?;
    Ok(MultiBuild {
        index: digest,
        platforms: built,
        names: publish.names,
    })
}

/// Builds each platform in its own thread; the results in the order of
/// `platforms`, or the first platform error.
fn build_each(
    store: &Arc<Store>,
    opts: &BuildOptions,
    platforms: &[Platform],
) -> Result<Vec<(Platform, BuildResult)>, BuildError> {
    let set = PlatformSet::default();
    // The first failure; the others' errors are mostly "cancelled" and
    // say nothing new.
    let failed: Mutex<Option<BuildError>> = Mutex::new(None);
    let results: Vec<Option<BuildResult>> = std::thread::scope(|scope| {
        let threads: Vec<_> = platforms
            .iter()
            .map(|platform| {
                let mut one = opts.clone();
                one.platform = platform.clone();
                // Each platform's image is stored unnamed; the names go to
                // the index.
                one.tags.clear();
                one.exports.clear();
                // Its attestations go into the index, attached by the caller.
                one.index_member = true;
                one.platform_set = Some(set.clone());
                let (store, set, failed) = (store.clone(), &set, &failed);
                scope.spawn(move || match build(store, &one) {
                    Ok(result) => Some(result),
                    Err(e) => {
                        let mut first = failed.lock().unwrap_or_else(|e| e.into_inner());
                        if first.is_none() {
                            *first = Some(for_platform(platform, e));
                        }
                        drop(first);
                        set.cancel.cancel();
                        None
                    }
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|t| {
                t.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    if let Some(e) = failed.into_inner().unwrap_or_else(|e| e.into_inner()) {
        return Err(e);
    }
    Ok(platforms
        .iter()
        .cloned()
        .zip(results.into_iter().flatten())
        .collect())
}

/// `e` naming the platform it happened for: a step's message starts with
/// it (the CLI shows a step's message with its excerpt); a cancelled
/// build stays [`BuildError::Interrupted`] for its exit status.
fn for_platform(platform: &Platform, e: BuildError) -> BuildError {
    match e {
        BuildError::Step {
            location,
            excerpt,
            message,
            log_tail,
        } => BuildError::Step {
            location,
            excerpt,
            message: format!("{platform}: {message}"),
            log_tail,
        },
        BuildError::Interrupted(sig) => BuildError::Interrupted(sig),
        e => BuildError::Platform {
            platform: platform.to_string(),
            source: Box::new(e),
        },
    }
}

fn progress(opts: &BuildOptions) -> crate::transfer::progress::Progress {
    match opts.progress {
        crate::solver::ProgressMode::Quiet => crate::transfer::progress::Progress::silent(),
        _ => crate::transfer::progress::Progress::for_stderr(),
    }
}

/// The `type=` an export was given as.
fn export_kind(e: &Export) -> &'static str {
    match e {
        Export::Image(_) => "type=image",
        Export::Local { .. } => "type=local",
        Export::Tar { .. } => "type=tar",
        Export::Oci { .. } => "type=oci",
        Export::Docker { .. } => "type=docker",
    }
}
