//! Whether a platform's binaries can run here, and making them run: a
//! native architecture, or one the kernel's `binfmt_misc` hands to an
//! emulator (Debian's `qemu-user-static`).
//!
//! The check mirrors what BuildKit's `util/archutil` (`detect.go`,
//! `SupportedPlatforms`) learns by running a tiny binary per architecture:
//! kiln instead builds that binary's ELF header and asks whether an
//! enabled `binfmt_misc` entry's magic and mask claim it, as the kernel's
//! `fs/binfmt_misc.c` (`check_file`) would.
//!
//! Registration follows tonistiigi/binfmt (`cmd/binfmt/main.go`,
//! `install`): `binfmt_misc` mounted at `/proc/sys/fs/binfmt_misc` when
//! its `status` is missing, one line written to `register`, with the `F`
//! (fix-binary) flag so the interpreter is opened at registration and
//! works inside a container's mount namespace that lacks it. The line's
//! magic, mask and interpreter come from the system's own description
//! of its qemu packages (systemd's `binfmt.d/qemu-<arch>.conf`, else
//! `update-binfmts`' `/usr/share/binfmts/qemu-<arch>`), never from kiln.
//! Unlike tonistiigi/binfmt, the mount is left in place (as systemd's
//! automount would): a concurrent kiln may be reading it. Handlers the
//! system already had are never replaced or removed.

use std::io::Write;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Where the kernel's `binfmt_misc` is mounted.
const MOUNT: &str = "/proc/sys/fs/binfmt_misc";

/// systemd's `binfmt.d` directories, in its order of precedence.
const BINFMT_D: &[&str] = &["/etc/binfmt.d", "/run/binfmt.d", "/usr/lib/binfmt.d"];

/// `update-binfmts`' format descriptions (Debian).
const BINFMTS: &str = "/usr/share/binfmts";

/// Why a platform cannot run here.
#[derive(Debug, Error)]
pub enum BinfmtError {
    #[error("platform {platform} is not supported by kiln's emulation (no ELF machine known for {architecture:?})")]
    UnknownArchitecture {
        platform: String,
        architecture: String,
    },
    #[error("cannot run {platform} binaries: no binfmt_misc handler is registered and only root can register one (run as root, or register qemu-{qemu} yourself)")]
    NotRoot { platform: String, qemu: String },
    #[error("cannot run {platform} binaries: no emulator for qemu-{qemu} is installed (apt-get install qemu-user-static)")]
    NoEmulator { platform: String, qemu: String },
    #[error("mounting binfmt_misc at {MOUNT}")]
    Mount(#[source] std::io::Error),
    #[error("reading {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: no binfmt line for qemu-{qemu}")]
    BadDescription { path: PathBuf, qemu: String },
    #[error("registering {interpreter} for {platform} in {MOUNT}/register")]
    Register {
        platform: String,
        interpreter: String,
        #[source]
        source: std::io::Error,
    },
    #[error("registered qemu-{qemu} for {platform}, but binfmt_misc still does not run its binaries (is {MOUNT}/status disabled?)")]
    StillUnsupported { platform: String, qemu: String },
}

/// How a platform's binaries run here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Emulation {
    /// The CPU runs them.
    Native,
    /// `binfmt_misc` entry of this name (already there, or just
    /// registered by kiln) hands them to an emulator.
    Handler(String),
}

/// What identifies an architecture's executables: the ELF class, byte
/// order and `e_machine`, and qemu's name for it (its `qemu-<name>-static`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Machine {
    class64: bool,
    big_endian: bool,
    e_machine: u16,
    qemu: &'static str,
}

/// The ELF machine of an OCI architecture (containerd's names, as
/// tonistiigi/binfmt's `config.go` maps them to qemu's).
fn machine(architecture: &str) -> Option<Machine> {
    let m = |class64, big_endian, e_machine, qemu| Machine {
        class64,
        big_endian,
        e_machine,
        qemu,
    };
    Some(match architecture {
        "amd64" => m(true, false, 62, "x86_64"),
        "386" => m(false, false, 3, "i386"),
        "arm64" => m(true, false, 183, "aarch64"),
        "arm" => m(false, false, 40, "arm"),
        "ppc64le" => m(true, false, 21, "ppc64le"),
        "s390x" => m(true, true, 22, "s390x"),
        "riscv64" => m(true, false, 243, "riscv64"),
        "mips64le" => m(true, false, 8, "mips64el"),
        "loong64" => m(true, false, 258, "loongarch64"),
        _ => return None,
    })
}

/// The first 20 bytes of a static executable for `m` (what binfmt_misc
/// magics look at): `\x7fELF`, class, byte order, version 1, then
/// `e_type` = `ET_EXEC` and `e_machine` in that byte order.
fn elf_header(m: Machine) -> [u8; 20] {
    let mut h = [0u8; 20];
    h[..4].copy_from_slice(b"\x7fELF");
    h[4] = if m.class64 { 2 } else { 1 };
    h[5] = if m.big_endian { 2 } else { 1 };
    h[6] = 1;
    let (t, mach) = if m.big_endian {
        (2u16.to_be_bytes(), m.e_machine.to_be_bytes())
    } else {
        (2u16.to_le_bytes(), m.e_machine.to_le_bytes())
    };
    h[16..18].copy_from_slice(&t);
    h[18..20].copy_from_slice(&mach);
    h
}

/// One `binfmt_misc` entry as `/proc/sys/fs/binfmt_misc/<name>` shows it
/// (`enabled`, `interpreter ...`, `flags: ...`, `offset N`, `magic HEX`,
/// `mask HEX`); extension entries have no magic and match nothing here.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    enabled: bool,
    offset: usize,
    magic: Vec<u8>,
    mask: Option<Vec<u8>>,
}

fn parse_entry(text: &str) -> Option<Entry> {
    let mut entry = Entry {
        enabled: text.lines().next() == Some("enabled"),
        offset: 0,
        magic: Vec::new(),
        mask: None,
    };
    for line in text.lines() {
        let (key, value) = line.split_once(' ').unwrap_or((line, ""));
        match key {
            "offset" => entry.offset = value.trim().parse().ok()?,
            "magic" => entry.magic = hex(value.trim())?,
            "mask" => entry.mask = Some(hex(value.trim())?),
            _ => {}
        }
    }
    (!entry.magic.is_empty()).then_some(entry)
}

fn hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

impl Entry {
    /// The kernel's test: every magic byte equal under the mask.
    fn claims(&self, header: &[u8]) -> bool {
        self.enabled
            && self.magic.iter().enumerate().all(|(i, &magic)| {
                let mask = self
                    .mask
                    .as_ref()
                    .map_or(0xff, |m| m.get(i).copied().unwrap_or(0xff));
                header
                    .get(self.offset + i)
                    .is_some_and(|&b| (b ^ magic) & mask == 0)
            })
    }
}

/// The host's own architectures: its own, and 386 on amd64 (the kernel's
/// IA-32 emulation, as archutil finds on x86-64 hosts).
fn native(architecture: &str) -> bool {
    let host = crate::image::oci::host_architecture();
    architecture == host || (host == "amd64" && architecture == "386")
}

/// The name of an enabled `binfmt_misc` entry that runs `m`'s binaries.
fn handler(mount: &Path, m: Machine) -> Option<String> {
    if std::fs::read_to_string(mount.join("status")).ok()?.trim() != "enabled" {
        return None;
    }
    let header = elf_header(m);
    std::fs::read_dir(mount)
        .ok()?
        .flatten()
        .filter(|e| !matches!(e.file_name().to_str(), Some("register" | "status")))
        .find_map(|e| {
            let entry = parse_entry(&std::fs::read_to_string(e.path()).ok()?)?;
            entry
                .claims(&header)
                .then(|| e.file_name().to_string_lossy().into_owned())
        })
}

/// Whether `platform`'s (`linux/<architecture>[/variant]`) binaries run
/// here now, natively or through a registered handler. Never changes
/// anything.
pub fn can_execute(architecture: &str) -> bool {
    native(architecture)
        || machine(architecture).is_some_and(|m| handler(Path::new(MOUNT), m).is_some())
}

/// Makes `platform`'s binaries run here: nothing when native or already
/// handled; as root, mounts `binfmt_misc` if needed and registers the
/// system's qemu for it. `platform` is only for messages.
pub fn ensure(platform: &str, architecture: &str) -> Result<Emulation, BinfmtError> {
    if native(architecture) {
        return Ok(Emulation::Native);
    }
    let m = machine(architecture).ok_or_else(|| BinfmtError::UnknownArchitecture {
        platform: platform.to_string(),
        architecture: architecture.to_string(),
    })?;
    let mount = Path::new(MOUNT);
    if let Some(name) = handler(mount, m) {
        return Ok(Emulation::Handler(name));
    }
    if !nix::unistd::geteuid().is_root() {
        return Err(BinfmtError::NotRoot {
            platform: platform.to_string(),
            qemu: m.qemu.to_string(),
        });
    }
    let no_emulator = || BinfmtError::NoEmulator {
        platform: platform.to_string(),
        qemu: m.qemu.to_string(),
    };
    let line = registration(m.qemu)?.ok_or_else(no_emulator)?;
    if !Path::new(&line.interpreter).exists() {
        return Err(no_emulator());
    }
    if !mount.join("status").exists() {
        nix::mount::mount(
            Some("binfmt_misc"),
            mount,
            Some("binfmt_misc"),
            nix::mount::MsFlags::empty(),
            None::<&str>,
        )
        .map_err(|e| BinfmtError::Mount(e.into()))?;
        tracing::info!("mounted binfmt_misc at {MOUNT}");
        // The system's own handlers may have been waiting for the mount.
        if let Some(name) = handler(mount, m) {
            return Ok(Emulation::Handler(name));
        }
    }
    let written = std::fs::OpenOptions::new()
        .write(true)
        .open(mount.join("register"))
        .and_then(|mut f| f.write_all(line.text.as_bytes()));
    match written {
        Ok(()) => {
            tracing::info!(interpreter = %line.interpreter, "registered binfmt_misc handler for {platform}")
        }
        // Another kiln registered the same name meanwhile.
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
        Err(source) => {
            return Err(BinfmtError::Register {
                platform: platform.to_string(),
                interpreter: line.interpreter,
                source,
            })
        }
    }
    handler(mount, m)
        .map(Emulation::Handler)
        .ok_or_else(|| BinfmtError::StillUnsupported {
            platform: platform.to_string(),
            qemu: m.qemu.to_string(),
        })
}

/// A line for `binfmt_misc/register` and its interpreter.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Registration {
    text: String,
    interpreter: String,
}

/// The system's description of `qemu-<qemu>` as a register line with the
/// `F` flag; `None` when the system has none (qemu not installed).
fn registration(qemu: &str) -> Result<Option<Registration>, BinfmtError> {
    for dir in BINFMT_D {
        let path = Path::new(dir).join(format!("qemu-{qemu}.conf"));
        if let Some(text) = read_optional(&path)? {
            let line = text
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(';'))
                .and_then(with_fix_binary)
                .ok_or_else(|| BinfmtError::BadDescription {
                    path: path.clone(),
                    qemu: qemu.to_string(),
                })?;
            return Ok(Some(line));
        }
    }
    let path = Path::new(BINFMTS).join(format!("qemu-{qemu}"));
    match read_optional(&path)? {
        Some(text) => {
            from_update_binfmts(&text)
                .map(Some)
                .ok_or_else(|| BinfmtError::BadDescription {
                    path,
                    qemu: qemu.to_string(),
                })
        }
        None => Ok(None),
    }
}

fn read_optional(path: &Path) -> Result<Option<String>, BinfmtError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(BinfmtError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// A `binfmt.d` line (`:name:type:offset:magic:mask:interpreter:flags`,
/// the first character being the separator) with `F` added to its flags.
fn with_fix_binary(line: &str) -> Option<Registration> {
    let sep = line.chars().next()?;
    let fields: Vec<&str> = line[sep.len_utf8()..].split(sep).collect();
    if fields.len() < 6 || fields[0].is_empty() || fields[5].is_empty() {
        return None;
    }
    let mut flags = fields.get(6).copied().unwrap_or("").to_string();
    if !flags.contains('F') {
        flags.push('F');
    }
    let text = format!("{sep}{}{sep}{flags}", fields[..6].join(&sep.to_string()));
    Some(Registration {
        text,
        interpreter: fields[5].to_string(),
    })
}

/// An `update-binfmts` description (`interpreter`, `magic`, `offset`,
/// `mask`, `fix_binary`, `preserve`, `credentials` lines) as a register
/// line, always with `F`.
fn from_update_binfmts(text: &str) -> Option<Registration> {
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(' ').map(str::trim))
    };
    let interpreter = field("interpreter")?;
    let magic = field("magic")?;
    let mut flags = String::from("F");
    if field("preserve") == Some("yes") {
        flags.push('P');
    }
    if field("credentials") == Some("yes") {
        flags.push('C');
    }
    let text = format!(
        ":{}:M:{}:{magic}:{}:{interpreter}:{flags}",
        Path::new(interpreter)
            .file_name()
            .map(|n| format!("kiln-{}", n.to_string_lossy()))
            .unwrap_or_default(),
        field("offset").unwrap_or(""),
        field("mask").unwrap_or(""),
    );
    Some(Registration {
        text,
        interpreter: interpreter.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `/proc/sys/fs/binfmt_misc/qemu-aarch64` as Debian's package makes it.
    const AARCH64: &str = "enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: POF\noffset 0\nmagic 7f454c460201010000000000000000000200b700\nmask ffffffffffffff00fffffffffffffffffeffffff\n";

    #[test]
    fn an_aarch64_handler_claims_arm64_binaries_only() {
        let entry = parse_entry(AARCH64).unwrap();
        assert!(entry.claims(&elf_header(machine("arm64").unwrap())));
        for other in ["amd64", "arm", "riscv64", "s390x", "ppc64le"] {
            assert!(
                !entry.claims(&elf_header(machine(other).unwrap())),
                "{other}"
            );
        }
    }

    #[test]
    fn a_disabled_or_extension_entry_claims_nothing() {
        let disabled = AARCH64.replacen("enabled", "disabled", 1);
        assert!(!parse_entry(&disabled)
            .unwrap()
            .claims(&elf_header(machine("arm64").unwrap())));
        assert_eq!(
            parse_entry("enabled\ninterpreter /usr/bin/jexec\nflags: \nextension .jar\n"),
            None
        );
    }

    #[test]
    fn s390x_headers_are_big_endian() {
        let h = elf_header(machine("s390x").unwrap());
        assert_eq!(&h[4..7], &[2, 2, 1]);
        assert_eq!(&h[16..20], &[0, 2, 0, 22]);
    }

    #[test]
    fn binfmt_d_lines_gain_the_fix_binary_flag_once() {
        let r = with_fix_binary(":qemu-arm:M::\\x7fELF:\\xff\\xff:/usr/bin/qemu-arm-static:OC")
            .unwrap();
        assert_eq!(
            r.text,
            ":qemu-arm:M::\\x7fELF:\\xff\\xff:/usr/bin/qemu-arm-static:OCF"
        );
        assert_eq!(r.interpreter, "/usr/bin/qemu-arm-static");
        let r = with_fix_binary(":qemu-arm:M::\\x7fELF:\\xff:/q:OPF").unwrap();
        assert!(r.text.ends_with(":OPF"));
        assert_eq!(with_fix_binary(":name:M::magic"), None);
    }

    #[test]
    fn update_binfmts_descriptions_become_register_lines() {
        let text = "package qemu-user-static\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nmagic \\x7f\\x45\noffset 0\nmask \\xff\\xff\ncredentials no\nfix_binary yes\npreserve yes\n";
        let r = from_update_binfmts(text).unwrap();
        assert_eq!(
            r.text,
            ":kiln-aarch64-binfmt-P:M:0:\\x7f\\x45:\\xff\\xff:/usr/libexec/qemu-binfmt/aarch64-binfmt-P:FP"
        );
    }

    #[test]
    fn the_host_architecture_is_native() {
        assert_eq!(
            ensure("linux/host", crate::image::oci::host_architecture()).unwrap(),
            Emulation::Native
        );
    }
}
