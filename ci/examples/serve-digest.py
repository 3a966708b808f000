#!/usr/bin/env python3
"""Serve the digest of the manifest this process started with, for `imprint wait` (and the probe's evidence).

Standard library only. The manifest is the one `imprint stamp` put at /.imprint/manifest.json, or the one
`imprint fingerprint --emit .imprint/manifest.json` put into the build context (COPY . /app puts it at
/app/.imprint/manifest.json):

    IMPRINT_MANIFEST=/app/.imprint/manifest.json PORT=8080 python3 serve-digest.py

The digest is read ONCE, when the process starts: an old process still serving after the files were replaced in
place keeps reporting the old digest, so `imprint wait` does not declare the rollout complete. (Reading the file at
every request would report the new digest from a process that still runs the old code.)

GET /healthz answers {"status": "ok", "imprint": {"digest": "sha256:…", "pid": …, "startedAt": "…", "hostname": "…",
"instance": "…"}}; instance tells this process apart from every other one (boot id, the container's mount namespace,
pid, start time), which the pid alone cannot: every container's server is pid 1.
GET /imprint answers the evidence of imprint_probe (`imprint probe python`) when it sits beside this file: which bytes
this process actually loaded, for `imprint verify http://HOST:PORT/imprint`.
HOST defaults to 127.0.0.1; in a container set HOST=0.0.0.0. PORT=0 picks a free port; the address in use is
printed on stdout as "listening on HOST:PORT".
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
try:
    import imprint_probe  # first: it must see every later import
except ImportError:
    imprint_probe = None

import json
import socket
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MANIFEST = os.environ.get("IMPRINT_MANIFEST", "/.imprint/manifest.json")
STARTED_AT = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def read_digest():
    try:
        with open(MANIFEST, "rb") as f:
            return json.load(f)["digest"], None
    except (OSError, ValueError, KeyError) as e:
        return None, f"cannot read {MANIFEST}: {e}"


DIGEST, PROBLEM = read_digest()   # once, at start


def instance():
    try:
        boot = open("/proc/sys/kernel/random/boot_id").read().strip()
        ticks = open("/proc/self/stat").read().rsplit(")", 1)[1].split()[19]
        return "%s/%s/%d/%s" % (boot, os.stat("/proc/self/ns/mnt").st_ino, os.getpid(), ticks)
    except OSError:
        return "%s/%d" % (socket.gethostname(), os.getpid())


INSTANCE = instance()


class Health(BaseHTTPRequestHandler):
    def do_GET(self):
        path = self.path.split("?")[0]
        if path == "/imprint" and imprint_probe is not None:
            return self.answer(200, imprint_probe.evidence())
        if path != "/healthz":
            return self.answer(404, {"error": "not found"})
        if DIGEST is None:
            return self.answer(503, {"status": "error", "error": PROBLEM})
        self.answer(200, {"status": "ok", "imprint": {"digest": DIGEST, "pid": os.getpid(), "startedAt": STARTED_AT,
                                                       "hostname": socket.gethostname(), "instance": INSTANCE}})

    def answer(self, status, obj):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):  # quiet: health checks are frequent
        pass


if __name__ == "__main__":
    host = os.environ.get("HOST", "127.0.0.1")
    server = ThreadingHTTPServer((host, int(os.environ.get("PORT", "8080"))), Health)
    print(f"listening on {host}:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        sys.exit(0)
