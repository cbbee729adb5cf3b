//! docker's human sizes (`512m`, `1.5GiB`) as go-units `RAMInBytes` reads
//! them (docker/go-units size.go `parseSize` with the binary map): what
//! `kiln run --memory` and a Dockerfile's `--mount=type=tmpfs,size=`
//! accept, so both take the same spellings as docker and BuildKit.

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
}
