//! `kiln network`: docker's `network create|ls|inspect|rm|connect|
//! disconnect|prune` over [`crate::network`].

use super::table::Table;
use super::CliError;
use crate::cache::StoreLayout;
use crate::network::{self, state::Endpoint, state::NetworkRecord, Subnet};
use clap::{Args, Subcommand};
use std::path::Path;

/// `kiln network` subcommands.
#[derive(Debug, Subcommand)]
pub enum NetworkCommand {
    /// Create a bridge network.
    Create(CreateArgs),
    /// List networks.
    #[command(alias = "list")]
    Ls,
    /// Show networks as JSON (docker's shape).
    Inspect {
        /// Network names or ID prefixes.
        #[arg(required = true)]
        networks: Vec<String>,
    },
    /// Remove networks.
    #[command(alias = "remove")]
    Rm {
        /// Network names or ID prefixes.
        #[arg(required = true)]
        networks: Vec<String>,
    },
    /// Connect a running container to a network.
    Connect {
        /// The network.
        network: String,
        /// The container (name or ID prefix).
        container: String,
    },
    /// Disconnect a container from a network.
    Disconnect {
        /// The network.
        network: String,
        /// The container (name or ID prefix).
        container: String,
    },
    /// Remove all unused user networks (and endpoints whose container is
    /// gone, a killed kiln's).
    Prune {
        /// Do not prompt for confirmation.
        #[arg(short, long)]
        force: bool,
    },
}

/// Flags of `kiln network create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Subnet in CIDR form (default: the first of docker's pools that no
    /// host route or other network uses).
    #[arg(long, value_name = "CIDR")]
    pub subnet: Option<String>,
    /// Driver: only `bridge`.
    #[arg(short, long, default_value = "bridge")]
    pub driver: String,
    /// The network's name.
    pub name: String,
}

/// Runs a `kiln network` subcommand.
pub fn run(cmd: NetworkCommand, root: &Path) -> Result<i32, CliError> {
    let layout = StoreLayout::new(root);
    match cmd {
        NetworkCommand::Create(a) => {
            if a.driver != "bridge" {
                return Err(CliError(format!(
                    "--driver {:?}: kiln has only the bridge driver",
                    a.driver
                )));
            }
            let subnet = a
                .subnet
                .as_deref()
                .map(Subnet::parse)
                .transpose()
                .map_err(CliError::from_error)?;
            let record = network::create(&layout, &a.name, subnet).map_err(CliError::from_error)?;
            println!("{}", record.id);
        }
        NetworkCommand::Ls => {
            let mut t = Table::new(&["NETWORK ID", "NAME", "DRIVER", "SCOPE"]);
            for (name, record, _) in network::list(&layout).map_err(CliError::from_error)? {
                t.row(vec![
                    record.id[..12].into(),
                    name,
                    "bridge".into(),
                    "local".into(),
                ]);
            }
            for (name, driver) in [("host", "host"), ("none", "null")] {
                t.row(vec![
                    predefined_id(name)[..12].into(),
                    name.into(),
                    driver.into(),
                    "local".into(),
                ]);
            }
            print!("{}", t.render());
        }
        NetworkCommand::Inspect { networks } => {
            let mut all = Vec::new();
            let mut missing = None;
            for n in &networks {
                match network::inspect(&layout, n) {
                    Ok((name, record, members)) => all.push(describe(&name, &record, &members)),
                    Err(e) => {
                        eprintln!("Error: {}", crate::error_chain::Chain(&e));
                        missing = Some(e);
                    }
                }
            }
            println!(
                "{}",
                serde_json::to_string_pretty(&all).expect("JSON values serialize")
            );
            if missing.is_some() {
                return Ok(1);
            }
        }
        NetworkCommand::Rm { networks } => {
            let mut failed = false;
            for n in &networks {
                match network::remove(&layout, n) {
                    Ok(()) => println!("{n}"),
                    Err(e) => {
                        eprintln!(
                            "Error response from daemon: {}",
                            crate::error_chain::Chain(&e)
                        );
                        failed = true;
                    }
                }
            }
            return Ok(i32::from(failed));
        }
        NetworkCommand::Connect { network, container } => {
            network::connect(&layout, &network, &container).map_err(CliError::from_error)?
        }
        NetworkCommand::Disconnect { network, container } => {
            network::disconnect(&layout, &network, &container).map_err(CliError::from_error)?
        }
        NetworkCommand::Prune { force } => {
            // docker/cli `cli/command/network/prune.go`, `runPrune`: the
            // warning, then "Deleted Networks:" and one name a line, or
            // nothing when none went.
            if !force {
                use std::io::{BufRead, Write};
                print!("WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue? [y/N] ");
                let _ = std::io::stdout().flush();
                let mut answer = String::new();
                let _ = std::io::stdin().lock().read_line(&mut answer);
                if !matches!(answer.trim(), "y" | "Y" | "yes" | "Yes") {
                    return Ok(0);
                }
            }
            let deleted =
                network::prune_networks(&layout, |_| true).map_err(CliError::from_error)?;
            if !deleted.is_empty() {
                println!("Deleted Networks:");
                for name in deleted {
                    println!("{name}");
                }
                println!();
            }
        }
    }
    Ok(0)
}

/// A stable ID for `host` and `none`, which kiln does not store.
fn predefined_id(name: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(
        format!("kiln network {name}").as_bytes(),
    ))
}

/// docker's `network inspect` object for a bridge network.
fn describe(name: &str, record: &NetworkRecord, members: &[Endpoint]) -> serde_json::Value {
    let containers: serde_json::Map<String, serde_json::Value> = members
        .iter()
        .map(|e| {
            (
                e.container.clone(),
                serde_json::json!({
                    "Name": e.names.first().cloned().unwrap_or_default(),
                    "IPv4Address": format!("{}/{}", e.address, record.subnet.prefix),
                    "Interface": e.host_veth,
                }),
            )
        })
        .collect();
    serde_json::json!({
        "Name": name,
        "Id": record.id,
        "Created": record.created,
        "Scope": "local",
        "Driver": "bridge",
        "IPAM": {
            "Driver": "default",
            "Config": [{
                "Subnet": record.subnet.to_string(),
                "Gateway": record.subnet.gateway().to_string(),
            }],
        },
        "Containers": containers,
        "Options": { "com.docker.network.bridge.name": record.bridge },
    })
}
