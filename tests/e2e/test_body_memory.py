"""Request bodies buffered at once are bounded in total (--max-body-memory):
past the budget a request gets a JSON 503 with Retry-After, and memory
goes back when the connections holding it end."""
import hashlib
import json
import os
import socket
import threading
import time

import pytest

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


def chunked(data, size, trailer=b""):
    """data framed as chunks of `size` bytes, the last chunk and trailer."""
    out = [b"%x\r\n%s\r\n" % (len(data[i:i + size]), data[i:i + size])
           for i in range(0, len(data), size)]
    return b"".join(out) + b"0\r\n" + trailer + b"\r\n"


def hold_chunked(port, clients, size, chunk):
    """`clients` connections each send a chunked POST of `size` bytes in
    chunks of `chunk` bytes, all but its last chunk, and keep it open;
    returns (sockets, peak RSS seen while they sent)."""
    piece = b"%x\r\n" % chunk + b"c" * chunk + b"\r\n"
    per = max(1, 65536 // len(piece))
    unit = piece * per
    socks, lock, done = [], threading.Lock(), []

    def send():
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=30)
            with lock:
                socks.append(s)
            s.sendall(b"POST /echo HTTP/1.1\r\n" + H +
                      b"Transfer-Encoding: chunked\r\n\r\n")
            left = size // chunk
            while left > 0:
                n = min(left, per)
                s.sendall(unit if n == per else piece * n)
                left -= n
        except OSError:
            pass                    # refused past the budget: closed
        with lock:
            done.append(1)

    threads = [threading.Thread(target=send) for _ in range(clients)]
    for t in threads:
        t.start()
    return socks, threads, done


def peak_while(pid, threads, done, limit=60):
    peak = 0
    deadline = time.monotonic() + limit
    while len(done) < len(threads) and time.monotonic() < deadline:
        peak = max(peak, rss_kb(pid))
        time.sleep(0.05)
    assert len(done) == len(threads), "the senders did not end in time"
    for _ in range(10):             # held: does memory stay put?
        peak = max(peak, rss_kb(pid))
        time.sleep(0.05)
    return peak


def test_tiny_chunks_count_what_they_hold(procs):
    """10 clients each send an 8 MiB body as 1-byte chunks (6 bytes on the
    wire each) and hold it open.  What the gate holds of them is their
    data, not a chain per chunk: RSS stays near --max-body-memory (64 MiB
    by default) and comes back when they leave."""
    up = procs.upstream("echo-1")
    lb = procs.ringlb([up])
    for k in range(20):
        assert get(lb.port, "/echo?request_id=%d" % k).status == 200
    time.sleep(0.3)
    idle = rss_kb(lb.pid)
    size = (8 << 20) if MEASURE_RSS else (1 << 20)
    socks, threads, done = hold_chunked(lb.port, 10, size - 1, 1)
    peak = peak_while(lb.pid, threads, done)
    assert metric(lb.port, "ringlb_request_body_bytes") <= 64 << 20
    for s in socks:
        s.close()
    for t in threads:
        t.join(10)
    wait_for(lambda: client_connections(lb.port) == 1, timeout=10,
             what="the senders' connections to close")
    time.sleep(0.5)
    after = rss_kb(lb.pid)
    print("RSS idle %d KB, peak %d KB, after %d KB" % (idle, peak, after))
    assert metric(lb.port, "ringlb_request_body_bytes") == 0
    if MEASURE_RSS:
        assert peak < 200 * 1024, "peak RSS %d KB" % peak
        assert after < idle + 20 * 1024, "RSS %d KB after, %d KB idle" % (
            after, idle)
    assert get(lb.port, "/echo").status == 200


def test_small_odd_chunks_and_length_bodies_together(procs):
    """Neighbours: 2-, 3- and 7-byte chunks and a Content-Length body at
    once, under a 16 MiB budget: held memory stays near the budget."""
    up = procs.upstream("echo-1")
    lb = procs.ringlb([up], env={"RINGLB_MAX_BODY_MEMORY": "16m"})
    get(lb.port, "/echo")
    time.sleep(0.3)
    idle = rss_kb(lb.pid)
    size = 3 << 20
    held = []
    runs = [hold_chunked(lb.port, 2, size - 8, n) for n in (2, 3, 7)]
    # and a Content-Length body, all but its last byte
    cl = [start_body(lb.port, 2 << 20, 0)]
    for s in cl:
        try:
            s.sendall(b"L" * ((2 << 20) - 1))
        except OSError:
            pass
    peak = 0
    for socks, threads, done in runs:
        peak = max(peak, peak_while(lb.pid, threads, done))
        held += socks
    assert metric(lb.port, "ringlb_request_body_bytes") <= 16 << 20
    print("RSS idle %d KB, peak %d KB" % (idle, peak))
    if MEASURE_RSS:
        # 16 MiB of bodies; before, 2-byte chunks alone cost 6x theirs
        assert peak - idle < 40 * 1024, "peak RSS %d KB" % peak
    for s in held + cl:
        s.close()
    wait_for(lambda: client_connections(lb.port) == 1, timeout=10,
             what="the connections to close")
    assert metric(lb.port, "ringlb_request_body_bytes") == 0


@pytest.mark.parametrize("chunk", [1, 2, 3, 65535, 65536, 65537, 200000])
def test_chunked_bodies_arrive_whole(procs, chunk):
    """Framed anew for evhttp, a chunked body reaches the replica byte for
    byte, whatever its chunk sizes, with a trailer or without."""
    up = procs.upstream("echo-1")
    lb = procs.ringlb([up])
    data = bytes((i * 7 + i // 251) & 0xff for i in range(300000 if chunk >
                                                          3 else 70001))
    for trailer in (b"", b"X-Check: 1\r\n"):
        s = socket.create_connection(("127.0.0.1", lb.port), timeout=20)
        s.sendall(b"POST /echo HTTP/1.1\r\n" + H +
                  b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
        s.sendall(chunked(data, chunk, trailer))
        raw = b""
        while True:
            got = s.recv(65536)
            if not got:
                break
            raw += got
        s.close()
        head, _, body = raw.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), raw[:300]
        echo = json.loads(body)
        assert echo["body_len"] == len(data)
        assert echo["body_sha256"] == hashlib.sha256(data).hexdigest()
