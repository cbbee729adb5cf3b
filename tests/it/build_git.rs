//! Git sources: a repository as the main context (`kiln build URL#ref:dir`),
//! as a named context (`--build-context NAME=URL`) and in `ADD <git url>`
//! (BuildKit's git source: the ref is resolved to a commit every build and
//! the checkout is keyed by it; `.git` only with `--keep-git-dir`;
//! `--checksum` a prefix of the commit).
//!
//! The repository is served over Git's "dumb" HTTP protocol (a bare
//! repository after `git update-server-info`, its files served as they
//! are) by the in-process HTTP stub: no daemon to start or kill, and the
//! fetch's fallback without `--depth` (dumb HTTP has no shallow fetches)
//! is exercised on the way. Whether a RUN executed is told by a line it
//! appends to a cache mount.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::http_stub::{Reply, StubServer};
use support::kiln::{step_states, Kiln};

/// A repository with a work tree to commit in and a bare copy the stub
/// serves at `/repo.git`.
struct Origin {
    work: PathBuf,
    bare: PathBuf,
    server: StubServer,
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .output()
        .expect("running git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

impl Origin {
    fn start(k: &Kiln, files: &[(&str, &str)]) -> Origin {
        let work = k.path("git-work");
        let served = k.path("git-served");
        std::fs::create_dir_all(&work).unwrap();
        std::fs::create_dir_all(&served).unwrap();
        git(&work, &["init", "-q", "-b", "main"]);
        let bare = served.join("repo.git");
        let origin = Origin {
            server: serve_files(served),
            work,
            bare,
        };
        origin.write(files);
        git(&origin.work, &["add", "-A"]);
        git(&origin.work, &["commit", "-q", "-m", "first"]);
        git(
            &origin.work,
            &["clone", "-q", "--bare", ".", origin.bare.to_str().unwrap()],
        );
        git(&origin.bare, &["update-server-info"]);
        origin
    }

    fn write(&self, files: &[(&str, &str)]) {
        for (path, content) in files {
            let p = self.work.join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, content).unwrap();
        }
    }

    /// Commits `files` on `main` and publishes it; returns the commit.
    fn commit(&self, files: &[(&str, &str)]) -> String {
        self.write(files);
        git(&self.work, &["add", "-A"]);
        git(&self.work, &["commit", "-q", "-m", "next"]);
        git(
            &self.work,
            &["push", "-q", self.bare.to_str().unwrap(), "main"],
        );
        git(&self.bare, &["update-server-info"]);
        self.head()
    }

    fn head(&self) -> String {
        git(&self.work, &["rev-parse", "HEAD"])
    }

    fn url(&self) -> String {
        format!("http://{}/repo.git", self.server.host())
    }
}

/// Serves the files under `root` (GET only; 404 for anything else).
fn serve_files(root: PathBuf) -> StubServer {
    serve_files_stalling(root, Arc::new(AtomicBool::new(false)), Arc::default())
}

/// [`serve_files`], but while `stall` is set a request for an object
/// sends half of it and hangs; `asked` counts object requests.
fn serve_files_stalling(
    root: PathBuf,
    stall: Arc<AtomicBool>,
    asked: Arc<AtomicUsize>,
) -> StubServer {
    StubServer::start(move |req| {
        if req.path().contains("/objects/") {
            asked.fetch_add(1, Ordering::SeqCst);
            if stall.load(Ordering::SeqCst) {
                let mut reply = Reply::new(200, vec![0u8; 8]);
                reply.declared_len = Some(1 << 20);
                reply.stall = Some(Duration::from_secs(20));
                return reply;
            }
        }
        let path = req.path().trim_start_matches('/');
        if req.method != "GET" || path.split('/').any(|c| c == "..") {
            return Reply::new(404, "");
        }
        match std::fs::read(root.join(path)) {
            Ok(body) if root.join(path).is_file() => Reply::new(200, body),
            _ => Reply::new(404, ""),
        }
    })
}

/// How many checkouts the store keeps (their lock files aside).
fn checkouts(k: &Kiln) -> usize {
    std::fs::read_dir(k.root().join("git"))
        .map(|d| d.flatten().filter(|e| e.path().is_dir()).count())
        .unwrap_or(0)
}

const DOCKERFILE: &str = "FROM busybox\nCOPY f /f\n\
    RUN --mount=type=cache,id=log,target=/log cat /f >> /log/runs\n";

#[test]
fn git_context_is_keyed_by_commit_a_moved_branch_misses() {
    let k = Kiln::with_busybox_image();
    let origin = Origin::start(
        &k,
        &[
            ("app/Dockerfile", DOCKERFILE),
            ("app/f", "one\n"),
            ("app/alt.Dockerfile", "FROM busybox\nCOPY f /alt\n"),
            ("outside", "not in the context\n"),
        ],
    );
    let url = format!("{}#main:app", origin.url());
    let build = |tag: &str| {
        let ran = k.kiln(&["build", "--progress", "plain", "-t", tag, &url]);
        ran.ok();
        ran.stderr
    };
    build("g:1");
    assert_eq!(k.sh("g:1", "cat /f"), "one\n");
    assert_eq!(k.cache_file("log", "runs"), ["one"]);
    assert_eq!(checkouts(&k), 1);

    // Unchanged branch: the same commit, its checkout reused, all cached.
    let progress = build("g:2");
    let (cached, _) = step_states(&progress);
    assert!(cached.iter().any(|s| s.contains("] RUN ")), "{progress}");
    assert_eq!(k.cache_file("log", "runs"), ["one"]);
    assert_eq!(checkouts(&k), 1, "an unchanged ref fetched again");
    assert_eq!(
        k.inspect("g:1", "{{.Id}}"),
        k.inspect("g:2", "{{.Id}}"),
        "an unchanged commit builds the same image"
    );

    // The branch moves: a new checkout, the COPY and RUN run again, and
    // `--explain` compares with the last commit's build (the same context
    // at another commit, not another context).
    origin.commit(&[("app/f", "two\n")]);
    let ran = k.kiln(&[
        "build",
        "--progress",
        "plain",
        "--explain",
        "-t",
        "g:3",
        &url,
    ]);
    ran.ok();
    let progress = ran.stderr;
    assert!(
        progress.contains("file \"f\" changed in the context"),
        "{progress}"
    );
    let (_, done) = step_states(&progress);
    assert!(done.iter().any(|s| s.contains("] RUN ")), "{progress}");
    assert_eq!(k.sh("g:3", "cat /f"), "two\n");
    assert_eq!(k.cache_file("log", "runs"), ["one", "two"]);
    assert_eq!(checkouts(&k), 2);

    // `-f` names a file of the remote context, as with BuildKit.
    k.kiln(&["build", "-q", "-f", "alt.Dockerfile", "-t", "g:alt", &url])
        .ok();
    assert_eq!(k.sh("g:alt", "cat /alt"), "two\n");

    // A missing ref and a missing subdir are clear errors.
    let err = k
        .kiln(&["build", &format!("{}#nope", origin.url())])
        .fails()
        .to_string();
    assert!(
        err.contains("unable to prepare context") && err.contains("does not contain ref nope"),
        "{err}"
    );
    let err = k
        .kiln(&["build", &format!("{}#main:nodir", origin.url())])
        .fails()
        .to_string();
    assert!(err.contains("subdirectory \"nodir\""), "{err}");
}

#[test]
fn add_git_copies_the_checkout_and_keeps_git_only_when_asked() {
    let k = Kiln::with_busybox_image();
    let origin = Origin::start(&k, &[("f", "one\n"), ("sub/g", "gee\n")]);
    let commit = origin.head();
    let url = origin.url();
    let ctx = k.context(&[]);
    let df = format!(
        "FROM busybox\nADD {url}#main /src\nADD --keep-git-dir=true {with_password} /kept\n\
         ADD {url}#main:sub /sub\nADD --checksum={short} {url}#main /pinned\n",
        short = &commit[..12],
        with_password = url.replace("http://", "http://u:secret@"),
    );
    k.build_ok(&ctx, &df, "add:1", &[]);
    let listing = k.sh(
        "add:1",
        "cat /src/f /sub/g /pinned/f; test -e /src/.git || echo no-git; \
         test -e /sub/g && test ! -e /sub/sub && echo subdir; cat /kept/.git/HEAD",
    );
    assert!(
        listing.starts_with("one\ngee\none\nno-git\nsubdir\n"),
        "{listing}"
    );
    // The kept `.git` is a checkout of the commit (detached HEAD), its
    // remote without the URL's password.
    assert!(listing.contains(&commit), "{listing}");
    let config = k.sh("add:1", "cat /kept/.git/config");
    assert!(
        config.contains("http://u:xxxxx@") && !config.contains("secret"),
        "{config}"
    );

    // A wrong checksum fails as BuildKit's does, naming the commit.
    let df = format!("FROM busybox\nADD --checksum=0000000 {url}#main /x\n");
    std::fs::write(ctx.join("Dockerfile"), df).unwrap();
    let err = k.build(&ctx, &[]).fails().to_string();
    assert!(
        err.contains(&format!("expected checksum to match 0000000, got {commit}")),
        "{err}"
    );
    // COPY refuses a repository, ADD a missing ref.
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("FROM busybox\nCOPY {url} /x\n"),
    )
    .unwrap();
    let err = k.build(&ctx, &[]).fails().to_string();
    assert!(err.contains("source can't be a git ref for COPY"), "{err}");
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("FROM busybox\nADD {url}#gone /x\n"),
    )
    .unwrap();
    let err = k.build(&ctx, &[]).fails().to_string();
    assert!(err.contains("does not contain ref gone"), "{err}");
    // A subdir that is a symlink out of the repository resolves inside
    // the checkout, never on the host.
    std::os::unix::fs::symlink("/etc", origin.work.join("escape")).unwrap();
    origin.commit(&[]);
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("FROM busybox\nADD {url}#main:escape /x\n"),
    )
    .unwrap();
    let err = k.build(&ctx, &[]).fails().to_string();
    assert!(
        err.contains("subdirectory \"escape\" is not a directory"),
        "{err}"
    );
}

#[test]
fn git_build_context_is_read_as_a_named_context() {
    let k = Kiln::with_busybox_image();
    let origin = Origin::start(&k, &[("lib/v", "1\n")]);
    let ctx = k.context(&[]);
    let named = format!("src={}#main:lib", origin.url());
    k.build_ok(
        &ctx,
        "FROM busybox\nCOPY --from=src v /v\n",
        "named:1",
        &["--build-context", &named],
    );
    assert_eq!(k.sh("named:1", "cat /v"), "1\n");
    let err = k
        .build(&ctx, &["--build-context", "src=https://h/r.git##branch=x"])
        .fails()
        .to_string();
    assert!(
        err.contains("--build-context src: invalid git URL")
            && err.contains("unexpected key 'branch'"),
        "{err}"
    );
}

#[test]
fn concurrent_builds_of_one_commit_share_one_checkout() {
    let k = Kiln::with_busybox_image();
    let origin = Origin::start(
        &k,
        &[("Dockerfile", "FROM busybox\nCOPY f /f\n"), ("f", "x\n")],
    );
    let url = origin.url();
    // Four builds of a commit the store has not checked out yet: each
    // fetches into its own scratch dir, one rename wins, all succeed.
    let children: Vec<_> = (0..4)
        .map(|i| {
            k.cmd(&["build", "-q", "-t", &format!("race:{i}"), &url])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let ids: Vec<String> = children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        })
        .collect();
    assert!(ids.iter().all(|id| id == &ids[0]), "{ids:?}");
    assert_eq!(checkouts(&k), 1);
    // The losers' fetches went with their scratch dirs.
    let leftovers: Vec<_> = std::fs::read_dir(k.root().join("tmp"))
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// Processes whose working directory is under `dir`: what a killed
/// build's fetch would be.
fn processes_in(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cwd) = std::fs::read_link(e.path().join("cwd")) {
            if cwd.starts_with(dir) {
                let status = std::fs::read_to_string(e.path().join("status")).unwrap_or_default();
                let ppid = status
                    .lines()
                    .filter(|l| l.starts_with("PPid") || l.starts_with("Name"))
                    .collect::<Vec<_>>()
                    .join(",");
                found.push(format!(
                    "{}: {} {ppid}",
                    e.file_name().to_string_lossy(),
                    cwd.display()
                ));
            }
        }
    }
    found
}

#[test]
fn a_build_killed_mid_fetch_leaves_no_fetch_and_no_checkout() {
    let k = Kiln::with_busybox_image();
    let origin = Origin::start(
        &k,
        &[("Dockerfile", "FROM busybox\nCOPY f /f\n"), ("f", "x\n")],
    );
    // The same repository again, from a server that hangs mid-object.
    let stall = Arc::new(AtomicBool::new(true));
    let asked = Arc::new(AtomicUsize::new(0));
    let server = serve_files_stalling(
        origin.bare.parent().unwrap().to_path_buf(),
        stall.clone(),
        asked.clone(),
    );
    let url = format!("http://{}/repo.git", server.host());
    let mut child = k
        .cmd(&["build", "-q", "-t", "killed:1", &url])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while asked.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "git never asked for an object");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // git and its helpers die with the kiln that ran them (a PID
    // namespace whose init dies with kiln).
    let deadline = Instant::now() + Duration::from_secs(10);
    while !processes_in(&k.root()).is_empty() {
        assert!(
            Instant::now() < deadline,
            "left running: {:?}",
            processes_in(&k.root())
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(checkouts(&k), 0, "a half-fetched checkout was put in place");
    // The next build fetches the commit whole.
    stall.store(false, Ordering::SeqCst);
    k.kiln(&["build", "-q", "-t", "killed:2", &url]).ok();
    assert_eq!(k.sh("killed:2", "cat /f"), "x\n");
    assert_eq!(checkouts(&k), 1);
}

#[test]
fn builder_prune_removes_checkouts_no_build_uses() {
    let k = Kiln::with_busybox_image();
    let origin = Origin::start(
        &k,
        &[(
            "Dockerfile",
            "FROM busybox\nCOPY Dockerfile /\n\
             RUN --mount=type=cache,id=m,target=/m touch /m/started && sleep 3\n",
        )],
    );
    let url = origin.url();
    let mut build = k
        .cmd(&["build", "-q", "-t", "pruned:1", &url])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = k.root().join("cache-mounts/m/started");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !started.exists() {
        assert!(Instant::now() < deadline, "the build never reached its RUN");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The running build's checkout stays.
    let out = k.ok(&["builder", "prune", "-f"]);
    assert!(!out.contains("git checkouts"), "{out}");
    assert_eq!(checkouts(&k), 1);
    let status = build.wait().unwrap();
    assert!(status.success());
    // Unused now: pruned, and the next build fetches it again.
    let out = k.ok(&["builder", "prune", "-f"]);
    assert!(out.contains("Deleted git checkouts: 1\n"), "{out}");
    assert_eq!(checkouts(&k), 0);
    k.kiln(&["build", "-q", "-t", "pruned:2", &url]).ok();
    assert_eq!(checkouts(&k), 1);
}
