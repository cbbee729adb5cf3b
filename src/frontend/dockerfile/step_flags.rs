//! What `kiln build`'s flags add to a Dockerfile's steps: `--add-host`,
//! `--shm-size` and `--ulimit` on every RUN, `--no-cache-filter` on the
//! RUN and COPY/ADD steps of the stages it names.
//!
//! BuildKit's Dockerfile frontend puts them on each RUN's ExecOp
//! (moby/buildkit `frontend/dockerfile/dockerfile2llb/convert.go`,
//! `dispatchRun`: `llb.AddExtraHost`, a `/dev/shm` tmpfs mount of the
//! size asked, `llb.AddUlimit`), so they are part of the step's definition
//! and its cache key; `--no-cache-filter` is `llb.IgnoreCache` on the RUN
//! and COPY/ADD ops of stages `dockerui.Client.IsNoCache` names, which is
//! op metadata and never part of a key.

use super::Lowerer;
use crate::solver::{ExecMount, ExtraHost, MountKind};

/// The flags, parsed and checked by the caller.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StepFlags {
    /// `--add-host NAME:IP`, in order (`host-gateway` already resolved).
    pub extra_hosts: Vec<ExtraHost>,
    /// `--shm-size`: the size of RUN's `/dev/shm` (`None`: the runtime's
    /// 64 MiB, as BuildKit adds no mount for 0).
    pub shm_size: Option<u64>,
    /// `--ulimit`s in docker's syntax, already checked (`nofile=1024:2048`).
    pub ulimits: Vec<String>,
    /// `--no-cache-filter`: `None` when not given; the stage names
    /// otherwise (an empty list means every stage, as dockerui's
    /// `IsNoCache` treats an empty, non-nil list).
    pub no_cache_filter: Option<Vec<String>>,
}

impl StepFlags {
    /// Whether the stage named `name` (`None`: unnamed) never takes its
    /// RUN and COPY/ADD results from the cache. Stage names match without
    /// regard to case, as BuildKit's stage lookup does.
    pub fn ignores_cache(&self, name: Option<&str>) -> bool {
        match &self.no_cache_filter {
            None => false,
            Some(stages) if stages.is_empty() => true,
            Some(stages) => {
                let name = name.unwrap_or_default();
                stages.iter().any(|s| s.eq_ignore_ascii_case(name))
            }
        }
    }

    /// The `/dev/shm` mount `--shm-size` adds to each RUN: a tmpfs of that
    /// size, mounted after the step's own mounts as BuildKit adds it.
    pub(super) fn shm_mount(&self) -> Option<ExecMount> {
        self.shm_size.map(|size| ExecMount {
            input: None,
            dest: "/dev/shm".into(),
            selector: "/".into(),
            readonly: false,
            kind: MountKind::Tmpfs { size: Some(size) },
        })
    }
}

impl Lowerer<'_> {
    /// Whether stage `stage_index`'s RUN and COPY/ADD steps skip the cache
    /// (`--no-cache-filter`).
    pub(super) fn stage_ignores_cache(&self, stage_index: usize) -> bool {
        let name = self
            .df
            .stages
            .get(stage_index)
            .and_then(|s| s.name.as_deref());
        self.opts.step_flags.ignores_cache(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_cache_filter_matches_stage_names_like_buildkit() {
        let flags = |f: Option<&[&str]>| StepFlags {
            no_cache_filter: f.map(|v| v.iter().map(|s| s.to_string()).collect()),
            ..StepFlags::default()
        };
        assert!(!flags(None).ignores_cache(Some("build")));
        assert!(flags(Some(&[])).ignores_cache(Some("build")));
        assert!(flags(Some(&[])).ignores_cache(None));
        let some = flags(Some(&["Build", "test"]));
        assert!(some.ignores_cache(Some("build")));
        assert!(some.ignores_cache(Some("TEST")));
        assert!(!some.ignores_cache(Some("final")));
        assert!(!some.ignores_cache(None));
    }
}
