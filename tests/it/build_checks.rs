//! BuildKit's build checks through the real binary: warnings after a
//! build, `# check=` options, `kiln build --check`, `# syntax=` naming
//! another frontend, and how a failed RUN is reported (the Dockerfile
//! excerpt buildx prints with BuildKit's error).

use crate::support;

use support::kiln::Kiln;

#[test]
fn warnings_are_listed_after_a_successful_build() {
    let k = Kiln::with_busybox_image();
    let ctx = k.context(&[]);
    let stderr = k.build_ok(
        &ctx,
        "FROM busybox as BUILDER\nRUN true\nCMD echo hi\n",
        "checked:1",
        &[],
    );
    let tail = &stderr[stderr.find("naming to").expect("image named")..];
    assert!(
        tail.ends_with(
            "\n 3 warnings found (use --debug to expand):\n\
             \x20- StageNameCasing: Stage name 'BUILDER' should be lowercase (line 1)\n\
             \x20- FromAsCasing: 'as' and 'FROM' keywords' casing do not match (line 1)\n\
             \x20- JSONArgsRecommended: JSON arguments recommended for CMD to prevent unintended behavior related to OS signals (line 3)\n"
        ),
        "{stderr}"
    );
    // --debug expands each warning, as buildx's does.
    let ran = k.kiln(&[
        "--debug",
        "build",
        "--progress",
        "plain",
        ctx.to_str().unwrap(),
    ]);
    assert!(
        ran.stderr.contains(
            " - JSONArgsRecommended: JSON arguments recommended for CMD to prevent unintended behavior related to OS signals (line 3)\n\
             JSON arguments recommended for ENTRYPOINT/CMD to prevent unintended behavior related to OS signals\n\
             More info: https://docs.docker.com/go/dockerfile/rule/json-args-recommended/\n\
             Dockerfile:3\n"
        ),
        "{ran:?}"
    );
    // Quiet builds print the ID only.
    let ran = k.kiln(&["build", "-q", ctx.to_str().unwrap()]);
    assert!(
        !ran.ok().contains("warning") && !ran.stderr.contains("warning"),
        "{ran:?}"
    );
}

#[test]
fn check_skip_silences_the_named_rules() {
    let k = Kiln::with_busybox_image();
    let ctx = k.context(&[]);
    let stderr = k.build_ok(
        &ctx,
        "# check=skip=StageNameCasing,JSONArgsRecommended\nFROM busybox as BUILDER\nCMD echo hi\n",
        "skipped:1",
        &[],
    );
    assert!(stderr.contains(" 1 warning found"), "{stderr}");
    assert!(stderr.contains(" - FromAsCasing:"), "{stderr}");
    assert!(!stderr.contains("StageNameCasing"), "{stderr}");
    let stderr = k.build_ok(
        &ctx,
        "# check=skip=all\nFROM busybox as BUILDER\nCMD echo hi\n",
        "skipped:2",
        &[],
    );
    assert!(!stderr.contains("warning"), "{stderr}");
}

#[test]
fn check_error_fails_the_build_before_any_step_runs() {
    let k = Kiln::with_busybox_image();
    let ctx = k.context(&[]);
    std::fs::write(
        ctx.join("Dockerfile"),
        "# check=error=true\nFROM busybox as base\nRUN touch /ran\n",
    )
    .unwrap();
    let ran = k.build(&ctx, &["-t", "strict:1"]);
    let err = ran.fails();
    assert!(
        err.ends_with("lint violation found for rules: FromAsCasing\n"),
        "{err}"
    );
    assert!(
        err.contains(" - FromAsCasing: 'as' and 'FROM' keywords' casing do not match (line 2)"),
        "{err}"
    );
    assert!(!err.contains("RUN touch"), "no step may run: {err}");
    assert!(k.images_listed().iter().all(|i| !i.contains("strict")));
    // With --check, the report comes first, then the error.
    let ran = k.kiln(&["build", "--check", ctx.to_str().unwrap()]);
    assert_eq!(ran.code, 1, "{ran:?}");
    assert!(
        ran.stdout
            .starts_with("Check complete, 1 warning has been found!\n"),
        "{ran:?}"
    );
    assert_eq!(
        ran.stderr, "lint violation found for rules: FromAsCasing\n",
        "{ran:?}"
    );
    // A bad option is BuildKit's error, naming it.
    std::fs::write(
        ctx.join("Dockerfile"),
        "# check=error=maybe\nFROM busybox\n",
    )
    .unwrap();
    let err = k.build(&ctx, &[]).fails().to_string();
    assert!(
        err.contains("failed to parse check options: failed to parse check option \"error=maybe\""),
        "{err}"
    );
}

#[test]
fn check_flag_reports_without_building() {
    let k = Kiln::with_busybox_image();
    let ctx = k.context(&[]);
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nMAINTAINER me\nRUN touch /ran\n",
    )
    .unwrap();
    let ran = k.kiln(&[
        "build",
        "--check",
        "-t",
        "checkonly:1",
        ctx.to_str().unwrap(),
    ]);
    assert_eq!(ran.code, 1, "{ran:?}");
    assert_eq!(
        ran.stdout,
        "Check complete, 1 warning has been found!\n\
         \n\
         WARNING: MaintainerDeprecated - https://docs.docker.com/go/dockerfile/rule/maintainer-deprecated/\n\
         Maintainer instruction is deprecated in favor of using label\n\
         Dockerfile:2\n\
         --------------------\n\
         \x20  1 |     FROM busybox\n\
         \x20  2 | >>> MAINTAINER me\n\
         \x20  3 |     RUN touch /ran\n\
         \x20  4 |     \n\
         --------------------\n"
    );
    assert!(k.images_listed().iter().all(|i| !i.contains("checkonly")));
    std::fs::write(ctx.join("Dockerfile"), "FROM busybox\nRUN true\n").unwrap();
    let ran = k.kiln(&["build", "--check", ctx.to_str().unwrap()]);
    assert_eq!(
        (ran.code, ran.stdout.as_str()),
        (0, "Check complete, no warnings found.\n"),
        "{ran:?}"
    );
}

#[test]
fn syntax_naming_another_frontend_is_refused_with_its_line() {
    let k = Kiln::with_busybox_image();
    let ctx = k.context(&[]);
    std::fs::write(
        ctx.join("Dockerfile"),
        "# syntax=example.com/other-frontend:1\nFROM busybox\n",
    )
    .unwrap();
    let err = k.build(&ctx, &[]).fails().to_string();
    assert!(
        err.contains("Dockerfile:1: # syntax=example.com/other-frontend:1: kiln builds with its own Dockerfile frontend"),
        "{err}"
    );
    // The Dockerfile frontend's own images are kiln itself.
    k.build_ok(
        &ctx,
        "# syntax=docker/dockerfile:1.7\nFROM busybox\n",
        "syntax:1",
        &[],
    );
}

#[test]
fn failed_run_shows_the_dockerfile_excerpt_and_buildkits_error() {
    let k = Kiln::with_busybox_image();
    let ctx = k.context(&[]);
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nRUN echo ok\nRUN echo one && \\\n  exit 3\nRUN echo never\n",
    )
    .unwrap();
    let ran = k.build(&ctx, &[]);
    let err = ran.fails_with(1);
    // Two lines of context around a multi-line instruction, as
    // errdefs.Source.Print pads.
    assert!(
        err.ends_with(
            "Dockerfile:3\n\
             --------------------\n\
             \x20  2 |     RUN echo ok\n\
             \x20  3 | >>> RUN echo one && \\\n\
             \x20  4 | >>>   exit 3\n\
             \x20  5 |     RUN echo never\n\
             --------------------\n\
             process \"/bin/sh -c echo one &&   exit 3\" did not complete successfully: exit code: 3\n"
        ),
        "{err}"
    );
}

#[test]
fn undefined_variables_are_judged_with_the_stage_environment() {
    let k = Kiln::with_busybox_image();
    let ctx = k.context(&[]);
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nARG GIVEN\nENV A=$PATH B=$PATHH C=$GIVEN\nRUN echo $NOT_CHECKED_IN_SHELL\n",
    )
    .unwrap();
    let ran = k.kiln(&["build", "--check", ctx.to_str().unwrap()]);
    assert_eq!(ran.code, 1, "{ran:?}");
    assert!(
        ran.stdout.starts_with(
            "Check complete, 1 warning has been found!\n\
             \n\
             WARNING: UndefinedVar - https://docs.docker.com/go/dockerfile/rule/undefined-var/\n\
             Usage of undefined variable '$PATHH' (did you mean $PATH?)\n\
             Dockerfile:3\n"
        ),
        "{ran:?}"
    );
    let ran = k.build(&ctx, &[]);
    assert!(
        ran.ok().is_empty()
            && ran.stderr.ends_with(
                " - UndefinedVar: Usage of undefined variable '$PATHH' (did you mean $PATH?) (line 3)\n"
            ),
        "{ran:?}"
    );
}

#[test]
fn misspelt_copy_from_shows_the_line_and_suggests_the_stage() {
    let k = Kiln::with_busybox_image();
    let ctx = k.context(&[]);
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox AS builder\nRUN touch /x\nFROM busybox\nCOPY --from=buidler /x /x\n",
    )
    .unwrap();
    // Like BuildKit, `buidler` is still tried as an image first; no such
    // image is reachable here, and the error suggests the stage.
    let err = k.build(&ctx, &[]).fails().to_string();
    assert!(
        err.contains(
            "Dockerfile:4\n\
             --------------------\n\
             \x20  2 |     RUN touch /x\n\
             \x20  3 |     FROM busybox\n\
             \x20  4 | >>> COPY --from=buidler /x /x\n\
             \x20  5 |     \n\
             --------------------\n\
             Dockerfile:4: buidler"
        ),
        "{err}"
    );
    assert!(err.trim_end().ends_with("(did you mean builder?)"), "{err}");
    let err = k.build(&ctx, &["--target", "buildr"]).fails().to_string();
    assert!(
        err.contains("target stage \"buildr\" could not be found (did you mean builder?)"),
        "{err}"
    );
}
