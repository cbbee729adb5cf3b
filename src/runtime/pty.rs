//! Pseudo-terminals for `-t`: allocated by the init in the container's own
//! devpts (so `tty` prints `/dev/pts/0` and the host's ptys stay out of
//! reach), the master passed back to kiln, which relays it to the user's
//! terminal in raw mode and forwards window-size changes.

use rustix::fs::{Mode, OFlags};
use rustix::termios::{self, Winsize};
use std::os::fd::{AsFd, OwnedFd};

/// Why a terminal operation failed.
#[derive(Debug, thiserror::Error)]
pub enum PtyError {
    /// The container's devpts refused a new pty.
    #[error("failed to allocate a pseudo-terminal in the container")]
    Allocate(#[source] std::io::Error),
    /// The slave could not become the controlling terminal.
    #[error("failed to make the pseudo-terminal the controlling terminal")]
    Controlling(#[source] std::io::Error),
    /// The user's terminal could not be switched to raw mode.
    #[error("failed to put the terminal in raw mode")]
    RawMode(#[source] std::io::Error),
}

/// Both ends of a new pty.
#[derive(Debug)]
pub struct Pty {
    /// kiln's end.
    pub master: OwnedFd,
    /// The process's stdin/stdout/stderr and `/dev/console`.
    pub slave: OwnedFd,
}

/// Opens a pty from the devpts instance whose `ptmx` is at `ptmx`, sized
/// `size` (rows, columns).
pub fn open(ptmx: &str, size: Option<(u16, u16)>) -> Result<Pty, PtyError> {
    let fail = |e: rustix::io::Errno| PtyError::Allocate(e.into());
    let master = rustix::fs::open(
        ptmx,
        OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(fail)?;
    rustix::pty::unlockpt(&master).map_err(fail)?;
    // TIOCGPTPEER opens the slave through the master itself, so no path
    // lookup (that a container could race) is involved (Linux ≥ 4.13).
    let slave = rustix::pty::ioctl_tiocgptpeer(
        &master,
        rustix::pty::OpenptFlags::RDWR
            | rustix::pty::OpenptFlags::NOCTTY
            | rustix::pty::OpenptFlags::CLOEXEC,
    )
    .map_err(fail)?;
    if let Some((rows, cols)) = size {
        set_size(&master, rows, cols).map_err(PtyError::Allocate)?;
    }
    Ok(Pty { master, slave })
}

/// Makes `slave` the controlling terminal of the calling session leader.
pub fn make_controlling(slave: &impl AsFd) -> Result<(), PtyError> {
    // TIOCSCTTY with 0: never steal a terminal another session controls.
    rustix::process::ioctl_tiocsctty(slave).map_err(|e| PtyError::Controlling(e.into()))
}

/// The size (rows, columns) of the terminal on `fd`, if it is one.
pub fn size(fd: &impl AsFd) -> Option<(u16, u16)> {
    termios::tcgetwinsize(fd).ok().map(|w| (w.ws_row, w.ws_col))
}

/// Resizes the terminal on `fd`; the kernel sends SIGWINCH to its
/// foreground process group.
pub fn set_size(fd: &impl AsFd, rows: u16, cols: u16) -> std::io::Result<()> {
    let ws = Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    termios::tcsetwinsize(fd, ws).map_err(Into::into)
}

/// The user's terminal in raw mode; restored on drop, so every way out of
/// `kiln run` (error, signal exit code) leaves a usable shell.
pub struct RawMode {
    fd: OwnedFd,
    saved: termios::Termios,
}

impl RawMode {
    /// Switches the terminal on `fd` to raw mode.
    pub fn enable(fd: &impl AsFd) -> Result<RawMode, PtyError> {
        let fail = |e: rustix::io::Errno| PtyError::RawMode(e.into());
        let fd = fd.as_fd().try_clone_to_owned().map_err(PtyError::RawMode)?;
        let saved = termios::tcgetattr(&fd).map_err(fail)?;
        let mut raw = saved.clone();
        raw.make_raw();
        termios::tcsetattr(&fd, termios::OptionalActions::Now, &raw).map_err(fail)?;
        Ok(RawMode { fd, saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(&self.fd, termios::OptionalActions::Now, &self.saved);
    }
}

/// Whether `fd` is a terminal.
pub fn is_terminal(fd: &impl AsFd) -> bool {
    termios::isatty(fd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_devpts_pty_has_size_and_peer() {
        let pty = open("/dev/ptmx", Some((24, 80))).unwrap();
        assert_eq!(size(&pty.slave), Some((24, 80)));
        assert!(is_terminal(&pty.slave));
        set_size(&pty.master, 50, 132).unwrap();
        assert_eq!(size(&pty.slave), Some((50, 132)));
        // Raw mode round-trips through Drop.
        let before = termios::tcgetattr(&pty.slave).unwrap();
        {
            let _raw = RawMode::enable(&pty.slave).unwrap();
            let now = termios::tcgetattr(&pty.slave).unwrap();
            assert!(!now.local_modes.contains(termios::LocalModes::ICANON));
        }
        let after = termios::tcgetattr(&pty.slave).unwrap();
        assert_eq!(before.local_modes, after.local_modes);
    }
}
