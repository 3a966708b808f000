#!/usr/bin/env bash
# Robustness figures: time and memory on hostile inputs, measured (not timed unit tests).
#   - .dockerignore matching of the two patterns that make backtracking matchers exponential, and of a 1 KiB
#     pattern against a 4 KiB path (target: under 1 ms each);
#   - peak RSS (/usr/bin/time -v) of `history import` on 14 MB of gzip that inflates to 3 GiB of zeros, of
#     `history fsck` on a 45-byte object header claiming 200 MiB, and of `verify` on a tar claiming 2^64-byte
#     entries (target: each under 100 MiB, and exit 2).
# Exits 1 when a target is missed.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product imprint >/dev/null
swift build -c release --product imprint-bench >/dev/null
BIN=$(swift build -c release --show-bin-path)
tmp=$(mktemp -d /tmp/imprint-bench-robust.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail=0

echo "== .dockerignore matching (median of 101, release build; target < 1 ms)"
a40=$(printf 'a%.0s' {1..40}); d30=$(printf 'd/%.0s' {1..29})d
p1k=$(python3 -c "print('*a' * 500 + 'b')"); a4k=$(python3 -c "print('a' * 4000)")
while IFS='|' read -r label pattern path; do
  r=$("$BIN/imprint-bench" ignore-match "$pattern" "$path")
  med=$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['medianMs'])" "$r")
  ok=$(python3 -c "import sys; print('ok' if float(sys.argv[1]) < 1 else 'MISSED')" "$med")
  printf '   %-44s %8s ms  %s\n' "$label" "$med" "$ok"
  [ "$ok" = ok ] || fail=1
done <<EOF
*a*a*a*a*a*a*a*a*a*a*a*a*b vs 40 a's|*a*a*a*a*a*a*a*a*a*a*a*a*b|$a40
**/ x12 then x, vs a 30-level path|**/**/**/**/**/**/**/**/**/**/**/**/x|$d30
1 KiB pattern (*a x500 b) vs 4 KiB path|$p1k|$a4k
EOF

peak() {  # label, bound MiB, command...
  local label=$1 bound=$2; shift 2
  local status=0
  /usr/bin/time -v "$@" >"$tmp/out" 2>"$tmp/err" || status=$?
  local kb; kb=$(grep 'Maximum resident set size' "$tmp/err" | awk '{print $NF}')
  local secs; secs=$(grep 'Elapsed (wall clock)' "$tmp/err" | awk '{print $NF}')
  local mib=$(( kb / 1024 ))
  local ok=ok
  [ "$mib" -lt "$bound" ] && [ "$status" = 2 ] || { ok=MISSED; fail=1; }
  printf '   %-52s %5d MiB  %8s  exit %s  %s\n' "$label" "$mib" "$secs" "$status" "$ok"
  grep '^imprint: error' "$tmp/err" | head -1 | sed 's/^/      /'
}

echo "== peak memory on hostile inputs (target < 100 MiB, exit 2)"
python3 - "$tmp/zeros.gz" <<'PY'
import sys, zlib
# A history export whose index line is 3 GiB of zeros (no newline): streamed, never held.
c = zlib.compressobj(1, zlib.DEFLATED, 31)
with open(sys.argv[1], "wb") as f:
    block = b"\0" * (1 << 20)
    for _ in range(3072):
        f.write(c.compress(block))
    f.write(c.flush())
PY
printf '   (zeros.gz: %s bytes)\n' "$(stat -c %s "$tmp/zeros.gz")"
peak "history import: 3 GiB of zeros in 14 MB of gzip" 100 "$BIN/imprint" history import "$tmp/zeros.gz" --history "$tmp/h1"

python3 - "$tmp/valid.gz" <<'PY'
import sys, zlib, json
# A valid index claiming one object whose body is 256 MiB of zeros (the largest object allowed).
index = json.dumps({"mediaType": "application/vnd.imprint.history-export.v1+json", "created": "2024-01-01T00:00:00.000000000Z", "objects": 1, "records": []}).encode()
c = zlib.compressobj(1, zlib.DEFLATED, 31)
with open(sys.argv[1], "wb") as f:
    f.write(c.compress(index + b"\n" + b"d" + b"\0" * 32 + (0).to_bytes(4, "big") + (256 << 20).to_bytes(4, "big") + b"\0" * 32))
    for _ in range(64):
        f.write(c.compress(b"\0" * (1 << 20)))
    f.write(c.flush())
PY
peak "history import: an object claiming 256 MiB, 64 MiB present" 100 "$BIN/imprint" history import "$tmp/valid.gz" --history "$tmp/h2"

mkdir -p "$tmp/ctx" && echo x >"$tmp/ctx/a"
"$BIN/imprint" fingerprint "$tmp/ctx" -q -o "$tmp/m.json"
"$BIN/imprint" history add "$tmp/m.json" --history "$tmp/h3" >/dev/null
obj=$(find "$tmp/h3/objects" -type f | head -1)
chmod u+w "$obj"
python3 - "$obj" <<'PY'
import sys
p = sys.argv[1]
d = bytearray(open(p, "rb").read())
d[9:13] = (200 << 20).to_bytes(4, "big")   # the body length in the 45-byte header
open(p, "wb").write(bytes(d))
PY
status=0; /usr/bin/time -v "$BIN/imprint" history fsck --history "$tmp/h3" >"$tmp/out" 2>"$tmp/err" || status=$?
kb=$(grep 'Maximum resident set size' "$tmp/err" | awk '{print $NF}')
ok=ok; [ $(( kb / 1024 )) -lt 100 ] && [ "$status" = 1 ] || { ok=MISSED; fail=1; }
printf '   %-52s %5d MiB  %8s  exit %s  %s\n' "history fsck: a header claiming 200 MiB" $(( kb / 1024 )) "$(grep 'Elapsed' "$tmp/err" | awk '{print $NF}')" "$status" "$ok"

python3 - "$tmp/huge.tar" <<'PY'
import sys
h = bytearray(512)
h[0:4] = b"big\0"; h[100:108] = b"0000644\0"; h[124] = 0x80; h[128:136] = b"\xff" * 8; h[156:157] = b"0"
h[257:263] = b"ustar\0"; h[263:265] = b"00"; h[148:156] = b" " * 8
h[148:156] = ("%06o\0 " % sum(h)).encode()
open(sys.argv[1], "wb").write(bytes(h) + b"\0" * 1024)
PY
peak "verify: a tar entry claiming 2^64-1 bytes" 100 "$BIN/imprint" verify "$tmp/huge.tar" --manifest "$tmp/m.json"

exit $fail
