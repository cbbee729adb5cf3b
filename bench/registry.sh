#!/usr/bin/env bash
# Pull and push throughput of one big image against a local registry
# (Debian's docker-registry on 127.0.0.1), kiln next to skopeo copy.
#
#   bench/registry.sh            # 200 MB layer, 3 runs each
#   SIZE_MB=50 RUNS=1 bench/registry.sh
#
# What is timed:
#   pull  skopeo copy docker://… oci:DIR        (download + write blobs)
#         kiln pull                              (download + verify + store + unpack)
#   push  skopeo copy oci:DIR docker://…        (upload of the gzip layer as is)
#         kiln push                              (upload of the same gzip layer)
# Each run starts from nothing: an empty kiln root / OCI dir for pulls, an
# empty registry storage for pushes (so nothing is skipped or mounted).
set -euo pipefail
cd "$(dirname "$0")/.."
KILN=${KILN:-target/release/kiln}
SIZE_MB=${SIZE_MB:-200}
RUNS=${RUNS:-3}
[ -x "$KILN" ] || cargo build --release --quiet
work=$(mktemp -d /tmp/kiln-bench.XXXXXX)
cleanup() {
    # Registries are started inside $(...) subshells: their pids are in files.
    for f in "$work"/*/pid; do
        [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start_registry() { # name -> prints host:port
    local name=$1 port
    port=$(free_port)
    mkdir -p "$work/$name"
    cat >"$work/$name/config.yml" <<YML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $work/$name/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
YML
    docker-registry serve "$work/$name/config.yml" >"$work/$name/log" 2>&1 &
    echo $! >"$work/$name/pid"
    for _ in $(seq 100); do
        curl -fs "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && break
        sleep 0.1
    done
    echo "127.0.0.1:$port"
}


echo "making a ${SIZE_MB} MB image (one gzip layer of random data)..." >&2
python3 - "$work/oci" "$SIZE_MB" <<'PY'
import sys, os, io, json, gzip, hashlib, tarfile
out, mb = sys.argv[1], int(sys.argv[2])
os.makedirs(out + "/blobs/sha256")
def put(b):
    d = hashlib.sha256(b).hexdigest()
    open(f"{out}/blobs/sha256/{d}", "wb").write(b)
    return "sha256:" + d
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as t:
    data = os.urandom(mb << 20)
    ti = tarfile.TarInfo("big.bin"); ti.size = len(data); ti.mode = 0o644
    t.addfile(ti, io.BytesIO(data))
raw = buf.getvalue()
gz = gzip.compress(raw, compresslevel=1, mtime=0)
cfg = json.dumps({"architecture": "amd64", "os": "linux",
                  "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(raw).hexdigest()]}}).encode()
m = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": put(cfg), "size": len(cfg)},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": put(gz), "size": len(gz)}]}).encode()
json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
           "digest": put(m), "size": len(m), "annotations": {"org.opencontainers.image.ref.name": "v1"}}]},
          open(out + "/index.json", "w"))
json.dump({"imageLayoutVersion": "1.0.0"}, open(out + "/oci-layout", "w"))
PY

reg=$(start_registry reg)
seed() { rm -rf "$work/reg/data"; skopeo copy -q --dest-tls-verify=false "oci:$work/oci:v1" "docker://$reg/bench/img:v1"; }
seed

printf '%-22s %8s %8s %8s\n' "operation (${SIZE_MB} MB)" "wall s" "MB/s" "cpu s"
# Wall time and the CPU time (user + sys) of the command and its children:
# on a loaded machine the CPU figure is the steadier one.
timed() {
    local label=$1
    shift
    /usr/bin/time -f '%e %U %S' -o "$work/time" "$@" >/dev/null
    read -r wall user sys <"$work/time"
    printf '%-22s %8.2f %8s %8.2f\n' "$label" "$wall" \
        "$(python3 -c "print(f'{$SIZE_MB/max($wall,0.01):.1f}')")" \
        "$(python3 -c "print($user+$sys)")"
}

for i in $(seq "$RUNS"); do
    rm -rf "$work/pulled"
    timed "skopeo pull #$i" skopeo copy -q --src-tls-verify=false "docker://$reg/bench/img:v1" "oci:$work/pulled:v1"
    rm -rf "$work/root"
    timed "kiln pull #$i" "$KILN" --root "$work/root" pull "$reg/bench/img:v1"
done
# Pushes go into an emptied registry (its storage wiped; the filesystem
# driver keeps no cache), so every blob is uploaded.
for i in $(seq "$RUNS"); do
    rm -rf "$work/reg/data"
    timed "skopeo push #$i" skopeo copy -q --dest-tls-verify=false "oci:$work/oci:v1" "docker://$reg/bench/img:v1"
    rm -rf "$work/reg/data" "$work/root/blob-sources"
    timed "kiln push #$i" "$KILN" --root "$work/root" push "$reg/bench/img:v1"
done
