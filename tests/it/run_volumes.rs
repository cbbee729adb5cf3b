//! Volumes with `kiln run` and `kiln volume`: docker's rules for named,
//! anonymous and bind mounts, `--mount`, the copy of the image's files into
//! a new volume, `--volumes-from`, and the volume commands.

use crate::support;
use support::kiln::{host_mounts_under, ran, Kiln};

/// `kiln run --rm busybox sh -c SCRIPT` with `flags` before the image.
fn sh(k: &Kiln, flags: &[&str], script: &str) -> support::kiln::Ran {
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&["busybox", "sh", "-c", script]);
    k.kiln(&args)
}

/// The names `volume ls -q` prints.
fn volumes(k: &Kiln) -> Vec<String> {
    k.ok(&["volume", "ls", "-q"])
        .lines()
        .map(str::to_string)
        .collect()
}

/// An image with `/srv` owned by 123:456, mode 750, holding `f`, and
/// `/cache` declared a `VOLUME` holding `seed`.
fn image_with_content(k: &Kiln) {
    let ctx = k.context(&[]);
    k.build_ok(
        &ctx,
        "FROM busybox\n\
         RUN mkdir -p /srv/sub /cache && echo from-image > /srv/f && echo seeded > /cache/seed \
         && chown 123:456 /srv && chmod 750 /srv\n\
         VOLUME /cache\n",
        "content",
        &[],
    );
}

#[test]
fn a_named_volume_keeps_data_across_containers() {
    let k = Kiln::with_busybox_image();
    sh(&k, &["-v", "data:/data"], "echo kept > /data/f").ok();
    let out = sh(&k, &["-v", "data:/data"], "cat /data/f");
    assert_eq!(out.ok(), "kept\n");
    assert_eq!(volumes(&k), vec!["data"]);
    assert!(host_mounts_under(k.dir.path()).is_empty());
}

#[test]
fn a_new_volume_gets_the_images_files_owner_and_mode_but_a_full_one_does_not() {
    let k = Kiln::with_busybox_image();
    image_with_content(&k);
    let out = k.ok(&[
        "run",
        "--rm",
        "-v",
        "fresh:/srv",
        "content",
        "sh",
        "-c",
        "cat /srv/f; stat -c '%u:%g %a' /srv; ls /srv",
    ]);
    assert_eq!(out, "from-image\n123:456 750\nf\nsub\n");
    // Not into a volume that has files.
    sh(&k, &["-v", "full:/x"], "echo mine > /x/mine").ok();
    let out = k.ok(&["run", "--rm", "-v", "full:/srv", "content", "ls", "/srv"]);
    assert_eq!(out, "mine\n");
    // `nocopy` (and --mount's volume-nocopy) leave a new volume empty.
    let out = k.ok(&[
        "run",
        "--rm",
        "-v",
        "nc:/srv:nocopy",
        "content",
        "ls",
        "-A",
        "/srv",
    ]);
    assert_eq!(out, "");
    let out = k.ok(&[
        "run",
        "--rm",
        "--mount",
        "src=nc2,dst=/srv,volume-nocopy",
        "content",
        "ls",
        "-A",
        "/srv",
    ]);
    assert_eq!(out, "");
    // The copy's overlay was mounted in a private namespace only.
    assert!(host_mounts_under(k.dir.path()).is_empty());
}

#[test]
fn read_only_volumes_and_binds_refuse_writes() {
    let k = Kiln::with_busybox_image();
    let host = k.path("host-ro");
    std::fs::create_dir_all(&host).unwrap();
    let bind = format!("{}:/b:ro", host.display());
    let out = sh(
        &k,
        &["-v", "rov:/v:ro", "-v", &bind],
        "touch /v/x; touch /b/x; ls /v /b",
    );
    let err = out.ok();
    assert!(!err.contains('x'), "{out:?}");
    assert!(out.stderr.contains("Read-only file system"), "{out:?}");
    assert!(std::fs::read_dir(&host).unwrap().next().is_none());
}

#[test]
fn a_relative_bind_is_resolved_against_the_current_directory() {
    let k = Kiln::with_busybox_image();
    let cwd = k.path("project");
    std::fs::create_dir_all(cwd.join("site")).unwrap();
    std::fs::write(cwd.join("site/index.html"), "hello").unwrap();
    let out = ran(k
        .cmd(&[
            "run",
            "--rm",
            "-v",
            "./site:/site",
            "-v",
            "./made:/made",
            "--mount",
            "type=bind,src=./site,dst=/m,readonly",
            "busybox",
            "sh",
            "-c",
            "cat /site/index.html /m/index.html; echo new > /made/f",
        ])
        .current_dir(&cwd)
        .output()
        .unwrap());
    assert_eq!(out.ok(), "hellohello");
    // `-v` creates a missing host dir, as docker does.
    assert_eq!(
        std::fs::read_to_string(cwd.join("made/f")).unwrap(),
        "new\n"
    );
    // No volume was made of them.
    assert!(volumes(&k).is_empty());
}

#[test]
fn mount_flag_binds_volumes_and_tmpfs() {
    let k = Kiln::with_busybox_image();
    let host = k.path("mnt-src");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("h"), "host").unwrap();
    let bind = format!("type=bind,source={},target=/b,readonly", host.display());
    let out = sh(
        &k,
        &[
            "--mount",
            &bind,
            "--mount",
            "type=volume,src=mv,dst=/v,volume-label=team=a",
            "--mount",
            "type=tmpfs,dst=/t,tmpfs-size=1m,tmpfs-mode=1770",
        ],
        "cat /b/h; echo; touch /b/no 2>/dev/null || echo ro; stat -c %a /t; \
         grep ' /t ' /proc/mounts | grep -o 'size=[0-9a-z]*'; echo v > /v/f",
    );
    assert_eq!(out.ok(), "host\nro\n1770\nsize=1024k\n");
    let labels = k.ok(&["volume", "inspect", "mv"]);
    assert!(labels.contains("\"team\": \"a\""), "{labels}");
}

#[test]
fn an_image_volume_is_anonymous_seeded_and_removed_with_rm() {
    let k = Kiln::with_busybox_image();
    image_with_content(&k);
    // Kept with the container when it is not --rm.
    k.ok(&["run", "content", "true"]);
    let kept = volumes(&k);
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(kept[0].len(), 64, "{kept:?}");
    let data = k.root().join("volumes").join(&kept[0]).join("_data/seed");
    assert_eq!(std::fs::read_to_string(data).unwrap(), "seeded\n");
    let inspect = k.ok(&["volume", "inspect", &kept[0]]);
    assert!(inspect.contains("com.docker.volume.anonymous"), "{inspect}");
    // A --rm container's anonymous volumes (VOLUME and `-v /path`) go
    // with it; a named one stays.
    let out = k.ok(&[
        "run",
        "--rm",
        "-v",
        "/anon",
        "-v",
        "named:/n",
        "content",
        "sh",
        "-c",
        "cat /cache/seed; echo x > /anon/f",
    ]);
    assert_eq!(out, "seeded\n");
    let mut after = volumes(&k);
    after.sort();
    let mut want = vec![kept[0].clone(), "named".to_string()];
    want.sort();
    assert_eq!(after, want);
    // A -v at the VOLUME's path replaces the anonymous volume.
    k.ok(&["run", "--rm", "-v", "over:/cache", "content", "true"]);
    assert_eq!(volumes(&k).len(), 3);
}

#[test]
fn volume_commands_create_ls_inspect_rm_and_prune() {
    let k = Kiln::new();
    assert_eq!(
        k.ok(&["volume", "create", "--label", "env=test", "v1"]),
        "v1\n"
    );
    let anon = k.ok(&["volume", "create"]).trim().to_string();
    assert_eq!(anon.len(), 64);
    let ls = k.ok(&["volume", "ls"]);
    let mut lines = ls.lines();
    assert_eq!(
        lines.next().unwrap().split_whitespace().collect::<Vec<_>>(),
        ["DRIVER", "VOLUME", "NAME"]
    );
    assert_eq!(lines.count(), 2, "{ls}");
    assert_eq!(
        k.ok(&["volume", "ls", "-q", "--filter", "label=env=test"]),
        "v1\n"
    );
    assert_eq!(k.ok(&["volume", "ls", "-q", "--filter", "name=v"]), "v1\n");
    let json: serde_json::Value =
        serde_json::from_str(&k.ok(&["volume", "inspect", "v1"])).unwrap();
    let v = &json[0];
    assert_eq!(v["Name"], "v1");
    assert_eq!(v["Driver"], "local");
    assert_eq!(v["Scope"], "local");
    assert_eq!(v["Labels"]["env"], "test");
    let mountpoint = k.root().join("volumes/v1/_data");
    assert_eq!(v["Mountpoint"], mountpoint.to_str().unwrap());
    // RFC 3339 in whole seconds, as docker's.
    let created = v["CreatedAt"].as_str().unwrap();
    assert!(created.ends_with('Z') && !created.contains('.'), "{v}");
    let shown = k.ok(&[
        "volume",
        "inspect",
        "--format",
        "{{.Mountpoint}} {{.Driver}}",
        "v1",
    ]);
    assert_eq!(shown, format!("{} local\n", mountpoint.display()));
    let out = k.kiln(&["volume", "inspect", "v1", "nosuch"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("No such volume: nosuch"), "{out:?}");
    // docker ≥ 23: prune takes anonymous volumes only, unless --all.
    let out = k.ok(&["volume", "prune", "-f"]);
    assert!(out.contains(&anon) && !out.contains("v1"), "{out}");
    assert!(out.contains("Total reclaimed space"), "{out}");
    assert_eq!(volumes(&k), vec!["v1"]);
    k.ok(&["volume", "create", "v2"]);
    assert_eq!(k.ok(&["volume", "rm", "v2"]), "v2\n");
    let out = k.kiln(&["volume", "rm", "v2"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("no such volume"), "{out:?}");
    k.ok(&["volume", "rm", "-f", "v2"]);
    let out = k.ok(&["volume", "prune", "-a", "-f"]);
    assert!(out.contains("v1"), "{out}");
    assert!(volumes(&k).is_empty());
    assert!(!mountpoint.exists());
}

#[test]
fn a_volume_in_use_is_not_removed() {
    let k = Kiln::with_busybox_image();
    // Not --rm: the exited container keeps its volume in use, as docker's.
    k.ok(&[
        "run", "--name", "holder", "-v", "used:/u", "busybox", "true",
    ]);
    let out = k.kiln(&["volume", "rm", "used"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains("remove used: volume is in use - ["),
        "{out:?}"
    );
    let out = k.kiln(&["volume", "rm", "-f", "used"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(
        k.ok(&["volume", "ls", "-q", "--filter", "dangling=false"]),
        "used\n"
    );
    k.ok(&["volume", "prune", "-a", "-f"]);
    assert_eq!(volumes(&k), vec!["used"]);
}

#[test]
fn volumes_from_mounts_another_containers_volumes_and_binds() {
    let k = Kiln::with_busybox_image();
    let host = k.path("vf-bind");
    std::fs::create_dir_all(&host).unwrap();
    let bind = format!("{}:/b", host.display());
    k.ok(&[
        "run",
        "--name",
        "src",
        "-v",
        "shared:/data",
        "-v",
        &bind,
        "busybox",
        "sh",
        "-c",
        "echo x > /data/f; echo y > /b/g",
    ]);
    let out = sh(&k, &["--volumes-from", "src"], "cat /data/f /b/g");
    assert_eq!(out.ok(), "x\ny\n");
    let out = sh(
        &k,
        &["--volumes-from", "src:ro"],
        "touch /data/n 2>&1 || echo refused",
    );
    assert!(out.ok().contains("refused"), "{out:?}");
    let err = sh(&k, &["--volumes-from", "nosuch"], "true");
    assert!(
        err.fails_with(125).contains("No such container: nosuch"),
        "{err:?}"
    );
}

#[test]
fn bad_mount_specs_get_dockers_errors_and_exit_125() {
    let k = Kiln::with_busybox_image();
    let cases: &[(&[&str], &str)] = &[
        (&["-v", "/tmp:/d:bogus"], "invalid mode: bogus"),
        (
            &["-v", "bad$name:/x"],
            "includes invalid characters for a local volume name",
        ),
        (&["-v", "data:rel"], "mount path must be absolute"),
        (
            &["-v", "/data:ro"],
            "invalid volume specification: '/data:ro'",
        ),
        (
            &["--mount", "type=bind,dst=/x"],
            "field Source must not be empty",
        ),
        (
            &["--mount", "type=bind,src=/no/such/kiln/dir,dst=/x"],
            "bind source path does not exist",
        ),
        (
            &["--mount", "type=volume,dst=/x,tmpfs-size=1m"],
            "cannot mix 'tmpfs-*' options",
        ),
        (&["--mount", "type=volume"], "target is required"),
        (
            &["-v", "a1:/x", "--mount", "src=a2,dst=/x"],
            "Duplicate mount point: /x",
        ),
    ];
    for (flags, want) in cases {
        let out = sh(&k, flags, "true");
        let err = out.fails_with(125);
        assert!(err.contains(want), "{flags:?}: {err}");
    }
    // Nothing was created by the refused runs.
    assert!(volumes(&k).is_empty());
    assert!(k.containers().is_empty(), "{:?}", k.containers());
}

/// The copy-up resolves the mount point inside the image: an image's
/// symlink aimed at a host path copies nothing from the host.
#[test]
fn copy_up_never_follows_an_image_symlink_out_of_the_root() {
    let k = Kiln::with_busybox_image();
    let secret = k.path("host-secret");
    std::fs::create_dir_all(&secret).unwrap();
    std::fs::write(secret.join("key"), "host only").unwrap();
    let ctx = k.context(&[]);
    let dockerfile = format!(
        "FROM busybox\nRUN ln -s /../../../../../..{} /srv\n",
        secret.display()
    );
    k.build_ok(&ctx, &dockerfile, "escape", &[]);
    k.kiln(&["run", "--rm", "-v", "esc:/srv", "escape", "true"]);
    let data = k.root().join("volumes/esc/_data");
    assert!(!data.join("key").exists());
    assert_eq!(
        std::fs::read_to_string(secret.join("key")).unwrap(),
        "host only"
    );
    assert_eq!(std::fs::read_dir(&secret).unwrap().count(), 1);
    assert!(host_mounts_under(k.dir.path()).is_empty());
}

#[test]
fn driver_options_are_checked_and_not_silently_ignored() {
    let k = Kiln::with_busybox_image();
    let err = k.fails(&["volume", "create", "-o", "color=red", "bad-opt"]);
    assert!(err.contains("invalid option key: \"color\""), "{err}");
    k.ok(&[
        "volume",
        "create",
        "-o",
        "type=tmpfs",
        "-o",
        "device=tmpfs",
        "optvol",
    ]);
    let json = k.ok(&["volume", "inspect", "optvol"]);
    assert!(json.contains("\"type\": \"tmpfs\""), "{json}");
    let out = sh(&k, &["-v", "optvol:/x"], "true");
    assert!(out.fails_with(125).contains("cannot mount yet"), "{out:?}");
    let err = k.fails(&["volume", "create", "--driver", "nfs", "other"]);
    assert!(err.contains("\"local\""), "{err}");
}

/// Regression guard for a killed `kiln run --rm`: the next kiln that
/// reaps it removes its anonymous volumes too (docker's `--rm`), and
/// keeps its named ones.
#[test]
fn a_killed_run_rm_loses_its_anonymous_volumes_to_the_reaper() {
    let k = Kiln::with_busybox_image();
    let mut child = k
        .cmd(&[
            "run",
            "--rm",
            "-v",
            "/anon",
            "-v",
            "keep:/keep",
            "busybox",
            "sh",
            "-c",
            "touch /anon/ready; exec sleep 4712",
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let ready = || {
        std::fs::read_dir(k.root().join("volumes"))
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| e.path().join("_data/ready").exists())
    };
    loop {
        if ready() {
            break;
        }
        assert!(child.try_wait().unwrap().is_none(), "the run ended early");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert_eq!(volumes(&k).len(), 2);
    // Only the child this test started, by pid.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    child.wait().unwrap();
    // `volume ls` reaps first.
    assert_eq!(volumes(&k), vec!["keep"]);
    assert!(k.containers().is_empty(), "{:?}", k.containers());
}

/// Runs starting on one volume while `volume rm -f` loops on it: each run
/// either gets the volume (which `rm` then refuses while the container
/// exists) or makes it anew; none fails or loses its own write.
#[test]
fn runs_and_volume_rm_racing_on_one_volume_all_succeed() {
    let k = Kiln::with_busybox_image();
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                k.kiln(&["volume", "rm", "-f", "race"]);
            }
        });
        let runs: Vec<_> = (0..3)
            .map(|i| {
                let k = &k;
                s.spawn(move || {
                    for j in 0..3 {
                        let script = format!("echo {i}-{j} > /d/f{i}; cat /d/f{i}");
                        let out = sh(k, &["-v", "race:/d"], &script);
                        assert_eq!(out.ok(), format!("{i}-{j}\n"));
                    }
                })
            })
            .collect();
        for r in runs {
            r.join().unwrap();
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    assert!(k.containers().is_empty(), "{:?}", k.containers());
}

#[test]
fn rm_v_removes_a_containers_anonymous_volumes_and_keeps_named_ones() {
    let k = Kiln::with_busybox_image();
    k.ok(&[
        "run", "--name", "vols", "-v", "/anon", "-v", "kept:/k", "busybox", "true",
    ]);
    assert_eq!(volumes(&k).len(), 2);
    // Without -v both stay (docker's rm).
    k.ok(&[
        "create", "--name", "plain", "-v", "/anon2", "busybox", "true",
    ]);
    k.ok(&["rm", "plain"]);
    assert_eq!(volumes(&k).len(), 3);
    k.ok(&["rm", "-v", "vols"]);
    let left = volumes(&k);
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(left.contains(&"kept".to_string()), "{left:?}");
}
