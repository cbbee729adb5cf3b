//! COPY's ownership and mode flags compared with BuildKit: `--chown`
//! parts BuildKit resolves its own way, `--chmod` symbolic modes, hard
//! links kept.

mod support;

use support::kiln::Kiln;

/// `--chown` as BuildKit resolves it (moby/buildkit `client/llb/fileop.go`
/// `WithUser`/`UserOpt.marshal`, `solver/llbsolver/ops/user_linux.go`
/// `readUser`): an empty user part is uid 0, an empty group part gid 0,
/// an unknown user 0:0 and an unknown group keeps the user's gid; none of
/// them is an error.
#[test]
fn chown_empty_parts_and_unknown_names_resolve_as_buildkit() {
    let k = Kiln::with_busybox_image();
    let ctx = k.context(&[("f", "x")]);
    let df = "FROM busybox\n\
              COPY --chown=:extra f /grp\n\
              COPY --chown=tester: f /user-colon\n\
              COPY --chown=unknown f /unknown\n\
              COPY --chown=tester:unknown f /unknown-group\n\
              COPY --chown=unknown:extra f /unknown-user-group\n";
    k.build_ok(&ctx, df, "chown:1", &[]);
    let out = k.sh(
        "chown:1",
        "stat -c '%n %u:%g' /grp /user-colon /unknown /unknown-group /unknown-user-group",
    );
    assert_eq!(
        out,
        "/grp 0:1001\n/user-colon 1000:0\n/unknown 0:0\n/unknown-group 1000:1000\n\
         /unknown-user-group 0:1001\n"
    );
}

/// Symbolic `--chmod` on a directory source (BuildKit: fsutil
/// `copy.go` `copier.copy` applies the mode set to each copied entry in
/// `copyFileInfo`, but the directory whose contents are copied gets no file
/// info when it already existed, `copyDirectoryOnly` returning not
/// created; tonistiigi/dchapes-mode `ParseWithUmask` keeps `X` only after
/// `+`, and `Apply` tests the entry's original mode and `IsDir`):
/// an existing destination root keeps its mode, files and directories
/// below it each get the mode applied to their own.
#[test]
fn symbolic_chmod_on_a_directory_source_leaves_an_existing_destination_root_alone() {
    use std::os::unix::fs::PermissionsExt;
    let k = Kiln::with_busybox_image();
    let ctx = k.context(&[("dir/f", "x"), ("dir/sub/g", "y")]);
    for (path, mode) in [("dir", 0o750), ("dir/sub", 0o700), ("dir/f", 0o640), ("dir/sub/g", 0o666)] {
        std::fs::set_permissions(ctx.join(path), PermissionsExt::from_mode(mode)).unwrap();
    }
    let df = "FROM busybox\n\
              RUN mkdir -m 700 /ex1 /ex2 /ex3 /ex4\n\
              COPY --chmod=u+x dir/ /ex1/\n\
              COPY --chmod=go-w dir/ /ex2/\n\
              COPY --chmod=a=rX dir/ /ex3/\n\
              COPY --chmod=a+rX dir/ /ex4/\n\
              COPY --chmod=u+x dir/ /new1/\n";
    k.build_ok(&ctx, df, "symchmod:1", &[]);
    let out = k.sh(
        "symchmod:1",
        "for d in ex1 ex2 ex3 ex4 new1; do stat -c '%n %a' /$d /$d/f /$d/sub /$d/sub/g; done",
    );
    let expected = [
        // u+x: each entry's own mode plus u+x; the root untouched.
        "/ex1 700", "/ex1/f 740", "/ex1/sub 700", "/ex1/sub/g 766",
        // go-w.
        "/ex2 700", "/ex2/f 640", "/ex2/sub 700", "/ex2/sub/g 644",
        // `=` ignores X: directories too become 444.
        "/ex3 700", "/ex3/f 444", "/ex3/sub 444", "/ex3/sub/g 444",
        // +X: execute for directories and already-executable files only.
        "/ex4 700", "/ex4/f 644", "/ex4/sub 755", "/ex4/sub/g 666",
        // A root the copy creates: the mode applied to 0755 (fsutil#228).
        "/new1 755", "/new1/f 740", "/new1/sub 700", "/new1/sub/g 766",
    ];
    assert_eq!(out.lines().collect::<Vec<_>>(), expected);
}
