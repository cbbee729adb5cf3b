//! Static binaries for other architectures, made with the host's cross
//! compilers (`gcc-aarch64-linux-gnu`, `libc6-dev-arm64-cross`), and
//! one-file images holding them: what the platform tests run under
//! emulation without pulling anything.

use super::kiln::Kiln;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The probe's source: prints `uname -m`, writes it to a file, or prints
/// a file (see the file).
const PROBE_C: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/platform/probe.c");

/// The C compiler for an OCI architecture.
pub fn compiler(architecture: &str) -> &'static str {
    match architecture {
        "amd64" => "gcc",
        "arm64" => "aarch64-linux-gnu-gcc",
        other => panic!("no cross compiler for {other} in the test machine's packages"),
    }
}

/// The probe compiled statically for `architecture` into `dir/probe`.
pub fn probe(dir: &Path, architecture: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let out = dir.join("probe");
    let cc = compiler(architecture);
    let status = Command::new(cc)
        .args(["-static", "-Os", "-o"])
        .arg(&out)
        .arg(PROBE_C)
        .status()
        .unwrap_or_else(|e| panic!("running {cc} (scripts/install-deps installs it): {e}"));
    assert!(status.success(), "{cc} failed on {PROBE_C}");
    out
}

impl Kiln {
    /// Imports an image for `linux/<architecture>` holding only `/probe`,
    /// tagged `tag`.
    pub fn import_probe(&self, architecture: &str, tag: &str) {
        let dir = self.path(&format!("probe-{architecture}"));
        probe(&dir, architecture);
        let tar = self.path(&format!("probe-{architecture}.tar"));
        let status = Command::new("tar")
            .arg("-C")
            .arg(&dir)
            .arg("-cf")
            .arg(&tar)
            .arg("probe")
            .status()
            .unwrap();
        assert!(status.success());
        let platform = format!("linux/{architecture}");
        self.kiln(&[
            "import",
            "--platform",
            &platform,
            tar.to_str().unwrap(),
            tag,
        ])
        .ok();
    }
}
