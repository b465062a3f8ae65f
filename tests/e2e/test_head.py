"""HEAD gets the head a GET would get, Content-Length included, and no
body: from ringlb's own paths, its errors, and ringlb-replica."""
import socket

import pytest

H = b"Host: x\r\n"


def head_then_get(port, path):
    """HEAD path, then GET path on the same connection; returns the two
    (status, headers, body) - a body sent after the HEAD's head would show
    up as the start of the second answer."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        s.sendall(b"HEAD " + path + b" HTTP/1.1\r\n" + H + b"\r\n" +
                  b"GET " + path + b" HTTP/1.1\r\n" + H +
                  b"Connection: close\r\n\r\n")
        raw = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            raw += chunk
    finally:
        s.close()
    out = []
    for head_only in (True, False):
        head, sep, raw = raw.partition(b"\r\n\r\n")
        assert sep, raw[:300]
        lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        n = 0 if head_only else int(headers.get("content-length", "0"))
        out.append((lines[0], headers, raw[:n]))
        raw = raw[n:]
    assert raw == b""
    return out


# (path, whether the GET's body is the same each time)
OWN_PATHS = [
    (b"/rep", True),
    (b"/heartbeat", True),
    (b"/map_request?id=42", True),
    (b"/map_request", True),                # 400
    (b"/dashboard", True),
    (b"/status", False),
    (b"/status?key=42", False),
    (b"/metrics", False),
    (b"/add", True),                        # 405
]


@pytest.mark.parametrize("path,same", OWN_PATHS,
                         ids=[p[0].decode() for p in OWN_PATHS])
def test_head_on_ringlb_paths(procs, path, same):
    rep = procs.replica("server-1")
    lb = procs.ringlb([rep])
    (hs, hh, hbody), (gs, gh, gbody) = head_then_get(lb.port, path)
    # the second line is a whole answer of its own: nothing followed the
    # HEAD's head
    assert hs == gs and gs.startswith("HTTP/1.1 ")
    assert hbody == b""
    assert "content-length" in hh, (path, hh)
    assert hh.get("content-type") == gh.get("content-type")
    if same:
        assert int(hh["content-length"]) == len(gbody) > 0
    else:
        assert int(hh["content-length"]) > 0


@pytest.mark.parametrize("path", [b"/home", b"/heartbeat", b"/nowhere"])
def test_head_on_replica(procs, path):
    rep = procs.replica("server-1")
    (hs, hh, hbody), (gs, gh, gbody) = head_then_get(rep.port, path)
    assert hs == gs
    assert hbody == b""
    assert int(hh["content-length"]) == len(gbody)


def test_head_forwarded(procs):
    rep = procs.replica("server-1")
    lb = procs.ringlb([rep])
    (hs, hh, hbody), (gs, gh, gbody) = head_then_get(lb.port, b"/home")
    assert hs == gs == "HTTP/1.1 200 OK"
    assert hbody == b""
    assert int(hh["content-length"]) == len(gbody) > 0
    assert hh["x-served-by"] == "server-1"


def test_head_refused_by_the_gate(procs):
    rep = procs.replica("server-1")
    lb = procs.ringlb([rep])
    answers = []
    for method in (b"HEAD", b"GET"):
        s = socket.create_connection(("127.0.0.1", lb.port), timeout=5)
        s.sendall(method + b" /rep HTTP/1.1\r\n" + H + b"Bad header\r\n\r\n")
        raw = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            raw += chunk
        s.close()
        head, _, body = raw.partition(b"\r\n\r\n")
        length = [int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:")]
        answers.append((head.split(b"\r\n")[0], length, body))
    (hs, hl, hbody), (gs, gl, gbody) = answers
    assert hs == gs == b"HTTP/1.1 400 Bad Request"
    assert hbody == b"" and gbody != b""
    assert hl == gl == [len(gbody)]
