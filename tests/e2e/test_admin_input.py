"""Bad /add and /rm bodies: each gets a 4xx JSON error and changes nothing."""
import json

import pytest

from conftest import children, post_json, rep_names, request

S = "Server 1"
BAD_ADD = [
    b"", b" ", b"{", b"}", b"[", b"null", b"true", b"1", b'"n"', b"[]",
    b"[{\"n\": 1}]", b"{n: 1}", b"{'n': 1}", b"{\"n\": 1,}", b"{\"n\": 1} x",
    b"\xff\xfe{\"n\": 1}", b"{\"n\": \"\xff\"}", b"{\"n\": 1, \"n\": 2}",
    {}, {"n": None}, {"n": True}, {"n": "1"}, {"n": [1]}, {"n": {"v": 1}},
    {"n": 0}, {"n": -1}, {"n": 1.5}, {"n": 1e3}, {"n": 2 ** 40},
    {"n": 10 ** 30}, {"n": 257},
    {"n": 1, "hostnames": None}, {"n": 1, "hostnames": "a"},
    {"n": 1, "hostnames": {"a": 1}}, {"n": 1, "hostnames": [1]},
    {"n": 1, "hostnames": [None]}, {"n": 1, "hostnames": [["a"]]},
    {"n": 1, "hostnames": [{"name": "a"}]}, {"n": 1, "hostnames": [""]},
    {"n": 1, "hostnames": ["a" * 64]}, {"n": 1, "hostnames": [" a"]},
    {"n": 1, "hostnames": ["a/b"]}, {"n": 1, "hostnames": ["../etc"]},
    {"n": 1, "hostnames": ["a\"b"]}, {"n": 1, "hostnames": ["a'b"]},
    {"n": 1, "hostnames": ["a\nb"]}, {"n": 1, "hostnames": ["a\x00b"]},
    {"n": 1, "hostnames": ["a\tb"]}, {"n": 1, "hostnames": ["\u00e9t\u00e9"]},
    {"n": 1, "hostnames": ["-lead"]}, {"n": 1, "hostnames": [".dot"]},
    {"n": 2, "hostnames": ["a", "a"]}, {"n": 1, "hostnames": [S]},
    {"n": 1, "hostnames": ["a", "b"]}, {"n": 1, "extra": 1},
    {"n": 1, "hostnames": ["a"], "N": 2}, {"hostnames": ["a"]},
    {"n": {"n": {"n": {"n": 1}}}},
]
BAD_RM = [
    b"", b"{", b"[]", {}, {"n": 0}, {"n": -1}, {"n": 1.5}, {"n": "1"},
    {"n": 4}, {"n": 1, "hostnames": ["nope"]},
    {"n": 1, "hostnames": [S, "Server 2"]}, {"n": 2, "hostnames": [S, S]},
    {"n": 1, "hostnames": ["bad/name"]}, {"n": 1, "hostnames": "Server 1"},
]


def body_of(x):
    return x if isinstance(x, bytes) else json.dumps(x)


@pytest.fixture(scope="module")
def lb(tmp_path_factory):
    from conftest import Procs
    ps = Procs(str(tmp_path_factory.mktemp("admin-input")))
    lb = ps.ringlb((), "--replicas", "3", healthy=3)
    yield lb
    ps.stop_all()


@pytest.mark.parametrize("method,body", [("POST /add", b) for b in BAD_ADD] +
                         [("DELETE /rm", b) for b in BAD_RM],
                         ids=lambda x: repr(x)[:40] if not isinstance(x, str) else x)
def test_bad_admin_body(lb, method, body):
    verb, path = method.split()
    before = children(lb.pid)
    r = post_json(lb.port, path, body_of(body), method=verb)
    assert 400 <= r.status < 500, (body, r.status, r.body)
    e = r.json()
    assert e["status"] == "failure" and e["message"].startswith("<Error> "), e
    assert rep_names(lb.port) == ["Server 1", "Server 2", "Server 3"]
    assert children(lb.pid) == before


def test_count_of_cases():
    assert len(BAD_ADD) + len(BAD_RM) >= 40


def test_huge_body_is_refused(lb):
    import socket
    import threading
    body = b"{\"n\": 1, \"x\": \"" + b"a" * (10 << 20) + b"\"}"
    s = socket.create_connection(("127.0.0.1", lb.port), timeout=10)
    answer = []

    def reader():
        # read while the body is still going out: the answer comes before
        # ringlb closes the connection on the rest of the body
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return
                answer.append(chunk)
        except OSError:
            pass

    t = threading.Thread(target=reader)
    t.start()
    s.sendall(b"POST /add HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body))
    try:
        for i in range(0, len(body), 65536):
            s.sendall(body[i:i + 65536])
    except OSError:
        pass                    # refused before the end: expected
    t.join(10)
    s.close()
    got = b"".join(answer)
    assert got.startswith(b"HTTP/1.1 413"), got[:200]
    assert rep_names(lb.port) == ["Server 1", "Server 2", "Server 3"]
