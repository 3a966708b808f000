#!/usr/bin/env bash
# Running containers (podman through the docker CLI, as in the tests):
#   - `imprint verify pid:N` of a 20,000-file application against `docker export | imprint verify -` on the same
#     container (target: >= 3x faster);
#   - a scan of 500 processes (list them, check executables, mapped files, start times; target <= 100 ms).
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product imprint >/dev/null
swift build -c release --product imprint-bench >/dev/null
BIN=$(swift build -c release --show-bin-path)
T=$(mktemp -d /tmp/imprint-bench-runtime.XXXXXX)
cat > "$T/containers.conf" <<'C'
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=8192:8192"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
C
export CONTAINERS_CONF=$T/containers.conf DOCKER_BUILDKIT=0 DOCKER_HOST=unix://$T/podman.sock
podman --root "$T/root" --runroot "$T/run" --tmpdir "$T/libpod" --storage-driver vfs system service --time=0 "unix://$T/podman.sock" >"$T/svc.log" 2>&1 &
SVC=$!
cleanup() { docker rm -f bench-app bench-procs >/dev/null 2>&1 || true; kill -9 $SVC 2>/dev/null || true
            podman --root "$T/root" --runroot "$T/run" --tmpdir "$T/libpod" --storage-driver vfs system reset -f >/dev/null 2>&1 || true; rm -rf "$T"; }
trap cleanup EXIT
for _ in $(seq 50); do docker version >/dev/null 2>&1 && break; sleep 0.2; done
now() { date +%s.%N; }
median3() { python3 -c "import sys; v=sorted(map(float, sys.argv[1:])); print(f'{v[len(v)//2]:.3f}')" "$@"; }

mkdir -p "$T/bb" "$T/app"
cp "$(command -v busybox)" "$T/bb/busybox"
printf 'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\n' >"$T/bb/Dockerfile"
docker build -q -t localhost/busybox-base "$T/bb" >/dev/null 2>&1
python3 - "$T/app" <<'PY'
import os, random, sys
root = sys.argv[1]
random.seed(13)
for a in range(20):
    for b in range(20):
        d = os.path.join(root, "pkg%02d" % a, "mod%02d" % b)
        os.makedirs(d, exist_ok=True)
        for c in range(50):
            with open(os.path.join(d, "file_%03d.py" % c), "w") as f:
                f.write("# %d/%d/%d\nx = %d\n" % (a, b, c, random.getrandbits(64)) + "y = 1\n" * random.randint(0, 200))
PY
printf 'FROM localhost/busybox-base\nCOPY . /app\nWORKDIR /app\nCMD ["sleep", "3600"]\n' >"$T/app/Dockerfile"
"$BIN/imprint" fingerprint "$T/app" -q -o "$T/m.json" --digest-file "$T/d.txt"
(cd "$T/app" && docker build -q -t localhost/bench:1 . >/dev/null 2>&1)
docker save localhost/bench:1 -o "$T/app.tar"
"$BIN/imprint" stamp "$T/app.tar" --manifest "$T/m.json" -o "$T/stamped.tar" >/dev/null
docker load -q -i "$T/stamped.tar" >/dev/null
docker run -d --name bench-app --network none localhost/bench:1 >/dev/null
PID=$(docker inspect -f '{{.State.Pid}}' bench-app)
D=$(cat "$T/d.txt")
echo "== verify a running 20,000-file application (release build, median of 3)"
live=(); exported=()
for _ in 1 2 3; do
  s=$(now); "$BIN/imprint" verify "pid:$PID" --expect "$D" -q >/dev/null; e=$(now); live+=("$(python3 -c "print($e - $s)")")
  s=$(now); docker export bench-app | "$BIN/imprint" verify - --expect "$D" >/dev/null; e=$(now); exported+=("$(python3 -c "print($e - $s)")")
done
l=$(median3 "${live[@]}"); x=$(median3 "${exported[@]}")
ratio=$(python3 -c "print(f'{$x / $l:.1f}')")
printf '   imprint verify pid:%s            %8s s\n' "$PID" "$l"
printf '   docker export | imprint verify -    %8s s\n' "$x"
printf '   ratio %sx (target >= 3x) %s\n' "$ratio" "$(python3 -c "print('ok' if $x / $l >= 3 else 'MISSED')")"

echo "== scan 500 processes"
docker run -d --name bench-procs --network none localhost/busybox-base sh -c 'for i in $(seq 500); do sleep 3600 & done; wait' >/dev/null
for _ in $(seq 50); do [ "$(docker top bench-procs 2>/dev/null | wc -l)" -gt 500 ] && break; sleep 0.2; done
r=$("$BIN/imprint-bench" process-scan docker:bench-procs --iterations 9)
ms=$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['medianMs'])" "$r")
n=$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['processes'])" "$r")
printf '   %s processes: median %s ms (target <= 100 ms) %s\n' "$n" "$ms" "$(python3 -c "print('ok' if $ms <= 100 else 'MISSED')")"
