//! `kiln build`'s flags that change how every step runs: `--add-host`,
//! `--shm-size`, `--ulimit` and `--no-cache-filter`, parsed as buildx
//! parses them (docker/buildx `commands/build.go`, `build/utils.go`) into
//! the lowering's [`StepFlags`].

use crate::frontend::dockerfile::StepFlags;
use crate::runtime::rlimits;
use crate::solver::ExtraHost;
use clap::Args;
use std::net::IpAddr;

/// docker's name for the host in `--add-host NAME:host-gateway`.
const HOST_GATEWAY: &str = "host-gateway";

/// The flags, as given.
#[derive(Debug, Args, Default)]
pub struct StepArgs {
    /// Add a line to every RUN's /etc/hosts: NAME:IP or NAME=IP (IPv6 may
    /// be in brackets; host-gateway is the host's address); may be
    /// repeated.
    #[arg(long = "add-host", value_name = "NAME:IP")]
    pub add_host: Vec<String>,
    /// Size of every RUN's /dev/shm (e.g. 128m; default 64m).
    #[arg(long = "shm-size", value_name = "SIZE")]
    pub shm_size: Option<String>,
    /// A resource limit of every RUN, in docker's syntax
    /// (nofile=1024:2048); may be repeated.
    #[arg(long, value_name = "NAME=SOFT[:HARD]")]
    pub ulimit: Vec<String>,
    /// Do not take these stages' RUN and COPY/ADD steps from the cache
    /// (comma-separated or repeated; empty: every stage).
    #[arg(long = "no-cache-filter", value_name = "STAGE[,STAGE]")]
    pub no_cache_filter: Vec<String>,
}

impl StepArgs {
    /// The parsed flags, or a usage error naming the flag and the value.
    /// `host_gateway` gives the host's address when some `--add-host`
    /// asks for it (see [`crate::runtime::slirp::host_address`]).
    pub fn parse(
        &self,
        host_gateway: impl Fn() -> std::io::Result<IpAddr>,
    ) -> Result<StepFlags, String> {
        let extra_hosts = self
            .add_host
            .iter()
            .map(|v| parse_add_host(v, &host_gateway))
            .collect::<Result<_, _>>()?;
        let shm_size = match self.shm_size.as_deref() {
            None => None,
            Some(v) => match crate::units::ram_in_bytes(v) {
                // BuildKit adds no /dev/shm mount for 0 (`dispatchRun`:
                // `if dopt.shmSize > 0`).
                Some(0) => None,
                Some(n) => Some(n),
                None => {
                    return Err(format!(
                        "invalid --shm-size {v:?}: expected a size such as 64m or 1g"
                    ))
                }
            },
        };
        let ulimits = rlimits::parse_ulimits(&self.ulimit)
            .map_err(|e| format!("invalid --ulimit: {e}", e = crate::error_chain::Chain(&e)))?
            .iter()
            .map(|l| l.to_string())
            .collect();
        // buildx joins the values with commas into the frontend's
        // `no-cache` option, which dockerui splits again; an empty value
        // means every stage (docker/buildx `build/opt.go`; moby/buildkit
        // `frontend/dockerui/config.go`, `keyNoCache`).
        let no_cache_filter = if self.no_cache_filter.is_empty() {
            None
        } else {
            let joined = self.no_cache_filter.join(",");
            Some(if joined.is_empty() {
                Vec::new()
            } else {
                joined.split(',').map(str::to_string).collect()
            })
        };
        Ok(StepFlags {
            extra_hosts,
            shm_size,
            ulimits,
            no_cache_filter,
        })
    }
}

/// One `--add-host` as buildx reads it (docker/buildx `build/utils.go`,
/// `toBuildkitExtraHosts`): split at the first `=`, else the first `:`
/// (so `h:::1` is `h` at `::1`); `host-gateway` is the host's address;
/// otherwise an IP address, brackets around it allowed. The address is
/// written as Go prints it (`net.IP.String`: lower-case, `::` shortened,
/// an IPv4-mapped address as IPv4).
fn parse_add_host(
    value: &str,
    host_gateway: &impl Fn() -> std::io::Result<IpAddr>,
) -> Result<ExtraHost, String> {
    let bad = |why: &str| format!("invalid --add-host {value:?}: {why}");
    let (host, ip) = value
        .split_once('=')
        .or_else(|| value.split_once(':'))
        .filter(|(h, ip)| !h.is_empty() && !ip.is_empty())
        .ok_or_else(|| bad("expected NAME:IP or NAME=IP"))?;
    let ip: IpAddr = if ip == HOST_GATEWAY {
        host_gateway().map_err(|e| {
            bad(&format!(
                "the host has no address a RUN step can reach: {e}",
                e = crate::error_chain::Chain(&e)
            ))
        })?
    } else {
        let bare = ip
            .strip_prefix('[')
            .and_then(|i| i.strip_suffix(']'))
            .unwrap_or(ip);
        bare.parse()
            .map_err(|_| bad(&format!("{ip:?} is not an IP address or {HOST_GATEWAY}")))?
    };
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    Ok(ExtraHost {
        host: host.to_string(),
        ip: ip.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gateway() -> std::io::Result<IpAddr> {
        Ok("192.0.2.10".parse().unwrap())
    }

    fn host(v: &str) -> Result<(String, String), String> {
        parse_add_host(v, &gateway).map(|h| (h.host, h.ip))
    }

    #[test]
    fn add_host_takes_buildx_forms() {
        let ok = |h: &str, ip: &str| Ok((h.to_string(), ip.to_string()));
        assert_eq!(host("db:192.0.2.7"), ok("db", "192.0.2.7"));
        assert_eq!(host("db=192.0.2.7"), ok("db", "192.0.2.7"));
        assert_eq!(host("gw:host-gateway"), ok("gw", "192.0.2.10"));
        assert_eq!(host("v6:[2001:DB8::1]"), ok("v6", "2001:db8::1"));
        assert_eq!(host("v6=2001:db8:0:0:0:0:0:1"), ok("v6", "2001:db8::1"));
        assert_eq!(host("v6:::1"), ok("v6", "::1"));
        assert_eq!(host("m:::ffff:192.0.2.1"), ok("m", "192.0.2.1"));
        for bad in [
            "db",
            "db:",
            ":1.2.3.4",
            "db:300.1.1.1",
            "db:[1.2.3.4",
            "db:name",
        ] {
            let e = host(bad).unwrap_err();
            assert!(e.contains("--add-host") && e.contains(bad), "{e}");
        }
    }

    #[test]
    fn host_gateway_failure_names_the_flag() {
        let none = || Err(std::io::Error::from_raw_os_error(libc::ENETUNREACH));
        let e = parse_add_host("gw:host-gateway", &none).unwrap_err();
        assert!(e.contains("--add-host \"gw:host-gateway\""), "{e}");
    }

    #[test]
    fn sizes_limits_and_filters() {
        let args = StepArgs {
            shm_size: Some("128m".into()),
            ulimit: vec![
                "nofile=1024:2048".into(),
                "nproc=10".into(),
                "nofile=5".into(),
            ],
            no_cache_filter: vec!["a,b".into(), "c".into()],
            ..StepArgs::default()
        };
        let f = args.parse(gateway).unwrap();
        assert_eq!(f.shm_size, Some(128 << 20));
        // A later --ulimit for the same name replaces the earlier (docker).
        assert_eq!(f.ulimits, ["nofile=5:5", "nproc=10:10"]);
        assert_eq!(
            f.no_cache_filter,
            Some(vec!["a".into(), "b".into(), "c".into()])
        );
        let all = StepArgs {
            no_cache_filter: vec![String::new()],
            ..StepArgs::default()
        };
        assert_eq!(all.parse(gateway).unwrap().no_cache_filter, Some(vec![]));
        let zero = StepArgs {
            shm_size: Some("0".into()),
            ..StepArgs::default()
        };
        assert_eq!(zero.parse(gateway).unwrap().shm_size, None);
        for (args, flag) in [
            (
                StepArgs {
                    shm_size: Some("lots".into()),
                    ..StepArgs::default()
                },
                "--shm-size \"lots\"",
            ),
            (
                StepArgs {
                    ulimit: vec!["nofiles=1".into()],
                    ..StepArgs::default()
                },
                "--ulimit",
            ),
            (
                StepArgs {
                    ulimit: vec!["nofile=2:1".into()],
                    ..StepArgs::default()
                },
                "--ulimit",
            ),
        ] {
            let e = args.parse(gateway).unwrap_err();
            assert!(e.contains(flag), "{e}");
        }
    }
}
