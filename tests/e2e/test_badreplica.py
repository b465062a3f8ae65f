"""A replica that misbehaves gives the client a clean error or a truncated,
closed answer - never a crash, a hang or a leak."""
import socket
import time

from conftest import get, open_fds


def raw_get(port, path, timeout=10):
    """GET over a raw socket: (status line, headers, body, closed by peer)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path.encode())
    data = b""
    closed = False
    while True:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            break
        if not chunk:
            closed = True
            break
        data += chunk
        if b"\r\n\r\n" in data:
            head, body = data.split(b"\r\n\r\n", 1)
            hdrs = {l.split(b":", 1)[0].lower(): l.split(b":", 1)[1].strip()
                    for l in head.split(b"\r\n")[1:]}
            if b"content-length" in hdrs and len(body) >= int(hdrs[b"content-length"]):
                break
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return head.split(b"\r\n")[0].decode(), head, body, closed


def start_bad(procs, *extra):
    bad = procs.badreplica("bad")
    lb = procs.ringlb([bad], "--health-interval", "60000", *extra)
    assert get(lb.port, "/ok").status == 200
    return bad, lb


def test_replica_closes_mid_answer(procs):
    bad, lb = start_bad(procs)
    status, head, body, closed = raw_get(lb.port, "/close-early")
    assert status.startswith("HTTP/1.1 200")
    assert b"100000" in head          # the replica's Content-Length passed on
    assert len(body) < 100000 and closed   # cut off, not taken for whole


def test_replica_sends_too_little_then_stalls(procs):
    bad, lb = start_bad(procs, "--timeout", "800")
    t0 = time.monotonic()
    status, head, body, closed = raw_get(lb.port, "/short-stall")
    assert status.startswith("HTTP/1.1 200") and len(body) < 1000 and closed
    assert time.monotonic() - t0 < 4


def test_replica_sends_too_much(procs):
    bad, lb = start_bad(procs)
    r = get(lb.port, "/too-long")
    assert r.status == 200 and r.body == b"zzzzz"


def test_replica_bad_status_line_is_502(procs):
    bad, lb = start_bad(procs)
    r = get(lb.port, "/bad-status")
    assert r.status == 502
    assert r.json()["status"] == "failure"
    assert "bad" in r.json()["message"]
    # the replica was made suspect and checked at once; its heartbeat is
    # fine, so it stays
    deadline = time.monotonic() + 5
    while "replica bad answers again" not in open(lb.log_path).read():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert get(lb.port, "/ok").status == 200


def test_replica_bad_header_line(procs):
    bad, lb = start_bad(procs)
    r = get(lb.port, "/bad-header")
    # a header line without a colon is a broken answer (RFC 9112 5.1):
    # a clean 502 that says why, never a crash nor a half-passed answer
    assert r.status == 502
    assert r.json()["status"] == "failure"
    assert "Header without colon" in r.json()["message"]
    assert get(lb.port, "/ok").status == 200


def test_replica_header_flood_is_502(procs):
    bad, lb = start_bad(procs)
    r = get(lb.port, "/huge-headers")
    assert r.status == 502
    assert "--max-response-header" in r.json()["message"]
    assert get(lb.port, "/ok").status == 200


def test_replica_answers_nothing_is_502(procs):
    bad, lb = start_bad(procs)
    r = get(lb.port, "/no-answer")
    assert r.status == 502 and r.json()["message"].startswith("<Error> no replica")


def test_replica_stalls_is_504(procs):
    bad, lb = start_bad(procs, "--timeout", "500")
    r = get(lb.port, "/stall")
    assert r.status == 504


def test_misbehaviour_leaves_nothing_behind(procs):
    bad, lb = start_bad(procs, "--timeout", "500")
    fds = open_fds(lb.pid)
    for path in ("/close-early", "/too-long", "/bad-status", "/no-answer",
                 "/stall", "/short-stall", "/bad-header") * 2:
        raw_get(lb.port, path)
    time.sleep(0.5)
    assert lb.poll() is None
    assert get(lb.port, "/ok").status == 200
    assert open_fds(lb.pid) <= fds + 2
