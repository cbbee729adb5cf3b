#!/bin/sh
# Makes the platform tests' toolchain image tar from this machine's Debian
# packages: gcc for amd64 and the arm64 cross gcc (static libc for both),
# the shared libraries their binaries need (ldd), and busybox as /bin/sh.
# Usage: toolchain.sh OUT.tar  (docs, locales, LTO and plugins left out).
set -eu
out=$1
pkgs="gcc-12 cpp-12 binutils binutils-x86-64-linux-gnu libc6-dev libgcc-12-dev linux-libc-dev
      gcc-12-aarch64-linux-gnu cpp-12-aarch64-linux-gnu binutils-aarch64-linux-gnu
      libc6-dev-arm64-cross libgcc-12-dev-arm64-cross libc6-arm64-cross
      linux-libc-dev-arm64-cross libgcc-s1-arm64-cross"
stage=$(mktemp -d "${out}.stage.XXXXXX")
trap 'rm -rf "$stage"' EXIT
list=$stage.list
: > "$list"
for p in $pkgs; do
  dpkg -L "$p" | while read -r f; do
    case "$f" in /usr/share/*|*/lto1|*lto-dump*|*/plugin/*|*/plugin) continue ;; esac
    if [ -f "$f" ] || [ -L "$f" ]; then echo "$f"; fi
  done >> "$list"
done
# Shared libraries of every ELF executable listed, and the loader.
for f in $(cat "$list"); do
  [ -L "$f" ] && continue
  [ -x "$f" ] || continue
  ldd "$f" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'
done | sort -u > "$list.libs"
for f in $(cat "$list.libs"); do
  echo "$f"
  # The library's own name may be a symlink chain: keep the target too.
  [ -L "$f" ] && readlink -f "$f"
done >> "$list"
sort -u "$list" | while read -r f; do
  # Directories through /lib -> usr/lib and the like are written by
  # their real path; the top-level links are added below.
  real=$(realpath "$(dirname "$f")")/$(basename "$f")
  mkdir -p "$stage$(dirname "$real")"
  cp -a "$f" "$stage$real"
done
rm -f "$list" "$list.libs"
for l in bin sbin lib lib64; do
  if [ -L "/$l" ]; then ln -sfn "$(readlink "/$l")" "$stage/$l"; fi
done
mkdir -p "$stage/usr/bin" "$stage/tmp" "$stage/src"
chmod 1777 "$stage/tmp"
cp /bin/busybox "$stage/usr/bin/busybox"
for a in sh cp mkdir cat rm ls echo uname; do
  [ -e "$stage/usr/bin/$a" ] || ln -s busybox "$stage/usr/bin/$a"
done
tar -C "$stage" -cf "$out.tmp" .
mv "$out.tmp" "$out"
