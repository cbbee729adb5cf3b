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
