#!/usr/bin/env python3
"""A small OCI distribution registry on 127.0.0.1 that misbehaves on request, for imprint's robustness tests.

It stores manifests and blobs in memory and speaks the part of the distribution API imprint uses (no referrers API,
like Distribution 2.8). `POST /_fault` with a JSON body {"mode": M, "match": REGEX, "times": N} makes the next N
requests whose path matches REGEX (all later ones when N is -1) fail in mode M; `POST /_fault` with {} clears all.
`POST /_auth` with {"mode": ...} switches authentication. Prints the port on stdout once it listens.

Fault modes: lying-digest, oversized-body, short-body, not-found, corrupt-body, redirect-loop, broken-chunked,
close-silently, partial-headers, slow-drip, redirect-dead-host, retry-after-date, server-error.
Auth modes: none, bearer, bearer-missing-challenge, bearer-malformed-challenge, bearer-looping-realm,
bearer-refused-token, bearer-huge-token, basic (user "u", password "p").
"""
import base64, hashlib, json, re, signal, socket, sys, threading, time, uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STORE = {"manifests": {}, "blobs": {}, "uploads": {}}
FAULTS = []
AUTH = {"mode": "none"}
LOCK = threading.Lock()
TOKEN = "tok-" + uuid.uuid4().hex


def take_fault(path):
    with LOCK:
        for f in FAULTS:
            if f["times"] != 0 and re.search(f["match"], path):
                if f["times"] > 0:
                    f["times"] -= 1
                return f["mode"]
    return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    # -- plumbing --------------------------------------------------------------------------------------------
    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def reply(self, status, body=b"", headers=None, head_only=False):
        headers = dict(headers or {})
        headers.setdefault("Content-Length", str(len(body)))
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        if not head_only and body:
            self.wfile.write(body)

    def error(self, status, code):
        body = json.dumps({"errors": [{"code": code, "message": code.lower()}]}).encode()
        self.reply(status, body, {"Content-Type": "application/json"}, head_only=self.command == "HEAD")

    def raw(self, data, close=True):
        self.wfile.write(data)
        self.wfile.flush()
        if close:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    # -- faults ----------------------------------------------------------------------------------------------
    def serve_faulty(self, mode, status, body, headers, head_only):
        """Answers with `body` the way `mode` breaks it; True when the fault took over the answer."""
        if mode == "lying-digest":
            headers["Docker-Content-Digest"] = "sha256:" + hashlib.sha256(b"something else").hexdigest()
        elif mode == "oversized-body":
            headers["Content-Length"] = str(len(body) + 1024)
            self.reply(status, b"", headers, head_only=True)
            if not head_only:
                self.raw(body + b"x" * 1024)
            return True
        elif mode == "short-body":
            headers["Content-Length"] = str(len(body) + 1000)
            self.reply(status, b"", headers, head_only=True)
            if not head_only:
                self.raw(body[: len(body) // 2])
            return True
        elif mode == "not-found":
            self.error(404, "BLOB_UNKNOWN")
            return True
        elif mode == "corrupt-body":
            if body:
                b = bytearray(body)
                b[len(b) // 2] ^= 0xFF
                body = bytes(b)
        elif mode == "redirect-loop":
            self.reply(307, b"", {"Location": self.path})
            return True
        elif mode == "redirect-dead-host":
            dead = socket.socket()
            dead.bind(("127.0.0.1", 0))
            port = dead.getsockname()[1]
            dead.close()
            self.reply(307, b"", {"Location": "http://127.0.0.1:%d%s" % (port, self.path)})
            return True
        elif mode == "broken-chunked":
            self.send_response(status)
            for k, v in headers.items():
                if k != "Content-Length":
                    self.send_header(k, v)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.raw(b"zz\r\n" + body[:10] + b"\r\n0\r\n\r\n")
            return True
        elif mode == "close-silently":
            self.raw(b"")
            return True
        elif mode == "partial-headers":
            self.raw(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Le")
            return True
        elif mode == "slow-drip":
            headers["Content-Length"] = str(len(body))
            self.reply(status, b"", headers, head_only=True)
            try:
                for i in range(len(body)):
                    self.wfile.write(body[i:i + 1])
                    self.wfile.flush()
                    time.sleep(1.0)
            except OSError:
                pass
            self.close_connection = True
            return True
        elif mode == "retry-after-date":
            when = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 1))
            self.reply(503, b"", {"Retry-After": when})
            return True
        elif mode == "server-error":
            self.error(500, "INTERNAL")
            return True
        if not head_only:
            self.reply(status, body, headers)
        else:
            self.reply(status, b"", headers, head_only=True)
        return True

    # -- auth ------------------------------------------------------------------------------------------------
    def authorised(self):
        mode = AUTH["mode"]
        if mode == "none" or self.path.startswith("/token"):
            return True
        got = self.headers.get("Authorization") or ""
        host = "http://127.0.0.1:%d" % self.server.server_address[1]
        if mode == "basic":
            if got == "Basic " + base64.b64encode(b"u:p").decode():
                return True
            self.reply(401, b"", {"WWW-Authenticate": 'Basic realm="test"'})
            return False
        if got == "Bearer " + TOKEN and mode != "bearer-refused-token":
            return True
        challenge = {
            "bearer": 'Bearer realm="%s/token",service="test"' % host,
            "bearer-refused-token": 'Bearer realm="%s/token",service="test"' % host,
            "bearer-huge-token": 'Bearer realm="%s/token?huge=1",service="test"' % host,
            "bearer-looping-realm": 'Bearer realm="%s/token?loop=1",service="test"' % host,
            "bearer-malformed-challenge": 'Negotiate',
            "bearer-missing-challenge": None,
        }[mode]
        self.reply(401, b"", {"WWW-Authenticate": challenge} if challenge else {})
        return False

    def token(self):
        if "loop=1" in self.path:
            host = "http://127.0.0.1:%d" % self.server.server_address[1]
            self.reply(401, b"", {"WWW-Authenticate": 'Bearer realm="%s/token?loop=1",service="test"' % host})
            return
        tok = ("x" * (1000 * 1024)) if "huge=1" in self.path else TOKEN
        self.reply(200, json.dumps({"token": tok}).encode(), {"Content-Type": "application/json"})

    # -- the API ---------------------------------------------------------------------------------------------
    def route(self, method):
        path = self.path.split("?", 1)[0]
        if method == "POST" and path == "/_fault":
            spec = json.loads(self.body() or b"{}")
            with LOCK:
                if spec:
                    FAULTS.append({"mode": spec["mode"], "match": spec.get("match", ".*"), "times": spec.get("times", -1)})
                else:
                    FAULTS.clear()
            return self.reply(200, b"{}")
        if method == "POST" and path == "/_auth":
            AUTH["mode"] = json.loads(self.body() or b"{}").get("mode", "none")
            return self.reply(200, b"{}")
        if path.startswith("/token"):
            return self.token()
        body_in = self.body() if method in ("PUT", "POST", "PATCH") else b""
        if not self.authorised():
            return
        fault = take_fault(self.path)
        if path == "/v2/":
            return self.reply(200, b"{}", {"Content-Type": "application/json"})
        m = re.match(r"^/v2/(.+)/(manifests|blobs|referrers)/([^/]+)$", path)
        u = re.match(r"^/v2/(.+)/blobs/uploads/([^/]*)$", path)
        if u:
            return self.upload(method, u.group(1), u.group(2), body_in)
        if not m:
            return self.error(404, "UNKNOWN")
        name, kind, ref = m.groups()
        if kind == "referrers":
            return self.error(404, "UNSUPPORTED")
        key = (name, ref)
        if kind == "manifests":
            if method == "PUT":
                digest = "sha256:" + hashlib.sha256(body_in).hexdigest()
                ctype = self.headers.get("Content-Type", "application/vnd.oci.image.manifest.v1+json")
                with LOCK:
                    STORE["manifests"][(name, ref)] = (body_in, ctype)
                    STORE["manifests"][(name, digest)] = (body_in, ctype)
                return self.reply(201, b"", {"Docker-Content-Digest": digest, "Location": "/v2/%s/manifests/%s" % (name, digest)})
            entry = STORE["manifests"].get(key)
            if entry is None:
                return self.error(404, "MANIFEST_UNKNOWN")
            data, ctype = entry
            headers = {"Content-Type": ctype, "Docker-Content-Digest": "sha256:" + hashlib.sha256(data).hexdigest()}
            if fault:
                return self.serve_faulty(fault, 200, data, headers, method == "HEAD")
            return self.reply(200, data, headers, head_only=method == "HEAD")
        # blobs
        data = STORE["blobs"].get(ref)
        if data is None:
            return self.error(404, "BLOB_UNKNOWN")
        headers = {"Content-Type": "application/octet-stream", "Docker-Content-Digest": ref}
        if fault:
            return self.serve_faulty(fault, 200, data, headers, method == "HEAD")
        return self.reply(200, data, headers, head_only=method == "HEAD")

    def upload(self, method, name, upload_id, body_in):
        if method == "POST":
            uid = uuid.uuid4().hex
            STORE["uploads"][uid] = b""
            return self.reply(202, b"", {"Location": "/v2/%s/blobs/uploads/%s" % (name, uid)})
        if method == "PUT":
            q = dict(p.split("=", 1) for p in self.path.split("?", 1)[1].split("&")) if "?" in self.path else {}
            digest = q.get("digest", "").replace("%3A", ":")
            data = STORE["uploads"].pop(upload_id, b"") + body_in
            if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
                return self.error(400, "DIGEST_INVALID")
            STORE["blobs"][digest] = data
            return self.reply(201, b"", {"Docker-Content-Digest": digest})
        if method == "DELETE":
            STORE["uploads"].pop(upload_id, None)
            return self.reply(204)
        return self.error(405, "UNSUPPORTED")

    def do_GET(self): self.route("GET")
    def do_HEAD(self): self.route("HEAD")
    def do_PUT(self): self.route("PUT")
    def do_POST(self): self.route("POST")
    def do_DELETE(self): self.route("DELETE")
    def do_PATCH(self): self.route("PATCH")


def main():
    # The test runner may start us with signals blocked (a mask inherited from its worker thread): unblock them, so
    # SIGTERM stops the server.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, signal.valid_signals())
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
