//! The `kiln` binary: a thin wrapper over [`kiln::cli`].

fn main() {
    std::process::exit(kiln::cli::main());
}
