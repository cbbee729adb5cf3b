//! `--detach-keys`: the key sequence that ends an attach and leaves the
//! container running (Ctrl-P Ctrl-Q by default, docker/cli `hijack.go`
//! `defaultEscapeKeys`).
//!
//! The syntax is moby/term's (`ascii.go` `ToBytes`): comma-separated
//! keys, each one character, `ctrl-@`, `ctrl-a`…`ctrl-z`, `ctrl-[`,
//! `ctrl-\`, `ctrl-]`, `ctrl-^`, `ctrl-_`, or `DEL`. Matching is moby/term's
//! `escapeProxy`: bytes that could start the sequence are held back, and
//! passed on if the sequence breaks.

/// The default: Ctrl-P, Ctrl-Q.
const DEFAULT: [u8; 2] = [16, 17];

/// Parses `--detach-keys` (empty: the default); the error is moby's
/// `Unknown character: 'KEY'`.
pub fn parse(keys: &str) -> Result<Vec<u8>, String> {
    if keys.is_empty() {
        return Ok(DEFAULT.to_vec());
    }
    const CTRL: &str = "@abcdefghijklmnopqrstuvwxyz[\\]^_";
    keys.split(',')
        .map(|key| {
            if key.len() == 1 {
                return Ok(key.as_bytes()[0]);
            }
            if key == "DEL" {
                return Ok(127);
            }
            key.strip_prefix("ctrl-")
                .filter(|c| c.len() == 1)
                .and_then(|c| CTRL.find(c))
                .map(|code| code as u8)
                .ok_or_else(|| format!("Unknown character: '{key}'"))
        })
        .collect()
}

/// Finds the sequence in a stream of input chunks.
pub struct EscapeScanner {
    keys: Vec<u8>,
    /// How many bytes of `keys` the input ends with (held back).
    matched: usize,
}

impl EscapeScanner {
    /// A scanner for `keys` (not empty).
    pub fn new(keys: Vec<u8>) -> EscapeScanner {
        EscapeScanner { keys, matched: 0 }
    }

    /// Appends to `out` what of `input` is to be passed on; returns true
    /// when the whole sequence was seen (what followed it is dropped).
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> bool {
        for &b in input {
            if b != self.keys[self.matched] {
                out.extend_from_slice(&self.keys[..self.matched]);
                self.matched = 0;
                if b != self.keys[0] {
                    out.push(b);
                    continue;
                }
            }
            self.matched += 1;
            if self.matched == self.keys.len() {
                return true;
            }
        }
        false
    }

    /// What is held back at the end of the input (a partial sequence,
    /// passed on then).
    pub fn held(&self) -> &[u8] {
        &self.keys[..self.matched]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_like_moby_term() {
        assert_eq!(parse(""), Ok(vec![16, 17]));
        assert_eq!(parse("ctrl-p,ctrl-q"), Ok(vec![16, 17]));
        assert_eq!(parse("ctrl-@,ctrl-_,a,DEL"), Ok(vec![0, 31, b'a', 127]));
        assert_eq!(parse("ctrl-\\"), Ok(vec![28]));
        assert_eq!(parse("ctrl-A"), Err("Unknown character: 'ctrl-A'".into()));
        assert_eq!(parse("ab"), Err("Unknown character: 'ab'".into()));
    }

    fn scan(keys: &[u8], chunks: &[&[u8]]) -> (String, bool) {
        let mut s = EscapeScanner::new(keys.to_vec());
        let mut out = Vec::new();
        let detached = chunks.iter().any(|c| s.feed(c, &mut out));
        (String::from_utf8_lossy(&out).into_owned(), detached)
    }

    #[test]
    fn the_sequence_detaches_and_a_broken_one_is_passed_on() {
        assert_eq!(
            scan(&DEFAULT, &[b"hi\n\x10\x11after"]),
            ("hi\n".into(), true)
        );
        // Split across reads.
        assert_eq!(scan(&DEFAULT, &[b"a\x10", b"\x11"]), ("a".into(), true));
        // Ctrl-P alone is data; a repeated first key restarts the match.
        assert_eq!(scan(&DEFAULT, &[b"\x10x"]), ("\x10x".into(), false));
        assert_eq!(scan(&DEFAULT, &[b"\x10\x10\x11"]), ("\x10".into(), true));
        assert_eq!(scan(b"q", &[b"abq"]), ("ab".into(), true));
    }
}
