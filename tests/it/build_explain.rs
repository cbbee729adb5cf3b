//! `kiln build --explain`: for each step that missed the cache, the first
//! input that differs from the step's last cached record.

use crate::support;

use support::kiln::Kiln;

/// The `explain:` lines of a build's stderr.
fn explanations(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter_map(|l| l.strip_prefix("explain: "))
        .map(str::to_string)
        .collect()
}

/// The explanation of the step whose name contains `step`.
#[track_caller]
fn why(lines: &[String], step: &str) -> String {
    let found: Vec<&String> = lines
        .iter()
        .filter(|l| {
            l.split_once(": ")
                .is_some_and(|(name, _)| name.contains(step))
        })
        .collect();
    assert_eq!(found.len(), 1, "one explanation for {step:?} in {lines:#?}");
    found[0].clone()
}

#[test]
fn a_changed_file_is_named_with_its_copy() {
    let k = Kiln::with_busybox_image();
    let ctx = k.context(&[("a.txt", "a"), ("b.txt", "b"), ("other.txt", "o")]);
    let dockerfile = "FROM busybox\nCOPY a.txt b.txt /dst/\nRUN cat /dst/b.txt\n";
    let first = k.build_ok(&ctx, dockerfile, "explained", &["--explain"]);
    assert!(
        why(&explanations(&first), "COPY").ends_with("no earlier record of this step"),
        "{first}"
    );
    std::fs::write(ctx.join("b.txt"), "b changed").unwrap();
    let out = k.build_ok(&ctx, dockerfile, "explained", &["--explain"]);
    let lines = explanations(&out);
    let copy = why(&lines, "COPY a.txt b.txt");
    assert!(
        copy.ends_with("file \"b.txt\" changed in the context"),
        "{copy}"
    );
    let run = why(&lines, "RUN cat");
    assert!(
        run.ends_with("its input changed: [2/3] COPY a.txt b.txt /dst/"),
        "{run}"
    );
    // The cached FROM is not explained; without the flag nothing is.
    assert_eq!(lines.len(), 2, "{lines:#?}");
    std::fs::write(ctx.join("b.txt"), "b again").unwrap();
    let quiet = k.build_ok(&ctx, dockerfile, "explained", &[]);
    assert!(explanations(&quiet).is_empty(), "{quiet}");
}

#[test]
fn a_changed_build_arg_is_named() {
    let k = Kiln::with_busybox_image();
    let ctx = k.context(&[]);
    let dockerfile = "FROM busybox\nARG FLAVOUR\nRUN echo $FLAVOUR > /flavour\n";
    k.build_ok(&ctx, dockerfile, "arg", &["--build-arg", "FLAVOUR=mild"]);
    let out = k.build_ok(
        &ctx,
        dockerfile,
        "arg",
        &["--explain", "--build-arg", "FLAVOUR=hot"],
    );
    let run = why(&explanations(&out), "RUN echo");
    assert!(
        run.ends_with("build arg or env FLAVOUR changed: \"mild\" -> \"hot\""),
        "{run}"
    );
}

#[test]
fn a_changed_base_says_its_digest() {
    let k = Kiln::with_busybox_image();
    let ctx = k.context(&[]);
    let dockerfile = "FROM busybox\nRUN echo hi > /hi\n";
    k.build_ok(&ctx, dockerfile, "on-base", &[]);
    // `busybox` now names another image.
    let other = k.context(&[]);
    k.build_ok(&other, "FROM busybox\nRUN echo x > /x\n", "newbase", &[]);
    k.ok(&["tag", "newbase", "busybox:latest"]);
    let out = k.build_ok(&ctx, dockerfile, "on-base", &["--explain"]);
    let lines = explanations(&out);
    let from = why(&lines, "FROM");
    assert!(
        from.contains("base image digest changed: sha256:"),
        "{from}"
    );
    let run = why(&lines, "RUN echo hi");
    assert!(run.contains("its input changed: [1/2] FROM"), "{run}");
}

#[test]
fn a_changed_command_is_named() {
    let k = Kiln::with_busybox_image();
    let ctx = k.context(&[]);
    k.build_ok(&ctx, "FROM busybox\nRUN echo one\n", "cmd", &[]);
    let out = k.build_ok(&ctx, "FROM busybox\nRUN echo two\n", "cmd", &["--explain"]);
    let run = why(&explanations(&out), "RUN echo two");
    assert!(
        run.contains("command changed") && run.contains("echo one"),
        "{run}"
    );
}

#[test]
fn a_changed_file_under_a_copied_directory_is_named() {
    let k = Kiln::with_busybox_image();
    let ctx = k.context(&[
        ("src/a.txt", "a"),
        ("src/deep/b.txt", "b"),
        ("src/deep/c.txt", "c"),
    ]);
    let dockerfile = "FROM busybox\nCOPY . /app/\n";
    k.build_ok(&ctx, dockerfile, "tree", &[]);
    std::fs::write(ctx.join("src/deep/b.txt"), "b changed").unwrap();
    let out = k.build_ok(&ctx, dockerfile, "tree", &["--explain"]);
    let copy = why(&explanations(&out), "COPY . /app/");
    assert!(copy.contains("\"src/deep/b.txt\" changed"), "{copy}");
}
