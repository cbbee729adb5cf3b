//! Bounded parallelism for pulls and pushes: `n` jobs (one per layer) on at
//! most `limit` threads.
//!
//! docker's pull and push work alike: a fixed number of transfers at once
//! (`max-concurrent-downloads`/`-uploads`, moby/moby distribution/xfer/
//! transfer.go, `transferManager`), and a failed layer ends the whole
//! transfer (distribution/xfer/upload.go, `LayerUploadManager.Upload`,
//! returns its error, and releasing its watchers cancels the rest). kiln
//! starts no new job after a failure but lets running ones finish rather
//! than cut a blob off mid-write. One helper keeps pull and push from
//! drifting apart on this rule.

use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;

/// What became of every job of a [`run_bounded`] call.
#[derive(Debug)]
pub struct JobResults<T, E> {
    /// One slot per job, by index: `None` for a job never started (after a
    /// failure or a stop asked by the caller).
    pub results: Vec<Option<Result<T, E>>>,
    /// The job whose error arrived first: the error that stopped the run.
    first_failed: Option<usize>,
}

impl<T, E> JobResults<T, E> {
    /// The first error to arrive (the one that stopped new starts), or
    /// every job's value when none failed and all ran.
    ///
    /// Jobs never started (because the caller stopped the run) are `None`.
    pub fn into_result(mut self) -> Result<Vec<Option<T>>, E> {
        if let Some(i) = self.first_failed {
            if let Some(Err(e)) = self.results[i].take() {
                return Err(e);
            }
        }
        Ok(self
            .results
            .into_iter()
            .map(|r| r.and_then(Result::ok))
            .collect())
    }
}

/// Runs `job(0)`, …, `job(n - 1)` on at most `limit` threads (at least one),
/// in index order of start.
///
/// `arrived` is called on the calling thread with each result as it
/// arrives, so the caller can act on results while later jobs still run
/// (a pull unpacks layers as they come). Returning
/// [`ControlFlow::Break`] stops the run as a failed job does.
///
/// Once a job fails, or `arrived` breaks, no new job starts and `arrived`
/// is not called again; running jobs finish, and this returns only when
/// every started job has returned, with all their results.
pub fn run_bounded<T, E, J, A>(n: usize, limit: usize, job: J, mut arrived: A) -> JobResults<T, E>
where
    T: Send,
    E: Send,
    J: Fn(usize) -> Result<T, E> + Sync,
    A: FnMut(usize, &Result<T, E>) -> ControlFlow<()>,
{
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let mut results: Vec<Option<Result<T, E>>> = (0..n).map(|_| None).collect();
    let mut first_failed = None;
    std::thread::scope(|s| {
        let (tx, rx) = mpsc::channel::<(usize, Result<T, E>)>();
        for _ in 0..limit.max(1).min(n) {
            let tx = tx.clone();
            let (next, stop, job) = (&next, &stop, &job);
            s.spawn(move || loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                // Checked after taking an index, so a stop set before this
                // point is always seen before the job starts.
                if i >= n || stop.load(Ordering::SeqCst) {
                    break;
                }
                let r = job(i);
                if r.is_err() {
                    // Before the result is sent: whoever sees the error
                    // knows no job starts after it.
                    stop.store(true, Ordering::SeqCst);
                }
                if tx.send((i, r)).is_err() {
                    break;
                }
            });
        }
        drop(tx);
        let mut listening = true;
        for (i, r) in rx {
            if r.is_err() && first_failed.is_none() {
                first_failed = Some(i);
            }
            if listening {
                if arrived(i, &r).is_break() {
                    stop.store(true, Ordering::SeqCst);
                    listening = false;
                }
                if r.is_err() {
                    listening = false;
                }
            }
            results[i] = Some(r);
        }
    });
    JobResults {
        results,
        first_failed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Condvar, Mutex};
    use std::time::Duration;

    fn every<T, E>(_: usize, _: &Result<T, E>) -> ControlFlow<()> {
        ControlFlow::Continue(())
    }

    /// Counts jobs running at once; each job waits until `limit` of them
    /// have run together (or every job has started), so a pool that ran
    /// more than `limit` would be caught at its peak.
    struct Gauge {
        state: Mutex<(usize, usize, usize)>, // running, peak, started
        changed: Condvar,
    }

    impl Gauge {
        fn job(&self, limit: usize, n: usize) {
            let mut g = self.state.lock().unwrap();
            g.0 += 1;
            g.1 = g.1.max(g.0);
            g.2 += 1;
            self.changed.notify_all();
            // A liveness guard, not a timing assertion: a pool that never
            // reaches `limit` fails on the peak below instead of hanging.
            let (mut g, _) = self
                .changed
                .wait_timeout_while(g, Duration::from_secs(30), |g| g.1 < limit && g.2 < n)
                .unwrap();
            g.0 -= 1;
        }
    }

    #[test]
    fn runs_every_job_once_and_never_more_than_the_limit_at_once() {
        for (n, limit) in [(10, 3), (2, 3), (5, 1), (7, 7)] {
            let gauge = Gauge {
                state: Mutex::new((0, 0, 0)),
                changed: Condvar::new(),
            };
            let out = run_bounded(
                n,
                limit,
                |i| -> Result<usize, ()> {
                    gauge.job(limit, n);
                    Ok(i * 10)
                },
                every,
            );
            let values = out.into_result().unwrap();
            let expected: Vec<_> = (0..n).map(|i| Some(i * 10)).collect();
            assert_eq!(values, expected, "n={n} limit={limit}");
            let peak = gauge.state.lock().unwrap().1;
            assert_eq!(peak, limit.min(n), "n={n} limit={limit}");
        }
    }

    #[test]
    fn a_failed_job_stops_new_starts() {
        let started = AtomicUsize::new(0);
        let out = run_bounded(
            6,
            1,
            |i| {
                started.fetch_add(1, Ordering::SeqCst);
                if i == 2 {
                    Err("layer 2")
                } else {
                    Ok(i)
                }
            },
            every,
        );
        assert_eq!(started.load(Ordering::SeqCst), 3);
        assert!(matches!(out.results[..2], [Some(Ok(0)), Some(Ok(1))]));
        assert!(out.results[3..].iter().all(Option::is_none));
        assert_eq!(out.into_result().unwrap_err(), "layer 2");
    }

    /// Job 1 runs beside job 0 and returns only after the caller saw job
    /// 0's error: its result is still returned, and nothing starts after.
    #[test]
    fn jobs_running_at_a_failure_finish_and_keep_their_results() {
        let seen_error = (Mutex::new(false), Condvar::new());
        let started = AtomicUsize::new(0);
        let mut arrivals = Vec::new();
        let out = run_bounded(
            5,
            2,
            |i| {
                started.fetch_add(1, Ordering::SeqCst);
                match i {
                    0 => {
                        // Fails only once job 1 runs beside it.
                        while started.load(Ordering::SeqCst) < 2 {
                            std::thread::yield_now();
                        }
                        Err(format!("job {i}"))
                    }
                    _ => {
                        let (lock, cv) = &seen_error;
                        let g = cv.wait_while(lock.lock().unwrap(), |seen| !*seen);
                        drop(g);
                        Ok(i)
                    }
                }
            },
            |i, r| {
                arrivals.push(i);
                if r.is_err() {
                    *seen_error.0.lock().unwrap() = true;
                    seen_error.1.notify_all();
                }
                ControlFlow::Continue(())
            },
        );
        assert_eq!(started.load(Ordering::SeqCst), 2);
        // Nothing is reported to the caller after the failure.
        assert_eq!(arrivals, vec![0]);
        assert!(matches!(out.results[1], Some(Ok(1))));
        assert!(out.results[2..].iter().all(Option::is_none));
        assert_eq!(out.into_result().unwrap_err(), "job 0");
    }

    /// A break from `arrived` takes effect when `arrived` returns, which
    /// no job can observe: a job already past its stop check may still
    /// start (so "how many started" is a race, not asserted here; the stop
    /// flag itself is the one `a_failed_job_stops_new_starts` checks).
    /// What is certain: `arrived` is never called again, and the run
    /// returns once the started jobs have.
    #[test]
    fn after_the_caller_stops_arrived_is_not_called_again() {
        let arrivals = Mutex::new(Vec::new());
        let out = run_bounded(
            20,
            2,
            |i| -> Result<usize, ()> { Ok(i) },
            |i, _| {
                arrivals.lock().unwrap().push(i);
                ControlFlow::Break(())
            },
        );
        assert_eq!(arrivals.lock().unwrap().len(), 1);
        let first = arrivals.lock().unwrap()[0];
        let values = out.into_result().unwrap();
        assert_eq!(values[first], Some(first));
    }

    #[test]
    fn no_jobs_start_no_threads() {
        let out = run_bounded(0, 3, |_| -> Result<(), ()> { unreachable!() }, every);
        assert!(out.results.is_empty());
        assert_eq!(out.into_result().unwrap(), Vec::<Option<()>>::new());
    }
}
