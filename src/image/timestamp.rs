//! RFC 3339 timestamps as image configs carry them (`created`), in UTC.
//!
//! Written like Go's `time.RFC3339Nano` (what docker and BuildKit write):
//! fractional seconds with trailing zeros dropped, `Z` suffix. Read with
//! any offset. Small enough not to need a date crate.

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719468;
    let era = if z >= 0 { z } else { z - 146096 } / 146097;
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Formats Unix seconds + nanoseconds as `2024-01-02T03:04:05.5Z`.
pub fn format_rfc3339(secs: i64, nanos: u32) -> String {
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    let (y, m, d) = civil_from_days(days);
    let mut s = format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    );
    if nanos > 0 {
        let frac = format!("{nanos:09}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

/// The current time, formatted.
pub fn now_rfc3339() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format_rfc3339(now.as_secs() as i64, now.subsec_nanos())
}

/// Parses an RFC 3339 timestamp to Unix seconds (fraction dropped).
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    parse_rfc3339_nanos(s).map(|(secs, _)| secs)
}

/// Parses an RFC 3339 timestamp to Unix seconds and nanoseconds (digits
/// past the ninth dropped), for ordering instants.
pub fn parse_rfc3339_nanos(s: &str) -> Option<(i64, u32)> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> { s.get(r)?.parse().ok() };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut rest = &s[19..];
    let mut nanos = 0u32;
    if let Some(r) = rest.strip_prefix('.') {
        let n = r.bytes().take_while(|c| c.is_ascii_digit()).count();
        let digits = &r[..n.min(9)];
        nanos = format!("{digits:0<9}").parse().ok()?;
        rest = &r[n..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 && (rest.starts_with('+') || rest.starts_with('-')) => {
            let oh: i64 = rest.get(1..3)?.parse().ok()?;
            let om: i64 = rest.get(4..6)?.parse().ok()?;
            let o = oh * 3600 + om * 60;
            if rest.starts_with('-') {
                -o
            } else {
                o
            }
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo as u32, d as u32);
    Some((days * 86400 + h * 3600 + mi * 60 + se - offset, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, secs: i64) {
        assert_eq!(parse_rfc3339(text), Some(secs), "{text}");
    }

    #[test]
    fn parses_known_instants() {
        check("1970-01-01T00:00:00Z", 0);
        check("2000-03-01T00:00:00Z", 951868800);
        check("2023-05-19T20:15:42.123456789Z", 1684527342);
        check("2023-05-19T22:15:42+02:00", 1684527342);
        check("1969-12-31T23:59:59Z", -1);
        assert_eq!(parse_rfc3339("yesterday"), None);
        assert_eq!(parse_rfc3339("2023-13-01T00:00:00Z"), None);
    }

    #[test]
    fn formats_like_go_rfc3339nano() {
        assert_eq!(format_rfc3339(0, 0), "1970-01-01T00:00:00Z");
        assert_eq!(
            format_rfc3339(1684527342, 500_000_000),
            "2023-05-19T20:15:42.5Z"
        );
        assert_eq!(
            format_rfc3339(951782400, 1),
            "2000-02-29T00:00:00.000000001Z"
        );
        assert_eq!(
            parse_rfc3339_nanos("2023-05-19T20:15:42.5Z"),
            Some((1684527342, 500_000_000))
        );
        assert_eq!(
            parse_rfc3339_nanos("2000-02-29T00:00:00.0000000019Z"),
            Some((951782400, 1))
        );
        for secs in [-86401i64, 0, 86399, 951868800, 4102444800] {
            assert_eq!(parse_rfc3339(&format_rfc3339(secs, 0)), Some(secs));
        }
    }
}
