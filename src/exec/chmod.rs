//! `COPY --chmod` / `ADD --chmod`: octal (`755`, `4755`) and, as BuildKit
//! accepts since Dockerfile syntax 1.14, symbolic modes (`u+x,g-w`, `+x`,
//! `a=r`, `go=u-w`) in chmod(1) syntax.
//!
//! BuildKit validates the flag in `dockerfile2llb` (an octal string up to
//! `07777`, otherwise a symbolic mode parsed by `tonistiigi/dchapes-mode`,
//! a Go port of BSD's `setmode(3)`), and the file op applies it to every
//! copied file and directory (fsutil `copyFileInfo`), symlinks excepted:
//! - octal replaces all 12 permission bits (setuid/setgid/sticky included);
//! - symbolic is applied to each source entry's own mode, clause by clause;
//!   `X` adds execute only if the entry is a directory or had an execute bit
//!   before the whole mode was applied (BSD `getmode` tests the original
//!   mode).
//!
//! A clause without `u`/`g`/`o`/`a` is masked by the process umask in
//! chmod(1) and dchapes-mode. buildkitd runs with umask 0
//! (moby/buildkit#6801), so there `+w` means `a+w`; dockerd's embedded
//! BuildKit runs with 022 and would give `u+w`. kiln follows buildkitd and
//! never lets its own umask change a build: who-less clauses act on all
//! classes. Explicit-who clauses, the common case, are the same everywhere.

use thiserror::Error;

const S_ISUID: u32 = 0o4000;
const S_ISGID: u32 = 0o2000;
const S_ISVTX: u32 = 0o1000;
const RWXU: u32 = 0o700;
const RWXG: u32 = 0o070;
const RWXO: u32 = 0o007;
/// BSD `STANDARD_BITS`: what `a` and a who-less `=` cover (not sticky).
const STANDARD: u32 = S_ISUID | S_ISGID | RWXU | RWXG | RWXO;
const EXEC_ALL: u32 = 0o111;
/// The umask who-less clauses are masked with (see the module docs).
const UMASK: u32 = 0;

/// Why a `--chmod` value was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ChmodError {
    /// Looks numeric but is not octal in 0..=07777 (BuildKit's message).
    #[error("invalid chmod parameter: '{0}'. it should be octal string and between 0 and 07777")]
    NotOctal(String),
    /// Not a chmod(1) symbolic mode.
    #[error("invalid chmod parameter: '{0}': expected a symbolic mode like u+x,g-w or a=r")]
    Syntax(String),
}

/// One step of a symbolic mode, in the order written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Set these bits.
    Set(u32),
    /// Clear these bits.
    Clear(u32),
    /// `+X`: set these bits if the entry is a directory or had any execute
    /// bit originally.
    SetIfExec(u32),
    /// `u`/`g`/`o` as a permission: copy that class's current bits
    /// (shifted to the `rwx` of "other") into the classes in `to` (a mask
    /// of RWXU|RWXG|RWXO), clearing them first for `=`, clearing instead
    /// of setting for `-`.
    Copy { from: u32, to: u32, op: u8 },
}

/// A parsed `--chmod` value, applied per copied entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chmod(Kind);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    /// Replace the 12 permission bits with these.
    Octal(u32),
    /// chmod(1) symbolic clauses, in order.
    Symbolic(Vec<Step>),
}

impl Chmod {
    /// Parses a `--chmod` value with BuildKit's rules: an octal number up to
    /// 07777, or a symbolic mode.
    pub fn parse(text: &str) -> Result<Chmod, ChmodError> {
        if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
            return match u32::from_str_radix(text, 8) {
                Ok(mode) if mode <= 0o7777 => Ok(Chmod(Kind::Octal(mode))),
                _ => Err(ChmodError::NotOctal(text.to_string())),
            };
        }
        // dchapes-mode reads anything starting with a digit as a number, and
        // the frontend reports its failure as the octal error.
        if text.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(ChmodError::NotOctal(text.to_string()));
        }
        let steps = parse_symbolic(text).ok_or_else(|| ChmodError::Syntax(text.to_string()))?;
        Ok(Chmod(Kind::Symbolic(steps)))
    }

    /// The new permission bits (`0o7777` part) for an entry whose current
    /// mode is `mode` (`st_mode`, type bits included).
    pub fn apply(&self, mode: u32) -> u32 {
        match &self.0 {
            Kind::Octal(bits) => *bits,
            Kind::Symbolic(steps) => {
                let original = mode & 0o7777;
                let is_dir = mode & libc::S_IFMT == libc::S_IFDIR;
                let mut new = original;
                for step in steps {
                    match *step {
                        Step::Set(bits) => new |= bits,
                        Step::Clear(bits) => new &= !bits,
                        Step::SetIfExec(bits) => {
                            if is_dir || original & EXEC_ALL != 0 {
                                new |= bits;
                            }
                        }
                        Step::Copy { from, to, op } => {
                            let value = match from {
                                RWXU => (new & RWXU) >> 6,
                                RWXG => (new & RWXG) >> 3,
                                _ => new & RWXO,
                            };
                            let spread = |v: u32| {
                                (if to & RWXU != 0 { v << 6 } else { 0 })
                                    | (if to & RWXG != 0 { v << 3 } else { 0 })
                                    | (if to & RWXO != 0 { v } else { 0 })
                            };
                            match op {
                                b'+' => new |= spread(value),
                                b'-' => new &= !spread(value),
                                _ => new = (new & !spread(0o7)) | spread(value),
                            }
                        }
                    }
                }
                new
            }
        }
    }
}

/// Parses `[ugoa]*([-+=]([rwxXst]*|[ugo]))+` clauses separated by commas
/// (chmod(1)); `None` on a syntax error.
fn parse_symbolic(text: &str) -> Option<Vec<Step>> {
    let mut steps = Vec::new();
    for clause in text.split(',') {
        let bytes = clause.as_bytes();
        let mut i = 0;
        let mut who = 0u32;
        while let Some(&c) = bytes.get(i) {
            who |= match c {
                b'a' => STANDARD,
                b'u' => S_ISUID | RWXU,
                b'g' => S_ISGID | RWXG,
                b'o' => RWXO,
                _ => break,
            };
            i += 1;
        }
        // At least one operation per clause.
        if !matches!(bytes.get(i), Some(b'+' | b'-' | b'=')) {
            return None;
        }
        while let Some(&op) = bytes.get(i) {
            if !matches!(op, b'+' | b'-' | b'=') {
                return None;
            }
            i += 1;
            let mut perm = 0u32;
            let mut exec_if = 0u32;
            let mut who_here = who;
            let mut copy_from = None;
            while let Some(&c) = bytes.get(i) {
                match c {
                    b'r' => perm |= 0o444,
                    b'w' => perm |= 0o222,
                    b'x' => perm |= EXEC_ALL,
                    // Only `+X` means anything (BSD ignores `-X` and `=X`).
                    b'X' if op == b'+' => exec_if = EXEC_ALL,
                    b'X' => {}
                    // Set-id bits only when not "other" alone.
                    b's' if who == 0 || who & !RWXO != 0 => perm |= S_ISUID | S_ISGID,
                    b's' => {}
                    b't' if who == 0 || who & !RWXO != 0 => {
                        who_here |= S_ISVTX;
                        perm |= S_ISVTX;
                    }
                    b't' => {}
                    // A class to copy from stands alone before the next
                    // operation (`go=u-w`); kiln rejects mixes like `g=ru`
                    // that BSD would accept.
                    b'u' | b'g' | b'o' if perm == 0 && exec_if == 0 && copy_from.is_none() => {
                        copy_from = Some(match c {
                            b'u' => RWXU,
                            b'g' => RWXG,
                            _ => RWXO,
                        });
                        if !matches!(bytes.get(i + 1), None | Some(b'+' | b'-' | b'=')) {
                            return None;
                        }
                    }
                    b'+' | b'-' | b'=' => break,
                    _ => return None,
                }
                i += 1;
            }
            // Which bits this operation may touch.
            let mask = if who_here != 0 { who_here } else { !UMASK };
            if let Some(from) = copy_from {
                let to = if who != 0 {
                    who & (RWXU | RWXG | RWXO)
                } else {
                    RWXU | RWXG | RWXO
                };
                steps.push(Step::Copy { from, to, op });
                continue;
            }
            match op {
                b'-' => steps.push(Step::Clear(perm & mask)),
                b'=' => {
                    // `=` clears the classes named (all standard bits when
                    // none is) before setting, as BSD's addcmd does.
                    steps.push(Step::Clear(if who_here != 0 { who_here } else { STANDARD }));
                    steps.push(Step::Set(perm & mask));
                }
                _ => steps.push(Step::Set(perm & mask)),
            }
            if exec_if != 0 {
                steps.push(Step::SetIfExec(exec_if & mask));
            }
        }
    }
    Some(steps)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: u32 = libc::S_IFREG;
    const DIR: u32 = libc::S_IFDIR;

    /// One case: `--chmod` text, the entry's mode, the expected new bits.
    fn check(text: &str, mode: u32, expected: u32) {
        let chmod = Chmod::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(
            chmod.apply(mode),
            expected,
            "{text} on {mode:o}: got {:o}, want {expected:o}",
            chmod.apply(mode)
        );
    }

    #[test]
    fn octal_replaces_all_twelve_bits() {
        check("755", FILE | 0o4600, 0o755);
        check("0644", DIR | 0o777, 0o644);
        check("4755", FILE | 0o600, 0o4755);
        check("7777", FILE, 0o7777);
        check("0", FILE | 0o644, 0);
    }

    #[test]
    fn numeric_values_that_are_not_octal_get_buildkits_error() {
        for bad in ["88", "10000", "7778", "8", "1a", "0x755"] {
            assert_eq!(
                Chmod::parse(bad),
                Err(ChmodError::NotOctal(bad.to_string())),
                "{bad}"
            );
        }
    }

    #[test]
    fn symbolic_with_explicit_who() {
        check("u+x", FILE | 0o644, 0o744);
        check("g-w", FILE | 0o664, 0o644);
        check("go-w", FILE | 0o666, 0o644);
        check("u=rw,g=r,o=r", FILE | 0o777, 0o644);
        check("a=r", FILE | 0o755, 0o444);
        check("a+x", FILE | 0o600, 0o711);
        check("ug+rw,o-rwx", FILE | 0o407, 0o660);
        check("u+r-w", FILE | 0o200, 0o400);
        check("o=", FILE | 0o777, 0o770);
    }

    #[test]
    fn who_less_clauses_act_on_all_classes() {
        check("+x", FILE | 0o644, 0o755);
        check("+w", FILE | 0o444, 0o666);
        check("=rw", FILE | 0o777, 0o666);
        check("-w", FILE | 0o666, 0o444);
    }

    #[test]
    fn capital_x_depends_on_type_and_original_exec_bits() {
        check("a+X", FILE | 0o644, 0o644);
        check("a+X", FILE | 0o744, 0o755);
        check("a+X", DIR | 0o700, 0o711);
        // The test uses the mode before any clause: `u+x` first does not
        // make `+X` fire (BSD getmode reads the original mode).
        check("u+x,g+X", FILE | 0o600, 0o700);
        // dchapes-mode honours `X` only with `+` (chmod(1) would also with
        // `=`); BuildKit runs dchapes-mode, so kiln does the same.
        check("u=rwX,go=rX", DIR | 0o600, 0o644);
        check("u=rw,a+X", DIR | 0o600, 0o711);
    }

    #[test]
    fn copying_classes() {
        check("g=u", FILE | 0o640, 0o660);
        check("go=u-w", FILE | 0o755, 0o755);
        check("go=u-w", FILE | 0o700, 0o755);
        check("o+g", FILE | 0o650, 0o655);
        // Copying with `=` leaves the set-id bits alone (BSD clears rwx only).
        check("g=u", FILE | 0o2740, 0o2770);
    }

    #[test]
    fn setid_and_sticky() {
        check("u+s", FILE | 0o755, 0o4755);
        check("g+s", DIR | 0o755, 0o2755);
        check("+t", DIR | 0o777, 0o1777);
        check("o+s", FILE | 0o755, 0o755);
        check("a-s", FILE | 0o6755, 0o755);
    }

    #[test]
    fn malformed_symbolic_modes_are_rejected() {
        for bad in ["", "u", "u+x,", "ux", "u+q", "z+x", "+x,,", "u+x g", "g=ux"] {
            assert!(
                matches!(
                    Chmod::parse(bad),
                    Err(ChmodError::Syntax(_) | ChmodError::NotOctal(_))
                ),
                "{bad:?} should be rejected"
            );
        }
    }
}
