"""Every Connection header's options are hop-by-hop, both ways; none of
them removes a header ringlb answers for.

Request: the fields named by any of the client's Connection headers (a
comma list, any blanks, any case) stay between the client and ringlb;
Host, X-Request-Id (the request key) and X-Forwarded-For reach the replica
whatever they say.  The client's Upgrade never reaches the replica: ringlb
forwards no protocol upgrade.  Answer: the fields named by any of the
replica's Connection headers stay between it and ringlb, but never its
Content-Length, and X-Served-By is always ringlb's.
"""
import socket

import pytest

from conftest import get, request
from rawreplica import RawReplica, keep

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


@pytest.fixture
def fake(procs):
    rep = RawReplica("fake", {
        None: keep(OK),
        "/answer": keep(b"HTTP/1.1 200 OK\r\nX-Internal: 1\r\n"
                        b"Connection: X-Internal\r\nX-Later: 2\r\n"
                        b"Connection: keep-alive\r\nconnection:  X-LATER ,"
                        b"content-length ,\tX-Served-By\r\nX-Public: yes\r\n"
                        b"X-Served-By: forged\r\nContent-Length: 2\r\n\r\nok"),
    })
    lb = procs.ringlb([rep], "--health-interval", "60000")
    yield rep, lb
    rep.close()


def read_until(s, done):
    """What the socket gives until done(data), it closes, or 5 s pass."""
    data = b""
    try:
        while not done(data):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except socket.timeout:
        pass
    return data


def sent(fake, path, headers):
    rep, lb = fake
    r = request(lb.port, "GET", path, headers=headers)
    assert r.status == 200 and r.body == b"ok"
    got = rep.requests(path.split("?")[0])
    assert len(got) == 1
    return {k.lower(): v for k, v in got[0].headers}, got[0]


def test_every_connection_header_is_stripped(fake):
    rep, lb = fake
    # http.client sends each header as given, in order
    headers = [("Connection", "keep-alive, X-First"),
               ("X-First", "1"), ("X-Secret", "s"), ("X-Third", "3"),
               ("X-Kept", "k"), ("x-lower", "l"),
               ("Connection", "X-Secret"),
               ("Connection", " \tx-third ,, X-LOWER\t")]
    s = socket.create_connection(("127.0.0.1", lb.port), timeout=5)
    s.sendall(b"GET /req HTTP/1.1\r\nHost: example\r\n" + b"".join(
        b"%s: %s\r\n" % (k.encode(), v.encode()) for k, v in headers) +
        b"\r\n")
    data = read_until(s, lambda d: d.endswith(b"\r\n\r\nok"))
    s.close()
    assert data.startswith(b"HTTP/1.1 200"), data
    got = rep.requests("/req")[0]
    names = [k.lower() for k, _ in got.headers]
    for gone in ("x-first", "x-secret", "x-third", "x-lower", "connection"):
        assert gone not in names, got.headers
    assert got.header("X-Kept") == ["k"]


def test_connection_cannot_remove_ringlbs_headers(fake):
    rep, lb = fake
    h, req = sent(fake, "/own", {
        "X-Request-Id": "key-42", "X-Forwarded-For": "10.0.0.1",
        "Connection": "X-Request-Id, X-Forwarded-For, Host, Content-Length, "
                      "Transfer-Encoding"})
    assert req.header("X-Request-Id") == ["key-42"]
    assert req.header("X-Forwarded-For") == ["10.0.0.1, 127.0.0.1"]
    assert req.header("Host") == ["127.0.0.1:%d" % lb.port]
    # and with a body, its length still frames it
    r = request(lb.port, "POST", "/body", body=b"abc", headers={
        "Connection": "Content-Length, X-Request-Id", "X-Request-Id": "k"})
    assert r.status == 200
    got = rep.requests("/body")[0]
    assert got.body == b"abc" and got.header("Content-Length") == ["3"]
    assert got.header("X-Request-Id") == ["k"]


@pytest.mark.parametrize("version, line, want", [
    (b"1.1", b"Host: example.test:81", "example.test:81"),
    (b"1.1", b"host:   Ex.Test:81  ", "Ex.Test:81"),
    (b"1.1", b"Host:", ""),
    (b"1.1", b"X-A: 1\r\nAccept: */*\r\nHOST: up.test", "up.test"),
    (b"1.0", b"Host: old.example", "old.example"),
    (b"1.0", None, None),	# none: libcurl's, the replica's address
], ids=["plain", "case-and-blanks", "empty", "last", "http10",
        "http10-none"])
def test_host_reaches_the_replica_once(fake, version, line, want):
    """The client's Host goes on as it came (less blanks around it), one
    line of it, never libcurl's as well; without one, libcurl's.  Either
    way it is the first header line, spelt Host."""
    rep, lb = fake
    path = "/host-" + version.decode() + "-" + str(line is None)
    s = socket.create_connection(("127.0.0.1", lb.port), timeout=5)
    s.sendall(b"GET %s HTTP/%s\r\n%sConnection: close\r\n\r\n" % (
        path.encode(), version, line + b"\r\n" if line else b""))
    data = read_until(s, lambda d: d.endswith(b"\r\n\r\nok"))
    s.close()
    assert data.startswith(b"HTTP/" + version + b" 200"), data
    got = [r for r in rep.requests(path)][-1]
    if want is None:
        want = "127.0.0.1:%d" % rep.port
    assert got.header("Host") == [want], got.headers
    assert got.headers[0] == ("Host", want), got.headers


def test_a_key_from_the_query_is_not_removed_either(fake):
    rep, lb = fake
    h, req = sent(fake, "/q?request_id=7", {"Connection": "X-Request-Id"})
    assert req.header("X-Request-Id") == ["7"]


def test_upgrade_never_reaches_the_replica(fake):
    rep, lb = fake
    h, req = sent(fake, "/ws", {
        "Connection": "Upgrade", "Upgrade": "websocket",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version": "13"})
    assert "upgrade" not in h and "connection" not in h
    # h2c: its settings are named by Connection, so they go too
    h, req = sent(fake, "/h2c", {"Connection": "Upgrade, HTTP2-Settings",
                                 "Upgrade": "h2c", "HTTP2-Settings": "AAMAAABkAAQAAP__"})
    assert "upgrade" not in h and "http2-settings" not in h


def test_answer_connection_options_are_stripped_but_not_the_length(fake):
    rep, lb = fake
    s = socket.create_connection(("127.0.0.1", lb.port), timeout=5)
    s.sendall(b"GET /answer HTTP/1.1\r\nHost: x\r\n\r\n"
              b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
    data = read_until(s, lambda d: d.count(b"\r\n\r\nok") == 2)
    s.close()
    assert data.count(b"HTTP/1.1 200 OK\r\n") == 2, data
    first = data.split(b"\r\n\r\nok", 1)[0].lower()
    assert b"content-length: 2" in first, first      # framed as it came
    assert b"transfer-encoding" not in first
    for gone in (b"x-internal", b"x-later", b"connection: keep-alive",
                 b"forged"):
        assert gone not in first, first
    assert b"x-public: yes" in first and b"x-served-by: fake" in first
    assert get(lb.port, "/answer").header("X-Served-By") == "fake"
