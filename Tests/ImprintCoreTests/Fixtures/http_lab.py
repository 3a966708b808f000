#!/usr/bin/env python3
"""HTTP servers on 127.0.0.1 for the HTTP client's tests: real TLS (Python's ssl, i.e. OpenSSL), plain HTTP and a
CONNECT proxy, all on ephemeral ports.

usage: http_lab.py CERT KEY PROXY_LOG
Prints one JSON line {"https": port, "http": port, "proxy": port} once listening, then serves until stdin closes.

Paths (both servers):
  /hello            200, Content-Length body "hello"
  /chunked          200, chunked body with a chunk extension and a trailer: "chunked body, three parts"
  /close            200, no length: the body ends when the connection closes
  /conn             200, body = the client's port (same port twice = the connection was kept alive)
  /sni              200, body = the last TLS server name indication seen ("" for none)
  /auth             200, body = the Authorization header received ("" for none)
  /redirect?to=URL  302 to URL
  /loop             302 to /loop
"""
import json
import select
import socket
import socketserver
import ssl
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

last_sni = {"name": ""}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send_body(self, body, status=200, extra=None):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        q = urllib.parse.parse_qs(url.query)
        if url.path == "/hello":
            self.send_body("hello")
        elif url.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Trailer", "X-Checksum")
            self.end_headers()
            for part in [b"chunked body, ", b"three", b" parts"]:
                self.wfile.write(b"%x;ext=1\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\nX-Checksum: none\r\n\r\n")
        elif url.path == "/close":
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"until the connection closes")
            self.close_connection = True
        elif url.path == "/conn":
            self.send_body(str(self.client_address[1]))
        elif url.path == "/sni":
            self.send_body(last_sni["name"])
        elif url.path == "/auth":
            self.send_body(self.headers.get("Authorization", ""))
        elif url.path == "/redirect":
            self.send_body("", status=302, extra={"Location": q["to"][0]})
        elif url.path == "/loop":
            self.send_body("", status=302, extra={"Location": "/loop"})
        else:
            self.send_body("not found", status=404)


class TLSServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, addr, handler, context):
        super().__init__(addr, handler)
        self.context = context

    def get_request(self):
        sock, addr = self.socket.accept()
        return sock, addr

    def finish_request(self, request, client_address):
        # The handshake runs in the connection's thread, so a client that fails it cannot stall the others.
        try:
            tls = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            request.close()
            return
        self.RequestHandlerClass(tls, client_address, self)


class Proxy(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def proxy_handler(log_path):
    class ProxyHandler(socketserver.BaseRequestHandler):
        def handle(self):
            head = b""
            while b"\r\n\r\n" not in head:
                data = self.request.recv(4096)
                if not data:
                    return
                head += data
            line = head.split(b"\r\n", 1)[0].decode()
            method, target, _ = line.split(" ", 2)
            with open(log_path, "a") as log:
                log.write(line + "\n")
            if method != "CONNECT":
                self.request.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
                return
            host, port = target.rsplit(":", 1)
            # Every name the tests use resolves to this machine, through the proxy only.
            upstream = socket.create_connection(("127.0.0.1", int(port)))
            self.request.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            socks = [self.request, upstream]
            while True:
                readable, _, _ = select.select(socks, [], [], 30)
                if not readable:
                    break
                for s in readable:
                    data = s.recv(65536)
                    if not data:
                        upstream.close()
                        return
                    (upstream if s is self.request else self.request).sendall(data)
    return ProxyHandler


def main():
    cert, key, proxy_log = sys.argv[1:4]
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)

    def remember(sslobj, name, ctx):
        last_sni["name"] = name or ""
    context.sni_callback = remember

    https = TLSServer(("127.0.0.1", 0), Handler, context)
    http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    http.daemon_threads = True
    proxy = Proxy(("127.0.0.1", 0), proxy_handler(proxy_log))
    for server in (https, http, proxy):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    print(json.dumps({"https": https.server_address[1], "http": http.server_address[1],
                      "proxy": proxy.server_address[1]}), flush=True)
    sys.stdin.read()


if __name__ == "__main__":
    main()
