//! What `kiln history` shows: one row per history step, newest first,
//! with the size of the layer each non-empty step made.

use crate::cache::Image;
use crate::image::digest::Digest;

/// One row of `kiln history`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRow {
    /// The image ID on the newest row; `None` (docker's `<missing>`) below,
    /// as kiln keeps no intermediate images.
    pub id: Option<Digest>,
    /// RFC 3339, if the step recorded it.
    pub created: Option<String>,
    pub created_by: String,
    /// Content size of the step's layer; 0 for steps that made none.
    pub size: u64,
    pub comment: String,
}

/// The image's history rows, newest first. Layers are matched to the
/// history steps without `empty_layer`, bottom up (docker's rule); an image
/// without history gets one row per layer.
pub fn rows(image: &Image) -> Vec<HistoryRow> {
    let mut rows = Vec::new();
    let mut layers = image.layers.iter();
    if image.config.history.is_empty() {
        for l in layers {
            rows.push(HistoryRow {
                id: None,
                created: image.config.created.clone(),
                created_by: String::new(),
                size: l.size,
                comment: String::new(),
            });
        }
    } else {
        for h in &image.config.history {
            let size = if h.empty_layer {
                0
            } else {
                layers.next().map(|l| l.size).unwrap_or(0)
            };
            rows.push(HistoryRow {
                id: None,
                created: h.created.clone(),
                created_by: h.created_by.clone().unwrap_or_default(),
                size,
                comment: h.comment.clone().unwrap_or_default(),
            });
        }
    }
    rows.reverse();
    if let Some(top) = rows.first_mut() {
        top.id = Some(image.id.clone());
    }
    rows
}

/// The newest history comment, which docker also shows as the image's
/// `Comment` for imports.
pub fn last_comment(image: &Image) -> Option<String> {
    image
        .config
        .history
        .last()
        .and_then(|h| h.comment.clone())
        .filter(|c| !c.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::LayerInfo;
    use crate::image::oci::{media, Descriptor, History, ImageConfig, Manifest};

    fn d(s: &str) -> Digest {
        Digest::sha256_of(s.as_bytes())
    }

    fn step(by: &str, empty: bool) -> History {
        History {
            created_by: Some(by.into()),
            empty_layer: empty,
            ..History::default()
        }
    }

    fn image(history: Vec<History>, sizes: &[u64]) -> Image {
        let layers = sizes
            .iter()
            .map(|&size| LayerInfo {
                diff_id: d(&size.to_string()),
                chain_id: d(&size.to_string()),
                size,
                tar_size: None,
                blobs: Vec::new(),
            })
            .collect();
        Image {
            id: d("config"),
            manifest_digest: d("manifest"),
            manifest_media_type: media::OCI_MANIFEST.into(),
            manifest: Manifest {
                schema_version: 2,
                media_type: None,
                config: Descriptor::new(media::OCI_CONFIG, d("config"), 1),
                layers: Vec::new(),
                annotations: None,
                extra: Default::default(),
            },
            config: ImageConfig {
                history,
                ..ImageConfig::default()
            },
            layers,
            names: Vec::new(),
            repo_digests: Vec::new(),
            size: sizes.iter().sum(),
            added: 0,
        }
    }

    #[test]
    fn layers_go_to_non_empty_steps_newest_first() {
        let img = image(
            vec![
                step("ADD rootfs", false),
                step("ENV A=1", true),
                step("RUN make", false),
                step("CMD sh", true),
            ],
            &[100, 7],
        );
        let r = rows(&img);
        let got: Vec<(&str, u64, bool)> = r
            .iter()
            .map(|r| (r.created_by.as_str(), r.size, r.id.is_some()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("CMD sh", 0, true),
                ("RUN make", 7, false),
                ("ENV A=1", 0, false),
                ("ADD rootfs", 100, false)
            ]
        );
    }

    #[test]
    fn images_without_history_get_a_row_per_layer() {
        let r = rows(&image(Vec::new(), &[1, 2]));
        assert_eq!(r.iter().map(|r| r.size).collect::<Vec<_>>(), vec![2, 1]);
    }
}
