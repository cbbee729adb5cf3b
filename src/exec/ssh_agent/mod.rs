//! SSH agent forwarding for `RUN --mount=type=ssh` (`kiln build --ssh`).
//!
//! BuildKit's model (moby/buildkit `session/sshforward/`): the client names
//! agents by id (`--ssh default`, `--ssh ID=SOCKET`, `--ssh
//! ID=KEYFILE[,KEYFILE]`); a step that mounts one gets a *fresh* socket
//! that the builder listens on, never the user's own agent socket, and each
//! connection to it is served as a read-only agent: it lists keys and signs,
//! nothing else (`sshprovider/agentprovider.go`, `readOnlyAgent`).
//!
//! - [`AgentSource`]: what one `--ssh` id forwards, opened and checked when
//!   the build starts (the user's socket, or key files kiln serves itself);
//! - [`protocol`]: the agent protocol, relayed to a socket or answered from
//!   keys;
//! - [`AgentSocket`]: the socket a step sees, gone with the step.
//!
//! **Invariant:** nothing of an agent (key bytes, socket path) enters an op,
//! a cache key or a layer: the op holds only the mount's id, target, owner
//! and mode.

pub mod protocol;
mod socket;
mod source;

pub use socket::AgentSocket;
pub use source::{AgentSource, SshAgents, SshSourceError};
