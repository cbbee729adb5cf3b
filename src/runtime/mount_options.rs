//! mount(8)-style option lists (`ro,nosuid,size=64m`) split the way
//! mount(8) and runc split them: words naming a generic mount flag become
//! [`MsFlags`], everything else is the filesystem's own data string.
//!
//! A later word overrides an earlier one (`noexec,exec` is `exec`), so a
//! caller can put its defaults first and the user's options after them,
//! as docker's daemon does for `--tmpfs` (moby/moby daemon/oci_linux.go:
//! `noexec,nosuid,nodev` then the user's list, merged by
//! moby/sys/mount `MergeTmpfsOptions`).

use nix::mount::MsFlags;

/// The flag words and what each sets (`true`) or clears (`false`); the
/// table of moby/sys/mount `flags_linux.go` for the flags a fresh mount
/// takes.
const FLAG_WORDS: &[(&str, bool, MsFlags)] = &[
    ("ro", true, MsFlags::MS_RDONLY),
    ("rw", false, MsFlags::MS_RDONLY),
    ("nosuid", true, MsFlags::MS_NOSUID),
    ("suid", false, MsFlags::MS_NOSUID),
    ("nodev", true, MsFlags::MS_NODEV),
    ("dev", false, MsFlags::MS_NODEV),
    ("noexec", true, MsFlags::MS_NOEXEC),
    ("exec", false, MsFlags::MS_NOEXEC),
    ("sync", true, MsFlags::MS_SYNCHRONOUS),
    ("async", false, MsFlags::MS_SYNCHRONOUS),
    ("dirsync", true, MsFlags::MS_DIRSYNC),
    ("noatime", true, MsFlags::MS_NOATIME),
    ("atime", false, MsFlags::MS_NOATIME),
    ("nodiratime", true, MsFlags::MS_NODIRATIME),
    ("diratime", false, MsFlags::MS_NODIRATIME),
    ("relatime", true, MsFlags::MS_RELATIME),
    ("norelatime", false, MsFlags::MS_RELATIME),
    ("strictatime", true, MsFlags::MS_STRICTATIME),
    ("nostrictatime", false, MsFlags::MS_STRICTATIME),
];

/// The mount flags and the data string of `options` (comma-separated;
/// `defaults` and empty words are skipped).
pub fn split(options: &str) -> (MsFlags, String) {
    let mut flags = MsFlags::empty();
    let mut data: Vec<&str> = Vec::new();
    for word in options.split(',').map(str::trim) {
        if word.is_empty() || word == "defaults" {
            continue;
        }
        match FLAG_WORDS.iter().find(|(name, ..)| *name == word) {
            Some((_, true, flag)) => flags |= *flag,
            Some((_, false, flag)) => flags &= !*flag,
            None => data.push(word),
        }
    }
    (flags, data.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_words_become_flags_and_later_words_win() {
        let (flags, data) = split("nosuid,nodev,noexec,size=1m,exec,mode=1777");
        assert_eq!(flags, MsFlags::MS_NOSUID | MsFlags::MS_NODEV);
        assert_eq!(data, "size=1m,mode=1777");
        assert_eq!(split("ro, defaults,,"), (MsFlags::MS_RDONLY, String::new()));
        assert_eq!(split("ro,rw").0, MsFlags::empty());
        assert_eq!(split(""), (MsFlags::empty(), String::new()));
    }
}
