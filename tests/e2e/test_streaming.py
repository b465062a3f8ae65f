"""Large answers stream through without being buffered whole."""
import socket
import time

import os

from conftest import rss_kb

# Under a wrapper such as valgrind the process measured is the wrapper, and
# AddressSanitizer's quarantine holds freed memory on purpose.
MEASURE_RSS = not (os.environ.get("RINGLB_TEST_WRAPPER") or
                   os.environ.get("RINGLB_TEST_SANITIZED"))


def assert_rss_growth_below(pid, before, limit_kb):
    if MEASURE_RSS:
        assert rss_kb(pid, "VmHWM") - before < limit_kb


def read_response(s, sleep_every=0, pause=0.0):
    """Read one HTTP/1.1 response with Content-Length from socket s."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        assert chunk, "connection closed in headers"
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    hdrs = {k.lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:])}
    want = int(hdrs["content-length"])
    got = len(rest)
    n = 0
    while got < want:
        chunk = s.recv(1 << 20)
        assert chunk, "connection closed after %d of %d bytes" % (got, want)
        got += len(chunk)
        n += 1
        if sleep_every and n % sleep_every == 0:
            time.sleep(pause)
    return lines[0], hdrs, got


def test_100mb_response_streams(procs):
    up = procs.upstream("big-1")
    lb = procs.ringlb([up])
    before = rss_kb(lb.pid)
    s = socket.create_connection(("127.0.0.1", lb.port), timeout=30)
    s.sendall(b"GET /big?mb=100 HTTP/1.1\r\nHost: x\r\n\r\n")
    status, hdrs, got = read_response(s)
    s.close()
    assert status.startswith("HTTP/1.1 200")
    assert hdrs["x-served-by"] == "big-1"
    assert got == 100 << 20
    # never more than a few MiB above where it started
    assert_rss_growth_below(lb.pid, before, 16 * 1024)


def test_slow_client_applies_back_pressure(procs):
    up = procs.upstream("big-1")
    lb = procs.ringlb([up])
    before = rss_kb(lb.pid)
    s = socket.create_connection(("127.0.0.1", lb.port), timeout=30)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    s.sendall(b"GET /big?mb=40 HTTP/1.1\r\nHost: x\r\n\r\n")
    # read slowly for a while: the replica is far faster than us
    status, hdrs, got = read_response(s, sleep_every=4, pause=0.02)
    s.close()
    assert got == 40 << 20
    assert_rss_growth_below(lb.pid, before, 16 * 1024)
