//! What `kiln run IMAGE` makes of an image before the runtime takes over:
//! the image itself ([`image`]: store lookup, `--pull`, a lease for the
//! container's life, the layer directories) and the process docker would
//! start from its config ([`process`]: ENTRYPOINT/CMD, Env, WorkingDir,
//! User with the command line's overrides); and the removal of `--rm`
//! containers whose kiln was killed ([`reap`]).
//!
//! **Architecture Invariant:** the runtime never learns what an image is:
//! this module turns a stored image into plain directories and a process
//! (which `cli::run` puts into a runtime spec with the command line's
//! flags), as `exec` does for RUN; `cache` never learns what a container
//! is beyond a lease.

pub mod image;
pub mod process;
pub mod reap;

pub use image::{find_or_pull, ImageSourceError, LeasedImage, PullPolicy, PullSource};
pub use process::{resolve, ProcessConfig, ProcessError, RunOverrides};
pub use reap::reap_dead_removals;
