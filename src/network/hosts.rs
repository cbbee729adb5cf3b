//! Name resolution on a user network through `/etc/hosts`: each member's
//! file (the host file bound over it) gets a line per other member, added
//! and removed in place (the same inode, so the bind shows the change).

use super::state::Endpoint;
use super::NetworkError;
use std::io::Write;
use std::path::Path;

/// The `/etc/hosts` line naming `endpoint` (`ADDRESS\tNAMES`).
pub fn line(endpoint: &Endpoint) -> String {
    format!("{}\t{}", endpoint.address, endpoint.names.join(" "))
}

fn err(path: &Path) -> impl FnOnce(std::io::Error) -> NetworkError + '_ {
    |source| NetworkError::Hosts {
        path: path.to_path_buf(),
        source,
    }
}

/// Appends `line` to `path` (absent files are skipped: the container is
/// gone or not yet prepared, and gets the line from its attachment).
pub fn append(path: &Path, line: &str) -> Result<(), NetworkError> {
    let mut file = match std::fs::OpenOptions::new().append(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(err(path)(e)),
    };
    file.write_all(format!("{line}\n").as_bytes())
        .map_err(err(path))
}

/// Removes every line equal to `line` from `path`, rewriting it in place.
pub fn remove_line(path: &Path, line: &str) -> Result<(), NetworkError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(err(path)(e)),
    };
    let kept: String = text
        .lines()
        .filter(|l| *l != line)
        .map(|l| format!("{l}\n"))
        .collect();
    if kept != text {
        // Truncate and write, not rename: the container sees this inode.
        std::fs::write(path, kept).map_err(err(path))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_come_and_go_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hosts");
        std::fs::write(&path, "127.0.0.1\tlocalhost\n").unwrap();
        let ino = |p: &Path| std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(p).unwrap());
        let before = ino(&path);
        append(&path, "10.89.0.2\tweb").unwrap();
        append(&path, "10.89.0.3\tdb").unwrap();
        remove_line(&path, "10.89.0.2\tweb").unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "127.0.0.1\tlocalhost\n10.89.0.3\tdb\n"
        );
        assert_eq!(ino(&path), before);
        append(&dir.path().join("gone"), "x").unwrap();
    }
}
