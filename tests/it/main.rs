//! kiln's integration tests, as one test binary: each module was a test
//! file of its own (`tests/<name>.rs`), and linking ~40 binaries against
//! kiln cost more than running them. They drive the real `kiln` binary
//! (`support::kiln`) against private stores, registries and stubs.
//!
//! **Adding tests:** put a new file in `tests/it/` (not `tests/`, which
//! would make another binary), add `mod <name>;` below in alphabetical
//! order, and start it with `use crate::support;` where a file of its own
//! would have said `mod support;`. `tests/escape.rs` stays apart: its
//! binary is also the probe it runs inside containers.
//!
//! **Sharing one process:** all modules' tests run in one process, in
//! parallel (libtest's threads). So a test never changes process-wide
//! state: no `std::env::set_var`, no `set_current_dir`, no signal
//! handlers, no `static` it mutates; whatever a command needs goes on its
//! `Command` (`env`, `current_dir`), and every test makes its own store,
//! registry, stub server and namespaces (names with its pid are not
//! unique here: add the test's own name). Run one module with
//! `cargo test --test it <module>::`.

#[path = "../support/mod.rs"]
mod support;

mod bad_input;
mod build_add_url;
mod build_attest;
mod build_basics;
mod build_cache;
mod build_cancel;
mod build_checks;
mod build_ci_outputs;
mod build_contexts;
mod build_copy_metadata;
mod build_copy_reuse;
mod build_copy_sources;
mod build_explain;
mod build_flags;
mod build_git;
mod build_host_safety;
mod build_layers;
mod build_link;
mod build_network;
mod build_output_options;
mod build_prune;
mod build_remote_cache;
mod build_secrets_env;
mod build_shared_root;
mod build_ssh;
mod build_stages;
mod build_tmpfs;
mod cgroupfs;
mod confinement;
mod containers_attach;
mod containers_exec;
mod containers_lifecycle;
mod containers_prune;
mod containers_stats;
mod containers_system;
mod copy_source_properties;
mod crash_safety;
mod docker_workflow;
mod dockerignore_conformance;
mod image_commands;
mod layering;
mod load_bad_archives;
mod parser_conformance;
mod parser_errors;
mod parser_properties;
mod platforms;
mod registry_client;
mod registry_client_faults;
mod registry_faults;
mod registry_login;
mod registry_pull_push;
mod registry_tls_auth;
mod run;
mod run_default_bridge;
mod run_image;
mod run_network;
mod run_volumes;
mod save_load;
mod shell_conformance;
mod store_races;
mod terminal;
