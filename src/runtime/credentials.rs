//! Who the container's process is: user and groups, capabilities, seccomp
//! filter, no_new_privs — prepared from the spec and the rootfs, then
//! applied by the init in the one order the kernel allows.
//!
//! Order (see also [`super::caps`] and [`super::seccomp`]):
//! 1. `PR_SET_KEEPCAPS`, so `setuid` away from root keeps the permitted set;
//! 2. without no_new_privs (docker's default) the seccomp filter goes in
//!    now, while CAP_SYS_ADMIN is still effective — the kernel requires it
//!    without no_new_privs; the profile allows every later step;
//! 3. setgroups, setgid, setuid;
//! 4. capabilities (bounding, effective, permitted; inheritable and ambient
//!    cleared);
//! 5. with no_new_privs: set it, then the filter;
//!
//! and `execve` right after.

use super::caps::{self, Capability, CapsError};
use super::seccomp::{self, SeccompError, SeccompProgram};
use super::spec::ProcessSpec;
use super::user::{self, ResolvedUser, UserError};
use std::path::Path;

/// Why the credentials could not be prepared or applied.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// The user or group is unknown to the rootfs.
    #[error(transparent)]
    User(#[from] UserError),
    /// The seccomp filter failed to build or install.
    #[error(transparent)]
    Seccomp(#[from] SeccompError),
    /// Capabilities could not be applied.
    #[error(transparent)]
    Caps(#[from] CapsError),
    /// setgroups/setgid/setuid failed.
    #[error("failed to switch to uid {uid} gid {gid}")]
    Switch {
        /// Target uid.
        uid: u32,
        /// Target gid.
        gid: u32,
        /// The cause.
        #[source]
        source: nix::Error,
    },
    /// The process's resource limits could not be set.
    #[error(transparent)]
    Rlimit(#[from] super::rlimits::RlimitError),
    /// The parent-death signal could not be set again after the switch.
    #[error("failed to set the parent-death signal")]
    ParentDeath(#[source] nix::Error),
}

/// Everything needed to drop from the init's root to the process's identity.
#[derive(Debug)]
pub struct Credentials {
    /// The resolved user (uid, gid, groups, home).
    pub user: ResolvedUser,
    caps: Vec<Capability>,
    filter: Option<SeccompProgram>,
    no_new_privs: bool,
}

impl Credentials {
    /// Resolves `user_spec` against `rootfs`'s passwd/group files (before
    /// `pivot_root`, so a user added by an earlier layer is found) and
    /// compiles the seccomp filter for `caps` when `seccomp` is set.
    pub fn prepare(
        rootfs: &Path,
        user_spec: &str,
        extra_gids: &[u32],
        caps: &[Capability],
        seccomp: bool,
        no_new_privs: bool,
    ) -> Result<Credentials, CredentialsError> {
        let mut user = user::resolve_user(rootfs, user_spec)?;
        with_extra_groups(&mut user, extra_gids);
        let filter = if seccomp {
            Some(seccomp::docker_default_filter(caps)?)
        } else {
            None
        };
        Ok(Credentials {
            user,
            caps: caps.to_vec(),
            filter,
            no_new_privs,
        })
    }

    /// Becomes the process's identity (see the module doc for the order).
    /// Afterwards the caller may only do what the seccomp profile and the
    /// remaining capabilities allow: chdir, fd flags, write to the channel,
    /// execve.
    pub fn apply(&self) -> Result<(), CredentialsError> {
        caps::set_keep_caps()?;
        if !self.no_new_privs {
            self.install_filter()?;
        }
        let (uid, gid) = (self.user.uid, self.user.gid);
        let switch = |source| CredentialsError::Switch { uid, gid, source };
        let groups: Vec<nix::unistd::Gid> = self
            .user
            .additional_gids
            .iter()
            .map(|g| nix::unistd::Gid::from_raw(*g))
            .collect();
        nix::unistd::setgroups(&groups).map_err(switch)?;
        let gid_ = nix::unistd::Gid::from_raw(gid);
        nix::unistd::setresgid(gid_, gid_, gid_).map_err(switch)?;
        let uid_ = nix::unistd::Uid::from_raw(uid);
        nix::unistd::setresuid(uid_, uid_, uid_).map_err(switch)?;
        caps::apply_capabilities(&self.caps)?;
        if self.no_new_privs {
            caps::set_no_new_privs()?;
            self.install_filter()?;
        }
        Ok(())
    }

    /// The last steps before the user's program, the same for a
    /// container's init and `kiln exec`'s joiner, in runc's order
    /// (`standard_init_linux.go`, `setns_init_linux.go`): the rlimits while
    /// CAP_SYS_RESOURCE is still held (raising a hard limit needs it), the
    /// terminal handed to the user, the credentials ([`Self::apply`]), the
    /// process kept undumpable (a credential change resets that; while it
    /// holds kiln's socket no process of the container may ptrace it) and
    /// the parent-death signal set again (a credential change clears it).
    /// Returns the process's environment with the user's `HOME` when it
    /// sets none (docker's rule).
    pub fn become_the_process(
        &self,
        process: &ProcessSpec,
    ) -> Result<Vec<String>, CredentialsError> {
        super::rlimits::apply(&process.rlimits)?;
        if process.terminal {
            // The process's own terminal should be usable by path too.
            let _ = rustix::fs::fchown(
                std::io::stdin(),
                Some(rustix::process::Uid::from_raw(self.user.uid)),
                None,
            );
        }
        self.apply()?;
        let _ = nix::sys::prctl::set_dumpable(false);
        nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
            .map_err(CredentialsError::ParentDeath)?;
        Ok(with_home(&process.env, &self.user.home))
    }

    fn install_filter(&self) -> Result<(), CredentialsError> {
        if let Some(filter) = &self.filter {
            seccomp::install(filter)?;
        }
        Ok(())
    }
}

/// `env` with `HOME=home` (the passwd entry's) added when it sets no
/// `HOME` (runc behaviour).
fn with_home(env: &[String], home: &str) -> Vec<String> {
    let mut env = env.to_vec();
    if super::exec::env_value(&env, "HOME").is_none() {
        env.push(format!("HOME={home}"));
    }
    env
}

/// Adds `extra_gids` (`--group-add`) to the user's supplementary groups,
/// and the primary group too: containerd's `ensureAdditionalGids`, which
/// both `docker run` and BuildKit's RUN apply, so a process always has its
/// own gid in `getgroups()` (`id` shows `groups=0(root)` for root).
fn with_extra_groups(user: &mut user::ResolvedUser, extra_gids: &[u32]) {
    for gid in extra_gids {
        if !user.additional_gids.contains(gid) {
            user.additional_gids.push(*gid);
        }
    }
    if !user.additional_gids.contains(&user.gid) {
        user.additional_gids.insert(0, user.gid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn home_is_added_only_when_missing() {
        assert_eq!(
            with_home(&["A=1".into()], "/root"),
            vec!["A=1", "HOME=/root"]
        );
        assert_eq!(with_home(&["HOME=/x".into()], "/root"), vec!["HOME=/x"]);
    }

    fn groups(gid: u32, from_group_file: &[u32], extra: &[u32]) -> Vec<u32> {
        let mut user = user::ResolvedUser {
            uid: 1000,
            gid,
            additional_gids: from_group_file.to_vec(),
            home: "/".into(),
        };
        with_extra_groups(&mut user, extra);
        user.additional_gids
    }

    #[test]
    fn the_primary_group_is_always_a_supplementary_group() {
        assert_eq!(groups(0, &[], &[]), [0]);
        assert_eq!(groups(1000, &[], &[7]), [1000, 7]);
        assert_eq!(groups(5, &[10, 5], &[]), [10, 5]);
        assert_eq!(groups(5, &[10], &[10, 11]), [5, 10, 11]);
    }
}
