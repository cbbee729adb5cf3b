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
//! The handlers are tokio's (a self-pipe that the runtime reads); the
//! previous dispositions come back when the [`Interrupts`] guard is
//! dropped, so a signal after the solve (while the image is written) has
//! its usual effect again.

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;

use crate::solver::CancelToken;

/// The signals that cancel a build.
const SIGNALS: [libc::c_int; 2] = [libc::SIGINT, libc::SIGTERM];

/// Catches [`SIGNALS`] for the length of a solve; restores the previous
/// dispositions on drop.
pub struct Interrupts {
    saved: Vec<(libc::c_int, libc::sigaction)>,
    received: Arc<AtomicI32>,
}

impl Interrupts {
    /// Saves the current dispositions; call before [`Interrupts::watch`].
    pub fn new() -> Interrupts {
        let saved = SIGNALS
            .iter()
            .filter_map(|&sig| {
                // SAFETY: sigaction is plain C data; all zeroes is a valid
                // value (SIG_DFL, empty mask, no flags).
                let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
                // SAFETY: sigaction(2) with a null new action only reads
                // the current one into `old`.
                let rc = unsafe { libc::sigaction(sig, std::ptr::null(), &mut old) };
                (rc == 0).then_some((sig, old))
            })
            .collect();
        Interrupts {
            saved,
            received: Arc::new(AtomicI32::new(0)),
        }
    }

    /// Waits (inside the solve's runtime) for one of the signals, then
    /// cancels `token`. Spawn it next to the solve and abort it after.
    pub fn watch(&self, token: CancelToken) -> impl std::future::Future<Output = ()> + Send {
        let received = self.received.clone();
        async move {
            use tokio::signal::unix::{signal, SignalKind};
            let (Ok(mut int), Ok(mut term)) = (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
            ) else {
                tracing::warn!("cannot catch SIGINT/SIGTERM: a signal will end kiln at once");
                return;
            };
            let sig = tokio::select! {
                _ = int.recv() => libc::SIGINT,
                _ = term.recv() => libc::SIGTERM,
            };
            received.store(sig, Ordering::SeqCst);
            token.cancel();
        }
    }

    /// Restores the previous dispositions; returns the signal that
    /// cancelled the build, if one did.
    pub fn finish(self) -> Option<i32> {
        match self.received.load(Ordering::SeqCst) {
            0 => None,
            sig => Some(sig),
        }
    }
}

impl Drop for Interrupts {
    fn drop(&mut self) {
        for (sig, old) in &self.saved {
            // SAFETY: reinstalls a disposition sigaction(2) returned.
            unsafe {
                libc::sigaction(*sig, old, std::ptr::null_mut());
            }
        }
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
