//! Typed-layer checks through the public entry point: one `typed(source)`
//! helper, assertions on what a lowering would read.

use crate::parser::*;

fn typed(src: &str) -> Dockerfile {
    parse("Dockerfile", src.as_bytes()).unwrap_or_else(|e| panic!("{src:?} should parse:\n{e}"))
}

fn error(src: &str) -> String {
    match parse("Dockerfile", src.as_bytes()) {
        Ok(_) => panic!("{src:?} should be rejected"),
        Err(e) => e.kind.to_string(),
    }
}

fn only(src: &str) -> InstructionKind {
    let df = typed(src);
    assert_eq!(df.stages.len(), 1);
    df.stages[0]
        .instructions
        .last()
        .expect("an instruction")
        .kind
        .clone()
}

#[test]
fn stages_and_global_args() {
    let df = typed(
        "ARG BASE=alpine\nARG V\nFROM $BASE AS Build\nRUN x\nFROM build\nCOPY --from=build /a /b\n",
    );
    assert_eq!(df.global_args.len(), 2);
    assert_eq!(
        df.global_args[0].arg.definitions[0].default.as_deref(),
        Some("alpine")
    );
    assert_eq!(df.stages.len(), 2);
    assert_eq!(df.stages[0].base, "$BASE");
    assert_eq!(df.stages[0].name.as_deref(), Some("build"));
    assert_eq!(df.stages[1].name, None);
    assert_eq!(
        df.stage_by_name("BUILD").map(|s| s.base.as_str()),
        Some("$BASE")
    );
    assert_eq!(df.stages[1].instructions[0].span.line, 6);
}

#[test]
fn from_keyword_folds_like_go() {
    // strings.EqualFold("aſ", "as") is true in Go (ſ folds to s).
    assert_eq!(typed("FROM a aſ b\n").stages[0].name.as_deref(), Some("b"));
    assert_eq!(
        typed("FROM --platform=linux/arm64 a\n").stages[0]
            .platform
            .as_deref(),
        Some("linux/arm64")
    );
}

#[test]
fn run_flags_and_forms() {
    let InstructionKind::Run(run) =
        only("FROM a\nRUN --mount=type=cache,target=/c --mount=type=secret,id=x --network=host --security=insecure make\n")
    else {
        panic!("expected RUN")
    };
    assert_eq!(run.mounts, vec!["type=cache,target=/c", "type=secret,id=x"]);
    assert_eq!(
        (run.network, run.security),
        (NetworkMode::Host, SecurityMode::Insecure)
    );
    assert_eq!(run.command, CommandLine::Shell("make".into()));
    let InstructionKind::Run(run) = only("FROM a\nRUN [\"a\", \"b c\"]\n") else {
        panic!()
    };
    assert_eq!(
        run.command,
        CommandLine::Exec(vec!["a".into(), "b c".into()])
    );
    let InstructionKind::Run(run) = only("FROM a\nRUN\n") else {
        panic!()
    };
    assert_eq!(run.command, CommandLine::Shell(String::new()));
    assert!(error("FROM a\nRUN --network= x\n").contains("invalid network mode \"\""));
}

#[test]
fn run_heredocs_are_kept_raw() {
    let InstructionKind::Run(run) = only("FROM a\nRUN <<-EOF\n\techo $HOME\n\tEOF\n") else {
        panic!()
    };
    assert_eq!(run.command, CommandLine::Shell("<<-EOF".into()));
    assert_eq!(run.heredocs[0].content, b"\techo $HOME\n");
    assert_eq!(run.heredocs[0].chomped_content(), b"echo $HOME\n");
}

#[test]
fn copy_and_add() {
    let InstructionKind::Copy(c) = only(
        "FROM a\nCOPY --from=b --chown=1:2 --chmod=0755 --link --parents --exclude=*.md --exclude=x src1 <<X dst/\nbody\nX\n",
    ) else {
        panic!()
    };
    assert_eq!(c.sources, vec!["src1"]);
    assert_eq!(c.dest, "dst/");
    assert_eq!(
        (c.from.as_deref(), c.chown.as_deref(), c.chmod.as_deref()),
        (Some("b"), Some("1:2"), Some("0755"))
    );
    assert!(c.link && c.parents);
    assert_eq!(c.exclude, vec!["*.md", "x"]);
    assert_eq!(c.inline[0].path, "X");
    assert_eq!(c.inline[0].data, b"body\n");
    assert!(c.inline[0].expand);
    let InstructionKind::Add(a) =
        only("FROM a\nADD --keep-git-dir --unpack=false --checksum=sha256:0 u /d\n")
    else {
        panic!()
    };
    assert_eq!(
        (a.keep_git_dir, a.unpack, a.checksum.as_deref()),
        (Some(true), Some(false), Some("sha256:0"))
    );
    assert!(error("FROM a\nADD --from=x a b\n").contains("unknown flag: --from"));
    assert!(error("FROM a\nCOPY --keep-git-dir a b\n").contains("unknown flag: --keep-git-dir"));
}

#[test]
fn copy_heredoc_chomp_and_quoting() {
    let InstructionKind::Copy(c) = only("FROM a\nCOPY <<-'E' /f\n\t$x\n\tE\n") else {
        panic!()
    };
    assert_eq!(c.inline[0].data, b"$x\n");
    assert!(!c.inline[0].expand);
}

#[test]
fn env_label_arg() {
    let InstructionKind::Env(e) = only("FROM a\nENV A=1 B=\"x y\"\n") else {
        panic!()
    };
    assert_eq!(e.vars[1].value, "\"x y\"");
    assert!(!e.vars[1].legacy);
    let InstructionKind::Env(e) = only("FROM a\nENV K v w\n") else {
        panic!()
    };
    assert_eq!(
        (
            e.vars[0].key.as_str(),
            e.vars[0].value.as_str(),
            e.vars[0].legacy
        ),
        ("K", "v w", true)
    );
    let InstructionKind::Label(l) = only("FROM a\nLABEL a=b\n") else {
        panic!()
    };
    assert_eq!(l.labels[0].key, "a");
    let InstructionKind::Arg(a) = only("FROM a\n# VERSION the release\nARG VERSION=1 OTHER\n")
    else {
        panic!()
    };
    assert_eq!(a.definitions[0].comment.as_deref(), Some("the release"));
    assert_eq!(a.definitions[1].default, None);
    // BuildKit does not look at ARG flags.
    assert!(matches!(
        only("FROM a\nARG --x y\n"),
        InstructionKind::Arg(_)
    ));
}

#[test]
fn simple_instructions() {
    assert_eq!(
        only("FROM a\nEXPOSE 8080 443/tcp 80\n"),
        InstructionKind::Expose(Expose {
            ports: vec!["443/tcp".into(), "80".into(), "8080".into()]
        })
    );
    assert_eq!(
        only("FROM a\nVOLUME [\" /data \", \"/x\"]\n"),
        InstructionKind::Volume(Volume {
            paths: vec!["/data".into(), "/x".into()]
        })
    );
    assert_eq!(
        only("FROM a\nWORKDIR /a b\n"),
        InstructionKind::Workdir(Workdir {
            path: "/a b".into()
        })
    );
    assert_eq!(
        only("FROM a\nSTOPSIGNAL --x SIGKILL\n"),
        InstructionKind::StopSignal(StopSignal {
            signal: "SIGKILL".into()
        })
    );
    assert_eq!(
        only("FROM a\nSHELL [\"pwsh\", \"-c\"]\n"),
        InstructionKind::Shell(Shell {
            shell: vec!["pwsh".into(), "-c".into()]
        })
    );
    assert_eq!(
        only("FROM a\nENTRYPOINT []\n"),
        InstructionKind::Entrypoint(Entrypoint {
            command: CommandLine::Exec(vec![])
        })
    );
}

#[test]
fn onbuild_expression() {
    let InstructionKind::Onbuild(o) = only("FROM a\n  onbuild   RUN <<EOF\nx\nEOF\n") else {
        panic!()
    };
    assert_eq!(o.trigger, "RUN");
    assert_eq!(o.expression, "RUN <<EOF\nx\nEOF");
    let InstructionKind::Onbuild(o) = only("FROM a\nONBUILD COPY --bogus a b\n") else {
        panic!()
    };
    assert_eq!(o.expression, "COPY --bogus a b");
}

#[test]
fn spans() {
    let df = typed("FROM a\n  RUN a \\\n   b\n");
    let span = &df.stages[0].instructions[0].span;
    assert_eq!((span.line, span.column, span.end_line), (2, 3, 3));
    assert_eq!(span.original, "RUN a    b");
}

#[test]
fn directives_and_warnings() {
    let df = typed("# syntax=docker/dockerfile:1\n# check=error=true\nFROM a\nRUN a \\\n\n b\n");
    assert_eq!(df.directive("syntax"), Some("docker/dockerfile:1"));
    assert_eq!(df.directive("check"), Some("error=true"));
    assert_eq!(df.warnings.len(), 1);
}
