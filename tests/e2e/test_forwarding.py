"""Requests reach the replica that owns their key, whole and unchanged."""
import hashlib
import json
import socket
import time

from conftest import get, request


def three(procs):
    reps = [procs.replica("Server %d" % i) for i in (1, 2, 3)]
    return reps, procs.ringlb(reps)


def test_home_from_owning_replica(procs):
    reps, lb = three(procs)
    seen = set()
    for k in range(60):
        r = get(lb.port, "/home?request_id=%d" % k)
        assert r.status == 200
        owner = r.header("X-Served-By")
        assert r.json() == {"message": "Hello from Server: %s" % owner,
                            "status": "successful"}
        m = get(lb.port, "/map_request?id=%d" % k)
        assert m.status == 200
        assert m.json() == {"request_id": k, "mapped_server": owner}
        # the same key keeps going to the same replica
        for _ in range(2):
            assert get(lb.port, "/home?request_id=%d" % k).header("X-Served-By") == owner
        seen.add(owner)
    assert seen == {"Server 1", "Server 2", "Server 3"}


def test_key_from_header_and_random_fallback(procs):
    reps, lb = three(procs)
    for k in ("abc", "42", "user-7"):
        by_query = get(lb.port, "/home?request_id=" + k).header("X-Served-By")
        by_header = get(lb.port, "/home", headers={"X-Request-Id": k}).header("X-Served-By")
        assert by_query == by_header
        m = get(lb.port, "/map_request?id=" + k).json()["mapped_server"]
        assert m == by_query
    # no key at all: a random one per request spreads over the replicas
    owners = {get(lb.port, "/home").header("X-Served-By") for _ in range(60)}
    assert len(owners) >= 2


def test_client_ip_fallback(procs):
    reps = [procs.replica("Server %d" % i) for i in (1, 2, 3)]
    lb = procs.ringlb(reps, "--key-fallback", "client-ip")
    owners = {get(lb.port, "/home").header("X-Served-By") for _ in range(20)}
    assert owners == {get(lb.port, "/map_request?id=127.0.0.1").json()["mapped_server"]}


def test_map_request_keys_and_errors(procs):
    reps, lb = three(procs)
    r = get(lb.port, "/map_request?id=user%20one")
    assert r.status == 200 and r.json()["request_id"] == "user one"
    assert r.json()["mapped_server"] == get(
        lb.port, "/home?request_id=user+one").header("X-Served-By")
    r = get(lb.port, "/map_request")
    assert r.status == 400
    assert r.json()["status"] == "failure"
    assert "?id=" in r.json()["message"]
    r = get(lb.port, "/map_request?id=%zz")
    assert r.status == 400 and "percent-encoding" in r.json()["message"]
    r = request(lb.port, "POST", "/map_request?id=1")
    assert r.status == 405


def test_rep_and_heartbeat(procs):
    reps, lb = three(procs)
    assert get(lb.port, "/rep").json() == {
        "message": {"N": 3, "replicas": ["Server 1", "Server 2", "Server 3"]},
        "status": "successful"}
    r = get(lb.port, "/heartbeat")
    assert r.status == 200 and r.json()["N"] == 3 and r.json()["healthy"] == 3


def test_replica_errors_pass_through(procs):
    reps, lb = three(procs)
    r = get(lb.port, "/nothing?request_id=5")
    assert r.status == 404
    assert r.json()["message"] == \
        "<Error> '/nothing' endpoint does not exist in server replicas"
    assert r.header("X-Served-By") in {"Server 1", "Server 2", "Server 3"}


def test_request_passes_through_whole(procs):
    up = procs.upstream("echo-1")
    lb = procs.ringlb([up])
    body = bytes(range(256)) * 4096  # 1 MiB, every byte value
    r = request(lb.port, "PUT", "/echo?request_id=9&x=a%20b", body=body,
                headers={"X-Custom": "kept", "Connection": "X-Drop, keep-alive",
                         "X-Drop": "gone", "Keep-Alive": "timeout=9",
                         "Content-Type": "application/octet-stream",
                         "X-Forwarded-For": "10.1.2.3"})
    assert r.status == 200
    e = r.json()
    hdrs = {k.lower(): v for k, v in e["headers"]}
    assert e["method"] == "PUT"
    assert e["path"] == "/echo" and e["query"] == "request_id=9&x=a%20b"
    assert e["body_len"] == len(body)
    assert e["body_sha256"] == hashlib.sha256(body).hexdigest()
    assert hdrs["x-custom"] == "kept"
    assert hdrs["content-type"] == "application/octet-stream"
    assert "x-drop" not in hdrs and "keep-alive" not in hdrs
    assert hdrs["x-forwarded-for"] == "10.1.2.3, 127.0.0.1"
    assert hdrs["x-request-id"] == "9"
    assert hdrs["host"].startswith("127.0.0.1:")
    assert "expect" not in hdrs and "accept" not in hdrs
    # response: the replica's headers, less hop-by-hop ones, plus ours
    assert r.header("X-Upstream") == "echo-1"
    assert r.header("Keep-Alive") is None
    assert r.header("X-Served-By") == "echo-1"


def test_methods_and_generated_request_id(procs):
    up = procs.upstream("echo-1")
    lb = procs.ringlb([up])
    for method in ("GET", "POST", "DELETE", "PATCH", "OPTIONS"):
        body = b'{"a": 1}' if method in ("POST", "PATCH") else None
        r = request(lb.port, method, "/echo", body=body)
        assert r.status == 200, method
        e = r.json()
        assert e["method"] == method
        assert e["body_len"] == (len(body) if body else 0)
        rid = dict((k.lower(), v) for k, v in e["headers"])["x-request-id"]
        assert len(rid) == 16 and int(rid, 16) >= 0
    r = request(lb.port, "HEAD", "/echo")
    assert r.status == 200 and r.body == b""
    assert int(r.header("Content-Length")) > 0
    # a client's own X-Request-Id is passed on unchanged
    e = get(lb.port, "/echo", headers={"X-Request-Id": "trace-1"}).json()
    assert dict((k.lower(), v) for k, v in e["headers"])["x-request-id"] == "trace-1"


def test_chunked_answer_is_streamed(procs):
    up = procs.upstream("echo-1")
    lb = procs.ringlb([up])
    r = get(lb.port, "/chunked")
    assert r.status == 200 and r.body == b"one,two,three"


def test_keep_alive_from_client(procs):
    reps, lb = three(procs)
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", lb.port, timeout=5)
    for k in range(20):
        conn.request("GET", "/home?request_id=%d" % k)
        r = conn.getresponse()
        assert r.status == 200
        assert json.loads(r.read())["status"] == "successful"
    conn.close()


def test_body_over_limit(procs):
    up = procs.upstream("echo-1")
    lb = procs.ringlb([up], "--max-body", "1k")
    r = request(lb.port, "POST", "/echo", body=b"x" * 1024)
    assert r.status == 200
    r = request(lb.port, "POST", "/echo", body=b"x" * 1025)
    assert r.status == 413


def test_balance_factor_spreads_a_hot_key(procs):
    import threading
    ups = [procs.upstream("u%d" % i) for i in (1, 2, 3)]

    def burst(lb):
        served = []

        def one():
            served.append(get(lb.port, "/slow?ms=600&request_id=hot").header("X-Served-By"))

        threads = [threading.Thread(target=one) for _ in range(6)]
        for t in threads:
            t.start()
            time.sleep(0.02)
        for t in threads:
            t.join(10)
        return served

    plain = procs.ringlb(ups)
    owner = get(plain.port, "/map_request?id=hot").json()["mapped_server"]
    assert burst(plain) == [owner] * 6          # one key, one replica
    bounded = procs.ringlb(ups, "--balance-factor", "1.0")
    served = burst(bounded)
    assert len(served) == 6
    # cap = ceil((in flight + 1) / 3): the owner takes the first, the next
    # choices the overflow, and no replica holds more than 2 of the 6
    assert sorted(served.count(u) for u in ("u1", "u2", "u3")) == [2, 2, 2]
    # /map_request still names the owner; /metrics counts the displaced
    assert get(bounded.port, "/map_request?id=hot").json()["mapped_server"] == owner
    text = get(bounded.port, "/metrics").body.decode()
    displaced = [l for l in text.splitlines() if l.startswith("ringlb_bounded_displaced_total ")]
    assert int(displaced[0].split()[1]) >= 4


def test_headers_over_limit_are_refused(procs):
    up = procs.upstream("echo-1")
    lb = procs.ringlb([up], "--max-header", "4k")
    r = request(lb.port, "GET", "/echo", headers={"X-Big": "a" * 3000})
    assert r.status == 200
    r = request(lb.port, "GET", "/echo", headers={"X-Big": "a" * 5000})
    assert 400 <= r.status < 500       # never reaches the replica
    assert get(lb.port, "/echo").status == 200


def test_unsupported_methods_never_reach_a_replica(procs):
    import socket
    up = procs.upstream("echo-1")
    lb = procs.ringlb([up])

    def first_line(raw):
        s = socket.create_connection(("127.0.0.1", lb.port), timeout=5)
        s.sendall(raw)
        data = s.recv(4096)
        s.close()
        return data

    for method in (b"TRACE", b"CONNECT"):
        data = first_line(method + b" /echo HTTP/1.1\r\nHost: x\r\n\r\n")
        assert data.startswith(b"HTTP/1.1 405"), data[:100]
        assert b"Allow: GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH" in data
        assert b'"status":"failure"' in data
    # an unknown method, a malformed request line, an HTTP version
    # ringlb does not speak: each a JSON error, never libevent's HTML
    for raw, code in ((b"FOO /echo HTTP/1.1\r\nHost: x\r\n\r\n", b"405"),
                      (b"GARBAGE\r\n\r\n", b"400"),
                      (b"GET /echo HTTP/9.9\r\n\r\n", b"505")):
        data = first_line(raw)
        assert data.startswith(b"HTTP/1.1 " + code), data
        assert b"application/json" in data and b'"status":"failure"' in data
    # none of it reached the replica: a normal request is its first
    assert get(lb.port, "/echo").status == 200
    text = get(lb.port, "/metrics").body.decode()
    assert 'ringlb_replica_requests_total{replica="echo-1"} 1\n' in text
