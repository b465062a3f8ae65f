"""Dead, slow and vanishing replicas and clients."""
import os
import socket
import struct
import time

import pytest

from conftest import (Load, children, get, open_fds, post_json, request,
                      wait_for)


def test_killed_replica_fails_no_request(procs):
    reps = [procs.replica("server-%d" % i) for i in (1, 2, 3)]
    lb = procs.ringlb(reps)
    load = Load(lb.port)
    time.sleep(0.3)
    reps[1].kill()             # SIGKILL, mid-load
    reps[1].wait()
    killed_at = len(load.served)
    time.sleep(0.5)
    load.stop()
    assert load.failures == []
    assert len(load.served) > killed_at + 20     # the load went on after the kill
    assert "server-2" not in load.served[killed_at + 8:]
    # afterwards, every key still gets an answer, from a live replica
    for k in range(300):
        r = get(lb.port, "/home?request_id=%d" % k)
        assert r.status == 200, r.body
        assert r.header("X-Served-By") in ("server-1", "server-3")


def test_all_replicas_dead_is_502_then_503(procs):
    reps = [procs.replica("server-%d" % i) for i in (1, 2)]
    # no periodic heartbeat during the test: only the failed request
    # itself makes ringlb check its replicas
    lb = procs.ringlb(reps, "--health-interval", "60000")
    for rep in reps:
        rep.kill()
        rep.wait()
    r = get(lb.port, "/home?request_id=1")
    assert r.status == 502
    body = r.json()
    assert body["status"] == "failure"
    assert body["message"].startswith("<Error> no replica could answer")
    # both attempts are named: the owner, then the next on the ring
    assert "server-1" in body["message"] and "server-2" in body["message"]
    # the failed connections made both suspect; checked and evicted, the
    # ring is empty and ringlb says so
    deadline = time.monotonic() + 5
    while get(lb.port, "/heartbeat").status != 503:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    r = get(lb.port, "/home?request_id=1")
    assert r.status == 503
    assert r.json()["message"].startswith("<Error> no replica is available")
    # static replicas are not started by ringlb: it says what it does do
    assert "POST /add" not in r.json()["message"]
    assert "takes each back as soon as it answers" in r.json()["message"]
    r = post_json(lb.port, "/rm", {"n": 1, "hostnames": ["server-1"]},
                  method="DELETE")
    assert r.status == 200
    wait_for(lambda: "replica server-1 removed from the ring (the static "
             "backend stops nothing)" in open(lb.log_path).read(),
             what="the /rm log line")


def test_post_with_body_is_not_retried(procs):
    reps = [procs.replica("server-%d" % i) for i in (1, 2)]
    lb = procs.ringlb(reps, "--health-interval", "60000")
    owner = get(lb.port, "/map_request?id=7").json()["mapped_server"]
    dead = [r for r in reps if r.name == owner][0]
    dead.kill()
    dead.wait()
    r = request(lb.port, "POST", "/home?request_id=7", body=b'{"a": 1}')
    assert r.status == 502
    assert owner in r.json()["message"]
    # the same key without a body is retried on the next replica
    r = get(lb.port, "/home?request_id=7")
    assert r.status == 200 and r.header("X-Served-By") != owner


def test_slow_replica_times_out_504(procs):
    up = procs.upstream("slow-1")
    # 1 s: room for a quick answer on a loaded (or sanitized) build,
    # still well short of the slow one
    lb = procs.ringlb([up], "--timeout", "1000")
    t0 = time.monotonic()
    r = get(lb.port, "/slow?ms=5000")
    took = time.monotonic() - t0
    assert r.status == 504
    assert r.json()["status"] == "failure"
    assert "did not answer in time" in r.json()["message"]
    assert took < 4.5
    # a quick request on the same replica is fine
    assert get(lb.port, "/slow?ms=10").status == 200


def test_client_hangs_up_while_waiting(procs):
    up = procs.upstream("slow-1")
    lb = procs.ringlb([up])
    assert get(lb.port, "/slow?ms=1").status == 200
    fds = open_fds(lb.pid)
    for _ in range(5):
        s = socket.create_connection(("127.0.0.1", lb.port), timeout=5)
        s.sendall(b"GET /slow?ms=700 HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.05)
        # a reset: a plain close() only sends a FIN, which is a half-close
        # until written to, and is answered (test_halfclose.py)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                     struct.pack("ii", 1, 0))
        s.close()
    time.sleep(1.2)
    assert lb.poll() is None
    assert get(lb.port, "/slow?ms=1").status == 200
    time.sleep(0.2)
    assert open_fds(lb.pid) <= fds + 1


def hang_up_mid_answer(port):
    """Ask for 50 MB, read 1 MB of it, and close: with the rest unread,
    the close resets the connection."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"GET /big?mb=50 HTTP/1.1\r\nHost: x\r\n\r\n")
    got = 0
    while got < 1 << 20:
        chunk = s.recv(65536)
        assert chunk, "ringlb closed the connection early"
        got += len(chunk)
    s.close()


def test_client_hangs_up_mid_response(procs):
    up = procs.upstream("big-1")
    lb = procs.ringlb([up])
    fds = open_fds(lb.pid)
    for _ in range(5):
        hang_up_mid_answer(lb.port)
    time.sleep(0.5)
    assert lb.poll() is None
    r = get(lb.port, "/big?mb=1")
    assert r.status == 200 and len(r.body) == 1 << 20
    time.sleep(0.2)
    assert open_fds(lb.pid) <= fds + 2


@pytest.mark.parametrize("workers", ["1", "2"])
def test_clients_hanging_up_mid_response_again_and_again(procs, workers):
    """A client that closes with most of a large answer unread resets the
    connection: the write waiting for it fails while the proxy frees the
    connection.  Each of the two must let the other go: the write event
    of a connection being freed once took a reference to it and dropped
    it, which freed it twice (libevent warned "too few references", one
    time in five, and a worker crashed now and then)."""
    up = procs.upstream("big-1")
    lb = procs.ringlb([up], "--workers", workers)
    for _ in range(40):
        hang_up_mid_answer(lb.port)
    time.sleep(0.3)
    assert lb.poll() is None
    assert get(lb.port, "/big?mb=1").status == 200
    with open(lb.log_path, errors="replace") as f:
        log = f.read()
    assert "[warn]" not in log, log[-2000:]


def close_wait_sockets(pid):
    """How many of pid's TCP sockets are in CLOSE-WAIT."""
    inodes = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    n = 0
    for table in ("/proc/%d/net/tcp" % pid, "/proc/%d/net/tcp6" % pid):
        with open(table) as f:
            next(f)
            for line in f:
                cols = line.split()
                if cols[3] == "08" and cols[9] in inodes:
                    n += 1
    return n


def test_connections_to_removed_replicas_are_reaped(procs):
    """After an add/remove storm, the pooled keep-alive connections to the
    replicas that are gone (CLOSE-WAIT once they exit) are closed as soon
    as traffic goes on."""
    lb = procs.ringlb((), "--replicas", "2", healthy=2)
    for round_ in range(3):
        names = ["storm-%d-%d" % (round_, i) for i in range(3)]
        r = post_json(lb.port, "/add", {"n": 3, "hostnames": names})
        assert r.status == 200, r.body
        for k in range(120):
            assert get(lb.port, "/home?request_id=%d" % k).status == 200
        r = post_json(lb.port, "/rm", {"n": 3, "hostnames": names},
                      method="DELETE")
        assert r.status == 200, r.body
    wait_for(lambda: len(children(lb.pid)) == 2, what="the storm's replicas gone")
    # traffic goes on: libcurl drops the dead connections of its pool
    deadline = time.monotonic() + 10
    k = 0
    while close_wait_sockets(lb.pid) > 0:
        assert time.monotonic() < deadline, close_wait_sockets(lb.pid)
        assert get(lb.port, "/home?request_id=%d" % k).status == 200
        k += 1
        time.sleep(0.1)
