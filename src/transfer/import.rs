//! `import`: a root filesystem tarball becomes a one-layer image, as
//! `docker import` makes it (host architecture, `linux`, one history entry
//! "Imported from …" unless a message is given, config edited by
//! `--change` instructions).

use crate::cache::{Image, Store, StoreError};
use crate::image::change::{self, ChangeError};
use crate::image::oci::{
    host_architecture, ContainerConfig, History, ImageConfig, Platform, RootFs,
};
use crate::image::reference::ImageRef;
use crate::image::timestamp::now_rfc3339;
use std::io::Read;

/// Why an import failed.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Change(#[from] ChangeError),
    #[error("importing {source_name}")]
    Store {
        source_name: String,
        #[source]
        error: StoreError,
    },
}

/// What to import and how to describe it.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Dockerfile instructions applied to the config (`--change`).
    pub changes: Vec<String>,
    /// History comment (`--message`); default "Imported from <source>".
    pub message: Option<String>,
    /// Where the tarball came from, for the history comment (`-` = stdin,
    /// as docker records it for a file streamed by its CLI).
    pub source: String,
    /// `--platform`: the platform the config names; the host's when
    /// `None` (moby `daemon/images/image_import.go` `ImportImage` sets
    /// the config's OS, architecture and variant from it).
    pub platform: Option<Platform>,
}

/// Imports the tarball read from `input` (gzip, zstd or plain) and tags
/// it with `names`.
pub fn import(
    store: &Store,
    input: impl Read + Send + 'static,
    names: &[ImageRef],
    opts: &ImportOptions,
) -> Result<Image, ImportError> {
    // Check every --change before reading a possibly huge input.
    let mut cc = ContainerConfig::default();
    for c in &opts.changes {
        change::apply(&mut cc, c)?;
    }
    let wrap = |error| ImportError::Store {
        source_name: opts.source.clone(),
        error,
    };
    let layer = store.add_layer_from_tar(input, None).map_err(wrap)?;
    let created = now_rfc3339();
    let comment = opts
        .message
        .clone()
        .unwrap_or_else(|| format!("Imported from {}", opts.source));
    let mut extra = crate::image::oci::Extra::new();
    // docker keeps the import message as the config's top-level `comment`.
    extra.insert("comment".into(), comment.clone().into());
    let platform = opts
        .platform
        .clone()
        .unwrap_or_else(|| Platform::new("linux", host_architecture(), None));
    let config = ImageConfig {
        created: Some(created.clone()),
        architecture: platform.architecture,
        os: platform.os,
        variant: platform.variant,
        config: Some(cc),
        rootfs: RootFs {
            kind: "layers".into(),
            diff_ids: vec![layer.diff_id.clone()],
        },
        history: vec![History {
            created: Some(created),
            comment: Some(comment),
            ..History::default()
        }],
        extra,
        ..ImageConfig::default()
    };
    store.write_image(&config, &[layer], names).map_err(wrap)
}
