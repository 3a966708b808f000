#!/usr/bin/env bash
# Diff speed: two ~1 GiB images (umoci) that share their base layers and differ in a 20 MiB top layer.
# Compares `imprint diff` with the manual way (skopeo copy + umoci unpack of both + diff -r) and with the time
# to just decompress every layer of both images (gzip -dc).
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product imprint >/dev/null
IMPRINT="$(swift build -c release --show-bin-path)/imprint"
WORK="${BENCH_DIR:-$(mktemp -d /tmp/imprint-bench-diff.XXXXXX)}"; mkdir -p "$WORK"
# BENCH_DIR keeps the generated layout between runs (generation takes minutes); a temporary one is removed.
[ -n "${BENCH_DIR:-}" ] || trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
gen() { # gen DIR MiB SEED: files of compressible pseudo-text
  python3 - "$@" <<'PY'
import os, sys, random
root, mib, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]); rnd = random.Random(seed)
words = [bytes(rnd.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(rnd.randint(2, 9))) for _ in range(4096)]
total = 0; i = 0
while total < mib << 20:
    d = os.path.join(root, f"d{i // 100:03d}"); os.makedirs(d, exist_ok=True)
    size = rnd.choice([8 << 10, 64 << 10, 512 << 10, 2 << 20])
    out = bytearray()
    while len(out) < size: out += rnd.choice(words) + (b"\n" if rnd.random() < 0.1 else b" ")
    with open(os.path.join(d, f"f{i:05d}.txt"), "wb") as f: f.write(out[:size])
    total += size; i += 1
PY
}
if [ ! -f L/.complete ]; then
  rm -rf L B
  umoci init --layout L >/dev/null; umoci new --image L:base >/dev/null
  umoci unpack --image L:base B >/dev/null
  for n in 1 2 3 4; do gen "B/rootfs/usr/share/data$n" 250 "$n"; umoci repack --refresh-bundle --image L:base B >/dev/null; done
  for side in a b; do
    rm -rf B && umoci unpack --image L:base B >/dev/null
    gen "B/rootfs/app" 20 "$([ $side = a ] && echo 100 || echo 200)"
    umoci repack --image L:$side B >/dev/null
  done
  rm -rf B
  touch L/.complete
fi
size=$(du -sm L | cut -f1)

secs() { local s e; s=$(date +%s.%N); "$@" >/dev/null 2>&1 || true; e=$(date +%s.%N); echo "$e - $s" | bc -l; }
manual() {
  rm -rf M && mkdir M
  skopeo copy -q oci:L:a oci:M/la:a && skopeo copy -q oci:L:b oci:M/lb:b
  umoci unpack --image M/la:a M/ua >/dev/null && umoci unpack --image M/lb:b M/ub >/dev/null
  diff -r M/ua/rootfs M/ub/rootfs >/dev/null || true
  rm -rf M
}
decompress_all() {
  for img in a b; do
    python3 - "$img" <<'PY' | while read -r blob; do gzip -dc "L/blobs/sha256/$blob" > /dev/null; done
import json, sys
idx = json.load(open("L/index.json"))
for m in idx["manifests"]:
    if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == sys.argv[1]:
        man = json.load(open("L/blobs/sha256/" + m["digest"].split(":")[1]))
        for l in man["layers"]: print(l["digest"].split(":")[1])
PY
  done
}
export -f manual decompress_all; export IMPRINT
"$IMPRINT" diff oci:L:a oci:L:b >/dev/null || true   # warm the page cache
t_imp=$(secs "$IMPRINT" diff oci:L:a oci:L:b)
t_man=$(secs bash -c manual)
t_dec=$(secs bash -c decompress_all)
rss=$( (/usr/bin/time -f %M "$IMPRINT" diff oci:L:a oci:L:b 2>&1 >/dev/null || true) | tail -1)
echo "imprint diff benchmark ($(nproc) cores): layout $size MiB, images share 4 x 250 MiB layers, differ in a 20 MiB top layer"
printf '  %-52s %8.2f s\n' "imprint diff oci:L:a oci:L:b" "$t_imp"
printf '  %-52s %8.2f s  %5.1fx slower\n' "skopeo copy + umoci unpack (both) + diff -r" "$t_man" "$(echo "$t_man / $t_imp" | bc -l)"
printf '  %-52s %8.2f s  %5.1fx imprint\n' "gzip -dc of every layer of both images" "$t_dec" "$(echo "$t_dec / $t_imp" | bc -l)"
printf '  %-52s %8s MiB\n' "imprint peak RSS" "$((rss / 1024))"
