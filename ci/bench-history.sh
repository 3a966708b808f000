#!/usr/bin/env bash
# Benchmark for the history store (issue #6).
#
# Builds imprint (release), generates a 20,000-file context in a temp dir, fingerprints it, then replays 1,000
# builds in which ~10 random files change per build (applied at the tree level by the hidden
# `imprint-bench history-build` driver, which stores every build through the same HistoryStore.add path as
# `imprint history add` and writes a sample of the full JSON manifests). Reports:
#   - store size vs (a) the raw JSON manifests (exact: every build's manifest is serialised and counted)
#     and (b) each manifest gzip -9'd (measured on 20 sampled manifests, extrapolated to 1,000);
#   - `imprint history list` wall time at 1,000 records;
#   - adjacent-build diff: `imprint history diff` vs GNU diff of the two JSON manifests, and in-process
#     store diff vs parsing + diffing both manifests.
# Usage: ci/bench-history.sh [BUILDS] [CHANGES]     (env KEEP=1 keeps the temp dir)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILDS=${1:-1000}
CHANGES=${2:-10}
SAMPLE_EVERY=$(( BUILDS / 10 > 0 ? BUILDS / 10 : 1 ))

t0=$(date +%s.%N)
swift build -c release --product imprint >/dev/null
swift build -c release --product imprint-bench >/dev/null
BIN=$(swift build -c release --show-bin-path)/imprint
BENCH=$(swift build -c release --show-bin-path)/imprint-bench
tmp=$(mktemp -d /tmp/imprint-bench-history.XXXXXX)
[[ "${KEEP:-}" == 1 ]] || trap 'rm -rf "$tmp"' EXIT
now() { date +%s.%N; }
ms() { python3 -c "import sys; print(f'{(float(sys.argv[2]) - float(sys.argv[1])) * 1000:.1f}')" "$1" "$2"; }

echo "== generating a 20,000-file context in $tmp/ctx"
python3 - "$tmp/ctx" <<'PY'
import os, sys, random
root = sys.argv[1]
random.seed(6)
for a in range(20):
    for b in range(20):
        d = os.path.join(root, f"pkg{a:02d}", f"mod{b:02d}")
        os.makedirs(d, exist_ok=True)
        for c in range(50):
            with open(os.path.join(d, f"file_{c:03d}.py"), "w") as f:
                f.write(f"# {a}/{b}/{c}\n" + "x = %d\n" % random.getrandbits(64))
PY
"$BIN" fingerprint "$tmp/ctx" -o "$tmp/base.json" -q
files=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['summary']['files'])" "$tmp/base.json")
echo "   $files files, base manifest $(stat -c %s "$tmp/base.json") bytes"

echo "== $BUILDS builds, $CHANGES changed files each"
mkdir -p "$tmp/samples"
s=$(now)
result=$("$BENCH" history-build --history "$tmp/store" --manifest "$tmp/base.json" --builds "$BUILDS" --changes "$CHANGES" \
    --sample-dir "$tmp/samples" --sample-every "$SAMPLE_EVERY")
e=$(now)
echo "   $result"
raw=$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['rawJSONBytes'])" "$result")
store_bytes=$(find "$tmp/store" -type f -printf '%s\n' | awk '{s+=$1} END {print s}')
store_disk=$(( $(du -sk "$tmp/store" | cut -f1) * 1024 ))
objects=$(find "$tmp/store/objects" -type f | wc -l)
gz_sum=0; gz_n=0
for f in "$tmp"/samples/build-*.json; do
    gz_sum=$(( gz_sum + $(gzip -9 -c "$f" | wc -c) )); gz_n=$(( gz_n + 1 ))
done
gz_est=$(( gz_sum * BUILDS / gz_n ))

echo "== list at $BUILDS records (best of 5)"
best_list=999999
for _ in 1 2 3 4 5; do
    s=$(now); "$BIN" history list --history "$tmp/store" >/dev/null; e2=$(now)
    t=$(ms "$s" "$e2"); best_list=$(python3 -c "print(min(float('$best_list'), float('$t')))")
done
best_list_json=999999
for _ in 1 2 3; do
    s=$(now); "$BIN" history list --json --history "$tmp/store" >/dev/null; e2=$(now)
    t=$(ms "$s" "$e2"); best_list_json=$(python3 -c "print(min(float('$best_list_json'), float('$t')))")
done
count=$("$BIN" history list --history "$tmp/store" | wc -l)

echo "== diff of two adjacent builds (builds $SAMPLE_EVERY and $((SAMPLE_EVERY + 1)))"
A="$tmp/samples/build-$SAMPLE_EVERY.json"; B="$tmp/samples/build-$((SAMPLE_EVERY + 1)).json"
# build n is record @~(BUILDS-1-n); check it is the build the sample was written from
ra="@~$(( BUILDS - 1 - SAMPLE_EVERY ))"; rb="@~$(( BUILDS - 2 - SAMPLE_EVERY ))"
for pair in "$ra $A" "$rb $B"; do
    set -- $pair
    want=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['digest'])" "$2")
    got=$("$BIN" history list --json --history "$tmp/store" | python3 -c "import json,sys; print(json.load(sys.stdin)[int(sys.argv[1][2:])]['root'])" "$1")
    [[ "$want" == "$got" ]] || { echo "bench: $1 is $got, expected $want" >&2; exit 2; }
done
best() { # best wall ms of 5 runs of "$@"
    local b=999999 s e t
    for _ in 1 2 3 4 5; do s=$(now); "$@" >/dev/null 2>&1 || true; e=$(now); t=$(ms "$s" "$e"); b=$(python3 -c "print(min(float('$b'), float('$t')))"); done
    echo "$b"
}
hist_diff=$(best "$BIN" history diff "$ra" "$rb" --history "$tmp/store")
gnu_diff=$(best diff "$A" "$B")
imp_diff=$(best "$BIN" diff "$A" "$B")
py_diff=$(best python3 -c "import json,sys; a=json.load(open(sys.argv[1])); b=json.load(open(sys.argv[2])); x={e['path']:e for e in a['entries']}; y={e['path']:e for e in b['entries']}; print(sum(1 for k in x.keys()|y.keys() if x.get(k)!=y.get(k)))" "$A" "$B")
changed=$("$BIN" history diff "$ra" "$rb" --history "$tmp/store" | wc -l || true)
inproc=$("$BENCH" history-diff --history "$tmp/store" --from "$ra" --to "$rb" --json-a "$A" --json-b "$B" --iterations 5)

t1=$(now)
python3 - "$BUILDS" "$files" "$raw" "$store_bytes" "$store_disk" "$objects" "$gz_est" "$gz_n" "$best_list" "$best_list_json" "$count" "$hist_diff" "$gnu_diff" "$py_diff" "$changed" "$inproc" "$(ms "$t0" "$t1")" "$imp_diff" <<'PY'
import sys, json
(builds, files, raw, store, disk, objects, gz, gzn, lst, lstj, count, hd, gd, pd, changed, inproc, total, idf) = sys.argv[1:]
raw, store, disk, gz = int(raw), int(store), int(disk), int(gz)
ip = json.loads(inproc)
print()
print(f"history bench: {builds} builds of a {files}-file context ({count} records)")
print(f"  raw JSON manifests      {raw/1e6:10.1f} MB")
print(f"  gzip -9 each (est.)     {gz/1e6:10.1f} MB   (mean of {gzn} sampled manifests x {builds})")
print(f"  history store           {store/1e6:10.3f} MB   = {100*store/raw:.2f}% of raw JSON, {100*store/gz:.1f}% of gzip -9   ({objects} objects)")
print(f"  history store on disk   {disk/1e6:10.3f} MB   = {100*disk/raw:.2f}% of raw JSON (du, 4 KiB blocks)")
print(f"  list ({count} records)   {float(lst):7.1f} ms  (list --json {float(lstj):.1f} ms; wall time incl. process start)")
print(f"  adjacent diff           {float(hd):7.1f} ms  imprint history diff ({changed} changed paths; wall incl. process start)")
print(f"                          {float(gd):7.1f} ms  GNU diff of the two JSON manifests  -> {float(gd)/float(hd):.1f}x")
print(f"                          {float(idf):7.1f} ms  imprint diff of the two JSON manifests (parse both, compare) -> {float(idf)/float(hd):.1f}x")
print(f"                          {float(pd):7.1f} ms  python3: load both JSON manifests and compare entries -> {float(pd)/float(hd):.1f}x")
print(f"    in-process: store diff {ip['storeDiffMs']:.2f} ms vs parse+diff both manifests {ip['manifestParseDiffMs']:.1f} ms -> {ip['manifestParseDiffMs']/ip['storeDiffMs']:.0f}x")
print(f"  bench total {float(total)/1000:.0f} s")
PY
