//! `kiln commit`: a new image made of a container's image and one more
//! layer holding the container's writes (moby `daemon/commit.go`,
//! `CreateImageFromContainer`: pause unless told not to, export the
//! writable layer, the config with `--change` applied, one history entry
//! with the author and the comment).

use super::changes::RUNTIME_STUBS;
use super::freezer;
use super::image::LeasedImage;
use super::state::{self, alive, CreateConfig, StateError, Status};
use crate::cache::{Image, Store, StoreError};
use crate::error_chain::Chain;
use crate::image::change::{self, ChangeError};
use crate::image::layer::{diff, extract};
use crate::image::oci::History;
use crate::image::reference::ImageRef;
use std::path::Path;

/// What `kiln commit` was asked for.
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    /// `-c`: Dockerfile instructions applied to the config.
    pub changes: Vec<String>,
    /// `-m`: the history entry's comment.
    pub message: Option<String>,
    /// `-a`: the image's and the history entry's author.
    pub author: Option<String>,
    /// `-p` (docker's default): freeze the container while its writes
    /// are copied, so the layer is one consistent moment.
    pub pause: bool,
    /// The name to give the image, if any.
    pub name: Option<ImageRef>,
}

/// Why a commit failed.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// Lookup or state.
    #[error(transparent)]
    State(#[from] StateError),
    /// The store.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A `--change` instruction.
    #[error(transparent)]
    Change(#[from] ChangeError),
    /// Pausing or thawing the container.
    #[error(transparent)]
    Freezer(#[from] freezer::FreezerError),
    /// A container run on a `--rootfs` directory has no image to build on.
    #[error("container {0} runs on a --rootfs directory, not an image: nothing to commit onto")]
    NoImage(String),
    /// Copying the container's writes.
    #[error("copying the writes of container {id}")]
    Copy {
        /// The container.
        id: String,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Thaws a container frozen for the commit, whatever happens.
struct Frozen(u32);

impl Drop for Frozen {
    fn drop(&mut self) {
        if let Err(e) = freezer::set_frozen(self.0, false) {
            tracing::warn!("thawing the container after commit: {e}", e = Chain(&e));
        }
    }
}

/// Commits container `key` (running, paused or stopped) as a new image.
pub fn commit(store: &Store, key: &str, opts: &CommitOptions) -> Result<Image, CommitError> {
    state::reconcile(store)?;
    let row = state::find(store, key)?;
    let config = CreateConfig::of(&row)?;
    let Some(image_id) = &row.image_id else {
        return Err(CommitError::NoImage(row.id.clone()));
    };
    // Every change is checked before anything is copied.
    let image = store.image_by_id(&image_id.parse().map_err(StoreError::from)?)?;
    let mut image_config = image.config.clone();
    let mut cc = image_config.config.take().unwrap_or_default();
    as_the_container_ran(&mut cc, &config);
    for c in &opts.changes {
        change::apply(&mut cc, c)?;
    }
    if let Some(a) = &opts.author {
        image_config.author = Some(a.clone());
    }
    let held = LeasedImage::lease(store, image, &format!("commit {}", &row.id[..12]))?;

    let frozen = match (Status::parse(&row.state), alive(row.pid)) {
        (Status::Running, Some(init)) if opts.pause => {
            freezer::set_frozen(init.pid, true)?;
            Some(Frozen(init.pid))
        }
        _ => None,
    };
    let upper = state::state_dir(store.root(), &row.id).join("upper");
    let copy = store.scratch_path("commit")?;
    let copied = copy_writes(&upper, &copy, &held.layers);
    drop(frozen);
    if let Err(source) = copied {
        let _ = crate::cache::scratch::remove_tree(&copy);
        return Err(CommitError::Copy {
            id: row.id.clone(),
            source,
        });
    }
    let parent = held.image.layers.last().map(|l| l.chain_id.clone());
    let layer = store.add_layer_from_dir(&copy, parent.as_ref())?;

    let created = crate::image::timestamp::now_rfc3339();
    image_config.created = Some(created.clone());
    image_config.config = Some(cc);
    image_config.rootfs.diff_ids.push(layer.diff_id.clone());
    image_config.history.push(History {
        created: Some(created),
        // docker records the container's command here.
        created_by: Some(config.command.join(" ")),
        author: opts.author.clone(),
        comment: opts.message.clone(),
        ..History::default()
    });
    let mut layers = held.image.layers.clone();
    layers.push(layer);
    let names: Vec<ImageRef> = opts.name.iter().cloned().collect();
    Ok(store.write_image(&image_config, &layers, &names)?)
}

/// The config starts from the container's own, as docker's does (moby
/// `daemon/commit.go` merges the container's `Config` into the new
/// image's): its environment with `run -e` (without the `HOSTNAME` the
/// runtime adds) and its command, the arguments after the image's
/// entrypoint.
fn as_the_container_ran(cc: &mut crate::image::oci::ContainerConfig, config: &CreateConfig) {
    let env: Vec<String> = config
        .spec
        .process
        .env
        .iter()
        .filter(|e| !e.starts_with("HOSTNAME="))
        .cloned()
        .collect();
    cc.env = (!env.is_empty()).then_some(env);
    let entrypoint = cc.entrypoint.clone().unwrap_or_default();
    if let Some(args) = config.command.strip_prefix(entrypoint.as_slice()) {
        cc.cmd = (!args.is_empty()).then(|| args.to_vec());
    }
}

/// Copies the upper dir `upper` into the new directory `dest` in the
/// layer format (a tar stream, as the store copies across filesystems),
/// then drops the mount points kiln's init made (they are not the
/// container's writes; docker keeps them in its init layer).
fn copy_writes(
    upper: &Path,
    dest: &Path,
    lowers: &[std::path::PathBuf],
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    std::fs::create_dir(dest)?;
    if !upper.exists() {
        return Ok(()); // created, never started: an empty layer
    }
    let (tx, rx) = std::os::unix::net::UnixStream::pair()?;
    let src = upper.to_path_buf();
    // The live upper dir is only read (no xattr stripping).
    let writer = std::thread::spawn(move || {
        diff::write_tar(&src, tx, diff::DiffOptions::default()).map(|_| ())
    });
    let extracted = extract::extract(rx, dest);
    writer
        .join()
        .map_err(|_| std::io::Error::other("tar writer panicked"))??;
    extracted?;
    for stub in RUNTIME_STUBS.iter().rev() {
        let rel = &stub[1..];
        let path = dest.join(rel);
        let in_base = lowers
            .iter()
            .any(|l| std::fs::symlink_metadata(l.join(rel)).is_ok());
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if in_base {
            continue;
        }
        if meta.is_dir() {
            let _ = std::fs::remove_dir(&path); // only when empty
        } else if meta.is_file() && meta.len() == 0 {
            let _ = std::fs::remove_file(&path);
        }
    }
    Ok(())
}
