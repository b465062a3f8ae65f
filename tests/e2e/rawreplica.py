"""A replica scripted by the test, over raw sockets, in a thread of the
test's own process (tests only), so that a test can say byte for byte
what a replica answers and count what it was sent.

    rep = RawReplica("fake", {"/x": b"HTTP/1.1 200 OK\\r\\n..."})
    lb = procs.ringlb([rep], "--health-interval", "60000")
    ...
    rep.close()

GET /heartbeat is answered 200 with an empty body.  For any other path,
the answer is answers[path] (or answers[None]): bytes sent as they are,
after which the connection is closed; or a callable(conn, req), called
with the socket and the request, that answers itself and returns True to
keep the connection.  Every request is recorded in .seen as a Request
(method, path, version, headers as (name, value) pairs, body).

With die_on_second=True, the second request of every connection (other
than a heartbeat) is read whole, recorded, and the connection closed
without an answer: a pooled connection that dies after the request was
written and before any answer byte.
"""
import socket
import threading

HEARTBEAT = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"


class Request:
    def __init__(self, method, path, version, headers, body):
        self.method = method
        self.path = path
        self.version = version
        self.headers = headers
        self.body = body

    def header(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]


def read_request(conn, buf):
    """One request from conn (buf: bytes already read, a one-item list);
    None at EOF.  Bodies are framed by Content-Length (libcurl sends one)."""
    while b"\r\n\r\n" not in buf[0]:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        buf[0] += chunk
    head, rest = buf[0].split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    method, path, version = lines[0].split(" ", 2)
    headers = [tuple(p.strip() for p in l.split(":", 1)) for l in lines[1:]]
    n = sum(int(v) for k, v in headers if k.lower() == "content-length")
    while len(rest) < n:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        rest += chunk
    buf[0] = rest[n:]
    return Request(method, path, version, headers, rest[:n])


class RawReplica:
    def __init__(self, name, answers, die_on_second=False):
        self.name = name
        self.answers = answers
        self.die_on_second = die_on_second
        self.seen = []
        self.lock = threading.Lock()
        self.srv = socket.socket()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(64)
        self.port = self.srv.getsockname()[1]
        self.conns = []
        threading.Thread(target=self._accept, daemon=True).start()

    def requests(self, path=None, method=None):
        with self.lock:
            return [r for r in self.seen
                    if (path is None or r.path.split("?")[0] == path) and
                    (method is None or r.method == method)]

    def _accept(self):
        while True:
            try:
                conn, _ = self.srv.accept()
            except OSError:
                return
            self.conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,),
                             daemon=True).start()

    def _serve(self, conn):
        buf = [b""]
        served = 0
        try:
            while True:
                req = read_request(conn, buf)
                if req is None:
                    return
                if req.path == "/heartbeat":
                    conn.sendall(HEARTBEAT)
                    continue
                with self.lock:
                    self.seen.append(req)
                served += 1
                if self.die_on_second and served == 2:
                    return
                answer = self.answers.get(req.path.split("?")[0],
                                          self.answers.get(None))
                if callable(answer):
                    if answer(conn, req):
                        continue
                    return
                conn.sendall(answer)
                return
        except OSError:
            pass
        finally:
            conn.close()

    def close(self):
        self.srv.close()
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass


def keep(answer):
    """An answer after which the connection stays open for the next."""
    def send(conn, req):
        conn.sendall(answer)
        return True
    return send
