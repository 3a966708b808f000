#!/usr/bin/env python3
"""Serve the root digest of the embedded imprint manifest at /healthz, for `imprint wait`.

Standard library only. The manifest is the one `imprint fingerprint --emit .imprint/manifest.json` put into the
image (COPY . /app puts it at /app/.imprint/manifest.json):

    IMPRINT_MANIFEST=/app/.imprint/manifest.json PORT=8080 python3 serve-digest.py

GET /healthz answers {"imprint": {"digest": "sha256:…"}} (503 with an "error" when the manifest cannot be read).
HOST defaults to 127.0.0.1; in a container set HOST=0.0.0.0. PORT=0 picks a free port; the address in use is
printed on stdout as "listening on HOST:PORT".
In an existing app, the same three lines go into its health handler:

    import json
    digest = json.load(open(os.environ.get("IMPRINT_MANIFEST", "/.imprint/manifest.json")))["digest"]
    return {"status": "ok", "imprint": {"digest": digest}}
"""
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MANIFEST = os.environ.get("IMPRINT_MANIFEST", "/.imprint/manifest.json")


def manifest_digest():
    # Read at every request: the file is tiny and a redeploy that swaps it is seen at once.
    with open(MANIFEST, "rb") as f:
        return json.load(f)["digest"]


class Health(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.split("?")[0] != "/healthz":
            return self.answer(404, {"error": "not found"})
        try:
            self.answer(200, {"status": "ok", "imprint": {"digest": manifest_digest()}})
        except (OSError, ValueError, KeyError) as e:
            self.answer(503, {"status": "error", "error": f"cannot read {MANIFEST}: {e}"})

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
