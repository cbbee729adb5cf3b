//! COPY of a build context the size of a real one (10,000 files, ~430 MB)
//! into an empty layer, against `cp -a` of the same tree.
//!
//! Run with `cargo bench --bench copy`. The tree is generated once under
//! the system temp dir (same filesystem as the outputs) and removed at the
//! end; page cache is warm for both tools (the first, untimed run of each
//! warms it), runs alternate between the two, and `sync` runs between runs
//! (untimed) so no run pays for the previous one's writeback.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use kiln::exec::copy::{copy, CopySource, CopySpec};
use kiln::exec::parent_fs::MergedDir;

const DIRS: usize = 100;
const FILES_PER_DIR: usize = 100;
const RUNS: usize = 5;

/// Writes the tree: sizes from 1 KiB to ~85 KiB (mean ~43 KiB), with
/// pseudo-random bytes so nothing compresses or dedups.
fn generate(root: &Path) -> u64 {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut total = 0;
    let mut buf = vec![0u8; 90 * 1024];
    for chunk in buf.chunks_mut(8) {
        let v = next().to_le_bytes();
        chunk.copy_from_slice(&v[..chunk.len()]);
    }
    for d in 0..DIRS {
        let dir = root.join(format!("dir{d:03}"));
        std::fs::create_dir_all(&dir).expect("mkdir");
        for f in 0..FILES_PER_DIR {
            let size = 1024 + (next() % (84 * 1024)) as usize;
            let offset = (next() % 4096) as usize;
            std::fs::write(
                dir.join(format!("file{f:03}.bin")),
                &buf[offset..offset + size],
            )
            .expect("write");
            total += size as u64;
        }
    }
    total
}

fn time(mut f: impl FnMut()) -> Duration {
    let start = Instant::now();
    f();
    start.elapsed()
}

fn summary(name: &str, mut runs: Vec<Duration>, bytes: u64) {
    runs.sort();
    let best = runs[0];
    let median = runs[runs.len() / 2];
    println!(
        "{name:<14} best {:>7.3} s  median {:>7.3} s  ({:.0} MB/s at best)",
        best.as_secs_f64(),
        median.as_secs_f64(),
        bytes as f64 / 1e6 / best.as_secs_f64()
    );
}

fn main() {
    let base = std::env::temp_dir().join(format!("kiln-bench-copy-{}", std::process::id()));
    let src = base.join("context");
    let parent = base.join("parent");
    std::fs::create_dir_all(&parent).expect("mkdir");
    let bytes = generate(&src);
    println!(
        "tree: {} files in {DIRS} dirs, {:.0} MB, rayon threads: {}",
        DIRS * FILES_PER_DIR,
        bytes as f64 / 1e6,
        rayon::current_num_threads()
    );

    let spec = CopySpec::new(vec![CopySource::Path(".".into())], "/app/");
    let mut kiln_runs = Vec::new();
    let mut cp_runs = Vec::new();
    nix::unistd::sync();
    for run in 0..=RUNS {
        let layer = base.join(format!("layer{run}"));
        std::fs::create_dir(&layer).expect("mkdir");
        let t = time(|| {
            let stats =
                copy(&spec, &src, &MergedDir::new(&parent), &layer, None, None).expect("copy");
            assert_eq!(stats.bytes, bytes);
        });
        let out = base.join(format!("cp{run}"));
        let c = time(|| {
            let status = Command::new("cp")
                .arg("-a")
                .arg(&src)
                .arg(&out)
                .status()
                .expect("cp");
            assert!(status.success());
        });
        // Run 0 only warms the cache.
        if run > 0 {
            kiln_runs.push(t);
            cp_runs.push(c);
        }
        std::fs::remove_dir_all(&layer).expect("rm");
        std::fs::remove_dir_all(&out).expect("rm");
        // Start each run without the previous one's dirty pages.
        nix::unistd::sync();
    }
    summary("kiln copy", kiln_runs, bytes);
    summary("cp -a", cp_runs, bytes);
    std::fs::remove_dir_all(&base).expect("cleanup");
}
