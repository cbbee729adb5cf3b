#!/bin/sh
# Container start+stop latency: `kiln run --rm --rootfs <busybox> true`
# and `kiln run --rm busybox true` (the same rootfs imported as an image:
# store lookup, lease, snapshot dirs on top of the rootfs run) against
# `runc run` of an equivalent bundle (same busybox rootfs, `runc spec`
# config running `true`), 50 runs each, medians reported.
#
# Detached containers (issue 13): `run -d` + `rm -f` as one cycle and
# `exec` into a running container, next to docker's same commands when
# `dockerd` is installed: the script starts its own daemon (own data root,
# socket and pid file, `--iptables=false --bridge=none`, so both sides run
# with `--network none`; kiln's default bridge is measured on its own line)
# and stops it by pid at the end.
#
# Usage (as root): bench/run.sh [RUNS]
# Needs: runc, hyperfine, jq, /bin/busybox; dockerd optional. Builds kiln in
# release mode.
set -eu

runs=${1:-50}
here=$(cd "$(dirname "$0")/.." && pwd)
cargo build --release --manifest-path "$here/Cargo.toml" >/dev/null 2>&1 \
    || cargo build --release --manifest-path "$here/Cargo.toml"
kiln="$here/target/release/kiln"

work=$(mktemp -d /tmp/kiln-bench.XXXXXX)
dockerd_pid=
cleanup() {
    if [ -n "$dockerd_pid" ]; then
        kill "$dockerd_pid" 2>/dev/null || true
        # dockerd unmounts its data root on the way out; wait for it.
        while kill -0 "$dockerd_pid" 2>/dev/null; do sleep 0.1; done
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# The busybox rootfs: what `busybox --install -s` makes, with links that
# resolve inside the rootfs.
rootfs="$work/bundle/rootfs"
mkdir -p "$rootfs/bin" "$rootfs/etc" "$rootfs/tmp"
cp /bin/busybox "$rootfs/bin/busybox"
for applet in $(/bin/busybox --list); do
    [ "$applet" = busybox ] || ln -s busybox "$rootfs/bin/$applet"
done
echo 'root:x:0:0:root:/root:/bin/sh' >"$rootfs/etc/passwd"
echo 'root:x:0:' >"$rootfs/etc/group"
# Mount points every image has (docker's builder creates the /etc files):
# without them each kiln run would create them in its fresh upper layer,
# while runc creates them once in its persistent rootfs.
mkdir -p "$rootfs/proc" "$rootfs/sys" "$rootfs/dev"
touch "$rootfs/etc/hosts" "$rootfs/etc/hostname" "$rootfs/etc/resolv.conf"

# The same rootfs as an image in kiln's store.
tar -C "$rootfs" -cf "$work/busybox.tar" .
"$kiln" --root "$work/kiln-root" import "$work/busybox.tar" busybox >/dev/null

# runc's default spec, non-interactive, running `true`.
(cd "$work/bundle" && runc spec)
jq '.process.terminal = false | .process.args = ["true"]' \
    "$work/bundle/config.json" >"$work/bundle/config.tmp"
mv "$work/bundle/config.tmp" "$work/bundle/config.json"

hyperfine -N --warmup 5 --runs "$runs" --export-json "$work/result.json" \
    -n kiln "$kiln --root $work/kiln-root run --rm --rootfs $rootfs true" \
    -n kiln-image "$kiln --root $work/kiln-root run --rm busybox true" \
    -n runc "runc --root $work/runc-root run --bundle $work/bundle kiln-bench" \
    >/dev/null

rm_bench="sh -c '$kiln --root $work/kiln-root rm -f kiln-bench >/dev/null 2>&1; true'"
hyperfine -N --warmup 3 --runs "$runs" --export-json "$work/detached.json" \
    --prepare "$rm_bench" --cleanup "$rm_bench" \
    -n run-d "$kiln --root $work/kiln-root run -d --name kiln-bench busybox sleep 1000" \
    >/dev/null
hyperfine -N --warmup 3 --runs "$runs" --export-json "$work/rm.json" \
    --prepare "$kiln --root $work/kiln-root run -d --name kiln-bench busybox sleep 1000" \
    -n rm-f "$kiln --root $work/kiln-root rm -f kiln-bench" \
    >/dev/null
# exec into one running container (issue 13's target: <= 50 ms).
$kiln --root "$work/kiln-root" run -d --name kiln-bench-exec busybox sleep 1000 >/dev/null
hyperfine -N --warmup 3 --runs "$runs" --export-json "$work/exec.json" \
    -n exec "$kiln --root $work/kiln-root exec kiln-bench-exec true" \
    >/dev/null
$kiln --root "$work/kiln-root" rm -f kiln-bench-exec >/dev/null

# The same detached cycle and exec, kiln and docker, both without a network.
k="$kiln --root $work/kiln-root"
hyperfine -N --warmup 3 --runs "$runs" --export-json "$work/cycle.json" \
    -n kiln-cycle "sh -c '$k run -d --network none --name kc busybox sleep 1000 >/dev/null && $k rm -f kc >/dev/null'" \
    -n kiln-cycle-bridge "sh -c '$k run -d --name kcb busybox sleep 1000 >/dev/null && $k rm -f kcb >/dev/null'" \
    >/dev/null
docker_ok=
if command -v dockerd >/dev/null 2>&1 && command -v docker >/dev/null 2>&1; then
    dsock="unix://$work/docker.sock"
    dockerd --iptables=false --bridge=none --data-root "$work/docker" \
        --exec-root "$work/docker-exec" --pidfile "$work/docker.pid" \
        -H "$dsock" >"$work/dockerd.log" 2>&1 &
    dockerd_pid=$!
    d="docker -H $dsock"
    for _ in $(seq 100); do $d info >/dev/null 2>&1 && break; sleep 0.2; done
    if $d info >/dev/null 2>&1 && $d import "$work/busybox.tar" kiln-bench-busybox >/dev/null; then
        hyperfine -N --warmup 3 --runs "$runs" --export-json "$work/docker.json" \
            -n docker-cycle "sh -c '$d run -d --network none --name dc kiln-bench-busybox sleep 1000 >/dev/null && $d rm -f dc >/dev/null'" \
            >/dev/null
        $d run -d --network none --name dc-exec kiln-bench-busybox sleep 1000 >/dev/null
        hyperfine -N --warmup 3 --runs "$runs" --export-json "$work/docker-exec.json" \
            -n docker-exec "$d exec dc-exec true" >/dev/null
        $d rm -f dc-exec >/dev/null
        docker_ok=1
    else
        echo "dockerd did not start (see below); docker figures skipped" >&2
        tail -5 "$work/dockerd.log" >&2
    fi
fi

median() {
    jq -r --arg n "$1" '.results[] | select(.command == $n) | .median * 1000' "${2:-$work/result.json}"
}
kiln_ms=$(median kiln)
image_ms=$(median kiln-image)
runc_ms=$(median runc)
ratio() { echo "$1 $2" | awk '{printf "%.2f", $1 / $2}'; }
printf 'kiln run --rm --rootfs DIR true: median %6.1f ms  (%s x runc)\n' "$kiln_ms" "$(ratio "$kiln_ms" "$runc_ms")"
printf 'kiln run --rm busybox true:      median %6.1f ms  (%s x runc)\n' "$image_ms" "$(ratio "$image_ms" "$runc_ms")"
printf 'runc run true:                   median %6.1f ms\n' "$runc_ms"
printf 'kiln run -d busybox sleep:       median %6.1f ms\n' "$(median run-d "$work/detached.json")"
printf 'kiln rm -f (running container):  median %6.1f ms\n' "$(median rm-f "$work/rm.json")"
printf 'kiln exec (running container):   median %6.1f ms\n' "$(median exec "$work/exec.json")"
printf 'kiln run -d + rm -f (no network): median %6.1f ms\n' "$(median kiln-cycle "$work/cycle.json")"
printf 'kiln run -d + rm -f (bridge):     median %6.1f ms\n' "$(median kiln-cycle-bridge "$work/cycle.json")"
if [ -n "$docker_ok" ]; then
    printf 'docker run -d + rm -f (no net):   median %6.1f ms\n' "$(median docker-cycle "$work/docker.json")"
    printf 'docker exec (running container):  median %6.1f ms\n' "$(median docker-exec "$work/docker-exec.json")"
fi
