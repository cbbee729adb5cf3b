//! Unit tests for word expansion: one `check` per boundary, expectations from
//! BuildKit's `lex_test.go` and POSIX sh where BuildKit follows it.

use super::*;

fn env(pairs: &[(&str, &str)]) -> EnvMap {
    pairs.iter().copied().collect()
}

/// Expands `input` with the default lexer and checks value and lookups.
fn check(input: &str, vars: &[(&str, &str)], expected: &str, matched: &[&str], unmatched: &[&str]) {
    let got = Lexer::default()
        .process_word(input, &env(vars))
        .unwrap_or_else(|e| panic!("{input:?}: unexpected error: {e}"));
    assert_eq!(got.value, expected, "value of {input:?}");
    let want: BTreeSet<String> = matched.iter().map(|s| s.to_string()).collect();
    assert_eq!(got.matched, want, "matched names of {input:?}");
    let want: BTreeSet<String> = unmatched.iter().map(|s| s.to_string()).collect();
    assert_eq!(got.unmatched, want, "unmatched names of {input:?}");
}

/// Expands `input` and returns the error it must produce.
fn check_err(lexer: Lexer, input: &str, vars: &[(&str, &str)]) -> ShellError {
    match lexer.process_word(input, &env(vars)) {
        Ok(got) => panic!("{input:?}: expected an error, got {:?}", got.value),
        Err(e) => e,
    }
}

const FOO_BAR: &[(&str, &str)] = &[("FOO", "xxx"), ("BAR", "")];

#[test]
fn plain_names_and_braces() {
    check("x", &[("DUMMY", "dummy")], "x", &[], &[]);
    check("x ${UNUSED}", &[("DUMMY", "dummy")], "x ", &[], &["UNUSED"]);
    check("x ${FOO}", &[("FOO", "y")], "x y", &["FOO"], &[]);
    check(
        "$FOO-$FOO_2",
        &[("FOO", "a"), ("FOO_2", "b")],
        "a-b",
        &["FOO", "FOO_2"],
        &[],
    );
    check("$.x", &[], "$.x", &[], &[]);
    check("a$", &[], "a$", &[], &[]);
}

#[test]
fn default_operators() {
    check(
        "${FOO-aaa} ${BAR-bbb} ${BAZ-ccc}",
        FOO_BAR,
        "xxx  ccc",
        &["FOO", "BAR"],
        &["BAZ"],
    );
    check(
        "${FOO:-aaa} ${BAR:-bbb} ${BAZ:-ccc}",
        FOO_BAR,
        "xxx bbb ccc",
        &["FOO", "BAR"],
        &["BAZ"],
    );
    check("${FOO:-}", FOO_BAR, "xxx", &["FOO"], &[]);
    check("${FOO:-}", &[], "", &[], &["FOO"]);
    check("${X:-${Y:-${Z:-deep}}}", &[], "deep", &[], &["X", "Y", "Z"]);
    check("${X:-'a}b'}", &[], "a}b", &[], &["X"]);
    check("${X:-\\}}", &[], "}", &[], &["X"]);
}

#[test]
fn alternative_operators() {
    check(
        "${FOO+aaa} ${BAR+bbb} ${BAZ+ccc}",
        FOO_BAR,
        "aaa bbb ",
        &["FOO", "BAR"],
        &["BAZ"],
    );
    check(
        "${FOO:+aaa} ${BAR:+bbb} ${BAZ:+ccc}",
        FOO_BAR,
        "aaa  ",
        &["FOO", "BAR"],
        &["BAZ"],
    );
    check("${FOO:+${FOO}!}", FOO_BAR, "xxx!", &["FOO"], &[]);
}

#[test]
fn required_operators() {
    check("${FOO?aaa}", FOO_BAR, "xxx", &["FOO"], &[]);
    check("${BAR?bbb}", FOO_BAR, "", &["BAR"], &[]);
    check("${FOO:?aaa}", FOO_BAR, "xxx", &["FOO"], &[]);
    let lexer = Lexer::default();
    let e = check_err(lexer, "${BAZ?ccc}", FOO_BAR);
    assert_eq!(e.to_string(), "BAZ: ccc");
    let e = check_err(lexer, "${BAR:?bbb}", FOO_BAR);
    assert_eq!(e.to_string(), "BAR: bbb");
    let e = check_err(lexer, "${BAZ:?}", FOO_BAR);
    assert_eq!(e.to_string(), "BAZ: is not allowed to be unset");
    let e = check_err(lexer, "${BAR:?}", FOO_BAR);
    assert_eq!(e.to_string(), "BAR: is not allowed to be empty");
    // the message is expanded too
    let vars = [("ARG", "x"), ("VAR", "")];
    let e = check_err(lexer, "${VAR:?message here$ARG}", &vars);
    assert_eq!(e.to_string(), "VAR: message herex");
    let e = check_err(lexer, "${NOPE?message here$ARG}", &vars);
    assert_eq!(e.to_string(), "NOPE: message herex");
    check("${VAR?message here$ARG}", &vars, "", &["ARG", "VAR"], &[]);
}

#[test]
fn prefix_and_suffix_trimming() {
    let xxyy = &[("FOO", "xxyy")];
    check(
        "${FOO#()[]{\\}^$.\\*\\?|\\\\}",
        &[("FOO", "()[]{}^$.*?|\\x")],
        "x",
        &["FOO"],
        &[],
    );
    check("${FOO%%\\**}", &[("FOO", "xx**")], "xx", &["FOO"], &[]);
    check("${FOO#*x*y}", xxyy, "y", &["FOO"], &[]);
    check("${FOO#*}", xxyy, "xxyy", &["FOO"], &[]);
    check(
        "${FOO#$BAR}",
        &[("FOO", "xxyy"), ("BAR", "x")],
        "xyy",
        &["FOO", "BAR"],
        &[],
    );
    check(
        "${FOO#$BAR}",
        &[("FOO", "xxyy"), ("BAR", "")],
        "xxyy",
        &["FOO", "BAR"],
        &[],
    );
    check("${FOO#}", xxyy, "xxyy", &["FOO"], &[]);
    check("${FOO##*x}", xxyy, "yy", &["FOO"], &[]);
    check("${FOO##}", xxyy, "xxyy", &["FOO"], &[]);
    check("${FOO#?\\?}", &[("FOO", "???y")], "?y", &["FOO"], &[]);
    check(
        "${ABC:-.}${FOO%x}${ABC:-.}",
        xxyy,
        ".xxyy.",
        &["FOO"],
        &["ABC"],
    );
    check("${FOO%%\\**\\*}", &[("FOO", "a***yy*")], "a", &["FOO"], &[]);
    check("${FOO%}", xxyy, "xxyy", &["FOO"], &[]);
    check(
        "${FOO%%$BAR}",
        &[("FOO", "xxyy"), ("BAR", "")],
        "xxyy",
        &["FOO", "BAR"],
        &[],
    );
    check("${FOO%y*}", xxyy, "xxy", &["FOO"], &[]);
    check("${FOO%%y*}", xxyy, "xx", &["FOO"], &[]);
    check(
        "${FILE%.tar.gz}",
        &[("FILE", "a.tar.gz")],
        "a",
        &["FILE"],
        &[],
    );
    check("${NOPE#x}", &[], "", &[], &["NOPE"]);
}

#[test]
fn pattern_substitution() {
    let vars = [("FOO", "/foo*/*/*.txt"), ("NEEDLE", "\\*/")];
    check(
        "${FOO/$NEEDLE/.} - ${FOO//$NEEDLE/.}",
        &vars,
        "/foo.*/*.txt - /foo..*.txt",
        &["FOO", "NEEDLE"],
        &[],
    );
    let vars = [("FOO", "/tmp/tmp/bar.txt"), ("NEEDLE", "/tmp")];
    check(
        "${FOO/$NEEDLE/} - ${FOO//$NEEDLE/}",
        &vars,
        "/tmp/bar.txt - /bar.txt",
        &["FOO", "NEEDLE"],
        &[],
    );
    let vars = [
        ("FOO", "/a/foo/b/c.txt"),
        ("NEEDLE", "/?/"),
        ("REPLACEMENT", "/"),
    ];
    check(
        "${FOO/$NEEDLE/$REPLACEMENT} - ${FOO//$NEEDLE/$REPLACEMENT}",
        &vars,
        "/foo/b/c.txt - /foo/c.txt",
        &["FOO", "NEEDLE", "REPLACEMENT"],
        &[],
    );
    let vars = [
        ("FOO", "http://google.de"),
        ("NEEDLE", "http://"),
        ("REPLACEMENT", "https://"),
    ];
    check(
        "${FOO/$NEEDLE/$REPLACEMENT}",
        &vars,
        "https://google.de",
        &["FOO", "NEEDLE", "REPLACEMENT"],
        &[],
    );
    check(
        "${FOO//\\//\\/}",
        &[("FOO", "/tmp/foo.txt")],
        "\\/tmp\\/foo.txt",
        &["FOO"],
        &[],
    );
    check(
        "${FOO/$BAR/ww}",
        &[("FOO", "xxyy"), ("BAR", "")],
        "wwxxyy",
        &["FOO", "BAR"],
        &[],
    );
    check("${FOO///}", &[("FOO", "xxyy")], "xxyy", &["FOO"], &[]);
    check("${FOO///}", &[], "", &[], &["FOO"]);
    check("${V//[ab]/-}", &[("V", "a[ab]b")], "a-b", &["V"], &[]);
}

#[test]
fn syntax_errors_say_where() {
    let lexer = Lexer::default();
    for (input, expected) in [
        ("he${}", ShellError::BadSubstitution { offset: 2 }),
        ("${:-x}", ShellError::BadSubstitution { offset: 0 }),
        ("${{a}", ShellError::BadSubstitution { offset: 0 }),
        ("ab${PWD", ShellError::MissingBrace { offset: 2 }),
        ("${", ShellError::MissingBrace { offset: 0 }),
        ("${a:-b", ShellError::MissingBrace { offset: 0 }),
        ("${a:", ShellError::MissingBrace { offset: 0 }),
        (
            "x'abc",
            ShellError::UnterminatedQuote {
                quote: "single",
                offset: 1,
            },
        ),
        (
            "\"abc\\\"",
            ShellError::UnterminatedQuote {
                quote: "double",
                offset: 0,
            },
        ),
        ("${FOO//ww}", ShellError::MissingSlash { offset: 0 }),
        ("${FOO//}", ShellError::MissingSlash { offset: 0 }),
        (
            "${FOO=aaa}",
            ShellError::UnsupportedModifier {
                modifier: "=".into(),
                offset: 5,
            },
        ),
        (
            "${FOO:=aaa}",
            ShellError::UnsupportedModifier {
                modifier: ":=".into(),
                offset: 5,
            },
        ),
        (
            "${FOO=}",
            ShellError::UnsupportedModifier {
                modifier: "=".into(),
                offset: 5,
            },
        ),
        (
            "${FOO:#x}",
            ShellError::UnsupportedModifier {
                modifier: ":#".into(),
                offset: 5,
            },
        ),
        (
            "${.}",
            ShellError::UnsupportedModifier {
                modifier: ".".into(),
                offset: 2,
            },
        ),
    ] {
        let got = check_err(lexer, input, &[("FOO", "xxx")]);
        assert_eq!(got, expected, "error of {input:?}");
    }
    let e = check_err(lexer, "${FOO#\\x}", &[("FOO", "x")]);
    assert!(matches!(
        e,
        ShellError::InvalidPattern {
            offset: 0,
            source: PatternError::InvalidEscape('x'),
            ..
        }
    ));
    assert_eq!(
        crate::error_chain::Chain(&e).to_string(),
        "invalid pattern '\\x' in the substitution at byte 0: invalid escape '\\x': \
         expected one of \\*, \\?, \\\\, \\}, \\/"
    );
    let e = check_err(lexer, "${FOO/\\x/y}", &[("FOO", "x")]);
    assert!(matches!(e, ShellError::InvalidPattern { .. }));
}

#[test]
fn quotes_and_escapes() {
    for (input, expected) in [
        ("he'll'o", "hello"),
        ("he\\'llo", "he'llo"),
        ("\"abc\\tdef\"", "abc\\tdef"),
        ("\"abc\\\\tdef\"", "abc\\tdef"),
        ("\"a\\$b\\\"c\"", "a$b\"c"),
        ("'a\\$b'", "a\\$b"),
        ("a\\ b", "a b"),
        ("hello\\", "hello"),
        ("\"$PWD'\"", "/home'"),
        ("'$PWD'", "$PWD"),
    ] {
        let got = Lexer::default()
            .process_word(input, &env(&[("PWD", "/home")]))
            .unwrap();
        assert_eq!(got.value, expected, "value of {input:?}");
    }
}

#[test]
fn backtick_escape() {
    let lexer = Lexer::new('`');
    let vars = env(&[("PWD", "/home")]);
    for (input, expected) in [
        // backslash is an ordinary character (Windows paths)
        ("C:\\dir\\$PWD", "C:\\dir\\/home"),
        ("`$PWD", "$PWD"),
        ("a` b", "a b"),
        ("\"a`\"b\"", "a\"b"),
        ("\"a`$PWD\"", "a$PWD"),
        ("\"a``b\"", "a`b"),
        ("\"a`xb\"", "a`xb"),
        ("\"a\\\"", "a\\"),
        // the escape character stays in a pattern, whose own escape is `\`
        ("${PWD#`/}", "/home"),
        ("${PWD#/}", "home"),
        ("${PWD#\\/}", "home"),
    ] {
        let got = lexer.process_word(input, &vars).unwrap();
        assert_eq!(got.value, expected, "value of {input:?} with escape=`");
    }
    assert!(
        lexer.process_word("\"a\\\"\"", &vars).is_err(),
        "\\ does not escape \" under escape=`"
    );
}

#[test]
fn skip_unset_env_keeps_references() {
    let lexer = Lexer {
        skip_unset_env: true,
        ..Lexer::default()
    };
    let vars = env(&[("SET", "v")]);
    for (input, expected) in [
        ("$SET $NOPE", "v $NOPE"),
        ("${NOPE}", "${NOPE}"),
        ("${NOPE:-a$SET}", "${NOPE:-av}"),
        ("${SET:-a}", "v"),
        ("${NOPE#x}", "${NOPE#x}"),
        ("${NOPE//a/b}", "${NOPE//a/b}"),
        ("${NOPE?must}", "${NOPE?must}"),
    ] {
        let got = lexer.process_word(input, &vars).unwrap();
        assert_eq!(
            got.value, expected,
            "value of {input:?} with skip_unset_env"
        );
    }
}

#[test]
fn raw_quotes_and_escapes() {
    let vars = env(&[("A", "1")]);
    let raw_quotes = Lexer {
        raw_quotes: true,
        ..Lexer::default()
    };
    assert_eq!(
        raw_quotes.process_word("'x'\"$A\"", &vars).unwrap().value,
        "'x'\"1\""
    );
    let raw_escapes = Lexer {
        raw_escapes: true,
        ..Lexer::default()
    };
    assert_eq!(
        raw_escapes.process_word("a\\ b\\$A", &vars).unwrap().value,
        "a\\ b\\$A"
    );
    // inside double quotes a kept escape before an ordinary char doubles,
    // exactly as BuildKit does
    assert_eq!(
        raw_escapes.process_word("\"\\x\"", &vars).unwrap().value,
        "\\\\x"
    );
    let no_quotes = Lexer {
        skip_process_quotes: true,
        ..Lexer::default()
    };
    assert_eq!(
        no_quotes.process_word("'$A' \"x\"", &vars).unwrap().value,
        "'1' \"x\""
    );
}

#[test]
fn words_split_after_expansion() {
    let lexer = Lexer::default();
    let vars = env(&[("SPACE", "abc  def"), ("E", "")]);
    for (input, expected) in [
        ("hello${SPACE}bye", &["helloabc", "defbye"][..]),
        ("hello\"${SPACE}\"bye", &["helloabc  defbye"]),
        ("a \"\" b", &["a", "b"]),
        ("a\\ b c", &["a b", "c"]),
        ("  lead  trail  ", &["lead", "trail"]),
        ("pre${E:-x y}post", &["prex", "ypost"]),
        ("$E", &[]),
    ] {
        let got = lexer.process_words(input, &vars).unwrap();
        assert_eq!(got, expected, "words of {input:?}");
    }
}

#[test]
fn positional_and_special_parameters_are_unset() {
    check("$1x${10}y$0", &[], "xy", &[], &["1", "10", "0"]);
    check("$@@@", &[], "@@", &[], &["@"]);
    check("${#:-n}${$}", &[], "n", &[], &["#", "$"]);
}

#[test]
fn leading_byte_order_mark_is_skipped() {
    check("\u{feff}$A", &[("A", "a")], "a", &["A"], &[]);
    check("x\u{feff}", &[], "x\u{feff}", &[], &[]);
}

#[test]
fn accepts_any_env_implementation() {
    let mut map = std::collections::HashMap::new();
    map.insert("K".to_string(), "v".to_string());
    assert_eq!(
        Lexer::default().process_word("$K", &map).unwrap().value,
        "v"
    );
    let tree: std::collections::BTreeMap<String, String> =
        [("K".to_string(), "t".to_string())].into();
    assert_eq!(
        Lexer::default().process_word("$K", &tree).unwrap().value,
        "t"
    );
}

#[test]
fn deeply_nested_substitutions_are_an_error_not_a_stack_overflow() {
    let nested = |depth: usize| "${a:-".repeat(depth) + "x" + &"}".repeat(depth);
    let lexer = Lexer::default();
    let env = std::collections::HashMap::<String, String>::new();
    assert_eq!(
        lexer
            .process_word(&nested(super::word::MAX_NESTING), &env)
            .unwrap()
            .value,
        "x"
    );
    let err = lexer.process_word(&nested(100_000), &env).unwrap_err();
    assert!(
        matches!(err, ShellError::NestedTooDeep { limit, .. } if limit == super::word::MAX_NESTING),
        "{err}"
    );
    assert!(
        err.to_string().contains("nested more than 100 deep"),
        "{err}"
    );
}
