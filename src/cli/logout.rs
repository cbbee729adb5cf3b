//! `kiln logout [REGISTRY]`: forgets the credentials `kiln login` stored
//! (in docker's config.json or its credential helper, or `--authfile`), and
//! any kiln kept in its legacy `<root>/auth.json`.

use super::login::login_target;
use super::{CliError, RegistryFlags};
use crate::image::registry::endpoint::{canonical_registry_name, DOCKER_HUB_NAME};
use crate::image::registry::LoginFile;
use clap::Args;
use std::path::Path;

/// Flags of `kiln logout`.
#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// Registry host (default: Docker Hub).
    pub registry: Option<String>,
}

pub fn run(args: LogoutArgs, root: &Path, flags: &RegistryFlags) -> Result<i32, CliError> {
    let registry = canonical_registry_name(args.registry.as_deref().unwrap_or(DOCKER_HUB_NAME));
    let removed = login_target(root, flags)
        .remove(&registry)
        .map_err(CliError::from_error)?;
    // Logins made before kiln wrote docker's file.
    let legacy = LoginFile::in_root(root)
        .remove(&registry)
        .map_err(CliError::from_error)?;
    if removed || legacy {
        println!("Removing login credentials for {registry}");
    } else {
        println!("Not logged in to {registry}");
    }
    Ok(0)
}
