//! What `kiln run IMAGE` makes of an image before the runtime takes over:
//! the image itself ([`image`]: store lookup, `--pull`, a lease for the
//! container's life, the layer directories) and the process docker would
//! start from its config ([`process`]: ENTRYPOINT/CMD, Env, WorkingDir,
//! User with the command line's overrides); and the removal of `--rm`
//! containers whose kiln was killed ([`reap`]).
//!
//! Containers that outlive a command: their record in the store and its
//! reconciliation when the process waiting for them died ([`state`]),
//! the monitor that runs a detached one ([`monitor`], writing the
//! json-file [`log`], relaying a `-i` one's [`stdin`] from its FIFO, keeping a `--rm` one
//! until its [`waiters`] read its exit, refreshing its user networks'
//! [`hosts`] files at each start), and the lifecycle commands ([`lifecycle`]: start,
//! stop, kill, wait, rm, rename, prune; `pause`/`unpause` through the
//! cgroup [`freezer`]); `exec` and `top` in a running one ([`exec`]), `diff` ([`changes`]) `commit` ([`commit`]) and `cp` ([`copy`]).
//!
//! **Architecture Invariant:** this module is the only place where images
//! meet the runtime. `runtime` gets plain directories and an argv from
//! here and never learns what an image is; `cache` never learns what a
//! container is beyond a lease.

pub mod changes;
pub mod commit;
pub mod copy;
pub mod exec;
pub mod freezer;
pub mod hosts;
pub mod image;
pub mod lifecycle;
pub mod log;
pub mod monitor;
pub mod process;
pub mod reap;
pub mod state;
pub mod stats;
pub mod stdin;
pub mod waiters;

pub use image::{
    ensure_runnable, find_or_pull, image_platform, ImageSourceError, LeasedImage, PullPolicy,
    PullSource,
};
pub use process::{resolve, ProcessConfig, ProcessError, RunOverrides};
pub use reap::reap_dead_removals;
