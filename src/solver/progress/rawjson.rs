//! `--progress rawjson`: each progress event as one line of JSON in the
//! shape of BuildKit's `client.SolveStatus` (moby/buildkit
//! `client/graph.go`), as `progressui.RawJSONMode` prints them
//! (`util/progress/progressui/display.go`, `rawJSONDisplay.update`: one
//! `json.Encoder.Encode` per status, so one object per line).
//!
//! A vertex is named by a digest of its definition and its inputs'
//! digests (BuildKit's LLB digest covers the op and its inputs alike);
//! `started` and `completed` are RFC 3339 times with nanoseconds as Go
//! writes a `time.Time`; a log line's `data` is its bytes with the newline,
//! base64-encoded as Go encodes a `[]byte`, `stream` 1 for stdout and 2
//! for stderr. kiln's steps report no sub-progress, so `statuses` never
//! appears (Go omits an empty list).

use std::collections::HashMap;
use std::io::{self, Write};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use super::{LogStream, ProgressEvent};
use crate::solver::graph::{Graph, VertexId};

/// One status update (`client.SolveStatus`).
#[derive(Serialize, Default)]
struct SolveStatus<'a> {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    vertexes: Vec<Vertex<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    logs: Vec<VertexLog<'a>>,
}

/// `client.Vertex`.
#[derive(Serialize)]
struct Vertex<'a> {
    digest: &'a str,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    inputs: &'a [String],
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    started: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    completed: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    cached: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

/// `client.VertexLog`.
#[derive(Serialize)]
struct VertexLog<'a> {
    vertex: &'a str,
    stream: u8,
    data: String,
    timestamp: String,
}

/// What the printer knows of a vertex.
#[derive(Default)]
struct Known {
    digest: String,
    inputs: Vec<String>,
    name: String,
    started: Option<String>,
}

/// Writes events as JSON lines to `out`.
pub struct RawJsonPrinter<W: Write> {
    out: W,
    vertices: HashMap<VertexId, Known>,
}

impl<W: Write> RawJsonPrinter<W> {
    /// A printer for the vertices of `graph` (a vertex it does not know is
    /// named by a digest of its number).
    pub fn new(out: W, graph: &Graph) -> Self {
        let mut vertices: HashMap<VertexId, Known> = HashMap::new();
        for (id, v) in graph.iter() {
            let inputs: Vec<String> = v
                .inputs()
                .iter()
                .map(|i| {
                    vertices
                        .get(i)
                        .map(|k| k.digest.clone())
                        .unwrap_or_default()
                })
                .collect();
            let mut h = Sha256::new();
            h.update(v.definition_digest().to_string());
            for i in &inputs {
                h.update(b"\n");
                h.update(i);
            }
            let digest = format!("sha256:{}", hex::encode(h.finalize()));
            vertices.insert(
                id,
                Known {
                    digest,
                    inputs,
                    name: v.info().name.clone(),
                    started: None,
                },
            );
        }
        RawJsonPrinter { out, vertices }
    }

    /// Prints one event as one line.
    pub fn handle(&mut self, event: &ProgressEvent) -> io::Result<()> {
        self.handle_at(event, SystemTime::now())
    }

    fn handle_at(&mut self, event: &ProgressEvent, now: SystemTime) -> io::Result<()> {
        let id = event.vertex();
        let known = self.vertices.entry(id).or_insert_with(|| Known {
            digest: format!(
                "sha256:{}",
                hex::encode(Sha256::digest(format!("vertex {}", id.index())))
            ),
            ..Known::default()
        });
        if let ProgressEvent::Started { name, .. }
        | ProgressEvent::Cached { name, .. }
        | ProgressEvent::Failed { name, .. } = event
        {
            known.name = name.to_string();
        }
        let stamp = go_time(now);
        let mut status = SolveStatus::default();
        fn vertex<'a>(known: &'a Known, started: &str, completed: Option<&str>) -> Vertex<'a> {
            Vertex {
                digest: &known.digest,
                inputs: &known.inputs,
                name: &known.name,
                started: Some(started.to_string()),
                completed: completed.map(str::to_string),
                cached: false,
                error: None,
            }
        }
        match event {
            ProgressEvent::Started { .. } => {
                known.started = Some(stamp.clone());
                status.vertexes.push(vertex(known, &stamp, None));
            }
            ProgressEvent::Cached { .. } => {
                let mut v = vertex(known, &stamp, Some(&stamp));
                v.cached = true;
                status.vertexes.push(v);
            }
            ProgressEvent::Log { stream, line, .. } => {
                let mut data = line.clone().into_bytes();
                data.push(b'\n');
                status.logs.push(VertexLog {
                    vertex: &known.digest,
                    stream: match stream {
                        LogStream::Stdout => 1,
                        LogStream::Stderr => 2,
                    },
                    data: base64::engine::general_purpose::STANDARD.encode(data),
                    timestamp: stamp.clone(),
                });
            }
            ProgressEvent::Finished { duration, .. } => {
                let started = started_of(known.started.as_deref(), now, *duration);
                status.vertexes.push(vertex(known, &started, Some(&stamp)));
            }
            ProgressEvent::Failed {
                error, duration, ..
            } => {
                let started =
                    started_of(known.started.as_deref(), now, duration.unwrap_or_default());
                let mut v = vertex(known, &started, Some(&stamp));
                v.error = Some(error);
                status.vertexes.push(v);
            }
            ProgressEvent::Cancelled { duration, .. } => {
                let started = started_of(known.started.as_deref(), now, *duration);
                let mut v = vertex(known, &started, Some(&stamp));
                // What BuildKit reports for a vertex its cancelled job stopped.
                v.error = Some("context canceled");
                status.vertexes.push(v);
            }
        }
        serde_json::to_writer(&mut self.out, &status)?;
        self.out.write_all(b"\n")?;
        self.out.flush()
    }
}

/// The recorded start of a vertex, else `now - duration`.
fn started_of(recorded: Option<&str>, now: SystemTime, duration: Duration) -> String {
    match recorded {
        Some(s) => s.to_string(),
        None => go_time(now.checked_sub(duration).unwrap_or(now)),
    }
}

/// A time as Go's `time.Time` marshals to JSON in UTC (RFC 3339 with
/// nanoseconds, trailing zeros dropped).
fn go_time(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    crate::image::timestamp::format_rfc3339(d.as_secs() as i64, d.subsec_nanos())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::solver::{Exec, ImageSource, Op, Platform, VertexInfo};

    #[test]
    fn events_are_solve_status_lines() {
        let mut graph = Graph::new();
        let base = graph
            .add(
                Op::Image(ImageSource {
                    reference: crate::image::ImageRef::parse("busybox").unwrap(),
                    platform: Platform::linux_amd64(),
                }),
                vec![],
                VertexInfo::named("[1/2] FROM busybox"),
            )
            .unwrap();
        let run = graph
            .add(
                Op::Exec(Exec::on_rootfs(&["true"], &[])),
                vec![base],
                VertexInfo::named("[2/2] RUN true"),
            )
            .unwrap();
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 500_000_000);
        let mut out = Vec::new();
        let mut p = RawJsonPrinter::new(&mut out, &graph);
        let v = run;
        for event in [
            ProgressEvent::Started {
                vertex: v,
                name: "[2/2] RUN true".into(),
            },
            ProgressEvent::Log {
                vertex: v,
                stream: LogStream::Stderr,
                elapsed: Duration::ZERO,
                line: "hi".into(),
            },
            ProgressEvent::Finished {
                vertex: v,
                duration: Duration::from_secs(1),
            },
        ] {
            p.handle_at(&event, t).unwrap();
        }
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 3, "{text}");
        let started = &lines[0]["vertexes"][0];
        let digest = started["digest"].as_str().unwrap();
        assert!(
            digest.starts_with("sha256:") && digest.len() == 71,
            "{digest}"
        );
        assert_eq!(started["name"], "[2/2] RUN true");
        // Its input is named by the base's digest.
        let input = started["inputs"][0].as_str().unwrap();
        assert!(input.starts_with("sha256:") && input != digest, "{input}");
        assert_eq!(started["started"], "2023-11-14T22:13:20.5Z");
        assert!(started.get("completed").is_none() && started.get("cached").is_none());
        let log = &lines[1]["logs"][0];
        assert_eq!(log["vertex"], digest);
        assert_eq!(log["stream"], 2);
        assert_eq!(log["data"], "aGkK"); // "hi\n"
        let done = &lines[2]["vertexes"][0];
        assert_eq!(done["started"], "2023-11-14T22:13:20.5Z");
        assert_eq!(done["completed"], "2023-11-14T22:13:20.5Z");
        assert!(lines[2].get("logs").is_none());
    }

    /// A cached vertex is started and completed at once with `cached`; a
    /// failed one carries its error, a cancelled one BuildKit's
    /// "context canceled"; a vertex the graph did not name still gets a
    /// digest.
    #[test]
    fn cached_failed_and_cancelled_vertexes() {
        let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut out = Vec::new();
        let mut p = RawJsonPrinter::new(&mut out, &Graph::new());
        let (a, b, c) = (
            VertexId::from_index(0),
            VertexId::from_index(1),
            VertexId::from_index(2),
        );
        for event in [
            ProgressEvent::Cached {
                vertex: a,
                name: "[1/3] FROM x".into(),
            },
            ProgressEvent::Failed {
                vertex: b,
                name: "[2/3] RUN false".into(),
                error: "exit code: 1".into(),
                log_tail: Vec::new(),
                duration: Some(Duration::from_secs(2)),
            },
            ProgressEvent::Cancelled {
                vertex: c,
                duration: Duration::from_secs(1),
            },
        ] {
            p.handle_at(&event, t).unwrap();
        }
        let text = String::from_utf8(out).unwrap();
        let v: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["vertexes"][0].clone())
            .collect();
        assert_eq!(v[0]["cached"], true);
        assert_eq!(v[0]["started"], v[0]["completed"]);
        assert_eq!(v[1]["error"], "exit code: 1");
        assert_eq!(v[1]["started"], "2023-11-14T22:13:18Z");
        assert_eq!(v[1]["completed"], "2023-11-14T22:13:20Z");
        assert_eq!(v[2]["error"], "context canceled");
        let digests: std::collections::HashSet<&str> =
            v.iter().map(|x| x["digest"].as_str().unwrap()).collect();
        assert_eq!(digests.len(), 3, "{text}");
    }
}
