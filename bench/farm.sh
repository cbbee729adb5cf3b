#!/usr/bin/env bash
# A build farm sharing one build cache through a registry (issue 12), on
# the 430 MB / 10,000-file workload of bench/build.sh (c):
#
#   A plain     A's cold build, no export (the baseline)
#   A export    A's cold build with --cache-to type=registry,mode=max
#               (each run to a new repository, so every blob is uploaded):
#               the default (zstd) and compression=gzip, with the delta
#               over A plain
#   B push      B's build from an empty store with --cache-from that cache
#               and --push to another repository of the same registry:
#               every step cached, the image pushed from the cache's blobs
#               (cross-repository mounts), no layer downloaded
#   B bytes     layer bytes B downloaded (kiln's "importing cache" line)
#   local       the same through --cache-to/--cache-from type=local: the
#               blobs are in a directory, so B reads (copies) the layers
#               it pushes
#   docker      with a docker engine (BENCH_DOCKER=1 and `docker info`
#               working): the classic builder's --cache-from takes images,
#               so A builds and pushes its image, B (its images removed)
#               pulls it and builds with --cache-from; else "n/a: why"
#
# "cold" and "empty" stores hold only the base image, pulled before the
# timer starts (both builders pull the same pushed busybox, so its cache
# key, the manifest digest, is the same). Each figure is the median of
# $RUNS runs (default 3). KILN=path picks the binary (default: the
# release build, made if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
KILN=${KILN:-target/release/kiln}
[ -x "$KILN" ] || cargo build --release --locked >&2
case "$KILN" in *release*) ;; *) echo "note: $KILN is not a release build" >&2 ;; esac
kiln=$(realpath "$KILN")
work=$(mktemp -d /var/tmp/kiln-farm.XXXXXX)
cleanup() {
  [ -f "$work/registry.pid" ] && kill "$(cat "$work/registry.pid")" 2>/dev/null || true
  [ "${KEEP:-0}" = 1 ] || rm -rf "$work"
}
trap cleanup EXIT

# --- registry -----------------------------------------------------------------
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$work/registry.yml" <<YML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $work/registry
http:
  addr: 127.0.0.1:$port
YML
docker-registry serve "$work/registry.yml" > "$work/registry.log" 2>&1 &
echo $! > "$work/registry.pid"
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/v2/" > /dev/null 2>&1 && break; sleep 0.1; done
reg=127.0.0.1:$port

# --- inputs -------------------------------------------------------------------
rootfs=$work/rootfs
mkdir -p "$rootfs/bin" "$rootfs/usr/bin" "$rootfs/etc" "$rootfs/tmp" "$rootfs/root"
cp /bin/busybox "$rootfs/bin/busybox"
/bin/busybox --install -s "$rootfs/bin"
[ -e "$rootfs/usr/bin/busybox" ] || ln -s /bin/busybox "$rootfs/usr/bin/busybox"
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$rootfs/etc/passwd"
printf 'root:x:0:\n' > "$rootfs/etc/group"
tar -C "$rootfs" -cf "$work/busybox.tar" .
"$kiln" --root "$work/seed" import "$work/busybox.tar" "$reg/busybox:latest" > /dev/null
"$kiln" --root "$work/seed" push "$reg/busybox:latest" > /dev/null

ctx=$work/ctx
mkdir -p "$ctx"
python3 - "$ctx" <<'PY'
import os, sys
root = sys.argv[1]
size = 430 * 1000 * 1000 // 10000
for d in range(100):
    os.makedirs(f"{root}/d{d:03}", exist_ok=True)
    for f in range(100):
        with open(f"{root}/d{d:03}/f{f:03}.bin", "wb") as out:
            out.write(os.urandom(size))
PY
printf 'FROM %s/busybox:latest\nCOPY . /src\nRUN du -sk /src > /size\n' "$reg" > "$ctx/Dockerfile"

# --- helpers ------------------------------------------------------------------
now() { date +%s.%N; }
elapsed() { awk -v s="$1" -v e="$2" 'BEGIN { printf "%.3f", e - s }'; }
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
report() { printf '%-58s %10s\n' "$1" "$2"; }

# A store holding only the base image.
fresh() { rm -rf "$work/$1"; "$kiln" --root "$work/$1" pull "$reg/busybox:latest" > /dev/null; }
# kbuild ROOT LOG FLAGS...: a build whose progress goes to LOG.
kbuild() {
  local root=$1 log=$2; shift 2
  "$kiln" --root "$work/$root" build --progress plain "$@" "$ctx" > /dev/null 2> "$log"
}
time_cmd() { local s e; s=$(now); "$@"; e=$(now); elapsed "$s" "$e"; }

echo "kiln $(git rev-parse --short HEAD) ($KILN), $(nproc) CPUs, median of $RUNS"
echo "load at start: $(uptime | sed 's/.*load average: //')"

# import_bytes LOG: the layer bytes kiln says it fetched.
import_bytes() { sed -n 's/^importing cache: fetched [0-9]* layer blobs, \([0-9]*\) bytes$/\1/p' "$1"; }
# all_cached LOG: only the context load may run (it is read on every build).
all_cached() {
  if [ "$(grep -c '^#[0-9]* DONE' "$1")" -gt 1 ]; then
    echo "B ran a step:" >&2; cat "$1" >&2; exit 1
  fi
}

r=(); for _ in $(seq "$RUNS"); do fresh a; r+=("$(time_cmd kbuild a "$work/a.log")"); done
plain=$(printf '%s\n' "${r[@]}" | median)
report "A: cold build, no export" "${plain}s"

# export_runs NAME CACHE_TO_SUFFIX: A's cold builds exporting to
# NAME-i/app:farm; prints the median and the delta over A plain.
export_runs() {
  local name=$1 extra=$2 r=() i t
  for i in $(seq "$RUNS"); do
    fresh a
    r+=("$(time_cmd kbuild a "$work/a.log" --cache-to "type=registry,ref=$reg/$name-$i/app:farm,mode=max$extra")")
  done
  t=$(printf '%s\n' "${r[@]}" | median)
  printf '%s (+%s)' "${t}s" "$(awk -v a="$t" -v b="$plain" 'BEGIN { printf "%.3fs", a - b }')"
}
report "A: cold build + --cache-to type=registry,mode=max (zstd)" "$(export_runs cache '')"
report "A: same, compression=gzip" "$(export_runs gzip ',compression=gzip')"

r=(); bytes=(); for i in $(seq "$RUNS"); do
  fresh b
  r+=("$(time_cmd kbuild b "$work/b.log" --cache-from "$reg/cache-$i/app:farm" -t "$reg/farm-$i/app:b" --push)")
  all_cached "$work/b.log"
  bytes+=("$(import_bytes "$work/b.log")")
done
report "B: empty store, --cache-from + --push, every step cached" "$(printf '%s\n' "${r[@]}" | median)s"
report "B: layer bytes downloaded" "$(printf '%s\n' "${bytes[@]}" | median)"

# The same through a directory: A exports once, B imports and pushes.
fresh a
kbuild a "$work/a.log" --cache-to "type=local,dest=$work/local-cache,mode=max"
r=(); bytes=(); for i in $(seq "$RUNS"); do
  fresh b
  r+=("$(time_cmd kbuild b "$work/b.log" --cache-from "type=local,src=$work/local-cache" -t "$reg/local-$i/app:b" --push)")
  all_cached "$work/b.log"
  bytes+=("$(import_bytes "$work/b.log")")
done
report "B: same through type=local (layers read from the directory)" "$(printf '%s\n' "${r[@]}" | median)s"
report "B: type=local layer bytes read" "$(printf '%s\n' "${bytes[@]}" | median)"
rm -rf "$work/local-cache" "$work/a" "$work/b"

# --- docker's classic builder, where it applies --------------------------------
if [ "${BENCH_DOCKER:-0}" != 1 ]; then
  report "docker: classic builder with --cache-from" "n/a: BENCH_DOCKER=1 not set"
elif ! docker info > /dev/null 2>&1; then
  report "docker: classic builder with --cache-from" "n/a: no docker engine answers"
else
  img=$reg/docker/app:farm
  dclean() { docker image rm -f "$img" "$reg/busybox:latest" > /dev/null 2>&1 || true; docker builder prune -af > /dev/null 2>&1 || true; }
  docker pull -q "$reg/busybox:latest" > /dev/null
  r=(); for _ in $(seq "$RUNS"); do
    dclean; docker pull -q "$reg/busybox:latest" > /dev/null
    r+=("$(time_cmd sh -c "DOCKER_BUILDKIT=0 docker build -q -t '$img' '$ctx' > /dev/null")")
  done
  report "docker A: cold build (classic builder)" "$(printf '%s\n' "${r[@]}" | median)s"
  docker push -q "$img" > /dev/null
  r=(); for _ in $(seq "$RUNS"); do
    dclean; docker pull -q "$reg/busybox:latest" > /dev/null
    r+=("$(time_cmd sh -c "docker pull -q '$img' > /dev/null && DOCKER_BUILDKIT=0 docker build -q --cache-from '$img' -t '$img' '$ctx' > /dev/null")")
  done
  report "docker B: pull image + build --cache-from it (all layers)" "$(printf '%s\n' "${r[@]}" | median)s"
fi
echo "load at end: $(uptime | sed 's/.*load average: //')"
