"""Request keys at their edges: keys that are not UTF-8 are keys like any
other, and a key over 1,024 bytes is refused from the header as from the
query."""
from conftest import get


def owner_by_routing(port, quoted):
    r = get(port, "/echo?request_id=" + quoted)
    assert r.status == 200, r.body
    return r.header("X-Served-By")


def test_key_that_is_not_utf8(procs):
    ups = [procs.upstream("up-%d" % i) for i in (1, 2, 3)]
    lb = procs.ringlb(ups)
    cases = [
        # (as sent in the URL, as ringlb shows it, escaped?)
        ("%FF", "%FF", True),
        ("a%FFb%25c", "a%FFb%25c", True),       # '%' escaped as well
        ("%C3%28", "%C3(", True),               # a cut sequence
        ("%ED%A0%80", "%ED%A0%80", True),       # a surrogate
        ("%C3%A9", "\u00e9", False),            # valid UTF-8: as it is
        ("50%25", "50%", False),
    ]
    for sent, shown, escaped in cases:
        r = get(lb.port, "/map_request?id=" + sent)
        assert r.status == 200, (sent, r.status, r.body)
        assert r.header("Content-Type") == "application/json"
        doc = r.json()
        assert doc["request_id"] == shown, (sent, doc)
        assert ("request_id_encoding" in doc) == escaped, (sent, doc)
        if escaped:
            assert doc["request_id_encoding"] == "percent"
        # the key routes where /map_request says
        assert doc["mapped_server"] == owner_by_routing(lb.port, sent)

        s = get(lb.port, "/status?key=" + sent)
        assert s.status == 200
        lookup = s.json().get("lookup")
        assert lookup is not None, (sent, "no lookup in /status")
        assert lookup["key"] == shown
        assert lookup["owner"] == doc["mapped_server"]
        assert ("key_encoding" in lookup) == escaped


def test_long_x_request_id_is_refused(procs):
    up = procs.upstream("up-1")
    lb = procs.ringlb([up])
    r = get(lb.port, "/echo", headers={"X-Request-Id": "k" * 1024})
    assert r.status == 200
    r = get(lb.port, "/echo", headers={"X-Request-Id": "k" * 1025})
    assert r.status == 400, r.body
    body = r.json()
    assert body["status"] == "failure"
    assert "X-Request-Id" in body["message"] and "1024" in body["message"]
