//! `kiln volume create|ls|inspect|rm|prune`: docker's volume commands over
//! [`crate::volume::VolumeStore`], with docker's output and exit codes.

use super::table::{human_size, Table};
use super::template::Template;
use super::CliError;
use crate::error_chain::Chain;
use crate::volume::{Volume, VolumeError, VolumeStore};
use clap::{Args, Subcommand};
use std::collections::BTreeMap;
use std::path::Path;

/// `kiln volume` subcommands.
#[derive(Debug, Subcommand)]
pub enum VolumeCommand {
    /// Create a volume (a random name when none is given).
    Create(CreateArgs),
    /// List volumes.
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Show volumes' details as JSON.
    Inspect(InspectArgs),
    /// Remove volumes (not those a container uses).
    #[command(alias = "remove")]
    Rm(RmArgs),
    /// Remove the anonymous volumes no container uses (all unused with -a).
    Prune(PruneArgs),
}

/// Flags of `kiln volume create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The volume's name.
    pub name: Option<String>,
    /// Driver: only `local`.
    #[arg(short, long, default_value = "local")]
    pub driver: String,
    /// Set metadata: KEY[=VALUE].
    #[arg(long, value_name = "KEY=VALUE")]
    pub label: Vec<String>,
    /// Driver options: KEY=VALUE (the local driver's type, device, o, size).
    #[arg(short = 'o', long = "opt", value_name = "KEY=VALUE")]
    pub opt: Vec<String>,
}

/// Flags of `kiln volume ls`.
#[derive(Debug, Args)]
pub struct LsArgs {
    /// Only print names.
    #[arg(short, long)]
    pub quiet: bool,
    /// Filter: dangling=true|false, name=, label=KEY[=VALUE], driver=.
    #[arg(short, long, value_name = "FILTER")]
    pub filter: Vec<String>,
}

/// Flags of `kiln volume inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Format each volume with a Go template (`{{.Mountpoint}}`).
    #[arg(short, long)]
    pub format: Option<String>,
    /// Volumes to show.
    #[arg(required = true)]
    pub names: Vec<String>,
}

/// Flags of `kiln volume rm`.
#[derive(Debug, Args)]
pub struct RmArgs {
    /// Do not fail on volumes that do not exist.
    #[arg(short, long)]
    pub force: bool,
    /// Volumes to remove.
    #[arg(required = true)]
    pub names: Vec<String>,
}

/// Flags of `kiln volume prune`.
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Remove all unused volumes, not only anonymous ones.
    #[arg(short, long)]
    pub all: bool,
    /// Do not ask for confirmation.
    #[arg(short, long)]
    pub force: bool,
    /// Filter: label=KEY[=VALUE], label!=KEY[=VALUE].
    #[arg(long, value_name = "FILTER")]
    pub filter: Vec<String>,
}

/// Runs `kiln volume ...`; returns the exit code.
pub fn run(cmd: VolumeCommand, root: &Path) -> Result<i32, CliError> {
    let store = VolumeStore::new(root);
    // Containers of killed `kiln run --rm`s use their volumes no more.
    crate::container::reap_dead_removals(root);
    match cmd {
        VolumeCommand::Create(a) => create(&store, a),
        VolumeCommand::Ls(a) => ls(&store, a),
        VolumeCommand::Inspect(a) => inspect(&store, a),
        VolumeCommand::Rm(a) => rm(&store, a),
        VolumeCommand::Prune(a) => prune(&store, a),
    }
}

/// `KEY[=VALUE]` pairs (docker's `opts.ConvertKVStringsToMap`).
fn pairs(values: &[String]) -> BTreeMap<String, String> {
    values
        .iter()
        .map(|v| match v.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (v.to_string(), String::new()),
        })
        .collect()
}

fn create(store: &VolumeStore, a: CreateArgs) -> Result<i32, CliError> {
    if a.driver != crate::volume::store::LOCAL_DRIVER {
        return Err(CliError(format!(
            "--driver {:?}: kiln has only the \"local\" volume driver",
            a.driver
        )));
    }
    let v = store
        .create(a.name.as_deref(), pairs(&a.label), pairs(&a.opt))
        .map_err(CliError::from_error)?;
    println!("{}", v.name);
    Ok(0)
}

/// One `volume ls` filter (docker's `volume ls --filter`).
enum Filter {
    Dangling(bool),
    Name(String),
    Label(String, Option<String>),
    Driver(String),
}

impl Filter {
    fn parse(f: &str) -> Result<Filter, CliError> {
        let bad = || CliError(format!("invalid filter '{f}'"));
        let (key, value) = f.split_once('=').ok_or_else(bad)?;
        Ok(match key {
            "dangling" => match value {
                "true" | "1" => Filter::Dangling(true),
                "false" | "0" => Filter::Dangling(false),
                _ => {
                    return Err(CliError(format!(
                        "invalid filter 'dangling={value}': expected true or false"
                    )))
                }
            },
            "name" => Filter::Name(value.to_string()),
            "driver" => Filter::Driver(value.to_string()),
            "label" => match value.split_once('=') {
                Some((k, v)) => Filter::Label(k.to_string(), Some(v.to_string())),
                None => Filter::Label(value.to_string(), None),
            },
            _ => return Err(CliError(format!("invalid filter '{key}'"))),
        })
    }

    fn keeps(&self, v: &Volume, in_use: impl Fn() -> bool) -> bool {
        match self {
            Filter::Dangling(d) => in_use() != *d,
            Filter::Name(n) => v.name.contains(n.as_str()),
            Filter::Driver(d) => &v.driver == d,
            Filter::Label(k, val) => match (v.labels.get(k), val) {
                (Some(have), Some(want)) => have == want,
                (Some(_), None) => true,
                (None, _) => false,
            },
        }
    }
}

fn ls(store: &VolumeStore, a: LsArgs) -> Result<i32, CliError> {
    let filters = a
        .filter
        .iter()
        .map(|f| Filter::parse(f))
        .collect::<Result<Vec<_>, _>>()?;
    let mut table = Table::new(&["DRIVER", "VOLUME NAME"]);
    for v in store.list().map_err(CliError::from_error)? {
        let in_use = || !store.users(&v.name).is_empty();
        if !filters.iter().all(|f| f.keeps(&v, in_use)) {
            continue;
        }
        if a.quiet {
            println!("{}", v.name);
        } else {
            table.row(vec![v.driver.clone(), v.name.clone()]);
        }
    }
    if !a.quiet {
        print!("{}", table.render());
    }
    Ok(0)
}

fn inspect(store: &VolumeStore, a: InspectArgs) -> Result<i32, CliError> {
    let template = match &a.format {
        Some(f) => Some(Template::parse(f).map_err(CliError::from_error)?),
        None => None,
    };
    let mut found = Vec::new();
    let mut code = 0;
    for name in &a.names {
        match store.get(name) {
            Ok(v) => found.push(v),
            Err(VolumeError::NotFound(_)) => {
                eprintln!("Error: No such volume: {name}");
                code = 1;
            }
            Err(e) => return Err(CliError::from_error(e)),
        }
    }
    if let Some(t) = template {
        for v in &found {
            let data = serde_json::to_value(v).map_err(CliError::from_error)?;
            println!("{}", t.render(&data).map_err(CliError::from_error)?);
        }
        return Ok(code);
    }
    // docker prints its JSON indented by four spaces.
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    serde::Serialize::serialize(&found, &mut ser).map_err(CliError::from_error)?;
    println!("{}", String::from_utf8_lossy(&out));
    Ok(code)
}

fn rm(store: &VolumeStore, a: RmArgs) -> Result<i32, CliError> {
    let mut code = 0;
    for name in &a.names {
        match store.remove(name, a.force) {
            Ok(()) => println!("{name}"),
            Err(e) => {
                eprintln!("Error response from daemon: {}", Chain(&e));
                code = 1;
            }
        }
    }
    Ok(code)
}

fn prune(store: &VolumeStore, a: PruneArgs) -> Result<i32, CliError> {
    let mut labels = Vec::new();
    for f in &a.filter {
        let (key, value) = f
            .split_once('=')
            .ok_or_else(|| CliError(format!("invalid filter '{f}'")))?;
        let negate = match key {
            "label" => false,
            "label!" => true,
            _ => return Err(CliError(format!("invalid filter '{key}'"))),
        };
        let label = match value.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (value.to_string(), None),
        };
        labels.push((negate, label));
    }
    if !a.force {
        // kiln never asks (its commands run unattended); the warning
        // docker shows is printed so the scope is not a surprise.
        let what = if a.all {
            "all local volumes"
        } else {
            "anonymous local volumes"
        };
        eprintln!("WARNING! This will remove {what} not used by at least one container.");
    }
    let keep = |v: &Volume| {
        labels.iter().all(|(negate, (k, val))| {
            let has = match (v.labels.get(k), val) {
                (Some(have), Some(want)) => have == want,
                (Some(_), None) => true,
                (None, _) => false,
            };
            has != *negate
        })
    };
    let (removed, bytes) = store.prune(a.all, keep).map_err(CliError::from_error)?;
    if !removed.is_empty() {
        println!("Deleted Volumes:");
        for n in &removed {
            println!("{n}");
        }
        println!();
    }
    println!("Total reclaimed space: {}", human_size(bytes));
    Ok(0)
}
