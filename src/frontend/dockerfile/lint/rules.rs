//! The rules, named, described and linked exactly as BuildKit's
//! (moby/buildkit `frontend/dockerfile/linter/ruleset.go`); their messages
//! are the `Format` functions there, written where each rule is checked.

/// One build check.
#[derive(Debug, PartialEq, Eq)]
pub struct Rule {
    /// The rule's name, as `# check=skip=` spells it.
    pub name: &'static str,
    /// What the rule wants, in one sentence.
    pub description: &'static str,
    /// Its documentation page.
    pub url: &'static str,
}

macro_rules! rules {
    ($($id:ident: $name:literal, $slug:literal, $desc:literal;)*) => {
        $(
            #[doc = $desc]
            pub const $id: Rule = Rule {
                name: $name,
                description: $desc,
                url: concat!("https://docs.docker.com/go/dockerfile/rule/", $slug, "/"),
            };
        )*
        /// Every rule kiln checks, for `# check=skip=` validation and docs.
        pub const ALL: &[&Rule] = &[$(&$id),*];
    };
}

rules! {
    STAGE_NAME_CASING: "StageNameCasing", "stage-name-casing",
        "Stage names should be lowercase";
    FROM_AS_CASING: "FromAsCasing", "from-as-casing",
        "The 'as' keyword should match the case of the 'from' keyword";
    NO_EMPTY_CONTINUATION: "NoEmptyContinuation", "no-empty-continuation",
        "Empty continuation lines will become errors in a future release";
    CONSISTENT_INSTRUCTION_CASING: "ConsistentInstructionCasing", "consistent-instruction-casing",
        "All commands within the Dockerfile should use the same casing (either upper or lower)";
    DUPLICATE_STAGE_NAME: "DuplicateStageName", "duplicate-stage-name",
        "Stage names should be unique";
    RESERVED_STAGE_NAME: "ReservedStageName", "reserved-stage-name",
        "Reserved words should not be used as stage names";
    JSON_ARGS_RECOMMENDED: "JSONArgsRecommended", "json-args-recommended",
        "JSON arguments recommended for ENTRYPOINT/CMD to prevent unintended behavior related to OS signals";
    MAINTAINER_DEPRECATED: "MaintainerDeprecated", "maintainer-deprecated",
        "The MAINTAINER instruction is deprecated, use a label instead to define an image author";
    UNDEFINED_ARG_IN_FROM: "UndefinedArgInFrom", "undefined-arg-in-from",
        "FROM command must use declared ARGs";
    WORKDIR_RELATIVE_PATH: "WorkdirRelativePath", "workdir-relative-path",
        "Relative workdir without an absolute workdir declared within the build can have unexpected results if the base image changes";
    MULTIPLE_INSTRUCTIONS_DISALLOWED: "MultipleInstructionsDisallowed", "multiple-instructions-disallowed",
        "Multiple instructions of the same type should not be used in the same stage";
    LEGACY_KEY_VALUE_FORMAT: "LegacyKeyValueFormat", "legacy-key-value-format",
        "Legacy key/value format with whitespace separator should not be used";
    REDUNDANT_TARGET_PLATFORM: "RedundantTargetPlatform", "redundant-target-platform",
        "Setting platform to predefined $TARGETPLATFORM in FROM is redundant as this is the default behavior";
    SECRETS_USED_IN_ARG_OR_ENV: "SecretsUsedInArgOrEnv", "secrets-used-in-arg-or-env",
        "Sensitive data should not be used in the ARG or ENV commands";
    INVALID_DEFAULT_ARG_IN_FROM: "InvalidDefaultArgInFrom", "invalid-default-arg-in-from",
        "Default value for global ARG results in an empty or invalid base image name";
    FROM_PLATFORM_FLAG_CONST_DISALLOWED: "FromPlatformFlagConstDisallowed", "from-platform-flag-const-disallowed",
        "FROM --platform flag should not use a constant value";
    UNDEFINED_VAR: "UndefinedVar", "undefined-var",
        "Variables should be defined before their use";
    EXPOSE_PROTO_CASING: "ExposeProtoCasing", "expose-proto-casing",
        "Protocol in EXPOSE instruction should be lowercase";
}
