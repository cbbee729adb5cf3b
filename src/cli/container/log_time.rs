//! The values of `logs --since` and `--until`, read by docker's rules
//! (moby/moby `api/types/time/timestamp.go`, `GetTimestamp`): a Go
//! duration (`10m`, `1h30m`, `90s`) counts back from now; otherwise an
//! RFC 3339 time (`2026-12-07T01:02:03Z`, with any offset or fraction), a
//! date (`2026-12-07`), or Unix seconds (`1765069323[.5]`).
//!
//! Differs from docker: a time without a zone is read as UTC, where docker
//! reads it in the client's local zone (the hosts kiln runs on keep UTC).

/// An instant as Unix seconds and nanoseconds (ordered like time).
pub type Instant = (i64, u32);

/// Nanoseconds per Go duration unit (Go's `time.ParseDuration`).
fn unit_nanos(unit: &str) -> Option<f64> {
    Some(match unit {
        "ns" => 1.0,
        "us" | "µs" | "μs" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        "m" => 60e9,
        "h" => 3600e9,
        _ => return None,
    })
}

/// A Go duration in nanoseconds (`0` alone needs no unit), or `None`.
fn go_duration(value: &str) -> Option<i128> {
    let (sign, mut rest) = match value.as_bytes().first()? {
        b'-' => (-1.0, &value[1..]),
        b'+' => (1.0, &value[1..]),
        _ => (1.0, value),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let n = rest
            .bytes()
            .take_while(|c| c.is_ascii_digit() || *c == b'.')
            .count();
        let number: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest
            .char_indices()
            .find(|(_, c)| c.is_ascii_digit() || *c == '.')
            .map_or(rest.len(), |(i, _)| i);
        total += number * unit_nanos(&rest[..u])?;
        rest = &rest[u..];
    }
    Some((sign * total) as i128)
}

/// Parses a `--since`/`--until` value; `now` is what durations count
/// back from. The error says what was expected.
pub fn parse(value: &str, now: Instant) -> Result<Instant, String> {
    if let Some(back) = go_duration(value) {
        let t = now.0 as i128 * 1_000_000_000 + now.1 as i128 - back;
        return Ok((
            t.div_euclid(1_000_000_000) as i64,
            t.rem_euclid(1_000_000_000) as u32,
        ));
    }
    let zoned = |v: &str| crate::image::timestamp::parse_rfc3339_nanos(v);
    let parsed = if value.contains('-') && value.len() > 10 {
        // RFC 3339 with a zone, or without one (read as UTC).
        zoned(value).or_else(|| zoned(&format!("{value}Z")))
    } else if value.len() == 10 && value.as_bytes().get(4) == Some(&b'-') {
        zoned(&format!("{value}T00:00:00Z"))
    } else {
        // Unix seconds with an optional fraction.
        let (secs, frac) = value.split_once('.').unwrap_or((value, ""));
        let nanos = if frac.is_empty() {
            Some(0)
        } else if frac.len() <= 9 && frac.bytes().all(|c| c.is_ascii_digit()) {
            format!("{frac:0<9}").parse().ok()
        } else {
            None
        };
        secs.parse::<i64>().ok().zip(nanos)
    };
    parsed.ok_or_else(|| {
        format!(
            "invalid time {value:?}: expected a duration before now (10m, 1h30m), \
             an RFC 3339 time (2026-12-07T01:02:03Z), a date (2026-12-07) or Unix seconds"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Instant = (1_000_000, 500_000_000);

    #[test]
    fn durations_count_back_from_now_as_go_reads_them() {
        assert_eq!(parse("10m", NOW), Ok((1_000_000 - 600, 500_000_000)));
        assert_eq!(parse("1h30m", NOW), Ok((1_000_000 - 5400, 500_000_000)));
        assert_eq!(parse("1.5s", NOW), Ok((999_999, 0)));
        assert_eq!(parse("0", NOW), Ok(NOW));
        // A negative duration is in the future (docker's rule too).
        assert_eq!(parse("-10s", NOW), Ok((1_000_010, 500_000_000)));
    }

    #[test]
    fn a_bare_number_is_unix_seconds_not_a_duration() {
        // Go's ParseDuration wants a unit, so docker falls through to
        // Unix seconds.
        assert_eq!(parse("10", NOW), Ok((10, 0)));
    }

    #[test]
    fn times_dates_and_unix_seconds_are_absolute() {
        assert_eq!(parse("1970-01-02T00:00:00Z", NOW), Ok((86400, 0)));
        assert_eq!(parse("1970-01-02T02:00:00+02:00", NOW), Ok((86400, 0)));
        assert_eq!(
            parse("1970-01-02T00:00:00.25", NOW),
            Ok((86400, 250_000_000))
        );
        assert_eq!(parse("1970-01-02", NOW), Ok((86400, 0)));
        assert_eq!(parse("86400", NOW), Ok((86400, 0)));
        assert_eq!(parse("86400.5", NOW), Ok((86400, 500_000_000)));
    }

    #[test]
    fn nonsense_is_refused_with_the_forms_expected() {
        for bad in ["", "yesterday", "10x", "1970-13-01", "86400.5x"] {
            let e = parse(bad, NOW).unwrap_err();
            assert!(e.contains("expected a duration"), "{bad}: {e}");
        }
    }
}
