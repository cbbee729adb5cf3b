//! Parser throughput: a generated 10,000-line Dockerfile of realistic mixed
//! instructions (continuations, heredocs, JSON forms, flags, comments),
//! parsed to the typed AST N times; prints median and minimum.
//!
//! Run with `cargo bench --bench parse`. Target: under 20 ms per parse.

use std::time::{Duration, Instant};

/// One block of instructions (~50 physical lines) in the style of real
/// multi-stage Dockerfiles.
fn block(i: usize) -> String {
    format!(
        r#"# stage {i}: build
FROM --platform=$BUILDPLATFORM golang:1.22-bookworm AS build{i}
ARG TARGETOS TARGETARCH VERSION=1.{i}.0
ENV CGO_ENABLED=0 \
    GOOS=$TARGETOS \
    GOARCH=$TARGETARCH
WORKDIR /src/app{i}
COPY --link go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    go mod download && \
    go mod verify
COPY --chown=1000:1000 --chmod=0755 . .
RUN <<EOF
set -eux
go build -trimpath -ldflags "-s -w -X main.version=${{VERSION}}" -o /out/app ./cmd/app
EOF
COPY <<-"CONF" /etc/app/config.toml
	[server]
	listen = "0.0.0.0:80{i}"
	CONF

# runtime
FROM gcr.io/distroless/static-debian12:nonroot AS runtime{i}
LABEL org.opencontainers.image.title="app{i}" \
      org.opencontainers.image.version="${{VERSION}}" maintainer="ops@example.com"
COPY --from=build{i} /out/app /usr/local/bin/app
EXPOSE 8080/tcp 9090
VOLUME ["/data", "/cache"]
USER 65532:65532
HEALTHCHECK --interval=30s --timeout=3s --start-period=5s --retries=3 \
  CMD ["/usr/local/bin/app", "healthcheck"]
STOPSIGNAL SIGTERM
SHELL ["/bin/sh", "-eu", "-c"]
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/*
ADD --checksum=sha256:0000000000000000000000000000000000000000000000000000000000000000 https://example.com/f{i}.tar.gz /tmp/
ONBUILD COPY . /app/src
ENTRYPOINT ["/usr/local/bin/app"]
CMD ["serve", "--port", "8080"]

"#
    )
}

fn dockerfile(lines: usize) -> String {
    let mut out = String::from("# syntax=docker/dockerfile:1\nARG BASE=alpine\n");
    let mut i = 0;
    while out.lines().count() < lines {
        out.push_str(&block(i));
        i += 1;
    }
    out
}

/// Times `f` over `runs` runs; returns (median, min).
fn time(runs: usize, mut f: impl FnMut()) -> (Duration, Duration) {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    times.sort();
    (times[runs / 2], times[0])
}

fn report(what: &str, (median, min): (Duration, Duration), runs: usize) {
    println!(
        "{what}: median {:.2} ms, min {:.2} ms over {runs} runs",
        median.as_secs_f64() * 1e3,
        min.as_secs_f64() * 1e3
    );
}

fn main() {
    let src = dockerfile(10_000);
    let runs = 30;
    // Check once that it parses, and describe the input.
    let parsed =
        kiln::parser::parse("Dockerfile", src.as_bytes()).expect("generated Dockerfile parses");
    let instructions: usize = parsed.stages.iter().map(|s| s.instructions.len() + 1).sum();
    println!(
        "input: {} lines, {} bytes, {instructions} instructions, {} stages",
        src.lines().count(),
        src.len(),
        parsed.stages.len()
    );
    let full = time(runs, || {
        let df = kiln::parser::parse("Dockerfile", src.as_bytes()).expect("parses");
        std::hint::black_box(&df);
    });
    let raw = time(runs, || {
        let raw = kiln::parser::parse_raw("Dockerfile", src.as_bytes()).expect("parses");
        std::hint::black_box(&raw);
    });
    let tree = kiln::parser::parse_raw("Dockerfile", src.as_bytes()).expect("parses");
    let dump = time(runs, || {
        std::hint::black_box(tree.dump());
    });
    report("raw parse (BuildKit tree)", raw, runs);
    report("BuildKit dump", dump, runs);
    report("parse (raw + typed AST)", full, runs);
}
