"""Clients that half-close their socket after a request (shutdown(SHUT_WR))
still get their answers; clients that are really gone (a reset) have their
proxied request dropped at once."""
import json
import socket
import struct
import threading
import time

from conftest import get, wait_for

H = b"Host: x\r\n"


def half_closed(port, raw, timeout=10.0):
    """Send raw, shut down the writing side, and read until the server
    closes; returns every byte it sent."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(raw)
        s.shutdown(socket.SHUT_WR)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out
            out += chunk
    finally:
        s.close()


def answers(raw):
    """[(status, body)] of the Content-Length-framed answers in raw."""
    out = []
    while raw:
        head, sep, rest = raw.partition(b"\r\n\r\n")
        assert sep, raw[:200]
        lines = head.decode("latin-1").split("\r\n")
        n = 0
        for line in lines[1:]:
            k, _, v = line.partition(":")
            if k.strip().lower() == "content-length":
                n = int(v)
        out.append((int(lines[0].split()[1]), rest[:n]))
        raw = rest[n:]
    return out


def in_parallel(n, fn):
    results = [None] * n

    def run(i):
        try:
            results[i] = fn(i)
        except Exception as e:          # reported below, with the others
            results[i] = e

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


def aborts(port):
    text = get(port, "/metrics").body.decode()
    return int(text.split("\nringlb_client_aborts_total ")[1].split()[0])


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100.0


def test_half_closed_clients_get_their_answers(procs):
    ups = [procs.upstream("up-%d" % i) for i in (1, 2)]
    lb = procs.ringlb(ups)
    paths = ["/rep", "/heartbeat", "/map_request?id=7", "/metrics",
             "/echo?request_id=%d", "/slow?ms=150&request_id=%d"]
    for path in paths:
        def one(i, path=path):
            p = path % i if "%d" in path else path
            return answers(half_closed(
                lb.port, b"GET " + p.encode() + b" HTTP/1.1\r\n" + H + b"\r\n"))
        got = in_parallel(30, one)
        ok = [g for g in got if isinstance(g, list) and len(g) == 1 and
              g[0][0] == 200]
        assert len(ok) == 30, (path, [g for g in got if g not in ok][:3])
    # a proxied request's answer says it came whole from the replica
    body = json.loads(answers(half_closed(
        lb.port, b"GET /echo HTTP/1.1\r\n" + H + b"\r\n"))[0][1])
    assert body["path"] == "/echo"
    assert lb.poll() is None


def test_half_closed_pipeline_gets_every_answer(procs):
    up = procs.upstream("up-1")
    lb = procs.ringlb([up])
    raw = (b"GET /slow?ms=100 HTTP/1.1\r\n" + H + b"\r\n" +
           b"GET /rep HTTP/1.1\r\n" + H + b"\r\n" +
           b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: 3\r\n\r\nabc")
    got = answers(half_closed(lb.port, raw))
    assert [code for code, _ in got] == [200, 200, 200]
    assert json.loads(got[0][1])["slow"] is True
    assert json.loads(got[2][1])["body_len"] == 3
    # and a half-closed request cut short is just closed, unanswered
    assert half_closed(lb.port, b"GET /rep HTTP/1.1\r\nHo") == b""


def test_half_closed_add_is_answered(procs):
    lb = procs.ringlb((), "--replicas", "1", healthy=1)
    body = b'{"n": 1}'
    # /add takes a Host ringlb answers to (a page's rebound name is refused)
    got = answers(half_closed(lb.port, b"POST /add HTTP/1.1\r\nHost: localhost\r\n" +
                              b"Content-Length: %d\r\n\r\n" % len(body) + body))
    assert len(got) == 1 and got[0][0] == 200, got
    assert json.loads(got[0][1])["message"]["N"] == 2


def reset(s):
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


def test_reset_client_cancels_its_request(procs):
    up = procs.upstream("slow-1")
    lb = procs.ringlb([up])
    for half_close_first in (False, True):
        before = aborts(lb.port)
        s = socket.create_connection(("127.0.0.1", lb.port), timeout=5)
        s.sendall(b"GET /slow?ms=3000 HTTP/1.1\r\n" + H + b"\r\n")
        time.sleep(0.2)
        if half_close_first:
            s.shutdown(socket.SHUT_WR)
            time.sleep(0.3)
        cpu0, t0 = cpu_seconds(lb.pid), time.monotonic()
        reset(s)
        # dropped long before the replica's answer would come
        wait_for(lambda: aborts(lb.port) == before + 1, timeout=1.5,
                 what="the reset client's request to be dropped")
        time.sleep(0.5)
        # and noticing it did not spin the event loop
        used = cpu_seconds(lb.pid) - cpu0
        assert used < 0.3 * (time.monotonic() - t0), used
    assert get(lb.port, "/slow?ms=1").status == 200


def client_connections(port):
    text = get(port, "/metrics").body.decode()
    return int(text.split("\nringlb_client_connections ")[1].split()[0])


def test_closed_clients_are_answered_then_let_go(procs):
    up = procs.upstream("slow-1")
    lb = procs.ringlb([up])
    for _ in range(5):
        s = socket.create_connection(("127.0.0.1", lb.port), timeout=5)
        s.sendall(b"GET /slow?ms=300 HTTP/1.1\r\n" + H + b"\r\n")
        time.sleep(0.05)
        s.close()                   # a FIN, as a half-close sends
    # each is answered (the kernel then resets) and its connection closed;
    # only the one asking remains
    wait_for(lambda: client_connections(lb.port) == 1, timeout=3,
             what="the closed clients' connections to be let go")
    assert aborts(lb.port) == 0     # the replica's answers were taken whole
