#!/usr/bin/env bash
# A build farm sharing one build cache through a registry (issue 12), on
# the 430 MB / 10,000-file workload of bench/build.sh (c):
#
#   A plain     A's cold build, no export (the baseline)
#   A export    A's cold build with --cache-to type=registry,mode=max
#               (each run to a new repository, so every blob is uploaded),
#               with gzip (the default) and with compression=zstd
#   B import    B's build from an empty store with --cache-from that cache:
#               every step cached; the final image's layers are fetched
#               into B's store (lazy import fetches nothing else)
#   B bytes     layer bytes B downloaded (kiln's progress line)
#
# "cold" and "empty" stores hold only the base image, pulled before the
# timer starts (both builders pull the same pushed busybox, so its cache
# key, the manifest digest, is the same). Each figure is the median of
# $RUNS runs (default 3). KILN=path picks the binary (default: a release
# build). kiln has no --push yet on this branch, so B's figure includes
# writing the image into B's store, which needs the layers: with --push
# alone, the existing-blob checks would let it skip them.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
KILN=${KILN:-target/release/kiln}
[ -x "$KILN" ] || cargo build --release --locked >&2
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

r=(); for _ in $(seq "$RUNS"); do fresh a; r+=("$(time_cmd kbuild a "$work/a.log")"); done
report "A: cold build, no export" "$(printf '%s\n' "${r[@]}" | median)s"

r=(); for i in $(seq "$RUNS"); do
  fresh a
  r+=("$(time_cmd kbuild a "$work/a.log" --cache-to "type=registry,ref=$reg/cache-$i/app:farm,mode=max")")
done
report "A: cold build + --cache-to type=registry,mode=max" "$(printf '%s\n' "${r[@]}" | median)s"

r=(); for i in $(seq "$RUNS"); do
  fresh a
  r+=("$(time_cmd kbuild a "$work/a.log" --cache-to "type=registry,ref=$reg/zstd-$i/app:farm,mode=max,compression=zstd")")
done
report "A: same, compression=zstd" "$(printf '%s\n' "${r[@]}" | median)s"

r=(); bytes=(); for i in $(seq "$RUNS"); do
  fresh b
  r+=("$(time_cmd kbuild b "$work/b.log" --cache-from "$reg/cache-$i/app:farm")")
  # Only the context load may run (it is read on every build).
  if [ "$(grep -c '^#[0-9]* DONE' "$work/b.log")" -gt 1 ]; then
    echo "B ran a step:" >&2; cat "$work/b.log" >&2; exit 1
  fi
  bytes+=("$(sed -n 's/^importing cache: fetched [0-9]* layer blobs, \([0-9]*\) bytes$/\1/p' "$work/b.log")")
done
report "B: empty store, --cache-from, every step cached" "$(printf '%s\n' "${r[@]}" | median)s"
report "B: layer bytes downloaded" "$(printf '%s\n' "${bytes[@]}" | median)"
