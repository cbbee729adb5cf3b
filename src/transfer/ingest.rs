//! Downloads in progress, kept across killed pulls so the next pull
//! resumes them: `<root>/ingest/<hex>.partial`, one per blob, each locked
//! (`flock`) by the process writing it.
//!
//! The store's own scratch space is per process and collected once the
//! process is gone, which is right for half-built snapshots but would throw
//! away a 200 MB layer that was 90% downloaded. This directory is outside
//! the store's garbage collection: a file here is only ever a prefix of
//! the blob its name says (the registry client checks the whole on
//! completion and empties a file that is not), and it is removed when the
//! blob has been handed to the store, or when stale.

use crate::cache::StoreLayout;
use crate::image::Digest;
use nix::fcntl::{Flock, FlockArg};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Partial downloads untouched this long are removed by the next pull.
const STALE_AFTER: Duration = Duration::from_secs(7 * 24 * 3600);

/// The ingest directory of a store root.
pub struct Ingest {
    dir: PathBuf,
}

impl Ingest {
    /// Opens `<root>/ingest`, creating it, and removes stale partial files
    /// that nobody holds.
    pub fn open(root: &Path) -> io::Result<Ingest> {
        let dir = StoreLayout::new(root).ingest();
        fs::create_dir_all(&dir)?;
        let ingest = Ingest { dir };
        ingest.remove_stale();
        Ok(ingest)
    }

    /// Opens (creating) the partial file for `digest`, waiting for the lock
    /// if another process is downloading the same blob right now.
    pub fn acquire(&self, digest: &Digest) -> io::Result<IngestFile> {
        let path = self.dir.join(format!("{}.partial", digest.hex()));
        loop {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)?;
            let locked = Flock::lock(file, FlockArg::LockExclusive)
                .map_err(|(_, errno)| io::Error::from(errno))?;
            // The holder before us may have finished and removed the file:
            // then we hold a lock on an unlinked inode and must start over.
            let same = match fs::metadata(&path) {
                Ok(m) => {
                    let ours = locked.metadata()?;
                    m.ino() == ours.ino() && m.dev() == ours.dev()
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => false,
                Err(e) => return Err(e),
            };
            if same {
                return Ok(IngestFile { file: locked, path });
            }
        }
    }

    fn remove_stale(&self) {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        let now = SystemTime::now();
        for entry in entries.flatten() {
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| now.duration_since(t).ok())
                .is_some_and(|age| age > STALE_AFTER);
            if !old {
                continue;
            }
            // Only if nobody is writing it.
            if let Ok(f) = File::open(entry.path()) {
                if let Ok(_locked) = Flock::lock(f, FlockArg::LockExclusiveNonblock) {
                    let _ = fs::remove_file(entry.path());
                }
            }
        }
    }
}

/// A locked partial download.
pub struct IngestFile {
    file: Flock<File>,
    path: PathBuf,
}

impl IngestFile {
    /// The file, positioned wherever the last use left it.
    pub fn file(&mut self) -> &mut File {
        &mut self.file
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the file (the blob is in the store now), still under the
    /// lock so a waiting process sees it gone and starts afresh.
    pub fn remove(self) -> io::Result<()> {
        fs::remove_file(&self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek, SeekFrom, Write};

    #[test]
    fn partial_files_survive_and_are_exclusive() {
        let root = tempfile::tempdir().unwrap();
        let ingest = Ingest::open(root.path()).unwrap();
        let d = Digest::sha256_of(b"blob");
        let mut f = ingest.acquire(&d).unwrap();
        f.file().write_all(b"bl").unwrap();
        // Another process (here: another open file description) cannot
        // take the lock while we hold it.
        let other = File::open(f.path()).unwrap();
        assert!(Flock::lock(other, FlockArg::LockExclusiveNonblock).is_err());
        drop(f);
        let mut f = ingest.acquire(&d).unwrap();
        let mut got = String::new();
        f.file().seek(SeekFrom::Start(0)).unwrap();
        f.file().read_to_string(&mut got).unwrap();
        assert_eq!(got, "bl");
        let path = f.path().to_path_buf();
        f.remove().unwrap();
        assert!(!path.exists());
    }
}
