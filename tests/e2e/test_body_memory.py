"""Request bodies buffered at once are bounded in total (--max-body-memory):
past the budget a request gets a JSON 503 with Retry-After, and memory
goes back when the connections holding it end."""
import json
import os
import socket
import threading
import time

from conftest import get, request, rss_kb, wait_for

H = b"Host: x\r\n"
# a sanitizer's allocator or valgrind keep memory of their own
MEASURE_RSS = not (os.environ.get("RINGLB_TEST_WRAPPER") or
                   os.environ.get("RINGLB_TEST_SANITIZED"))


def metric(port, name):
    text = get(port, "/metrics").body.decode()
    return int(float(text.split("\n%s " % name)[1].split()[0]))


def client_connections(port):
    text = get(port, "/metrics").body.decode()
    return int(text.split("\nringlb_client_connections ")[1].split()[0])


def read_answer(s):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            return data
        data += chunk
    return data


def start_body(port, size, sent):
    """A connection that sends a POST head for size bytes and then `sent`
    bytes of its body; returns the socket."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"POST /echo HTTP/1.1\r\n" + H +
              b"Content-Length: %d\r\n\r\n" % size + b"b" * sent)
    return s


def test_body_budget_refuses_with_503(procs):
    up = procs.upstream("echo-1")
    lb = procs.ringlb([up], "--max-body", "1m",
                      env={"RINGLB_MAX_BODY_MEMORY": "2m"})
    mib = 1 << 20
    holders = [start_body(lb.port, mib, mib - 1) for _ in range(2)]
    try:
        time.sleep(0.5)             # ringlb has read what they sent
        # a body that does not fit is refused before it is read
        s = start_body(lb.port, 4096, 0)
        raw = read_answer(s)
        s.close()
        head, _, body = raw.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        assert lines[0] == "HTTP/1.1 503 Service Unavailable", raw[:300]
        assert "Retry-After: 1" in lines
        assert "Content-Type: application/json" in lines
        msg = json.loads(body)
        assert msg["status"] == "failure"
        assert "--max-body-memory" in msg["message"]
        # so is a chunk that does not fit, before its data
        s = socket.create_connection(("127.0.0.1", lb.port), timeout=10)
        s.sendall(b"POST /echo HTTP/1.1\r\n" + H +
                  b"Transfer-Encoding: chunked\r\n\r\n100000\r\n")
        raw = read_answer(s)
        s.close()
        assert raw.startswith(b"HTTP/1.1 503 "), raw[:300]
        assert b"--max-body-memory" in raw
        # bodiless requests still pass
        assert get(lb.port, "/echo").status == 200
        # the two unfinished bodies are what holds the budget
        assert "\nringlb_request_body_bytes %d\n" % (2 * mib - 2) in get(
            lb.port, "/metrics").body.decode()
    finally:
        for h in holders:
            h.close()
    # once the holders are gone their share is free again
    wait_for(lambda: client_connections(lb.port) == 1,
             what="the holders' connections to close")
    r = request(lb.port, "POST", "/echo", body=b"x" * 4096)
    assert r.status == 200 and r.json()["body_len"] == 4096


def test_body_flood_keeps_memory_bounded(procs):
    """100 connections each send all but the last byte of an 8 MiB body
    (the default --max-body), with the default budget."""
    up = procs.upstream("echo-1")
    lb = procs.ringlb([up])
    for k in range(20):
        assert get(lb.port, "/echo?request_id=%d" % k).status == 200
    time.sleep(0.3)
    idle = rss_kb(lb.pid)
    size = 8 << 20
    piece = b"f" * (256 << 10)
    release = threading.Event()
    socks = []
    settled = []                # one entry per sender done sending
    lock = threading.Lock()

    def flood():
        try:
            s = socket.create_connection(("127.0.0.1", lb.port), timeout=20)
            with lock:
                socks.append(s)
            s.sendall(b"POST /echo HTTP/1.1\r\n" + H +
                      b"Content-Length: %d\r\n\r\n" % size)
            left = size - 1
            while left > 0:
                n = min(left, len(piece))
                s.sendall(piece[:n])
                left -= n
        except OSError:
            pass                    # refused: ringlb closed it
        with lock:
            settled.append(1)
        release.wait(60)

    threads = [threading.Thread(target=flood) for _ in range(100)]
    for t in threads:
        t.start()
    peak = idle
    deadline = time.monotonic() + 60
    while len(settled) < len(threads) and time.monotonic() < deadline:
        peak = max(peak, rss_kb(lb.pid))
        time.sleep(0.05)
    assert len(settled) == len(threads), "the flood did not end in time"
    for _ in range(20):             # held: does memory stay put?
        peak = max(peak, rss_kb(lb.pid))
        time.sleep(0.05)
    # at most 8 of the 8 MiB bodies fit the default 64 MiB: the rest were
    # refused
    assert metric(lb.port, "ringlb_request_body_bytes") <= 64 << 20
    assert metric(lb.port, 'ringlb_client_refused_total{code="503"}') >= 92
    release.set()
    with lock:
        for s in socks:
            s.close()
    for t in threads:
        t.join(10)
    wait_for(lambda: client_connections(lb.port) == 1, timeout=10,
             what="the flood's connections to close")
    time.sleep(0.5)
    after = rss_kb(lb.pid)
    print("RSS idle %d KB, peak %d KB, after %d KB" % (idle, peak, after))
    assert metric(lb.port, "ringlb_request_body_bytes") == 0
    if MEASURE_RSS:
        assert peak < 100 * 1024, "peak RSS %d KB" % peak
        assert after <= idle * 1.10, "RSS %d KB after, %d KB idle" % (
            after, idle)
    assert get(lb.port, "/echo").status == 200
