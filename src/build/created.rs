//! The `created` times of an image's history and config, as BuildKit's
//! image exporter writes them (moby/buildkit exporter/containerimage/
//! writer.go, `normalizeLayersAndHistory` and `patchImageConfig`).
//!
//! BuildKit's Dockerfile frontend leaves a new history entry's time unset
//! unless `SOURCE_DATE_EPOCH` is given (dockerfile2llb `commitToHistory`),
//! and drops the base image's config `created`. The exporter then:
//! 1. gives each entry that has a layer and no time the creation time of
//!    that layer's cache ref (`getRefMetadata`); kiln's equivalent is the
//!    time the build cache record of the step was made, so a cached step
//!    keeps its time and a fully cached rebuild is the same image;
//! 2. gives every entry still without a time the time of the first layer
//!    after the first gap (so leading config steps take the first new
//!    layer's time), and later gaps the time of the entry before them;
//! 3. under `SOURCE_DATE_EPOCH`, sets every time after the epoch (or still
//!    unset) to the epoch;
//! 4. sets the config's `created` to the last entry's time.

use crate::image::oci::ImageConfig;
use crate::image::timestamp::{format_rfc3339, parse_rfc3339_nanos};

/// Fills in `config`'s history times and `created`. `layer_time(i)` is the
/// creation time of the layer of history entry `i`, for the entries the
/// build made layers for.
pub(super) fn fill(
    config: &mut ImageConfig,
    layer_time: impl Fn(usize) -> Option<String>,
    epoch: Option<i64>,
) {
    let history = &mut config.history;
    for (i, h) in history.iter_mut().enumerate() {
        if !h.empty_layer && h.created.is_none() {
            h.created = layer_time(i);
        }
    }
    // The time for leading gaps: the first time after a gap, else the last.
    let mut created: Option<String> = None;
    let mut gap = false;
    for h in history.iter() {
        match &h.created {
            Some(t) => {
                created = Some(t.clone());
                if gap {
                    break;
                }
            }
            None => gap = true,
        }
    }
    gap = false;
    for h in history.iter_mut() {
        match &h.created {
            Some(t) if gap => created = Some(t.clone()),
            Some(_) => {}
            None => {
                gap = true;
                h.created = created.clone();
            }
        }
    }
    if let Some(epoch) = epoch {
        let clamp = format_rfc3339(epoch, 0);
        for h in history.iter_mut() {
            let after = match h.created.as_deref().map(parse_rfc3339_nanos) {
                None => true,
                Some(Some(t)) => t > (epoch, 0),
                Some(None) => false,
            };
            if after {
                h.created = Some(clamp.clone());
            }
        }
    }
    config.created = config.history.iter().rev().find_map(|h| h.created.clone());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::oci::History;

    fn entry(created: Option<&str>, layer: bool) -> History {
        History {
            created: created.map(str::to_string),
            created_by: Some("x".into()),
            empty_layer: !layer,
            ..History::default()
        }
    }

    /// `entries`: (time already set, has a layer); `layers`: the time of
    /// each layer the build made, by history index.
    fn check(
        entries: &[(Option<&str>, bool)],
        layers: &[(usize, &str)],
        epoch: Option<i64>,
    ) -> (Vec<Option<String>>, Option<String>) {
        let mut config = ImageConfig {
            history: entries.iter().map(|(c, l)| entry(*c, *l)).collect(),
            ..ImageConfig::default()
        };
        fill(
            &mut config,
            |i| {
                layers
                    .iter()
                    .find(|(j, _)| *j == i)
                    .map(|(_, t)| t.to_string())
            },
            epoch,
        );
        (
            config.history.into_iter().map(|h| h.created).collect(),
            config.created,
        )
    }

    fn some(v: &[&str]) -> Vec<Option<String>> {
        v.iter().map(|s| Some(s.to_string())).collect()
    }

    #[test]
    fn config_steps_take_the_first_new_layer_time_then_the_one_before() {
        // base layer (t1), ENV, RUN (t3), CMD, COPY (t4), LABEL
        let (times, created) = check(
            &[
                (Some("2020-01-01T00:00:01Z"), true),
                (None, false),
                (None, true),
                (None, false),
                (None, true),
                (None, false),
            ],
            &[(2, "2026-01-01T00:00:03Z"), (4, "2026-01-01T00:00:04Z")],
            None,
        );
        assert_eq!(
            times,
            some(&[
                "2020-01-01T00:00:01Z",
                "2026-01-01T00:00:03Z",
                "2026-01-01T00:00:03Z",
                "2026-01-01T00:00:03Z",
                "2026-01-01T00:00:04Z",
                "2026-01-01T00:00:04Z",
            ])
        );
        assert_eq!(created.as_deref(), Some("2026-01-01T00:00:04Z"));
    }

    #[test]
    fn without_new_layers_config_steps_take_the_base_time() {
        let (times, created) = check(
            &[(Some("2020-01-01T00:00:01Z"), true), (None, false)],
            &[],
            None,
        );
        assert_eq!(times, some(&["2020-01-01T00:00:01Z"; 2]));
        assert_eq!(created.as_deref(), Some("2020-01-01T00:00:01Z"));
        // Nothing has a time at all (FROM scratch, config only).
        assert_eq!(check(&[(None, false)], &[], None), (vec![None], None));
    }

    #[test]
    fn source_date_epoch_clamps_later_times_only() {
        let (times, created) = check(
            &[
                (Some("2020-01-01T00:00:00Z"), true),
                (Some("2024-01-01T00:00:00.5Z"), true),
                (None, true),
            ],
            &[],
            Some(1704067200),
        );
        assert_eq!(
            times,
            some(&[
                "2020-01-01T00:00:00Z",
                "2024-01-01T00:00:00Z",
                "2024-01-01T00:00:00Z"
            ])
        );
        assert_eq!(created.as_deref(), Some("2024-01-01T00:00:00Z"));
    }
}
