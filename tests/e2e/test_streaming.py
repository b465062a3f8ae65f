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


def bulk(procs):
    """A replica serving /big?mb=N to a thousand clients at once."""
    import sys
    from conftest import BULKREPLICA
    return procs._server("bulk-1", lambda port: [
        sys.executable, BULKREPLICA, "--port", str(port)])


def metric(port, name):
    """A metric's value; None when ringlb has no such metric."""
    from conftest import get
    text = get(port, "/metrics").body.decode()
    if "\n%s " % name not in text:
        return None
    return int(float(text.split("\n%s " % name)[1].split()[0]))


def slow_readers(port, n, mb):
    """n clients that ask for an mb MiB answer and read next to nothing
    of it (a 16 KiB receive buffer, read from now and then)."""
    socks = []
    for i in range(n):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        s.connect(("127.0.0.1", port))
        s.sendall(b"GET /big?mb=%d HTTP/1.1\r\nHost: x\r\n\r\n" % mb)
        s.setblocking(False)
        socks.append(s)
        if i % 100 == 99:
            time.sleep(0.1)         # no flood of connects
    heads = set()
    deadline = time.monotonic() + 40
    while len(heads) < n and time.monotonic() < deadline:
        for i, s in enumerate(socks):
            if i not in heads:
                try:
                    if s.recv(1024).startswith(b"HTTP/1.1 200"):
                        heads.add(i)
                except BlockingIOError:
                    pass
        time.sleep(0.05)
    assert len(heads) == n, "%d of %d slow readers answered" % (len(heads), n)
    return socks


def nibble(socks):
    for s in socks:
        try:
            s.recv(4096)
        except BlockingIOError:
            pass


def fast_read(port, mb):
    """A client that reads a whole mb MiB answer as fast as it comes."""
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.sendall(b"GET /big?mb=%d HTTP/1.1\r\nHost: x\r\n\r\n" % mb)
    status, hdrs, got = read_response(s)
    s.close()
    return status, got


def raise_nofile(want):
    import resource
    import pytest
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < want:
        pytest.skip("needs %d descriptors; the hard limit is %d" % (want,
                                                                     hard))
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


# health checks that a loaded test machine cannot fail
PATIENT = ("--health-interval", "1000", "--health-timeout", "3000",
           "--health-failures", "5")


def test_a_thousand_slow_readers_stay_bounded(procs):
    """1,000 clients each ask for a 50 MiB answer and read next to none of
    it.  What ringlb holds for them is bounded per connection and in
    total (--max-response-memory): RSS stays under 200 MB, a fast client
    still gets its whole answer meanwhile, and the memory goes back when
    the slow ones leave."""
    from conftest import get, wait_for
    n = 1000 if MEASURE_RSS else 200
    raise_nofile(n + 200)
    up = bulk(procs)
    lb = procs.ringlb([up], *PATIENT)
    for _ in range(20):
        assert get(lb.port, "/heartbeat").status == 200
    assert fast_read(lb.port, 1)[1] == 1 << 20
    time.sleep(0.3)
    idle = rss_kb(lb.pid)
    socks = slow_readers(lb.port, n, 50)
    try:
        peak = rss_kb(lb.pid)
        for k in range(30):
            peak = max(peak, rss_kb(lb.pid))
            if k % 10 == 0:
                nibble(socks)
            time.sleep(0.1)
        held = metric(lb.port, "ringlb_response_buffer_bytes")
        # not starved: a transfer that holds nothing goes on
        status, got = fast_read(lb.port, 20)
        assert status.startswith("HTTP/1.1 200") and got == 20 << 20
        peak = max(peak, rss_kb(lb.pid))
    finally:
        for s in socks:
            s.close()
    wait_for(lambda: metric(lb.port, "ringlb_client_connections") == 1,
             timeout=20, what="the slow readers' connections to close")
    time.sleep(1.5)                 # idle transfers are freed after 1 s
    after = rss_kb(lb.pid)
    deadline = time.monotonic() + 5
    while after >= idle + 20 * 1024 and time.monotonic() < deadline:
        time.sleep(0.2)
        after = rss_kb(lb.pid)
    print("RSS idle %d KB, peak %d KB, after %d KB; held %s bytes" % (
        idle, peak, after, held))
    if MEASURE_RSS:
        assert peak < 200 * 1024, "peak RSS %d KB" % peak
        assert after < idle + 20 * 1024, "RSS %d KB after, %d KB idle" % (
            after, idle)
    # 32 MiB, and at most a piece more for each reader
    assert held is not None and held <= (32 << 20) + n * 16384
    assert metric(lb.port, "ringlb_response_buffer_bytes") == 0


def test_answer_budget_pauses_transfers_without_starving_any(procs):
    """With --max-response-memory 1m, 100 slow readers hold about that
    much (and a piece each at most), and fast clients still get their
    answers whole, one after another and side by side."""
    import threading
    raise_nofile(400)
    up = bulk(procs)
    lb = procs.ringlb([up], "--max-response-memory", "1m", *PATIENT)
    socks = slow_readers(lb.port, 100, 50)
    try:
        time.sleep(0.5)
        nibble(socks)
        time.sleep(0.5)
        held = metric(lb.port, "ringlb_response_buffer_bytes")
        assert held <= (1 << 20) + 100 * 16384, held
        results = []
        threads = [threading.Thread(target=lambda: results.append(
            fast_read(lb.port, 10))) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert [got for _, got in results] == [10 << 20] * 4
    finally:
        for s in socks:
            s.close()
