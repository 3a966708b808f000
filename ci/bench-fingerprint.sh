#!/usr/bin/env bash
# Fingerprint speed and memory against peers, measured in the same run on the same files.
#   (a) ~50,000 small files   (b) 4 files of 256 MiB
#   (c) site: babel, django, networkx and sympy from PyPI (pinned) installed by pip into one directory, as a Python
#       image holds them: ~10,000 files, the sources, their compiled bytecode and the dist-info (~155 MiB)
#   (d) source: the same four wheels only unzipped (~6,900 files, sources without bytecode)
#   (e) flat: 2,000 files of 100 KiB in one directory (one directory's files are hashed on all cores too)
#   (wheels and both trees are cached in ~/.cache/imprint/bench-src)
# Prints seconds (best of 7 interleaved warm rounds; BENCH_ROUNDS sets the count), ratios, MB/s against
# `openssl speed -evp sha256` x cores, peak RSS.
# IMPRINT_BASELINE=path/to/previous/imprint adds the previous release, timed in the same run; a figure more than
# 10% slower than it is printed as a REGRESSION.
# Targets: (c) at least 3x `find | xargs -0 -P<cores> -n 200 sha256sum`; (b) at least 95% of the speed of
# `xargs -P<cores> openssl dgst -sha256`. (d) has no target of its own: fewer, smaller files make the fixed cost of
# starting a process a larger part of every tool's time; it is printed to follow the per-file cost.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v hashdeep >/dev/null && command -v mtree >/dev/null || bash ci/install-deps.sh
swift build -c release --product imprint >/dev/null
IMPRINT="$(swift build -c release --show-bin-path)/imprint"
WORK="${BENCH_DIR:-$(mktemp -d /tmp/imprint-bench.XXXXXX)}"; mkdir -p "$WORK"
trap 'rm -rf "$WORK"' EXIT
CORES=$(nproc)

python3 - "$WORK/small" "$WORK/large" "$WORK/flat" <<'PY'
import os, sys, random
small, large, flat = sys.argv[1], sys.argv[2], sys.argv[3]
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
os.makedirs(flat, exist_ok=True)
for i in range(2000):
    with open(os.path.join(flat, f"f{i:04d}.dat"), "wb") as fh:
        fh.write(rnd.randbytes(100 * 1024))
PY
src_cache="${XDG_CACHE_HOME:-$HOME/.cache}/imprint/bench-src"
if [ ! -d "$src_cache/tree" ]; then
  rm -rf "$src_cache"; mkdir -p "$src_cache/wheels"
  python3 -m pip download -q --no-deps --only-binary :all: -d "$src_cache/wheels" \
    babel==2.16.0 django==5.1.4 networkx==3.4.2 sympy==1.13.3
  mkdir -p "$src_cache/tree.tmp"
  for w in "$src_cache"/wheels/*.whl; do python3 -m zipfile -e "$w" "$src_cache/tree.tmp/$(basename "$w" .whl)"; done
  mv "$src_cache/tree.tmp" "$src_cache/tree"
fi
if [ ! -d "$src_cache/site" ]; then
  rm -rf "$src_cache/site.tmp"
  python3 -m pip install -q --no-deps --no-index --root-user-action=ignore \
    --target "$src_cache/site.tmp" "$src_cache"/wheels/*.whl
  mv "$src_cache/site.tmp" "$src_cache/site"
fi
cp -a "$src_cache/site" "$WORK/site"
cp -a "$src_cache/tree" "$WORK/source"

peak() { /usr/bin/time -f %M "$@" 2>&1 >/dev/null | tail -1; }

# The commands timed on a tree, by name.
run_imp() { "$IMPRINT" fingerprint "$1" --ignore-file /dev/null -q -o /dev/null; }
run_base() { "$IMPRINT_BASELINE" fingerprint "$1" --ignore-file /dev/null -q -o /dev/null; }
run_xsha() { (cd "$1" && find . -type f -print0 | xargs -0 -P"$CORES" -n 200 sha256sum); }
run_xossl() { (cd "$1" && find . -type f -print0 | xargs -0 -P"$CORES" -n 1 openssl dgst -sha256); }
run_hashdeep() { hashdeep -c sha256 -r "$1"; }
run_mtree() { mtree -c -K sha256 -p "$1"; }

# race DIR NAME... sets T[NAME] to the best wall-clock seconds of run_NAME DIR over ROUNDS rounds, after one warm-up
# round. Every round runs each command once, in turn, starting one command later than the round before: on a machine
# whose speed drifts during the run (a shared VM), all of them see the same drift and no command always follows the
# same one, so their ratios hold where blocks of runs one command after another would not.
ROUNDS=${BENCH_ROUNDS:-7}
declare -A T
race() {
  local dir=$1; shift
  local name s e ns
  local -A best=()
  for name in "$@"; do "run_$name" "$dir" >/dev/null 2>&1 || true; done
  local names=("$@") n=$# r i
  for r in $(seq 0 $((ROUNDS - 1))); do
    for i in $(seq 0 $((n - 1))); do
      name=${names[$(((r + i) % n))]}
      s=$(date +%s%N); "run_$name" "$dir" >/dev/null 2>&1; e=$(date +%s%N)
      ns=$((e - s))
      if [ -z "${best[$name]:-}" ] || [ "$ns" -lt "${best[$name]}" ]; then best[$name]=$ns; fi
    done
  done
  for name in "$@"; do T[$name]=$(printf '%.3f' "$(echo "${best[$name]} / 1000000000" | bc -l)"); done
}

echo "imprint fingerprint benchmark ($CORES cores, $(uname -m), best of $ROUNDS interleaved rounds)"
for set in small large site source flat; do
  dir="$WORK/$set"
  files=$(find "$dir" -type f | wc -l); bytes=$(du -sb "$dir" | cut -f1)
  names=(imp xsha hashdeep mtree)
  [ "$set" = large ] && names+=(xossl)
  [ -n "${IMPRINT_BASELINE:-}" ] && names+=(base)
  race "$dir" "${names[@]}"
  t_imp=${T[imp]} t_x=${T[xsha]} t_hd=${T[hashdeep]} t_mt=${T[mtree]}
  m_imp=$(peak "$IMPRINT" fingerprint "$dir" --ignore-file /dev/null -q -o /dev/null)
  echo
  echo "($set) $files files, $((bytes / 1048576)) MiB"
  printf '  %-36s %8s s  %8s\n' "imprint fingerprint" "$t_imp" "1.00x"
  printf '  %-36s %8s s  %7.2fx slower\n' "find | xargs -P$CORES sha256sum" "$t_x" "$(echo "$t_x / $t_imp" | bc -l)"
  printf '  %-36s %8s s  %7.2fx slower\n' "hashdeep -c sha256 -r" "$t_hd" "$(echo "$t_hd / $t_imp" | bc -l)"
  printf '  %-36s %8s s  %7.2fx slower\n' "mtree -c -K sha256" "$t_mt" "$(echo "$t_mt / $t_imp" | bc -l)"
  if [ "$set" = large ]; then
    t_o=${T[xossl]}
    printf '  %-36s %8s s  %7.2fx slower\n' "xargs -P$CORES openssl dgst -sha256" "$t_o" "$(echo "$t_o / $t_imp" | bc -l)"
  fi
  if [ -n "${IMPRINT_BASELINE:-}" ]; then
    t_b=${T[base]}
    verdict=""; [ "$(echo "$t_imp > $t_b * 1.10" | bc -l)" = 1 ] && verdict="  REGRESSION"
    printf '  %-36s %8s s  %7.2fx imprint%s\n' "previous release" "$t_b" "$(echo "$t_b / $t_imp" | bc -l)" "$verdict"
  fi
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
