"""A scriptable replica for end-to-end tests (standard library only).

    /echo          JSON of the request as received: method, path, headers,
                   body length and SHA-256
    /big?mb=N      N MiB of body, streamed in 64 KiB writes
    /chunked       a chunked answer in three pieces
    /slow?ms=N     answers after N milliseconds
    /heartbeat     200, empty (so ringlb's health checks admit it)
    anything else  404

Every answer carries X-Upstream: <name> and a hop-by-hop Keep-Alive header
that a proxy must not pass on.
"""
import argparse
import hashlib
import json
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

CHUNK = b"x" * 65536


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "upstream"

    def log_message(self, fmt, *args):
        pass

    def _head(self, code, length=None, ctype="application/json", extra=()):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("X-Upstream", self.server.name)
        self.send_header("Keep-Alive", "timeout=5")
        for k, v in extra:
            self.send_header(k, v)
        if length is not None:
            self.send_header("Content-Length", str(length))
        self.end_headers()

    def _json(self, code, obj):
        data = json.dumps(obj).encode()
        self._head(code, len(data))
        if self.command != "HEAD":
            self.wfile.write(data)

    def _handle(self):
        url = urlsplit(self.path)
        q = parse_qs(url.query)
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        if url.path == "/echo":
            self._json(200, {
                "method": self.command,
                "path": url.path,
                "query": url.query,
                "headers": [[k, v] for k, v in self.headers.items()],
                "body_len": len(body),
                "body_sha256": hashlib.sha256(body).hexdigest(),
                "server": self.server.name,
            })
        elif url.path == "/big":
            mb = int(q.get("mb", ["1"])[0])
            self._head(200, mb * 1024 * 1024, "application/octet-stream")
            for _ in range(mb * 16):
                self.wfile.write(CHUNK)
        elif url.path == "/chunked":
            self._head(200, None, "text/plain",
                       [("Transfer-Encoding", "chunked")])
            for piece in (b"one,", b"two,", b"three"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.wfile.flush()
                time.sleep(0.05)
            self.wfile.write(b"0\r\n\r\n")
        elif url.path == "/heartbeat":
            self._head(200, 0, "text/plain")
        elif url.path == "/slow":
            time.sleep(int(q.get("ms", ["1000"])[0]) / 1000.0)
            self._json(200, {"slow": True, "server": self.server.name})
        else:
            self._json(404, {"message": "no such path", "status": "failure"})

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _handle
    do_HEAD = _handle


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--name", required=True)
    args = ap.parse_args()
    srv = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    srv.daemon_threads = True
    srv.name = args.name
    srv.serve_forever()


if __name__ == "__main__":
    main()
