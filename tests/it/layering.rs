//! The one-way flow between kiln's top-level modules, checked against the
//! code: the layering table in `ARCHITECTURE.md` ("## Layering") says which
//! module may import which; these tests read every `src/**/*.rs`, collect
//! the `crate::…` paths in code (comments, doc comments and string literals
//! are skipped), and fail listing each import the table does not allow.
//!
//! The table is parsed from the document, so the map a newcomer reads and
//! the rule the build enforces are one text. A table row's entry is a
//! module (`image`: anything in it), an item path (`image::oci::DEFAULT_PATH`:
//! only that), or `*` (anything). Cross-module references in kiln are
//! written `crate::…`; `super::` never leaves a top-level module.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Which top-level module may import what: module name -> allowed paths.
#[derive(Debug, Default)]
struct Table {
    allowed: BTreeMap<String, Vec<String>>,
}

/// One `crate::` reference the table does not allow.
#[derive(Debug, PartialEq, Eq)]
struct Violation {
    file: String,
    line: usize,
    module: String,
    path: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}: `{}` imports `crate::{}`",
            self.file, self.line, self.module, self.path
        )
    }
}

/// Parses the table under `## Layering`: rows `| \`module\` | \`a\`, \`b::C\` | why |`,
/// `—` for a module that imports no other.
fn parse_table(doc: &str) -> Result<Table, String> {
    let section = doc
        .split("\n## ")
        .find(|s| s.starts_with("Layering"))
        .ok_or("ARCHITECTURE.md has no `## Layering` section")?;
    let mut table = Table::default();
    for (n, line) in section.lines().enumerate() {
        let Some(row) = line.trim().strip_prefix("| `") else {
            continue;
        };
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let module = cells[0].trim_end_matches('`').to_string();
        let entries = cells.get(1).ok_or(format!(
            "layering row {n} ({module}) has no `may import` cell"
        ))?;
        let allowed: Vec<String> = entries
            .split(',')
            .map(|e| e.trim().trim_matches('`').to_string())
            .filter(|e| !e.is_empty() && e != "—")
            .collect();
        if table.allowed.insert(module.clone(), allowed).is_some() {
            return Err(format!("layering table lists `{module}` twice"));
        }
    }
    if table.allowed.is_empty() {
        return Err("the `## Layering` section has no table rows".into());
    }
    Ok(table)
}

impl Table {
    fn allows(&self, module: &str, path: &str) -> bool {
        let target = path.split("::").next().unwrap_or_default();
        if target == module {
            return true;
        }
        self.allowed.get(module).is_some_and(|entries| {
            entries.iter().any(|e| {
                e == "*"
                    || path == e
                    || path
                        .strip_prefix(e.as_str())
                        .is_some_and(|r| r.starts_with("::"))
            })
        })
    }

    /// Module-level edges: an item entry (`image::oci::X`) counts as its module.
    fn edges(&self) -> BTreeMap<&str, BTreeSet<&str>> {
        let mut edges: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for (module, entries) in &self.allowed {
            let out = edges.entry(module.as_str()).or_default();
            for e in entries {
                if e == "*" {
                    out.extend(
                        self.allowed
                            .keys()
                            .map(String::as_str)
                            .filter(|m| m != module),
                    );
                } else {
                    out.insert(e.split("::").next().unwrap_or_default());
                }
            }
        }
        edges
    }
}

/// `text` with comments, string and char literals blanked out (newlines
/// kept, so line numbers still hold).
fn code_only(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    let blank = |out: &mut Vec<u8>, c: u8| out.push(if c == b'\n' { b'\n' } else { b' ' });
    while i < b.len() {
        let rest = &b[i..];
        if rest.starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                out.push(b' ');
                i += 1;
            }
        } else if rest.starts_with(b"/*") {
            let mut depth = 0;
            while i < b.len() {
                if b[i..].starts_with(b"/*") {
                    depth += 1;
                    out.extend(b"  ");
                    i += 2;
                } else if b[i..].starts_with(b"*/") {
                    depth -= 1;
                    out.extend(b"  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, b[i]);
                    i += 1;
                }
            }
        } else if let Some(hashes) = raw_string_start(b, i) {
            // r"…", r#"…"#, br"…": ends at `"` followed by the same hashes.
            let close: Vec<u8> = std::iter::once(b'"')
                .chain(std::iter::repeat_n(b'#', hashes))
                .collect();
            let open_len = b[i..].iter().position(|&c| c == b'"').unwrap_or(0) + 1;
            out.extend(std::iter::repeat_n(b' ', open_len));
            i += open_len;
            while i < b.len() && !b[i..].starts_with(&close) {
                blank(&mut out, b[i]);
                i += 1;
            }
            out.extend(std::iter::repeat_n(b' ', close.len().min(b.len() - i)));
            i += close.len();
        } else if b[i] == b'"' {
            out.push(b' ');
            i += 1;
            while i < b.len() && b[i] != b'"' {
                let step = if b[i] == b'\\' { 2 } else { 1 };
                for k in 0..step.min(b.len() - i) {
                    blank(&mut out, b[i + k]);
                }
                i += step;
            }
            out.push(b' ');
            i += 1;
        } else if let Some(len) = (b[i] == b'\'')
            .then(|| char_literal_len(&text[i..]))
            .flatten()
        {
            out.extend(std::iter::repeat_n(b' ', len));
            i += len;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The number of `#`s if a raw string literal starts at `i`.
fn raw_string_start(b: &[u8], i: usize) -> Option<usize> {
    if i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_') {
        return None;
    }
    let mut j = i;
    if b.get(j) == Some(&b'b') {
        j += 1;
    }
    if b.get(j) != Some(&b'r') {
        return None;
    }
    j += 1;
    let hashes = b[j..].iter().take_while(|&&c| c == b'#').count();
    (b.get(j + hashes) == Some(&b'"')).then_some(hashes)
}

/// The length of a char literal (`'x'`, `'\\n'`, `'"'`) at the start of
/// `text`; `None` for a lifetime.
fn char_literal_len(text: &str) -> Option<usize> {
    let b = text.as_bytes();
    if b.get(1) == Some(&b'\\') {
        // The escaped character, then anything (`u{…}`) up to the quote.
        let end = b.get(3..)?.iter().position(|&c| c == b'\'')?;
        return Some(end + 4);
    }
    let len = text.get(1..)?.chars().next()?.len_utf8();
    (b.get(1 + len) == Some(&b'\'')).then_some(len + 2)
}

/// Every `crate::` path in `code` with its line: `crate::a::{b, c::D}`
/// gives `a::b` and `a::c::D`.
fn crate_paths(code: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (start, _) in code.match_indices("crate::") {
        let before = code[..start].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
            continue;
        }
        let line = code[..start].matches('\n').count() + 1;
        let mut paths = Vec::new();
        expand(&code[start + "crate::".len()..], "", &mut paths);
        found.extend(paths.into_iter().map(|p| (line, p)));
    }
    found
}

/// Parses the path tree at the start of `text` (what follows a `::`) into
/// `out`, each path prefixed by `prefix`; returns the bytes it read.
fn expand(text: &str, prefix: &str, out: &mut Vec<String>) -> usize {
    let skip_ws = |i: usize| i + (text[i..].len() - text[i..].trim_start().len());
    let mut i = skip_ws(0);
    if text[i..].starts_with('{') {
        i += 1;
        loop {
            i = skip_ws(i);
            match text[i..].chars().next() {
                None => return i,
                Some('}') => return i + 1,
                Some(',') => i += 1,
                Some(_) => i += expand(&text[i..], prefix, out).max(1),
            }
        }
    }
    if text[i..].starts_with('*') {
        out.push(prefix.to_string());
        return i + 1;
    }
    let len = text[i..]
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(text.len() - i);
    let ident = &text[i..i + len];
    i += len;
    if ident.is_empty() || ident == "self" {
        if !prefix.is_empty() {
            out.push(prefix.to_string());
        }
        return i;
    }
    let path = if prefix.is_empty() {
        ident.to_string()
    } else {
        format!("{prefix}::{ident}")
    };
    if text[i..].starts_with("::") {
        return i + 2 + expand(&text[i + 2..], &path, out);
    }
    out.push(path);
    // `a::b as c`: the alias is no path.
    let j = skip_ws(i);
    if text[j..].starts_with("as ") {
        let k = skip_ws(j + 3);
        let alias = text[k..]
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(text.len() - k);
        return k + alias;
    }
    i
}

/// The top-level module a source file belongs to (`src/exec/copy/x.rs` ->
/// `exec`, `src/units.rs` -> `units`); `None` for the crate roots.
fn module_of(rel: &Path) -> Option<String> {
    let first = rel.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (!matches!(name, "lib" | "main")).then(|| name.to_string())
}

/// Every import in `files` (paths relative to `src/`) the table does not allow.
fn check(table: &Table, files: &[(PathBuf, String)]) -> Vec<Violation> {
    let mut violations = Vec::new();
    for (rel, text) in files {
        let Some(module) = module_of(rel) else {
            continue;
        };
        for (line, path) in crate_paths(&code_only(text)) {
            if !table.allows(&module, &path) {
                violations.push(Violation {
                    file: format!("src/{}", rel.display()),
                    line,
                    module: module.clone(),
                    path,
                });
            }
        }
    }
    violations
}

/// The cycles of module-level edges, each as `a -> b -> a`.
fn cycles(edges: &BTreeMap<&str, BTreeSet<&str>>) -> Vec<String> {
    fn walk<'a>(
        start: &'a str,
        at: &'a str,
        path: &mut Vec<&'a str>,
        edges: &BTreeMap<&'a str, BTreeSet<&'a str>>,
        found: &mut Vec<String>,
    ) {
        for &next in edges.get(at).into_iter().flatten() {
            if next == start {
                found.push(format!("{} -> {start}", path.join(" -> ")));
            } else if next > start && !path.contains(&next) {
                path.push(next);
                walk(start, next, path, edges, found);
                path.pop();
            }
        }
    }
    let mut found = Vec::new();
    for &start in edges.keys() {
        walk(start, start, &mut vec![start], edges, &mut found);
    }
    found
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read_table() -> Table {
    let doc =
        std::fs::read_to_string(repo().join("ARCHITECTURE.md")).expect("reading ARCHITECTURE.md");
    parse_table(&doc).unwrap_or_else(|e| panic!("{e}"))
}

fn source_files(dir: &Path, src: &Path, out: &mut Vec<(PathBuf, String)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            source_files(&path, src, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
            out.push((
                path.strip_prefix(src).expect("under src").to_path_buf(),
                text,
            ));
        }
    }
}

#[test]
fn layering_table_allows_every_crate_import_in_src() {
    let table = read_table();
    let src = repo().join("src");
    let mut files = Vec::new();
    source_files(&src, &src, &mut files);
    let violations = check(&table, &files);
    assert!(
        violations.is_empty(),
        "imports the layering table in ARCHITECTURE.md does not allow (move the code, or add the \
         edge to the table with its reason):\n{}",
        violations
            .iter()
            .map(|v| format!("  {v}\n"))
            .collect::<String>()
    );
}

#[test]
fn layering_table_names_every_top_level_module() {
    let table = read_table();
    let mut modules = BTreeSet::new();
    for entry in std::fs::read_dir(repo().join("src")).expect("reading src") {
        let path = entry.expect("directory entry").path();
        if let Some(m) = module_of(Path::new(path.file_name().expect("file name"))) {
            if path.is_dir() || path.extension().is_some_and(|e| e == "rs") {
                modules.insert(m);
            }
        }
    }
    let listed: BTreeSet<String> = table.allowed.keys().cloned().collect();
    assert_eq!(
        listed, modules,
        "the layering table's rows and the modules in src/ differ"
    );
    for (module, entries) in &table.allowed {
        for e in entries.iter().filter(|e| *e != "*") {
            let target = e.split("::").next().unwrap_or_default();
            assert!(
                modules.contains(target),
                "`{module}` may import `{e}`: no module `{target}` in src/"
            );
        }
    }
}

#[test]
fn layering_table_has_no_cycles() {
    let table = read_table();
    let found = cycles(&table.edges());
    assert!(
        found.is_empty(),
        "cycles between top-level modules: {found:?}"
    );
}

/// The checker itself, on a synthetic crate: a deliberately wrong import is
/// reported; allowed ones, item entries, brace groups, comments and string
/// literals are not.
#[test]
fn layering_checker_reports_a_wrong_import_and_nothing_else() {
    let doc = "# x\n\n## Layering\n\n| module | may import | why |\n|---|---|---|\n\
               | `low` | — | nothing below it |\n\
               | `mid` | `low`, `top::CONST` | one item from above |\n\
               | `top` | `*` | the binary's glue |\n\n## Next\n\n| `ignored` | `x` | |\n";
    let table = parse_table(doc).expect("synthetic table");
    assert_eq!(
        table.allowed.len(),
        3,
        "rows after the section are not the table's"
    );
    let file = |path: &str, text: &str| (PathBuf::from(path), text.to_string());
    let files = [
        file(
            "low/mod.rs",
            "//! Docs may name crate::top freely.\n\
             /// So may crate::mid in doc comments.\n\
             use crate::low::x; // and crate::top after code\n\
             const S: &str = \"crate::top in a string\";\n\
             const R: &str = r#\"crate::mid \" in a raw string\"#;\n\
             const C: char = '\"'; /* crate::top /* nested */ */\n\
             fn f<'a>(x: &'a str) {}\n\
             use crate::mid::Thing;\n",
        ),
        file(
            "mid/a/b.rs",
            "use crate::{low::{self, y}, top::CONST};\nfn g() { crate::top::other(); }\n",
        ),
        file("top.rs", "use crate::{low, mid::deep::Z};\n"),
        file("lib.rs", "pub mod low; fn x() { crate::anything(); }\n"),
    ];
    let found: Vec<String> = check(&table, &files)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        found,
        [
            "src/low/mod.rs:8: `low` imports `crate::mid::Thing`",
            "src/mid/a/b.rs:2: `mid` imports `crate::top::other`",
        ]
    );
    let mut cyclic = table;
    cyclic.allowed.insert("low".into(), vec!["top".into()]);
    assert_eq!(
        cycles(&cyclic.edges()),
        [
            "low -> top -> low",
            "low -> top -> mid -> low",
            "mid -> top -> mid"
        ]
    );
}
