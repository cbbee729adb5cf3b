//! Property tests for the parser (bounded; the long run is the fuzz target
//! in `fuzz/`): no input makes it panic, and accepted input has a coherent
//! tree.

use proptest::prelude::*;

/// Fragments that reach the parser's interesting states: continuations,
/// directives, heredocs, JSON, flags, quotes, odd white space, bad UTF-8.
const FRAGMENTS: &[&str] = &[
    "FROM a",
    "FROM a AS b",
    "RUN ",
    "COPY ",
    "ADD ",
    "ENV ",
    "LABEL ",
    "ARG ",
    "CMD ",
    "ENTRYPOINT ",
    "SHELL ",
    "HEALTHCHECK ",
    "ONBUILD ",
    "EXPOSE ",
    "VOLUME ",
    "USER ",
    "WORKDIR ",
    "STOPSIGNAL ",
    "MAINTAINER ",
    "FOO ",
    "\n",
    "\r\n",
    " ",
    "\t",
    "\\",
    "`",
    "\\\n",
    "`\n",
    "#",
    "# escape=`\n",
    "# escape=\\\n",
    "# syntax=x\n",
    "<<EOF",
    "<<-EOF",
    "<<\"EOF\"",
    "<<'EOF'",
    "\nEOF\n",
    "\tEOF\n",
    "EOF",
    "--from=x",
    "--mount=type=cache,target=/x",
    "--link",
    "--network=none",
    "--interval=5s",
    "--",
    "[",
    "]",
    "\"",
    "'",
    ",",
    "[\"a\", \"b\"]",
    "[]",
    "[[\"x\"]]",
    "\\u00e9",
    "${A:-b}",
    "$B",
    "=",
    "a=b",
    "NONE",
    "CMD",
    "\u{a0}",
    "\u{85}",
    "é",
    "\u{feff}",
    "\u{0}",
];

fn soup() -> impl Strategy<Value = Vec<u8>> {
    let fragment = prop_oneof![
        4 => prop::sample::select(FRAGMENTS).prop_map(|s| s.as_bytes().to_vec()),
        1 => prop::collection::vec(any::<u8>(), 0..4),
    ];
    prop::collection::vec(fragment, 0..40).prop_map(|parts| parts.concat())
}

/// Lines `NAME word...` with safe words: always one instruction per line.
fn simple_lines() -> impl Strategy<Value = Vec<(String, Vec<String>)>> {
    let name =
        prop::sample::select(&["run", "cmd", "workdir", "user", "expose", "volume", "from"][..]);
    // Words never start with `-`: a leading `--` would be read as a flag.
    let word = "[a-z0-9/._][a-z0-9/._-]{0,7}";
    prop::collection::vec((name, prop::collection::vec(word, 1..4)), 1..20)
        .prop_map(|v| v.into_iter().map(|(n, w)| (n.to_string(), w)).collect())
}

fn check_tree(input: &[u8]) -> Result<(), TestCaseError> {
    let Ok(raw) = kiln::parser::parse_raw("Dockerfile", input) else {
        return Ok(());
    };
    prop_assert!(!raw.nodes.is_empty());
    let dump = raw.dump();
    prop_assert_eq!(
        dump.lines().count(),
        raw.nodes.len(),
        "one dump line per instruction:\n{}",
        dump
    );
    let mut last = 0;
    for node in &raw.nodes {
        prop_assert!(node.start_line > last, "instructions in source order");
        prop_assert!(node.start_line <= node.end_line);
        prop_assert!(node.start_line <= node.position.line && node.position.line <= node.end_line);
        last = node.end_line;
    }
    if let Ok(typed) = raw.to_typed() {
        prop_assert!(serde_json::to_string(&typed).is_ok());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(input in prop::collection::vec(any::<u8>(), 0..300)) {
        check_tree(&input)?;
    }

    #[test]
    fn fragment_soup_never_panics(input in soup()) {
        check_tree(&input)?;
    }

    #[test]
    fn simple_lines_parse_one_to_one(lines in simple_lines()) {
        let src: String = lines
            .iter()
            .map(|(n, w)| format!("{} {}\n", n.to_uppercase(), w.join(" ")))
            .collect();
        let raw = kiln::parser::parse_raw("Dockerfile", src.as_bytes()).expect("simple lines parse");
        let dump = raw.dump();
        prop_assert_eq!(dump.lines().count(), lines.len());
        for ((name, _), line) in lines.iter().zip(dump.lines()) {
            let prefix = format!("({name} ");
            prop_assert!(line.starts_with(&prefix), "{} should start with {}", line, prefix);
        }
    }
}
