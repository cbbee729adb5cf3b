//! `RUN --mount=type=ssh,required=true` without its `--ssh` agent: refused
//! before any step runs.
//!
//! BuildKit finds out only when the step's mount is made (moby/buildkit
//! `solver/llbsolver/mounts/mount.go`, `getSSHMountable`), after the steps
//! before it ran; kiln knows every agent when the build starts, so it
//! fails at once with BuildKit's message, as it does for entitlements.

use crate::exec::ssh_agent::SshAgents;
use crate::solver::{Graph, MountKind, Op};

/// A required agent that `--ssh` did not forward.
#[derive(Debug, thiserror::Error)]
#[error("{step}: {message}")]
pub struct MissingAgent {
    /// The step that mounts it.
    pub step: String,
    /// BuildKit's words ([`SshAgents::missing_message`]).
    pub message: String,
}

/// Fails on the first step of `graph` whose required SSH mount names an
/// agent `agents` lacks.
pub fn check(graph: &Graph, agents: &SshAgents) -> Result<(), MissingAgent> {
    for (_, v) in graph.iter() {
        let Op::Exec(exec) = v.op() else { continue };
        for m in &exec.mounts {
            if let MountKind::Ssh {
                id, required: true, ..
            } = &m.kind
            {
                if agents.get(id).is_none() {
                    return Err(MissingAgent {
                        step: v.info().name.clone(),
                        message: agents.missing_message(id),
                    });
                }
            }
        }
    }
    Ok(())
}
