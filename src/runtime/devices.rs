//! The container's `/dev`: a private tmpfs holding only the harmless
//! devices every Linux program expects, as docker gives by default.
//!
//! Nodes are created with mknod(2) (kiln runs as real root); when that is
//! refused (a user namespace, a nodev mount) the host's node is bind-mounted
//! instead, as runc does.

use rustix::fs::{self, AtFlags, FileType, Mode, OFlags};
use std::os::fd::{AsFd, OwnedFd};

/// Why `/dev` could not be populated.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// Neither mknod nor a bind from the host worked.
    #[error("failed to create /dev/{name}")]
    Node {
        /// The device name below /dev.
        name: &'static str,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A standard symlink could not be made.
    #[error("failed to create symlink /dev/{name}")]
    Symlink {
        /// The link name below /dev.
        name: &'static str,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// A character device node every container gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Device {
    /// Name below `/dev`.
    pub name: &'static str,
    /// Major number.
    pub major: u32,
    /// Minor number.
    pub minor: u32,
}

/// docker's default devices (moby `oci/devices_linux.go`, all `rw-rw-rw-`):
/// no disks, no memory, nothing with host-wide effect.
pub const DEFAULT_DEVICES: &[Device] = &[
    Device {
        name: "null",
        major: 1,
        minor: 3,
    },
    Device {
        name: "zero",
        major: 1,
        minor: 5,
    },
    Device {
        name: "full",
        major: 1,
        minor: 7,
    },
    Device {
        name: "random",
        major: 1,
        minor: 8,
    },
    Device {
        name: "urandom",
        major: 1,
        minor: 9,
    },
    Device {
        name: "tty",
        major: 5,
        minor: 0,
    },
];

/// The symlinks runc creates in `/dev` (`defaultSymlinks`; `core` only
/// when the host has `/proc/kcore`).
pub const DEFAULT_SYMLINKS: &[(&str, &str)] = &[
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
    ("ptmx", "pts/ptmx"),
    ("core", "/proc/kcore"),
];

/// Creates the default nodes and symlinks in the `/dev` directory `dev`.
pub fn populate(dev: &OwnedFd) -> Result<(), DeviceError> {
    for device in DEFAULT_DEVICES {
        create_node(dev, device)?;
    }
    for (name, target) in DEFAULT_SYMLINKS {
        // runc links /dev/core only where the kernel has /proc/kcore
        // (CONFIG_PROC_KCORE): never a dangling link.
        if *name == "core" && !std::path::Path::new(target).exists() {
            continue;
        }
        match fs::symlinkat(*target, dev, *name) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => {
                return Err(DeviceError::Symlink {
                    name,
                    source: e.into(),
                })
            }
        }
    }
    Ok(())
}

fn create_node(dev: &OwnedFd, device: &Device) -> Result<(), DeviceError> {
    let fail = |e: std::io::Error| DeviceError::Node {
        name: device.name,
        source: e,
    };
    let made = fs::mknodat(
        dev,
        device.name,
        FileType::CharacterDevice,
        Mode::from_raw_mode(0o666),
        fs::makedev(device.major, device.minor),
    );
    match made {
        Ok(()) => {
            // mknod's mode went through the umask; set it exactly.
            fs::chmodat(
                dev,
                device.name,
                Mode::from_raw_mode(0o666),
                AtFlags::empty(),
            )
            .map_err(|e| fail(e.into()))
        }
        Err(rustix::io::Errno::PERM | rustix::io::Errno::ACCESS) => {
            bind_host_node(dev, device).map_err(fail)
        }
        Err(e) => Err(fail(e.into())),
    }
}

/// Fallback when mknod is refused: bind the host's node onto an empty file.
fn bind_host_node(dev: &OwnedFd, device: &Device) -> std::io::Result<()> {
    let file = fs::openat(
        dev,
        device.name,
        OFlags::CREATE | OFlags::WRONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::from_raw_mode(0o666),
    )?;
    nix::mount::mount(
        Some(format!("/dev/{}", device.name).as_str()),
        super::confined::proc_fd_path(&file.as_fd()).as_str(),
        None::<&str>,
        nix::mount::MsFlags::MS_BIND,
        None::<&str>,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn populate_creates_nodes_and_links() {
        let dir = tempfile::tempdir().unwrap();
        let dev = fs::open(
            dir.path(),
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .unwrap();
        populate(&dev).unwrap();
        for d in DEFAULT_DEVICES {
            let st = fs::stat(dir.path().join(d.name)).unwrap();
            assert_eq!(
                FileType::from_raw_mode(st.st_mode),
                FileType::CharacterDevice,
                "{}",
                d.name
            );
            assert_eq!(st.st_mode & 0o777, 0o666, "{}", d.name);
            assert_eq!(
                (fs::major(st.st_rdev), fs::minor(st.st_rdev)),
                (d.major, d.minor)
            );
        }
        assert_eq!(
            std::fs::read_link(dir.path().join("ptmx")).unwrap(),
            std::path::Path::new("pts/ptmx")
        );
    }
}
