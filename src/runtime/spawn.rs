//! Starting the container's init: `clone(2)` into new namespaces, then at
//! once `execveat(2)` of the sealed kiln binary.
//!
//! **Re-exec, not raw fork.** The child of `clone` is a copy of a possibly
//! multi-threaded kiln, where only async-signal-safe calls are sound. It
//! therefore does nothing but raw syscalls on values prepared beforehand —
//! `prctl`, `dup3`, `close_range`, `execveat` — and never allocates. All the
//! real setup happens in the freshly executed, single-threaded init
//! ([`super::init`]), which may allocate freely.
//!
//! The init gets: stdin/stdout/stderr on 0-2, its end of the
//! [`Channel`](super::channel::Channel) on fd 3, the read end of the cgroup
//! sync pipe on fd 4, every other fd marked
//! close-on-exec (so nothing of kiln's leaks, CVE-2024-21626), and all
//! signals blocked (so no kiln signal handler can run in the child before
//! exec; the init unblocks them).

use rustix::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::ffi::{CStr, CString};

/// argv[1] that makes `kiln` run as a container init; checked in
/// `main` before anything else so the init starts in microseconds.
pub const INIT_ARG: &str = "__kiln-init";

/// The fd on which the init finds its channel.
pub const INIT_CHANNEL_FD: i32 = 3;

/// The fd on which the init reads kiln's "cgroup joined" byte (a pipe, so
/// a byte the init never reads cannot turn into ECONNRESET on the
/// channel and swallow the init's error message).
pub const INIT_SYNC_FD: i32 = 4;

/// Why the init could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// Duplicating a standard fd failed.
    #[error("failed to prepare the container's file descriptors")]
    Dup(#[source] std::io::Error),
    /// `clone(2)` failed (e.g. namespaces not permitted).
    #[error("failed to create the container's namespaces (clone)")]
    Clone(#[source] std::io::Error),
}

/// The init as seen from kiln.
#[derive(Debug)]
pub struct InitChild {
    /// Its pid in kiln's pid namespace.
    pub pid: i32,
    /// A pidfd for it: pollable for exit, safe against pid reuse.
    pub pidfd: OwnedFd,
}

/// Clones a child into the namespaces in `ns_flags` (`CLONE_NEW*`) and
/// execs `exe` there as the init, with `stdio` on 0-2, `channel` on 3 and
/// `sync` on 4.
pub fn spawn_init(
    exe: BorrowedFd<'_>,
    ns_flags: libc::c_int,
    stdio: [BorrowedFd<'_>; 3],
    channel: BorrowedFd<'_>,
    sync: BorrowedFd<'_>,
) -> Result<InitChild, SpawnError> {
    spawn_sealed(exe, INIT_ARG, ns_flags, stdio, channel, sync)
}

/// [`spawn_init`] with another marker argument: `kiln exec`'s joiner
/// ([`super::join`]) starts the same way, in no new namespace.
pub fn spawn_sealed(
    exe: BorrowedFd<'_>,
    marker: &str,
    ns_flags: libc::c_int,
    stdio: [BorrowedFd<'_>; 3],
    channel: BorrowedFd<'_>,
    sync: BorrowedFd<'_>,
) -> Result<InitChild, SpawnError> {
    // Move every fd the child needs above the range it will land in, so the
    // dup3 calls below never clobber a source (e.g. when kiln's own stdin
    // is closed and the socket got fd 0).
    let high: Vec<OwnedFd> = stdio
        .iter()
        .chain([&channel, &sync])
        .map(|fd| rustix::io::fcntl_dupfd_cloexec(fd, 10).map_err(|e| SpawnError::Dup(e.into())))
        .collect::<Result<_, _>>()?;
    let sources: [i32; 5] = std::array::from_fn(|i| high[i].as_raw_fd());

    let argv0 = c"kiln-init";
    let argv1 = CString::new(marker).map_err(|e| SpawnError::Dup(e.into()))?;
    let argv: [*const libc::c_char; 3] = [argv0.as_ptr(), argv1.as_ptr(), std::ptr::null()];
    // The init inherits no environment from kiln except its log filter.
    let log = std::env::var("KILN_LOG")
        .ok()
        .and_then(|v| CString::new(format!("KILN_LOG={v}")).ok());
    let envp: [*const libc::c_char; 2] = [
        log.as_deref().map_or(std::ptr::null(), CStr::as_ptr),
        std::ptr::null(),
    ];
    let exe_fd = exe.as_raw_fd();

    let mut pidfd: libc::c_int = -1;
    let flags = (ns_flags | libc::CLONE_PIDFD) as libc::c_ulong | libc::SIGCHLD as libc::c_ulong;
    let pid = with_signals_blocked(|| {
        // SAFETY: a fork-like clone (no CLONE_VM, no new stack): the child
        // runs on a copy-on-write copy of this stack and only calls
        // `child_exec`, which is async-signal-safe.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_clone,
                flags,
                std::ptr::null_mut::<libc::c_void>(),
                &mut pidfd as *mut libc::c_int,
                std::ptr::null_mut::<libc::c_void>(),
                0usize,
            )
        };
        if ret == 0 {
            // SAFETY: we are the child; see `child_exec`.
            unsafe { child_exec(&sources, exe_fd, &argv, &envp) }
        }
        ret
    });
    if pid < 0 {
        return Err(SpawnError::Clone(std::io::Error::last_os_error()));
    }
    drop(high);
    // SAFETY: CLONE_PIDFD stored a new fd owned by nobody else.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
    Ok(InitChild {
        pid: pid as i32,
        pidfd,
    })
}

/// The clone child's only code: place the fds and exec the init.
///
/// # Safety
/// Must only run in the child of a fork-like clone. It makes raw syscalls on
/// values prepared before the clone and never returns.
unsafe fn child_exec(
    sources: &[i32; 5],
    exe_fd: i32,
    argv: &[*const libc::c_char; 3],
    envp: &[*const libc::c_char; 2],
) -> ! {
    // Die with kiln: a container must not outlive the `kiln run` that
    // waits for it (the init sets this again after changing credentials,
    // which clears it).
    libc::syscall(
        libc::SYS_prctl,
        libc::PR_SET_PDEATHSIG,
        libc::SIGKILL,
        0,
        0,
        0,
    );
    for (target, &src) in sources.iter().enumerate() {
        // dup3 without O_CLOEXEC clears close-on-exec on the copy.
        if libc::syscall(libc::SYS_dup3, src, target as i32, 0) < 0 {
            libc::syscall(libc::SYS_exit_group, 126);
        }
    }
    // Everything else kiln had open closes at exec (CVE-2024-21626). Older
    // kernels without CLOSE_RANGE_CLOEXEC rely on kiln's fds all being
    // O_CLOEXEC already (Rust's std opens everything so).
    libc::syscall(
        libc::SYS_close_range,
        sources.len() as u32,
        u32::MAX,
        libc::CLOSE_RANGE_CLOEXEC,
    );
    libc::syscall(
        libc::SYS_execveat,
        exe_fd,
        c"".as_ptr(),
        argv.as_ptr(),
        envp.as_ptr(),
        libc::AT_EMPTY_PATH,
    );
    libc::syscall(libc::SYS_exit_group, 127);
    unreachable_exit()
}

fn unreachable_exit() -> ! {
    // exit_group does not return; this satisfies the type checker.
    loop {
        std::hint::spin_loop();
    }
}

/// Runs `f` with every signal blocked in this thread, restoring the mask
/// afterwards. The clone child inherits the blocked mask, so no handler of
/// kiln's can run in it before exec.
fn with_signals_blocked<R>(f: impl FnOnce() -> R) -> R {
    use nix::sys::signal::{pthread_sigmask, SigSet, SigmaskHow};
    let mut old = SigSet::empty();
    let _ = pthread_sigmask(
        SigmaskHow::SIG_SETMASK,
        Some(&SigSet::all()),
        Some(&mut old),
    );
    let r = f();
    let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
    r
}
