//! The platform tests' toolchain image: gcc for amd64 and the arm64 cross
//! gcc from this machine's Debian packages (`testdata/platform/
//! toolchain.sh` copies their files, the libraries their binaries load
//! and busybox as `/bin/sh`), so a Dockerfile can cross-compile in a
//! `FROM --platform=$BUILDPLATFORM` stage without pulling anything.
//!
//! The tar takes about a minute to make, so it is made once and kept
//! under the target dir, named by the packages' versions and the script's
//! text: an upgraded package or an edited script makes a new one.

use super::kiln::Kiln;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;

const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/testdata/platform/toolchain.sh"
);

/// The packages whose versions name the cached tar (the script's list).
const PACKAGES: &[&str] = &[
    "gcc-12",
    "cpp-12",
    "binutils",
    "binutils-x86-64-linux-gnu",
    "libc6-dev",
    "libgcc-12-dev",
    "linux-libc-dev",
    "gcc-12-aarch64-linux-gnu",
    "cpp-12-aarch64-linux-gnu",
    "binutils-aarch64-linux-gnu",
    "libc6-dev-arm64-cross",
    "libgcc-12-dev-arm64-cross",
    "libc6-arm64-cross",
    "linux-libc-dev-arm64-cross",
    "libgcc-s1-arm64-cross",
    "busybox-static",
];

/// One maker at a time in this process (tests run in threads).
static MAKING: Mutex<()> = Mutex::new(());

/// The toolchain tar, made now unless a current one is cached.
pub fn toolchain_tar() -> PathBuf {
    let _one = MAKING.lock().unwrap_or_else(|p| p.into_inner());
    let versions = Command::new("dpkg-query")
        .args(["-W", "-f=${Package} ${Version}\\n"])
        .args(PACKAGES)
        .output()
        .expect("running dpkg-query");
    assert!(
        versions.status.success(),
        "the toolchain packages are not all installed (scripts/install-deps): {}",
        String::from_utf8_lossy(&versions.stderr)
    );
    let mut key = versions.stdout;
    key.extend_from_slice(&std::fs::read(SCRIPT).unwrap());
    let hex = super::archive::digest_of(&key);
    let hex = hex.trim_start_matches("sha256:");
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("kiln-test-toolchain");
    std::fs::create_dir_all(&dir).unwrap();
    let tar = dir.join(format!("{}.tar", &hex[..16]));
    if !tar.exists() {
        let status = Command::new("sh").arg(SCRIPT).arg(&tar).status().unwrap();
        assert!(status.success(), "{SCRIPT} failed");
    }
    tar
}

impl Kiln {
    /// Imports the toolchain image as `tag` (linux/amd64, the host's).
    pub fn import_toolchain(&self, tag: &str) {
        let tar = toolchain_tar();
        self.kiln(&["import", tar.to_str().unwrap(), tag]).ok();
    }
}
