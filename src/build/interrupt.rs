//! SIGINT and SIGTERM during a solve cancel the build instead of killing
//! kiln outright.
//!
//! Dying on the signal would leave the cleanup to chance: containers die
//! with kiln (their init has `PR_SET_PDEATHSIG`), but host-side views,
//! scratch dirs and cgroups would stay until the next store open. A
//! cancelled solve instead kills its containers through their kill
//! switches, waits for every running step to return and cleans up as
//! after a failed step (BuildKit cancels its solve the same way when the
//! client goes away).
//!
//! Signal dispositions are process-wide while solves are not: a
//! multi-platform build runs one solve per platform at once. So the
//! handling is one process-global registry of the solves in progress: the
//! first [`Interrupts`] guard saves the dispositions and installs kiln's
//! handler, a signal cancels every registered solve, and the last guard
//! to drop puts the saved dispositions back, so a signal after the solves
//! (while images are written) has its usual effect again.
//!
//! The handler is kiln's own, not tokio's: tokio installs its OS handler
//! once per process and never again (tokio `src/signal/unix.rs`,
//! `signal_enable`: `signal_hook_registry::register` inside a per-signal
//! `Once`), so once the dispositions were restored a second build in the
//! same process would not catch anything. Ours only writes the signal number to a pipe
//! (async-signal-safe); a thread started with the first guard reads it
//! and cancels the tokens (which runs their kill-switch hooks, so it
//! cannot be done inside the handler).

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use crate::solver::CancelToken;

/// The signals that cancel a build.
const SIGNALS: [libc::c_int; 2] = [libc::SIGINT, libc::SIGTERM];

/// The solves in progress, and the dispositions to put back after them.
struct Registry {
    /// Registered solves by guard id: what to cancel, where to record the
    /// signal.
    solves: Vec<(u64, CancelToken, Arc<AtomicI32>)>,
    /// The dispositions before the first guard; empty while none is held.
    saved: Vec<(libc::c_int, libc::sigaction)>,
    next_id: u64,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    solves: Vec::new(),
    saved: Vec::new(),
    next_id: 0,
});

/// The write end of the self-pipe the handler writes to (-1: none).
static PIPE_WRITE: AtomicI32 = AtomicI32::new(-1);

/// The self-pipe and its reader thread, made once per process; `None` if
/// the pipe could not be made (signals then end kiln at once, as before
/// any build).
static PIPE: OnceLock<Option<()>> = OnceLock::new();

/// Registers one solve for the length of the guard: a signal cancels
/// `token`. The first guard of the process's overlapping guards installs
/// the handler; the last one restores the previous dispositions.
pub struct Interrupts {
    id: u64,
    received: Arc<AtomicI32>,
}

impl Interrupts {
    /// Starts catching [`SIGNALS`] for the solve that `token` cancels.
    pub fn catch(token: CancelToken) -> Interrupts {
        let received = Arc::new(AtomicI32::new(0));
        let ready = PIPE.get_or_init(start_reader).is_some();
        let mut registry = lock();
        let id = registry.next_id;
        registry.next_id += 1;
        if registry.solves.is_empty() && ready {
            registry.saved = install();
        }
        registry.solves.push((id, token, received.clone()));
        Interrupts { id, received }
    }

    /// Stops catching for this solve; returns the signal that cancelled
    /// it, if one did.
    pub fn finish(self) -> Option<i32> {
        match self.received.load(Ordering::SeqCst) {
            0 => None,
            sig => Some(sig),
        }
    }
}

impl Drop for Interrupts {
    fn drop(&mut self) {
        let mut registry = lock();
        registry.solves.retain(|(id, _, _)| *id != self.id);
        if registry.solves.is_empty() {
            for (sig, old) in std::mem::take(&mut registry.saved) {
                // SAFETY: reinstalls a disposition sigaction(2) returned.
                unsafe {
                    libc::sigaction(sig, &old, std::ptr::null_mut());
                }
            }
        }
    }
}

/// The registry; a panic while it was held leaves it usable (its data is
/// consistent after every statement).
fn lock() -> std::sync::MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

/// Installs [`on_signal`] for [`SIGNALS`]; returns the dispositions it
/// replaced.
fn install() -> Vec<(libc::c_int, libc::sigaction)> {
    SIGNALS
        .iter()
        .filter_map(|&sig| {
            // SAFETY: sigaction is plain C data; all zeroes is a valid
            // value (SIG_DFL, empty mask, no flags).
            let mut new: libc::sigaction = unsafe { std::mem::zeroed() };
            new.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            // SA_RESTART: a signal does not fail other threads' reads
            // with EINTR.
            new.sa_flags = libc::SA_RESTART;
            // SAFETY: as above.
            let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
            // SAFETY: sigaction(2) with valid pointers; the handler only
            // calls async-signal-safe functions.
            let rc = unsafe { libc::sigaction(sig, &new, &mut old) };
            if rc != 0 {
                tracing::warn!(
                    signal = signal_name(sig),
                    error = %std::io::Error::last_os_error(),
                    "cannot catch the signal: it will end kiln at once"
                );
            }
            (rc == 0).then_some((sig, old))
        })
        .collect()
}

/// The handler: hands the signal to the reader thread.
extern "C" fn on_signal(sig: libc::c_int) {
    let fd = PIPE_WRITE.load(Ordering::Relaxed);
    if fd >= 0 {
        let byte = sig as u8;
        // SAFETY: write(2) is async-signal-safe; a full pipe (a burst of
        // signals) drops the byte, and one is enough to cancel. errno is
        // saved and restored so the interrupted code does not see ours.
        unsafe {
            let errno = *libc::__errno_location();
            libc::write(fd, (&byte as *const u8).cast(), 1);
            *libc::__errno_location() = errno;
        }
    }
}

/// Makes the self-pipe and starts the thread that cancels the registered
/// solves for each signal read from it.
fn start_reader() -> Option<()> {
    let mut fds = [0; 2];
    // SAFETY: pipe2(2) fills the two descriptors. Close-on-exec: no step
    // process inherits them; non-blocking write: the handler never waits.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        tracing::warn!(
            error = %std::io::Error::last_os_error(),
            "cannot catch SIGINT/SIGTERM: a signal will end kiln at once"
        );
        return None;
    }
    let [read, write] = fds;
    // SAFETY: fcntl(2) on a descriptor just made.
    unsafe {
        let flags = libc::fcntl(write, libc::F_GETFL);
        libc::fcntl(write, libc::F_SETFL, flags | libc::O_NONBLOCK);
    }
    PIPE_WRITE.store(write, Ordering::SeqCst);
    let spawned = std::thread::Builder::new()
        .name("kiln-signals".into())
        .spawn(move || loop {
            let mut byte = 0u8;
            // SAFETY: reads one byte into a live buffer.
            let n = unsafe { libc::read(read, (&mut byte as *mut u8).cast(), 1) };
            match n {
                1 => cancel_all(i32::from(byte)),
                -1 if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted => {
                }
                _ => return,
            }
        });
    match spawned {
        Ok(_) => Some(()),
        Err(e) => {
            PIPE_WRITE.store(-1, Ordering::SeqCst);
            tracing::warn!(error = %e, "cannot catch SIGINT/SIGTERM: a signal will end kiln at once");
            None
        }
    }
}

/// Cancels every registered solve for `sig`. A signal that arrives after
/// the last guard is gone (read late from the pipe) cancels nothing.
fn cancel_all(sig: i32) {
    tracing::info!(signal = signal_name(sig), "cancelling the build");
    let tokens: Vec<CancelToken> = lock()
        .solves
        .iter()
        .map(|(_, token, received)| {
            // The first signal is the one reported.
            let _ = received.compare_exchange(0, sig, Ordering::SeqCst, Ordering::SeqCst);
            token.clone()
        })
        .collect();
    // Outside the lock: cancelling runs the tokens' kill-switch hooks.
    for token in tokens {
        token.cancel();
    }
}

/// `SIGINT`/`SIGTERM` for messages.
pub fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGINT => "SIGINT",
        libc::SIGTERM => "SIGTERM",
        _ => "a signal",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The handler address of `sig` now.
    fn handler(sig: libc::c_int) -> libc::sighandler_t {
        // SAFETY: as in `install`: all zeroes is a valid sigaction.
        let mut now: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: a null new action only reads the current one.
        unsafe { libc::sigaction(sig, std::ptr::null(), &mut now) };
        now.sa_sigaction
    }

    fn wait_cancelled(token: &CancelToken) -> bool {
        // Bounded wait for the reader thread, not a timing assertion.
        for _ in 0..500 {
            if token.is_cancelled() {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        false
    }

    /// One test: the registry is process-wide, parallel tests would see
    /// each other's guards.
    #[test]
    fn overlapping_guards_restore_the_dispositions_after_the_last_and_a_later_guard_still_catches()
    {
        let ours = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        let before = handler(libc::SIGTERM);
        let before_int = handler(libc::SIGINT);
        assert_ne!(before, ours);

        let (a, b) = (CancelToken::new(), CancelToken::new());
        let first = Interrupts::catch(a.clone());
        let second = Interrupts::catch(b.clone());
        assert_eq!(handler(libc::SIGTERM), ours);
        drop(first);
        assert_eq!(
            handler(libc::SIGTERM),
            ours,
            "restored before the last guard"
        );
        assert_eq!(handler(libc::SIGINT), ours);
        // SAFETY: our handler is installed, so the signal cancels the
        // second solve instead of ending the test process.
        unsafe { libc::kill(libc::getpid(), libc::SIGTERM) };
        assert!(wait_cancelled(&b), "the registered solve was not cancelled");
        assert!(!a.is_cancelled(), "a finished solve was cancelled");
        assert_eq!(second.finish(), Some(libc::SIGTERM));
        assert_eq!(
            handler(libc::SIGTERM),
            before,
            "not restored after the last"
        );

        // A later build in the same process catches again.
        let c = CancelToken::new();
        let third = Interrupts::catch(c.clone());
        assert_eq!(handler(libc::SIGINT), ours);
        // SAFETY: as above.
        unsafe { libc::kill(libc::getpid(), libc::SIGINT) };
        assert!(wait_cancelled(&c), "a later guard did not catch the signal");
        assert_eq!(third.finish(), Some(libc::SIGINT));
        assert_eq!(handler(libc::SIGINT), before_int);
    }
}
