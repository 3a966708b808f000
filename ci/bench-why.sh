#!/usr/bin/env bash
# `imprint why` on 1,000 paths of a 50,000-file context with a realistic .dockerignore (target: under 100 ms),
# and `imprint ls --excluded` of the whole context, against `find` listing the same tree in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product imprint >/dev/null
IMPRINT="$(swift build -c release --show-bin-path)/imprint"
WORK=$(mktemp -d /tmp/imprint-bench-why.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
python3 - "$WORK/ctx" "$WORK/paths" <<'PY'
import os, sys, random
root, listing = sys.argv[1], sys.argv[2]
rnd = random.Random(17)
paths = []
for d in range(500):
    sub = ["src", "node_modules", "build", "tests", "docs"][d % 5]
    p = os.path.join(root, sub, f"pkg{d:03d}")
    os.makedirs(p, exist_ok=True)
    for f in range(100):
        name = f"mod{f:03d}" + [".py", ".pyc", ".log", ".js"][f % 4]
        with open(os.path.join(p, name), "w") as fh:
            fh.write("x")
        paths.append(os.path.relpath(os.path.join(p, name), root))
with open(os.path.join(root, ".dockerignore"), "w") as fh:
    fh.write("node_modules\n**/*.pyc\n*.log\n**/*.log\nbuild\n!build/pkg002/*.py\ndocs/**/*.js\n")
with open(listing, "w") as fh:
    fh.write("\n".join(rnd.sample(paths, 1000)))
PY
mapfile -t P < "$WORK/paths"
cd "$WORK/ctx"
json=$(hyperfine -N -i -w 3 -r 20 --export-json "$WORK/h.json" "$IMPRINT why ${P[*]}" "$IMPRINT ls --excluded" "find . -type f" >/dev/null 2>&1; cat "$WORK/h.json")
python3 - "$json" <<'PY'
import json, sys
r = json.loads(sys.argv[1])["results"]
why, ls, find = (x["median"] * 1000 for x in r)
print("why bench (50,000-file context, realistic .dockerignore; medians)")
print(f"  imprint why, 1,000 paths     {why:7.1f} ms   target < 100 ms: {'ok' if why < 100 else 'MISSED'}")
print(f"  imprint ls --excluded        {ls:7.1f} ms   (the whole context decided and sized)")
print(f"  find . -type f               {find:7.1f} ms   -> ls is {ls / find:.1f}x find")
PY
