//! `kiln run -it` with a real terminal on kiln's side: a pty pair made by
//! the test stands in for the user's terminal.

use crate::support;

use rustix::termios::{self, Winsize};
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::process::Stdio;
use std::time::{Duration, Instant};
use support::kiln::Kiln;

/// A pty pair: the master is the "user", the slave kiln's terminal.
fn pty(rows: u16, cols: u16) -> (OwnedFd, OwnedFd) {
    use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).unwrap();
    grantpt(&master).unwrap();
    unlockpt(&master).unwrap();
    let name = ptsname(&master, Vec::new()).unwrap();
    let slave: OwnedFd = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(name.to_str().unwrap())
        .unwrap()
        .into();
    resize(&master, rows, cols);
    (master, slave)
}

fn resize(fd: &OwnedFd, rows: u16, cols: u16) {
    let ws = Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    termios::tcsetwinsize(fd, ws).unwrap();
}

/// Reads from `master` until `needle` has been seen; generous deadline so
/// a broken relay fails the test instead of hanging it.
fn read_until(master: &OwnedFd, seen: &mut String, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !seen.contains(needle) {
        assert!(
            Instant::now() < deadline,
            "never saw {needle:?} in {seen:?}"
        );
        let mut fds = [nix::poll::PollFd::new(
            master.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        if nix::poll::poll(&mut fds, 1000u16).unwrap() == 0 {
            continue;
        }
        let mut buf = [0u8; 4096];
        match rustix::io::read(master, &mut buf) {
            Ok(n) => seen.push_str(&String::from_utf8_lossy(&buf[..n])),
            Err(e) => panic!("reading the terminal failed: {e} after {seen:?}"),
        }
    }
}

#[test]
fn interactive_tty_relays_input_output_and_window_size() {
    let f = Kiln::with_busybox_rootfs();
    let (master, slave) = pty(33, 77);
    let before = termios::tcgetattr(&slave).unwrap();
    let mut child = f
        .run_command()
        .args(["--rm", "-i", "-t", "--rootfs"])
        .arg(f.rootfs())
        .args(["sh", "-c", "stty size; read x; stty size; echo got:$x"])
        .stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut seen = String::new();
    // The container's terminal starts with the user's size.
    read_until(&master, &mut seen, "33 77");
    // kiln has put the user's terminal in raw mode meanwhile.
    let raw = termios::tcgetattr(&slave).unwrap();
    assert!(!raw.local_modes.contains(termios::LocalModes::ICANON));
    // A resize reaches the container (the terminal would send SIGWINCH to
    // kiln's process group; here kiln is not its session, so we do).
    resize(&master, 40, 100);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGWINCH,
    )
    .unwrap();
    // kill(2) made SIGWINCH pending before the input below exists, and
    // kiln handles signals before input within one poll round, so the
    // resize is applied before the container reads "hello".
    let mut m = std::fs::File::from(master.try_clone().unwrap());
    m.write_all(b"hello\r").unwrap();
    read_until(&master, &mut seen, "got:hello");
    let after_input = &seen[seen.find("hello").unwrap()..];
    assert!(after_input.contains("40 100"), "{seen:?}");
    let status = child.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(0), "{err}");
    // And restored it on the way out.
    let after = termios::tcgetattr(&slave).unwrap();
    assert_eq!(after.local_modes, before.local_modes);
    assert_eq!(after.input_modes, before.input_modes);
}

#[test]
fn tty_with_piped_stdin_is_refused_like_docker() {
    let f = Kiln::with_busybox_rootfs();
    let ran = support::kiln::ran(
        f.run_command()
            .args(["--rm", "-i", "-t", "--rootfs"])
            .arg(f.rootfs())
            .arg("true")
            .stdin(Stdio::piped())
            .output()
            .unwrap(),
    );
    assert_eq!(ran.code, 125);
    assert!(
        ran.stderr.contains("the input device is not a TTY"),
        "{ran:?}"
    );
}
