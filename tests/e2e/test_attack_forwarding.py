"""Neighbours of the forwarding rules, tried from outside.

A request that is not safe to repeat reaches one replica once, however its
first attempt failed: a replica that takes too long on a pooled connection
(which has no connect time of its own) is slow, not unreachable, and the
request is not sent to the next replica.

Bytes a replica sends on an idle pooled connection, after its answer and
before any request (a body after the answer to a HEAD, a 204 or a 304,
more than the answer's Content-Length), answer no request: they never
reach the client whose request is sent on that connection next.  A paused
transfer (a slow reader) is not idle: its answer arrives whole.

A head line longer than libcurl takes (100 KB) is a 502 that says so, not
"Out of memory".
"""
import socket
import threading
import time

import pytest

from conftest import get, request, wait_for
from rawreplica import RawReplica, keep

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
# what a replica sends where no request asked for it
SMUGGLED = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Evil: 1\r\n\r\nevil!"


def metric(port, name):
    text = get(port, "/metrics").body.decode()
    return int(float(text.split("\n%s " % name)[1].split()[0]))


def key_for(lb, name):
    return next(k for k in range(1000) if get(
        lb.port, "/map_request?id=%d" % k).json()["mapped_server"] == name)


def slow_after_warm(conn, req):
    """Answers /warm at once (the connection stays pooled); anything else
    only after 3 s, by closing."""
    if req.path.startswith("/warm"):
        conn.sendall(OK)
        return True
    time.sleep(3)
    return False


@pytest.mark.parametrize("method,body", [
    ("POST", b""),
    ("POST", b'{"a": 1}'),
    ("PATCH", b""),
    ("PUT", b"data"),
    ("DELETE", b"data"),
    ("OPTIONS", b"data"),
])
def test_slow_replica_on_a_pooled_connection_is_not_skipped(procs, method,
                                                           body):
    slow = RawReplica("slow", {None: slow_after_warm})
    other = RawReplica("other", {None: keep(OK)})
    try:
        lb = procs.ringlb([slow, other], "--health-interval", "60000",
                          "--timeout", "1000")
        key = key_for(lb, "slow")
        r = get(lb.port, "/warm?request_id=%d" % key)
        assert r.status == 200 and r.header("X-Served-By") == "slow"
        retries = metric(lb.port, "ringlb_retries_total")
        r = request(lb.port, method, "/once?request_id=%d" % key, body=body)
        seen = len(slow.requests("/once")) + len(other.requests("/once"))
        assert seen == 1, "the %s reached %d replicas (%s)" % (
            method, seen, r.header("X-Served-By"))
        assert r.status == 504, (r.status, r.body)
        assert "did not answer in time" in r.json()["message"]
        assert metric(lb.port, "ringlb_retries_total") == retries
    finally:
        slow.close()
        other.close()


def late_extra(head):
    """Answers with head (and the body it frames), then, once ringlb has
    put the connection back in its pool, sends SMUGGLED on it."""
    def answer(conn, req):
        if req.path.startswith("/next"):
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ngood")
            return True
        conn.sendall(head)
        time.sleep(0.3)
        conn.sendall(SMUGGLED)
        return True
    return answer


LATE = {
    "HEAD": b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n",
    "GET-204": b"HTTP/1.1 204 No Content\r\n\r\n",
    "GET-304": b"HTTP/1.1 304 Not Modified\r\nETag: \"e\"\r\n\r\n",
    "GET-longer": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
}


@pytest.mark.parametrize("case", sorted(LATE))
def test_bytes_on_an_idle_connection_answer_no_request(procs, case):
    method = case.split("-")[0]
    rep = RawReplica("fake", {"/first": late_extra(LATE[case]),
                              None: late_extra(b"")})
    try:
        lb = procs.ringlb([rep], "--health-interval", "60000")
        r = request(lb.port, method, "/first")
        assert r.status in (200, 204, 304), r.status
        time.sleep(0.8)             # SMUGGLED is in ringlb's socket by now
        for i in range(3):
            r = get(lb.port, "/next")
            assert (r.status, r.body, r.header("X-Evil")) == \
                (200, b"good", None), "request %d got %r" % (i, r.body)
        with open(lb.log_path) as f:
            assert "sent bytes on an idle connection" in f.read()
    finally:
        rep.close()


def test_a_paused_answer_on_a_pooled_connection_arrives_whole(procs):
    """A client that reads slowly pauses the transfer: curl stops watching
    its socket, and the replica's bytes wait there; that connection is
    not an idle one."""
    body = bytes(range(256)) * (64 * 1024)         # 16 MiB
    big = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    rep = RawReplica("fake", {"/warm": keep(OK), "/big": keep(big)})
    try:
        lb = procs.ringlb([rep], "--health-interval", "60000")
        assert get(lb.port, "/warm").status == 200
        s = socket.create_connection(("127.0.0.1", lb.port), timeout=10)
        s.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        time.sleep(1.0)             # paused by now
        while True:
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            data += chunk
            if len(data) < len(body) // 2:
                time.sleep(0.05)    # paused again, and again
        s.close()
        head, _, got = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 ")
        assert got == body, "%d of %d bytes" % (len(got), len(body))
        with open(lb.log_path) as f:
            assert "sent bytes on an idle connection" not in f.read()
    finally:
        rep.close()


@pytest.mark.parametrize("where", ["header", "status"])
def test_a_head_line_over_libcurls_limit_is_named(procs, where):
    """libcurl refuses a head line over 100 KB as "out of memory": the 502
    says what the replica did, and the log names the replica."""
    long = b"a" * (200 * 1024)
    head = (b"HTTP/1.1 200 OK\r\nX-Long: " + long + b"\r\n"
            if where == "header" else b"HTTP/1.1 200 " + long + b"\r\n")
    rep = RawReplica("fake", {None: head + b"Content-Length: 2\r\n\r\nok"})
    try:
        lb = procs.ringlb([rep], "--health-interval", "60000",
                          "--max-response-header", "1m")
        r = get(lb.port, "/long")
        assert r.status == 502
        msg = r.json()["message"]
        assert "longer than 102400 bytes" in msg and "fake" in msg, msg
        wait_for(lambda: "replica 'fake' sent an answer ringlb does not "
                 "pass on" in open(lb.log_path).read(), what="the log line")
        assert get(lb.port, "/heartbeat").status == 200
    finally:
        rep.close()
