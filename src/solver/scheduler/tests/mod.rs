//! Scheduler behaviour with a scripted executor. Concurrency is proven with
//! rendezvous points (every party must be inside `execute` at once), never
//! with timings; the rendezvous gives up after a generous timeout so a
//! broken scheduler fails the test instead of hanging it.

mod fake;

use super::*;
use crate::image::Digest;
use crate::solver::MemoryCache;
use fake::*;

fn names_of(events: &[ProgressEvent], pick: fn(&ProgressEvent) -> Option<&str>) -> Vec<String> {
    let mut names: Vec<String> = events.iter().filter_map(pick).map(String::from).collect();
    names.sort();
    names
}

fn cached_names(events: &[ProgressEvent]) -> Vec<String> {
    names_of(events, |e| match e {
        ProgressEvent::Cached { name, .. } => Some(name),
        _ => None,
    })
}

/// `base ─┬─ a ─┐
///        ├─ b ─┼─ final (COPY from a, b, c onto base)
///        └─ c ─┘`
fn fan_out(g: &mut Graph) -> (VertexId, [VertexId; 3], VertexId) {
    let base = image(g, "alpine:3.19");
    let a = run(g, base, "a");
    let b = run(g, base, "b");
    let c = run(g, base, "c");
    let fin = copy(g, base, &[(a, "/a"), (b, "/b"), (c, "/c")], "final");
    (base, [a, b, c], fin)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn independent_vertices_run_concurrently() {
    let fake = Arc::new(Fake::default());
    let meet = Rendezvous::new(3);
    for name in ["a", "b", "c"] {
        fake.on(name, Behaviour::Meet(meet.clone()));
    }
    let mut g = Graph::new();
    let (_, _, fin) = fan_out(&mut g);
    let out = solve(&fake, &Arc::new(MemoryCache::new()), &g, fin).await;
    let solution = out.result.unwrap();
    let base = "FROM alpine:3.19()";
    assert_eq!(
        solution.output,
        format!("final({base},a({base}),b({base}),c({base}))")
    );
    assert_eq!(fake.max_running.load(Ordering::SeqCst), 3);
    assert_eq!(solution.executed, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_concurrency_limit_bounds_running_executors() {
    let fake = Arc::new(Fake::default());
    // Pairs must meet: proves two run at once; the limit proves never three.
    let meet = Rendezvous::new(2);
    let mut g = Graph::new();
    let base = image(&mut g, "alpine");
    let mut sources = Vec::new();
    for name in ["a", "b", "c", "d"] {
        fake.on(name, Behaviour::Meet(meet.clone()));
        sources.push((run(&mut g, base, name), "/out"));
    }
    let fin = copy(&mut g, base, &sources, "final");
    let options = SolveOptions {
        concurrency: 2,
        ..SolveOptions::default()
    };
    let out = solve_with(&fake, &Arc::new(MemoryCache::new()), &g, fin, options).await;
    out.result.unwrap();
    assert_eq!(fake.max_running.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vertex_needed_by_several_dependents_runs_once() {
    let fake = Arc::new(Fake::default());
    let mut g = Graph::new();
    let base = image(&mut g, "alpine");
    let shared = run(&mut g, base, "shared");
    let left = run(&mut g, shared, "left");
    let right = run(&mut g, shared, "right");
    let fin = copy(&mut g, shared, &[(left, "/l"), (right, "/r")], "final");
    let out = solve(&fake, &Arc::new(MemoryCache::new()), &g, fin).await;
    out.result.unwrap();
    assert_eq!(fake.count("shared"), 1);
    assert_eq!(fake.count("FROM alpine"), 1);
    assert_eq!(fake.resolves.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_what_the_target_needs_is_built() {
    let fake = Arc::new(Fake::default());
    let mut g = Graph::new();
    let base = image(&mut g, "alpine");
    let build = run(&mut g, base, "build");
    let _tests = run(&mut g, build, "test");
    let other = image(&mut g, "debian");
    let _unrelated = run(&mut g, other, "unrelated");
    let pruned = g.prune_to(build).unwrap();
    assert_eq!(pruned.graph.len(), 2);
    let out = solve(&fake, &Arc::new(MemoryCache::new()), &g, build).await;
    out.result.unwrap();
    assert_eq!(fake.runs(), ["FROM alpine", "build"]);
    let out = solve(
        &Arc::new(Fake::default()),
        &Arc::new(MemoryCache::new()),
        &pruned.graph,
        pruned.target,
    )
    .await;
    assert_eq!(out.result.unwrap().output, "build(FROM alpine())");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_results_skip_execution_down_to_the_target() {
    let cache = Arc::new(MemoryCache::new());
    let mut g = Graph::new();
    let (_, _, fin) = fan_out(&mut g);
    let first = solve(&Arc::new(Fake::default()), &cache, &g, fin).await;
    let first = first.result.unwrap();
    assert_eq!(cache.len(), 5);

    let fake = Arc::new(Fake::default());
    let second = solve(&fake, &cache, &g, fin).await;
    let solution = second.result.unwrap();
    assert_eq!(solution.output, first.output);
    assert_eq!(solution.key, first.key);
    // Nothing runs, not even the inputs of the cached target; every
    // vertex is still reported as cached, as BuildKit does.
    assert!(fake.runs().is_empty(), "{:?}", fake.runs());
    assert_eq!(solution.executed, 0);
    assert_eq!(
        cached_names(&second.events),
        ["FROM alpine:3.19", "a", "b", "c", "final"]
    );
}

/// A cache that counts the results taken ([`CacheStore::lookup`]), which a
/// persistent cache pays for with a write (a lease).
#[derive(Default)]
struct CountingCache {
    inner: MemoryCache<String>,
    taken: std::sync::atomic::AtomicUsize,
}

impl CacheStore<String> for CountingCache {
    fn contains(&self, key: &CacheKey) -> bool {
        self.inner.contains(key)
    }
    fn lookup(&self, key: &CacheKey) -> Option<String> {
        self.taken.fetch_add(1, Ordering::SeqCst);
        self.inner.lookup(key)
    }
    fn record(&self, key: &CacheKey, output: &String) {
        self.inner.record(key, output)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fully_cached_build_takes_only_the_targets_result() {
    let cache = Arc::new(CountingCache::default());
    let mut g = Graph::new();
    let (_, _, fin) = fan_out(&mut g);
    solve(&Arc::new(Fake::default()), &cache, &g, fin)
        .await
        .result
        .unwrap();
    cache.taken.store(0, Ordering::SeqCst);
    let again = solve(&Arc::new(Fake::default()), &cache, &g, fin).await;
    again.result.unwrap();
    assert_eq!(cache.taken.load(Ordering::SeqCst), 1);
    assert_eq!(cached_names(&again.events).len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_step_reruns_itself_and_its_dependents_only() {
    let cache = Arc::new(MemoryCache::new());
    let build = |cmd: &str| {
        let mut g = Graph::new();
        let base = image(&mut g, "alpine");
        let a = run(&mut g, base, "a");
        let b = run(&mut g, a, cmd);
        let c = run(&mut g, b, "c");
        let d = run(&mut g, a, "d");
        let fin = copy(&mut g, base, &[(c, "/c"), (d, "/d")], "final");
        (g, fin)
    };
    let (g1, fin1) = build("b");
    solve(&Arc::new(Fake::default()), &cache, &g1, fin1)
        .await
        .result
        .unwrap();
    let (g2, fin2) = build("b2");
    let fake = Arc::new(Fake::default());
    let out = solve(&fake, &cache, &g2, fin2).await;
    out.result.unwrap();
    assert_eq!(fake.runs(), ["b2", "c", "final"]);
    assert_eq!(cached_names(&out.events), ["FROM alpine", "a", "d"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_cache_ignores_lookups_but_records() {
    let cache = Arc::new(MemoryCache::new());
    let mut g = Graph::new();
    let (_, _, fin) = fan_out(&mut g);
    solve(&Arc::new(Fake::default()), &cache, &g, fin)
        .await
        .result
        .unwrap();

    let fake = Arc::new(Fake::default());
    let options = SolveOptions {
        no_cache: true,
        ..SolveOptions::default()
    };
    let out = solve_with(&fake, &cache, &g, fin, options).await;
    assert_eq!(out.result.unwrap().executed, 5);
    assert!(cached_names(&out.events).is_empty());

    // Record a fresh result only a --no-cache run can have produced.
    let marked = Arc::new(MemoryCache::new());
    let options = SolveOptions {
        no_cache: true,
        ..SolveOptions::default()
    };
    solve_with(&Arc::new(Fake::default()), &marked, &g, fin, options)
        .await
        .result
        .unwrap();
    assert_eq!(marked.len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_failure_cancels_the_build_and_is_reported() {
    let fake = Arc::new(Fake::default());
    let meet = Rendezvous::new(3);
    fake.on("make", Behaviour::MeetThenFail(meet.clone(), 2));
    fake.on("sleep", Behaviour::MeetThenWaitForCancel(meet.clone()));
    fake.on("gate", Behaviour::MeetThenFinishAfterCancel(meet));
    let mut g = Graph::new();
    let base = image(&mut g, "alpine");
    let make = run(&mut g, base, "make");
    let after_make = run(&mut g, make, "after-make");
    let sleep = run(&mut g, base, "sleep");
    let gate = run(&mut g, base, "gate");
    // Ready only once `gate` returns, which is after the failure.
    let late = run(&mut g, gate, "late");
    let fin = copy(
        &mut g,
        base,
        &[(after_make, "/"), (sleep, "/"), (late, "/")],
        "final",
    );
    let out = solve(&fake, &Arc::new(MemoryCache::new()), &g, fin).await;
    let err = out.result.unwrap_err();
    assert_eq!(
        crate::error_chain::Chain(&err).to_string(),
        "Dockerfile:12: make: process exited with code 2"
    );
    let SolveError::Vertex {
        log_tail, vertex, ..
    } = &err
    else {
        panic!("unexpected error {err:?}");
    };
    assert_eq!(*vertex, make);
    assert_eq!(log_tail, &["make: *** [all] Error 2"]);
    // Nothing started after the failure; the running siblings returned
    // before solve did.
    assert_eq!(fake.runs(), ["FROM alpine", "gate", "make", "sleep"]);
    let mut returned = fake.returned.lock().unwrap().clone();
    returned.sort();
    assert_eq!(returned, fake.runs());
    assert!(out.events.iter().any(|e| matches!(e,
        ProgressEvent::Cancelled { vertex, .. } if *vertex == sleep)));
    assert!(
        out.events.iter().any(|e| matches!(e,
        ProgressEvent::Failed { vertex, error, .. }
            if *vertex == make
                && error == r#"process "sh -c make" did not complete successfully: exit code: 2"#))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_from_outside_stops_the_build() {
    let fake = Arc::new(Fake::default());
    fake.on(
        "sleep",
        Behaviour::MeetThenWaitForCancel(Rendezvous::new(1)),
    );
    let mut g = Graph::new();
    let base = image(&mut g, "alpine");
    let sleep = run(&mut g, base, "sleep");
    let after = run(&mut g, sleep, "after");
    let solver = Solver::new(fake.clone(), Arc::new(MemoryCache::new()));
    let token = solver.cancel_token();
    let watcher = {
        let fake = fake.clone();
        tokio::spawn(async move {
            while fake.count("sleep") == 0 {
                tokio::task::yield_now().await;
            }
            token.cancel();
        })
    };
    let err = solver.solve(Arc::new(g), after).await.unwrap_err();
    watcher.await.unwrap();
    assert!(matches!(err, SolveError::Cancelled), "{err:?}");
    assert_eq!(fake.count("after"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_stable_and_follow_inputs() {
    let build = |base_name: &str| {
        let mut g = Graph::new();
        let base = image(&mut g, base_name);
        let other = image(&mut g, "busybox");
        let a = run(&mut g, base, "a");
        let b = run(&mut g, other, "b");
        let fin = copy(&mut g, a, &[(b, "/b")], "final");
        (g, [base, other, a, b, fin])
    };
    let keys = |g: Graph, target| async move {
        let out = solve(
            &Arc::new(Fake::default()),
            &Arc::new(MemoryCache::new()),
            &g,
            target,
        )
        .await;
        out.result.unwrap().keys
    };
    let (g1, ids) = build("alpine");
    let (g2, _) = build("alpine");
    let (g3, _) = build("debian");
    let (k1, k2, k3) = (
        keys(g1, ids[4]).await,
        keys(g2, ids[4]).await,
        keys(g3, ids[4]).await,
    );
    assert_eq!(k1, k2);
    let changed: Vec<bool> = ids.iter().map(|id| k1[id] != k3[id]).collect();
    // base, other, a, b, final
    assert_eq!(changed, [true, false, true, false, true]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_keys_come_from_the_resolved_digest() {
    let cache = Arc::new(MemoryCache::new());
    let fake = Arc::new(Fake::default());
    let mut g = Graph::new();
    let base = image(&mut g, "alpine:3.19");
    let a = run(&mut g, base, "a");
    let first = solve(&fake, &cache, &g, a).await.result.unwrap();

    // The tag now points at another image: the key changes.
    let moved = Arc::new(Fake::default());
    moved.images.lock().unwrap().insert(
        "docker.io/library/alpine:3.19".into(),
        Digest::sha256_of(b"new manifest"),
    );
    let second = solve(&moved, &cache, &g, a).await.result.unwrap();
    assert_ne!(first.keys[&base], second.keys[&base]);
    assert_eq!(moved.runs(), ["FROM alpine:3.19", "a"]);

    // A pinned reference is not resolved again.
    let pinned_name = format!("alpine@{}", Digest::sha256_of(b"new manifest"));
    let mut g = Graph::new();
    let pinned = image(&mut g, &pinned_name);
    let a = run(&mut g, pinned, "a");
    let fake = Arc::new(Fake::default());
    let third = solve(&fake, &cache, &g, a).await.result.unwrap();
    assert_eq!(fake.resolves.load(Ordering::SeqCst), 0);
    assert_eq!(third.keys[&pinned], second.keys[&base]);
    assert!(fake.runs().is_empty(), "same image, same key: cached");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn context_reads_key_on_the_selected_content_only() {
    let cache = Arc::new(MemoryCache::new());
    let build = || {
        let mut g = Graph::new();
        let base = image(&mut g, "alpine");
        let ctx = context(&mut g);
        let copy_a = copy(&mut g, base, &[(ctx, "a.txt")], "COPY a.txt");
        let copy_b = copy(&mut g, copy_a, &[(ctx, "b.txt")], "COPY b.txt");
        (g, copy_a, copy_b)
    };
    let fake = Arc::new(Fake::default());
    let files = [("a.txt", "A"), ("b.txt", "B"), ("unrelated", "x")];
    fake.files
        .lock()
        .unwrap()
        .extend(files.map(|(p, c)| (p.to_string(), c.to_string())));
    let (g, _, target) = build();
    let first = solve(&fake, &cache, &g, target).await.result.unwrap();

    // An unrelated file changes: everything is cached (the context itself
    // is always read, never cached).
    let fake = Arc::new(Fake::default());
    let files = [("a.txt", "A"), ("b.txt", "B"), ("unrelated", "y")];
    fake.files
        .lock()
        .unwrap()
        .extend(files.map(|(p, c)| (p.to_string(), c.to_string())));
    let second = solve(&fake, &cache, &g, target).await.result.unwrap();
    assert_eq!(second.key, first.key);
    assert_eq!(fake.runs(), ["context"]);

    // b.txt changes: only the COPY of b.txt reruns.
    let fake = Arc::new(Fake::default());
    let files = [("a.txt", "A"), ("b.txt", "B2")];
    fake.files
        .lock()
        .unwrap()
        .extend(files.map(|(p, c)| (p.to_string(), c.to_string())));
    let (g, copy_a, target) = build();
    let third = solve(&fake, &cache, &g, target).await.result.unwrap();
    assert_eq!(third.keys[&copy_a], first.keys[&copy_a]);
    assert_ne!(third.key, first.key);
    assert_eq!(fake.runs(), ["COPY b.txt", "context"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_content_digest_fails_the_reading_step() {
    let fake = Arc::new(Fake::default());
    let mut g = Graph::new();
    let base = image(&mut g, "alpine");
    let ctx = context(&mut g);
    let target = copy(
        &mut g,
        base,
        &[(ctx, "missing.txt")],
        "[2/2] COPY missing.txt /",
    );
    let err = solve(&fake, &Arc::new(MemoryCache::new()), &g, target)
        .await
        .result
        .unwrap_err();
    assert_eq!(
        crate::error_chain::Chain(&err).to_string(),
        "[2/2] COPY missing.txt /: \"missing.txt\": not found"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_reports_starts_logs_and_finishes() {
    let fake = Arc::new(Fake::default());
    fake.on("make", Behaviour::Log(vec!["cc main.c", "ld app"]));
    let mut g = Graph::new();
    let base = image(&mut g, "alpine");
    let make = run(&mut g, base, "make");
    let out = solve(&fake, &Arc::new(MemoryCache::new()), &g, make).await;
    out.result.unwrap();
    let for_make: Vec<String> = out
        .events
        .iter()
        .filter(|e| e.vertex() == make)
        .map(|e| match e {
            ProgressEvent::Started { name, .. } => format!("started {name}"),
            ProgressEvent::Log { line, .. } => format!("log {line}"),
            ProgressEvent::Finished { .. } => "finished".to_string(),
            other => format!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(
        for_make,
        ["started make", "log cc main.c", "log ld app", "finished"]
    );
}

#[tokio::test]
async fn an_unknown_target_is_an_error() {
    let solver = Solver::new(Arc::new(Fake::default()), Arc::new(MemoryCache::new()));
    let err = solver
        .solve(Arc::new(Graph::new()), VertexId::from_index(3))
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "vertex v3 is not part of this graph");
}
