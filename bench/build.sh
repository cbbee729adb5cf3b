#!/usr/bin/env bash
# kiln build benchmarks (release build). Prints one line per figure:
#
#   (a) three independent 1-second RUN stages joined by COPY --from, cold
#   (b) 30 steps (10 RUN, 10 ENV, 10 COPY of small files): cold, fully cached
#   (c) COPY . /src + one RUN over a 430 MB / 10,000-file context: cold,
#       fully cached, after changing one file, unchanged right after such a
#       build; peak RSS of kiln over them
#   (d) a $BUILDPLATFORM stage (one 1-second RUN per target) + COPY --from
#       into scratch: for linux/amd64 alone, then linux/amd64,linux/arm64
#       (one image per platform and an index), cold
#
# BENCH_CASES picks cases (default "a b c d"); KILN=path runs that binary
# instead of building a release one (to check the script on a small case).
# "cold" is a fresh store holding only the busybox base image (imported, not
# timed). Each figure is the median of $RUNS runs (default 3).
# With BENCH_DOCKER=1 and a working `docker` (apt-get install docker.io;
# dockerd --iptables=false --bridge=none &), the same workloads also run with
# `DOCKER_BUILDKIT=0 docker build` on the same busybox image.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
CASES=" ${BENCH_CASES:-a b c d} "
has() { [[ $CASES == *" $1 "* ]]; }
if [ -n "${KILN:-}" ]; then
  kiln=$KILN
else
  cargo build --release --locked >&2
  kiln=$PWD/target/release/kiln
fi
work=$(mktemp -d /var/tmp/kiln-bench.XXXXXX)
# KEEP=1 leaves the inputs and the store for a look afterwards.
trap '[ "${KEEP:-0}" = 1 ] || rm -rf "$work"' EXIT

# --- inputs -----------------------------------------------------------------
rootfs=$work/rootfs
mkdir -p "$rootfs/bin" "$rootfs/usr/bin" "$rootfs/etc" "$rootfs/tmp" "$rootfs/root"
cp /bin/busybox "$rootfs/bin/busybox"
/bin/busybox --install -s "$rootfs/bin"
[ -e "$rootfs/usr/bin/busybox" ] || ln -s /bin/busybox "$rootfs/usr/bin/busybox"
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$rootfs/etc/passwd"
printf 'root:x:0:\n' > "$rootfs/etc/group"
tar -C "$rootfs" -cf "$work/busybox.tar" .

ctx_a=$work/ctx-a
mkdir -p "$ctx_a"
cat > "$ctx_a/Dockerfile" <<'DOCKERFILE'
FROM busybox AS a
RUN sleep 1 && echo a > /a
FROM busybox AS b
RUN sleep 1 && echo b > /b
FROM busybox AS c
RUN sleep 1 && echo c > /c
FROM busybox
COPY --from=a /a /a
COPY --from=b /b /b
COPY --from=c /c /c
DOCKERFILE

ctx_b=$work/ctx-b
mkdir -p "$ctx_b"
{
  echo "FROM busybox"
  for i in $(seq 1 10); do
    echo "ENV V$i=value-$i"
    echo "COPY f$i.txt /files/f$i.txt"
    echo "RUN echo \$V$i >> /files/log"
    printf 'small file %s\n' "$i" > "$ctx_b/f$i.txt"
  done
} > "$ctx_b/Dockerfile"

ctx_d=$work/ctx-d
mkdir -p "$ctx_d"
cat > "$ctx_d/Dockerfile" <<'DOCKERFILE'
FROM --platform=$BUILDPLATFORM busybox AS build
ARG TARGETARCH
RUN sleep 1 && echo $TARGETARCH > /arch
FROM scratch
COPY --from=build /arch /arch
DOCKERFILE

ctx_c=$work/ctx-c
mkdir -p "$ctx_c"
has c && python3 - "$ctx_c" <<'PY'
import os, sys
root = sys.argv[1]
size = 430 * 1000 * 1000 // 10000
for d in range(100):
    os.makedirs(f"{root}/d{d:03}", exist_ok=True)
    for f in range(100):
        with open(f"{root}/d{d:03}/f{f:03}.bin", "wb") as out:
            out.write(os.urandom(size))
PY
printf 'FROM busybox\nCOPY . /src\nRUN du -sk /src > /size\n' > "$ctx_c/Dockerfile"
# Real contexts have a .dockerignore; it makes COPY read a filtered view.
printf '*.log\n' > "$ctx_c/.dockerignore"
echo "not sent" > "$ctx_c/build.log"

# --- helpers ------------------------------------------------------------------
now() { date +%s.%N; }
elapsed() { awk -v s="$1" -v e="$2" 'BEGIN { printf "%.3f", e - s }'; }
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

fresh_store() {
  rm -rf "$work/root"
  "$kiln" --root "$work/root" import "$work/busybox.tar" busybox:latest >/dev/null
}

# Each kiln build runs under GNU time, which appends its peak RSS (KiB).
rss=$work/rss
kbuild() { /usr/bin/time -f %M -a -o "$rss" "$kiln" --root "$work/root" build -q "$@" >/dev/null; }
peak_mb() { sort -n "$rss" | tail -1 | awk '{ printf "%.0f", $1 / 1024 }'; : > "$rss"; }

# time_cmd CMD...: seconds for one run.
time_cmd() { local s e; s=$(now); "$@"; e=$(now); elapsed "$s" "$e"; }

report() { printf '%-58s %6ss\n' "$1" "$2"; }

# --- kiln ---------------------------------------------------------------------
echo "kiln $(git rev-parse --short HEAD), $(nproc) CPUs, median of $RUNS"

if has a; then
r=(); for _ in $(seq "$RUNS"); do fresh_store; r+=("$(time_cmd kbuild "$ctx_a")"); done
report "(a) 3 parallel 1s RUN stages + COPY --from, cold" "$(printf '%s\n' "${r[@]}" | median)"
fi

if has b; then
r=(); for _ in $(seq "$RUNS"); do fresh_store; r+=("$(time_cmd kbuild "$ctx_b")"); done
report "(b) 30 steps, cold" "$(printf '%s\n' "${r[@]}" | median)"
r=(); for _ in $(seq "$RUNS"); do r+=("$(time_cmd kbuild "$ctx_b")"); done
report "(b) 30 steps, fully cached" "$(printf '%s\n' "${r[@]}" | median)"
fi

if has c; then
: > "$rss"
r=(); for _ in $(seq "$RUNS"); do fresh_store; rm -rf "$work/root/context-cache"; r+=("$(time_cmd kbuild "$ctx_c")"); done
report "(c) 430 MB / 10k-file context, cold" "$(printf '%s\n' "${r[@]}" | median)"
r=(); for _ in $(seq "$RUNS"); do r+=("$(time_cmd kbuild "$ctx_c")"); done
report "(c) 430 MB / 10k-file context, fully cached" "$(printf '%s\n' "${r[@]}" | median)"
r=(); for i in $(seq "$RUNS"); do
  echo "change $i" >> "$ctx_c/d050/f050.bin"
  r+=("$(time_cmd kbuild "$ctx_c")")
done
report "(c) 430 MB / 10k-file context, one file changed" "$(printf '%s\n' "${r[@]}" | median)"
# The no-change rebuild right after a build that changed something: it must
# cost what any fully cached build costs (issue 9, defect 4).
r=(); for i in $(seq "$RUNS"); do
  echo "again $i" >> "$ctx_c/d050/f050.bin"
  kbuild "$ctx_c"
  r+=("$(time_cmd kbuild "$ctx_c")")
done
report "(c) 430 MB / 10k-file context, no change right after a change" "$(printf '%s\n' "${r[@]}" | median)"
printf '%-58s %6s MB\n' "(c) peak memory (RSS) of kiln over the (c) builds" "$(peak_mb)"
fi

if has d; then
r=(); for _ in $(seq "$RUNS"); do fresh_store; r+=("$(time_cmd kbuild --platform linux/amd64 "$ctx_d")"); done
report "(d) \$BUILDPLATFORM stage + COPY --from, linux/amd64, cold" "$(printf '%s\n' "${r[@]}" | median)"
r=(); for _ in $(seq "$RUNS"); do fresh_store; r+=("$(time_cmd kbuild --platform linux/amd64,linux/arm64 -t multi "$ctx_d")"); done
report "(d) same, linux/amd64,linux/arm64 (index), cold" "$(printf '%s\n' "${r[@]}" | median)"
fi

# --- docker (legacy builder), optional -----------------------------------------
if [ "${BENCH_DOCKER:-0}" = 1 ] && docker info >/dev/null 2>&1; then
  export DOCKER_BUILDKIT=0
  docker import "$work/busybox.tar" busybox:latest >/dev/null
  dbuild() { docker build -q "$@" >/dev/null; }
  dprune() { docker image prune -af >/dev/null; docker import "$work/busybox.tar" busybox:latest >/dev/null; }
  echo "docker $(docker version -f '{{.Server.Version}}'), DOCKER_BUILDKIT=0"
  r=(); for _ in $(seq "$RUNS"); do dprune; r+=("$(time_cmd dbuild "$ctx_a")"); done
  report "(a) 3 parallel 1s RUN stages + COPY --from, cold" "$(printf '%s\n' "${r[@]}" | median)"
  r=(); for _ in $(seq "$RUNS"); do dprune; r+=("$(time_cmd dbuild "$ctx_b")"); done
  report "(b) 30 steps, cold" "$(printf '%s\n' "${r[@]}" | median)"
  r=(); for _ in $(seq "$RUNS"); do r+=("$(time_cmd dbuild "$ctx_b")"); done
  report "(b) 30 steps, fully cached" "$(printf '%s\n' "${r[@]}" | median)"
  r=(); for _ in $(seq "$RUNS"); do dprune; r+=("$(time_cmd dbuild "$ctx_c")"); done
  report "(c) 430 MB / 10k-file context, cold" "$(printf '%s\n' "${r[@]}" | median)"
  r=(); for _ in $(seq "$RUNS"); do r+=("$(time_cmd dbuild "$ctx_c")"); done
  report "(c) 430 MB / 10k-file context, fully cached" "$(printf '%s\n' "${r[@]}" | median)"
  r=(); for i in $(seq "$RUNS"); do
    echo "docker change $i" >> "$ctx_c/d050/f050.bin"
    r+=("$(time_cmd dbuild "$ctx_c")")
  done
  report "(c) 430 MB / 10k-file context, one file changed" "$(printf '%s\n' "${r[@]}" | median)"
fi
