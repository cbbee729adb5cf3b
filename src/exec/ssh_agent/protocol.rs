//! The SSH agent protocol (draft-ietf-sshm-ssh-agent, OpenSSH's
//! `PROTOCOL.agent`) as a step's socket speaks it: each message is a
//! big-endian `u32` length and that many bytes, the first its type.
//!
//! Only the two requests a client needs to authenticate are served, as
//! BuildKit's `readOnlyAgent` does (moby/buildkit `session/sshforward/
//! sshprovider/agentprovider.go`): listing identities and signing. Adding,
//! removing, locking and extensions get `SSH_AGENT_FAILURE`, so a step can
//! neither read keys out of the user's agent nor change it. A socket
//! source is relayed one request at a time to the user's agent; a key
//! source is answered here.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;

use signature::Signer;
use ssh_key::{Algorithm, HashAlg, PrivateKey};

use super::AgentSource;

const SSH_AGENT_FAILURE: u8 = 5;
const SSH_AGENTC_REQUEST_IDENTITIES: u8 = 11;
const SSH_AGENT_IDENTITIES_ANSWER: u8 = 12;
const SSH_AGENTC_SIGN_REQUEST: u8 = 13;
const SSH_AGENT_SIGN_RESPONSE: u8 = 14;
/// Sign-request flag: an RSA key signs with `rsa-sha2-512`.
const SSH_AGENT_RSA_SHA2_512: u32 = 4;

/// OpenSSH's agent refuses longer messages (`AGENT_MAX_LEN`, 256 KiB).
const MAX_MESSAGE: u32 = 256 * 1024;

/// Why a step's agent connection ended early.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("connecting to the forwarded agent at {path}")]
    Connect {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("relaying agent messages")]
    Io(#[from] std::io::Error),
}

/// Serves one connection from a step until it closes: each request read
/// is answered from `source` (a forwarded one on its own connection to
/// the user's agent, opened now).
pub fn serve(mut client: UnixStream, source: &AgentSource) -> Result<(), ServeError> {
    let mut upstream = match source {
        AgentSource::Socket(path) => {
            Some(
                UnixStream::connect(path).map_err(|source| ServeError::Connect {
                    path: path.clone(),
                    source,
                })?,
            )
        }
        AgentSource::Keys(_) => None,
    };
    while let Some(request) = read_message(&mut client)? {
        let reply = match (request.first().copied(), source, upstream.as_mut()) {
            (
                Some(SSH_AGENTC_REQUEST_IDENTITIES | SSH_AGENTC_SIGN_REQUEST),
                AgentSource::Socket(_),
                Some(agent),
            ) => {
                write_message(agent, &request)?;
                read_message(agent)?.ok_or_else(|| {
                    std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "the forwarded agent closed the connection",
                    )
                })?
            }
            (_, AgentSource::Keys(keys), _) => answer(keys, &request),
            _ => vec![SSH_AGENT_FAILURE],
        };
        write_message(&mut client, &reply)?;
    }
    Ok(())
}

/// The reply of an agent holding `keys` to `request`.
pub fn answer(keys: &[PrivateKey], request: &[u8]) -> Vec<u8> {
    let reply = match request.split_first() {
        Some((&SSH_AGENTC_REQUEST_IDENTITIES, _)) => identities(keys),
        Some((&SSH_AGENTC_SIGN_REQUEST, body)) => sign(keys, body),
        _ => None,
    };
    reply.unwrap_or_else(|| vec![SSH_AGENT_FAILURE])
}

/// `SSH_AGENT_IDENTITIES_ANSWER`: each key's public blob and comment.
fn identities(keys: &[PrivateKey]) -> Option<Vec<u8>> {
    let mut out = vec![SSH_AGENT_IDENTITIES_ANSWER];
    out.extend_from_slice(&u32::try_from(keys.len()).ok()?.to_be_bytes());
    for key in keys {
        put_string(&mut out, &key.public_key().to_bytes().ok()?);
        put_string(&mut out, key.comment().as_bytes());
    }
    Some(out)
}

/// `SSH_AGENT_SIGN_RESPONSE` for `string key, string data, u32 flags`, or
/// `None` (a failure) for a key kiln does not hold or cannot sign as asked.
fn sign(keys: &[PrivateKey], mut body: &[u8]) -> Option<Vec<u8>> {
    let blob = take_string(&mut body)?;
    let data = take_string(&mut body)?;
    let flags = body
        .get(..4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        .unwrap_or(0);
    let key = keys
        .iter()
        .find(|k| k.public_key().to_bytes().ok().as_deref() == Some(blob))?;
    // ssh-key signs RSA with SHA-512 only; a client asking for SHA-256 or
    // SHA-1 gets a failure rather than a signature it did not ask for.
    if matches!(key.algorithm(), Algorithm::Rsa { .. }) && flags & SSH_AGENT_RSA_SHA2_512 == 0 {
        tracing::debug!("ssh agent: rsa-sha2-512 not asked for (flags {flags:#x}), refused");
        return None;
    }
    let signature: ssh_key::Signature = match key.try_sign(data) {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!("ssh agent: signing failed: {e}");
            return None;
        }
    };
    let algorithm = match signature.algorithm() {
        Algorithm::Rsa { .. } => Algorithm::Rsa {
            hash: Some(HashAlg::Sha512),
        },
        other => other,
    };
    let mut sig = Vec::new();
    put_string(&mut sig, algorithm.as_str().as_bytes());
    put_string(&mut sig, signature.as_bytes());
    let mut out = vec![SSH_AGENT_SIGN_RESPONSE];
    put_string(&mut out, &sig);
    Some(out)
}

/// Reads one message; `None` at a clean end of the stream.
pub fn read_message(r: &mut impl Read) -> std::io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(len);
    if len == 0 || len > MAX_MESSAGE {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("agent message of {len} bytes (1 to {MAX_MESSAGE} expected)"),
        ));
    }
    let mut body = vec![0u8; len as usize];
    r.read_exact(&mut body)?;
    Ok(Some(body))
}

/// Writes one message (its length, then its bytes).
pub fn write_message(w: &mut impl Write, body: &[u8]) -> std::io::Result<()> {
    let len = u32::try_from(body.len())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "message too long"))?;
    let mut framed = Vec::with_capacity(body.len() + 4);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(body);
    w.write_all(&framed)
}

fn put_string(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s);
}

fn take_string<'a>(buf: &mut &'a [u8]) -> Option<&'a [u8]> {
    let len = u32::from_be_bytes(buf.get(..4)?.try_into().ok()?) as usize;
    let s = buf.get(4..4 + len)?;
    *buf = &buf[4 + len..];
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::ssh_agent::source::tests::TEST_KEY;
    use signature::Verifier;

    fn key() -> PrivateKey {
        PrivateKey::from_openssh(TEST_KEY).unwrap()
    }

    fn sign_request(blob: &[u8], data: &[u8], flags: u32) -> Vec<u8> {
        let mut req = vec![SSH_AGENTC_SIGN_REQUEST];
        put_string(&mut req, blob);
        put_string(&mut req, data);
        req.extend_from_slice(&flags.to_be_bytes());
        req
    }

    #[test]
    fn lists_the_key_and_signs_with_it() {
        let keys = [key()];
        let blob = keys[0].public_key().to_bytes().unwrap();
        let list = answer(&keys, &[SSH_AGENTC_REQUEST_IDENTITIES]);
        let mut body = &list[1..];
        assert_eq!(list[0], SSH_AGENT_IDENTITIES_ANSWER);
        assert_eq!(body[..4], 1u32.to_be_bytes());
        body = &body[4..];
        assert_eq!(take_string(&mut body).unwrap(), blob);
        assert_eq!(take_string(&mut body).unwrap(), b"kiln-unit-test");

        let reply = answer(&keys, &sign_request(&blob, b"session data", 0));
        assert_eq!(reply[0], SSH_AGENT_SIGN_RESPONSE);
        let mut body = &reply[1..];
        let mut sig = take_string(&mut body).unwrap();
        assert_eq!(take_string(&mut sig).unwrap(), b"ssh-ed25519");
        let raw = take_string(&mut sig).unwrap();
        let signature = ssh_key::Signature::new(Algorithm::Ed25519, raw.to_vec()).unwrap();
        keys[0]
            .public_key()
            .key_data()
            .verify(b"session data", &signature)
            .expect("a valid signature");
    }

    #[test]
    fn everything_but_list_and_sign_is_refused() {
        let keys = [key()];
        // Add identity (17), remove all (19), lock (22), extension (27),
        // an unknown key, a truncated request, an empty one.
        for req in [
            vec![17u8, 0, 0],
            vec![19],
            vec![22, 0, 0, 0, 0],
            vec![27, 0, 0, 0, 1, b'x'],
            sign_request(b"not a key", b"d", 0),
            vec![SSH_AGENTC_SIGN_REQUEST, 0, 0, 0, 9],
            vec![],
        ] {
            assert_eq!(answer(&keys, &req), vec![SSH_AGENT_FAILURE], "{req:?}");
        }
    }

    #[test]
    fn messages_are_length_framed_and_bounded() {
        let mut wire = Vec::new();
        write_message(&mut wire, &[11]).unwrap();
        assert_eq!(wire, [0, 0, 0, 1, 11]);
        let mut r = &wire[..];
        assert_eq!(read_message(&mut r).unwrap(), Some(vec![11]));
        assert_eq!(read_message(&mut r).unwrap(), None);
        let huge = (MAX_MESSAGE + 1).to_be_bytes();
        assert!(read_message(&mut &huge[..]).is_err());
    }
}
