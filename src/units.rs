//! docker's human sizes (`512m`, `1.5GiB`) as go-units `RAMInBytes` reads
//! them (docker/go-units size.go `parseSize` with the binary map): what
//! `kiln run --memory`, a Dockerfile's `--mount=type=tmpfs,size=` and
//! `kiln builder prune --keep-storage` accept, so all take the same
//! spellings as docker and BuildKit; and Go durations (`24h`, `1h30m`), as
//! `time.ParseDuration` reads the `until=` filter of `builder prune`.

/// The bytes `value` means: a decimal number (a fraction is allowed and
/// truncated to whole bytes), an optional space, then nothing, `b`, or a
/// unit `k`/`m`/`g`/`t`/`p` (powers of 1024) optionally followed by `b`
/// or `ib`, in any case. `None` for anything else, a negative number or
/// more than `u64` holds.
pub fn ram_in_bytes(value: &str) -> Option<u64> {
    let split = value.rfind(|c: char| c.is_ascii_digit() || c == '.' || c == ' ')?;
    let (number, suffix) = if value.as_bytes()[split] == b' ' {
        (&value[..split], &value[split + 1..])
    } else {
        value.split_at(split + 1)
    };
    let n: f64 = number.parse().ok()?;
    let suffix = suffix.to_ascii_lowercase();
    let shift = match suffix.as_str() {
        "" | "b" => 0,
        _ => {
            let shift = match suffix.as_bytes()[0] {
                b'k' => 10,
                b'm' => 20,
                b'g' => 30,
                b't' => 40,
                b'p' => 50,
                _ => return None,
            };
            if !matches!(&suffix[1..], "" | "b" | "ib") {
                return None;
            }
            shift
        }
    };
    let bytes = n * (1u64 << shift) as f64;
    (bytes.is_finite() && bytes >= 0.0 && bytes < u64::MAX as f64).then_some(bytes as u64)
}

/// The duration `value` means as Go's `time.ParseDuration` reads it: an
/// optional sign, then one or more decimal numbers (a fraction allowed)
/// each with a unit `ns`, `us`/`µs`, `ms`, `s`, `m` or `h` (`1h30m`,
/// `1.5h`, `300ms`); `0` alone needs no unit. `None` for anything else and
/// for negative durations, which no caller of kiln's wants.
pub fn go_duration(value: &str) -> Option<std::time::Duration> {
    let mut rest = value.strip_prefix('+').unwrap_or(value);
    if rest == "0" {
        return Some(std::time::Duration::ZERO);
    }
    if rest.is_empty() || rest.starts_with('-') {
        return None;
    }
    let mut nanos = 0f64;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..number_len].parse().ok()?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        nanos += number * scale;
    }
    (nanos.is_finite() && nanos < u64::MAX as f64)
        .then(|| std::time::Duration::from_nanos(nanos as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_go_units_ram_in_bytes() {
        for (value, bytes) in [
            ("512", 512),
            ("10b", 10),
            ("64m", 64 << 20),
            ("64MB", 64 << 20),
            ("3MiB", 3 << 20),
            ("1.5k", 1536),
            ("1.5g", 3 << 29),
            ("2 k", 2048),
            ("1t", 1 << 40),
            ("0.5", 0),
        ] {
            assert_eq!(ram_in_bytes(value), Some(bytes), "{value}");
        }
        let bad = [
            "", "m", "64mi", "64x", "64kbb", "-1", "-1m", "1bb", "1..2", "nan",
        ];
        for value in bad {
            assert_eq!(ram_in_bytes(value), None, "{value}");
        }
        assert_eq!(ram_in_bytes("99999999p"), None, "overflow");
    }

    #[test]
    fn durations_read_as_go_parse_duration() {
        use std::time::Duration;
        for (value, d) in [
            ("24h", Duration::from_secs(86400)),
            ("1h30m", Duration::from_secs(5400)),
            ("1.5h", Duration::from_secs(5400)),
            ("90s", Duration::from_secs(90)),
            ("300ms", Duration::from_millis(300)),
            ("0", Duration::ZERO),
            ("2h45m10.5s", Duration::from_millis(9_910_500)),
        ] {
            assert_eq!(go_duration(value), Some(d), "{value}");
        }
        for bad in ["", "24", "1d", "h", "-1h", "1h-2m", "1.2.3s", "10 h"] {
            assert_eq!(go_duration(bad), None, "{bad}");
        }
    }
}
