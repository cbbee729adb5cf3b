//! `HEALTHCHECK`: BuildKit's `parseHealthcheck` and the Go duration syntax
//! its `--interval`, `--timeout`, `--start-period` and `--start-interval`
//! take (`time.ParseDuration`: `1m30s`, `1.5h`, `300ms`).

use super::ast::{Healthcheck, HealthcheckConfig};
use super::error::ErrorKind;
use super::flags::{FlagKind, Flags};
use super::node::RawFlag;
use super::position::Position;

const FLAGS: &[(&str, FlagKind)] = &[
    ("interval", FlagKind::String),
    ("timeout", FlagKind::String),
    ("start-period", FlagKind::String),
    ("start-interval", FlagKind::String),
    ("retries", FlagKind::String),
];

/// Builds the health check from the raw arguments (type word first) and
/// flags. `json` says whether the command was in exec form.
pub fn parse(
    args: &[String],
    json: bool,
    flags: &[RawFlag],
    at: Position,
) -> Result<Healthcheck, (ErrorKind, Position)> {
    let fail = |msg: String| (ErrorKind::Instruction(msg), at);
    let Some(first) = args.first() else {
        return Err(fail("HEALTHCHECK requires at least one argument".into()));
    };
    let typ = first.to_uppercase();
    let rest = &args[1..];
    if typ == "NONE" {
        // BuildKit does not look at flags for NONE.
        if !rest.is_empty() {
            return Err(fail("HEALTHCHECK NONE takes no arguments".into()));
        }
        return Ok(Healthcheck::None);
    }
    let flags = Flags::parse(FLAGS, flags)?;
    let test = match typ.as_str() {
        "CMD" => {
            let cmd: Vec<String> = if rest.is_empty() {
                Vec::new()
            } else if json {
                rest.to_vec()
            } else {
                vec![rest.join(" ")]
            };
            if cmd.is_empty() {
                return Err(fail("missing command after HEALTHCHECK CMD".into()));
            }
            let kind = if json { "CMD" } else { "CMD-SHELL" };
            std::iter::once(kind.to_string()).chain(cmd).collect()
        }
        _ => {
            return Err(fail(format!(
                "unknown type {} in HEALTHCHECK (try CMD)",
                super::dump::go_quote(typ.as_bytes())
            )))
        }
    };
    let interval = |name: &str| -> Result<u64, (ErrorKind, Position)> {
        let Some(value) = flags.string(name) else {
            return Ok(0);
        };
        let ns = parse_duration(&value).map_err(fail)?;
        if ns == 0 {
            return Ok(0);
        }
        if ns < 1_000_000 {
            return Err(fail(format!("--{name} cannot be less than 1ms")));
        }
        Ok(ns as u64)
    };
    let retries = match flags.string("retries") {
        None => 0,
        Some(v) => {
            let n: i64 = parse_int32(&v).map_err(fail)?;
            if n < 0 {
                return Err(fail(format!("--retries cannot be negative ({n})")));
            }
            n as u32
        }
    };
    Ok(Healthcheck::Check(HealthcheckConfig {
        test,
        interval_ns: interval("interval")?,
        timeout_ns: interval("timeout")?,
        start_period_ns: interval("start-period")?,
        start_interval_ns: interval("start-interval")?,
        retries,
    }))
}

/// Go's `strconv.ParseInt(s, 10, 32)`.
fn parse_int32(s: &str) -> Result<i64, String> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("strconv.ParseInt: parsing {s:?}: invalid syntax"));
    }
    match s.parse::<i64>() {
        Ok(n) if (i64::from(i32::MIN)..=i64::from(i32::MAX)).contains(&n) => Ok(n),
        _ => Err(format!(
            "strconv.ParseInt: parsing {s:?}: value out of range"
        )),
    }
}

/// Go's `time.ParseDuration`, in nanoseconds: a signed sequence of decimal
/// numbers with optional fraction and a unit (`ns`, `us`/`µs`/`μs`, `ms`,
/// `s`, `m`, `h`).
pub fn parse_duration(orig: &str) -> Result<i64, String> {
    let invalid = || format!("time: invalid duration {orig:?}");
    let mut s = orig;
    let mut neg = false;
    if let Some(rest) = s.strip_prefix(['-', '+']) {
        neg = s.starts_with('-');
        s = rest;
    }
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    const LIMIT: u64 = 1 << 63;
    let mut total: u64 = 0;
    while !s.is_empty() {
        let b = s.as_bytes();
        if !(b[0] == b'.' || b[0].is_ascii_digit()) {
            return Err(invalid());
        }
        let int_len = b.iter().take_while(|c| c.is_ascii_digit()).count();
        let mut v: u64 = 0;
        for &d in &b[..int_len] {
            v = v
                .checked_mul(10)
                .and_then(|x| x.checked_add(u64::from(d - b'0')))
                .filter(|x| *x <= LIMIT)
                .ok_or_else(invalid)?;
        }
        s = &s[int_len..];
        let (mut frac, mut scale, mut frac_len) = (0u64, 1f64, 0usize);
        if let Some(rest) = s.strip_prefix('.') {
            s = rest;
            frac_len = s.bytes().take_while(|c| c.is_ascii_digit()).count();
            let mut overflow = false;
            for &d in &s.as_bytes()[..frac_len] {
                if overflow {
                    continue;
                }
                match frac
                    .checked_mul(10)
                    .and_then(|x| x.checked_add(u64::from(d - b'0')))
                {
                    Some(y) if y <= LIMIT && frac <= (LIMIT - 1) / 10 => {
                        frac = y;
                        scale *= 10.0;
                    }
                    _ => overflow = true,
                }
            }
            s = &s[frac_len..];
        }
        if int_len == 0 && frac_len == 0 {
            return Err(invalid());
        }
        let unit_len = s
            .bytes()
            .take_while(|&c| c != b'.' && !c.is_ascii_digit())
            .count();
        if unit_len == 0 {
            return Err(format!("time: missing unit in duration {orig:?}"));
        }
        let unit_text = &s[..unit_len];
        s = &s[unit_len..];
        let unit: u64 = match unit_text {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => {
                return Err(format!(
                    "time: unknown unit {unit_text:?} in duration {orig:?}"
                ))
            }
        };
        if v > LIMIT / unit {
            return Err(invalid());
        }
        v *= unit;
        if frac > 0 {
            v += (frac as f64 * (unit as f64 / scale)) as u64;
            if v > LIMIT {
                return Err(invalid());
            }
        }
        total = total
            .checked_add(v)
            .filter(|t| *t <= LIMIT)
            .ok_or_else(invalid)?;
    }
    if neg {
        return Ok((total as i64).wrapping_neg());
    }
    if total > LIMIT - 1 {
        return Err(invalid());
    }
    Ok(total as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_follow_go() {
        assert_eq!(parse_duration("0"), Ok(0));
        assert_eq!(parse_duration("5s"), Ok(5_000_000_000));
        assert_eq!(parse_duration("1m30s"), Ok(90_000_000_000));
        assert_eq!(parse_duration("1.5h"), Ok(5_400_000_000_000));
        assert_eq!(parse_duration("300ms"), Ok(300_000_000));
        assert_eq!(parse_duration("2µs"), Ok(2_000));
        assert_eq!(parse_duration(".5s"), Ok(500_000_000));
        assert_eq!(parse_duration("-1s"), Ok(-1_000_000_000));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("5").unwrap_err().contains("missing unit"));
        assert!(parse_duration("5x").unwrap_err().contains("unknown unit"));
        assert!(parse_duration(".s").is_err());
        assert!(parse_duration("9999999999999999999h").is_err());
    }

    fn check(args: &[&str], json: bool, flags: &[&str]) -> Result<Healthcheck, String> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let flags: Vec<RawFlag> = flags
            .iter()
            .map(|t| RawFlag {
                text: t.to_string(),
                position: Position::default(),
            })
            .collect();
        parse(&args, json, &flags, Position::default()).map_err(|e| e.0.to_string())
    }

    #[test]
    fn healthcheck_forms() {
        assert_eq!(
            check(&["NONE"], false, &["--whatever"]),
            Ok(Healthcheck::None)
        );
        let Ok(Healthcheck::Check(c)) =
            check(&["CMD", "curl x"], false, &["--interval=5s", "--retries=3"])
        else {
            panic!("expected a check")
        };
        assert_eq!(c.test, vec!["CMD-SHELL", "curl x"]);
        assert_eq!((c.interval_ns, c.retries), (5_000_000_000, 3));
        let Ok(Healthcheck::Check(c)) = check(&["cmd", "a", "b"], true, &[]) else {
            panic!("expected a check")
        };
        assert_eq!(c.test, vec!["CMD", "a", "b"]);
    }

    #[test]
    fn healthcheck_errors() {
        assert!(check(&["NONE", "x"], false, &[])
            .unwrap_err()
            .contains("takes no arguments"));
        assert!(check(&["CMD"], false, &[])
            .unwrap_err()
            .contains("missing command"));
        assert!(check(&["CONNECT", "x"], false, &[])
            .unwrap_err()
            .contains("unknown type \"CONNECT\""));
        assert!(check(&["CMD", "x"], false, &["--interval=1ns"])
            .unwrap_err()
            .contains("less than 1ms"));
        assert!(check(&["CMD", "x"], false, &["--retries=-1"])
            .unwrap_err()
            .contains("negative"));
        assert!(check(&["CMD", "x"], false, &["--retries=x"])
            .unwrap_err()
            .contains("invalid syntax"));
        assert!(check(&["CMD", "x"], false, &["--bogus=1"])
            .unwrap_err()
            .contains("unknown flag"));
    }
}
