#!/usr/bin/env bash
# verify --served on a site of 2,000 assets served by Debian's nginx on 127.0.0.1 (gzip on), directly and through
# an nginx proxy_cache (cold, then warm), against a peer measured in the same run: every URL fetched with curl
# (xargs -P8, keep-alive per batch) and hashed with sha256sum, which is what a script doing the same check would do.
# Target: the 2,000 assets verified in at most 5 s.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v nginx >/dev/null && command -v curl >/dev/null || bash ci/install-deps.sh
swift build -c release --product imprint >/dev/null
IMPRINT="$(swift build -c release --show-bin-path)/imprint"
T=$(mktemp -d /tmp/imprint-bench-served.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -QUIT "$p" 2>/dev/null || true; done; sleep 0.5; rm -rf "$T"; }
trap cleanup EXIT

python3 - "$T/ctx/dist" <<'PY'
import os, random, sys
root = sys.argv[1]
rnd = random.Random(7)
refs = []
for i in range(1999):
    d = os.path.join(root, "assets", "chunk%02d" % (i % 40))
    os.makedirs(d, exist_ok=True)
    name = "mod%04d.%08x.%s" % (i, rnd.getrandbits(32), "js" if i % 3 else "css")
    with open(os.path.join(d, name), "w") as f:
        f.write(("/* %d */ " % i) + "x" * rnd.randint(500, 30000) + "\n")
    if i < 200:
        refs.append(os.path.relpath(os.path.join(d, name), root))
with open(os.path.join(root, "index.html"), "w") as f:
    f.write("<!doctype html><html><head>")
    for r in refs:
        f.write('<script type="module" src="/%s"></script>\n' % r if r.endswith(".js") else '<link rel="stylesheet" href="/%s">\n' % r)
    f.write("</head><body></body></html>\n")
PY
"$IMPRINT" fingerprint "$T/ctx" -q --ignore-file /dev/null -o "$T/site.json"
port() { python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])"; }
start() {  # NAME PORT SERVER-BLOCK
  mkdir -p "$T/$1/logs" "$T/$1/tmp" "$T/$1/cache"
  cat > "$T/$1/nginx.conf" <<C
user root; worker_processes 2; pid $T/$1/nginx.pid; error_log $T/$1/logs/error.log;
events { worker_connections 1024; }
http { access_log off; keepalive_requests 100000; include /etc/nginx/mime.types;
  client_body_temp_path $T/$1/tmp/body; proxy_temp_path $T/$1/tmp/proxy; fastcgi_temp_path $T/$1/tmp/fastcgi;
  uwsgi_temp_path $T/$1/tmp/uwsgi; scgi_temp_path $T/$1/tmp/scgi;
  $3
}
C
  nginx -e "$T/$1/logs/error.log" -c "$T/$1/nginx.conf" -g 'daemon off;' & pids+=($!)
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$2") 2>/dev/null && return; sleep 0.05; done
  echo "nginx $1 did not start" >&2; exit 2
}
po=$(port); pc=$(port)
start origin "$po" "gzip on; gzip_min_length 0; gzip_types text/css application/javascript; server { listen 127.0.0.1:$po; root $T/ctx/dist; }"
start cache "$pc" "proxy_cache_path $T/cache/c levels=1:2 keys_zone=s:8m max_size=500m use_temp_path=off;
  server { listen 127.0.0.1:$pc; location / { proxy_pass http://127.0.0.1:$po; proxy_cache s; proxy_cache_valid 200 10m; } }"

secs() { local s e; s=$(date +%s.%N); "$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; exit 1; }; e=$(date +%s.%N); printf '%.3f' "$(echo "$e - $s" | bc -l)"; }
peer() {  # fetch every asset and compare with the manifest's digests, as a script would
  (cd "$T/ctx/dist" && find . -type f | sed 's|^\./||' | sort) > "$T/paths"
  sed "s|^|http://127.0.0.1:$1/|" "$T/paths" | xargs -P8 -n 50 curl -s --compressed -w '' -o /dev/null
  (cd "$T/ctx/dist" && xargs -a "$T/paths" sha256sum) > /dev/null
}
verify() { "$IMPRINT" verify "http://127.0.0.1:$1/" --served --manifest "$T/site.json" --served-root dist -q; }
files=$(find "$T/ctx/dist" -type f | wc -l)
echo "imprint verify --served benchmark ($(nproc) cores; $files assets, $(du -sm "$T/ctx/dist" | cut -f1) MiB, nginx on 127.0.0.1)"
t_o=$(secs verify "$po")
t_cold=$(secs verify "$pc")
t_warm=$(secs verify "$pc")
t_p=$(secs peer "$po")
m=$(/usr/bin/time -f %M "$IMPRINT" verify "http://127.0.0.1:$po/" --served --manifest "$T/site.json" --served-root dist -q 2>&1 >/dev/null | tail -1)
printf '  %-44s %8s s\n' "imprint verify --served, origin" "$t_o"
printf '  %-44s %8s s\n' "imprint verify --served, cache (cold)" "$t_cold"
printf '  %-44s %8s s\n' "imprint verify --served, cache (warm)" "$t_warm"
printf '  %-44s %8s s  %7.2fx imprint (origin)\n' "curl (xargs -P8) + sha256sum" "$t_p" "$(echo "$t_p / $t_o" | bc -l)"
printf '  %-44s %8s MiB\n' "imprint peak RSS" "$((m / 1024))"
verdict=ok; [ "$(echo "$t_warm > 5" | bc -l)" = 1 ] && verdict="OVER TARGET"
printf '  %-44s %8s\n' "target: $files assets in <= 5 s" "$verdict"
