//! IPv4 subnets: parsing docker's `--subnet` CIDR, telling whether two
//! overlap, the host's routes a new bridge must not collide with, and the
//! next free address of a network.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

/// An IPv4 network in CIDR form, its host bits zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Subnet {
    /// The network address.
    pub addr: Ipv4Addr,
    /// The prefix length (8..=30: room for a gateway and a container).
    pub prefix: u8,
}

/// Why a `--subnet` value is not usable.
#[derive(Debug, thiserror::Error)]
pub enum SubnetError {
    /// Not `A.B.C.D/N`.
    #[error("invalid subnet {0:?}: expected an IPv4 CIDR such as 172.28.0.0/16")]
    Syntax(String),
    /// Too small or too large for a bridge.
    #[error("invalid subnet {0:?}: the prefix length must be between 8 and 30")]
    Prefix(String),
    /// Host bits set (docker: "invalid subnet ... : it should be ...").
    #[error("invalid subnet {given:?}: it should be {expected}")]
    HostBits {
        /// What was given.
        given: String,
        /// The network it names.
        expected: String,
    },
}

impl Subnet {
    /// Parses `A.B.C.D/N` (docker refuses host bits; so does kiln).
    pub fn parse(text: &str) -> Result<Subnet, SubnetError> {
        let (addr, prefix) = text
            .split_once('/')
            .ok_or_else(|| SubnetError::Syntax(text.into()))?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| SubnetError::Syntax(text.into()))?;
        let prefix: u8 = prefix
            .parse()
            .map_err(|_| SubnetError::Syntax(text.into()))?;
        if !(8..=30).contains(&prefix) {
            return Err(SubnetError::Prefix(text.into()));
        }
        let subnet = Subnet {
            addr: Ipv4Addr::from(u32::from(addr) & mask(prefix)),
            prefix,
        };
        if subnet.addr != addr {
            return Err(SubnetError::HostBits {
                given: text.into(),
                expected: subnet.to_string(),
            });
        }
        Ok(subnet)
    }

    fn first(&self) -> u32 {
        u32::from(self.addr)
    }

    fn last(&self) -> u32 {
        self.first() | !mask(self.prefix)
    }

    /// The two networks share an address.
    pub fn overlaps(&self, other: &Subnet) -> bool {
        self.first() <= other.last() && other.first() <= self.last()
    }

    /// `addr` is inside this network.
    pub fn contains(&self, addr: Ipv4Addr) -> bool {
        (self.first()..=self.last()).contains(&u32::from(addr))
    }

    /// The bridge's own address: the first host address (docker's default
    /// gateway, libnetwork `ipam`).
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.first() + 1)
    }

    /// The lowest host address that is neither the gateway, the broadcast
    /// address nor in `taken`.
    pub fn next_free(&self, taken: &BTreeSet<Ipv4Addr>) -> Option<Ipv4Addr> {
        (self.first() + 2..self.last())
            .map(Ipv4Addr::from)
            .find(|a| !taken.contains(a))
    }
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

fn mask(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

/// Subnets tried in order for a network without `--subnet`: docker's
/// default pools (172.17–31.0.0/16, libnetwork `ipamutils`), then /24s of
/// 10.89.0.0/16.
pub fn candidates() -> impl Iterator<Item = Subnet> {
    let wide = (17..=31u8).map(|b| Subnet {
        addr: Ipv4Addr::new(172, b, 0, 0),
        prefix: 16,
    });
    let narrow = (0..=255u8).map(|c| Subnet {
        addr: Ipv4Addr::new(10, 89, c, 0),
        prefix: 24,
    });
    wide.chain(narrow)
}

/// The host's IPv4 routes (`/proc/net/route`, the main table) other than
/// the default route: a bridge's subnet must not overlap one, or the host
/// would lose the route (docker's "Pool overlaps with other one on this
/// address space" check, libnetwork `netutils.CheckRouteOverlaps`).
pub fn host_routes() -> Vec<(String, Subnet)> {
    let text = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
    parse_routes(&text)
}

/// Each route's interface and destination.
fn parse_routes(text: &str) -> Vec<(String, Subnet)> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            // Iface Destination Gateway Flags RefCnt Use Metric Mask ...
            let dest = u32::from_str_radix(f.get(1)?, 16).ok()?;
            let mask = u32::from_str_radix(f.get(7)?, 16).ok()?;
            // The hex of the address's bytes read as a little-endian u32.
            if mask == 0 {
                return None;
            }
            Some((
                f[0].to_string(),
                Subnet {
                    addr: Ipv4Addr::from(dest.to_le_bytes()),
                    prefix: mask.count_ones() as u8,
                },
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cidrs_and_refuses_host_bits() {
        let s = Subnet::parse("172.28.0.0/16").unwrap();
        assert_eq!(s.gateway(), Ipv4Addr::new(172, 28, 0, 1));
        assert!(matches!(
            Subnet::parse("172.28.0.1/16"),
            Err(SubnetError::HostBits { expected, .. }) if expected == "172.28.0.0/16"
        ));
        assert!(Subnet::parse("172.28.0.0").is_err());
        assert!(Subnet::parse("172.28.0.0/31").is_err());
        assert!(Subnet::parse("300.0.0.0/8").is_err());
    }

    #[test]
    fn overlap_is_symmetric_and_includes_nesting() {
        let a = Subnet::parse("10.0.0.0/8").unwrap();
        let b = Subnet::parse("10.1.2.0/24").unwrap();
        let c = Subnet::parse("192.0.2.0/24").unwrap();
        assert!(a.overlaps(&b) && b.overlaps(&a));
        assert!(!a.overlaps(&c) && !c.overlaps(&a));
    }

    #[test]
    fn next_free_skips_gateway_taken_and_broadcast() {
        let s = Subnet::parse("192.0.2.0/30").unwrap();
        assert_eq!(
            s.next_free(&BTreeSet::new()),
            Some(Ipv4Addr::new(192, 0, 2, 2))
        );
        let taken = BTreeSet::from([Ipv4Addr::new(192, 0, 2, 2)]);
        assert_eq!(s.next_free(&taken), None);
    }

    #[test]
    fn reads_the_kernels_route_table() {
        let table =
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
            eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
            eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n";
        assert_eq!(
            parse_routes(table),
            vec![("eth0".to_string(), Subnet::parse("192.0.2.0/24").unwrap())]
        );
    }
}
