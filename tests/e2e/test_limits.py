"""Limits on what a client may send, and how long it may take: every bad
request gets the spec's JSON error and never reaches a replica; slow or
idle clients are cut off; connections past the limit are refused without
harm to the others."""
import json
import socket
import threading
import time

import pytest

from conftest import get, request


def exchange(port, data, timeout=5.0, linger=0.0):
    """Send data on a fresh connection; return all bytes until the server
    closes (or timeout)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        if linger:
            time.sleep(linger)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            out += chunk
        return out
    finally:
        s.close()


def parse(raw):
    """(status, headers dict with lower-case names, body) of the first
    answer in raw."""
    head, _, rest = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    n = int(headers.get("content-length", "0"))
    return status, headers, rest[:n]


def read_answer(s):
    """One whole answer (with a Content-Length) from a keep-alive socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        assert chunk, data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    n = parse(data)[1].get("content-length", "0")
    while len(body) < int(n):
        chunk = s.recv(65536)
        assert chunk
        body += chunk
    return head + b"\r\n\r\n" + body


def replica_requests(port, name):
    text = get(port, "/metrics").body.decode()
    line = 'ringlb_replica_requests_total{replica="%s"} ' % name
    return int(text.split(line)[1].split()[0])


def metric(port, name):
    text = get(port, "/metrics").body.decode()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError("no metric " + name)


H = b"Host: x\r\n"
BAD_REQUESTS = [
    # (what, raw request, status, words in the message)
    ("unknown method", b"FOO /echo HTTP/1.1\r\n" + H + b"\r\n", 405, "method FOO"),
    ("lower-case method", b"get /echo HTTP/1.1\r\n" + H + b"\r\n", 405, "method get"),
    ("TRACE", b"TRACE /echo HTTP/1.1\r\n" + H + b"\r\n", 405, "not supported"),
    ("CONNECT", b"CONNECT x:443 HTTP/1.1\r\n" + H + b"\r\n", 405, "not supported"),
    ("one word", b"GARBAGE\r\n\r\n", 400, "malformed request line"),
    ("no version", b"GET /echo\r\n\r\n", 400, "malformed request line"),
    ("no target", b"GET  HTTP/1.1\r\n" + H + b"\r\n", 400, "one space between"),
    ("method not a token", b"G(T /echo HTTP/1.1\r\n" + H + b"\r\n", 400, "not a token"),
    ("HTTP/2.0", b"GET /echo HTTP/2.0\r\n" + H + b"\r\n", 505, "version '2.0'"),
    ("HTTP/1.11", b"GET /echo HTTP/1.11\r\n" + H + b"\r\n", 400, "not HTTP/1.1 or HTTP/1.0"),
    ("HTTP/-1.1", b"GET /echo HTTP/-1.1\r\n" + H + b"\r\n", 400, "not HTTP/1.1 or HTTP/1.0"),
    ("HTTP/1.1x", b"GET /echo HTTP/1.1x\r\n" + H + b"\r\n", 400, "not HTTP/1.1 or HTTP/1.0"),
    ("lower-case http", b"GET /echo http/1.1\r\n" + H + b"\r\n", 400, "no HTTP version"),
    ("not HTTP", b"GET /echo FTP/1.1\r\n" + H + b"\r\n", 400, "no HTTP version"),
    ("bad percent", b"GET /a%zz HTTP/1.1\r\n" + H + b"\r\n", 400, "percent-encoding"),
    ("short percent", b"GET /a?x=%4 HTTP/1.1\r\n" + H + b"\r\n", 400, "percent-encoding"),
    ("space in target", b"GET /a b HTTP/1.1\r\n" + H + b"\r\n", 400, "space or control"),
    ("control in target", b"GET /\x01 HTTP/1.1\r\n" + H + b"\r\n", 400, "space or control"),
    ("NUL in request line", b"GET /\x00 HTTP/1.1\r\n" + H + b"\r\n", 400, "NUL"),
    ("absurd query", b"GET /echo?q=" + b"a" * 9000 + b" HTTP/1.1\r\n" + H + b"\r\n", 414, "shorten the request target"),
    ("no Host", b"GET /echo HTTP/1.1\r\n\r\n", 400, "Host header"),
    ("two Hosts", b"GET /echo HTTP/1.1\r\n" + H + H + b"\r\n", 400, "more than one Host"),
    ("no colon", b"GET /echo HTTP/1.1\r\n" + H + b"Nonsense\r\n\r\n", 400, "not 'Name: value'"),
    ("folded", b"GET /echo HTTP/1.1\r\n" + H + b"X-A: b\r\n c\r\n\r\n", 400, "folded"),
    ("space in name", b"GET /echo HTTP/1.1\r\n" + H + b"X A: b\r\n\r\n", 400, "token"),
    ("control in value", b"GET /echo HTTP/1.1\r\n" + H + b"X-A: b\x07c\r\n\r\n", 400, "control byte"),
    ("bad length", b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: abc\r\n\r\n", 400, "Content-Length 'abc'"),
    ("negative length", b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: -1\r\n\r\n", 400, "Content-Length '-1'"),
    ("two lengths", b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400, "two different"),
    ("length and chunked", b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "both"),
    ("gzip encoding", b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip\r\n\r\n", 400, "Transfer-Encoding 'gzip'"),
    ("bad expect", b"POST /echo HTTP/1.1\r\n" + H + b"Expect: magic\r\nContent-Length: 1\r\n\r\n", 417, "Expect"),
    ("HEAD with a body", b"HEAD /echo HTTP/1.1\r\n" + H + b"Content-Length: 3\r\n\r\nabc", 400, None),
    ("bad chunk size", b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n", 400, "bad chunk size"),
    ("chunk extension", b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n5;a=b\r\nhello\r\n0\r\n\r\n", 400, "extensions"),
    ("body over limit", b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: 2000\r\n\r\n", 413, "--max-body"),
    ("chunked over limit", b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n400\r\n" + b"a" * 1024 + b"\r\n1\r\n", 413, "--max-body"),
    ("headers over limit", b"GET /echo HTTP/1.1\r\n" + H + b"X-Big: " + b"a" * 5000 + b"\r\n\r\n", 431, "--max-header"),
    ("too many lines", b"GET /echo HTTP/1.1\r\n" + H + b"".join(b"X-%d: 1\r\n" % i for i in range(300)) + b"\r\n", 431, "header lines"),
    ("tab in Expect", b"POST /echo HTTP/1.1\r\n" + H + b"Expect:\t100-continue\r\nContent-Length: 1\r\n\r\na", 400, "a tab in the Expect header"),
    ("tab in Transfer-Encoding", b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding:\tchunked\r\n\r\n0\r\n\r\n", 400, "a tab in the Transfer-Encoding"),
    ("non-UTF-8 value", b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: \xff\xfe\r\n\r\n", 400, "Transfer-Encoding '??'"),
    ("long trailer", b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n" + b"".join(b"X-%d: %s\r\n" % (i, b"t" * 500) for i in range(10)) + b"\r\n", 431, "trailer"),
    ("bad trailer", b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\nnot a trailer\r\n\r\n", 400, "not 'Name: value'"),
]


@pytest.mark.parametrize("what,raw,status,words", BAD_REQUESTS,
                         ids=[b[0] for b in BAD_REQUESTS])
def test_bad_request_gets_a_json_error(procs, what, raw, status, words):
    up = procs.upstream("echo-1")
    lb = procs.ringlb([up], "--max-body", "1k", "--max-header", "4k")
    got = exchange(lb.port, raw)
    code, headers, body = parse(got)
    assert code == status, got[:300]
    assert headers["content-type"] == "application/json"
    assert headers["connection"] == "close"
    if status == 405:
        assert headers["allow"] == "GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH"
    if raw.startswith(b"HEAD"):
        assert body == b""
    else:
        doc = json.loads(body)
        assert doc["status"] == "failure"
        assert doc["message"].startswith("<Error> ")
        if words:
            assert words in doc["message"], doc["message"]
    # it never reached the replica, and ringlb serves on
    assert replica_requests(lb.port, "echo-1") == 0
    assert get(lb.port, "/echo").status == 200
    assert replica_requests(lb.port, "echo-1") == 1
    text = get(lb.port, "/metrics").body.decode()
    assert 'ringlb_client_refused_total{code="%d"} 1\n' % status in text


def test_long_target_with_default_limits(procs):
    up = procs.upstream("echo-1")
    lb = procs.ringlb([up])
    ok = b"GET /echo?q=" + b"a" * 8000 + b" HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n"
    assert parse(exchange(lb.port, ok))[0] == 200
    long = b"GET /echo?q=" + b"a" * 8200 + b" HTTP/1.1\r\n" + H + b"\r\n"
    code, _, body = parse(exchange(lb.port, long))
    assert code == 414
    assert "request target is 8208 bytes; the limit is 8192" in json.loads(body)["message"]


def test_good_edge_cases_pass(procs):
    up = procs.upstream("echo-1")
    lb = procs.ringlb([up])
    # empty lines before a request are ignored; HTTP/1.0 needs no Host
    got = exchange(lb.port, b"\r\n\r\nGET /echo HTTP/1.0\r\n\r\n")
    assert parse(got)[0] == 200
    # a chunked body with a trailer reaches the replica whole
    got = exchange(lb.port, b"POST /echo HTTP/1.1\r\n" + H +
                   b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                   b"5\r\nhello\r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\n")
    code, _, body = parse(got)
    assert code == 200 and json.loads(body)["body_len"] == 11
    # Expect: 100-continue: ringlb asks for the body, then forwards it
    s = socket.create_connection(("127.0.0.1", lb.port), timeout=5)
    s.sendall(b"POST /echo HTTP/1.1\r\n" + H + b"Expect: 100-continue\r\n"
              b"Content-Length: 4\r\nConnection: close\r\n\r\n")
    assert s.recv(100).startswith(b"HTTP/1.1 100 Continue")
    s.sendall(b"abcd")
    got = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        got += chunk
    s.close()
    code, _, body = parse(got)
    assert code == 200 and json.loads(body)["body_len"] == 4


def test_pipelined_answers_keep_their_order(procs):
    ups = [procs.upstream("u%d" % i) for i in (1, 2, 3)]
    lb = procs.ringlb(ups)
    raw = b"".join(b"GET /echo?request_id=%d HTTP/1.1\r\n" % i + H + b"\r\n"
                   for i in range(7))
    raw += b"GET /echo?request_id=7 HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n"
    got = exchange(lb.port, raw)
    queries = []
    while got:
        code, headers, body = parse(got)
        assert code == 200
        queries.append(json.loads(body)["query"])
        got = got[got.index(b"\r\n\r\n") + 4 + int(headers["content-length"]):]
    assert queries == ["request_id=%d" % i for i in range(8)]


def test_a_bad_request_after_good_ones_is_answered_in_turn(procs):
    up = procs.upstream("echo-1")
    lb = procs.ringlb([up])
    got = exchange(lb.port, b"GET /slow?ms=300 HTTP/1.1\r\n" + H + b"\r\n"
                   b"BAD\r\n\r\n")
    code, headers, body = parse(got)
    assert code == 200 and json.loads(body)["slow"] is True
    rest = got[got.index(b"\r\n\r\n") + 4 + int(headers["content-length"]):]
    assert parse(rest)[0] == 400


def test_slowloris_head_is_cut_off(procs):
    up = procs.upstream("echo-1")
    lb = procs.ringlb([up], "--header-timeout", "1")
    s = socket.create_connection(("127.0.0.1", lb.port), timeout=5)
    s.sendall(b"GET /echo HTTP/1.1\r\nHost: x\r\n")
    start = time.monotonic()
    answer = b""
    # one byte every 0.2 s, forever (bounded at 5 s): cut at 1 s
    while time.monotonic() - start < 5:
        try:
            s.sendall(b"a")
        except OSError:
            break
        # meanwhile ringlb serves others at once
        assert get(lb.port, "/echo", timeout=2).status == 200
        s.settimeout(0.2)
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            continue
        if not chunk:
            break
        answer += chunk
    s.close()
    took = time.monotonic() - start
    assert 0.8 < took < 3, took
    code, _, body = parse(answer)
    assert code == 408
    assert "--header-timeout" in json.loads(body)["message"]


def test_slow_body_is_cut_off(procs):
    up = procs.upstream("echo-1")
    lb = procs.ringlb([up], "--client-timeout", "1")
    start = time.monotonic()
    got = exchange(lb.port, b"POST /echo HTTP/1.1\r\n" + H +
                   b"Content-Length: 100\r\n\r\n" + b"a" * 10)
    took = time.monotonic() - start
    assert 0.8 < took < 3, took
    code, _, body = parse(got)
    assert code == 408 and "--client-timeout" in json.loads(body)["message"]
    assert replica_requests(lb.port, "echo-1") == 0


def test_idle_connections_are_closed(procs):
    up = procs.upstream("echo-1")
    lb = procs.ringlb([up], "--keepalive-timeout", "1", "--header-timeout", "1")
    # a keep-alive connection, idle after its answer: closed without a word
    s = socket.create_connection(("127.0.0.1", lb.port), timeout=5)
    s.sendall(b"GET /echo HTTP/1.1\r\n" + H + b"\r\n")
    assert read_answer(s).startswith(b"HTTP/1.1 200")
    start = time.monotonic()
    assert s.recv(65536) == b""
    assert 0.8 < time.monotonic() - start < 3
    s.close()
    # a connection that never sends a byte: closed too, without an answer
    start = time.monotonic()
    assert exchange(lb.port, b"") == b""
    assert 0.8 < time.monotonic() - start < 3
    assert metric(lb.port, "ringlb_client_idle_closed_total") == 1


def test_connections_over_the_limit_are_refused(procs):
    up = procs.upstream("echo-1")
    lb = procs.ringlb([up], "--max-connections", "4")
    # /metrics from the test itself takes a connection while it runs
    held = []
    for i in range(3):
        s = socket.create_connection(("127.0.0.1", lb.port), timeout=5)
        s.sendall(b"GET /echo HTTP/1.1\r\n" + H + b"\r\n")
        assert read_answer(s).startswith(b"HTTP/1.1 200")
        held.append(s)
    extra = socket.create_connection(("127.0.0.1", lb.port), timeout=5)
    held.append(extra)       # the 4th: at the limit, still served
    extra.sendall(b"GET /echo HTTP/1.1\r\n" + H + b"\r\n")
    assert read_answer(extra).startswith(b"HTTP/1.1 200")
    # the 5th is refused at once, before it sends anything
    got = exchange(lb.port, b"")
    code, headers, body = parse(got)
    assert code == 503 and headers["retry-after"] == "1"
    assert "--max-connections" in json.loads(body)["message"]
    # and so are those that send a request at once, before the refusal
    for i in range(5):
        got = exchange(lb.port, b"GET /echo HTTP/1.1\r\n" + H + b"\r\n")
        assert parse(got)[0] == 503, got[:100]
    # those open are unharmed
    for s in held:
        s.sendall(b"GET /echo HTTP/1.1\r\n" + H + b"\r\n")
        assert read_answer(s).startswith(b"HTTP/1.1 200")
    # one leaves; a newcomer is served
    held.pop().close()
    time.sleep(0.2)
    r = get(lb.port, "/metrics")
    assert r.status == 200
    text = r.body.decode()
    assert 'ringlb_client_refused_total{code="503"} 6\n' in text
    assert 'ringlb_replica_requests_total{replica="echo-1"} 8\n' in text
    for s in held:
        s.close()


def test_stops_cleanly_with_clients_connected(procs):
    up = procs.upstream("echo-1")
    lb = procs.ringlb([up])
    idle = socket.create_connection(("127.0.0.1", lb.port), timeout=5)
    idle.sendall(b"GET /echo HTTP/1.1\r\n" + H + b"\r\n")
    assert read_answer(idle).startswith(b"HTTP/1.1 200")
    half = socket.create_connection(("127.0.0.1", lb.port), timeout=5)
    half.sendall(b"GET /echo HTTP/1.1\r\n")
    time.sleep(0.2)
    # SIGTERM with both open: ringlb exits 0 (the fixture checks; under
    # the sanitizers a touch of freed memory would fail it)
    lb.send_signal(15)
    assert lb.wait(timeout=15) == 0
    idle.close()
    half.close()


def test_answer_is_whole_when_the_connection_closes(procs):
    up = procs.upstream("echo-1")
    lb = procs.ringlb([up])
    # Connection: close after a 4 MiB answer: every byte arrives first
    got = exchange(lb.port, b"GET /big?mb=4 HTTP/1.1\r\n" + H +
                   b"Connection: close\r\n\r\n", timeout=20)
    code, headers, body = parse(got)
    assert code == 200
    assert len(body) == 4 * 1024 * 1024 == int(headers["content-length"])


def test_descriptor_limit_is_shared_out_and_logged(procs, tmp_path):
    """With ulimit -n 2000, the default --max-connections is lowered to
    fit, and the log says what the limit allows; an explicit one that does
    not fit is lowered with a warning."""
    import resource
    import subprocess
    from conftest import RINGLB, free_port, wait_port

    def run(*extra):
        port = free_port()
        log = tmp_path / ("lb-%d.log" % port)
        with open(log, "wb") as out:
            p = subprocess.Popen(
                [RINGLB, "--listen", "127.0.0.1:%d" % port, "--replicas", "0",
                 "--workers", "1", *extra], stdout=out, stderr=subprocess.STDOUT,
                preexec_fn=lambda: resource.setrlimit(
                    resource.RLIMIT_NOFILE, (2000, 2000)))
            try:
                wait_port(port, p)
            finally:
                p.terminate()
                p.wait(timeout=10)
        return log.read_text()

    assert "info: the descriptor limit (2000) allows 661 client " \
        "connections (--max-connections) and 256 idle connections to " \
        "replicas (--upstream-connections), keeping 256 for ringlb " \
        "itself" in run()
    warned = run("--max-connections", "5000")
    assert "warn: the descriptor limit (2000) holds 661 client " \
        "connections, not 5000 (--max-connections)" in warned
    # a limit that holds everything asked for says nothing
    assert "descriptor limit" not in run("--max-connections", "100")
    # each further worker keeps 8 for itself (its loop, wake-ups, listener)
    assert "info: the descriptor limit (2000) allows 650 client " \
        "connections (--max-connections) and 256 idle connections to " \
        "replicas (--upstream-connections), keeping 280 for ringlb " \
        "itself" in run("--workers", "4")


def wait_accepted(port, timeout=5.0):
    """Until every connection made to 127.0.0.1:port has been accepted:
    the accept queue of the listening socket there is empty.  For a
    listening socket /proc/net/tcp gives that queue as rx_queue."""
    deadline = time.monotonic() + timeout
    while True:
        waiting = 0
        with open("/proc/net/tcp") as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                local, state, queues = fields[1], fields[3], fields[4]
                if state == "0A" and int(local.split(":")[1], 16) == port:
                    waiting += int(queues.split(":")[1], 16)
        if waiting == 0:
            return
        assert time.monotonic() < deadline, \
            "%d connections not accepted after %.1f s" % (waiting, timeout)
        time.sleep(0.01)


def start_limited(procs, nofile, backends, *extra):
    """ringlb under ulimit -n nofile (soft and hard)."""
    from conftest import RINGLB, free_port
    port = free_port()
    argv = ["sh", "-c", 'ulimit -n %d && exec "$@"' % nofile, "sh", RINGLB,
            "--listen", "127.0.0.1:%d" % port]
    for b in backends:
        argv += ["--replica", "%s=127.0.0.1:%d" % (b.name, b.port)]
    p = procs.start(argv + list(extra), port, name="ringlb")
    p.port = port
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        r = get(port, "/heartbeat")     # 503 until a replica is up
        assert b'"healthy"' in r.body, "ringlb refused its first " \
            "client: %s" % r.body[:300]
        if r.json()["healthy"] == len(backends):
            return p
        time.sleep(0.05)
    raise AssertionError("the replicas did not come up")


@pytest.mark.parametrize("nofile,workers,clients", [
    (64, 1, 13), (128, 1, 32),
    # each further worker takes 8 descriptors of its own
    (64, 2, 10), (128, 2, 29)])
def test_small_descriptor_limit_still_serves(procs, nofile, workers,
                                             clients):
    """Under ulimit -n 64, ringlb used to take its reserve for replica
    connections off the limit whole, leaving --max-connections at 1: one
    idle client locked everyone out.  The reserve is now a share: idle
    clients and a client at each free slot with a request in flight are
    all served, and only connections past the limit get a 503."""
    up = procs.upstream("echo-1")
    # the test replica listens with a backlog of 5: a burst of connects
    # to it may wait for a SYN to be sent again
    lb = start_limited(procs, nofile, [up], "--connect-timeout", "5000",
                       "--workers", str(workers))
    # idle clients: connected, nothing sent yet, or kept alive
    idle = [socket.create_connection(("127.0.0.1", lb.port), timeout=5)
            for _ in range(clients // 2)]
    kept = socket.create_connection(("127.0.0.1", lb.port), timeout=5)
    kept.sendall(b"GET /echo HTTP/1.1\r\n" + H + b"\r\n")
    assert read_answer(kept).startswith(b"HTTP/1.1 200")
    # the other slots (but one, for the /metrics below): requests in
    # flight side by side, each with its connection to the replica
    busy = clients - len(idle) - 2
    results = []

    def slow():
        try:
            results.append(get(lb.port, "/slow?ms=500", timeout=10).status)
        except OSError as e:
            results.append(repr(e))

    threads = [threading.Thread(target=slow) for _ in range(busy)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert results == [200] * busy
    # past the limit: a clear 503, not a hang
    fill = [socket.create_connection(("127.0.0.1", lb.port), timeout=5)
            for _ in range(clients - len(idle) - 1)]
    # the workers accept one connection a turn of their loops: an extra
    # connection accepted before all of these are would find a slot free
    wait_accepted(lb.port)
    time.sleep(0.2)
    extra = [socket.create_connection(("127.0.0.1", lb.port), timeout=5)
             for _ in range(3)]
    for s in extra:
        s.sendall(b"GET /echo HTTP/1.1\r\n" + H + b"\r\n")
    got = [read_answer(s) for s in extra]
    assert all(g.startswith(b"HTTP/1.1 503") for g in got), got
    assert all(b"--max-connections" in g for g in got), got
    for s in extra + idle + fill:
        s.close()
    kept.sendall(b"GET /echo HTTP/1.1\r\n" + H + b"\r\n")
    assert read_answer(kept).startswith(b"HTTP/1.1 200")
    kept.close()
    time.sleep(0.3)
    assert get(lb.port, "/echo").status == 200
    with open(lb.log_path) as f:
        log = f.read()
    assert "the descriptor limit (%d) allows %d client connections" % (
        nofile, clients) in log, log


def test_absolute_form_is_refused_alike_everywhere(procs):
    """ringlb is not a forward proxy: "GET http://other/rep" is neither
    /rep nor forwarded, whether the path is ringlb's own or not."""
    up = procs.upstream("echo-1")
    lb = procs.ringlb([up])
    for target in (b"http://other/rep", b"http://other/echo?a=1",
                   b"http://x/map_request?id=1"):
        raw = b"GET " + target + b" HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n"
        code, headers, body = parse(exchange(lb.port, raw))
        assert code == 400, target
        msg = json.loads(body)["message"]
        assert "the request target must be a path such as /home, not '%s'" % \
            target.decode() in msg
    assert replica_requests(lb.port, "echo-1") == 0
    assert get(lb.port, "/rep").status == 200


def test_head_in_pieces_split_inside_line_ends(procs):
    """A head whose reads end between a CR and its LF, and mid-line, is
    read as if it came at once: no CR is left in a value."""
    up = procs.upstream("echo-1")
    lb = procs.ringlb([up])
    pieces = [b"GET /echo HTTP/1.1\r", b"\nHost: x\r", b"\nX-A: b",
              b"cd\r", b"\nX-Long: " + b"y" * 3000, b"z" * 3000, b"\r",
              b"\nConnection: close\r", b"\n\r", b"\n"]
    s = socket.create_connection(("127.0.0.1", lb.port), timeout=10)
    try:
        for p in pieces:
            s.sendall(p)
            time.sleep(0.05)
        got = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
    finally:
        s.close()
    code, _, body = parse(got)
    assert code == 200, got[:300]
    headers = {k.lower(): v for k, v in json.loads(body)["headers"]}
    assert headers["x-a"] == "bcd"
    assert headers["x-long"] == "y" * 3000 + "z" * 3000
