//! Hostile or broken input: a clear error naming the problem, the store
//! left consistent (no image, no snapshot, no temp files) and nothing
//! written outside it.

use crate::support;
use kiln::cache::{Store, StoreError};
use kiln::image::digest::Digest;
use kiln::image::oci::media::{OCI_CONFIG, OCI_MANIFEST};
use std::io::{Read, Write};
use support::archive::{self, raw_tar, Entry};
use support::kiln::Kiln;

/// Imports `tar` and checks that it fails with `expect` in the message and
/// leaves the store and the `outside` directory untouched.
fn check_refused(tar: &[u8], expect: &str) {
    let env = Kiln::new();
    let outside = env.path("outside");
    std::fs::create_dir(&outside).unwrap();
    env.ok(&["images"]); // create the store
    let file = env.path("layer.tar");
    std::fs::write(&file, tar).unwrap();
    let err = env.fails(&["import", file.to_str().unwrap(), "bad:1"]);
    assert!(err.contains(expect), "expected {expect:?} in: {err}");
    assert_eq!(env.ok(&["images", "-q"]), "", "half-written image listed");
    assert!(
        env.entries("snapshots").is_empty(),
        "{:?}",
        env.entries("snapshots")
    );
    assert!(env.entries("blobs/sha256").is_empty());
    assert!(
        env.entries("tmp").is_empty(),
        "temp left: {:?}",
        env.entries("tmp")
    );
    assert_eq!(
        std::fs::read_dir(&outside).unwrap().count(),
        0,
        "wrote outside the store"
    );
}

#[test]
fn dot_dot_entries_are_refused() {
    check_refused(
        &raw_tar(&[Entry::File("../outside/evil", b"x")]),
        "escapes the layer root",
    );
    check_refused(
        &raw_tar(&[Entry::Dir("a/"), Entry::File("a/../../outside/evil", b"x")]),
        "escapes the layer root",
    );
}

#[test]
fn writing_through_an_absolute_symlink_is_refused() {
    let env_outside = Kiln::new();
    let target = env_outside.path("target");
    std::fs::create_dir(&target).unwrap();
    let t = target.to_str().unwrap().to_string();
    check_refused(
        &raw_tar(&[
            Entry::Symlink("link", &t),
            Entry::File("link/passwd", b"root::0:0"),
        ]),
        "is a symlink; refusing to follow it",
    );
    check_refused(
        &raw_tar(&[
            Entry::Symlink("link", "/etc"),
            Entry::File("link/passwd", b"root::0:0"),
        ]),
        "is a symlink; refusing to follow it",
    );
    assert_eq!(std::fs::read_dir(&target).unwrap().count(), 0);
}

/// A link may climb above the root (see below); writing through it may not.
#[test]
fn writing_through_a_relative_symlink_out_of_the_root_is_refused() {
    check_refused(
        &raw_tar(&[
            Entry::Symlink("link", "../../.."),
            Entry::File("link/evil", b"x"),
        ]),
        "is a symlink; refusing to follow it",
    );
}

/// Regression: `kiln load` refused a valid image whose relative symlink
/// climbs above the root. `docker load` accepts it (containerd
/// `pkg/archive` `createTarFile` creates links as written); the link is
/// resolved inside the root when used.
#[test]
fn load_accepts_a_symlink_climbing_above_the_root() {
    let env = Kiln::new();
    let layer = env.path("layer.tar");
    std::fs::write(
        &layer,
        raw_tar(&[
            Entry::Symlink("a", "../../../etc/passwd"),
            Entry::File("f", b"x"),
        ]),
    )
    .unwrap();
    env.ok(&["import", layer.to_str().unwrap(), "climb:1"]);
    let saved = env.path("climb.tar");
    env.ok(&["save", "-o", saved.to_str().unwrap(), "climb:1"]);

    let fresh = Kiln::new();
    fresh.ok(&["load", "-i", saved.to_str().unwrap()]);
    assert!(
        fresh.ok(&["images"]).contains("climb"),
        "{}",
        fresh.ok(&["images"])
    );
    let snapshots = fresh.entries("snapshots");
    assert_eq!(snapshots.len(), 1, "{snapshots:?}");
    let link = fresh.root().join("snapshots").join(&snapshots[0]).join("a");
    assert_eq!(
        std::fs::read_link(link).unwrap(),
        std::path::Path::new("../../../etc/passwd")
    );
}

#[test]
fn hard_links_to_outside_are_refused() {
    check_refused(
        &raw_tar(&[Entry::Hardlink("h", "../outside/x")]),
        "outside the layer",
    );
    check_refused(
        &raw_tar(&[Entry::Hardlink("h", "/etc/passwd")]),
        "is not in this layer",
    );
}

#[test]
fn truncated_layers_are_refused() {
    let env = Kiln::new();
    let full = env.busybox_tar("bb.tar");
    let bytes = std::fs::read(&full).unwrap();
    // Cut in the middle of the busybox binary's data.
    check_refused(&bytes[..bytes.len() / 2], "layer from tar");
    // A gzip stream cut short.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&bytes).unwrap();
    let gz = gz.finish().unwrap();
    check_refused(&gz[..gz.len() / 2], "layer from tar");
}

#[test]
fn a_blob_that_does_not_match_its_digest_is_never_stored() {
    let env = Kiln::new();
    let store = Store::open(&env.root()).unwrap();
    let want = Digest::sha256_of(b"the real layer");
    let err = store
        .ingest_blob(
            &b"a tampered layer"[..],
            Some(&want),
            None,
            "layer 0 of evil/image",
        )
        .unwrap_err();
    assert!(matches!(err, StoreError::DigestMismatch { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("layer 0 of evil/image") && msg.contains(&want.to_string()),
        "{msg}"
    );
    assert!(!store.has_blob(&want));
    drop(store);
    assert!(env.entries("blobs/sha256").is_empty());
    assert!(env.entries("tmp").is_empty());
}

#[test]
fn a_manifest_with_an_unknown_media_type_is_refused() {
    let env = Kiln::new();
    let store = Store::open(&env.root()).unwrap();
    let d = Digest::sha256_of(b"x");
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.example.weird+json","config":{{"mediaType":"{OCI_CONFIG}","digest":"{d}","size":1}},"layers":[]}}"#
    );
    let err = store
        .ingest_manifest(manifest.as_bytes(), None)
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("unsupported media type \"application/vnd.example.weird+json\""),
        "{err}"
    );
    let declared = store
        .ingest_manifest(manifest.as_bytes(), Some(OCI_MANIFEST))
        .unwrap_err();
    assert!(
        declared.to_string().contains("declared media type"),
        "{declared}"
    );
    assert!(!store.has_blob(&Digest::sha256_of(manifest.as_bytes())));
}

/// Regression: 2,500 chained stages overflowed kiln's stack (exit 134);
/// BuildKit builds 3,000.
#[test]
fn three_thousand_chained_stages_build() {
    let env = Kiln::new();
    let mut dockerfile = String::from("FROM scratch AS s0\n");
    for i in 1..=3000 {
        dockerfile.push_str(&format!("FROM s{} AS s{i}\n", i - 1));
    }
    dockerfile.push_str("ENV DONE=1\n");
    let ctx = env.context(&[]);
    env.build_ok(&ctx, &dockerfile, "chained:1", &[]);
    let env_list = env.config("chained:1")["Config"]["Env"].clone();
    assert!(env_list.to_string().contains("DONE=1"), "{env_list}");
}

/// Runs `kiln args...` with `stdin` as its standard input; expects failure,
/// returns stderr.
fn fails_reading(env: &Kiln, args: &[&str], stdin: std::fs::File) -> String {
    let out = env.cmd(args).stdin(stdin).output().expect("running kiln");
    let ran = support::kiln::ran(out);
    ran.fails().to_string()
}

/// Regression: `kiln build -f - < /dev/zero` reached 9.1 GB of memory.
#[test]
fn an_endless_dockerfile_on_stdin_is_refused_at_buildkits_limit() {
    let env = Kiln::new();
    let ctx = env.context(&[]);
    let zero = || std::fs::File::open("/dev/zero").unwrap();
    let err = fails_reading(&env, &["build", "-f", "-", ctx.to_str().unwrap()], zero());
    assert!(
        err.contains("Dockerfile from stdin exceeds maximum allowed size of 16777216 bytes"),
        "{err}"
    );
    // `kiln build -`: not a tar, so the Dockerfile, with the same bound.
    let err = fails_reading(&env, &["build", "-"], zero());
    assert!(
        err.contains("exceeds maximum allowed size of 16777216 bytes"),
        "{err}"
    );
    // A file given with -f.
    let err = env.fails(&["build", "-f", "/dev/zero", ctx.to_str().unwrap()]);
    assert!(
        err.contains("/dev/zero exceeds maximum allowed size"),
        "{err}"
    );
}

/// Regression: `kiln build - < /dev/urandom` held the whole stream in
/// memory; a context tar is now unpacked as it streams in, within the
/// per-archive limit.
#[test]
fn a_context_tar_on_stdin_is_unpacked_within_the_archive_limit() {
    let env = Kiln::new();
    let dockerfile = b"FROM scratch\nCOPY zeros /\n";
    let (mut zeros, mut df) = (std::io::repeat(0).take(4 << 20), &dockerfile[..]);
    let tar = archive::write_files(
        Vec::new(),
        &mut [
            ("zeros", 4 << 20, &mut zeros as &mut dyn Read),
            ("Dockerfile", df.len() as u64, &mut df),
        ],
    );
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&tar).unwrap();
    let tar_gz = env.path("ctx.tar.gz");
    std::fs::write(&tar_gz, gz.finish().unwrap()).unwrap();
    let stdin = || std::fs::File::open(&tar_gz).unwrap();

    let out = env
        .cmd(&["build", "-t", "bomb:1", "-"])
        .env("KILN_MAX_ARCHIVE_SIZE", (1u64 << 20).to_string())
        .stdin(stdin())
        .output()
        .unwrap();
    let err = support::kiln::ran(out).fails().to_string();
    assert!(
        err.contains("the context tar on stdin expands to more than 1048576 bytes"),
        "{err}"
    );
    assert!(env.entries("tmp").is_empty(), "{:?}", env.entries("tmp"));
    // Within the default limit the same context builds.
    let out = env
        .cmd(&["build", "-t", "bomb:1", "-"])
        .stdin(stdin())
        .output()
        .unwrap();
    support::kiln::ran(out).ok();
}

/// Regression: `kiln run --env-file /dev/urandom` grew to 3.2 GB and never
/// finished.
#[test]
fn endless_env_files_are_refused() {
    let env = Kiln::with_busybox_rootfs();
    for dev in ["/dev/urandom", "/dev/zero"] {
        let ran = env.run_rootfs(&["--rm", "--env-file", dev], &["true"]);
        let err = ran.fails();
        assert!(
            err.contains("--env-file") || err.contains("env file"),
            "{err}"
        );
        assert!(err.contains(dev), "{err}");
    }
}

/// A GNU sparse tar (GNU tar `-S`) holding `name` of `size` logical bytes
/// with a little data at the start and the middle; returns the tar's path.
fn sparse_tar(env: &Kiln, name: &str, size: u64) -> std::path::PathBuf {
    let dir = env.path("sparse-src");
    std::fs::create_dir_all(&dir).unwrap();
    let f = std::fs::File::create(dir.join(name)).unwrap();
    f.set_len(size).unwrap();
    use std::os::unix::fs::FileExt;
    f.write_all_at(b"start", 0).unwrap();
    f.write_all_at(b"middle", size / 2).unwrap();
    drop(f);
    let tar = env.path(&format!("{name}.tar"));
    let out = std::process::Command::new("tar")
        .args(["--format=gnu", "-S", "-cf"])
        .arg(&tar)
        .arg("-C")
        .arg(&dir)
        .arg(name)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let len = std::fs::metadata(&tar).unwrap().len();
    assert!(len < 64 << 10, "not a sparse tar: {len} bytes");
    tar
}

/// The file `rel` in the store's snapshots (the one holding it).
fn in_snapshots(env: &Kiln, rel: &str) -> std::path::PathBuf {
    env.entries("snapshots")
        .iter()
        .map(|s| env.root().join("snapshots").join(s).join(rel))
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("{rel} in no snapshot"))
}

/// Asserts `path` is `size` bytes long, reads back its data, and takes
/// (almost) no disk.
fn assert_sparse(path: &std::path::Path, size: u64) {
    use std::os::unix::fs::{FileExt, MetadataExt};
    let md = std::fs::metadata(path).unwrap();
    assert_eq!(md.len(), size);
    assert!(
        md.blocks() * 512 < 1 << 20,
        "{} blocks allocated",
        md.blocks()
    );
    let f = std::fs::File::open(path).unwrap();
    let mut buf = [0u8; 6];
    f.read_exact_at(&mut buf, size / 2).unwrap();
    assert_eq!(&buf, b"middle");
    f.read_exact_at(&mut buf[..5], 0).unwrap();
    assert_eq!(&buf[..5], b"start");
}

/// Regression: a 10 KiB tar holding a 2 GiB sparse file was written out in
/// full. Layers (`import`, `load`, `pull`) keep the holes, and the logical
/// size counts against the per-archive limit.
#[test]
fn a_sparse_file_in_a_layer_keeps_its_holes_within_the_archive_limit() {
    let env = Kiln::new();
    let tar = sparse_tar(&env, "big", 2 << 30);
    env.ok(&["import", tar.to_str().unwrap(), "sparse:1"]);
    assert_sparse(&in_snapshots(&env, "big"), 2 << 30);

    let small = Kiln::new();
    let out = small
        .cmd(&["import", tar.to_str().unwrap(), "sparse:2"])
        .env("KILN_MAX_ARCHIVE_SIZE", (1u64 << 30).to_string())
        .output()
        .unwrap();
    let err = support::kiln::ran(out).fails().to_string();
    assert!(
        err.contains("expands to more than 1073741824 bytes")
            && err.contains("KILN_MAX_ARCHIVE_SIZE"),
        "{err}"
    );
    assert!(small.entries("snapshots").is_empty());
}

/// The same through `ADD archive.tar`.
#[test]
fn a_sparse_file_in_an_add_archive_keeps_its_holes_within_the_archive_limit() {
    let env = Kiln::new();
    let size = 256 << 20;
    let tar = sparse_tar(&env, "big", size);
    let ctx = env.context(&[]);
    std::fs::copy(&tar, ctx.join("sparse.tar")).unwrap();
    env.build_ok(&ctx, "FROM scratch\nADD sparse.tar /x/\n", "sparse:1", &[]);
    assert_sparse(&in_snapshots(&env, "x/big"), size);

    let out = env
        .cmd(&[
            "build",
            "--no-cache",
            "-t",
            "sparse:2",
            ctx.to_str().unwrap(),
        ])
        .env("KILN_MAX_ARCHIVE_SIZE", (size / 2).to_string())
        .output()
        .unwrap();
    let err = support::kiln::ran(out).fails().to_string();
    assert!(
        err.contains("sparse.tar expands to more than") && err.contains(&(size / 2).to_string()),
        "{err}"
    );
}

/// Regression: a file name that is not valid UTF-8 anywhere in the context
/// failed the build, even unused or ignored; BuildKit builds it (names are
/// bytes). Copied, it arrives with the same bytes.
#[test]
fn non_utf8_names_in_the_context_are_kept_as_bytes() {
    use std::os::unix::ffi::OsStrExt;
    let env = Kiln::new();
    let ctx = env.context(&[("keep", "k")]);
    let name = std::ffi::OsStr::from_bytes(b"bad\xff\xfe name");
    std::fs::write(ctx.join(name), "raw").unwrap();
    let copied = |dir: &str| -> Vec<Vec<u8>> {
        env.entries("snapshots")
            .iter()
            .map(|s| env.root().join("snapshots").join(s).join(dir).join(name))
            .filter(|p| p.exists())
            .map(|p| std::fs::read(p).unwrap())
            .collect()
    };
    // Not selected by any step.
    env.build_ok(&ctx, "FROM scratch\nCOPY keep /\n", "nu:1", &[]);
    // Ignored.
    std::fs::write(ctx.join(".dockerignore"), "bad*\n").unwrap();
    env.build_ok(&ctx, "FROM scratch\nCOPY . /x/\n", "nu:2", &[]);
    assert!(copied("x").is_empty(), "an ignored file was copied");
    // Copied whole and through a wildcard: the same bytes arrive.
    std::fs::remove_file(ctx.join(".dockerignore")).unwrap();
    env.build_ok(
        &ctx,
        "FROM scratch\nCOPY . /x/\nCOPY bad* /y/\n",
        "nu:3",
        &[],
    );
    assert_eq!(copied("x"), vec![b"raw".to_vec()]);
    assert_eq!(copied("y"), vec![b"raw".to_vec()]);
}

/// Found by scripts/adversarial: `kiln import /dev/zero x:y` read zeros
/// after the (all-zero) end-of-archive marker until killed.
#[test]
fn importing_endless_zeros_stops_after_the_end_marker() {
    let env = Kiln::new();
    let err = env.fails(&["import", "/dev/zero", "zeros:1"]);
    assert!(err.contains("after its end-of-archive marker"), "{err}");
}

/// Found by scripts/adversarial: a bad `--progress` beside `-q` was
/// accepted, and docker's conflicting `-v` modes (`ro,rw`) too.
#[test]
fn bad_progress_modes_and_conflicting_volume_modes_are_refused() {
    let env = Kiln::with_busybox_rootfs();
    let ctx = env.path("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), "FROM scratch\n").unwrap();
    let err = env.fails(&["build", "-q", "--progress", "bogus", ctx.to_str().unwrap()]);
    assert!(err.contains("bogus"), "{err}");
    let vol = format!("{}:/x:ro,rw", ctx.display());
    let err = env
        .run_rootfs(&["--rm", "-v", &vol], &["true"])
        .fails()
        .to_string();
    assert!(err.contains("invalid mode: ro,rw"), "{err}");
}
