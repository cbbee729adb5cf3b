#!/usr/bin/env python3
"""Makes the hostile inputs `scripts/adversarial` feeds to kiln.

  adversarial-gen.py archives DOCKER_TAR OCI_TAR CANARY OUT N SEED
      writes N archives to OUT and OUT/cases.tsv, one line per archive:
      `file <TAB> use <TAB> expect <TAB> what <TAB> tag`, where use is `load`, `add`
      (as `ADD file /dst/` in a build) and expect is `fail` (kiln must
      refuse it) or `any` (refusing or loading are both fine; the caller
      still checks the store and the canary); tag is the image it names.
  adversarial-gen.py dockerfiles OUT N SEED
      writes N bad or odd Dockerfiles to OUT and OUT/cases.tsv
      (`file <TAB> expect <TAB> what`).

CANARY is a directory outside kiln's store: the escaping entries aim at it
(by absolute path, by `..`, through symlinks and hard links), so a caller
that hashes it before and after sees any write that got out.
Everything is seeded: the same SEED makes the same files.
"""

import gzip
import hashlib
import io
import json
import os
import random
import sys
import tarfile

# --- tar helpers ---------------------------------------------------------------


def tar_bytes(entries, fmt=tarfile.GNU_FORMAT):
    """A tar from (TarInfo, data-or-None) pairs."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
        for info, data in entries:
            if data is not None:
                info.size = len(data)
                t.addfile(info, io.BytesIO(data))
            else:
                t.addfile(info)
    return buf.getvalue()


def reg(name, data, mode=0o644):
    i = tarfile.TarInfo(name)
    i.mode = mode
    return (i, data)


def sym(name, target):
    i = tarfile.TarInfo(name)
    i.type = tarfile.SYMTYPE
    i.linkname = target
    return (i, None)


def hard(name, target):
    i = tarfile.TarInfo(name)
    i.type = tarfile.LNKTYPE
    i.linkname = target
    return (i, None)


def special(name, kind, major=1, minor=3):
    i = tarfile.TarInfo(name)
    i.type = kind
    i.devmajor, i.devminor = major, minor
    return (i, None)


def dirent(name):
    i = tarfile.TarInfo(name)
    i.type = tarfile.DIRTYPE
    i.mode = 0o755
    return (i, None)


def huge_size_entry(name, declared, data=b"x" * 1024):
    """A tar whose one entry declares `declared` bytes but holds `data`."""
    i = tarfile.TarInfo(name)
    i.size = len(data)
    hdr = bytearray(i.tobuf(tarfile.GNU_FORMAT))
    # The size field is 12 bytes at offset 124: octal, or base-256 (GNU)
    # with the top bit set when the number does not fit.
    if declared < 8**11:
        field = ("%011o" % declared).encode() + b"\0"
    else:
        field = bytearray(declared.to_bytes(12, "big"))
        field[0] |= 0x80
    hdr[124:136] = field
    hdr[148:156] = b"        "
    chk = sum(hdr[:512])
    hdr[148:156] = ("%06o" % chk).encode() + b"\0 "
    pad = (-len(data)) % 512
    return bytes(hdr[:512]) + data + b"\0" * pad + b"\0" * 1024


def sha(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()


# --- image archives --------------------------------------------------------------


def read_tar(path):
    """{name: bytes} of a tar's regular files, in order."""
    out = {}
    with tarfile.open(path) as t:
        for m in t.getmembers():
            if m.isfile():
                out[m.name] = t.extractfile(m).read()
    return out


def base_layer(docker_tar):
    """The first layer of the saved image (busybox) and its diff id."""
    files = read_tar(docker_tar)
    idx = json.loads(files["index.json"])
    man = json.loads(files["blobs/sha256/" + idx["manifests"][0]["digest"].split(":")[1]])
    d = man["layers"][0]["digest"]
    return files["blobs/sha256/" + d.split(":")[1]]


def config_for(diff_ids):
    return json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Env": ["PATH=/bin"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }
    ).encode()


def docker_archive(layers, tag, tamper=None):
    """A docker-archive (manifest.json + blobs) of `layers` (raw tar or
    gzip bytes). `tamper(entries, manifest)` may rewrite it before packing."""
    diff_ids = []
    for l in layers:
        raw = gzip.decompress(l) if l[:2] == b"\x1f\x8b" else l
        diff_ids.append(sha(raw))
    cfg = config_for(diff_ids)
    entries = {"blobs/sha256/" + sha(cfg)[7:]: cfg}
    names = []
    for l in layers:
        n = "blobs/sha256/" + sha(l)[7:]
        entries[n] = l
        names.append(n)
    manifest = [{"Config": "blobs/sha256/" + sha(cfg)[7:], "RepoTags": [tag], "Layers": names}]
    if tamper:
        tamper(entries, manifest)
    entries["manifest.json"] = json.dumps(manifest).encode() if not isinstance(manifest, bytes) else manifest
    return tar_bytes([reg(n, b) for n, b in entries.items()])


def oci_archive(layers, tag, tamper=None):
    """An OCI image layout tar of `layers`; `tamper(entries, index, manifest)`."""
    diff_ids = []
    descs = []
    blobs = {}
    for l in layers:
        gz = l[:2] == b"\x1f\x8b"
        raw = gzip.decompress(l) if gz else l
        diff_ids.append(sha(raw))
        mt = "application/vnd.oci.image.layer.v1.tar" + ("+gzip" if gz else "")
        descs.append({"mediaType": mt, "digest": sha(l), "size": len(l)})
        blobs[sha(l)] = l
    cfg = config_for(diff_ids)
    blobs[sha(cfg)] = cfg
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(cfg), "size": len(cfg)},
        "layers": descs,
    }
    index = {"schemaVersion": 2, "manifests": []}
    entries = {"oci-layout": b'{"imageLayoutVersion":"1.0.0"}'}
    if tamper:
        tamper(entries, index, manifest, blobs)
    mb = json.dumps(manifest).encode()
    blobs[sha(mb)] = mb
    index["manifests"].append(
        {
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": sha(mb),
            "size": len(mb),
            "annotations": {"org.opencontainers.image.ref.name": tag.split(":")[1], "io.containerd.image.name": tag},
        }
    )
    for d, b in blobs.items():
        entries.setdefault("blobs/sha256/" + d[7:], b)
    entries["index.json"] = json.dumps(index).encode()
    return tar_bytes([reg(n, b) for n, b in entries.items()])


def escaping_layers(canary):
    """Layer tars that try to write into `canary` (an absolute path)."""
    up = "../" * 24
    c = canary.lstrip("/")
    zeros = b"\0" * (256 << 20)
    bomb = gzip.compress(tar_bytes([reg("zeros", zeros)]), compresslevel=9)
    del zeros
    return [
        ("dotdot", tar_bytes([reg(up + c + "/dotdot-pwned", b"pwned\n")])),
        ("dotdot-dir", tar_bytes([dirent(up + c + "/newdir"), reg(up + c + "/newdir/f", b"x")])),
        ("absolute", tar_bytes([reg("/" + c + "/abs-pwned", b"pwned\n")])),
        ("symlink-abs-then-file", tar_bytes([sym("esc", canary), reg("esc/sym-pwned", b"pwned\n")])),
        ("symlink-rel-then-file", tar_bytes([sym("esc", up + c), reg("esc/symrel-pwned", b"pwned\n")])),
        ("symlink-chain", tar_bytes([sym("a", "b"), sym("b", canary), reg("a/chain-pwned", b"x")])),
        ("symlink-over-dir", tar_bytes([dirent("d"), sym("d", canary), reg("d/over-pwned", b"x")])),
        ("symlink-then-overwrite", tar_bytes([sym("s", canary + "/secret"), reg("s", b"overwritten\n")])),
        ("hardlink-outside-abs", tar_bytes([hard("hl", canary + "/secret")])),
        ("hardlink-outside-rel", tar_bytes([hard("hl", up + c + "/secret")])),
        ("hardlink-then-write", tar_bytes([hard("hl", canary + "/secret"), reg("hl", b"overwritten\n")])),
        ("hardlink-via-symlink", tar_bytes([sym("s", canary), hard("hl", "s/secret"), reg("hl", b"o\n")])),
        ("hardlink-to-missing", tar_bytes([hard("hl", "does/not/exist")])),
        ("hardlink-to-self", tar_bytes([hard("hl", "hl")])),
        ("device-nodes", tar_bytes([special("null", tarfile.CHRTYPE), special("sda", tarfile.BLKTYPE, 8, 0), special("fifo", tarfile.FIFOTYPE)])),
        ("duplicate-entries", tar_bytes([reg("dup", b"one"), reg("dup", b"two"), dirent("dup"), reg("dup", b"three")])),
        ("whiteout-escape", tar_bytes([reg(up + c + "/.wh.secret", b""), reg(".wh..wh..opq", b""), reg(".wh." + up + c, b"")])),
        ("long-name", tar_bytes([reg("n" * 5000, b"x"), reg("/".join(["d"] * 3000) + "/f", b"x")])),
        ("huge-declared-size", huge_size_entry("big", 8 << 30)),
        ("huge-base256-size", huge_size_entry("big", 1 << 70)),
        ("negative-mode-name-nul", tar_bytes([reg("a\0b", b"x", 0o7777)])),
        ("gzip-bomb-256M", bomb),
        ("not-a-tar", os.urandom(4096)),
        ("empty", b""),
    ]


def archives(docker_tar, oci_tar, canary, out, n, seed):
    rnd = random.Random(seed)
    os.makedirs(out, exist_ok=True)
    cases = []

    def put(name, data, use, expect, what, tag="mal:base"):
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
        cases.append((name, use, expect, what, tag))

    valid = {"docker": open(docker_tar, "rb").read(), "oci": open(oci_tar, "rb").read()}
    base = base_layer(docker_tar)
    hand = []
    for what, layer in escaping_layers(canary):
        hand.append(("layer-" + what, layer))
    # Each escaping layer: loaded on top of busybox (docker and OCI form), and
    # ADDed in a build.
    for i, (what, layer) in enumerate(hand):
        tag = "mal:%d" % i
        put("d-%s.tar" % what, docker_archive([base, layer], tag), "load", "any", "docker archive, " + what, tag)
        put("o-%s.tar" % what, oci_archive([base, layer], tag), "load", "any", "oci archive, " + what, tag)
        put("a-%s.tar" % what, layer, "add", "any", "ADD of " + what)

    # Broken manifests and blobs.
    def t_missing(e, m):
        del e[m[0]["Layers"][1]]

    def t_missing_cfg(e, m):
        del e[m[0]["Config"]]

    def t_wrong_layer(e, m):
        n = m[0]["Layers"][1]
        e[n] = e[n][:-1024] + b"X" + e[n][-1023:]

    def t_wrong_cfg(e, m):
        n = m[0]["Config"]
        e[n] = e[n].replace(b"amd64", b"AMD64")

    def t_layer_path_out(e, m):
        m[0]["Layers"][1] = "../../../../../../../../etc/passwd"

    def t_layer_abs(e, m):
        m[0]["Layers"][1] = "/etc/passwd"

    def t_cfg_abs(e, m):
        m[0]["Config"] = canary + "/secret"

    def t_bad_tag(e, m):
        m[0]["RepoTags"] = ["UPPER/../x:::y", "a" * 5000]

    def t_many_manifests(e, m):
        m.extend([dict(m[0], RepoTags=["many:%d" % k]) for k in range(2000)])

    small = tar_bytes([reg("f", b"hello\n")])
    for what, t in [
        ("missing-layer", t_missing),
        ("missing-config", t_missing_cfg),
        ("layer-digest-wrong", t_wrong_layer),
        ("config-digest-wrong", t_wrong_cfg),
        ("layer-path-dotdot", t_layer_path_out),
        ("layer-path-absolute", t_layer_abs),
        ("config-path-outside", t_cfg_abs),
    ]:
        put("d-%s.tar" % what, docker_archive([base, small], "bad:1", t), "load", "fail", "docker archive, " + what)
    # docker loads nothing from an empty manifest list and succeeds.
    put("d-manifest-empty-list.tar", tar_bytes([reg("manifest.json", b"[]")]), "load", "any", "docker archive, empty manifest list")
    put("d-bad-tags.tar", docker_archive([base, small], "bad:1", t_bad_tag), "load", "fail", "docker archive, bad RepoTags")
    put("d-2000-manifests.tar", docker_archive([small], "bad:1", t_many_manifests), "load", "any", "docker archive, 2001 manifests")
    for what, body in [
        ("manifest-garbage", os.urandom(300)),
        ("manifest-deep-json", b"[" * 200000 + b"]" * 200000),
        ("manifest-wrong-types", b'[{"Config": 7, "RepoTags": "x", "Layers": {"a": 1}}]'),
    ]:
        put("d-%s.tar" % what, tar_bytes([reg("manifest.json", body)]), "load", "fail", "docker archive, " + what)

    def o_missing(e, i, m, b):
        del b[m["layers"][1]["digest"]]

    def o_wrong(e, i, m, b):
        d = m["layers"][1]["digest"]
        b[d] = b[d][:-600] + b"Y" + b[d][-599:]

    def o_huge_size(e, i, m, b):
        m["layers"][1]["size"] = 1 << 62

    def o_bad_digest(e, i, m, b):
        m["layers"][1]["digest"] = "sha256:../../../../../../etc/passwd"

    def o_other_algo(e, i, m, b):
        m["layers"][1]["digest"] = "md5:d41d8cd98f00b204e9800998ecf8427e"

    def o_nested_index(e, i, m, b):
        inner = json.dumps({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.index.v1+json", "digest": "sha256:" + "0" * 64, "size": 10}]}).encode()
        b[sha(inner)] = inner
        i["manifests"].append({"mediaType": "application/vnd.oci.image.index.v1+json", "digest": sha(inner), "size": len(inner)})

    for what, t, expect in [
        ("missing-layer", o_missing, "fail"),
        ("layer-digest-wrong", o_wrong, "fail"),
        ("descriptor-size-huge", o_huge_size, "fail"),
        ("digest-path-escape", o_bad_digest, "fail"),
        ("digest-unknown-algorithm", o_other_algo, "fail"),
        ("index-loop-missing", o_nested_index, "any"),
    ]:
        put("o-%s.tar" % what, oci_archive([base, small], "bad:2", t), "load", expect, "oci archive, " + what)

    # Outer-level oddities.
    put("x-huge-entry.tar", huge_size_entry("manifest.json", 8 << 30), "load", "fail", "outer entry declaring 8 GiB")
    put("x-gzip-bomb.tar.gz", gzip.compress(tar_bytes([reg("zeros", b"\0" * (200 << 20))]), 9), "load", "fail", "gzip bomb (200 MiB of zeros) as the archive")
    put("x-symlink-manifest.tar", tar_bytes([sym("manifest.json", canary + "/secret")]), "load", "fail", "manifest.json a symlink outside")
    put("x-dotdot-entries.tar", tar_bytes([reg("../../../../../../../../" + canary.lstrip("/") + "/outer-pwned", b"x"), reg("manifest.json", b"[]")]), "load", "fail", "outer `..` entry")

    # Mutations of the valid archives: truncations and byte flips.
    fixed = len(cases)
    k = 0
    while len(cases) < max(n, fixed + 8):
        kind = "docker" if k % 3 else "oci"
        data = valid[kind]
        if k % 2 == 0:
            off = rnd.randrange(0, len(data))
            put("t-%s-%d.tar" % (kind, k), data[:off], "load", "any", "%s archive truncated at %d of %d" % (kind, off, len(data)))
        else:
            b = bytearray(data)
            flips = []
            for _ in range(rnd.randint(1, 8)):
                p = rnd.randrange(0, len(b))
                b[p] ^= 1 << rnd.randrange(8)
                flips.append(p)
            put("f-%s-%d.tar" % (kind, k), bytes(b), "load", "any", "%s archive, bits flipped at %s" % (kind, ",".join(map(str, flips))))
        k += 1

    with open(os.path.join(out, "cases.tsv"), "w") as f:
        for c in cases:
            f.write("\t".join(c) + "\n")


# --- Dockerfiles ----------------------------------------------------------------------

INSTR = ["FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT", "VOLUME", "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL", "MAINTAINER"]


def dockerfiles(out, n, seed):
    rnd = random.Random(seed)
    os.makedirs(out, exist_ok=True)
    cases = []

    def put(what, body, expect):
        name = "df-%03d" % len(cases)
        with open(os.path.join(out, name), "wb") as f:
            f.write(body if isinstance(body, bytes) else body.encode())
        cases.append((name, expect, what))

    put("valid control", "FROM busybox\nRUN true\n", "ok")
    put("empty file", "", "fail")
    put("only comments", "# nothing\n# here\n", "fail")
    put("unknown instruction", "FROM busybox\nFROBNICATE now\n", "fail")
    put("instruction before FROM", "RUN true\nFROM busybox\n", "fail")
    put("unknown RUN flag", "FROM busybox\nRUN --bogus=1 true\n", "fail")
    put("unknown COPY flag", "FROM busybox\nCOPY --frobnicate . /\n", "fail")
    put("bad --chmod", "FROM busybox\nCOPY --chmod=99999999 Dockerfile /x\n", "fail")
    put("bad --chown", "FROM busybox\nCOPY --chown=a:b:c Dockerfile /x\n", "fail")
    put("bad ADD --checksum", "FROM busybox\nADD --checksum=zz Dockerfile /x\n", "fail")
    put("bad FROM --platform", "FROM --platform=not/a/plat/form busybox\n", "fail")
    put("FROM with no image", "FROM\n", "fail")
    put("FROM AS empty", "FROM busybox AS\n", "fail")
    put("bad stage name", "FROM busybox AS Bad/Name\n", "fail")
    put("COPY --from missing stage", "FROM busybox\nCOPY --from=nowhere /x /x\n", "fail")
    put("stage cycle", "FROM s1 AS s0\nFROM s0 AS s1\n", "fail")
    put("self reference", "FROM s0 AS s0\n", "fail")
    put("ENV without value", "FROM busybox\nENV\n", "fail")
    put("ENV bad pair", "FROM busybox\nENV =x\n", "fail")
    put("EXPOSE out of range", "FROM busybox\nEXPOSE 99999999\n", "fail")
    put("EXPOSE garbage", "FROM busybox\nEXPOSE 80/bogus\n", "fail")
    put("HEALTHCHECK negative", "FROM busybox\nHEALTHCHECK --interval=-1s CMD true\n", "fail")
    put("HEALTHCHECK bad duration", "FROM busybox\nHEALTHCHECK --timeout=forever CMD true\n", "fail")
    put("STOPSIGNAL bogus", "FROM busybox\nSTOPSIGNAL SIGBOGUS\n", "fail")
    put("ONBUILD ONBUILD", "FROM busybox\nONBUILD ONBUILD RUN true\n", "fail")
    put("ONBUILD FROM", "FROM busybox\nONBUILD FROM busybox\n", "fail")
    put("SHELL not JSON", "FROM busybox\nSHELL /bin/sh -c\n", "fail")
    put("bad JSON exec form", 'FROM busybox\nRUN ["true", \n', "any")
    put("unterminated heredoc", "FROM busybox\nRUN <<EOF\necho hi\n", "any")
    put("heredoc empty word", "FROM busybox\nRUN <<\n", "any")
    put("heredoc bad quote", 'FROM busybox\nCOPY <<"EOF /x\nhi\nEOF\n', "any")
    put("10,000 heredocs on one line", "FROM busybox\nRUN " + " ".join("<<E%d" % i for i in range(10000)) + "\n", "any")
    put("heredoc 1 MB", "FROM busybox\nCOPY <<EOF /x\n" + ("y" * 1000 + "\n") * 1000 + "EOF\n", "ok")
    put("escape directive garbage", "# escape=xx\nFROM busybox\n", "any")
    put("syntax directive (no frontend image)", "# syntax=127.0.0.1:1/frontend\nFROM busybox\n", "any")
    put("line continuation at EOF", "FROM busybox\nRUN true \\", "any")
    put("1M line continuations", "FROM busybox\nRUN true" + " \\\n" * 1000000 + "\n", "any")
    put("50 MB line", "FROM busybox\nLABEL x=" + "a" * (50 << 20) + "\n", "any")
    put("10 MB comment", "#" + "c" * (10 << 20) + "\nFROM busybox\n", "any")
    put("NUL bytes", b"FROM busybox\nRUN tr\0ue\n", "any")
    put("invalid UTF-8", b"FROM busybox\nLABEL x=\xff\xfe\xc0\n", "any")
    put("BOM then FROM", b"\xef\xbb\xbfFROM busybox\n", "ok")
    for depth in (10, 1000, 100000):
        v = "x"
        for _ in range(depth):
            v = "${a:-" + v + "}"
        put("nested ${a:-...} depth %d" % depth, "FROM busybox\nARG a\nENV V=" + v + "\n", "any")
    put("unclosed ${", "FROM busybox\nENV V=${a:-${b\n", "fail")
    put("bad modifier ${a:?}", "FROM busybox\nARG a\nENV V=${a:?must be set}\n", "fail")
    put("ARG name garbage", "FROM busybox\nARG =x\n", "fail")
    put("3,000 chained stages", "FROM busybox AS s0\n" + "".join("FROM s%d AS s%d\n" % (i - 1, i) for i in range(1, 3000)), "any")
    put("300 stages COPY --from each", "FROM busybox AS s0\nRUN echo 0 > /f\n" + "".join("FROM busybox AS s%d\nCOPY --from=s%d /f /f\n" % (i, i - 1) for i in range(1, 300)), "any")
    put("100,000 ENV", "FROM busybox\n" + "".join("ENV K%d=%d\n" % (i, i) for i in range(100000)), "any")
    put("WORKDIR 4,000 deep", "FROM busybox\nWORKDIR /" + "/".join(["d"] * 4000) + "\n", "any")
    put("USER empty", "FROM busybox\nUSER\n", "fail")
    put("COPY no args", "FROM busybox\nCOPY\n", "fail")
    put("COPY outside context", "FROM busybox\nCOPY ../../../../etc/passwd /x\n", "any")
    put("ADD from unreachable URL", "FROM busybox\nADD http://127.0.0.1:1/x /x\n", "fail")
    put("RUN --mount bad type", "FROM busybox\nRUN --mount=type=bogus true\n", "fail")
    put("RUN --mount bind outside", "FROM busybox\nRUN --mount=type=bind,source=../../..,target=/m true\n", "any")
    put("RUN --network bogus", "FROM busybox\nRUN --network=bogus true\n", "fail")
    put("RUN --security insecure (not allowed)", "FROM busybox\nRUN --security=insecure true\n", "fail")
    put("image from unreachable registry", "FROM 127.0.0.1:1/nothing\n", "fail")
    put("bad image ref in FROM", "FROM UPPER/Case::x\n", "fail")
    put("FROM digest too short", "FROM busybox@sha256:abc\n", "fail")
    while len(cases) < n:
        k = rnd.randrange(3)
        if k == 0:
            body = os.urandom(rnd.randint(1, 65536))
            # A random file could in theory start with FROM; these never do.
            put("random bytes", b"\x01" + body, "fail")
        elif k == 1:
            lines = []
            for _ in range(rnd.randint(1, 40)):
                w = rnd.choice(INSTR + ["FOO", "--", "\\", "<<EOF", "${", "[", "\""])
                args = "".join(rnd.choice("ab$ {}:-=\\\"'[],/.<>&|;\t") for _ in range(rnd.randint(0, 60)))
                lines.append(w + " " + args)
            put("random instructions", "\n".join(lines) + "\n", "any")
        else:
            body = "FROM busybox\n" + "".join(
                rnd.choice(INSTR) + " " + "".join(rnd.choice("abc$={}[]\"' -\\") for _ in range(rnd.randint(0, 30))) + "\n"
                for _ in range(rnd.randint(1, 10))
            )
            put("busybox plus random instructions", body, "any")
    with open(os.path.join(out, "cases.tsv"), "w") as f:
        for c in cases:
            f.write("\t".join(c) + "\n")


if __name__ == "__main__":
    if sys.argv[1] == "archives":
        archives(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6]), int(sys.argv[7]))
    elif sys.argv[1] == "dockerfiles":
        dockerfiles(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        sys.exit("usage: adversarial-gen.py archives|dockerfiles ...")
