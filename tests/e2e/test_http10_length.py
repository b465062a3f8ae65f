"""No answer announces a length that is not its body's.

An HTTP/1.0 client knows no chunked encoding: an answer whose length is
not known up front (the replica chunks it, or ends it by closing) reaches
it close-delimited - no Content-Length, "Connection: close", and the
connection closed after the body - even when it asked for keep-alive
(ab -k does).  Its neighbours keep what they had: a length from the
replica keeps a 1.0 connection alive, HTTP/1.1 gets chunks, HEAD, 204 and
304 have no body to frame.
"""
import socket

import pytest

from conftest import get
from rawreplica import RawReplica, keep

BODY = b"hello, world"
CHUNKED = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
           b"Transfer-Encoding: chunked\r\n\r\n"
           b"5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n")
LENGTH = b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n" + BODY
# no length, no chunks: the body ends when the replica closes
CLOSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n" + BODY
CLOSE10 = b"HTTP/1.0 200 OK\r\n\r\n" + BODY


def chunked_or_head(conn, req):
    if req.method == "HEAD":
        conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    else:
        conn.sendall(CHUNKED)
    return True


ANSWERS = {
    "/chunked": chunked_or_head,
    "/length": keep(LENGTH),
    "/close": CLOSE,
    "/close10": CLOSE10,
    "/204": keep(b"HTTP/1.1 204 No Content\r\n\r\n"),
    "/304": keep(b"HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n"),
}


@pytest.fixture
def lb(procs):
    rep = RawReplica("fake", ANSWERS)
    lb = procs.ringlb([rep], "--health-interval", "60000")
    yield lb
    rep.close()


class Reader:
    """Answers read off one client connection, framed as a client would."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.buf = b""
        self.eof = False

    def send(self, data):
        self.s.sendall(data)

    def _fill(self):
        chunk = self.s.recv(65536)
        if not chunk:
            self.eof = True
        self.buf += chunk
        return bool(chunk)

    def _take(self, n):
        while len(self.buf) < n:
            assert self._fill(), "connection closed inside a framed body"
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def _line(self):
        while b"\r\n" not in self.buf:
            assert self._fill(), "connection closed inside a head"
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def answer(self, method="GET"):
        """(status, {lower name: [values]}, body, framing)."""
        status = self._line().decode()
        headers = {}
        while True:
            line = self._line()
            if not line:
                break
            k, v = line.decode().split(":", 1)
            headers.setdefault(k.strip().lower(), []).append(v.strip())
        code = int(status.split()[1])
        if method == "HEAD" or code in (204, 304):
            return status, headers, b"", "none"
        if "transfer-encoding" in headers:
            assert headers["transfer-encoding"] == ["chunked"]
            body = b""
            while True:
                n = int(self._line(), 16)
                if n == 0:
                    assert self._line() == b""
                    return status, headers, body, "chunked"
                body += self._take(n)
                assert self._take(2) == b"\r\n"
        if "content-length" in headers:
            assert len(headers["content-length"]) == 1, headers
            n = int(headers["content-length"][0])
            return status, headers, self._take(n), "length"
        while self._fill():
            pass
        body, self.buf = self.buf, b""
        return status, headers, body, "close"

    def closed(self):
        """Does the peer close the connection, with nothing more sent?"""
        try:
            while self._fill():
                pass
        except socket.timeout:
            return False
        return self.buf == b""

    def close(self):
        self.s.close()


def req(path, version="1.0", method="GET", conn="keep-alive", extra=b""):
    head = b"%s %s HTTP/%s\r\nHost: x\r\n" % (method.encode(), path.encode(),
                                              version.encode())
    if conn:
        head += b"Connection: %s\r\n" % conn.encode()
    return head + extra + b"\r\n"


@pytest.mark.parametrize("path", ["/chunked", "/close", "/close10"])
def test_http10_keepalive_unknown_length_is_close_delimited(lb, path):
    c = Reader(lb.port)
    c.send(req(path))
    status, h, body, framing = c.answer()
    assert status.startswith("HTTP/1.0 200")
    assert "content-length" not in h, h      # was "Content-Length: 0"
    assert h.get("connection") == ["close"], h
    assert framing == "close" and body == BODY
    assert c.eof
    c.close()


def test_ab_k_style_client(lb):
    """ApacheBench's -k: HTTP/1.0, "Connection: Keep-Alive", and the next
    request sent at once on the same connection if it is kept."""
    c = Reader(lb.port)
    ab = b"User-Agent: ApacheBench/2.3\r\nAccept: */*\r\n"
    c.send(req("/chunked", conn="Keep-Alive", extra=ab))
    status, h, body, framing = c.answer()
    assert "content-length" not in h and h.get("connection") == ["close"]
    assert body == BODY and c.eof
    c.close()
    # a known length keeps the connection: the next request is answered
    c = Reader(lb.port)
    for _ in range(3):
        c.send(req("/length", conn="Keep-Alive", extra=ab))
        status, h, body, framing = c.answer()
        assert h["content-length"] == ["12"] and body == BODY
        assert h.get("connection") == ["keep-alive"], h
    c.close()


def test_pipelined_after_a_close_delimited_answer(lb):
    # a length, then no length: both answered in order, then the close
    c = Reader(lb.port)
    c.send(req("/length") + req("/chunked"))
    assert c.answer()[2:] == (BODY, "length")
    status, h, body, framing = c.answer()
    assert (body, framing) == (BODY, "close") and "content-length" not in h
    c.close()
    # no length first: its body is never taken for the next answer; the
    # connection ends after it, and the client sends the next one again
    c = Reader(lb.port)
    c.send(req("/chunked") + req("/length"))
    status, h, body, framing = c.answer()
    assert (body, framing) == (BODY, "close")
    assert b"HTTP/1" not in body
    c.close()


def test_http10_without_keepalive(lb):
    for path in ("/chunked", "/close", "/length"):
        c = Reader(lb.port)
        c.send(req(path, conn=None))
        status, h, body, framing = c.answer()
        assert body == BODY
        assert framing == ("length" if path == "/length" else "close")
        if path != "/length":
            assert "content-length" not in h
        assert c.closed()
        c.close()


def test_http11_gets_chunks_and_keeps_the_connection(lb):
    c = Reader(lb.port)
    for path in ("/chunked", "/close", "/length", "/chunked"):
        c.send(req(path, version="1.1", conn=None))
        status, h, body, framing = c.answer()
        assert status.startswith("HTTP/1.1 200") and body == BODY
        assert framing == ("length" if path == "/length" else "chunked")
    c.close()


@pytest.mark.parametrize("method,path", [
    ("HEAD", "/chunked"), ("GET", "/204"), ("GET", "/304")])
def test_http10_keepalive_without_body_stays_open(lb, method, path):
    c = Reader(lb.port)
    c.send(req(path, method=method))
    status, h, body, framing = c.answer(method)
    assert body == b"" and "content-length" not in h, h
    assert h.get("connection") == ["keep-alive"], h
    # kept: the next request on it is answered, with its length
    c.send(req("/length"))
    assert c.answer()[2:] == (BODY, "length")
    c.close()
    assert get(lb.port, "/length").body == BODY
