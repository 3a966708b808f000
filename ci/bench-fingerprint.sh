#!/usr/bin/env bash
# Fingerprint speed and memory against peers, measured in the same run on the same files.
#   (a) ~50,000 small files   (b) 4 files of 256 MiB
# Prints seconds (best of 3 warm runs), ratios, MB/s against `openssl speed -evp sha256` x cores, peak RSS.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v hashdeep >/dev/null && command -v mtree >/dev/null || bash ci/install-deps.sh
swift build -c release --product imprint >/dev/null
IMPRINT="$(swift build -c release --show-bin-path)/imprint"
WORK="${BENCH_DIR:-$(mktemp -d /tmp/imprint-bench.XXXXXX)}"; mkdir -p "$WORK"
trap 'rm -rf "$WORK"' EXIT
CORES=$(nproc)

python3 - "$WORK/small" "$WORK/large" <<'PY'
import os, sys, random
small, large = sys.argv[1], sys.argv[2]
rnd = random.Random(42)
for d in range(500):
    p = os.path.join(small, f"pkg{d:03d}", f"sub{d % 7}")
    os.makedirs(p, exist_ok=True)
    for f in range(100):
        with open(os.path.join(p, f"mod{f:03d}.py"), "wb") as fh:
            fh.write(rnd.randbytes(rnd.randint(100, 8000)))
os.makedirs(large, exist_ok=True)
chunk = rnd.randbytes(1 << 20)
for i in range(4):
    with open(os.path.join(large, f"blob{i}.bin"), "wb") as fh:
        for j in range(256):
            fh.write(bytes([j]) + chunk[1:])
PY

# best of 3 wall-clock seconds of a command (after one warm-up run)
best() {
  "$@" >/dev/null 2>&1 || true
  local b=""
  for _ in 1 2 3; do
    local s e t
    s=$(date +%s.%N); "$@" >/dev/null 2>&1; e=$(date +%s.%N)
    t=$(echo "$e - $s" | bc -l)
    if [ -z "$b" ] || [ "$(echo "$t < $b" | bc -l)" = 1 ]; then b=$t; fi
  done
  printf '%.3f' "$b"
}
peak() { /usr/bin/time -f %M "$@" 2>&1 >/dev/null | tail -1; }

xargs_sha() { cd "$1" && find . -type f -print0 | xargs -0 -P"$CORES" -n 256 sha256sum; }
export -f xargs_sha; export CORES

echo "imprint fingerprint benchmark ($CORES cores, $(uname -m))"
for set in small large; do
  dir="$WORK/$set"
  files=$(find "$dir" -type f | wc -l); bytes=$(du -sb "$dir" | cut -f1)
  t_imp=$(best "$IMPRINT" fingerprint "$dir" --ignore-file /dev/null -q -o /dev/null)
  t_x=$(best bash -c "xargs_sha '$dir'")
  t_hd=$(best hashdeep -c sha256 -r "$dir")
  t_mt=$(best mtree -c -K sha256 -p "$dir")
  m_imp=$(peak "$IMPRINT" fingerprint "$dir" --ignore-file /dev/null -q -o /dev/null)
  echo
  echo "($set) $files files, $((bytes / 1048576)) MiB"
  printf '  %-36s %8s s  %8s\n' "imprint fingerprint" "$t_imp" "1.00x"
  printf '  %-36s %8s s  %7.2fx slower\n' "find | xargs -P$CORES sha256sum" "$t_x" "$(echo "$t_x / $t_imp" | bc -l)"
  printf '  %-36s %8s s  %7.2fx slower\n' "hashdeep -c sha256 -r" "$t_hd" "$(echo "$t_hd / $t_imp" | bc -l)"
  printf '  %-36s %8s s  %7.2fx slower\n' "mtree -c -K sha256" "$t_mt" "$(echo "$t_mt / $t_imp" | bc -l)"
  printf '  %-36s %8s\n' "imprint files/s" "$(echo "$files / $t_imp" | bc)"
  printf '  %-36s %8s MiB\n' "imprint peak RSS" "$((m_imp / 1024))"
  if [ "$set" = large ]; then
    # OpenSSL's single-core SHA-256 speed on 16 KiB blocks, in MB/s (1000^2 bytes), times the cores.
    ossl=$(openssl speed -evp sha256 -bytes 16384 -seconds 2 2>/dev/null | awk '/^sha256/ {v=$NF; sub(/k$/,"",v); print v/1000}')
    ceiling=$(echo "$ossl * $CORES" | bc -l)
    rate=$(echo "$bytes / 1000000 / $t_imp" | bc -l)
    printf '  %-36s %8.0f MB/s\n' "imprint throughput" "$rate"
    printf '  %-36s %8.0f MB/s  (%.0f%% of it)\n' "openssl speed -evp sha256 x $CORES" "$ceiling" "$(echo "100 * $rate / $ceiling" | bc -l)"
  fi
done
