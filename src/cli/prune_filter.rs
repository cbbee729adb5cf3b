//! `--filter` of `kiln system prune` and `kiln container prune`: docker's
//! prune filters (moby `daemon/prune.go` and `daemon/containerd/
//! image_prune.go`): `until=T` prunes only what was created at or before
//! `T` (a Go duration back from now, an RFC 3339 time, a date or Unix
//! seconds: moby `GetTimestamp`, as `logs --since`); `label=K` /
//! `label=K=V` only what carries every such label, `label!=K` /
//! `label!=K=V` only what does not carry them all (`MatchKVList`).

use super::container::log_time::{self, Instant};
use std::collections::BTreeMap;

/// The filters of one prune.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PruneFilter {
    /// `until`: created at or before this instant.
    pub until: Option<Instant>,
    /// `label=`: key and optional value, all required.
    labels: Vec<(String, Option<String>)>,
    /// `label!=`: key and optional value, not all present.
    not_labels: Vec<(String, Option<String>)>,
}

fn key_value(v: &str) -> (String, Option<String>) {
    match v.split_once('=') {
        Some((k, v)) => (k.to_string(), Some(v.to_string())),
        None => (v.to_string(), None),
    }
}

/// Whether `labels` has every `(key, value)` of `wanted` (moby
/// `filters.Args.MatchKVList`).
fn has_all(labels: &BTreeMap<String, String>, wanted: &[(String, Option<String>)]) -> bool {
    wanted.iter().all(|(k, v)| match (labels.get(k), v) {
        (Some(_), None) => true,
        (Some(have), Some(v)) => have == v,
        (None, _) => false,
    })
}

impl PruneFilter {
    /// Parses `--filter` values; `now` is what durations count back from.
    /// Errors are docker's words with the value named.
    pub fn parse(values: &[String], now: Instant) -> Result<PruneFilter, String> {
        let mut f = PruneFilter::default();
        for value in values {
            // docker/cli `opts.FilterOpt`: split at the first `=`.
            let Some((key, v)) = value.split_once('=') else {
                return Err(format!(
                    "bad format of filter (expected name=value): {value}"
                ));
            };
            match key {
                "until" => {
                    if f.until.is_some() {
                        // moby `getUntilFromPruneFilters`.
                        return Err("more than one until filter specified".into());
                    }
                    let t =
                        log_time::parse(v, now).map_err(|e| format!("--filter {value:?}: {e}"))?;
                    f.until = Some(t);
                }
                "label" => f.labels.push(key_value(v)),
                "label!" => f.not_labels.push(key_value(v)),
                _ => return Err(format!("invalid filter '{key}'")),
            }
        }
        Ok(f)
    }

    /// Whether the filters are empty (everything may go).
    pub fn is_empty(&self) -> bool {
        *self == PruneFilter::default()
    }

    /// Whether a label filter is given (what has no labels, like kiln's
    /// build cache records, is then kept).
    pub fn has_labels(&self) -> bool {
        !self.labels.is_empty() || !self.not_labels.is_empty()
    }

    /// Whether something created at `created` (RFC 3339; unknown counts
    /// as the epoch, as a zero Go time) with `labels` may be pruned.
    pub fn allows(&self, created: Option<&str>, labels: &BTreeMap<String, String>) -> bool {
        if let Some(until) = self.until {
            let t = created
                .and_then(crate::image::timestamp::parse_rfc3339_nanos)
                .unwrap_or((0, 0));
            if t > until {
                return false;
            }
        }
        if !self.labels.is_empty() && !has_all(labels, &self.labels) {
            return false;
        }
        if !self.not_labels.is_empty() && has_all(labels, &self.not_labels) {
            return false;
        }
        true
    }
}

/// An image's creation time and labels (its config's), for the filter.
pub fn image_facts(
    store: &crate::cache::Store,
    id: &str,
) -> (Option<String>, BTreeMap<String, String>) {
    let Ok(image) = id
        .parse()
        .map_err(drop)
        .and_then(|d| store.image_by_id(&d).map_err(drop))
    else {
        return (None, BTreeMap::new());
    };
    let labels = image
        .config
        .config
        .as_ref()
        .and_then(|c| c.labels.clone())
        .unwrap_or_default();
    (image.config.created.clone(), labels)
}

/// Now, as `until` counts from.
pub fn unix_now() -> Instant {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (d.as_secs() as i64, d.subsec_nanos())
}

/// A container's creation time and labels: its image's labels (docker
/// merges the image's into the container's config; kiln has no `--label`
/// on `run`).
pub fn container_allowed(
    filter: &PruneFilter,
    store: &crate::cache::Store,
    row: &crate::cache::ContainerRow,
) -> bool {
    let labels = match &row.image_id {
        Some(id) => image_facts(store, id).1,
        None => BTreeMap::new(),
    };
    filter.allows(Some(&row.created), &labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn parse(values: &[&str]) -> Result<PruneFilter, String> {
        let v: Vec<String> = values.iter().map(|s| s.to_string()).collect();
        // 2026-12-07T00:00:00Z
        PruneFilter::parse(&v, (1_796_601_600, 0))
    }

    #[test]
    fn until_keeps_what_is_newer() {
        let f = parse(&["until=1h"]).unwrap();
        let none = BTreeMap::new();
        assert!(f.allows(Some("2026-12-06T22:59:59Z"), &none));
        assert!(f.allows(Some("2026-12-06T23:00:00Z"), &none));
        assert!(!f.allows(Some("2026-12-06T23:00:01Z"), &none));
        let f = parse(&["until=2026-12-01T00:00:00Z"]).unwrap();
        assert!(!f.allows(Some("2026-12-06T00:00:00Z"), &none));
        assert!(f.allows(None, &none));
    }

    #[test]
    fn labels_need_all_and_not_labels_exclude_all() {
        let f = parse(&["label=a", "label=b=2"]).unwrap();
        assert!(f.allows(None, &labels(&[("a", "x"), ("b", "2")])));
        assert!(!f.allows(None, &labels(&[("a", "x"), ("b", "3")])));
        assert!(!f.allows(None, &labels(&[("b", "2")])));
        let f = parse(&["label!=keep"]).unwrap();
        assert!(!f.allows(None, &labels(&[("keep", "")])));
        assert!(f.allows(None, &labels(&[("other", "")])));
        let f = parse(&["label!=keep=yes"]).unwrap();
        assert!(f.allows(None, &labels(&[("keep", "no")])));
    }

    #[test]
    fn bad_filters_say_what_docker_says() {
        assert_eq!(
            parse(&["dangling=true"]),
            Err("invalid filter 'dangling'".into())
        );
        assert_eq!(
            parse(&["until"]),
            Err("bad format of filter (expected name=value): until".into())
        );
        assert_eq!(
            parse(&["until=1h", "until=2h"]),
            Err("more than one until filter specified".into())
        );
        assert!(parse(&["until=soon"])
            .unwrap_err()
            .contains("--filter \"until=soon\""));
    }
}
