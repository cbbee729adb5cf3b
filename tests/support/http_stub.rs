//! A tiny HTTP/1.1 server on 127.0.0.1 for faults a real registry will not
//! produce on demand: 5xx storms, connections closed mid-body, a bearer
//! token server; also a plain web server for `ADD <url>` and for RUN
//! steps to reach (on a listener made inside a network namespace). One
//! request per connection (`Connection: close`); stops when dropped.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// A request as the stub received it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// Path and query, e.g. `/v2/a/manifests/latest`.
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// A header's value (names compared case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The path without the query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }
}

/// What the stub answers.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Announce this Content-Length instead of the body's, then close after
    /// sending `body`: a connection dropped mid-body.
    pub declared_len: Option<usize>,
    /// Hold the connection open this long after sending `body`, sending
    /// nothing more: a registry that accepted and then stalled.
    pub stall: Option<std::time::Duration>,
}

impl Reply {
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: body.into(),
            declared_len: None,
            stall: None,
        }
    }

    pub fn header(mut self, k: &str, v: impl Into<String>) -> Reply {
        self.headers.push((k.to_string(), v.into()));
        self
    }
}

/// A running stub server.
pub struct StubServer {
    addr: SocketAddr,
    /// The accepting socket, kept to wake the accept loop on drop.
    listener: TcpListener,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl StubServer {
    /// Serves every request with `handler` on a free port of 127.0.0.1.
    pub fn start(handler: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> StubServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding stub server");
        StubServer::serve(listener, handler)
    }

    /// Serves every request on `listener` with `handler`: for a socket
    /// bound somewhere else than the host's loopback (a thread that joined
    /// a network namespace binds it there, and it stays there).
    pub fn serve(
        listener: TcpListener,
        handler: impl Fn(&Request) -> Reply + Send + Sync + 'static,
    ) -> StubServer {
        let addr = listener.local_addr().unwrap();
        let accepting = listener.try_clone().expect("cloning the stub's socket");
        let stop = Arc::new(AtomicBool::new(false));
        let handler = Arc::new(handler);
        let stop2 = stop.clone();
        let thread = std::thread::spawn(move || {
            for conn in accepting.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let handler = handler.clone();
                std::thread::spawn(move || serve(conn, &*handler));
            }
        });
        StubServer {
            addr,
            listener,
            stop,
            thread: Some(thread),
        }
    }

    /// `127.0.0.1:PORT` (the address it listens on).
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// `http://HOST:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for StubServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag: on Linux, shutting
        // down a listening socket fails a blocked accept(2) with EINVAL,
        // wherever the socket lives (a connect could not reach one inside
        // another network namespace).
        // SAFETY: shutdown(2) on a socket this server owns.
        unsafe { libc::shutdown(self.listener.as_raw_fd(), libc::SHUT_RDWR) };
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(conn: TcpStream, handler: &dyn Fn(&Request) -> Reply) {
    let _ = conn.set_read_timeout(Some(std::time::Duration::from_secs(10)));
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("").to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 {
            return;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let req = Request {
        method,
        target,
        headers,
        body,
    };
    let reply = handler(&req);
    let mut out = conn;
    let mut head = format!("HTTP/1.1 {} Stub\r\n", reply.status);
    for (k, v) in &reply.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    let declared = reply.declared_len.unwrap_or(reply.body.len());
    head.push_str(&format!(
        "Content-Length: {declared}\r\nConnection: close\r\n\r\n"
    ));
    let _ = out.write_all(head.as_bytes());
    if req.method != "HEAD" {
        let _ = out.write_all(&reply.body);
    }
    let _ = out.flush();
    if let Some(d) = reply.stall {
        std::thread::sleep(d);
    }
    let _ = out.shutdown(std::net::Shutdown::Both);
}
