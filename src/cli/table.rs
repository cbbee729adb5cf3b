//! Docker-style table output: column alignment as Go's `tabwriter` with
//! docker's settings (min width 10, padding 3), and go-units' human sizes
//! and durations ("4.26MB", "2 weeks ago").

/// A table printed like `docker images`.
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&str]) -> Table {
        Table {
            rows: vec![headers.iter().map(|h| h.to_string()).collect()],
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Every column but the last is padded to `max(10, widest + 3)`
    /// characters; the last is not padded (it ends the line, as in Go's
    /// tabwriter).
    pub fn render(&self) -> String {
        let cols = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let mut widths = vec![0usize; cols];
        for r in &self.rows {
            for (i, c) in r.iter().enumerate().take(cols.saturating_sub(1)) {
                widths[i] = widths[i].max((c.chars().count() + 3).max(10));
            }
        }
        let mut out = String::new();
        for r in &self.rows {
            for (i, c) in r.iter().enumerate() {
                out.push_str(c);
                if i + 1 < r.len() {
                    let pad = widths[i].saturating_sub(c.chars().count());
                    out.extend(std::iter::repeat_n(' ', pad));
                }
            }
            out.push('\n');
        }
        out
    }
}

const DECIMAL: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
const BINARY: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];

/// go-units `HumanSizeWithPrecision(size, 3)`: decimal units, `%.3g`
/// (`images`, `history`, prune totals).
pub fn human_size(bytes: u64) -> String {
    custom_size(bytes, 3, 1000.0, &DECIMAL)
}

/// go-units `HumanSize`: decimal units, `%.4g` (`system df`, `system prune`).
pub fn human_size_4(bytes: u64) -> String {
    custom_size(bytes, 4, 1000.0, &DECIMAL)
}

/// go-units `BytesSize`: binary units, `%.4g` (`stats`).
pub fn bytes_size(bytes: u64) -> String {
    custom_size(bytes, 4, 1024.0, &BINARY)
}

/// go-units `CustomSize`: the size in the largest unit below `base`,
/// printed as Go's `%.{precision}g`.
fn custom_size(bytes: u64, precision: usize, base: f64, units: &[&str]) -> String {
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= base && i < units.len() - 1 {
        v /= base;
        i += 1;
    }
    format!("{}{}", format_g(v, precision), units[i])
}

/// Go's `%.{precision}g` for 0 <= v < 10^precision (what a size in its
/// unit is): significant digits, trailing zeros dropped, and Go's
/// exponent form when rounding reaches 10^precision.
fn format_g(v: f64, precision: usize) -> String {
    let int_digits = if v < 1.0 {
        1
    } else {
        v.log10().floor() as usize + 1
    };
    let s = format!("{:.*}", precision.saturating_sub(int_digits), v);
    if s.parse::<f64>()
        .is_ok_and(|x| x >= 10f64.powi(precision as i32))
    {
        return format!("1e+{precision:02}");
    }
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// go-units `HumanDuration`, as docker prints ages ("About a minute").
pub fn human_duration(secs: i64) -> String {
    let secs = secs.max(0);
    if secs < 1 {
        return "Less than a second".into();
    }
    if secs == 1 {
        return "1 second".into();
    }
    if secs < 60 {
        return format!("{secs} seconds");
    }
    let minutes = secs / 60;
    if minutes == 1 {
        return "About a minute".into();
    }
    if minutes < 60 {
        return format!("{minutes} minutes");
    }
    let hours = (secs as f64 / 3600.0 + 0.5) as i64;
    if hours == 1 {
        return "About an hour".into();
    }
    if hours < 48 {
        return format!("{hours} hours");
    }
    if hours < 24 * 7 * 2 {
        return format!("{} days", hours / 24);
    }
    if hours < 24 * 30 * 2 {
        return format!("{} weeks", hours / 24 / 7);
    }
    if hours < 24 * 365 * 2 {
        return format!("{} months", hours / 24 / 30);
    }
    format!("{} years", secs / 3600 / 24 / 365)
}

/// "N units ago" for an RFC 3339 time, docker's CREATED column.
pub fn ago(created: Option<&str>) -> String {
    match created.and_then(crate::image::timestamp::parse_rfc3339) {
        Some(t) => format!("{} ago", human_duration(now() - t)),
        None => "N/A".into(),
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Shortens to `max` characters with a trailing "…" (docker's Ellipsis).
pub fn ellipsis(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_go_units() {
        for (n, want) in [
            (0, "0B"),
            (955, "955B"),
            (1000, "1kB"),
            (1234, "1.23kB"),
            (4_261_550, "4.26MB"),
            (12_345_678, "12.3MB"),
            (124_000_000, "124MB"),
            (999_999, "1e+03kB"),
            (2_000_000_000, "2GB"),
        ] {
            assert_eq!(human_size(n), want, "{n}");
        }
    }

    #[test]
    fn durations_like_go_units() {
        for (s, want) in [
            (0, "Less than a second"),
            (1, "1 second"),
            (59, "59 seconds"),
            (60, "About a minute"),
            (3599, "59 minutes"),
            (3600, "About an hour"),
            (5 * 3600, "5 hours"),
            (3 * 86400, "3 days"),
            (15 * 86400, "2 weeks"),
            (70 * 86400, "2 months"),
            (800 * 86400, "2 years"),
        ] {
            assert_eq!(human_duration(s), want, "{s}");
        }
    }

    #[test]
    fn aligns_like_docker() {
        let mut t = Table::new(&["REPOSITORY", "TAG", "SIZE"]);
        t.row(vec!["busybox".into(), "latest".into(), "4.26MB".into()]);
        assert_eq!(
            t.render(),
            "REPOSITORY   TAG       SIZE\nbusybox      latest    4.26MB\n"
        );
        assert_eq!(ellipsis("abcdef", 4), "abc…");
        assert_eq!(ellipsis("abc", 4), "abc");
    }
}
