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
