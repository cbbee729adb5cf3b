//! Test fixture for the COPY/ADD tests: a build context, a parent image
//! (merged directory), an empty layer, and a readable listing of what the
//! layer holds; plus a one-shot HTTP server on 127.0.0.1 for ADD URLs.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::exec::copy::{copy, CopyError, CopySource, CopySpec, CopyStats};
use crate::exec::parent_fs::MergedDir;

/// A context dir, a parent image and an output layer in one temp dir.
pub struct Fixture {
    _tmp: tempfile::TempDir,
    /// The build context (source root).
    pub context: PathBuf,
    /// The parent image's merged filesystem.
    pub parent: PathBuf,
    /// The layer the copy writes.
    pub layer: PathBuf,
}

impl Fixture {
    /// Empty context and parent, empty layer.
    pub fn new() -> Fixture {
        let tmp = tempfile::tempdir().expect("tempdir");
        let context = tmp.path().join("context");
        let parent = tmp.path().join("parent");
        let layer = tmp.path().join("layer");
        for d in [&context, &parent, &layer] {
            std::fs::create_dir(d).expect("mkdir");
        }
        Fixture {
            _tmp: tmp,
            context,
            parent,
            layer,
        }
    }

    /// Writes a context file (parents created).
    pub fn file(&self, rel: &str, content: &str) -> PathBuf {
        write_file(&self.context.join(rel), content)
    }

    /// Writes a parent-image file (parents created).
    pub fn parent_file(&self, rel: &str, content: &str) -> PathBuf {
        write_file(&self.parent.join(rel), content)
    }

    /// Creates a parent-image directory with a mode.
    pub fn parent_dir(&self, rel: &str, mode: u32) -> PathBuf {
        let p = self.parent.join(rel);
        std::fs::create_dir_all(&p).expect("mkdir");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).expect("chmod");
        p
    }

    /// Creates a symlink (in the context or parent, by host path).
    pub fn symlink(&self, target: &str, link: &Path) {
        std::fs::create_dir_all(link.parent().expect("parent")).expect("mkdir");
        std::os::unix::fs::symlink(target, link).expect("symlink");
    }

    /// Runs the copy.
    pub fn run(&self, spec: &CopySpec) -> Result<CopyStats, CopyError> {
        copy(
            spec,
            &self.context,
            &MergedDir::new(&self.parent),
            &self.layer,
            None,
            None,
        )
    }

    /// Runs the copy and returns the layer listing, failing on error.
    pub fn listing(&self, spec: &CopySpec) -> Vec<String> {
        if let Err(e) = self.run(spec) {
            panic!("copy failed: {e} ({e:?})");
        }
        list(&self.layer)
    }

    /// Host path of an entry in the layer.
    pub fn out(&self, rel: &str) -> PathBuf {
        self.layer.join(rel.trim_start_matches('/'))
    }
}

fn write_file(path: &Path, content: &str) -> PathBuf {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, content).expect("write");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    path.to_path_buf()
}

/// A `COPY` spec from path sources.
pub fn spec(sources: &[&str], dest: &str) -> CopySpec {
    CopySpec::new(
        sources
            .iter()
            .map(|s| CopySource::Path(s.to_string()))
            .collect(),
        dest,
    )
}

/// Lists a directory tree as sorted lines, one per entry below the root:
/// `d /dir 755 0:0`, `f /file 644 0:0 "content"`, `l /link -> target`,
/// `p /fifo 644 0:0` (other types).
pub fn list(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").path())
        .collect();
    entries.sort();
    for path in entries {
        let meta = std::fs::symlink_metadata(&path).expect("lstat");
        let rel = format!("/{}", path.strip_prefix(root).expect("prefix").display());
        let owner = format!("{:o} {}:{}", meta.mode() & 0o7777, meta.uid(), meta.gid());
        let ft = meta.file_type();
        if ft.is_dir() {
            out.push(format!("d {rel} {owner}"));
            walk(root, &path, out);
        } else if ft.is_symlink() {
            let target = std::fs::read_link(&path).expect("readlink");
            out.push(format!("l {rel} -> {}", target.display()));
        } else if ft.is_file() {
            let content = std::fs::read_to_string(&path).unwrap_or_else(|_| "<binary>".into());
            out.push(format!("f {rel} {owner} {content:?}"));
        } else {
            out.push(format!("p {rel} {owner}"));
        }
    }
}

/// Asserts a listing equals the expected lines (order-insensitive).
pub fn assert_listing(got: &[String], expected: &[&str]) {
    let mut want: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(got, want.as_slice(), "\n got: {got:#?}\nwant: {want:#?}");
}

/// One canned HTTP response.
#[derive(Clone)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

/// A tiny HTTP/1.1 server on 127.0.0.1 answering `replies` in order, one
/// per connection, then exiting; reads time out so it can never hang.
pub struct Server {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    handle: Option<JoinHandle<()>>,
}

impl Server {
    /// Starts the server.
    pub fn start(replies: Vec<Reply>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let handle = std::thread::spawn(move || {
            for reply in replies {
                let Ok((mut stream, _)) = listener.accept() else {
                    return;
                };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let mut head = format!(
                    "HTTP/1.1 {} X\r\nContent-Length: {}\r\nConnection: close\r\n",
                    reply.status,
                    reply.body.len()
                );
                for (k, v) in &reply.headers {
                    head.push_str(&format!("{k}: {v}\r\n"));
                }
                head.push_str("\r\n");
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(&reply.body);
            }
        });
        Server {
            base,
            handle: Some(handle),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // The thread ends after its last reply; a test that made fewer
        // requests leaves it blocked in accept, so connect once to free it.
        if let Some(handle) = self.handle.take() {
            let addr = self.base.trim_start_matches("http://").to_string();
            while !handle.is_finished() {
                if std::net::TcpStream::connect(&addr).is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = handle.join();
        }
    }
}

/// One entry of a test archive. Names are written raw, so `..` and
/// absolute names can be tested.
pub enum TarEntry<'a> {
    /// A regular file: name, content, mode.
    File(&'a str, &'a str, u32),
    /// A directory: name, mode.
    Dir(&'a str, u32),
    /// A symlink: name, target.
    Symlink(&'a str, &'a str),
    /// A hard link: name, target name.
    HardLink(&'a str, &'a str),
}

/// Builds an uncompressed tar archive; entries are owned 1000:1000 with
/// mtime 1_000_000.
pub fn tar_bytes(entries: &[TarEntry<'_>]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for entry in entries {
        let mut header = tar::Header::new_ustar();
        let (name, kind, data, mode, link): (&str, tar::EntryType, &[u8], u32, &str) = match entry {
            TarEntry::File(n, c, m) => (n, tar::EntryType::Regular, c.as_bytes(), *m, ""),
            TarEntry::Dir(n, m) => (n, tar::EntryType::Directory, b"", *m, ""),
            TarEntry::Symlink(n, t) => (n, tar::EntryType::Symlink, b"", 0o777, t),
            TarEntry::HardLink(n, t) => (n, tar::EntryType::Link, b"", 0o644, t),
        };
        let ustar = header.as_ustar_mut().expect("ustar header");
        ustar.name[..name.len()].copy_from_slice(name.as_bytes());
        ustar.linkname[..link.len()].copy_from_slice(link.as_bytes());
        header.set_entry_type(kind);
        header.set_size(data.len() as u64);
        header.set_mode(mode);
        header.set_uid(1000);
        header.set_gid(1000);
        header.set_mtime(1_000_000);
        header.set_cksum();
        builder.append(&header, data).expect("append");
    }
    builder.into_inner().expect("finish tar")
}

/// An [`crate::exec::ExecContext`] on a fresh store at `root`, with no
/// network and no secrets.
pub fn exec_context(root: &Path) -> crate::exec::ExecContext {
    let store = std::sync::Arc::new(crate::cache::Store::open(root).unwrap());
    crate::exec::ExecContext {
        cache_mounts: crate::exec::cache_mount::CacheMounts::new(store.layout()),
        store,
        network: crate::runtime::Network::None,
        secrets: Default::default(),
        ssh: Default::default(),
    }
}
