//! `--allow`: what a build may do beyond BuildKit's default sandbox.
//!
//! BuildKit refuses a build whose graph asks for an entitlement the
//! client did not grant, before anything runs or any cache is consulted
//! (moby/buildkit `solver/llbsolver/vertex.go`, `ValidateEntitlements`:
//! "entitlement network.host is not allowed"). A RUN on the host's
//! network shares its interfaces with every local service, and a
//! `RUN --security=insecure` runs privileged (every capability, no
//! seccomp, `/sys` writable, every device allowed), so neither is ever
//! the default.

use crate::solver::{Graph, Network, Op, Security};

/// One grantable entitlement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entitlement {
    /// `network.host`: RUN steps may share the host's network namespace.
    NetworkHost,
    /// `security.insecure`: `RUN --security=insecure` runs privileged.
    SecurityInsecure,
}

impl Entitlement {
    /// BuildKit's name.
    pub fn name(self) -> &'static str {
        match self {
            Entitlement::NetworkHost => "network.host",
            Entitlement::SecurityInsecure => "security.insecure",
        }
    }
}

/// An entitlement asked for and not granted, or not known.
#[derive(Debug, thiserror::Error)]
pub enum EntitlementError {
    /// The graph needs it; `--allow` did not grant it.
    #[error("entitlement {} is not allowed (grant it with --allow {})", .0.name(), .0.name())]
    NotAllowed(Entitlement),
    /// `--allow` named something kiln does not have.
    #[error("--allow {0:?}: unknown entitlement (kiln knows network.host, security.insecure)")]
    Unknown(String),
}

impl std::str::FromStr for Entitlement {
    type Err = EntitlementError;

    fn from_str(s: &str) -> Result<Entitlement, EntitlementError> {
        match s {
            "network.host" => Ok(Entitlement::NetworkHost),
            "security.insecure" => Ok(Entitlement::SecurityInsecure),
            other => Err(EntitlementError::Unknown(other.to_string())),
        }
    }
}

/// Fails when a step of `graph` needs an entitlement `allow` lacks; the
/// first missing one in BuildKit's order (network, then security).
pub fn check(graph: &Graph, allow: &[Entitlement]) -> Result<(), EntitlementError> {
    for (_, v) in graph.iter() {
        let Op::Exec(e) = v.op() else { continue };
        if e.network == Network::Host && !allow.contains(&Entitlement::NetworkHost) {
            return Err(EntitlementError::NotAllowed(Entitlement::NetworkHost));
        }
        if e.security == Security::Insecure && !allow.contains(&Entitlement::SecurityInsecure) {
            return Err(EntitlementError::NotAllowed(Entitlement::SecurityInsecure));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_buildkit_names_parse() {
        assert_eq!(
            "network.host".parse::<Entitlement>().unwrap(),
            Entitlement::NetworkHost
        );
        assert_eq!(
            "security.insecure".parse::<Entitlement>().unwrap(),
            Entitlement::SecurityInsecure
        );
        let err = "network".parse::<Entitlement>().unwrap_err().to_string();
        assert!(err.contains("unknown entitlement"), "{err}");
        assert_eq!(
            EntitlementError::NotAllowed(Entitlement::NetworkHost).to_string(),
            "entitlement network.host is not allowed (grant it with --allow network.host)"
        );
    }
}
