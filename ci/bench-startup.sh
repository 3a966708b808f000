#!/usr/bin/env bash
# Startup benchmark of the portable binary (ci/release), against peers measured in the same run:
#   - `imprint --version`: median wall time (target <= 5 ms) vs /bin/true and `skopeo --version`; peak RSS
#   - `imprint history list` at 1,000 records: median (target <= 15 ms)
#   - `imprint history diff` of two adjacent builds vs `imprint diff` of their two full JSON manifests, both as
#     commands (target >= 20x)
# Medians by hyperfine (-N: no shell in between). Usage: ci/bench-startup.sh   (env KEEP=1 keeps the temp dir)
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d /tmp/imprint-bench-startup.XXXXXX)
[[ "${KEEP:-}" == 1 ]] || trap 'rm -rf "$tmp"' EXIT

bash ci/release "$tmp/release" >/dev/null 2>"$tmp/release.log" || { cat "$tmp/release.log" >&2; exit 2; }
tar -xzf "$tmp"/release/imprint-*-linux-x86_64.tar.gz -C "$tmp"
BIN=$(echo "$tmp"/imprint-*-linux-x86_64/bin/imprint)
swift build -c release --product imprint-bench >/dev/null
BENCH=$(swift build -c release --show-bin-path)/imprint-bench
DEV=$(swift build -c release --show-bin-path)/imprint
swift build -c release --product imprint >/dev/null

median() { # median wall ms of a command, by hyperfine
  hyperfine -N -i -w 20 -r "${RUNS:-300}" --export-json "$tmp/h.json" "$@" >/dev/null 2>&1
  python3 -c "import json; print('%.2f' % (json.load(open('$tmp/h.json'))['results'][0]['median'] * 1000))"
}

# A 20,000-file context and 1,000 builds of ~10 changed files each in a history store.
python3 - "$tmp/ctx" <<'PY'
import os, sys, random
random.seed(14)
for a in range(20):
    for b in range(20):
        d = os.path.join(sys.argv[1], f"pkg{a:02d}", f"mod{b:02d}")
        os.makedirs(d, exist_ok=True)
        for c in range(50):
            with open(os.path.join(d, f"file_{c:03d}.py"), "w") as f:
                f.write(f"# {a}/{b}/{c}\nx = {random.getrandbits(64)}\n")
PY
"$BIN" fingerprint "$tmp/ctx" -q -o "$tmp/base.json"
mkdir -p "$tmp/samples"
"$BENCH" history-build --history "$tmp/store" --manifest "$tmp/base.json" --builds 1000 --changes 10 \
  --sample-dir "$tmp/samples" --sample-every 100 >/dev/null
export IMPRINT_HISTORY=$tmp/store
A="$tmp/samples/build-100.json"; B="$tmp/samples/build-101.json"
ra="@~899"; rb="@~898"

version=$(median "$BIN --version")
dev_version=$(median "$DEV --version")
true_ms=$(median "/bin/true")
skopeo_ms=$(median "skopeo --version")
rss=$( { /usr/bin/time -f '%M' "$BIN" --version >/dev/null; } 2>&1 )
list=$(RUNS=100 median "$BIN history list")
records=$("$BIN" history list | wc -l)
hdiff=$(RUNS=100 median "$BIN history diff $ra $rb")
fdiff=$(RUNS=30 median "$BIN diff $A $B")
python3 - "$version" "$dev_version" "$true_ms" "$skopeo_ms" "$rss" "$list" "$records" "$hdiff" "$fdiff" "$(stat -c %s "$BIN")" <<'PY'
import sys
v, dv, t, s, rss, lst, rec, hd, fd, size = sys.argv[1:]
v, dv, t, s, lst, hd, fd = map(float, (v, dv, t, s, lst, hd, fd))
ok = lambda c: "ok" if c else "MISSED"
print(f"startup bench (portable binary, {int(size)/1e6:.0f} MB; medians, wall time incl. process start)")
print(f"  imprint --version        {v:7.2f} ms   target <= 5 ms: {ok(v <= 5)}   peak RSS {int(rss)/1024:.1f} MiB")
print(f"    /bin/true              {t:7.2f} ms   -> imprint is {v/t:.1f}x /bin/true")
print(f"    skopeo --version       {s:7.2f} ms   -> imprint is {s/v:.1f}x faster")
print(f"    developer build        {dv:7.2f} ms   (swift build -c release, Swift runtime as shared libraries)")
print(f"  history list ({rec} rec) {lst:7.2f} ms   target <= 15 ms: {ok(lst <= 15)}")
print(f"  history diff (adjacent)  {hd:7.2f} ms   vs imprint diff of the two full manifests {fd:.1f} ms -> {fd/hd:.1f}x   target >= 20x: {ok(fd/hd >= 20)}")
PY
