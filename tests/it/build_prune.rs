//! A long-lived builder stays within its disk: `kiln builder prune
//! --keep-storage SIZE --filter until=DURATION`, and the cap in the
//! store's `config.json` applied after each build, least recently used
//! first.
//!
//! Build cache records keep their last use in whole seconds, so the
//! builds below are a second apart to be told apart (a wait for ordering,
//! not a timed assertion).

use crate::support;

use std::time::Duration;
use support::kiln::{step_states, Kiln};

/// A build whose only big result is its first stage's RUN (1 MB of random
/// bytes): the final image keeps none of it, so only the build cache
/// holds it. The final stage copies `/n` to `dest`.
fn dockerfile(n: u32, dest: &str) -> String {
    format!(
        "FROM busybox AS big\n\
         RUN head -c 1000000 /dev/urandom > /blob && echo {n} > /n\n\
         FROM busybox\n\
         COPY --from=big /n {dest}\n"
    )
}

/// Builds variant `n` (final stage copying to `dest`); whether its big
/// RUN ran (else it was cached, or not needed at all).
fn build_to(k: &Kiln, n: u32, dest: &str) -> bool {
    let ctx = k.path(&format!("ctx-v{n}"));
    std::fs::create_dir_all(&ctx).unwrap();
    let progress = k.build_ok(&ctx, &dockerfile(n, dest), &format!("v{n}"), &[]);
    let (_, done) = step_states(&progress);
    done.iter().any(|s| s.contains("urandom"))
}

fn build(k: &Kiln, n: u32) -> bool {
    build_to(k, n, "/n")
}

/// Whether variant `n`'s big RUN has to run again: a final stage never
/// built before needs its result, so a cached final stage cannot hide
/// that the RUN's record is gone.
fn was_pruned(k: &Kiln, n: u32) -> bool {
    build_to(k, n, "/check")
}

fn a_second() {
    std::thread::sleep(Duration::from_millis(1100));
}

/// `Build cache kept: N bytes` from the prune's output.
fn kept_bytes(out: &str) -> u64 {
    out.lines()
        .find_map(|l| l.strip_prefix("Build cache kept: "))
        .and_then(|l| l.strip_suffix(" bytes"))
        .unwrap_or_else(|| panic!("no size in {out}"))
        .parse()
        .unwrap()
}

#[test]
fn keep_storage_removes_the_least_recently_used_first() {
    let k = Kiln::with_busybox_image();
    for n in 1..=3 {
        assert!(build(&k, n), "v{n} is new");
        a_second();
    }
    // v1's RUN result used again (its final stage changed): now the most
    // recently used.
    assert!(!build_to(&k, 1, "/m"));
    let out = k.ok(&["builder", "prune", "--keep-storage", "1.5MB"]);
    let kept = kept_bytes(&out);
    assert!((1_000_000..=3 << 19).contains(&kept), "{out}");
    assert!(!was_pruned(&k, 1), "the most recently used result stays");
    assert!(was_pruned(&k, 2), "the least recently used result went");
    assert!(was_pruned(&k, 3), "and the next one, to fit");
}

#[test]
fn until_removes_only_records_unused_for_longer() {
    let k = Kiln::with_busybox_image();
    assert!(build(&k, 1));
    std::thread::sleep(Duration::from_secs(4));
    assert!(build(&k, 2));
    let out = k.ok(&["builder", "prune", "--filter", "until=24h"]);
    assert!(out.contains("Deleted build cache records: 0\n"), "{out}");
    k.ok(&["builder", "prune", "--filter", "until=3s"]);
    assert!(!was_pruned(&k, 2), "used 3s ago or less: kept");
    assert!(was_pruned(&k, 1), "unused for 4s: removed");
}

#[test]
fn the_stores_config_caps_the_build_cache_after_each_build() {
    let k = Kiln::with_busybox_image();
    std::fs::write(
        k.root().join("config.json"),
        r#"{"gc": {"keepStorage": "1.5MB"}}"#,
    )
    .unwrap();
    assert!(build(&k, 1));
    a_second();
    assert!(build(&k, 2));
    // v2's build pruned v1's result to stay under 1.5 MB.
    assert!(!was_pruned(&k, 2));
    assert!(was_pruned(&k, 1));
}

#[test]
fn bad_sizes_durations_and_filters_are_clear_errors() {
    let k = Kiln::new();
    let err = k
        .kiln(&["builder", "prune", "--keep-storage", "lots"])
        .fails()
        .to_string();
    assert!(
        err.contains("--keep-storage \"lots\"") && err.contains("10GB"),
        "{err}"
    );
    let err = k
        .kiln(&["builder", "prune", "--filter", "until=1d"])
        .fails()
        .to_string();
    assert!(err.contains("until=1d") && err.contains("24h"), "{err}");
    let err = k
        .kiln(&["builder", "prune", "--filter", "type=regular"])
        .fails()
        .to_string();
    assert!(
        err.contains("type=regular") && err.contains("until="),
        "{err}"
    );
}

/// A bad cap in the store's config does not fail a build that worked: it
/// is a warning naming the file, the key and what was expected.
#[test]
fn a_bad_cap_in_the_config_is_a_warning_naming_it() {
    let k = Kiln::with_busybox_image();
    std::fs::write(
        k.root().join("config.json"),
        r#"{"gc": {"keepStorage": "lots"}}"#,
    )
    .unwrap();
    let ctx = k.context(&[]);
    let out = k.build_ok(&ctx, "FROM busybox\nRUN true\n", "capped", &[]);
    assert!(
        out.contains("config.json: gc.keepStorage is \"lots\": expected a size"),
        "{out}"
    );
}
