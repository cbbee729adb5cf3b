//! `kiln run IMAGE`: an image from the store as the container's root
//! filesystem, and its config as the defaults docker applies.
//!
//! The image's snapshots (extracted from its blobs if missing) are the
//! overlay's lower dirs; a lease held by this process for the whole run
//! keeps GC (e.g. a concurrent `rmi` + `prune`) from removing them.
//! Pulling a missing image needs the registry client, not in this build,
//! so that is a clear error.

use std::path::{Path, PathBuf};

use crate::cache::{Lease, Store, StoreError};

/// What the image contributes to a run.
pub struct ImageDefaults {
    /// Snapshot directories, bottom first.
    pub lowers: Vec<PathBuf>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub env: Vec<String>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    /// Holds the lease (and the store's own process lease) while the
    /// container runs.
    _store: Store,
    _lease: Lease,
}

/// Loads `spec` (a name, ID or ID prefix) from the store at `root`.
pub fn load(root: &Path, spec: &str) -> Result<ImageDefaults, String> {
    let store = Store::open(root).map_err(|e| e.to_string())?;
    let image = match store.image(spec) {
        Ok(image) => image,
        Err(StoreError::ImageNotFound(_)) => {
            return Err(format!(
                "Unable to find image '{spec}' locally, and pulling is not supported yet \
                 (use kiln build, kiln import or kiln load)"
            ))
        }
        Err(e) => return Err(e.to_string()),
    };
    let lease = store
        .create_lease(None, &format!("run {spec}"))
        .map_err(|e| e.to_string())?;
    store
        .lease_image(&lease, &image)
        .map_err(|e| e.to_string())?;
    let lowers = store.snapshot_dirs(&image).map_err(|e| e.to_string())?;
    let cc = image.config.config.clone().unwrap_or_default();
    Ok(ImageDefaults {
        lowers,
        entrypoint: cc.entrypoint,
        cmd: cc.cmd,
        env: cc.env.unwrap_or_default(),
        user: cc.user.filter(|u| !u.is_empty()),
        workdir: cc.working_dir.filter(|w| !w.is_empty()),
        _store: store,
        _lease: lease,
    })
}

/// docker's argv: `--entrypoint` replaces the image's entrypoint and drops
/// its CMD (`--entrypoint ""` clears it); arguments replace the image's
/// CMD; the process runs `entrypoint + cmd`.
pub fn argv(
    entrypoint_flag: Option<&str>,
    image_entrypoint: Option<&[String]>,
    image_cmd: Option<&[String]>,
    args: &[String],
) -> Vec<String> {
    let (entrypoint, default_cmd): (Vec<String>, &[String]) = match entrypoint_flag {
        Some("") => (Vec::new(), &[]),
        Some(ep) => (vec![ep.to_string()], &[]),
        None => (
            image_entrypoint.map(<[String]>::to_vec).unwrap_or_default(),
            image_cmd.unwrap_or_default(),
        ),
    };
    let cmd = if args.is_empty() { default_cmd } else { args };
    entrypoint.into_iter().chain(cmd.iter().cloned()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn docker_combines_entrypoint_and_cmd() {
        let ep = v(&["/entry", "-x"]);
        let cmd = v(&["default"]);
        for (flag, image_ep, args, expected) in [
            (None, Some(&ep), vec![], v(&["/entry", "-x", "default"])),
            (None, Some(&ep), v(&["mine"]), v(&["/entry", "-x", "mine"])),
            (None, None, vec![], v(&["default"])),
            (None, None, v(&["sh"]), v(&["sh"])),
            (Some("/other"), Some(&ep), vec![], v(&["/other"])),
            (Some("/other"), Some(&ep), v(&["a"]), v(&["/other", "a"])),
            (Some(""), Some(&ep), v(&["a"]), v(&["a"])),
        ] {
            assert_eq!(
                argv(flag, image_ep.map(Vec::as_slice), Some(&cmd), &args),
                expected,
                "{flag:?} {args:?}"
            );
        }
    }
}
