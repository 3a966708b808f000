#!/usr/bin/env bash
# Diff at any size: two generated images of ~5 GB and 200,000 files each (4 uncompressed layers of 50,000 files)
# that differ in 1% of their files, spread over every layer (so no layer is shared and every byte is read).
# Measures `imprint diff` (with content diffs and packages, and with --no-content) for wall time and peak RSS, and
# the peer a person would run: `skopeo copy` of both images plus `tar -x` of every layer of both.
# Targets: peak RSS <= 256 MiB; wall time <= skopeo copy + tar -x of both.
#   IMPRINT_LARGE_FILES (default 200000) and IMPRINT_LARGE_GB (default 5) scale it; BENCH_DIR keeps the images.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v skopeo >/dev/null || bash ci/install-deps.sh
swift build -c release --product imprint >/dev/null
IMPRINT="$(swift build -c release --show-bin-path)/imprint"
WORK="${BENCH_DIR:-$(mktemp -d /tmp/imprint-bench-large.XXXXXX)}"; mkdir -p "$WORK"
[ -n "${BENCH_DIR:-}" ] || trap 'rm -rf "$WORK"' EXIT
FILES=${IMPRINT_LARGE_FILES:-200000}; GB=${IMPRINT_LARGE_GB:-5}
cd "$WORK"

if [ ! -f A/.complete ] || [ ! -f B/.complete ]; then
  rm -rf A B
  python3 - "$FILES" "$GB" <<'PY'
import hashlib, io, json, os, random, sys, tarfile
files, gb = int(sys.argv[1]), float(sys.argv[2])
layers, per = 4, int(sys.argv[1]) // 4
avg = int(gb * 1e9 / files)
rnd = random.Random(20261206)
block = rnd.randbytes(1 << 20)
class Sink:
    """A layer blob written once, hashed as it is written."""
    def __init__(self, path): self.f, self.h, self.n = open(path, "wb"), hashlib.sha256(), 0
    def write(self, b): self.f.write(b); self.h.update(b); self.n += len(b); return len(b)
    def close(self): self.f.close()
def layout(root):
    os.makedirs(f"{root}/blobs/sha256", exist_ok=True)
    with open(f"{root}/oci-layout", "w") as f: json.dump({"imageLayoutVersion": "1.0.0"}, f)
def put(root, data):
    d = hashlib.sha256(data).hexdigest()
    with open(f"{root}/blobs/sha256/{d}", "wb") as f: f.write(data)
    return d, len(data)
for root in ("A", "B"): layout(root)
descs = {"A": [], "B": []}
for l in range(layers):
    sinks = {r: Sink(f"{r}/layer.tmp") for r in ("A", "B")}
    tars = {r: tarfile.open(fileobj=sinks[r], mode="w|", format=tarfile.PAX_FORMAT) for r in ("A", "B")}
    for i in range(per):
        n = l * per + i
        size = max(64, int(rnd.expovariate(1 / avg)))
        head = f"file {n} layer {l}\n".encode()
        body = (head + block[(n * 7919) % (1 << 19):])[:size]
        while len(body) < size: body += block[:size - len(body)]
        changed = rnd.random() < 0.01
        for r in ("A", "B"):
            data = body if not (r == "B" and changed) else (b"CHANGED " + body)[:size]
            info = tarfile.TarInfo(f"srv/l{l}/d{i // 500:03d}/f{n:06d}.dat"); info.size = size; info.mode = 0o644; info.mtime = 0
            tars[r].addfile(info, io.BytesIO(data))
    for r in ("A", "B"):
        tars[r].close(); sinks[r].close()
        d = sinks[r].h.hexdigest()
        os.rename(f"{r}/layer.tmp", f"{r}/blobs/sha256/{d}")
        descs[r].append({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": "sha256:" + d, "size": sinks[r].n})
for r in ("A", "B"):
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": [x["digest"] for x in descs[r]]},
                         "history": [{"created_by": f"generated layer {i}"} for i in range(layers)]}, sort_keys=True).encode()
    cd, cs = put(r, config)
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + cd, "size": cs},
                           "layers": descs[r]}, sort_keys=True).encode()
    md, ms = put(r, manifest)
    with open(f"{r}/index.json", "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + md,
                   "size": ms, "annotations": {"org.opencontainers.image.ref.name": "latest"}}]}, f)
    open(f"{r}/.complete", "w").close()
PY
fi

secs_rss() {  # prints "SECONDS RSS_KIB" of a command
  /usr/bin/time -f "%e %M" "$@" 2>&1 >/dev/null | tail -1
}
echo "imprint diff at scale ($(nproc) cores): $FILES files and $(du -sh A | cut -f1) per image, 1% of the files differ in every layer"
read -r t_full m_full < <(secs_rss "$IMPRINT" diff oci:A:latest oci:B:latest --format json -o "$WORK/report.json")
read -r t_nc m_nc < <(secs_rss "$IMPRINT" diff oci:A:latest oci:B:latest --no-content --format json -o "$WORK/report-nc.json")
changed=$(python3 -c "import json; r=json.load(open('$WORK/report.json')); print(r['summary']['modified'], len(r['contents']))")
peer() {
  rm -rf "$WORK/peer"; mkdir -p "$WORK/peer"
  for r in A B; do
    skopeo copy -q "oci:$WORK/$r:latest" "dir:$WORK/peer/$r"
    mkdir -p "$WORK/peer/$r-rootfs"
    for blob in $(python3 -c "import json; print(' '.join(l['digest'].split(':')[1] for l in json.load(open('$WORK/peer/$r/manifest.json'))['layers']))"); do
      tar -xf "$WORK/peer/$r/$blob" -C "$WORK/peer/$r-rootfs"
    done
  done
}
s=$(date +%s.%N); peer; e=$(date +%s.%N); t_peer=$(printf '%.2f' "$(echo "$e - $s" | bc -l)")
rm -rf "$WORK/peer"
printf '  %-48s %8s s  %6s MiB\n' "imprint diff (content diffs, packages)" "$t_full" "$((m_full / 1024))"
printf '  %-48s %8s s  %6s MiB\n' "imprint diff --no-content" "$t_nc" "$((m_nc / 1024))"
printf '  %-48s %8s s\n' "skopeo copy + tar -x of both (peer)" "$t_peer"
printf '  %-48s %s modified files, %s content diffs\n' "found" ${changed}
ok=ok; [ "$((m_full / 1024))" -le 256 ] || ok="OVER (RSS)"; [ "$(echo "$t_full <= $t_peer" | bc -l)" = 1 ] || ok="$ok OVER (time)"
printf '  %-48s %s\n' "targets: RSS <= 256 MiB, time <= peer" "$ok"
