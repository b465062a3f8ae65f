"""Input that arrives while a request is being answered waits, and costs
nothing while it waits: ringlb keeps each client socket in epoll's set all
along (a second read event beside the bufferevent's own), and that event
must not be called again and again for input nobody reads yet."""
import os
import socket
import time

import pytest

H = b"Host: x\r\n"
SLOW = b"GET /slow?ms=1500 HTTP/1.1\r\n" + H + b"\r\n"


def cpu_seconds(pid):
    """User and system time of every thread of pid so far, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def read_answers(s, count, timeout=10):
    """count Content-Length-framed answers from s: [(status, body)]."""
    s.settimeout(timeout)
    raw, out = b"", []
    while len(out) < count:
        got = s.recv(65536)
        assert got, "closed after %d answers: %r" % (len(out), raw[:300])
        raw += got
        while b"\r\n\r\n" in raw:
            head, _, rest = raw.partition(b"\r\n\r\n")
            n = int(head.lower().split(b"content-length:")[1].split()[0])
            if len(rest) < n:
                break
            out.append((int(head.split()[1]), rest[:n]))
            raw = rest[n:]
    return out


@pytest.mark.parametrize("workers", ["1", "2"])
@pytest.mark.parametrize("then", ["pipelined", "half-closed", "both"])
def test_input_waiting_behind_a_slow_answer_costs_no_cpu(procs, workers,
                                                          then):
    """A request sent before the answer to the one before it, the client's
    EOF, or both, arrive while a slow request is answered: ringlb spends
    next to no CPU until the answer is out, then serves what waited."""
    up = procs.upstream("echo-1")
    lb = procs.ringlb([up], "--workers", workers)
    s = socket.create_connection(("127.0.0.1", lb.port), timeout=10)
    try:
        s.sendall(SLOW)
        time.sleep(0.2)         # the slow request is with the replica
        if then in ("pipelined", "both"):
            s.sendall(b"GET /echo HTTP/1.1\r\n" + H + b"\r\n")
        if then in ("half-closed", "both"):
            s.shutdown(socket.SHUT_WR)
        time.sleep(0.2)
        before = cpu_seconds(lb.pid)
        time.sleep(1.0)
        spent = cpu_seconds(lb.pid) - before
        assert spent < 0.15, "%.2f s of CPU in 1 s of waiting" % spent
        want = 2 if then in ("pipelined", "both") else 1
        got = read_answers(s, want)
        assert [code for code, _ in got] == [200] * want
        if then != "pipelined":
            s.settimeout(5)
            assert s.recv(1) == b""     # closed after the answers
        else:
            # the connection is still open and served
            s.sendall(b"GET /echo HTTP/1.1\r\n" + H + b"\r\n")
            assert read_answers(s, 1)[0][0] == 200
    finally:
        s.close()
