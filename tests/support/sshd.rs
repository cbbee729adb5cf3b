//! A private git server over SSH: Debian's `openssh-server` on 127.0.0.1
//! on a free high port, with its own config, host key and authorized keys
//! in a temp dir, in the foreground (`-D -e`), killed by pid on drop. And
//! an `ssh-agent` of the test's own, the same way.

use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// Runs `cmd`, failing the test with its stderr.
#[track_caller]
fn must(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A new unencrypted ed25519 key pair at `path` (and `path.pub`).
#[track_caller]
pub fn keygen(path: &Path, passphrase: &str) {
    must(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-C", "kiln-test", "-N"])
            .arg(passphrase)
            .arg("-f")
            .arg(path),
    );
}

/// A running `sshd` serving root's logins by the given public keys.
pub struct SshServer {
    child: Child,
    pub port: u16,
}

impl SshServer {
    /// Starts sshd with its files in `dir`, authorizing `public_keys`
    /// (paths of `.pub` files).
    #[track_caller]
    pub fn start(dir: &Path, public_keys: &[PathBuf]) -> SshServer {
        std::fs::create_dir_all(dir).unwrap();
        let host_key = dir.join("host_key");
        keygen(&host_key, "");
        let mut authorized = String::new();
        for k in public_keys {
            authorized.push_str(&std::fs::read_to_string(k).unwrap());
        }
        let auth_file = dir.join("authorized_keys");
        std::fs::write(&auth_file, authorized).unwrap();
        // A free port: bound by us, released, then given to sshd.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = dir.join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {host}\n\
                 AuthorizedKeysFile {auth}\nPidFile none\nUsePAM no\n\
                 PasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                 PubkeyAuthentication yes\nPermitRootLogin prohibit-password\n\
                 StrictModes no\nLogLevel VERBOSE\n",
                host = host_key.display(),
                auth = auth_file.display(),
            ),
        )
        .unwrap();
        // sshd's privilege separation directory (the package's service
        // makes it at boot; a plain install on CI may not have it yet).
        if !Path::new("/run/sshd").exists() {
            std::fs::create_dir_all("/run/sshd").unwrap();
            std::fs::set_permissions("/run/sshd", std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let log = std::fs::File::create(dir.join("sshd.log")).unwrap();
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting /usr/sbin/sshd (install openssh-server)");
        let mut server = SshServer { child, port };
        server.wait_listening(dir);
        server
    }

    /// Waits until sshd accepts connections (or has died).
    #[track_caller]
    fn wait_listening(&mut self, dir: &Path) {
        for _ in 0..500 {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "sshd exited with {status}: {}",
                    std::fs::read_to_string(dir.join("sshd.log")).unwrap_or_default()
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("sshd did not listen on 127.0.0.1:{}", self.port);
    }
}

impl Drop for SshServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running `ssh-agent` (foreground, `-D`) on a socket of its own.
pub struct SshAgent {
    child: Child,
    pub socket: PathBuf,
}

impl SshAgent {
    /// Starts the agent at `socket` and adds `keys` to it.
    #[track_caller]
    pub fn start(socket: &Path, keys: &[&Path]) -> SshAgent {
        let child = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(socket)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting ssh-agent (install openssh-client)");
        let agent = SshAgent {
            child,
            socket: socket.to_path_buf(),
        };
        for _ in 0..500 {
            if std::os::unix::net::UnixStream::connect(socket).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        for key in keys {
            must(
                Command::new("ssh-add")
                    .arg("-q")
                    .arg(key)
                    .env("SSH_AUTH_SOCK", socket),
            );
        }
        agent
    }
}

impl Drop for SshAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
