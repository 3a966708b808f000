#!/usr/bin/env bash
# Verify speed and memory: `imprint verify -` on a 1 GiB tar stream against `sha256sum -c` of the same files
# unpacked on disk (single process, and xargs -P cores). Peak RSS shows memory stays bounded.
# IMPRINT_BASELINE=path/to/previous/imprint adds the previous release, timed in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product imprint >/dev/null
IMPRINT="$(swift build -c release --show-bin-path)/imprint"
WORK="${BENCH_DIR:-$(mktemp -d /tmp/imprint-bench-verify.XXXXXX)}"; mkdir -p "$WORK"
trap 'rm -rf "$WORK"' EXIT
CORES=$(nproc)
python3 - "$WORK/app" <<'PY'
import os, sys, random
root = sys.argv[1]; rnd = random.Random(7)
block = bytes(rnd.getrandbits(8) for _ in range(1 << 16))
total = 0; i = 0
while total < (1 << 30):
    d = os.path.join(root, f"pkg{i // 200:03d}"); os.makedirs(d, exist_ok=True)
    size = rnd.choice([4096, 65536, 1 << 20, 4 << 20])
    with open(os.path.join(d, f"f{i:05d}.bin"), "wb") as f:
        left = size
        while left > 0:
            n = min(left, len(block)); f.write(block[:n - 1] + bytes([i % 256])); left -= n
    total += size; i += 1
PY
"$IMPRINT" fingerprint "$WORK/app" --ignore-file /dev/null -q -o "$WORK/manifest.json"
"$IMPRINT" fingerprint "$WORK/app" --ignore-file /dev/null -q --format sha256sum -o "$WORK/SHA256SUMS"
tar -C "$WORK/app" -cf "$WORK/app.tar" .
bytes=$(stat -c %s "$WORK/app.tar"); files=$(wc -l < "$WORK/SHA256SUMS")
cat "$WORK/app.tar" > /dev/null   # warm the page cache for everyone

secs() { local s e; s=$(date +%s.%N); "$@" >/dev/null 2>&1; e=$(date +%s.%N); echo "$e - $s" | bc -l; }
best() { local b=""; for _ in 1 2 3; do t=$(secs "$@"); if [ -z "$b" ] || [ "$(echo "$t < $b" | bc -l)" = 1 ]; then b=$t; fi; done; printf '%.3f' "$b"; }
verify_stream() { "$IMPRINT" verify - --manifest "$WORK/manifest.json" --at / < "$WORK/app.tar"; }
baseline_stream() { "$IMPRINT_BASELINE" verify - --manifest "$WORK/manifest.json" --at / < "$WORK/app.tar"; }
sums_single() { cd "$WORK/app" && sha256sum --quiet -c "$WORK/SHA256SUMS"; }
sums_par() { cd "$WORK/app" && split -n l/"$CORES" "$WORK/SHA256SUMS" "$WORK/part." && ls "$WORK"/part.* | xargs -P"$CORES" -n1 sha256sum --quiet -c; rm -f "$WORK"/part.*; }
export -f verify_stream baseline_stream sums_single sums_par; export IMPRINT WORK CORES IMPRINT_BASELINE

verify_stream >/dev/null || { echo "verify failed" >&2; exit 1; }
t_v=$(best bash -c verify_stream)
t_s=$(best bash -c sums_single)
t_p=$(best bash -c sums_par)
rss=$(/usr/bin/time -f %M bash -c verify_stream 2>&1 >/dev/null | tail -1)
echo "imprint verify benchmark ($CORES cores): $files files, $((bytes / 1048576)) MiB tar stream"
printf '  %-44s %8s s  %6.0f MB/s\n' "imprint verify - < app.tar" "$t_v" "$(echo "$bytes / 1000000 / $t_v" | bc -l)"
printf '  %-44s %8s s  %6.2fx imprint\n' "sha256sum -c (unpacked files)" "$t_s" "$(echo "$t_s / $t_v" | bc -l)"
printf '  %-44s %8s s  %6.2fx imprint\n' "sha256sum -c, xargs -P$CORES (unpacked files)" "$t_p" "$(echo "$t_p / $t_v" | bc -l)"
printf '  %-44s %8s MiB\n' "imprint peak RSS" "$((rss / 1024))"
if [ -n "${IMPRINT_BASELINE:-}" ]; then
  t_b=$(best bash -c baseline_stream)
  printf '  %-44s %8s s  %6.2fx imprint\n' "previous release ($IMPRINT_BASELINE)" "$t_b" "$(echo "$t_b / $t_v" | bc -l)"
fi

# The same check on Python sources (the fingerprint benchmark's pinned tree of babel, django, networkx and sympy):
# every .py is kept for the bytecode checks and hashed for every Python's source-hash key as the stream passes.
src_cache="${XDG_CACHE_HOME:-$HOME/.cache}/imprint/bench-src/tree"
if [ -d "$src_cache" ]; then
  tar -C "$src_cache" -cf "$WORK/src.tar" .
  "$IMPRINT" fingerprint "$src_cache" --ignore-file /dev/null -q -o "$WORK/src.json"
  py=$(tar -tf "$WORK/src.tar" | grep -c '\.py$')
  verify_src() { "$IMPRINT" verify - --manifest "$WORK/src.json" --at / < "$WORK/src.tar"; }
  baseline_src() { "$IMPRINT_BASELINE" verify - --manifest "$WORK/src.json" --at / < "$WORK/src.tar"; }
  export -f verify_src baseline_src
  verify_src >/dev/null || { echo "verify of the Python sources failed" >&2; exit 1; }
  t_py=$(best bash -c verify_src)
  echo "imprint verify of Python sources: $py .py files, $(( $(stat -c %s "$WORK/src.tar") / 1048576 )) MiB tar stream"
  printf '  %-44s %8s s\n' "imprint verify - < src.tar" "$t_py"
  if [ -n "${IMPRINT_BASELINE:-}" ]; then
    t_pb=$(best bash -c baseline_src)
    printf '  %-44s %8s s  %6.2fx imprint\n' "previous release ($IMPRINT_BASELINE)" "$t_pb" "$(echo "$t_pb / $t_py" | bc -l)"
  fi
else
  echo "(the Python source tree is fetched by ci/bench fingerprint; run that first for the Python-source figure)"
fi
