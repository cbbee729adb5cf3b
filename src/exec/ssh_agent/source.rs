//! `--ssh` values: what each agent id forwards, opened when the build
//! starts so a bad value fails before any step runs.
//!
//! The flag's syntax is buildx's (docker/buildx `util/buildflags/ssh.go`,
//! `SSH.UnmarshalText`): `ID[=PATH[,PATH...]]`, split at the first `=`, the
//! paths at every `,`; an empty id is `default`. What the paths mean is
//! BuildKit's (moby/buildkit `session/sshforward/sshprovider/
//! agentprovider.go`, `AgentConfig.toDialer` and `toDialer`): no path means
//! `$SSH_AUTH_SOCK`; a path that is a socket forwards that agent (one
//! socket at most, never mixed with keys); any other path is a private key
//! file that kiln serves itself as an agent.

use std::collections::HashMap;
use std::io::Read;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// BuildKit's id for an agent given without one (`sshforward.DefaultID`).
pub const DEFAULT_ID: &str = "default";

/// BuildKit reads at most this much of a key file (`toDialer`'s
/// `io.LimitedReader`).
const MAX_KEY_FILE: u64 = 100 * 1024;

/// Why a `--ssh` value cannot be used. Each names the value as given.
#[derive(Debug, thiserror::Error)]
pub enum SshSourceError {
    #[error("--ssh {spec:?}: duplicate agent ID {id:?}")]
    Duplicate { spec: String, id: String },
    /// `default` (or an id without paths) while `SSH_AUTH_SOCK` is unset.
    #[error("--ssh {spec:?}: invalid empty ssh agent socket: make sure SSH_AUTH_SOCK is set")]
    NoAgentSocket { spec: String },
    #[error("--ssh {spec:?}: {path}")]
    Open {
        spec: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The socket exists but no agent answers on it.
    #[error("--ssh {spec:?}: connecting to the agent at {path}")]
    Connect {
        spec: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("--ssh {spec:?}: failed to parse {path} (an OpenSSH private key was expected)")]
    Parse {
        spec: String,
        path: PathBuf,
        #[source]
        source: ssh_key::Error,
    },
    /// BuildKit cannot ask for a passphrase either (its `TODO: prompt
    /// passphrase?`); Go's message is "this private key is passphrase
    /// protected".
    #[error(
        "--ssh {spec:?}: failed to parse {path}: this private key is passphrase protected \
         (load it into ssh-agent and give --ssh {id} instead)"
    )]
    Encrypted {
        spec: String,
        id: String,
        path: PathBuf,
    },
    #[error("--ssh {spec:?}: only a single socket allowed")]
    TwoSockets { spec: String },
    #[error("--ssh {spec:?}: invalid combination of keys and sockets")]
    KeysAndSocket { spec: String },
}

/// What one agent id forwards.
pub enum AgentSource {
    /// The user's agent, reached through its socket for each connection.
    Socket(PathBuf),
    /// Private keys kiln holds in memory and signs with itself.
    Keys(Vec<ssh_key::PrivateKey>),
}

impl std::fmt::Debug for AgentSource {
    // Never prints key material, not even in a debug log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AgentSource::Socket(p) => f.debug_tuple("Socket").field(p).finish(),
            AgentSource::Keys(keys) => write!(f, "Keys({} keys)", keys.len()),
        }
    }
}

/// The build's agents by id (`--ssh`, in order given).
#[derive(Debug, Clone, Default)]
pub struct SshAgents {
    by_id: HashMap<String, Arc<AgentSource>>,
}

impl SshAgents {
    /// Opens every `--ssh` value; `auth_sock` is `$SSH_AUTH_SOCK`.
    pub fn open(specs: &[String], auth_sock: Option<&Path>) -> Result<SshAgents, SshSourceError> {
        let mut agents = SshAgents::default();
        for spec in specs {
            let (id, paths) = split_spec(spec);
            if agents.by_id.contains_key(&id) {
                return Err(SshSourceError::Duplicate {
                    spec: spec.clone(),
                    id,
                });
            }
            let source = open_source(spec, &id, &paths, auth_sock)?;
            agents.by_id.insert(id, Arc::new(source));
        }
        Ok(agents)
    }

    /// The agent forwarded as `id`, if any.
    pub fn get(&self, id: &str) -> Option<&Arc<AgentSource>> {
        self.by_id.get(id)
    }

    /// Whether no `--ssh` was given at all.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Why a step whose mount requires agent `id` cannot run, in
    /// BuildKit's words: without any `--ssh`, moby/buildkit
    /// `solver/llbsolver/mounts/mount.go` (`getSSHMountable`) says `no SSH
    /// key "ID" forwarded from the client`; with others but not this one,
    /// the provider's `CheckAgent` says `unset ssh forward key ID`.
    pub fn missing_message(&self, id: &str) -> String {
        if self.is_empty() {
            format!("no SSH key {id:?} forwarded from the client")
        } else {
            format!("unset ssh forward key {id}")
        }
    }
}

/// `ID[=PATH[,PATH...]]` as buildx splits it; an empty id is `default`.
fn split_spec(spec: &str) -> (String, Vec<String>) {
    let (id, paths) = match spec.split_once('=') {
        Some((id, paths)) => (id, paths.split(',').map(str::to_string).collect()),
        None => (spec, Vec::new()),
    };
    let id = if id.is_empty() { DEFAULT_ID } else { id };
    (id.to_string(), paths)
}

fn open_source(
    spec: &str,
    id: &str,
    paths: &[String],
    auth_sock: Option<&Path>,
) -> Result<AgentSource, SshSourceError> {
    let paths: Vec<PathBuf> = if paths.is_empty() || paths == [""] {
        match auth_sock.filter(|p| !p.as_os_str().is_empty()) {
            Some(sock) => vec![sock.to_path_buf()],
            None => {
                return Err(SshSourceError::NoAgentSocket {
                    spec: spec.to_string(),
                })
            }
        }
    } else {
        paths.iter().map(PathBuf::from).collect()
    };
    let mut socket = None;
    let mut keys = Vec::new();
    for path in paths {
        let open = |source| SshSourceError::Open {
            spec: spec.to_string(),
            path: path.clone(),
            source,
        };
        // Followed on purpose: a user's agent path is often a symlink.
        let md = std::fs::metadata(&path).map_err(open)?;
        if md.file_type().is_socket() {
            if socket.is_some() {
                return Err(SshSourceError::TwoSockets {
                    spec: spec.to_string(),
                });
            }
            socket = Some(path);
            continue;
        }
        let mut text = Vec::new();
        std::fs::File::open(&path)
            .and_then(|f| f.take(MAX_KEY_FILE).read_to_end(&mut text))
            .map_err(open)?;
        keys.push(parse_key(spec, id, &path, &text)?);
    }
    match socket {
        Some(_) if !keys.is_empty() => Err(SshSourceError::KeysAndSocket {
            spec: spec.to_string(),
        }),
        Some(path) => {
            // A stale socket (its agent gone) fails now, not in a step.
            std::os::unix::net::UnixStream::connect(&path).map_err(|source| {
                SshSourceError::Connect {
                    spec: spec.to_string(),
                    path: path.clone(),
                    source,
                }
            })?;
            Ok(AgentSource::Socket(path))
        }
        None => Ok(AgentSource::Keys(keys)),
    }
}

/// An OpenSSH private key (what `ssh-keygen` writes); an encrypted one is
/// refused as BuildKit refuses it.
fn parse_key(
    spec: &str,
    id: &str,
    path: &Path,
    text: &[u8],
) -> Result<ssh_key::PrivateKey, SshSourceError> {
    let key = ssh_key::PrivateKey::from_openssh(text).map_err(|source| SshSourceError::Parse {
        spec: spec.to_string(),
        path: path.to_path_buf(),
        source,
    })?;
    if key.is_encrypted() {
        return Err(SshSourceError::Encrypted {
            spec: spec.to_string(),
            id: id.to_string(),
            path: path.to_path_buf(),
        });
    }
    Ok(key)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::error_chain::Chain;

    /// An unencrypted ed25519 key in OpenSSH format, made by `ssh-keygen`
    /// for these tests only.
    pub(crate) const TEST_KEY: &str = "-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW
QyNTUxOQAAACA1Br77EN8UykbwpNUBXZogqMJMnV2NqJ15LAKGw5Fl7QAAAJhqw/9easP/
XgAAAAtzc2gtZWQyNTUxOQAAACA1Br77EN8UykbwpNUBXZogqMJMnV2NqJ15LAKGw5Fl7Q
AAAECm+KpzF2KrKzl0bMT5G/dn1ROzHl8B7u+amXfLqYwFSTUGvvsQ3xTKRvCk1QFdmiCo
wkydXY2onXksAobDkWXtAAAADmtpbG4tdW5pdC10ZXN0AQIDBAUGBw==
-----END OPENSSH PRIVATE KEY-----
";

    /// The same kind of key encrypted with the passphrase `pw`.
    const ENCRYPTED_KEY: &str = "-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAACmFlczI1Ni1jdHIAAAAGYmNyeXB0AAAAGAAAABAc9DnRx7
9M6UB+h0oYbqWsAAAAEAAAAAEAAAAzAAAAC3NzaC1lZDI1NTE5AAAAIINrLAyA2fLZ/3zX
gj1bMWPvkO/6sRJjUWlz+SKZIMTjAAAAkMghM6K+IClEfd7oY980ClUtbHS5UkQKGQ2s2r
OGnL7zLe+dJraojVLPZ7tqW1JkUr+EiD1m+xWM5BWr0qoY1ZGAeBJEl8U6UQTd70GLr9PO
bZkLUaPpf829vJLI6CIe9Rut+e1fbHcl57RjuKU5eRck4aH1n/+vIQ6YoBdJFqpVWlYdoY
sGHF2HL/Cm9nxdDg==
-----END OPENSSH PRIVATE KEY-----
";

    fn open(specs: &[&str], sock: Option<&Path>) -> Result<SshAgents, String> {
        let specs: Vec<String> = specs.iter().map(|s| s.to_string()).collect();
        SshAgents::open(&specs, sock).map_err(|e| Chain(&e).to_string())
    }

    #[test]
    fn ids_and_paths_split_as_buildx_does() {
        assert_eq!(split_spec("default"), ("default".into(), vec![]));
        assert_eq!(split_spec(""), ("default".into(), vec![]));
        assert_eq!(
            split_spec("gh=/a,/b=c"),
            ("gh".into(), vec!["/a".into(), "/b=c".into()])
        );
        assert_eq!(split_spec("=/k"), ("default".into(), vec!["/k".into()]));
    }

    #[test]
    fn key_files_become_an_agent_of_their_own() {
        let t = tempfile::tempdir().unwrap();
        let key = t.path().join("id");
        std::fs::write(&key, TEST_KEY).unwrap();
        let agents = open(&[&format!("k={}", key.display())], None).unwrap();
        assert!(matches!(&**agents.get("k").unwrap(), AgentSource::Keys(k) if k.len() == 1));
        let two = format!("two={},{}", key.display(), key.display());
        let agents = open(&[&two], None).unwrap();
        assert!(matches!(&**agents.get("two").unwrap(), AgentSource::Keys(k) if k.len() == 2));
        assert!(agents.get("default").is_none());
        assert_eq!(
            agents.missing_message("default"),
            "unset ssh forward key default"
        );
        assert_eq!(
            SshAgents::default().missing_message("default"),
            "no SSH key \"default\" forwarded from the client"
        );
    }

    #[test]
    fn bad_values_name_the_flag_and_the_cause() {
        let t = tempfile::tempdir().unwrap();
        let missing = t.path().join("nope");
        let err = open(&[&format!("default={}", missing.display())], None).unwrap_err();
        assert!(err.starts_with("--ssh \"default="), "{err}");
        assert!(err.contains("(os error 2)"), "{err}");
        let junk = t.path().join("junk");
        std::fs::write(&junk, "not a key").unwrap();
        let err = open(&[&format!("x={}", junk.display())], None).unwrap_err();
        assert!(err.contains("failed to parse"), "{err}");
        let err = open(&["default"], None).unwrap_err();
        assert!(err.contains("make sure SSH_AUTH_SOCK is set"), "{err}");
        let key = t.path().join("id");
        std::fs::write(&key, TEST_KEY).unwrap();
        let spec = format!("a={}", key.display());
        let err = open(&[&spec, &spec], None).unwrap_err();
        assert!(err.contains("duplicate agent ID \"a\""), "{err}");
        let enc = t.path().join("enc");
        std::fs::write(&enc, ENCRYPTED_KEY).unwrap();
        let err = open(&[&format!("default={}", enc.display())], None).unwrap_err();
        assert!(err.contains("passphrase protected"), "{err}");
    }

    #[test]
    fn a_socket_without_an_agent_fails_at_once() {
        let t = tempfile::tempdir().unwrap();
        let sock = t.path().join("agent.sock");
        drop(std::os::unix::net::UnixListener::bind(&sock).unwrap());
        let err = open(&["default"], Some(&sock)).unwrap_err();
        assert!(err.contains("connecting to the agent"), "{err}");
        assert!(err.contains("Connection refused"), "{err}");
        // A socket and keys, or two sockets, in one value: BuildKit's errors.
        let key = t.path().join("id");
        std::fs::write(&key, TEST_KEY).unwrap();
        let mixed = format!("m={},{}", sock.display(), key.display());
        let err = open(&[&mixed], None).unwrap_err();
        assert!(
            err.ends_with("invalid combination of keys and sockets"),
            "{err}"
        );
        let twice = format!("m={},{}", sock.display(), sock.display());
        let err = open(&[&twice], None).unwrap_err();
        assert!(err.ends_with("only a single socket allowed"), "{err}");
    }
}
