//! A container's log in docker's json-file format: one JSON object per
//! line, `{"log":"hi\n","stream":"stdout","time":"2026-…Z"}` (moby
//! `daemon/logger/jsonfilelog`), written by the monitor, read by
//! `kiln logs`.
//!
//! A line longer than [`MAX_LINE`] is split into several entries, the
//! last carrying the newline, as docker splits at its 16 KiB buffer.

use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{self, BufRead, Read, Write};
use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// The longest entry: docker's log buffer (`logger.Copier`'s 16 KiB).
pub const MAX_LINE: usize = 16 * 1024;

/// One log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The text, with its trailing newline when it had one.
    pub log: String,
    /// `stdout` or `stderr`.
    pub stream: String,
    /// When the monitor read it (RFC 3339, nanoseconds).
    pub time: String,
}

/// The log file, shared by the copier of each stream.
#[derive(Clone)]
pub struct LogWriter {
    file: Arc<Mutex<File>>,
}

impl LogWriter {
    /// Opens (appending: a restarted container adds to its log) `path`.
    pub fn open(path: &Path) -> io::Result<LogWriter> {
        let file = File::options().create(true).append(true).open(path)?;
        Ok(LogWriter {
            file: Arc::new(Mutex::new(file)),
        })
    }

    fn write(&self, entry: &Entry) {
        let mut line = serde_json::to_vec(entry).unwrap_or_default();
        line.push(b'\n');
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = file.write_all(&line) {
            tracing::warn!("writing the container log: {e}");
        }
    }

    /// Copies `pipe` (the container's end of `stream`) into the log, line
    /// by line, on a thread of its own until the pipe's end.
    pub fn copy(&self, pipe: OwnedFd, stream: &'static str) -> JoinHandle<()> {
        let log = self.clone();
        std::thread::spawn(move || {
            let mut reader = io::BufReader::new(File::from(pipe));
            let mut buf = Vec::new();
            loop {
                buf.clear();
                let read = (&mut reader)
                    .take(MAX_LINE as u64)
                    .read_until(b'\n', &mut buf);
                match read {
                    Ok(0) => break,
                    Ok(_) => log.write(&Entry {
                        log: String::from_utf8_lossy(&buf).into_owned(),
                        stream: stream.to_string(),
                        time: super::state::now(),
                    }),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        tracing::warn!("reading the container's {stream}: {e}");
                        break;
                    }
                }
            }
        })
    }
}

/// Reads the entries of a log from byte `offset`; returns them and the
/// offset after the last complete line (a line being written is left for
/// the next read).
pub fn read_from(path: &Path, offset: u64) -> io::Result<(Vec<Entry>, u64)> {
    match File::open(path) {
        Ok(mut f) => read_open(&mut f, offset),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok((Vec::new(), offset)),
        Err(e) => Err(e),
    }
}

/// [`read_from`] on a log kept open: a follower keeps reading what was
/// written before a `--rm` container's removal deleted the file.
pub fn read_open(file: &mut File, offset: u64) -> io::Result<(Vec<Entry>, u64)> {
    use std::io::Seek;
    file.seek(io::SeekFrom::Start(offset))?;
    let mut data = Vec::new();
    file.read_to_end(&mut data)?;
    let complete = data.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let entries = data[..complete]
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .filter_map(|l| serde_json::from_slice(l).ok())
        .collect();
    Ok((entries, offset + complete as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_become_entries_per_stream_and_partial_lines_wait() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("c-json.log");
        let log = LogWriter::open(&path).unwrap();
        let (r, w) = rustix::pipe::pipe().unwrap();
        let copier = log.copy(r, "stderr");
        rustix::io::write(&w, b"one\ntwo\nlast").unwrap();
        drop(w);
        copier.join().unwrap();
        let (entries, end) = read_from(&path, 0).unwrap();
        let texts: Vec<&str> = entries.iter().map(|e| e.log.as_str()).collect();
        assert_eq!(texts, ["one\n", "two\n", "last"]);
        assert!(entries.iter().all(|e| e.stream == "stderr"));
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"log\":\"half")
            .unwrap();
        let (more, end2) = read_from(&path, end).unwrap();
        assert!(more.is_empty());
        assert_eq!(end2, end);
    }

    #[test]
    fn a_long_line_is_split_at_the_buffer_size() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("c-json.log");
        let log = LogWriter::open(&path).unwrap();
        let (r, w) = rustix::pipe::pipe().unwrap();
        let copier = log.copy(r, "stdout");
        let writer = std::thread::spawn(move || {
            let mut f = File::from(w);
            f.write_all(&vec![b'x'; MAX_LINE + 10]).unwrap();
            f.write_all(b"\n").unwrap();
        });
        writer.join().unwrap();
        copier.join().unwrap();
        let (entries, _) = read_from(&path, 0).unwrap();
        let lens: Vec<usize> = entries.iter().map(|e| e.log.len()).collect();
        assert_eq!(lens, [MAX_LINE, 11]);
    }
}
