#!/usr/bin/env bash
# Seed corpora for ci/fuzz, made from real inputs: tar and gzip from GNU tar and a buildah image's layers, pycs from
# py_compile in every invalidation mode, manifests and history objects made by imprint, images saved by buildah.
#   usage: seeds.sh OUTDIR      (one directory per target; existing seeds are kept)
set -euo pipefail
OUT=$1
cd "$(dirname "$0")/../.."
ROOT=$PWD
[ -f "$OUT/.done" ] && exit 0
swift build --product imprint >/dev/null
IMPRINT=$ROOT/.build/debug/imprint
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
for t in tar gzip pyc dockerignore manifest image-json image-archive history-object history-export registry; do mkdir -p "$OUT/$t"; done

# A small context with the shapes the readers care about.
C=$W/ctx
mkdir -p "$C/app/pkg/__pycache__" "$C/app/$(printf 'd%.0s' {1..60})/$(printf 'e%.0s' {1..60})" "$C/empty"
echo 'print("hi")' >"$C/app/main.py"
echo 'x = 1' >"$C/app/pkg/mod.py"
printf 'data\0bin' >"$C/app/blob.bin"
ln -s ../app/main.py "$C/app/link"
ln "$C/app/main.py" "$C/app/hardlink"
mkfifo "$C/app/fifo"
printf 'node_modules\n*.pyc\n!keep.pyc\n**/__pycache__\n' >"$C/.dockerignore"

# tar and gzip: every GNU tar format, and compressed.
for fmt in gnu oldgnu pax ustar v7; do
  tar --format=$fmt -C "$C" -cf "$OUT/tar/$fmt.tar" . 2>/dev/null || true
done
gzip -9 -c "$OUT/tar/pax.tar" >"$OUT/gzip/pax.tar.gz"
cat "$OUT/gzip/pax.tar.gz" "$OUT/gzip/pax.tar.gz" >"$OUT/gzip/multi-member.gz"
printf 'hello' | gzip -1 >"$OUT/gzip/small.gz"

# pycs: timestamp, checked-hash, unchecked-hash, optimised, legacy.
python3 - "$C/app/pkg" "$OUT/pyc" <<'PY'
import py_compile, sys, shutil, os
src = os.path.join(sys.argv[1], "mod.py")
for mode in py_compile.PycInvalidationMode:
    for opt in (0, 1, 2):
        out = os.path.join(sys.argv[2], "%s-%d.pyc" % (mode.name, opt))
        py_compile.compile(src, cfile=out, invalidation_mode=mode, optimize=opt)
PY

# .dockerignore files with paths (file, NUL, newline-separated paths).
printf 'node_modules\n*.pyc\n!keep.pyc\n**/__pycache__\n\0app/x.pyc\nkeep.pyc\nnode_modules/a/b\n' >"$OUT/dockerignore/basic"
printf '*\n!src/**/*.go\nsrc/vendor\n\0src/a/b.go\nsrc/vendor/x.go\nREADME\n' >"$OUT/dockerignore/exceptions"
printf 'a\\d\n[[:alpha:]]x\n^b*\n{a,b}|c\n\0a1\nbx\nc\n' >"$OUT/dockerignore/regexp"

# manifests and history objects made by imprint.
"$IMPRINT" fingerprint "$C" -q -o "$OUT/manifest/context.json" || true
mkdir -p "$W/small/d" && printf 'x' >"$W/small/d/f" && ln -s d/f "$W/small/l"
"$IMPRINT" fingerprint "$W/small" -q -o "$OUT/manifest/small.json"
H=$W/history
"$IMPRINT" history add "$OUT/manifest/context.json" --history "$H" --tag one >/dev/null
"$IMPRINT" history add "$OUT/manifest/small.json" --history "$H" --tag two >/dev/null
"$IMPRINT" history export --history "$H" -o "$OUT/history-export/two-records.gz" >/dev/null 2>&1 || true
for f in "$H"/objects/*/*; do
  id=$(basename "$(dirname "$f")")$(basename "$f")
  { printf '%s' "$id" | xxd -r -p; cat "$f"; } >"$OUT/history-object/$id"
done

# images: an OCI layout, an oci-archive and a docker-archive from buildah.
if command -v buildah >/dev/null; then
  B="buildah --root $W/root --runroot $W/run --storage-driver vfs"
  c=$($B from scratch)
  $B copy "$c" "$C/app" /app >/dev/null
  $B commit -q "$c" localhost/seed:1 >/dev/null
  $B push -q localhost/seed:1 "oci:$W/oci:1" >/dev/null
  $B push -q localhost/seed:1 "oci-archive:$OUT/image-archive/oci-archive.tar:1" >/dev/null
  $B push -q localhost/seed:1 "docker-archive:$OUT/image-archive/docker-archive.tar:seed:1" >/dev/null
  # index.json NUL manifest NUL config, and the layers as tar/gzip seeds.
  idx=$W/oci/index.json
  man=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][0]["digest"].split(":")[1])' "$idx")
  cfg=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["config"]["digest"].split(":")[1])' "$W/oci/blobs/sha256/$man")
  { cat "$idx"; printf '\0'; cat "$W/oci/blobs/sha256/$man"; printf '\0'; cat "$W/oci/blobs/sha256/$cfg"; } >"$OUT/image-json/layout"
  for l in $(python3 -c 'import json,sys; print(" ".join(x["digest"].split(":")[1] for x in json.load(open(sys.argv[1]))["layers"]))' "$W/oci/blobs/sha256/$man"); do
    cp "$W/oci/blobs/sha256/$l" "$OUT/gzip/layer-$l.gz"
    gzip -dc "$W/oci/blobs/sha256/$l" >"$OUT/tar/layer-$l.tar"
  done
  # A registry's answers for that image: manifest, then config (raw HTTP responses, NUL-separated).
  python3 - "$W/oci/blobs/sha256/$man" "$W/oci/blobs/sha256/$cfg" "$OUT/registry" <<'PY'
import hashlib, sys, os
man, cfg, out = open(sys.argv[1], "rb").read(), open(sys.argv[2], "rb").read(), sys.argv[3]
def resp(status, body, headers):
    h = "".join("%s: %s\r\n" % kv for kv in headers.items())
    return ("HTTP/1.1 %s\r\n%sContent-Length: %d\r\n\r\n" % (status, h, len(body))).encode() + body
m = resp("200 OK", man, {"Content-Type": "application/vnd.oci.image.manifest.v1+json", "Docker-Content-Digest": "sha256:" + hashlib.sha256(man).hexdigest()})
c = resp("200 OK", cfg, {"Content-Type": "application/octet-stream"})
challenge = resp("401 Unauthorized", b"", {"WWW-Authenticate": 'Bearer realm="https://registry.fuzz/token",service="registry.fuzz",scope="repository:repo:pull"'})
token = resp("200 OK", b'{"token":"abc","expires_in":300}', {"Content-Type": "application/json"})
referrers = resp("200 OK", b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}', {"Content-Type": "application/vnd.oci.image.index.v1+json", "Link": '</v2/repo/referrers/sha256:x?n=1>; rel="next"'})
chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"%x\r\n" % len(man) + man + b"\r\n0\r\n\r\n"
open(os.path.join(out, "manifest-config"), "wb").write(m + b"\0" + c)
open(os.path.join(out, "bearer"), "wb").write(challenge + b"\0" + token + b"\0" + m + b"\0" + c)
open(os.path.join(out, "referrers"), "wb").write(m + b"\0" + c + b"\0" + referrers + b"\0" + referrers)
open(os.path.join(out, "chunked"), "wb").write(chunked + b"\0" + c)
PY
  $B rm "$c" >/dev/null
  $B rmi -a -f >/dev/null 2>&1 || true
fi
tar -C "$C" -cf "$OUT/image-archive/filesystem.tar" .
touch "$OUT/.done"
