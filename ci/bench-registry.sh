#!/usr/bin/env bash
# Benchmark: reading the imprint manifest of a ~1 GiB image straight from a registry (manifest + config + the
# stamp layer only) against copying the image to disk with skopeo and running imprint on the local copy.
#
# Starts Debian's docker-registry on 127.0.0.1 (temporary storage), builds the image with umoci, stamps it,
# pushes it with skopeo, times both paths and stops the registry. Needs: docker-registry, skopeo, umoci, python3.
#   ci/bench-registry.sh                 # builds and uses the release binary (or $IMPRINT)
#   SIZE_MIB=256 ci/bench-registry.sh    # a smaller image
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
if [ -z "${IMPRINT:-}" ]; then
  (cd "$root" && swift build -c release --product imprint >/dev/null)
  IMPRINT="$(cd "$root" && swift build -c release --show-bin-path)/imprint"
fi
SIZE_MIB="${SIZE_MIB:-1024}"
FILES="${FILES:-2048}"
[ -x "$IMPRINT" ] || { echo "no imprint binary at $IMPRINT" >&2; exit 2; }
for t in docker-registry skopeo umoci python3; do command -v "$t" >/dev/null || { echo "missing $t (ci/install-deps.sh)" >&2; exit 2; }; done

work="$(mktemp -d "${TMPDIR:-/tmp}/imprint-bench-registry.XXXXXX")"
registry_pid=""
cleanup() {
  if [ -n "$registry_pid" ]; then kill "$registry_pid" 2>/dev/null || true; wait "$registry_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
host="127.0.0.1:$port"
cat > "$work/config.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: $work/storage
http:
  addr: $host
EOF
docker-registry serve "$work/config.yml" > "$work/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 100); do curl -sf "http://$host/v2/" >/dev/null && break; sleep 0.1; done

now() { date +%s.%N; }
elapsed() { python3 -c "print(f'{$2 - $1:.2f}')"; }

echo "== building a ${SIZE_MIB} MiB image with $FILES files"
t0=$(now)
cd "$work"
umoci init --layout img >/dev/null
umoci new --image img:base >/dev/null
umoci unpack --rootless --image img:base bundle >/dev/null
# Random-ish content: 7/8 random bytes, 1/8 repeated text per file, so gzip keeps most of the size.
python3 - "$work/bundle/rootfs/data" "$SIZE_MIB" "$FILES" <<'PY'
import os, sys
root, size_mib, files = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
per = size_mib * 1024 * 1024 // files
for i in range(files):
    d = os.path.join(root, f"d{i % 64:02d}")
    os.makedirs(d, exist_ok=True)
    text = (f"line {i} of the benchmark image\n" * (per // 64 + 1)).encode()[: per // 8]
    with open(os.path.join(d, f"f{i:05d}.bin"), "wb") as f:
        f.write(os.urandom(per - len(text)))
        f.write(text)
PY
umoci repack --image img:base bundle >/dev/null
t1=$(now); echo "   built in $(elapsed "$t0" "$t1") s"

echo "== fingerprint, stamp, push"
"$IMPRINT" fingerprint bundle/rootfs -o manifest.json 2>/dev/null
expected="$(python3 -c 'import json,sys; print(json.load(open("manifest.json"))["digest"])')"
"$IMPRINT" stamp img:base --manifest manifest.json >/dev/null
t2=$(now)
skopeo copy -q --dest-tls-verify=false oci:img:base "docker://$host/bench:stamped"
t3=$(now); echo "   pushed in $(elapsed "$t2" "$t3") s"
image_bytes=$(du -sb "$work/storage" | cut -f1)

log_mark=$(wc -l < "$work/registry.log")
echo "== A: imprint extract registry:// (manifest + config + stamp layer) and compare to the expected digest"
ta0=$(now)
"$IMPRINT" extract "registry://$host/bench:stamped" -o a.json
got="$(python3 -c 'import json; print(json.load(open("a.json"))["digest"])')"
ta1=$(now)
[ "$got" = "$expected" ] || { echo "digest mismatch: $got != $expected" >&2; exit 1; }
blob_gets=$(tail -n +"$((log_mark + 1))" "$work/registry.log" | grep -c '"GET /v2/bench/blobs/' || true)
a=$(elapsed "$ta0" "$ta1")
echo "   $a s ($blob_gets blob GETs)"

echo "== B: skopeo copy to disk, then imprint extract on the local copy"
tb0=$(now)
skopeo copy -q --src-tls-verify=false "docker://$host/bench:stamped" oci:local:stamped
tb1=$(now)
"$IMPRINT" extract local:stamped -o b.json
tb2=$(now)
cmp -s a.json b.json || { echo "A and B extracted different manifests" >&2; exit 1; }
b=$(elapsed "$tb0" "$tb2")
echo "   $b s (skopeo copy $(elapsed "$tb0" "$tb1") s + imprint $(elapsed "$tb1" "$tb2") s)"

echo "== C: full tree from the registry (imprint inspect --tree-digest registry://) vs from the local copy"
tc0=$(now)
remote_tree="$("$IMPRINT" inspect "registry://$host/bench:stamped" --tree-digest --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["tree"]["digest"])')"
tc1=$(now)
local_tree="$("$IMPRINT" inspect local:stamped --tree-digest --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["tree"]["digest"])')"
tc2=$(now)
[ "$remote_tree" = "$local_tree" ] || { echo "tree digests differ" >&2; exit 1; }
echo "   registry $(elapsed "$tc0" "$tc1") s; local copy $(elapsed "$tc1" "$tc2") s (+ skopeo copy $(elapsed "$tb0" "$tb1") s)"

echo "== D: imprint verify --expect: --stamp-only from the registry, full (files compared) from the registry, and full on the skopeo copy"
td0=$(now)
"$IMPRINT" verify "registry://$host/bench:stamped" --expect "$expected" --stamp-only >/dev/null
td1=$(now)
"$IMPRINT" verify "registry://$host/bench:stamped" --expect "$expected" --at / >/dev/null
td2=$(now)
"$IMPRINT" verify local:stamped --expect "$expected" --at / >/dev/null
td3=$(now)
echo "   --stamp-only $(elapsed "$td0" "$td1") s; full from registry $(elapsed "$td1" "$td2") s; skopeo copy + full verify of the copy $(python3 -c "print(round($(elapsed "$tb0" "$tb1") + $(elapsed "$td2" "$td3"), 2))") s"

echo
echo "image in registry: $((image_bytes / 1048576)) MiB; imprint: $IMPRINT"
python3 -c "print(f'extract-from-registry speed-up (B / A): {$b / $a:.1f}x  (A {$a:.2f} s, B {$b:.2f} s)')"
