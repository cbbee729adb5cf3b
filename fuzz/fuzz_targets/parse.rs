//! Fuzz target: any bytes through the whole parser (raw tree, BuildKit
//! dump, typed AST, JSON encoding of the AST). The parser must never panic,
//! abort or overflow its stack; errors are fine.
//!
//! Run: `RUSTC_BOOTSTRAP=1 cargo fuzz run parse -- -dict=fuzz/parse.dict`

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = kiln::parser::parse_raw("Dockerfile", data) else {
        return;
    };
    let dump = raw.dump();
    // One dump line per instruction, always valid UTF-8 (it is a String).
    assert!(dump.lines().count() >= raw.nodes.len());
    if let Ok(typed) = raw.to_typed() {
        let _ = serde_json::to_string(&typed);
    }
});
