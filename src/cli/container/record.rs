//! What `kiln run`/`kiln create` add to a validated run: the container's
//! row in the store, then a monitor for `-d`, nothing more for `create`,
//! or the foreground run's own record (the CLI is then the monitor).

use crate::cache::scratch::ProcessId;
use crate::cache::{ContainerRow, Store, StoreError};
use crate::container::monitor;
use crate::container::state::{self, CreateConfig, RestartPolicy, Status};
use crate::runtime::{self, ContainerSpec, RuntimeError};
use std::path::Path;

/// The lifecycle flags of `run`/`create`, checked before anything runs.
#[derive(Debug, Clone)]
pub struct Lifecycle {
    /// `-d`, or `create`: the CLI returns while the container lives on.
    pub background: bool,
    /// `create`: recorded, not started.
    pub create_only: bool,
    /// `--restart`.
    pub restart: RestartPolicy,
    /// `--name`.
    pub name: Option<String>,
    /// docker's `HostConfig.NetworkMode` (set once `--network` is checked).
    pub network_mode: String,
    /// `-p`, as `HostConfig.PortBindings` shows it.
    pub port_bindings: Vec<crate::network::PortSpec>,
}

impl Lifecycle {
    /// Checks `--restart` (and that it goes without `--rm`: docker/cli
    /// `container/opts.go` `parse`, "conflicting options").
    pub fn from_flags(
        detach: bool,
        create_only: bool,
        restart: &str,
        auto_remove: bool,
        name: Option<String>,
    ) -> Result<Lifecycle, String> {
        let restart = RestartPolicy::parse(restart)?;
        if auto_remove && restart != RestartPolicy::No {
            return Err("conflicting options: cannot specify both --restart and --rm".into());
        }
        Ok(Lifecycle {
            background: detach || create_only,
            create_only,
            restart,
            name,
            network_mode: String::new(),
            port_bindings: Vec::new(),
        })
    }
}

/// The image a container is made from, as its row shows it.
#[derive(Debug, Clone)]
pub struct ImageSource {
    /// As the user named it (or the `--rootfs` dir).
    pub name: String,
    /// The image ID; none for `--rootfs`.
    pub id: Option<String>,
    /// The image's `StopSignal`, as a number.
    pub stop_signal: i32,
}

/// docker's `StopSignal` values: a name or a number; SIGTERM when unset
/// or unknown (moby `container.StopSignal`).
pub fn stop_signal(value: Option<&str>) -> i32 {
    value
        .and_then(crate::container::lifecycle::parse_signal)
        .unwrap_or(libc::SIGTERM)
}

/// Inserts the row; a generated name that is taken is drawn again.
fn insert(
    store: &Store,
    spec: &ContainerSpec,
    auto_remove: bool,
    life: &Lifecycle,
    source: &ImageSource,
    monitor: Option<ProcessId>,
    open_stdin: bool,
) -> Result<ContainerRow, StoreError> {
    let config = CreateConfig {
        open_stdin,
        // docker/cli `opts.go` `parse` sets StdinOnce for `-i` (stdin
        // attached), `run.go` `runContainer` clears it for `-d`.
        stdin_once: open_stdin && life.create_only,
        spec: spec.clone(),
        restart: life.restart,
        auto_remove,
        stop_signal: source.stop_signal,
        command: spec.process.args.clone(),
        resources: spec.resources.clone(),
        network_mode: life.network_mode.clone(),
        port_bindings: life.port_bindings.clone(),
    };
    let mut row = ContainerRow {
        id: spec.id.clone(),
        name: String::new(),
        image: source.name.clone(),
        image_id: source.id.clone(),
        config: serde_json::to_string(&config).expect("a spec serializes"),
        state: if monitor.is_some() {
            Status::Running
        } else {
            Status::Created
        }
        .as_str()
        .into(),
        monitor: monitor.map(|m| (m.pid, m.start)),
        boot_id: monitor.and_then(|_| state::boot_id()),
        created: state::now(),
        ..Default::default()
    };
    for attempt in 0..8 {
        row.name = match (&life.name, attempt) {
            (Some(name), _) => name.clone(),
            (None, 0) => state::generate_name(&spec.id),
            (None, n) => format!("{}{n}", state::generate_name(&spec.id)),
        };
        match store.insert_container(&row) {
            Err(StoreError::Conflict(_)) if life.name.is_none() => continue,
            other => return other.map(|()| row),
        }
    }
    Err(StoreError::Conflict(format!(
        "no free name for container {}",
        spec.id
    )))
}

/// Why `run -d`/`create` failed, with the status the CLI exits with.
pub struct Failed {
    /// Printed after `kiln: `.
    pub message: String,
    /// docker's: 125 for kiln's own errors, 126/127 from the start.
    pub exit_code: i32,
}

/// `create` and `run -d`: records the container and, for `-d`, starts
/// its monitor; returns the ID to print.
pub fn create_in_background(
    root: &Path,
    spec: &ContainerSpec,
    auto_remove: bool,
    life: &Lifecycle,
    source: &ImageSource,
    open_stdin: bool,
) -> Result<String, Failed> {
    let kiln = |e: &dyn std::error::Error| Failed {
        message: crate::error_chain::Chain(e).to_string(),
        exit_code: 125,
    };
    // The monitor owns the removal of a detached `--rm` container; the
    // CLI's `rm-owner` marker would have it reaped once the CLI exits.
    let _ = std::fs::remove_file(
        spec.rootfs
            .state_dir
            .join(crate::container::reap::REMOVAL_OWNER),
    );
    let store = Store::open(root).map_err(|e| kiln(&e))?;
    // A dead `--rm` container's row must go before its name is reused.
    state::reconcile(&store).map_err(|e| kiln(&e))?;
    let row = match insert(&store, spec, auto_remove, life, source, None, open_stdin) {
        Ok(row) => row,
        Err(e) => {
            discard(&spec.rootfs.state_dir, root, life.name.as_deref(), &spec.id);
            return Err(kiln(&e));
        }
    };
    if life.create_only {
        return Ok(row.id);
    }
    match monitor::spawn(root, &row.id) {
        Ok(()) => Ok(row.id),
        Err(e) => Err(Failed {
            message: crate::error_chain::Chain(&e).to_string(),
            exit_code: e.exit_code(),
        }),
    }
}

/// Removes what `kiln run` made before its row existed.
fn discard(state_dir: &Path, root: &Path, name: Option<&str>, id: &str) {
    let _ = runtime::state::remove(state_dir);
    if let Some(name) = name {
        let link = root.join("containers/names").join(name);
        if std::fs::read_link(&link).is_ok_and(|t| t.as_os_str() == id) {
            let _ = std::fs::remove_file(link);
        }
    }
}

/// A foreground `kiln run`'s row: the CLI is its monitor.
pub struct Foreground {
    store: Store,
    id: String,
    auto_remove: bool,
}

impl Foreground {
    /// Records the container as run by this process.
    pub fn record(
        root: &Path,
        spec: &ContainerSpec,
        auto_remove: bool,
        life: &Lifecycle,
        source: &ImageSource,
    ) -> Result<Foreground, Failed> {
        let kiln = |e: &dyn std::error::Error| Failed {
            message: crate::error_chain::Chain(e).to_string(),
            exit_code: 125,
        };
        let store = Store::open(root).map_err(|e| kiln(&e))?;
        state::reconcile(&store).map_err(|e| kiln(&e))?;
        if let Err(e) = insert(
            &store,
            spec,
            auto_remove,
            life,
            source,
            Some(ProcessId::current()),
            false,
        ) {
            discard(&spec.rootfs.state_dir, root, life.name.as_deref(), &spec.id);
            return Err(kiln(&e));
        }
        Ok(Foreground {
            store,
            id: spec.id.clone(),
            auto_remove,
        })
    }

    /// The init executed the command.
    pub fn running(&self, pid: i32) {
        if let Err(e) = monitor::record_running(&self.store, &self.id, pid) {
            tracing::warn!("recording container {} as running: {e}", self.id);
        }
    }

    /// The run ended: the row records how, or goes with `--rm`.
    pub fn finish(self, result: &Result<runtime::ExitStatus, RuntimeError>) {
        let done = if self.auto_remove {
            self.store.delete_container(&self.id).map(|_| ())
        } else {
            monitor::record_end(&self.store, &self.id, result)
        };
        if let Err(e) = done {
            tracing::warn!("recording the end of container {}: {e}", self.id);
        }
    }
}
