#!/usr/bin/env bash
# A node's containers, continuously: `imprint watch node:` over 50 containers started from one image of 20,000
# files (Debian's containerd, overlayfs snapshotter, pods annotated as the CRI plugin does), and the memory of
# `imprint watch` over 1,000 rounds.
#   target: a warm round (files known by device, inode, size, mtime, ctime) within 5 s; memory flat.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v containerd >/dev/null && command -v buildah >/dev/null || bash ci/install-deps.sh
swift build -c release --product imprint >/dev/null
IMPRINT="$(swift build -c release --show-bin-path)/imprint"
N=${FLEET_CONTAINERS:-50}
T=$(mktemp -d /tmp/imprint-bench-fleet.XXXXXX)
CTR="ctr --address $T/containerd.sock -n k8s.io"
B="buildah --root $T/broot --runroot $T/brun --storage-driver vfs"
cleanup() {
  for i in $(seq "$N"); do $CTR task kill -s SIGKILL "web$i" >/dev/null 2>&1 || true; done
  sleep 1
  for i in $(seq "$N"); do $CTR task rm -f "web$i" >/dev/null 2>&1 || true; $CTR containers rm "web$i" >/dev/null 2>&1 || true; done
  [ -n "${CD:-}" ] && kill "$CD" 2>/dev/null && while kill -0 "$CD" 2>/dev/null; do sleep 0.1; done
  grep -o "$T/[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$T"
}
trap cleanup EXIT
mkdir -p "$T/bb" "$T/app"
cp "$(command -v busybox)" "$T/bb/busybox"
printf 'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox","--install","-s","/bin"]\n' > "$T/bb/Dockerfile"
python3 - "$T/app" <<'PY'
import os, sys, random
root = sys.argv[1]; r = random.Random(3)
for d in range(200):
    p = os.path.join(root, "pkg%03d" % d); os.makedirs(p)
    for f in range(100):
        with open(os.path.join(p, "m%03d.py" % f), "wb") as fh: fh.write(r.randbytes(r.randint(200, 4000)))
PY
printf 'FROM localhost/bb:1\nCOPY . /app\nCMD ["/bin/sleep", "3600"]\n' > "$T/app/Dockerfile"
printf 'Dockerfile\n.dockerignore\n' > "$T/app/.dockerignore"
$B bud -q --isolation chroot --timestamp 0 -t localhost/bb:1 "$T/bb" >/dev/null
$B bud -q --isolation chroot --timestamp 0 -t localhost/app:1 "$T/app" >/dev/null
$B push -q localhost/app:1 "oci-archive:$T/app.tar:localhost/app:1"
"$IMPRINT" fingerprint "$T/app" -q -o "$T/m.json"
"$IMPRINT" stamp "$T/app.tar" --manifest "$T/m.json" -q -o "$T/stamped.tar"
cat > "$T/config.toml" <<C
version = 2
root = "$T/root"
state = "$T/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$T/containerd.sock"
[ttrpc]
  address = "$T/containerd.sock.ttrpc"
C
containerd --config "$T/config.toml" >"$T/containerd.log" 2>&1 & CD=$!
for _ in $(seq 100); do [ -S "$T/containerd.sock" ] && break; sleep 0.1; done
$CTR images import "$T/stamped.tar" >/dev/null
for i in $(seq "$N"); do
  $CTR run -d --snapshotter overlayfs --annotation io.kubernetes.cri.container-type=container \
    --annotation io.kubernetes.cri.sandbox-name="web-$i" --annotation io.kubernetes.cri.sandbox-namespace=bench \
    --annotation io.kubernetes.cri.container-name=web localhost/app:1 "web$i" /bin/sleep 3600 >/dev/null
done
export IMPRINT_RUNTIME_STATE=$T/state/io.containerd.runtime.v2.task/k8s.io
echo "imprint watch node: — $N containers of one image, 20,000 files each ($(nproc) cores, overlayfs)"
rss=$( { /usr/bin/time -f %M "$IMPRINT" watch node: --rounds 4 --interval 0 --full-every 100 --no-processes >"$T/rounds.txt"; } 2>&1 | tail -1)
sed 's/^/  /' "$T/rounds.txt"
warm=$(awk '/^round [2-9]/ {gsub(/s;?/, "", $(NF)); for (i=1;i<=NF;i++) if ($i=="in") print $(i+1)}' "$T/rounds.txt" | sort -n | tail -1)
echo "  slowest warm round: ${warm} s (target <= 5 s)   peak RSS $((rss / 1024)) MiB"
echo
echo "imprint watch memory over rounds (a 2,000-file directory, interval 0)"
mkdir -p "$T/dir"; cp -r "$T/app/pkg00"* "$T/dir/" 2>/dev/null || true
"$IMPRINT" fingerprint "$T/dir" -q -o "$T/dm.json"
for rounds in 10 1000; do
  r=$( { /usr/bin/time -f %M "$IMPRINT" watch "$T/dir" --manifest "$T/dm.json" --rounds "$rounds" --interval 0 -q >/dev/null; } 2>&1 | tail -1)
  echo "  $rounds rounds: peak RSS $((r / 1024)) MiB"
done
