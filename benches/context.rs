//! Context digest speed: a generated 10,000-file, ~430 MB context, digested
//! cold (no stat cache: every file read and hashed) and warm (stat cache
//! from the previous run: scan and stat only).
//!
//! Run: `cargo bench --bench context`. Wall and CPU time are both shown:
//! with other work on the machine, CPU time / threads is the idle wall time. Files stay in the page cache between
//! runs, so "cold" measures hashing, not the disk. Settings via env:
//! `KILN_BENCH_DIR` (default /tmp/kiln-context-bench), `KILN_BENCH_RUNS`,
//! `KILN_BENCH_WARM_ONLY` (one cold run, for profiling the warm path).

use kiln::context::digest::{ContextDigester, Selection};
use kiln::context::scan::{scan, IncludeAll};
use kiln::context::stat_cache::StatCacheFile;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

const FILES: usize = 10_000;
/// Sizes spread evenly over 1..86 KB: about 430 MB in all.
const MIN_SIZE: usize = 1_000;
const SIZE_SPREAD: usize = 85_000;

fn main() {
    let dir = std::env::var_os("KILN_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp/kiln-context-bench"));
    let runs: usize = std::env::var("KILN_BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(7);
    let context = dir.join("context");
    let store = dir.join("store");
    let bytes = generate(&context);
    println!(
        "context: {} files, {:.0} MB at {}",
        FILES,
        bytes as f64 / 1e6,
        context.display()
    );
    println!("threads: {}", rayon::current_num_threads());

    let cache_file = StatCacheFile::open(&store, &context).path().to_path_buf();
    let mut cold = Vec::new();
    let mut cold_cpu = Vec::new();
    // KILN_BENCH_WARM_ONLY=1 (for profiling): one cold run to fill the cache.
    let cold_runs = if std::env::var_os("KILN_BENCH_WARM_ONLY").is_some() {
        1
    } else {
        runs
    };
    for _ in 0..cold_runs {
        let _ = fs::remove_file(&cache_file);
        let cpu = cpu_time();
        let (total, _, stats) = digest_once(&context, &store);
        cold_cpu.push(cpu_time() - cpu);
        assert_eq!(stats.0, FILES as u64, "cold run must read every file");
        cold.push(total);
    }
    let mut warm = Vec::new();
    let mut warm_cpu = Vec::new();
    let mut phases = Vec::new();
    for _ in 0..runs {
        let cpu = cpu_time();
        let (total, phase, stats) = digest_once(&context, &store);
        warm_cpu.push(cpu_time() - cpu);
        assert_eq!(stats.0, 0, "warm run must not read files");
        warm.push(total);
        phases.push(phase);
    }
    report("cold (no stat cache)", &mut cold, bytes);
    report("cold CPU (user+sys) ", &mut cold_cpu, 0);
    report("warm (stat cache)   ", &mut warm, 0);
    report("warm CPU (user+sys) ", &mut warm_cpu, 0);
    phases.sort_by_key(|p| p.iter().sum::<Duration>());
    let p = phases[phases.len() / 2];
    println!(
        "warm median phases: scan {:.1} ms, cache load {:.1} ms, digest {:.1} ms, save {:.1} ms",
        ms(p[0]),
        ms(p[1]),
        ms(p[2]),
        ms(p[3])
    );
}

/// One build's worth of context digesting: scan, load cache, digest all,
/// save. Returns the total, the four phases and (files read, cache hits).
fn digest_once(context: &Path, store: &Path) -> (Duration, [Duration; 4], (u64, u64)) {
    let t0 = Instant::now();
    let tree = scan(context, &IncludeAll).expect("scan");
    let t1 = Instant::now();
    let cache = Arc::new(StatCacheFile::open(store, context));
    let t2 = Instant::now();
    let digester = ContextDigester::new(Arc::new(tree), cache.clone());
    let digest = digester.digest(&Selection::path("/")).expect("digest");
    let t3 = Instant::now();
    cache.save().expect("save");
    let t4 = Instant::now();
    std::hint::black_box(digest);
    let stats = digester.stats();
    (
        t4 - t0,
        [t1 - t0, t2 - t1, t3 - t2, t4 - t3],
        (stats.files_read, stats.cache_hits),
    )
}

fn report(label: &str, times: &mut [Duration], bytes: u64) {
    times.sort();
    let median = times[times.len() / 2];
    let mut line = format!(
        "{label}: median {:7.1} ms, min {:7.1} ms",
        ms(median),
        ms(times[0])
    );
    if bytes > 0 {
        line += &format!(" ({:.2} GB/s)", bytes as f64 / median.as_secs_f64() / 1e9);
    }
    println!("{line}");
}

/// CPU time of this process so far (all threads, user + system): on a
/// machine shared with other work, wall time says little, this says what
/// the digest costs.
fn cpu_time() -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the rusage it is given.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) };
    // SAFETY: zeroed is a valid rusage, and getrusage only writes into it.
    let usage = unsafe { usage.assume_init() };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Writes the context once (reused while the marker matches) and returns
/// its size in bytes. Layout: 10 × 10 directories of 100 files.
fn generate(context: &Path) -> u64 {
    let marker = context.with_extension("generated");
    let total: u64 = (0..FILES).map(|i| size_of(i) as u64).sum();
    if fs::read_to_string(&marker).ok().as_deref() == Some(&total.to_string()) {
        return total;
    }
    let _ = fs::remove_dir_all(context);
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut buf = Vec::new();
    for i in 0..FILES {
        let dir = context.join(format!("d{}/s{}", i / 1000, (i / 100) % 10));
        fs::create_dir_all(&dir).expect("mkdir");
        buf.clear();
        while buf.len() < size_of(i) {
            // xorshift64: incompressible, deterministic content.
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            buf.extend_from_slice(&seed.to_le_bytes());
        }
        buf.truncate(size_of(i));
        fs::File::create(dir.join(format!("f{:03}.bin", i % 100)))
            .and_then(|mut f| f.write_all(&buf))
            .expect("write");
    }
    fs::write(&marker, total.to_string()).expect("marker");
    // Let the timestamp clock pass the newest file, so the first cold run
    // can remember every digest (files written in the current tick are not
    // trusted; see ContextDigester).
    std::thread::sleep(Duration::from_millis(50));
    total
}

fn size_of(i: usize) -> usize {
    MIN_SIZE + (i * 7919) % SIZE_SPREAD
}
