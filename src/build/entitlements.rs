//! `--allow`: what a build may do beyond BuildKit's default sandbox.
//!
//! BuildKit refuses a build whose graph asks for an entitlement the
//! client did not grant, before anything runs or any cache is consulted
//! (moby/buildkit `solver/llbsolver/vertex.go`, `ValidateEntitlements`:
//! "entitlement network.host is not allowed"). A RUN on the host's
//! network shares its interfaces with every local service, so it is
//! never the default.

use crate::solver::{Graph, Network, Op};

/// One grantable entitlement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entitlement {
    /// `network.host`: RUN steps may share the host's network namespace.
    NetworkHost,
}

impl Entitlement {
    /// BuildKit's name.
    pub fn name(self) -> &'static str {
        match self {
            Entitlement::NetworkHost => "network.host",
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
    #[error("--allow {0:?}: unknown entitlement (kiln knows network.host)")]
    Unknown(String),
}

impl std::str::FromStr for Entitlement {
    type Err = EntitlementError;

    fn from_str(s: &str) -> Result<Entitlement, EntitlementError> {
        match s {
            "network.host" => Ok(Entitlement::NetworkHost),
            other => Err(EntitlementError::Unknown(other.to_string())),
        }
    }
}

/// Fails when a step of `graph` needs an entitlement `allow` lacks.
pub fn check(graph: &Graph, allow: &[Entitlement]) -> Result<(), EntitlementError> {
    let host = graph
        .iter()
        .any(|(_, v)| matches!(v.op(), Op::Exec(e) if e.network == Network::Host));
    if host && !allow.contains(&Entitlement::NetworkHost) {
        return Err(EntitlementError::NotAllowed(Entitlement::NetworkHost));
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
        let err = "network".parse::<Entitlement>().unwrap_err().to_string();
        assert!(err.contains("unknown entitlement"), "{err}");
        assert_eq!(
            EntitlementError::NotAllowed(Entitlement::NetworkHost).to_string(),
            "entitlement network.host is not allowed (grant it with --allow network.host)"
        );
    }
}
