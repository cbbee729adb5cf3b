//! Test support: run a closure in a forked child and bring back a few
//! numbers. Tests of process-wide kernel state (capabilities, seccomp
//! filters, rlimits) must not change the test harness process itself, and
//! such state cannot be undone, so each probe gets its own process.

use std::fs::File;
use std::io::{Read, Write};

use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, pipe, ForkResult};

/// Forks, runs `probe` in the child and returns its numbers. The child only
/// makes syscalls and exits with `_exit`, so it never returns into the test
/// harness. Panics (failing the test) if the child dies before reporting,
/// naming its wait status.
pub(crate) fn run_in_child<const N: usize>(probe: impl FnOnce() -> [i64; N]) -> [i64; N] {
    let (read_end, write_end) = pipe().expect("pipe for child probe");
    // SAFETY: the child only runs `probe` (syscalls on preallocated data),
    // writes to the pipe and calls _exit.
    match unsafe { fork() }.expect("fork for child probe") {
        ForkResult::Child => {
            drop(read_end);
            let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(probe));
            let code = match out {
                Ok(values) => {
                    let mut bytes = [0u8; 8 * 16];
                    for (i, v) in values.iter().enumerate().take(16) {
                        bytes[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
                    }
                    let mut file = File::from(write_end);
                    match file.write_all(&bytes[..8 * N.min(16)]) {
                        Ok(()) => 0,
                        Err(_) => 102,
                    }
                }
                Err(_) => 101,
            };
            // SAFETY: leave without running the harness's exit handlers.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => {
            drop(write_end);
            assert!(N <= 16, "child probe carries at most 16 numbers");
            let mut bytes = vec![0u8; 8 * N];
            let read = File::from(read_end).read_exact(&mut bytes);
            let status = waitpid(child, None).expect("waitpid for child probe");
            assert!(
                read.is_ok() && status == WaitStatus::Exited(child, 0),
                "child probe did not report: {status:?}"
            );
            let mut out = [0i64; N];
            for (i, v) in out.iter_mut().enumerate() {
                let mut word = [0u8; 8];
                word.copy_from_slice(&bytes[i * 8..i * 8 + 8]);
                *v = i64::from_le_bytes(word);
            }
            out
        }
    }
}
