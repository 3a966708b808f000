#!/usr/bin/env bash
# Benchmark: `imprint run` against `in-toto-run` recording a step over a 50,000-file tree of small files.
# Both fingerprint the same materials before and the same products after a trivial command (`true`).
# Usage: ci/bench-runner.sh [FILES]   (default 50000). Prints both times and the ratio.
set -euo pipefail
cd "$(dirname "$0")/.."
files="${1:-50000}"

command -v in-toto-run >/dev/null || { echo "in-toto-run not installed (ci/install-deps.sh)" >&2; exit 2; }
swift build -c release --product imprint >&2
bin="$(swift build -c release --show-bin-path)/imprint"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
python3 - "$files" <<'PY'
import os, sys
n = int(sys.argv[1])
per = 100
for i in range(n):
    d = f"tree/d{i // per // 50:03d}/s{i // per:04d}"
    if i % per == 0: os.makedirs(d, exist_ok=True)
    with open(f"{d}/f{i:06d}.txt", "w") as f:
        f.write(f"file {i}\n" * (1 + i % 20))
os.makedirs("out", exist_ok=True)
for i in range(100):
    with open(f"out/p{i:03d}.bin", "wb") as f: f.write(os.urandom(256))
PY
in-toto-keygen -t ed25519 key >/dev/null

now_ms() { date +%s%3N; }
# Warm the page cache so neither tool pays for the first read; best of $runs for each (the machine is shared).
cat tree/*/*/* > /dev/null
runs="${RUNS:-3}"
imprint_ms=999999999; intoto_ms=999999999
for _ in $(seq "$runs"); do
  t0=$(now_ms)
  "$bin" run --name s --materials tree --products out --record-dir records -- true
  t1=$(now_ms)
  in-toto-run --step-name s --key key --key-type ed25519 --materials tree --products out -- true
  t2=$(now_ms)
  imprint_ms=$(( t1 - t0 < imprint_ms ? t1 - t0 : imprint_ms ))
  intoto_ms=$(( t2 - t1 < intoto_ms ? t2 - t1 : intoto_ms ))
done
m=$(python3 -c 'import json,sys; r=json.load(open("records/s.json")); print(r["materials"][0]["files"])')
l=$(python3 -c 'import json,glob; print(len(json.load(open(glob.glob("s.*.link")[0]))["signed"]["materials"]))')
echo "files: imprint recorded $m materials, in-toto $l"
echo "load: $(cut -d" " -f1-3 /proc/loadavg), cores: $(nproc), best of $runs"
echo "imprint run:  ${imprint_ms} ms"
echo "in-toto-run:  ${intoto_ms} ms"
python3 -c "print(f'ratio: {$intoto_ms / max(1, $imprint_ms):.1f}x faster (target >= 10x)')"
