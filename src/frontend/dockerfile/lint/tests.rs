//! Data-driven checks: a Dockerfile and the warnings BuildKit gives for
//! it, as `Rule: message (line N)` (cases and messages from moby/buildkit
//! `frontend/dockerfile/dockerfile_lint_test.go`).

use super::*;

fn platform() -> Platform {
    Platform::linux_amd64()
}

#[track_caller]
fn check(dockerfile: &str, expected: &[&str]) {
    let df = crate::parser::parse("Dockerfile", dockerfile.as_bytes()).expect("parses");
    let config = match df.directive("check") {
        Some(v) => CheckConfig::parse(v).expect("valid check directive"),
        None => CheckConfig::default(),
    };
    let got: Vec<String> = super::check(&df, &config, &platform())
        .iter()
        .map(Warning::short)
        .collect();
    assert_eq!(got, expected, "{dockerfile}");
}

#[test]
fn clean_dockerfile_has_no_warnings() {
    check(
        "FROM busybox AS base\nWORKDIR /app\nRUN true\nCMD [\"sh\"]\n",
        &[],
    );
}

#[test]
fn stage_name_casing_and_as_casing() {
    check(
        "FROM scratch AS BadStageName\nFROM badstagename\n",
        &["StageNameCasing: Stage name 'BadStageName' should be lowercase (line 1)"],
    );
    check(
        "FROM scratch as base\nFROM scratch AS base2\n",
        &["FromAsCasing: 'as' and 'FROM' keywords' casing do not match (line 1)"],
    );
    check(
        "from scratch AS base\nfrom scratch as base2\n",
        &["FromAsCasing: 'AS' and 'from' keywords' casing do not match (line 1)"],
    );
}

#[test]
fn inconsistent_from_is_reported_once_by_casing() {
    // buildx's testComposeBuildCheck: three warnings, no FromAsCasing.
    check(
        "frOM busybox as base\ncOpy Dockerfile .\nfrom scratch\nCOPy --from=base \\\n  /Dockerfile \\\n  /\n",
        &[
            "ConsistentInstructionCasing: Command 'frOM' should match the case of the command majority (lowercase) (line 1)",
            "ConsistentInstructionCasing: Command 'cOpy' should match the case of the command majority (lowercase) (line 2)",
            "ConsistentInstructionCasing: Command 'COPy' should match the case of the command majority (lowercase) (line 4)",
        ],
    );
    check(
        "FROM scratch\nenv a=b\n",
        &["ConsistentInstructionCasing: Command 'env' should match the case of the command majority (uppercase) (line 2)"],
    );
}

#[test]
fn empty_continuation() {
    check(
        "FROM scratch\nCOPY Dockerfile \\\n\n  .\n",
        &["NoEmptyContinuation: Empty continuation line (line 4)"],
    );
}

#[test]
fn duplicate_and_reserved_stage_names() {
    check(
        "FROM scratch AS b\nFROM scratch AS B\n",
        &[
            "StageNameCasing: Stage name 'B' should be lowercase (line 2)",
            "DuplicateStageName: Duplicate stage name \"b\", stage names should be unique (line 2)",
        ],
    );
    check(
        "FROM busybox AS scratch\nFROM busybox AS context\n",
        &[
            "ReservedStageName: Stage name should not use the same name as reserved stage \"scratch\" (line 1)",
            "ReservedStageName: Stage name should not use the same name as reserved stage \"context\" (line 2)",
        ],
    );
}

#[test]
fn json_args_unless_a_shell_is_set() {
    check(
        "FROM scratch\nCMD mycommand\nENTRYPOINT mycommand\n",
        &[
            "JSONArgsRecommended: JSON arguments recommended for CMD to prevent unintended behavior related to OS signals (line 2)",
            "JSONArgsRecommended: JSON arguments recommended for ENTRYPOINT to prevent unintended behavior related to OS signals (line 3)",
        ],
    );
    check(
        "FROM scratch AS a\nSHELL [\"/bin/sh\", \"-c\"]\nFROM a\nCMD mycommand\n",
        &[],
    );
}

#[test]
fn maintainer_workdir_and_repeated_instructions() {
    check(
        "FROM scratch\nMAINTAINER me@example.com\n",
        &["MaintainerDeprecated: Maintainer instruction is deprecated in favor of using label (line 2)"],
    );
    check(
        "FROM scratch\nWORKDIR app/\nWORKDIR subdir\n",
        &["WorkdirRelativePath: Relative workdir \"app/\" can have unexpected results if the base image changes (line 2)"],
    );
    check(
        "FROM scratch\nCMD [\"a\"]\nENTRYPOINT [\"b\"]\nHEALTHCHECK CMD true\nCMD [\"c\"]\nHEALTHCHECK NONE\nFROM scratch\nCMD [\"d\"]\n",
        &[
            "MultipleInstructionsDisallowed: Multiple CMD instructions should not be used in the same stage because only the last one will be used (line 2)",
            "MultipleInstructionsDisallowed: Multiple HEALTHCHECK instructions should not be used in the same stage because only the last one will be used (line 4)",
        ],
    );
}

#[test]
fn legacy_key_value_and_secrets() {
    check(
        "FROM scratch\nENV testkey value\nLABEL testkey value\n",
        &[
            "LegacyKeyValueFormat: \"ENV key=value\" should be used instead of legacy \"ENV key value\" format (line 2)",
            "LegacyKeyValueFormat: \"LABEL key=value\" should be used instead of legacy \"LABEL key value\" format (line 3)",
        ],
    );
    check(
        "ARG GLOBAL_TOKEN\nFROM scratch\nARG SECRET_PASSPHRASE\nENV SUPER_Secret=foo\nENV password=bar secret=baz\nARG super_duper_secret_token=foo auth=bar\nENV apikey=bar sunflower=foo\nENV git_key=\nENV PUBLIC_KEY=\nARG public_token\nARG publicToken\n",
        &[
            "SecretsUsedInArgOrEnv: Do not use ARG or ENV instructions for sensitive data (ARG \"SECRET_PASSPHRASE\") (line 3)",
            "SecretsUsedInArgOrEnv: Do not use ARG or ENV instructions for sensitive data (ENV \"SUPER_Secret\") (line 4)",
            "SecretsUsedInArgOrEnv: Do not use ARG or ENV instructions for sensitive data (ENV \"password\") (line 5)",
            "SecretsUsedInArgOrEnv: Do not use ARG or ENV instructions for sensitive data (ENV \"secret\") (line 5)",
            "SecretsUsedInArgOrEnv: Do not use ARG or ENV instructions for sensitive data (ARG \"super_duper_secret_token\") (line 6)",
            "SecretsUsedInArgOrEnv: Do not use ARG or ENV instructions for sensitive data (ARG \"auth\") (line 6)",
            "SecretsUsedInArgOrEnv: Do not use ARG or ENV instructions for sensitive data (ENV \"apikey\") (line 7)",
            "SecretsUsedInArgOrEnv: Do not use ARG or ENV instructions for sensitive data (ENV \"git_key\") (line 8)",
        ],
    );
}

#[test]
fn from_args_and_platforms() {
    check(
        "ARG BASE=scratch\nARG UNSET\nFROM $BSE\nFROM ${BASE}${UNSET}\nARG STAGE_ARG\nFROM scratch$STAGE_ARG\n",
        // BuildKit checks the defaults separately: an undeclared ARG
        // expands to nothing, an invalid name.
        &[
            "UndefinedArgInFrom: FROM argument 'BSE' is not declared (did you mean BASE?) (line 3)",
            "InvalidDefaultArgInFrom: Default value for ARG $BSE results in empty or invalid base image name (line 3)",
            "UndefinedArgInFrom: FROM argument 'STAGE_ARG' is not declared (line 6)",
        ],
    );
    check(
        "ARG VERSION\nARG IMAGE=\nFROM busybox:$VERSION\nFROM $IMAGE\n",
        &[
            "InvalidDefaultArgInFrom: Default value for ARG busybox:$VERSION results in empty or invalid base image name (line 3)",
            "InvalidDefaultArgInFrom: Default value for ARG $IMAGE results in empty or invalid base image name (line 4)",
        ],
    );
    check(
        "FROM --platform=$TARGETPLATFORM scratch\nFROM --platform=${TARGETPLATFORM} scratch\nFROM --platform=$BUILDPLATFORM scratch\n",
        &[
            "RedundantTargetPlatform: Setting platform to predefined $TARGETPLATFORM in FROM is redundant as this is the default behavior (line 1)",
            "RedundantTargetPlatform: Setting platform to predefined ${TARGETPLATFORM} in FROM is redundant as this is the default behavior (line 2)",
        ],
    );
    check(
        "FROM --platform=linux/amd64 scratch AS base\nFROM --platform=linux/amd64 scratch AS build_amd64\nFROM --platform=linux scratch AS on_amd64\n",
        &["FromPlatformFlagConstDisallowed: FROM --platform flag should not use constant value \"linux/amd64\" (line 1)"],
    );
}

#[test]
fn invalid_base_names_warn_even_without_args() {
    check(
        "FROM busybox AS builder\nFROM BUILDER\n",
        &["InvalidDefaultArgInFrom: Default value for ARG BUILDER results in empty or invalid base image name (line 2)"],
    );
}

#[test]
fn expose_protocol_casing() {
    check(
        "FROM scratch\nEXPOSE 80/TcP 53/udp\n",
        &["ExposeProtoCasing: Defined protocol '80/TcP' in EXPOSE instruction should be lowercase (line 2)"],
    );
}

#[test]
fn check_directive_skips_rules() {
    check(
        "# check=skip=StageNameCasing,FromAsCasing\nFROM scratch as BASE\nMAINTAINER x\n",
        &["MaintainerDeprecated: Maintainer instruction is deprecated in favor of using label (line 3)"],
    );
    check(
        "# check=skip=all\nFROM scratch as BASE\nMAINTAINER x\n",
        &[],
    );
}

#[test]
fn error_option_names_each_rule_once() {
    let df = crate::parser::parse("Dockerfile", b"FROM scratch as BASE\nFROM scratch as B2\n")
        .expect("parses");
    let config = CheckConfig::parse("error=true").expect("valid");
    let warnings = super::check(&df, &config, &platform());
    assert_eq!(
        violation(&config, &warnings)
            .map(|v| v.to_string())
            .as_deref(),
        Some("lint violation found for rules: StageNameCasing, FromAsCasing")
    );
    assert_eq!(violation(&CheckConfig::default(), &warnings), None);
}

#[test]
fn reports_read_like_buildx() {
    let src = b"FROM scratch as base\nCOPY a b\n";
    let df = crate::parser::parse("Dockerfile", src).expect("parses");
    let warnings = super::check(&df, &CheckConfig::default(), &platform());
    assert_eq!(
        short_list(&warnings),
        "\n 1 warning found (use --debug to expand):\n - FromAsCasing: 'as' and 'FROM' keywords' casing do not match (line 1)\n"
    );
    assert_eq!(
        check_report("Dockerfile", src, &warnings),
        "Check complete, 1 warning has been found!\n\
         \n\
         WARNING: FromAsCasing - https://docs.docker.com/go/dockerfile/rule/from-as-casing/\n\
         'as' and 'FROM' keywords' casing do not match\n\
         Dockerfile:1\n\
         --------------------\n\
         \x20  1 | >>> FROM scratch as base\n\
         \x20  2 |     COPY a b\n\
         \x20  3 |     \n\
         --------------------\n"
    );
    assert_eq!(
        check_report("Dockerfile", src, &[]),
        "Check complete, no warnings found.\n"
    );
}

#[test]
fn a_build_reports_dispatch_checks_only_for_the_stages_it_needs() {
    let df = crate::parser::parse(
        "Dockerfile",
        b"FROM scratch AS a\nCMD echo a\nFROM scratch as b\nCMD echo b\n",
    )
    .expect("parses");
    let config = CheckConfig::default();
    let all = super::check(&df, &config, &platform());
    let shorts = |ws: &[Warning]| ws.iter().map(Warning::short).collect::<Vec<_>>();
    // Stage `a` is not needed: its CMD is not dispatched, but the file's
    // checks (casing) still cover it.
    assert_eq!(
        shorts(&merge(&config, all.clone(), &[], Some(&[false, true]))),
        [
            "FromAsCasing: 'as' and 'FROM' keywords' casing do not match (line 3)",
            "JSONArgsRecommended: JSON arguments recommended for CMD to prevent unintended behavior related to OS signals (line 4)",
        ]
    );
    assert_eq!(merge(&config, all, &[], None).len(), 3);
}
