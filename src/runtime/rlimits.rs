//! Resource limits of a container process: `--ulimit name=soft[:hard]`
//! parsing with Docker's rules (docker/go-units `ParseUlimit`) and
//! applying them with `setrlimit` in the container's init.
//!
//! # Defaults
//! kiln sets no limit of its own: a container inherits kiln's limits, as a
//! BuildKit `RUN` step inherits buildkitd's (BuildKit clears the
//! `RLIMIT_NOFILE` 1024:1024 that containerd's default spec would set, see
//! containerd/cri#515). `docker run` likewise passes dockerd's own limits
//! on unless `--default-ulimit`/`--ulimit` is given; with Docker's stock
//! systemd unit (`LimitNOFILE=infinity`) that shows as `nofile`
//! 1048576:1048576 on most hosts. Callers wanting that exact value pass
//! `--ulimit nofile=1048576`.

use std::fmt;

use nix::errno::Errno;
use nix::sys::resource::{getrlimit, setrlimit, Resource};

/// Errors from parsing or applying rlimits.
#[derive(Debug, thiserror::Error)]
pub enum RlimitError {
    /// Not of the form `name=value`.
    #[error("invalid ulimit argument: {0}")]
    Syntax(String),
    /// A name Docker does not know.
    #[error("invalid ulimit type: {0}")]
    UnknownName(String),
    /// More than `soft:hard`.
    #[error("too many limit value arguments - {0}, can only have up to two, `soft[:hard]`")]
    TooManyValues(String),
    /// A value that is not an integer (or -1 for unlimited).
    #[error("invalid ulimit value {value:?} in {arg}")]
    BadValue {
        /// The value.
        value: String,
        /// The whole argument.
        arg: String,
    },
    /// Soft above hard.
    #[error(
        "ulimit soft limit must be less than or equal to hard limit: {soft} > {hard} in {arg}"
    )]
    SoftAboveHard {
        /// Soft value as given.
        soft: String,
        /// Hard value as given.
        hard: String,
        /// The whole argument.
        arg: String,
    },
    /// `setrlimit` failed; raising a hard limit needs CAP_SYS_RESOURCE.
    #[error("failed to set rlimit {0}")]
    Set(RlimitResource, #[source] Errno),
}

macro_rules! resources {
    ($($variant:ident => $name:literal, $libc:ident;)*) => {
        /// A resource `--ulimit` can limit, named as Docker names it.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum RlimitResource {
            $(
                #[doc = concat!("`", $name, "` (`", stringify!($libc), "`)")]
                $variant,
            )*
        }

        impl RlimitResource {
            /// Every resource, in Docker's name order.
            pub const ALL: &'static [RlimitResource] = &[$(RlimitResource::$variant,)*];

            /// Docker's name (`nofile`).
            pub fn name(self) -> &'static str {
                match self {
                    $(RlimitResource::$variant => $name,)*
                }
            }

            fn raw(self) -> Resource {
                match self {
                    $(RlimitResource::$variant => Resource::$libc,)*
                }
            }
        }
    };
}

resources! {
    Core => "core", RLIMIT_CORE;
    Cpu => "cpu", RLIMIT_CPU;
    Data => "data", RLIMIT_DATA;
    Fsize => "fsize", RLIMIT_FSIZE;
    Locks => "locks", RLIMIT_LOCKS;
    Memlock => "memlock", RLIMIT_MEMLOCK;
    Msgqueue => "msgqueue", RLIMIT_MSGQUEUE;
    Nice => "nice", RLIMIT_NICE;
    Nofile => "nofile", RLIMIT_NOFILE;
    Nproc => "nproc", RLIMIT_NPROC;
    Rss => "rss", RLIMIT_RSS;
    Rtprio => "rtprio", RLIMIT_RTPRIO;
    Rttime => "rttime", RLIMIT_RTTIME;
    Sigpending => "sigpending", RLIMIT_SIGPENDING;
    Stack => "stack", RLIMIT_STACK;
}

impl fmt::Display for RlimitResource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One limit to set; `u64::MAX` (`RLIM_INFINITY`) is unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rlimit {
    /// What is limited.
    pub resource: RlimitResource,
    /// Soft limit, the one the kernel enforces.
    pub soft: u64,
    /// Hard limit, the ceiling for the soft one.
    pub hard: u64,
}

impl fmt::Display for Rlimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |v: u64| {
            if v == libc::RLIM_INFINITY {
                "-1".to_string()
            } else {
                v.to_string()
            }
        };
        write!(
            f,
            "{}={}:{}",
            self.resource,
            show(self.soft),
            show(self.hard)
        )
    }
}

/// An integer as Go's `ParseInt(s, 10, 64)` reads it; -1 is unlimited.
fn parse_value(value: &str, arg: &str) -> Result<u64, RlimitError> {
    match value.parse::<i64>() {
        Ok(-1) => Ok(libc::RLIM_INFINITY),
        Ok(n) if n >= 0 => Ok(n as u64),
        _ => Err(RlimitError::BadValue {
            value: value.to_string(),
            arg: arg.to_string(),
        }),
    }
}

/// Parses one `--ulimit` value, `name=soft[:hard]`; without a hard value
/// the hard limit equals the soft one (Docker's rule). Names are lower
/// case as in Docker.
pub fn parse_ulimit(arg: &str) -> Result<Rlimit, RlimitError> {
    let (name, values) = arg
        .split_once('=')
        .ok_or_else(|| RlimitError::Syntax(arg.to_string()))?;
    let resource = RlimitResource::ALL
        .iter()
        .copied()
        .find(|r| r.name() == name)
        .ok_or_else(|| RlimitError::UnknownName(name.to_string()))?;
    let parts: Vec<&str> = values.split(':').collect();
    let (soft_text, hard_text) = match parts.as_slice() {
        [soft] => (*soft, *soft),
        [soft, hard] => (*soft, *hard),
        _ => return Err(RlimitError::TooManyValues(values.to_string())),
    };
    let soft = parse_value(soft_text, arg)?;
    let hard = parse_value(hard_text, arg)?;
    if soft > hard {
        return Err(RlimitError::SoftAboveHard {
            soft: soft_text.to_string(),
            hard: hard_text.to_string(),
            arg: arg.to_string(),
        });
    }
    Ok(Rlimit {
        resource,
        soft,
        hard,
    })
}

/// Parses every `--ulimit` flag; a later flag for the same resource
/// replaces an earlier one, as Docker keeps them in a map by name.
pub fn parse_ulimits(args: &[String]) -> Result<Vec<Rlimit>, RlimitError> {
    let mut out: Vec<Rlimit> = Vec::new();
    for arg in args {
        let limit = parse_ulimit(arg)?;
        match out.iter_mut().find(|l| l.resource == limit.resource) {
            Some(existing) => *existing = limit,
            None => out.push(limit),
        }
    }
    Ok(out)
}

/// Sets each limit on the calling process with `setrlimit`. Raising a hard
/// limit needs CAP_SYS_RESOURCE, so call it before the capabilities are
/// dropped. Allocation-free: safe between `fork` and `execve`.
pub fn apply(limits: &[Rlimit]) -> Result<(), RlimitError> {
    for limit in limits {
        setrlimit(limit.resource.raw(), limit.soft, limit.hard)
            .map_err(|e| RlimitError::Set(limit.resource, e))?;
    }
    Ok(())
}

/// The calling process's current (soft, hard) limit for `resource`.
pub fn current(resource: RlimitResource) -> Result<(u64, u64), Errno> {
    getrlimit(resource.raw())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::child_probe::run_in_child;

    /// One parse: argument → Ok(display form) or Err(message).
    fn check(arg: &str, expected: Result<&str, &str>) {
        let got = parse_ulimit(arg)
            .map(|l| l.to_string())
            .map_err(|e| e.to_string());
        let expected = expected.map(str::to_string).map_err(str::to_string);
        assert_eq!(got, expected, "--ulimit {arg}");
    }

    #[test]
    fn ulimit_values_parse_like_docker() {
        check("nofile=1024", Ok("nofile=1024:1024"));
        check("nofile=1024:4096", Ok("nofile=1024:4096"));
        check("nproc=-1", Ok("nproc=-1:-1"));
        check("core=0:-1", Ok("core=0:-1"));
        check("stack=8388608:-1", Ok("stack=8388608:-1"));
        check("nofile", Err("invalid ulimit argument: nofile"));
        check("files=10", Err("invalid ulimit type: files"));
        check("NOFILE=10", Err("invalid ulimit type: NOFILE"));
        check(
            "nofile=1:2:3",
            Err("too many limit value arguments - 1:2:3, can only have up to two, `soft[:hard]`"),
        );
        check(
            "nofile=2048:1024",
            Err("ulimit soft limit must be less than or equal to hard limit: 2048 > 1024 in nofile=2048:1024"),
        );
        check("nofile=-1:1024", Err("ulimit soft limit must be less than or equal to hard limit: -1 > 1024 in nofile=-1:1024"));
        check(
            "nofile=lots",
            Err("invalid ulimit value \"lots\" in nofile=lots"),
        );
        check("nofile=-2", Err("invalid ulimit value \"-2\" in nofile=-2"));
    }

    #[test]
    fn later_flags_replace_earlier_ones() {
        let args: Vec<String> = ["nofile=10", "nproc=5", "nofile=20:30"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let limits = parse_ulimits(&args).expect("valid");
        let shown: Vec<String> = limits.iter().map(Rlimit::to_string).collect();
        assert_eq!(shown, ["nofile=20:30", "nproc=5:5"]);
    }

    #[test]
    fn all_fifteen_docker_names_are_known() {
        assert_eq!(RlimitResource::ALL.len(), 15);
        for r in RlimitResource::ALL {
            assert!(parse_ulimit(&format!("{}=1", r.name())).is_ok(), "{r}");
        }
    }

    #[test]
    fn apply_sets_and_raises_limits() {
        let limits =
            parse_ulimits(&["nofile=100:200".to_string(), "core=0:-1".to_string()]).expect("valid");
        let out = run_in_child(|| {
            if apply(&limits).is_err() {
                return [1, 0, 0, 0, 0];
            }
            match (
                current(RlimitResource::Nofile),
                current(RlimitResource::Core),
            ) {
                (Ok((s, h)), Ok((cs, ch))) => [0, s as i64, h as i64, cs as i64, ch as i64],
                _ => [2, 0, 0, 0, 0],
            }
        });
        assert_eq!(out, [0, 100, 200, 0, libc::RLIM_INFINITY as i64]);
    }

    #[test]
    fn raising_a_hard_limit_without_cap_sys_resource_fails() {
        let limits = [Rlimit {
            resource: RlimitResource::Nofile,
            soft: 64,
            hard: 128,
        }];
        let raise = [Rlimit {
            resource: RlimitResource::Nofile,
            soft: 64,
            hard: 256,
        }];
        let caps = crate::runtime::caps::docker_default_caps();
        let out = run_in_child(|| {
            if apply(&limits).is_err() || crate::runtime::caps::apply_capabilities(&caps).is_err() {
                return [1, 0];
            }
            match apply(&raise) {
                Err(RlimitError::Set(_, errno)) => [0, errno as i64],
                _ => [2, 0],
            }
        });
        assert_eq!(out, [0, libc::EPERM as i64]);
    }
}
