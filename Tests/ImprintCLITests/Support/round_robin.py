#!/usr/bin/env python3
"""A round-robin HTTP load balancer on 127.0.0.1 for imprint's rollout-gate tests: each request goes to the next
backend in turn (a fresh connection each time). Usage: round_robin.py PORT1 PORT2 …; prints "listening on HOST:PORT".
"""
import itertools, signal, sys, threading, urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

signal.pthread_sigmask(signal.SIG_UNBLOCK, signal.valid_signals())
backends = itertools.cycle(sys.argv[1:])
lock = threading.Lock()


class Proxy(BaseHTTPRequestHandler):
    def do_GET(self):
        with lock:
            port = next(backends)
        try:
            with urllib.request.urlopen("http://127.0.0.1:%s%s" % (port, self.path), timeout=5) as r:
                status, body, ctype = r.status, r.read(), r.headers.get("Content-Type", "application/json")
        except urllib.error.HTTPError as e:
            status, body, ctype = e.code, e.read(), "application/json"
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
print("listening on 127.0.0.1:%d" % server.server_address[1], flush=True)
server.serve_forever()
