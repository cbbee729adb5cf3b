//! Volumes: directories that outlive containers (docker's `local` driver).
//!
//! A named or anonymous volume is `<root>/volumes/<name>/_data` plus its
//! metadata (`volume.json`: driver, labels, options, creation time), the
//! layout of moby's `volume/local` driver. [`store`] creates, lists and
//! removes them; [`mount_spec`] reads docker's `-v` and `--mount` syntax;
//! [`copy_up`] fills a new volume with the image's files at its mount
//! point (docker's rule); [`usage`] records which volumes a container
//! mounts, in the container's own state dir, so `volume rm` can refuse a
//! volume in use and `--volumes-from` can repeat another container's.
//!
//! **Architecture Invariant:** a volume's data is never written by kiln
//! after it was created, except by the copy-up into an empty volume; the
//! runtime sees a volume only as a bind mount of a host directory.

pub mod copy_up;
pub mod mount_spec;
pub mod store;
pub mod usage;

pub use mount_spec::{parse_mount, parse_volume, MountRequest, SpecError};
pub use store::{Volume, VolumeError, VolumeStore, ANONYMOUS_LABEL};
pub use usage::{AttachedVolume, ContainerVolumes};
