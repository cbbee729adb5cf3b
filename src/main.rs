//! The `kiln` binary: a thin wrapper over [`kiln::cli`].

fn main() {
    // A container's init is kiln re-executed with a marker argument; it is
    // dispatched before clap and logging so a container starts fast.
    if std::env::args_os().nth(1).as_deref() == Some(kiln::runtime::spawn::INIT_ARG.as_ref()) {
        std::process::exit(kiln::runtime::init::main());
    }
    // `kiln exec`'s joiner, like the init: before clap and logging.
    if std::env::args_os().nth(1).as_deref() == Some(kiln::runtime::join::JOIN_ARG.as_ref()) {
        std::process::exit(kiln::runtime::join::main());
    }
    // `kiln exec -d`'s helper (it reads a prepared spec, no flags).
    if std::env::args_os().nth(1).as_deref() == Some(kiln::cli::DETACHED_EXEC_ARG.as_ref()) {
        std::process::exit(kiln::cli::detached_exec_main());
    }
    // A detached container's monitor: also before clap and logging.
    if std::env::args_os().nth(1).as_deref() == Some(kiln::container::monitor::MONITOR_ARG.as_ref())
    {
        std::process::exit(kiln::container::monitor::main());
    }
    std::process::exit(kiln::cli::main());
}
