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


# (request line and headers as sent, body, the headers the replica must
# get, in order; HOST and PEER stand for the replica's address and the
# client's; the X-Request-Id ringlb adds is checked apart)
LISTS = [
    # empty values first, between and last; a name twice; Accept kept
    (b"GET /list-1 HTTP/1.1\r\nHost: h.test\r\nX-Empty:\r\n"
     b"Accept: text/plain\r\nX-Dup: 1\r\nX-Dup: 2\r\nX-Last: \r\n", b"",
     [("Host", "h.test"), ("X-Empty", ""), ("Accept", "text/plain"),
      ("X-Dup", "1"), ("X-Dup", "2"), ("X-Last", ""),
      ("X-Forwarded-For", "PEER")]),
    # HTTP/1.0 with no Host: libcurl's, then the client's, an empty first
    (b"GET /list-2 HTTP/1.0\r\nX-Empty:\r\nAccept: a/b\r\n", b"",
     [("Host", "HOST"), ("X-Empty", ""), ("Accept", "a/b"),
      ("X-Forwarded-For", "PEER")]),
    # no header at all but the Host
    (b"GET /list-3 HTTP/1.1\r\nHost: h\r\n", b"",
     [("Host", "h"), ("X-Forwarded-For", "PEER")]),
    # a body with its type: the client's type once, libcurl's length once
    (b"POST /list-4 HTTP/1.1\r\nHost: h\r\nContent-Type: text/plain\r\n"
     b"Accept: */*\r\nContent-Length: 3\r\n", b"abc",
     [("Host", "h"), ("Content-Type", "text/plain"), ("Accept", "*/*"),
      ("X-Forwarded-For", "PEER"), ("Content-Length", "3")]),
    # a body with no type: none added (not libcurl's form type)
    (b"PUT /list-5 HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n"
     b"Content-Length: 2\r\n", b"hi",
     [("Host", "h"), ("X-A", "1"), ("X-Forwarded-For", "PEER"),
      ("Content-Length", "2")]),
    # the client's own X-Forwarded-For, empty and not, and key
    (b"GET /list-6?request_id=k6 HTTP/1.1\r\nHost: h\r\n"
     b"X-Forwarded-For:\r\nX-B:\r\nX-Forwarded-For: 10.0.0.9\r\n", b"",
     [("Host", "h"), ("X-B", ""), ("X-Forwarded-For", "10.0.0.9, PEER")]),
]


@pytest.mark.parametrize("head, body, want", LISTS,
                         ids=[str(i + 1) for i in range(len(LISTS))])
def test_headers_reach_the_replica_in_order_each_once(fake, head, body,
                                                      want):
    """The replica gets the client's header lines as they came, in their
    order, empty values included, each once, and ringlb's after them;
    none of libcurl's own but the body's length and, to a client with no
    Host, the Host."""
    rep, lb = fake
    path = head.split()[1].split(b"?")[0].decode()
    s = socket.create_connection(("127.0.0.1", lb.port), timeout=5)
    s.sendall(head + b"Connection: close\r\n\r\n" + body)
    data = read_until(s, lambda d: d.endswith(b"\r\n\r\nok"))
    s.close()
    assert data.split(b" ", 2)[1] == b"200", data
    got = rep.requests(path)[-1]
    assert got.body == body
    sub = {"HOST": "127.0.0.1:%d" % rep.port, "PEER": "127.0.0.1"}
    want = [(k, sub.get(v, v.replace("PEER", "127.0.0.1")))
            for k, v in want]
    ids = got.header("X-Request-Id")
    assert len(ids) == 1 and ids[0], got.headers
    if b"request_id=" in head:
        assert ids == [head.split(b"request_id=")[1].split()[0].decode()]
    assert [h for h in got.headers if h[0] != "X-Request-Id"] == want, \
        got.headers


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
